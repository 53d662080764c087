"""The package version (one place: pyproject reads it, the digests include it)."""

__version__ = "0.1.0"
