"""The stable import path of the control charts (SPEC §6): ``rrp_eval.models.spc``."""

from rrp_eval.models.spc import (
    ControlChartResult,
    RunChartResult,
    SPCResult,
    run_chart,
    u_chart,
    xmr,
)

__all__ = ["ControlChartResult", "RunChartResult", "SPCResult", "run_chart", "u_chart", "xmr"]
