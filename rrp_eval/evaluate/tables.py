"""Tidy output tables with the SPEC §5 columns."""

from __future__ import annotations

import math

import pandas as pd

from rrp_eval.models.its import ITSResult

ITS_EFFECTS_COLUMNS = [
    "trust_code",
    "measure",
    "status",
    "message",
    "model",
    "n_pre",
    "n_post",
    "h_end",
    "level_rr",
    "level_rr_low",
    "level_rr_high",
    "slope_rr",
    "slope_rr_low",
    "slope_rr_high",
    "rr_end",
    "rr_end_low",
    "rr_end_high",
    "rr_h",
    "rr_h_low",
    "rr_h_high",
    "horizon_months",
    "p_level",
    "p_slope",
    "dispersion",
    "autocorrelation_p",
]
# beyond the SPEC columns: how the model was set up, and standard errors for pooling
ITS_EXTRA_COLUMNS = [
    "design",
    "level_rr_log_se",
    "slope_rr_log_se",
    "rr_h_log_se",
    "level_rr_df",
    "rr_h_df",
    "residual_lag1",
    "correlation",
]

SPC_COLUMNS = [
    "trust_code",
    "measure",
    "series",
    "chart",
    "n_points",
    "baseline_months",
    "mean",
    "lpl",
    "upl",
    "last_month",
    "last_point_type",
    "variation_icon",
    "assurance_icon",
    "runs_signal",
    "n_improvement",
    "n_concern",
    "baseline_excluded",
    "false_alarm_rate",
]
SENSITIVITY_COLUMNS = [
    "trust_code",
    "measure",
    "variant",
    "family",
    "phase_in",
    "harmonics",
    "cov_type",
    "status",
    "message",
    "level_rr",
    "level_rr_low",
    "level_rr_high",
    "slope_rr",
    "slope_rr_low",
    "slope_rr_high",
    "rr_h",
    "rr_h_low",
    "rr_h_high",
    "dispersion",
]


def its_effects_row(
    trust_code: str,
    measure: str,
    res: ITSResult | None = None,
    *,
    status: str = "ok",
    message: str = "",
    design: str = "",
) -> dict[str, object]:
    """One ``its_effects.csv`` row: a fitted model, or a trust/measure that could not be fitted.

    Parameters
    ----------
    trust_code, measure : str
        The row's keys.
    res : ITSResult, optional
        The primary model; omit for ``status`` ``not_estimable`` or ``failed``.
    status : {"ok", "not_estimable", "failed"}, default "ok"
    message : str
        Why the row has no estimates (or a caution about them).
    design : str
        ``summed`` or ``stacked`` (SPEC §2), or blank.

    Returns
    -------
    dict
        Keys ``ITS_EFFECTS_COLUMNS`` then ``ITS_EXTRA_COLUMNS``; estimates NaN when ``res``
        is None.
    """
    if status not in ("ok", "not_estimable", "failed"):
        raise ValueError(f"status={status!r}; allowed: ok, not_estimable, failed")
    if (res is None) != (status != "ok"):
        raise ValueError("a row has a fitted model exactly when its status is 'ok'")
    row: dict[str, object] = dict.fromkeys(ITS_EFFECTS_COLUMNS + ITS_EXTRA_COLUMNS, math.nan)
    row.update(
        trust_code=trust_code, measure=measure, status=status, message=message, design=design
    )
    if res is None:
        row["model"] = ""
        return row
    if res.spec.link != "log":
        raise ValueError("its_effects.csv holds rate ratios: fit a log-link family")
    spec = res.spec
    row["model"] = f"{spec.family}; {spec.formula}; cov={spec.cov_type}"
    row.update(n_pre=res.n_pre, n_post=res.n_post, h_end=res.h_end, horizon_months=spec.horizon)
    pieces = {"level_rr": res.effect("level_change")}
    if spec.slope_change:
        pieces["slope_rr"] = res.effect("slope_change")
    pieces["rr_end"] = res.rr_end
    pieces["rr_h"] = res.rr_h
    for name, eff in pieces.items():
        row[name], row[f"{name}_low"], row[f"{name}_high"] = eff.estimate, eff.ci_low, eff.ci_high
        if f"{name}_log_se" in row:
            row[f"{name}_log_se"] = eff.std_err
        if f"{name}_df" in row:
            row[f"{name}_df"] = eff.df
    row["p_level"] = pieces["level_rr"].p_value
    if "slope_rr" in pieces:
        row["p_slope"] = pieces["slope_rr"].p_value
    row["dispersion"] = res.dispersion
    row["autocorrelation_p"] = res.ljung_box()
    row["residual_lag1"] = res.rho if res.rho is not None else math.nan
    row["correlation"] = res.serial.structure if res.serial is not None else spec.cov_type
    return row


def its_effects_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows from :func:`its_effects_row` as a frame with the SPEC column order."""
    return pd.DataFrame(rows, columns=ITS_EFFECTS_COLUMNS + ITS_EXTRA_COLUMNS)
