"""Content digests: of the package's code, of data frames and of JSON-able values.

The batch run's reuse and the evaluation cache key everything they keep by these.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from rrp_eval._version import __version__

_PACKAGE = Path(__file__).resolve().parent
_DIGEST: str | None = None


def package_digest() -> str:
    """SHA-256 over the package's source and templates (a code change re-runs everything)."""
    global _DIGEST
    if _DIGEST is None:
        h = hashlib.sha256(__version__.encode())
        for path in sorted(_PACKAGE.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".j2", ".css", ".json"):
                h.update(str(path.relative_to(_PACKAGE)).encode())
                h.update(path.read_bytes())
        _DIGEST = h.hexdigest()
    return _DIGEST


def frame_digest(*frames: pd.DataFrame) -> str:
    """SHA-256 of data frames' values, column names and dtypes (not their row labels)."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))]).encode())
        if len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """SHA-256 of JSON-serialisable parts and strings, in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def files_digest(path: Path) -> str:
    """SHA-256 over a file's bytes, or over every file directly in a folder (names and bytes)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()
