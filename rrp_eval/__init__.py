"""rrp-eval: evaluation suite for NHS programmes that reduce restrictive practice.

The public API is small on purpose; the modules hold the rest (see docs and DESIGN).
"""

from rrp_eval.models.its import ITSResult, NotEstimableError, fit_its

__version__ = "0.1.0"

__all__ = ["ITSResult", "NotEstimableError", "__version__", "fit_its"]
