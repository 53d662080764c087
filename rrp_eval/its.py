"""The stable import path of the interrupted time series (SPEC §6): ``rrp_eval.models.its``."""

from rrp_eval.models.its import ITSResult, ITSSpec, NotEstimableError, fit_its

__all__ = ["ITSResult", "ITSSpec", "NotEstimableError", "fit_its"]
