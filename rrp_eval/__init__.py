"""rrp-eval: evaluation suite for NHS programmes that reduce restrictive practice.

The public API is small on purpose (DESIGN.md); the modules hold the rest::

    import rrp_eval as rrp
    programme = rrp.load_programme()                  # the demonstration programme
    trust = rrp.evaluate_trust(programme, "X01")
    trust.its["seclusion"].summary()
    prog = rrp.evaluate_programme(programme)

Importing the package draws nothing and starts nothing (matplotlib and papermill load when
used).
"""

from typing import Any

from rrp_eval._version import __version__
from rrp_eval.data.validate import validate_programme
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.planning import (
    TrustPlan,
    detectability,
    plan_programme,
    plan_tables,
    plan_trust,
    programme_power,
)
from rrp_eval.evaluate.programme import (
    ControlledFit,
    ProgrammeEvaluation,
    evaluate_programme,
    load_programme,
)
from rrp_eval.evaluate.quality import DataQuality, evaluate_quality
from rrp_eval.evaluate.trust import MeasureITS, MeasureSPC, TrustEvaluation, evaluate_trust
from rrp_eval.models.its import ITSResult, NotEstimableError, fit_its
from rrp_eval.models.meta import PooledEffect, pool_random_effects
from rrp_eval.models.spc import (
    ControlChartResult,
    RunChartResult,
    SPCResult,
    run_chart,
    u_chart,
    xmr,
)

__all__ = [
    "ControlChartResult",
    "ControlledFit",
    "DataQuality",
    "DisclosureRule",
    "ITSResult",
    "MeasureITS",
    "MeasureSPC",
    "NotEstimableError",
    "PooledEffect",
    "ProgrammeEvaluation",
    "RunChartResult",
    "SPCResult",
    "TrustEvaluation",
    "TrustPlan",
    "__version__",
    "detectability",
    "evaluate_programme",
    "evaluate_quality",
    "evaluate_trust",
    "fit_its",
    "load_programme",
    "plan_programme",
    "plan_tables",
    "plan_trust",
    "pool_random_effects",
    "programme_power",
    "run_chart",
    "run_suite",
    "show",
    "u_chart",
    "validate_programme",
    "xmr",
]


def __getattr__(name: str) -> Any:
    # the runner and the page sections load papermill and matplotlib: only when asked for
    if name == "run_suite":
        from rrp_eval.report.suite import run_suite

        return run_suite
    if name == "show":
        import rrp_eval.show

        return rrp_eval.show
    raise AttributeError(f"module 'rrp_eval' has no attribute {name!r}")
