"""A trust's evaluation: SPC and ITS per measure, and the ITS's sensitivity analyses.

:func:`evaluate_trust` returns a frozen :class:`TrustEvaluation` that the trust notebook shows
and the batch run's tables are built from, so that a report and the tables always agree.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.cache import cached
from rrp_eval.evaluate.tables import (
    SENSITIVITY_COLUMNS,
    SPC_COLUMNS,
    its_effects_row,
    its_effects_table,
)
from rrp_eval.models.its import ITSResult, NotEstimableError, fit_its
from rrp_eval.models.results import FrozenMap, ResultMixin, recorded_warnings
from rrp_eval.models.spc import (
    ControlChartResult,
    false_alarm_rate,
    overdispersion_test,
    u_chart,
)
from rrp_eval.params import EffectiveTrustParams, ProgrammeParams
from rrp_eval.prepare import (
    TrustDesign,
    measure_gaps,
    trust_design,
    trust_series,
    ward_series,
)

logger = logging.getLogger(__name__)

FEW_POINTS = 8
#: events needed in each segment (before and after the start) for a level and a slope
MIN_SEGMENT_EVENTS = 10
#: rate ratios outside this range, or intervals wider than a factor of MAX_CI_RATIO, are not
#: findings: the data cannot pin the effect down
DISPLAY_RANGE = (0.05, 20.0)
MAX_CI_RATIO = 100.0


def information_problem(res: ITSResult) -> str:
    """Why a fitted ITS is too thin to report (blank when it is not): fewer than
    ``MIN_SEGMENT_EVENTS`` events before or after the start, or a level change or rate ratio at
    the horizon outside ``DISPLAY_RANGE`` or with an interval wider than a factor of
    ``MAX_CI_RATIO`` (docs/methods.md, "Enough information")."""
    f = res.frame
    treated = f["z"] == 1 if "z" in f else pd.Series(True, index=f.index)
    post = f["level_change"] > 0
    before = float(f.loc[treated & ~post, "y"].sum())
    after = float(f.loc[treated & post, "y"].sum())
    if min(before, after) < MIN_SEGMENT_EVENTS:
        # no counts in the message: it is shared, and a count under 5 must not be
        where = "before" if before < MIN_SEGMENT_EVENTS else "after"
        return (
            f"fewer than {MIN_SEGMENT_EVENTS} events {where} the start: at least "
            f"{MIN_SEGMENT_EVENTS} in each segment are needed to estimate a change in level "
            "and slope"
        )
    low, high = DISPLAY_RANGE
    for name, eff in (("level change", res.effect("level_change")), ("rate ratio", res.rr_h)):
        if name == "rate ratio" and not res.spec.slope_change:
            continue
        what = name if name == "level change" else f"rate ratio at {res.spec.horizon} months"
        if not low <= eff.estimate <= high:
            return (
                f"the {what} is outside {low:g} to {high:g}: too little information to estimate it"
            )
        if not eff.ci_low > 0 or eff.ci_high / eff.ci_low > MAX_CI_RATIO:
            return (
                f"the 95% interval of the {what} spans more than a factor of "
                f"{MAX_CI_RATIO:g}: too little information to estimate it"
            )
    return ""


HEADLINE_MEASURES = ("restrictive_practice", "physical_restraint", "people_restrained")


def headline_measure(params: ProgrammeParams, measures: tuple[str, ...]) -> str:
    """The measure reports lead with: the pre-specified primary measure (``programme.yaml``'s
    ``primary``) when the data allow it, else the first of restrictive practice, physical
    restraint and people restrained that they allow (else the first analysed measure)."""
    present = params.analysed_measures(measures)
    if params.primary.measure in present:
        return params.primary.measure
    return next((m for m in HEADLINE_MEASURES if m in present), present[0])


@dataclass(frozen=True, eq=False)
class MeasureITS(ResultMixin):
    """The ITS of one measure in one trust, or why there is none (``status`` ``ok``,
    ``not_estimable`` or ``failed``, with ``message``)."""

    trust_code: str
    measure: str
    status: str
    message: str
    design: TrustDesign
    result: ITSResult | None
    series: pd.DataFrame
    warnings: tuple[str, ...] = ()

    @property
    def spec(self) -> dict[str, Any]:
        """The design and, when fitted, the model's specification."""
        spec = {"trust_code": self.trust_code, "measure": self.measure, "design": self.design.kind}
        return spec | (self.result.spec.as_dict() if self.result is not None else {})

    def row(self) -> dict[str, object]:
        """The ``its_effects.csv`` row."""
        return its_effects_row(
            self.trust_code,
            self.measure,
            self.result,
            status=self.status,
            message=self.message,
            design=self.design.kind,
        )

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Level change, slope change and the effect at the horizon as rate ratios (no rows when
        there is no model)."""
        if self.result is None:
            return pd.DataFrame(columns=["estimate", "ci_low", "ci_high", "p_value"], dtype=float)
        res = self.result
        rows = {"level_change": res.effect("level_change", alpha)}
        if res.spec.slope_change:
            rows["slope_change"] = res.effect("slope_change", alpha)
            rows[f"rr_at_{res.spec.horizon}_months"] = res.rr_at(res.spec.horizon, alpha)
        frame = pd.DataFrame(rows).T
        return frame.reindex(columns=["estimate", "ci_low", "ci_high", "p_value"]).astype(float)

    def _summary_title(self) -> str:
        what = f"{self.trust_code} {self.measure}: interrupted time series ({self.design.kind})"
        return what if self.result is not None else f"{what}: {self.status} ({self.message})"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The observed series, fitted model and counterfactual (a Figure)."""
        if self.result is None:
            raise ValueError(f"{self.measure}: no model to plot ({self.message})")
        return self.result.plot(ax=ax, **kwargs)

    def __repr__(self) -> str:
        head = f"MeasureITS({self.trust_code}, {self.measure}, {self.status}, {self.design.kind})"
        if self.result is None:
            return f"{head}\n  {self.message}"
        lvl = self.result.effect("level_change")
        return (
            f"{head}\n  level change {lvl.estimate:.3f} ({lvl.ci_low:.3f} to {lvl.ci_high:.3f}); "
            f"{self.result.spec.family}, {self.result.spec.cov_type}"
        )


def _model_options(p: EffectiveTrustParams) -> dict[str, object]:
    harmonics = None if p.model.harmonics == "auto" else p.model.harmonics
    return {
        "family": p.model.family,
        "harmonics": harmonics,
        "phase_in": p.phase_in_months,
        "horizon": p.horizon_months,
        "trend": p.model.trend,
        "baseline_months": p.model.baseline_months,
        "robust": p.model.robust,
    }


def fit_trust_its(
    data: ProgrammeData,
    trust_code: str,
    measure: str,
    params: EffectiveTrustParams,
    series: pd.DataFrame | None = None,
    design: TrustDesign | None = None,
) -> MeasureITS:
    """The trust's ITS for a measure, as SPEC §2 sets it up.

    The summed series of the participating wards when they share a start; the stacked ward
    series (ward fixed effects, each ward's own start, the parameters' covariance within each
    ward: by default the autocorrelation integrated over its posterior) when they do not;
    ``not_estimable`` with the reason when the data cannot support a model, ``failed`` with
    the error when fitting breaks. ``series`` reuses a series built for the same trust
    and measure (as the sensitivity variants do), ``design`` the measure's design made for
    them (after any switch for recording gaps). Warnings raised by the fit are kept in
    ``warnings``.
    """
    empty = pd.DataFrame()
    if design is None:
        design = trust_design(data, trust_code)
        if design.kind == "none":
            return MeasureITS(
                trust_code, measure, "not_estimable", design.description, design, None, empty
            )
        gaps = measure_gaps(data, trust_code, design.participating, measure)
        if design.kind == "summed" and gaps:
            design = replace(design, kind="stacked", composition=f"{measure} blank in {gaps}")
    elif design.kind == "none":
        return MeasureITS(
            trust_code, measure, "not_estimable", design.description, design, None, empty
        )
    opts = _model_options(params)
    if design.kind == "summed":
        build = trust_series
        opts |= {
            "start": design.starts[0],
            "cov_type": params.model.cov_type,
            "maxlags": params.model.maxlags,
        }
    else:
        build = ward_series
        opts |= {
            "start": "start_month",
            "unit": "ward_id",
            "unit_effects": True,
            # model-based within ward, not clustered by ward: a sandwich from 3-6 wards
            # scatters so widely that the meta-analysis weights become noise (issue 16,
            # validation/stacked_trust_study.md)
            "cov_type": params.model.cov_type,
            "maxlags": params.model.maxlags,
        }
    with recorded_warnings() as caught:
        try:
            if series is None:
                series = build(data, trust_code, measure)
            res = fit_its(
                series, outcome="count", time="month", exposure="occupied_bed_days", **opts
            )
        except NotEstimableError as exc:
            res, status, message = None, "not_estimable", str(exc)
        except (ValueError, np.linalg.LinAlgError) as exc:
            logger.warning("ITS failed for %s %s: %s", trust_code, measure, exc)
            res, status, message = None, "failed", str(exc)
    if res is None:
        return MeasureITS(trust_code, measure, status, message, design, None, empty, (*caught,))
    thin = information_problem(res)
    if thin:
        return MeasureITS(
            trust_code, measure, "not_estimable", thin, design, None, empty, (*caught,)
        )
    few = min(res.n_pre, res.n_post)
    message = ""
    if design.kind == "summed" and few < FEW_POINTS:
        message = (
            f"only {few} points in a segment: fewer than {FEW_POINTS} gives unstable estimates"
        )
    return MeasureITS(trust_code, measure, "ok", message, design, res, series, (*caught,))


PLACEBO_MIN_MONTHS = 6


@dataclass(frozen=True)
class PlaceboCheck:
    """Placebo interruptions: every baseline month with at least ``PLACEBO_MIN_MONTHS``
    baseline months on each side tried as a false start, the model refitted to the baseline
    alone, and its effect at the horizon compared with the real one.

    ``n_as_extreme`` of the ``n_starts`` pseudo-starts gave a log rate ratio at least as far
    from 0 as the real one; ``share`` is (n_as_extreme + 1) / (n_starts + 1), the rank-based
    share that counts the real start among the candidates (a permutation-style p-value;
    Abadie et al. 2010, Bernal et al. 2018). The pseudo-starts overlap, so they are not
    independent: ``share`` describes the baseline's own swings, it is not an exact test.
    """

    measure: str
    effect: str  # "rr_h" or "level_change"
    real: float  # the real rate ratio
    placebo: tuple[float, ...]  # the pseudo-starts' rate ratios
    n_as_extreme: int

    @property
    def n_starts(self) -> int:
        return len(self.placebo)

    @property
    def share(self) -> float:
        return (self.n_as_extreme + 1) / (self.n_starts + 1)


def _placebo_ratio(
    y: np.ndarray,
    offset: np.ndarray,
    index: np.ndarray,
    season: np.ndarray,
    start: float,
    harmonics: int,
    spec: Any,
    horizon: int,
) -> float | None:
    """The rate ratio at the horizon (or the level ratio) of the primary model's design fitted
    by Poisson maximum likelihood (the quasi-Poisson point estimates) with a false start."""
    import statsmodels.api as sm

    t, h = index - index.min(), index - start
    keep = ~((h >= 0) & (h < spec.phase_in))
    post = (h >= spec.phase_in).astype(float)
    cols = [np.ones_like(t), t]
    if spec.trend == "quadratic":
        cols.append((t / 12.0) ** 2)
    cols.append(post)
    if spec.slope_change:
        cols.append((h - spec.phase_in) * post)
    for j in range(1, harmonics + 1):
        cols += [np.sin(2 * np.pi * j * season / 12), np.cos(2 * np.pi * j * season / 12)]
    X = np.column_stack(cols)[keep]
    yk, pk = y[keep], post[keep]
    if yk[pk == 0].sum() == 0 or yk[pk == 1].sum() == 0 or len(yk) <= X.shape[1]:
        return None
    level = 3 if spec.trend == "quadratic" else 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = sm.GLM(yk, X, family=sm.families.Poisson(), offset=offset[keep]).fit().params
    except (ValueError, np.linalg.LinAlgError):
        return None
    log_rr = b[level] + (b[level + 1] * (horizon - spec.phase_in) if spec.slope_change else 0.0)
    rr = float(np.exp(log_rr))
    return rr if np.isfinite(rr) and rr > 0 else None


def placebo_check(m: MeasureITS, params: EffectiveTrustParams) -> PlaceboCheck | None:
    """Placebo interruptions in the baseline of a summed series (see :class:`PlaceboCheck`);
    None without a fitted model, for stacked wards or when the baseline is too short."""
    if m.result is None or m.design.kind != "summed" or not len(m.series):
        return None
    res = m.result
    series = m.series.sort_values("month")
    start = pd.Timestamp(m.design.starts[0])
    baseline = series[series["month"] < start]
    baseline = baseline[baseline["count"].notna() & (baseline["occupied_bed_days"] > 0)]
    baseline = baseline.reset_index(drop=True)
    if params.model.baseline_months is not None:
        baseline = baseline.iloc[-params.model.baseline_months :].reset_index(drop=True)
    effect = "rr_h" if res.spec.slope_change else "level_change"
    real = float(res.rr_h.estimate if effect == "rr_h" else res.effect(effect).estimate)
    spec = res.spec
    month = pd.to_datetime(baseline["month"])
    index = (month.dt.year * 12 + month.dt.month - 1).to_numpy(float)
    y = baseline["count"].to_numpy(float)
    offset = np.log(baseline["occupied_bed_days"].to_numpy(float))
    harmonics = spec.harmonics if spec.harmonics else 0
    if params.model.harmonics == "auto":  # as fit_its decides it for the baseline alone
        harmonics = 2 if len(baseline) >= 24 else 0
    season = month.dt.month.to_numpy(float)
    lo, hi = PLACEBO_MIN_MONTHS, len(baseline) - PLACEBO_MIN_MONTHS - params.phase_in_months
    placebo = []
    for i in range(lo, hi + 1):
        rr = _placebo_ratio(
            y, offset, index, season, index[i], harmonics, spec, params.horizon_months
        )
        if rr is not None:
            placebo.append(rr)
    if not placebo:
        return None
    extreme = sum(abs(math.log(v)) >= abs(math.log(real)) for v in placebo)
    return PlaceboCheck(m.measure, effect, real, tuple(placebo), int(extreme))


def sensitivity_variants(p: EffectiveTrustParams) -> dict[str, EffectiveTrustParams]:
    """The primary model and its alternatives: other families, phase-in 0/3/6 months, with
    and without seasonality, the trend's form (the last 12 baseline months only; a
    quadratic trend), for the (quasi-)Poisson families Huber-weighted quasi-likelihood
    (outlying months down-weighted) and, where the autocorrelation is integrated over its
    posterior (``cov_type: arma``), the REML AR(1) plug-in (how much the interval owes to not
    knowing the correlation)."""
    variants = {"primary": p}
    for fam in ("poisson", "quasipoisson", "negbin"):
        if fam != p.model.family:
            variants[f"family {fam}"] = p.model_copy(
                update={"model": p.model.model_copy(update={"family": fam})}
            )
    for k in (0, 3, 6):
        if k != p.phase_in_months:
            variants[f"phase-in {k} months"] = p.model_copy(update={"phase_in_months": k})
    for label, h in (("no seasonality", 0), ("seasonality (2 harmonics)", 2)):
        if p.model.harmonics != h:
            variants[label] = p.model_copy(
                update={"model": p.model.model_copy(update={"harmonics": h})}
            )
    changes: tuple[tuple[str, dict[str, Any]], ...] = (
        ("baseline: last 12 months", {"baseline_months": 12}),
        ("quadratic trend", {"trend": "quadratic"}),
    )
    if p.model.family in ("poisson", "quasipoisson"):
        changes += (("robust (Huber weights)", {"robust": True}),)
    if p.model.cov_type == "arma":
        changes += (("autocorrelation: AR(1) plug-in", {"cov_type": "ar1"}),)
    for label, change in changes:
        if any(getattr(p.model, k) != v for k, v in change.items()):
            variants[label] = p.model_copy(update={"model": p.model.model_copy(update=change)})
    return variants


def sensitivity_table(
    data: ProgrammeData,
    trust_code: str,
    measure: str,
    params: EffectiveTrustParams,
    primary: MeasureITS | None = None,
) -> pd.DataFrame:
    """One ``its_sensitivity.csv`` row per variant (see :func:`sensitivity_variants`);
    ``primary`` is the primary model's fit when already made.

    A sensitivity analysis tests the primary estimate: when the primary model is
    ``not_estimable`` (too little information, or no model), every variant's row carries its
    status and reason and no variant is fitted.
    """
    rows = []
    series = None if primary is None or not len(primary.series) else primary.series
    design = None if primary is None else primary.design
    skip = primary is not None and primary.status == "not_estimable"
    for variant, p in sensitivity_variants(params).items():
        if (variant == "primary" or skip) and primary is not None:
            m = primary
        else:
            m = fit_trust_its(data, trust_code, measure, p, series, design)
        # the same wards and design in every variant: build them once
        series = m.series if series is None and len(m.series) else series
        design = m.design if design is None else design
        row = m.row()
        spec = m.result.spec if m.result is not None else None
        rows.append(
            {
                "trust_code": trust_code,
                "measure": measure,
                "variant": variant,
                "family": spec.family if spec else p.model.family,
                "phase_in": p.phase_in_months,
                "harmonics": spec.harmonics if spec else p.model.harmonics,
                "cov_type": spec.cov_type if spec else p.model.cov_type,
                **{k: row[k] for k in SENSITIVITY_COLUMNS[7:]},
            }
        )
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


LANEY_P = 0.01


def choose_chart(counts: pd.Series, bed_days: pd.Series) -> tuple[bool, float, float]:
    """Laney's u′ when the Pearson χ² test finds over-dispersion (p < 0.01), else u.

    Returns (laney, dispersion, p-value).
    """
    dispersion, p = overdispersion_test(counts, bed_days)
    return p < LANEY_P, dispersion, p


@dataclass(frozen=True, eq=False)
class MeasureSPC(ResultMixin):
    """The Making Data Count chart of one measure in one trust: ``result`` (None with fewer
    than 2 months), the ``series`` charted and what it sums (``label``)."""

    trust_code: str
    measure: str
    label: str
    series: pd.DataFrame
    result: ControlChartResult | None
    warnings: tuple[str, ...] = ()
    #: the share of charts like this that would show a special cause after the baseline if
    #: nothing had changed (NaN without a frozen baseline): see ``false_alarm_rate``
    false_alarm: float = math.nan

    @property
    def spec(self) -> dict[str, Any]:
        """Chart type, baseline months and the series charted."""
        if self.result is None:
            return {"measure": self.measure, "series": self.label, "chart": None}
        return {
            "measure": self.measure,
            "series": self.label,
            "chart": self.result.chart,
            "baseline_months": self.result.freeze or len(self.result.frame),
            "baseline_excluded": self.excluded_months,
        }

    @property
    def excluded_months(self) -> tuple[str, ...]:
        """Baseline months left out of the centre and limits (special causes themselves)."""
        if self.result is None or "excluded" not in self.result.frame:
            return ()
        f = self.result.frame
        return tuple(f"{d:%Y-%m}" for d in f.loc[f["excluded"].astype(bool), "date"])

    @property
    def baseline(self) -> pd.DataFrame:
        """The months the centre line and limits come from (the frozen baseline, or all; less
        any excluded month)."""
        n = (self.result.freeze or len(self.series)) if self.result is not None else 0
        base = self.series.iloc[:n]
        if self.result is not None and "excluded" in self.result.frame:
            base = base[~self.result.frame["excluded"].iloc[:n].to_numpy(bool)]
        return base

    def controlled(self, rule: DisclosureRule) -> MeasureSPC:
        """The chart as it may be shared: each month's value by ``rule.rates`` (NaN where
        suppressed), its limits rounded to the step of that month's bed days and the centre
        line to the step of the baseline's bed days (so that neither pins a count or a month's
        bed days more finely than counts are rounded); centre and limits withheld (NaN) when
        the baseline holds 1 to ``min_rate_count - 1`` events. Internal: unchanged."""
        if rule.internal or self.result is None:
            return self
        s, f = self.series, self.result.frame.copy()
        base = self.baseline
        base_count = float(base["count"].sum())
        bd = s["occupied_bed_days"].to_numpy(float)
        shown = rule.rates(s["rate_per_1000_obd"], s["count"], s["occupied_bed_days"])
        f["value"] = shown.to_numpy(float)
        false_alarm = self.false_alarm
        if 0 < base_count < rule.min_rate_count:
            f[["centre", "lcl", "ucl"]] = math.nan
            false_alarm = math.nan  # simulated from the baseline rate: withheld with it
        else:
            f["centre"] = rule.round_rate(f["centre"], float(base["occupied_bed_days"].sum()))
            for col in ("lcl", "ucl"):
                f[col] = rule.round_rate(f[col], bd)
            f["lcl"] = f["lcl"].clip(lower=0)
        return replace(self, result=replace(self.result, frame=f), false_alarm=false_alarm)

    def row(self, rule: DisclosureRule | None = None) -> dict[str, object]:
        """One ``spc_signals.csv`` row (centre and limits as ``rule`` allows them shared)."""
        if rule is not None:
            return self.controlled(rule).row()
        row: dict[str, object] = dict.fromkeys(SPC_COLUMNS, math.nan)
        row.update(trust_code=self.trust_code, measure=self.measure, series=self.label)
        res = self.result
        if res is None:
            row.update(
                n_points=0, chart="", last_point_type="", variation_icon="", assurance_icon=""
            )
            return row
        f = res.frame
        last = f.iloc[-1]
        row.update(
            chart=res.chart,
            n_points=len(f),
            baseline_months=res.freeze or len(f),
            mean=last["centre"],
            lpl=last["lcl"],
            upl=last["ucl"],
            last_month=f"{last['date']:%Y-%m}" if "date" in f else "",
            last_point_type=last["point_type"],
            variation_icon=res.variation_icon,
            assurance_icon="",
            runs_signal=res.runs.signal,
            n_improvement=int((f["point_type"] == "special_cause_improvement").sum()),
            n_concern=int((f["point_type"] == "special_cause_concern").sum()),
            baseline_excluded=len(self.excluded_months),
            false_alarm_rate=round(self.false_alarm, 2),
        )
        return row

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per month: ``value, centre, lower, upper, point_type``."""
        if self.result is None:
            return pd.DataFrame(columns=["value", "centre", "lower", "upper", "point_type"])
        frame = self.result.summary_frame(alpha)
        return frame.set_index("date") if "date" in frame else frame

    def _summary_title(self) -> str:
        if self.result is None:
            return f"{self.trust_code} {self.measure}: too few months for a chart"
        return (
            f"{self.trust_code} {self.measure}: {self.result.chart} chart of the {self.label}, "
            f"variation {self.result.variation_icon}"
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The chart in Making Data Count style (a Figure)."""
        if self.result is None:
            raise ValueError(f"{self.measure}: too few months for a chart")
        return self.result.plot(ax=ax, **kwargs)

    def __repr__(self) -> str:
        if self.result is None:
            return f"MeasureSPC({self.trust_code}, {self.measure}: too few months)"
        return (
            f"MeasureSPC({self.trust_code}, {self.measure}, {self.result.chart}, "
            f"{len(self.result.frame)} months, variation {self.result.variation_icon})"
        )


def trust_spc(
    data: ProgrammeData, trust_code: str, measure: str, params: ProgrammeParams
) -> MeasureSPC:
    """u or u′ chart of the trust's monthly rate per 1,000 occupied bed days.

    The participating wards' summed series (all wards for a trust with none participating).
    The centre line (and Laney's sigma_z) come from the baseline (the months before the
    earliest start) when it has at least 12 months, so that a change after the start shows as
    special cause; otherwise from all points. u′ is chosen over u by :func:`choose_chart` on
    the same baseline.

    Baseline months outside the first chart's limits are special causes themselves: they are
    left out of the centre line and limits (qicharts2's ``exclude``) and marked, once, and at
    most a quarter of the baseline (more than that and the baseline is not stable: nothing is
    left out and the warnings say so). ``false_alarm`` is the share of charts like this one
    that would signal after the baseline if nothing had changed
    (:func:`~rrp_eval.models.spc.false_alarm_rate`).
    """
    design = trust_design(data, trust_code)
    participating = design.kind != "none"
    series = trust_series(data, trust_code, measure, participating_only=participating)
    series = series[series["rate_per_1000_obd"].notna()].reset_index(drop=True)
    label = "participating wards" if participating else "all wards"
    if len(series) < 2:
        return MeasureSPC(trust_code, measure, label, series, None)
    freeze = None
    if participating:
        n_base = int((series["month"] < min(design.starts)).sum())
        freeze = n_base if n_base >= 12 else None
    counts, bed_days = series["count"], series["occupied_bed_days"]
    notes: list[str] = []

    def chart(exclude: list[int]) -> ControlChartResult:
        kept = np.setdiff1d(np.arange(freeze or len(series)), exclude)
        laney, _, _ = choose_chart(counts.iloc[kept], bed_days.iloc[kept])
        return u_chart(
            counts,
            bed_days,
            laney=laney,
            multiply=1000,
            freeze=freeze,
            dates=series["month"],
            improvement=params.measure(measure).direction,
            exclude=exclude,
        )

    with recorded_warnings() as caught:
        res = first = chart([])
        if freeze is not None:
            # revised limits (Montgomery 2013 §6.2): leave out the baseline month furthest
            # outside the limits, recompute, repeat while any is outside, up to a quarter
            excluded: list[int] = []
            while True:
                f = res.frame.iloc[:freeze]
                outside = f["sigma_signal"].to_numpy() & ~f["excluded"].to_numpy(bool)
                if not outside.any():
                    break
                if len(excluded) == freeze // 4:
                    notes.append(
                        f"more than {freeze // 4} of the {freeze} baseline months are outside "
                        "the limits: the baseline is not stable, so none is left out"
                    )
                    res = first
                    break
                sd = (f["ucl"] - f["centre"]).to_numpy() / 3
                z = np.abs(f["value"].to_numpy() - f["centre"].to_numpy()) / np.where(
                    sd > 0, sd, np.inf
                )
                excluded.append(int(np.argmax(np.where(outside, z, -1.0))))
                res = chart(sorted(excluded))
    false_alarm = math.nan
    if freeze is not None and freeze < len(series):
        kept = ~res.frame["excluded"].to_numpy(bool)[:freeze]
        c, e = counts.to_numpy(float)[:freeze][kept], bed_days.to_numpy(float)[:freeze][kept]
        dispersion, _ = overdispersion_test(c, e)
        false_alarm = false_alarm_rate(
            c.sum() / e.sum(),
            bed_days.to_numpy(float),
            freeze,
            dispersion=dispersion if res.chart == "u'" else 1.0,
            laney=res.chart == "u'",
        )
    warnings_ = (*caught, *res.warnings, *notes)
    return MeasureSPC(trust_code, measure, label, series, res, warnings_, false_alarm)


@dataclass(frozen=True, eq=False)
class TrustEvaluation(ResultMixin):
    """One trust's evaluation: per analysed measure its ITS (``its``), Making Data Count chart
    (``spc``) and, when computed, the ITS's sensitivity analyses (``sensitivity``).

    ``data`` holds this trust's rows only (a report never shows another trust's wards);
    ``params`` are the programme's parameters (``own_params`` this trust's effective ones).
    Inspect, refit and plot in a kernel::

        trust.its["seclusion"].summary()
        trust.refit("seclusion", phase_in=3).plot()
    """

    code: str
    name: str
    params: ProgrammeParams
    data: ProgrammeData
    design: TrustDesign
    measures: tuple[str, ...]
    its: Mapping[str, MeasureITS]
    spc: Mapping[str, MeasureSPC]
    sensitivity: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    #: placebo interruptions of the headline measure (when its summed series allows them)
    placebo: PlaceboCheck | None = None

    @property
    def own_params(self) -> EffectiveTrustParams:
        """This trust's effective parameters (programme defaults and its own file)."""
        return self.params.for_trust(self.code)

    @property
    def spec(self) -> dict[str, Any]:
        """What was evaluated and how."""
        p = self.own_params
        return {
            "trust_code": self.code,
            "design": self.design.kind,
            "measures": self.measures,
            "family": p.model.family,
            "cov_type": p.model.cov_type,
            "phase_in_months": p.phase_in_months,
            "horizon_months": p.horizon_months,
            "sensitivity": bool(self.sensitivity),
        }

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every warning the fits raised, with the measure it came from."""
        return tuple(
            f"{m}: {w}"
            for results in (self.its, self.spc)
            for m, r in results.items()
            for w in r.warnings
        )

    def label(self, measure: str) -> str:
        """The measure's name as reports print it."""
        return self.params.measure(measure).label or measure

    @property
    def headline(self) -> str:
        """The measure reports lead with (see :func:`headline_measure`)."""
        return headline_measure(self.params, self.data.measures)

    def tables(self, rule: DisclosureRule | None = None) -> dict[str, pd.DataFrame]:
        """This trust's rows of ``its_effects``, ``spc_signals`` and ``its_sensitivity``
        (``spc_signals`` controlled by ``rule`` when given: see ``MeasureSPC.controlled``)."""
        return {
            "its_effects": its_effects_table([self.its[m].row() for m in self.measures]),
            "spc_signals": pd.DataFrame(
                [self.spc[m].row(rule) for m in self.measures], columns=SPC_COLUMNS
            ),
            "its_sensitivity": pd.concat(
                [self.sensitivity[m] for m in self.measures if m in self.sensitivity]
                or [pd.DataFrame(columns=SENSITIVITY_COLUMNS)],
                ignore_index=True,
            ),
        }

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Every measure's ITS effects (rate ratios), indexed by measure and effect."""
        frames = {m: self.its[m].summary_frame(alpha) for m in self.measures}
        frames = {m: f for m, f in frames.items() if len(f)}
        if not frames:
            return pd.DataFrame(columns=["estimate", "ci_low", "ci_high", "p_value"], dtype=float)
        return pd.concat(frames, names=["measure", "effect"])

    def _summary_title(self) -> str:
        return f"{self.name} ({self.code}): {self.design.description}"

    def plot(self, measure: str | None = None, ax: Any = None, **kwargs: Any) -> Any:
        """The ITS chart of ``measure`` (default the headline measure)."""
        return self.its[measure or self.headline].plot(ax=ax, **kwargs)

    def refit(self, measure: str, **changes: Any) -> MeasureITS:
        """The ITS of ``measure`` with other options, e.g. ``refit("seclusion", phase_in=3)``.

        ``changes``: ``phase_in`` (months), ``horizon`` (months), ``family``, ``harmonics``,
        ``cov_type``; the evaluation itself is unchanged (it is frozen).
        """
        p = self.own_params
        top = {"phase_in": "phase_in_months", "horizon": "horizon_months"}
        model_keys = {
            "family",
            "harmonics",
            "cov_type",
            "maxlags",
            "trend",
            "baseline_months",
            "robust",
        }
        unknown = set(changes) - set(top) - model_keys
        if unknown:
            raise ValueError(
                f"refit: {', '.join(sorted(unknown))} not allowed; use "
                f"{', '.join(sorted([*top, *model_keys]))}"
            )
        update = {top[k]: v for k, v in changes.items() if k in top}
        model = {k: v for k, v in changes.items() if k in model_keys}
        if model:
            update["model"] = p.model.model_copy(update=model)
        return fit_trust_its(self.data, self.code, measure, p.model_copy(update=update))

    def __repr__(self) -> str:
        ok = sum(self.its[m].status == "ok" for m in self.measures)
        return (
            f"TrustEvaluation({self.code}, {self.name!r}, {self.design.kind})\n"
            f"  {len(self.measures)} measures, {ok} with an ITS; "
            f"sensitivity {'computed' if self.sensitivity else 'not computed'}"
        )


def _trust_name(data: ProgrammeData, code: str) -> str:
    wards = data.wards
    return str(wards.loc[wards["trust_code"] == code, "trust_name"].iloc[0])


def _compute(
    data: ProgrammeData, code: str, params: ProgrammeParams, sensitivity: bool
) -> TrustEvaluation:
    own = params.for_trust(code)
    measures = params.analysed_measures(data.measures)
    its = {m: fit_trust_its(data, code, m, own) for m in measures}
    spc = {m: trust_spc(data, code, m, params) for m in measures}
    sens = (
        {m: sensitivity_table(data, code, m, own, its[m]) for m in measures} if sensitivity else {}
    )
    top = headline_measure(params, data.measures)
    placebo = placebo_check(its[top], own) if sensitivity and top in its else None
    return TrustEvaluation(
        code=code,
        name=_trust_name(data, code),
        params=params,
        data=data,
        design=trust_design(data, code),
        measures=measures,
        its=FrozenMap(its),
        spc=FrozenMap(spc),
        sensitivity=FrozenMap(sens),
        placebo=placebo,
    )


def evaluate_trust(
    programme: ProgrammeData,
    code: str,
    params: ProgrammeParams | None = None,
    *,
    sensitivity: bool = True,
) -> TrustEvaluation:
    """Evaluate one trust: its ITS and Making Data Count chart for every analysed measure.

    Parameters
    ----------
    programme : ProgrammeData
        The validated programme (:func:`rrp_eval.load_programme`).
    code : str
        The trust's code; it must be in the data and free of data errors.
    params : ProgrammeParams, optional
        Default the parameters the programme was loaded with.
    sensitivity : bool, default True
        Also fit the ITS's sensitivity analyses (other families, phase-ins, seasonality).

    Returns
    -------
    TrustEvaluation
        Frozen; fitted on this trust's rows only.

    Raises
    ------
    ValueError
        When the trust is not in the data or its data have errors.

    Examples
    --------
    >>> import rrp_eval as rrp
    >>> programme = rrp.load_programme()            # the demonstration programme
    >>> trust = rrp.evaluate_trust(programme, "X01", sensitivity=False)
    >>> trust.its["restrictive_practice"].status
    'ok'
    """
    params = params or programme.params or ProgrammeParams()
    if code not in programme.trusts:
        raise ValueError(
            f"trust_code={code!r} is not in the data; trusts are {', '.join(programme.trusts)}"
        )
    failed = programme.report.failed_trusts.get(code)
    if failed:
        lines = "\n".join(str(p) for p in failed[:20])
        raise ValueError(f"the data for {code} have errors:\n{lines}")
    own = programme.only_trust(code)
    return cached(
        "trust",
        (code, own.digest(), params.digest(code), sensitivity),
        lambda: _compute(own, code, params, sensitivity),
    )
