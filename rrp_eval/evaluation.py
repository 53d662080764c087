"""A trust's evaluation and the programme's tables: SPC and ITS per measure, in plain English.

The notebooks and the batch run call these functions, so that a report and the tables of the
same run always agree.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.evaluate.tables import its_effects_row, its_effects_table
from rrp_eval.models.controlled import controlled_rows
from rrp_eval.models.its import ITSResult, NotEstimableError, fit_its
from rrp_eval.models.meta import gee_rows, programme_effects
from rrp_eval.models.spc import ControlChartResult, overdispersion_test, u_chart
from rrp_eval.params import EffectiveTrustParams, ProgrammeParams
from rrp_eval.prepare import TrustDesign, trust_design, trust_series, ward_series

logger = logging.getLogger(__name__)

FEW_POINTS = 8
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
]


@dataclass(frozen=True, eq=False)
class MeasureITS:
    """The ITS of one measure in one trust, or why there is none."""

    trust_code: str
    measure: str
    status: str
    message: str
    design: TrustDesign
    result: ITSResult | None
    series: pd.DataFrame

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


HEADLINE_MEASURES = ("restrictive_practice", "physical_restraint", "people_restrained")


def headline_measure(params: ProgrammeParams, measures: tuple[str, ...]) -> str:
    """The measure reports lead with: the first of restrictive practice, physical restraint and
    people restrained that the data allow (else the first analysed measure)."""
    present = params.analysed_measures(measures)
    return next((m for m in HEADLINE_MEASURES if m in present), present[0])


def _model_options(p: EffectiveTrustParams) -> dict[str, object]:
    harmonics = None if p.model.harmonics == "auto" else p.model.harmonics
    return {
        "family": p.model.family,
        "harmonics": harmonics,
        "phase_in": p.phase_in_months,
        "horizon": p.horizon_months,
    }


def fit_trust_its(
    data: ProgrammeData,
    trust_code: str,
    measure: str,
    params: EffectiveTrustParams,
    series: pd.DataFrame | None = None,
) -> MeasureITS:
    """The trust's ITS for a measure, as SPEC §2 sets it up.

    The summed series of the participating wards when they share a start; the stacked ward
    series (ward fixed effects, each ward's own start, errors clustered by ward) when they do
    not; ``not_estimable`` with the reason when the data cannot support a model, ``failed``
    with the error when fitting breaks. ``series`` reuses a series built for the same trust,
    measure and excluded wards (as the sensitivity variants do).
    """
    design = trust_design(data, trust_code, params.exclude_wards)
    empty = pd.DataFrame()
    if design.kind == "none":
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
            "cov_type": "cluster",
        }
    try:
        if series is None:
            series = build(data, trust_code, measure, exclude=params.exclude_wards)
        res = fit_its(series, outcome="count", time="month", exposure="occupied_bed_days", **opts)
    except NotEstimableError as exc:
        return MeasureITS(trust_code, measure, "not_estimable", str(exc), design, None, empty)
    except (ValueError, np.linalg.LinAlgError) as exc:
        logger.warning("ITS failed for %s %s: %s", trust_code, measure, exc)
        return MeasureITS(trust_code, measure, "failed", str(exc), design, None, empty)
    few = min(res.n_pre, res.n_post)
    message = ""
    if design.kind == "summed" and few < FEW_POINTS:
        message = (
            f"only {few} points in a segment: fewer than {FEW_POINTS} gives unstable estimates"
        )
    return MeasureITS(trust_code, measure, "ok", message, design, res, series)


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


def sensitivity_variants(p: EffectiveTrustParams) -> dict[str, EffectiveTrustParams]:
    """The primary model and its alternatives: other families, phase-in 0/3/6 months, with
    and without seasonality."""
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
    return variants


def sensitivity_rows(
    data: ProgrammeData, trust_code: str, measure: str, params: EffectiveTrustParams
) -> list[dict[str, object]]:
    """One ``its_sensitivity.csv`` row per variant (see :func:`sensitivity_variants`)."""
    rows = []
    series = None  # the same wards in every variant: build the series once
    for variant, p in sensitivity_variants(params).items():
        m = fit_trust_its(data, trust_code, measure, p, series)
        series = m.series if len(m.series) else None
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
    return rows


LANEY_P = 0.01


def choose_chart(counts: pd.Series, bed_days: pd.Series) -> tuple[bool, float, float]:
    """Laney's u′ when the Pearson χ² test finds over-dispersion (p < 0.01), else u.

    Returns (laney, dispersion, p-value).
    """
    dispersion, p = overdispersion_test(counts, bed_days)
    return p < LANEY_P, dispersion, p


def trust_spc(
    data: ProgrammeData, trust_code: str, measure: str, params: ProgrammeParams
) -> tuple[ControlChartResult | None, pd.DataFrame, str]:
    """u or u′ chart of the trust's monthly rate per 1,000 occupied bed days.

    The participating wards' summed series (all wards for a trust with none participating).
    The centre line (and Laney's sigma_z) come from the baseline (the months before the
    earliest start) when it has at least 12 months, so that a change after the start shows as
    special cause; otherwise from all points. u′ is chosen over u by :func:`choose_chart` on
    the same baseline. Returns (result or None, the series charted, the series' description).
    """
    trust_params = params.for_trust(trust_code)
    design = trust_design(data, trust_code, trust_params.exclude_wards)
    participating = design.kind != "none"
    series = trust_series(
        data,
        trust_code,
        measure,
        participating_only=participating,
        exclude=trust_params.exclude_wards,
    )
    series = series[series["rate_per_1000_obd"].notna()].reset_index(drop=True)
    label = "participating wards" if participating else "all wards"
    if len(series) < 2:
        return None, series, label
    freeze = None
    if participating:
        n_base = int((series["month"] < min(design.starts)).sum())
        freeze = n_base if n_base >= 12 else None
    base = slice(0, freeze)
    laney, _, _ = choose_chart(series["count"].iloc[base], series["occupied_bed_days"].iloc[base])
    res = u_chart(
        series["count"],
        series["occupied_bed_days"],
        laney=laney,
        multiply=1000,
        freeze=freeze,
        dates=series["month"],
        improvement=params.measure(measure).direction,
    )
    return res, series, label


def spc_row(
    trust_code: str, measure: str, res: ControlChartResult | None, label: str
) -> dict[str, object]:
    """One ``spc_signals.csv`` row."""
    row: dict[str, object] = dict.fromkeys(SPC_COLUMNS, math.nan)
    row.update(trust_code=trust_code, measure=measure, series=label)
    if res is None:
        row.update(n_points=0, chart="", last_point_type="", variation_icon="", assurance_icon="")
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
    )
    return row


#: one trust's rows of each per-trust table (``its_effects``, ``spc_signals``,
#: ``its_sensitivity``): what a trust notebook hands to ``rrp-eval run``
TrustRows = dict[str, list[dict[str, object]]]
TRUST_TABLES = ("its_effects", "spc_signals", "its_sensitivity")


def trust_rows(
    data: ProgrammeData,
    params: ProgrammeParams,
    trust: str,
    *,
    its: Callable[[str], MeasureITS] | None = None,
    spc: Callable[[str], tuple[ControlChartResult | None, pd.DataFrame, str]] | None = None,
    sensitivity: Callable[[str], list[dict[str, object]]] | None = None,
) -> TrustRows:
    """One trust's rows of ``its_effects``, ``spc_signals`` and ``its_sensitivity`` for every
    analysed measure. ``its``, ``spc`` and ``sensitivity`` (measure -> fit) let a notebook
    pass the fits it has already made; by default they are fitted here."""
    own = params.for_trust(trust)
    its = its or (lambda m: fit_trust_its(data, trust, m, own))
    spc = spc or (lambda m: trust_spc(data, trust, m, params))
    sensitivity = sensitivity or (lambda m: sensitivity_rows(data, trust, m, own))
    rows: TrustRows = {name: [] for name in TRUST_TABLES}
    for measure in params.analysed_measures(data.measures):
        rows["its_effects"].append(its(measure).row())
        res, _, label = spc(measure)
        rows["spc_signals"].append(spc_row(trust, measure, res, label))
        rows["its_sensitivity"] += sensitivity(measure)
    return rows


def tables_from_rows(
    rows: list[TrustRows],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``its_effects``, ``spc_signals`` and ``its_sensitivity`` from the trusts' rows, in the
    order given."""
    return (
        its_effects_table([r for t in rows for r in t["its_effects"]]),
        pd.DataFrame([r for t in rows for r in t["spc_signals"]], columns=SPC_COLUMNS),
        pd.DataFrame([r for t in rows for r in t["its_sensitivity"]], columns=SENSITIVITY_COLUMNS),
    )


def write_trust_rows(path: Path, rows: TrustRows) -> None:
    """Save a trust's rows as JSON (numbers exactly; NaN as ``NaN``), atomically."""

    def plain(value: object) -> object:
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} in a table row")

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(rows, default=plain), encoding="utf-8")
    tmp.replace(path)


def read_trust_rows(path: Path) -> TrustRows:
    """The rows :func:`write_trust_rows` saved."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, dict) or set(rows) != set(TRUST_TABLES):
        raise ValueError(f"{path}: not a trust's table rows")
    return rows


def programme_tables(
    data: ProgrammeData, params: ProgrammeParams, trusts: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``its_effects`` and ``spc_signals`` for the given trusts and every analysed measure."""
    its, spc, _ = tables_from_rows(
        [trust_rows(data, params, t, sensitivity=lambda m: []) for t in trusts]
    )
    return its, spc


def programme_effect_table(
    data: ProgrammeData,
    params: ProgrammeParams,
    its: pd.DataFrame,
    panel: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``programme_effects``: the random-effects meta-analyses of the trusts' ITS, the pooled
    GEE on the ward panel and the controlled analyses against comparison wards, for every
    analysed measure. ``panel`` is :func:`panel_effect_table`'s result when already made."""
    if panel is None:
        panel = panel_effect_table(data, params)
    return pd.concat([programme_effects(its), panel], ignore_index=True)


def panel_effect_table(data: ProgrammeData, params: ProgrammeParams) -> pd.DataFrame:
    """The rows of ``programme_effects`` fitted on the ward panel (GEE and the controlled
    analyses), which need no trust's ITS (no rows when every trust failed validation)."""
    from rrp_eval.models.meta import PROGRAMME_COLUMNS

    if data.wards.empty or data.ward_month.empty:
        return pd.DataFrame(columns=PROGRAMME_COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gee = gee_rows(
            data.ward_month,
            data.wards,
            params.analysed_measures(data.measures),
            params.horizon_months,
        )
        controlled = controlled_rows(
            data.ward_month,
            data.wards,
            params.analysed_measures(data.measures),
            params.horizon_months,
        )
    return pd.concat([gee, controlled], ignore_index=True)


def sensitivity_table(
    data: ProgrammeData, params: ProgrammeParams, trusts: list[str]
) -> pd.DataFrame:
    """``its_sensitivity`` for the given trusts and every analysed measure."""
    rows = [
        row
        for trust in trusts
        for measure in params.analysed_measures(data.measures)
        for row in sensitivity_rows(data, trust, measure, params.for_trust(trust))
    ]
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def _pct(rr: float) -> str:
    """A rate ratio as a percentage change in words."""
    change = (rr - 1) * 100
    if abs(change) < 0.5:
        return "no different"
    return f"{abs(change):.0f}% {'lower' if change < 0 else 'higher'}"


def its_reading(m: MeasureITS, label: str, direction: str = "decrease") -> str:
    """A plain-English reading of an ITS, written from its numbers."""
    if m.result is None:
        return f"{label}: no interrupted time-series estimate ({m.message})."
    res = m.result
    lvl = res.effect("level_change")
    start = m.design.starts[0] if len(m.design.starts) == 1 else None
    when = (
        f"when the wards joined ({start:%B %Y})" if start is not None else ("when each ward joined")
    )
    if res.spec.phase_in:
        when = f"{res.spec.phase_in} months after that (the end of the phase-in)"
    text = (
        f"{label}: {when}, the rate was {_pct(lvl.estimate)} than the earlier trend predicts "
        f"(rate ratio {lvl.estimate:.2f}, 95% CI {lvl.ci_low:.2f} to {lvl.ci_high:.2f})."
    )
    if res.spec.slope_change:
        slope = res.effect("slope_change")
        per_month = (slope.estimate - 1) * 100
        h = res.spec.horizon
        rr_h = res.rr_h
        text += (
            f" After that it changed by a further {per_month:+.1f}% a month relative to the "
            f"counterfactual (95% CI {(slope.ci_low - 1) * 100:+.1f}% to "
            f"{(slope.ci_high - 1) * 100:+.1f}%), so {h} months after the start the rate was an "
            f"estimated {_pct(rr_h.estimate)} than expected (rate ratio {rr_h.estimate:.2f}, "
            f"{rr_h.ci_low:.2f} to {rr_h.ci_high:.2f})."
        )
        if h > res.h_end:
            text += (
                f" That is beyond the last month of data (month {res.h_end:.0f}): an extrapolation."
            )
    averted = res.events_averted()
    text += (
        f" Over the {res.n_post} months after the start that is an estimated "
        f"{averted.estimate:,.0f} episodes averted (95% CI {averted.ci_low:,.0f} to "
        f"{averted.ci_high:,.0f}; a negative number means extra episodes)."
    )
    better = {"decrease": lvl.ci_high < 1, "increase": lvl.ci_low > 1}.get(direction)
    worse = {"decrease": lvl.ci_low > 1, "increase": lvl.ci_high < 1}.get(direction)
    if better:
        text += " The interval excludes no change: evidence of an improvement at the start."
    elif worse:
        text += " The interval excludes no change: the rate rose, which is a concern."
    else:
        text += (
            " The interval includes no change, so the data are consistent with no effect at the "
            "start."
        )
    family = {
        "negbin": "negative binomial",
        "quasipoisson": "quasi-Poisson",
        "poisson": "Poisson",
    }.get(res.spec.family, res.spec.family)
    text += f" Model: {family}"
    if res.spec.family_reason.startswith("auto"):
        text += " (chosen by the over-dispersion tests)"
    if res.rho is not None:
        text += f", errors allowing for autocorrelation (AR(1), ρ = {res.rho:.2f})"
    elif res.spec.cov_type == "cluster":
        text += ", errors clustered by ward"
    text += "."
    if m.message:
        text += f" Caution: {m.message}."
    return text
