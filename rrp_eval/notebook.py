"""What the notebooks call: set-up from their parameters, then one call per section.

Every value shown passes through the disclosure rule unless the run is internal; user text
(trust and ward names) is escaped before it reaches the page.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.data.synthetic import data_location
from rrp_eval.data.validate import ProgrammeData, load_programme
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluation import (
    MeasureITS,
    fit_trust_its,
    its_reading,
    programme_effect_table,
    programme_tables,
    sensitivity_rows,
    trust_rows,
    trust_spc,
    write_trust_rows,
)
from rrp_eval.evaluation import headline_measure as _headline_measure
from rrp_eval.models.controlled import (
    callaway_santanna,
    etwfe_poisson,
    event_time_panel,
    event_time_rates,
)
from rrp_eval.models.meta import (
    aim_attainment,
    breakdown,
    funnel_limits,
    funnel_table,
    rate_intervals,
    ward_changes,
)
from rrp_eval.models.spc import run_chart
from rrp_eval.params import ProgrammeParams, load_params
from rrp_eval.plots import (
    icon_description,
    plot_caterpillar,
    plot_completeness,
    plot_event_study,
    plot_event_time_rates,
    plot_forest,
    plot_funnel,
    plot_glance,
    plot_its,
    plot_run_chart,
    plot_small_multiples,
    plot_spc,
)
from rrp_eval.prepare import (
    programme_series,
    trust_design,
    trust_series,
    ward_series,
    with_derived_measures,
    without_excluded_wards,
)

FIGURE_DPI = 100
MIN_BREAKDOWN_WARDS = 3  # a group of fewer wards could reveal one ward's figures


@dataclass(eq=False)
class Context:
    """A notebook's inputs, validated, and the results it has computed so far."""

    params: ProgrammeParams
    data: ProgrammeData
    rule: DisclosureRule
    trust_code: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def measures(self) -> tuple[str, ...]:
        return self.params.analysed_measures(self.data.measures)

    @property
    def trust_name(self) -> str:
        wards = self.data.wards
        return str(wards.loc[wards["trust_code"] == self.trust_code, "trust_name"].iloc[0])

    def label(self, measure: str) -> str:
        return self.params.measure(measure).label or measure


def setup(
    *,
    trust_code: str | None = None,
    params_dir: str | Path | None = None,
    data: str | Path | None = None,
    internal: bool = False,
    tables_dir: str | Path | None = None,
) -> Context:
    """Validate a notebook's parameters and load the data.

    Parameters
    ----------
    trust_code : str, optional
        The trust of a trust evaluation; must be in the data and free of data errors.
    params_dir : str or Path, optional
        Folder with ``programme.yaml``; blank or None gives the defaults.
    data : str or Path, optional
        The data folder or workbook; blank or None uses ``data:`` of the parameters (the
        demonstration programme by default).
    internal : bool, default False
        Show unsuppressed small numbers (the page is then marked "internal: not for sharing").
    tables_dir : str or Path, optional
        A folder with ``its_effects``, ``spc_signals`` and ``programme_effects`` as Parquet,
        computed for the same data by ``rrp-eval run``: the programme report uses them instead
        of fitting every trust again. Blank computes them.

    Raises
    ------
    ValueError
        Naming the parameter and what is allowed, before any computation.
    """
    if not isinstance(internal, bool):
        raise ValueError(f"internal={internal!r} must be True or False")
    params = load_params(params_dir or None)
    path = data_location(data, params)
    if not path.exists():
        raise ValueError(f"data={str(path)!r}: no such file or folder")
    programme = load_programme(path, params, allow_trust_errors=True)
    programme = with_derived_measures(without_excluded_wards(programme, params.excluded_wards))
    if trust_code is not None:
        if trust_code not in programme.trusts:
            raise ValueError(
                f"trust_code={trust_code!r} is not in the data; trusts are "
                f"{', '.join(programme.trusts)}"
            )
        failed = programme.report.failed_trusts.get(trust_code)
        if failed:
            lines = "\n".join(str(p) for p in failed[:20])
            raise ValueError(f"the data for {trust_code} have errors:\n{lines}")
    names = dict(zip(programme.wards["trust_code"], programme.wards["trust_name"], strict=True))
    if trust_code is None:  # programme-level pages analyse the trusts whose data are usable
        programme = programme.without_trusts(programme.report.failed_trusts)
    rule = DisclosureRule.from_params(params.disclosure, internal=internal)
    literal_text()
    ctx = Context(params, programme, rule, trust_code)
    ctx.cache["trust_names"] = names  # failed trusts included (their rows are not analysed)
    if tables_dir:
        folder = Path(tables_dir)
        try:
            ctx.cache["tables"] = tuple(
                pd.read_parquet(folder / f"{name}.parquet") for name in PARQUET_TABLES
            )
        except OSError as exc:
            raise ValueError(f"tables_dir={str(folder)!r}: {exc}") from exc
    return ctx


PARQUET_TABLES = ("its_effects", "spc_signals", "programme_effects")


def literal_text() -> None:
    """Figures show text literally: no figure of the suite uses math text, and a name such as
    ``$\\frac$ ward`` from the data would otherwise be parsed as TeX (and can fail to draw)."""
    import matplotlib

    matplotlib.rcParams["text.parse_math"] = False


# --- output helpers ----------------------------------------------------------------------


def _display(obj: Any, **kwargs: Any) -> None:
    from IPython.display import display

    display(obj, **kwargs)


def _measure_or_headline(ctx: Context, measure: str | None) -> str | None:
    """``measure`` if the data allow it (None, with a sentence, if not); default the headline."""
    if measure is None:
        return headline_measure(ctx)
    if measure not in ctx.params.analysed_measures(ctx.data.measures):
        paragraph(f"{ctx.label(measure)}: not recorded in these data.")
        return None
    return measure


def heading(text: str, level: int = 2) -> None:
    """A heading; the text is escaped."""
    from IPython.display import HTML

    _display(HTML(f"<h{level}>{html.escape(text)}</h{level}>"))


def paragraph(text: str) -> None:
    """A paragraph of escaped text."""
    from IPython.display import HTML

    _display(HTML(f"<p>{html.escape(text)}</p>"))


def table(frame: pd.DataFrame, caption: str | None = None) -> None:
    """A table with header cells and escaped values."""
    from IPython.display import HTML

    body = frame.to_html(index=False, border=0, classes="rrp-table", escape=True, na_rep="")
    if caption:
        end = body.index(">", body.index("<table")) + 1
        body = f"{body[:end]}<caption>{html.escape(caption)}</caption>{body[end:]}"
    _display(HTML(body))


def figure(fig: Any, alt: str) -> None:
    """A figure embedded as PNG with alt text (the report template puts it on the <img>)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    # 64 colours keep flat chart colours and anti-aliasing and make the page a third the size
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    small = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
        small, format="PNG", optimize=True
    )
    data = base64.b64encode(small.getvalue()).decode("ascii")
    _display({"image/png": data, "text/plain": alt}, raw=True, metadata={"image/png": {"alt": alt}})


def _ci(est: float, low: float, high: float, digits: int = 2) -> str:
    if not np.isfinite(est):
        return ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{est:.{digits}f} (no interval)"
    return f"{est:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def _ci_of(effect: dict) -> str:
    return _ci(effect["estimate"], effect["ci_low"], effect["ci_high"])


def _averted(its: MeasureITS) -> str:
    """Events averted over the fitted post period (a model estimate: not disclosive)."""
    if its.result is None:
        return ""
    a = its.result.events_averted()
    return f"{a.estimate:,.0f} ({a.ci_low:,.0f} to {a.ci_high:,.0f})"


def _interval(low: float, high: float, digits: int = 2) -> str:
    return "" if not np.isfinite(low) else f"{low:.{digits}f} to {high:.{digits}f}"


def _month(value: Any) -> str:
    return "" if pd.isna(value) else f"{pd.Timestamp(value):%b %Y}"


# --- the trust evaluation ----------------------------------------------------------------


def trust_title(ctx: Context) -> None:
    """Title and how the trust's ITS is set up."""
    heading(f"{ctx.trust_name} ({ctx.trust_code})", 1)
    design = trust_design(
        ctx.data, ctx.trust_code, ctx.params.for_trust(ctx.trust_code).exclude_wards
    )
    paragraph(
        f"Evaluation of {ctx.params.programme}. Interrupted time series: {design.description}. "
        f"Rates are per 1,000 occupied bed days."
    )


def trust_wards(ctx: Context) -> None:
    """The trust's wards and their data coverage (this trust's wards only)."""
    wards = ctx.data.wards[ctx.data.wards["trust_code"] == ctx.trust_code]
    wm = ctx.data.ward_month[ctx.data.ward_month["trust_code"] == ctx.trust_code]
    cover = wm.groupby("ward_id").agg(
        first=("month", "min"),
        last=("month", "max"),
        months=("month", "nunique"),
        bed_days=("occupied_bed_days", "sum"),
    )
    out = wards.merge(cover, left_on="ward_id", right_index=True, how="left")
    shown = pd.DataFrame(
        {
            "Ward": out["ward_id"],
            "Name": out.get("ward_name", pd.Series("", index=out.index)).fillna(""),
            "Type": out["ward_type"].str.replace("_", " "),
            "Joined": out["start_month"].map(_month).replace("", "comparison ward"),
            "Wave": out.get("cohort", pd.Series("", index=out.index)).fillna(""),
            "Months of data": out["months"].fillna(0).astype(int),
            "From": out["first"].map(_month),
            "To": out["last"].map(_month),
            "Occupied bed days": ctx.rule.counts(out["bed_days"]),
        }
    )
    table(shown, "Wards and data coverage")


def _trust_its(ctx: Context, measure: str) -> MeasureITS:
    key = f"its:{measure}"
    if key not in ctx.cache:
        ctx.cache[key] = fit_trust_its(
            ctx.data, ctx.trust_code, measure, ctx.params.for_trust(ctx.trust_code)
        )
    return ctx.cache[key]


def _trust_spc(ctx: Context, measure: str) -> tuple[Any, pd.DataFrame, str]:
    key = f"spc:{measure}"
    if key not in ctx.cache:
        ctx.cache[key] = trust_spc(ctx.data, ctx.trust_code, measure, ctx.params)
    return ctx.cache[key]


def spc_summary(ctx: Context) -> None:
    """One row per measure: the chart used, its latest limits and what it says now."""
    rows = []
    for m in ctx.measures:
        res, series, _label = _trust_spc(ctx, m)
        if res is None:
            rows.append(
                {"Measure": ctx.label(m), "Months": len(series), "Variation": "too few points"}
            )
            continue
        last = res.frame.iloc[-1]
        rows.append(
            {
                "Measure": ctx.label(m),
                "Chart": res.chart,
                "Months": len(res.frame),
                "Centre": f"{last['centre']:.1f}",
                "Limits (latest month)": f"{last['lcl']:.1f} to {last['ucl']:.1f}",
                "Variation (latest month)": icon_description(res.variation_icon),
                "Improvement points": int(
                    (res.frame.point_type == "special_cause_improvement").sum()
                ),
                "Concern points": int((res.frame.point_type == "special_cause_concern").sum()),
                "Runs": "non-random" if res.runs.signal else "random",
            }
        )
    table(pd.DataFrame(rows), "Making Data Count summary (rates per 1,000 occupied bed days)")


def spc_charts(ctx: Context) -> None:
    """A u or u′ chart per measure, suppressed points left out."""
    import matplotlib.pyplot as plt

    design = trust_design(ctx.data, ctx.trust_code)
    start = min(design.starts) if design.starts else None
    events = ctx.data.events[ctx.data.events["trust_code"] == ctx.trust_code]
    for m in ctx.measures:
        res, series, label = _trust_spc(ctx, m)
        if res is None:
            paragraph(f"{ctx.label(m)}: too few months with data for a chart.")
            continue
        shown = ctx.rule.rates(
            series["rate_per_1000_obd"], series["count"], series["occupied_bed_days"]
        )
        if shown.isna().all():
            paragraph(
                f"{ctx.label(m)}: every month's numbers are too small to show (latest "
                f"variation: {icon_description(res.variation_icon)})."
            )
            continue
        fig, ax = plt.subplots(figsize=(8, 3.2))
        plot_spc(
            res,
            ax,
            shown=shown.to_numpy(),
            title=f"{ctx.label(m)} ({label})",
            events=events,
            start=start,
        )
        n_hidden = int(shown.isna().sum())
        alt = (
            f"{res.chart} chart of {ctx.label(m)} per 1,000 occupied bed days, {len(series)} "
            f"months; centre line {res.frame['centre'].iloc[-1]:.1f}; latest variation: "
            f"{icon_description(res.variation_icon)}"
            + (f"; {n_hidden} months not shown (small numbers)" if n_hidden else "")
        )
        figure(fig, alt)


def ward_charts(ctx: Context, measure: str | None = None) -> None:
    """Small multiples: one run chart per ward of the trust (its own wards only); ``measure``
    defaults to :func:`headline_measure`."""
    measure = measure or headline_measure(ctx)
    wards = ward_series(ctx.data, ctx.trust_code, measure, participating_only=False)
    panels = []
    for ward, g in wards.groupby("ward_id", sort=True):
        shown = ctx.rule.rates(g["rate_per_1000_obd"], g["count"], g["occupied_bed_days"])
        if shown.notna().sum() < 2:
            continue
        ok = shown.notna().to_numpy()
        panels.append((f"Ward {ward}", run_chart(shown[ok], dates=g["month"][ok]), None))
    if not panels:
        paragraph(f"Too few ward-months can be shown for ward charts of {ctx.label(measure)}.")
        return
    fig = plot_small_multiples(panels, ylabel="per 1,000 bed days")
    figure(
        fig,
        f"Run charts of {ctx.label(measure)} per 1,000 occupied bed days for each of "
        f"{len(panels)} wards, with their medians",
    )


def its_summary(ctx: Context) -> None:
    """The effects of every measure's ITS in one table."""
    rows = []
    for m in ctx.measures:
        its = _trust_its(ctx, m)
        row = its.row()
        rows.append(
            {
                "Measure": ctx.label(m),
                "Status": its.status.replace("_", " "),
                "Level change (rate ratio, 95% CI)": _ci(
                    row["level_rr"], row["level_rr_low"], row["level_rr_high"]
                ),
                "Slope change per month": _ci(
                    row["slope_rr"], row["slope_rr_low"], row["slope_rr_high"], 3
                ),
                f"At {ctx.params.horizon_months} months": _ci(
                    row["rr_h"], row["rr_h_low"], row["rr_h_high"]
                ),
                "Events averted (95% CI)": _averted(its),
                "Model": ""
                if its.result is None
                else its.result.spec.family.replace("negbin", "neg. binomial"),
                "Note": its.message,
            }
        )
    table(pd.DataFrame(rows), "Interrupted time series: rate ratios against the counterfactual")


def its_details(ctx: Context) -> None:
    """Per measure: the chart with its counterfactual and a reading written from the numbers."""
    import matplotlib.pyplot as plt

    for m in ctx.measures:
        its = _trust_its(ctx, m)
        heading(ctx.label(m), 3)
        direction = ctx.params.measure(m).direction
        if its.result is not None:
            series = trust_series(
                ctx.data,
                ctx.trust_code,
                m,
                exclude=ctx.params.for_trust(ctx.trust_code).exclude_wards,
            )
            shown = pd.DataFrame(
                {
                    "month": series["month"],
                    "rate": ctx.rule.rates(
                        series["rate_per_1000_obd"], series["count"], series["occupied_bed_days"]
                    ),
                }
            )
            fig, ax = plt.subplots(figsize=(8, 3.4))
            plot_its(
                its.result,
                ax,
                shown=shown,
                title=f"{ctx.label(m)}: observed, model and counterfactual",
            )
            figure(
                fig,
                f"Interrupted time series of {ctx.label(m)}: observed monthly rate, fitted "
                "model and the counterfactual without the programme",
            )
        paragraph(its_reading(its, ctx.label(m), direction))


def _trust_sensitivity(ctx: Context, measure: str) -> list[dict[str, object]]:
    key = f"sensitivity:{measure}"
    if key not in ctx.cache:
        ctx.cache[key] = sensitivity_rows(
            ctx.data, ctx.trust_code, measure, ctx.params.for_trust(ctx.trust_code)
        )
    return ctx.cache[key]


def its_sensitivity(ctx: Context, measure: str = "restrictive_practice") -> None:
    """The primary model beside its alternatives for one measure."""
    if measure not in ctx.measures:
        return
    rows = _trust_sensitivity(ctx, measure)
    shown = pd.DataFrame(
        {
            "Model": [r["variant"] for r in rows],
            "Family": [r["family"] for r in rows],
            "Phase-in": [r["phase_in"] for r in rows],
            "Harmonics": [r["harmonics"] for r in rows],
            "Level change": [
                _ci(r["level_rr"], r["level_rr_low"], r["level_rr_high"]) for r in rows
            ],
            "Slope change per month": [
                _ci(r["slope_rr"], r["slope_rr_low"], r["slope_rr_high"], 3) for r in rows
            ],
            f"At {ctx.params.horizon_months} months": [
                _ci(r["rr_h"], r["rr_h_low"], r["rr_h_high"]) for r in rows
            ],
            "Status": [
                r["status"].replace("_", " ") + (f": {r['message']}" if r["message"] else "")
                for r in rows
            ],
        }
    )
    table(shown, f"Sensitivity: {ctx.label(measure)}")


def save_rows(ctx: Context, rows_dir: str | Path | None) -> None:
    """Save this trust's rows of the run's tables (ITS effects, SPC signals, sensitivity
    analyses for every measure) as ``<rows_dir>/<trust>.json``, from the fits this notebook
    made, so that ``rrp-eval run`` builds its tables from the very numbers in the report.
    Blank ``rows_dir`` (interactive use) saves nothing."""
    if not rows_dir:
        return
    assert ctx.trust_code is not None, "save_rows needs a trust evaluation"
    rows = trust_rows(
        ctx.data,
        ctx.params,
        ctx.trust_code,
        its=lambda m: _trust_its(ctx, m),
        spc=lambda m: _trust_spc(ctx, m),
        sensitivity=lambda m: _trust_sensitivity(ctx, m),
    )
    write_trust_rows(Path(rows_dir) / f"{ctx.trust_code}.json", rows)


# --- the programme evaluation ------------------------------------------------------------


def _programme_tables(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if "tables" not in ctx.cache:
        its, spc = programme_tables(ctx.data, ctx.params, ctx.data.trusts)
        ctx.cache["tables"] = (its, spc, programme_effect_table(ctx.data, ctx.params, its))
    return ctx.cache["tables"]


def programme_title(ctx: Context) -> None:
    heading(ctx.params.programme, 1)
    wards = ctx.data.wards
    part = wards["start_month"].notna()
    months = ctx.data.ward_month["month"]
    paragraph(
        f"{len(ctx.data.trusts)} trusts, {int(part.sum())} participating wards and "
        f"{int((~part).sum())} comparison wards; data from {_month(months.min())} to "
        f"{_month(months.max())}."
    )


HEADLINE_METHODS = ("controlled", "random_effects_reml_hk")


def glance_figure(ctx: Context, measure: str | None = None) -> tuple[Any, str]:
    """The 'programme at a glance' figure and its alt text (figures rounded for sharing);
    ``measure`` defaults to :func:`headline_measure`."""
    measure = measure or headline_measure(ctx)
    wm, wards = ctx.data.ward_month, ctx.data.wards
    _, _, pooled = _programme_tables(ctx)
    # the headline: the controlled estimate where comparison wards allow one, else the
    # meta-analysis (the two recommended by validation/programme_coverage.md)
    head = pd.DataFrame()
    for method in HEADLINE_METHODS:
        head = pooled[
            (pooled.measure == measure) & (pooled.effect == "level_rr") & (pooled.method == method)
        ]
        if len(head):
            break
    changes = ward_changes(wm, wards, measure)
    att = aim_attainment(changes) if len(changes) else None
    part = wards["start_month"].notna()
    events = wm[measure].sum() if measure in wm else float("nan")
    facts = [
        (f"{len(ctx.data.trusts)}", "trusts" if part.any() else "providers"),
        (
            (f"{int(part.sum())}", f"participating wards (+{int((~part).sum())} comparison)")
            if part.any()
            else ("0", "programme start dates: a descriptive summary")
        ),
        (
            f"{wm['month'].nunique()}",
            f"months ({_month(wm['month'].min())} to {_month(wm['month'].max())})",
        ),
        (ctx.rule.count(float(wm["occupied_bed_days"].sum())), "occupied bed days"),
        (ctx.rule.count(float(events)), f"episodes of {ctx.label(measure).split(' (')[0].lower()}"),
    ]
    if len(head):
        h = head.iloc[0]
        big = f"{(1 - h.estimate) * 100:.0f}% {'lower' if h.estimate < 1 else 'higher'}"
        text = (
            f"{ctx.label(measure)} when wards joined: rate ratio {h.estimate:.2f} (95% CI "
            f"{h.ci_low:.2f} to {h.ci_high:.2f}), "
            + (
                f"against comparison wards, {int(h.n_trusts)} trusts"
                if h.method == "controlled"
                else f"pooled over {int(h.n_trusts)} trusts"
            )
        )
        if att is not None:
            a = att.iloc[0]
            text += f"; {a.share:.0%} of wards met the 25% aim"
    elif not part.any():
        big, text = "No programme effect", "the data have no start dates, so nothing is evaluated"
    else:
        big, text = "No pooled estimate", "too few trusts with an estimate"
    s = programme_series(ctx.data, measure)
    s = s.assign(rate=s["rate_per_1000_obd"])
    fig = plot_glance(facts, (big, text), s, title=f"{ctx.params.programme}: at a glance")
    alt = f"Programme at a glance: {'; '.join(f'{v} {k}' for v, k in facts)}. {big}: {text}."
    return fig, alt


def glance(ctx: Context, measure: str | None = None) -> None:
    """The one-page summary at the top of the programme report."""
    fig, alt = glance_figure(ctx, measure)
    figure(fig, alt)


def trust_overview(ctx: Context, measure: str | None = None) -> None:
    """Every trust: design and its ITS effects for one measure."""
    measure = _measure_or_headline(ctx, measure)
    if measure is None:
        return
    its, _, _ = _programme_tables(ctx)
    rows = its[its["measure"] == measure]
    wards = ctx.data.wards
    out = []
    for r in rows.itertuples():
        tw = wards[wards["trust_code"] == r.trust_code]
        out.append(
            {
                "Trust": r.trust_code,
                "Name": ctx.cache.get("trust_names", {}).get(r.trust_code, ""),
                "Wave": ", ".join(sorted(tw["cohort"].dropna().unique())),
                "Participating wards": int(tw["start_month"].notna().sum()),
                "Design": r.design,
                "Status": r.status.replace("_", " "),
                "Level change": _ci(r.level_rr, r.level_rr_low, r.level_rr_high),
                f"At {ctx.params.horizon_months} months": _ci(r.rr_h, r.rr_h_low, r.rr_h_high),
                "Note": r.message,
            }
        )
    table(pd.DataFrame(out), f"Trusts: {ctx.label(measure)}")


def pooled_effects(ctx: Context) -> None:
    """Random-effects pooled level change and effect at the horizon, every measure (REML,
    Hartung-Knapp interval: the meta-analysis validation/programme_coverage.md recommends)."""
    _, _, pooled = _programme_tables(ctx)
    dl = pooled[
        (pooled["method"] == "random_effects_reml_hk") & pooled["effect"].isin(["level_rr", "rr_h"])
    ]
    shown = pd.DataFrame(
        {
            "Measure": dl["measure"].map(ctx.label),
            "Effect": dl["effect"].map(
                {"level_rr": "level change", "rr_h": f"at {ctx.params.horizon_months} months"}
            ),
            "Pooled rate ratio (95% CI)": [
                _ci(a, b, c) for a, b, c in zip(dl.estimate, dl.ci_low, dl.ci_high, strict=True)
            ],
            "Prediction interval": [
                _interval(a, b) for a, b in zip(dl.pi_low, dl.pi_high, strict=True)
            ],
            "I²": dl["i2"].map(lambda v: f"{v * 100:.0f}%"),
            "Trusts": dl["n_trusts"],
        }
    )
    table(shown, "Pooled effects: random-effects meta-analysis (REML, Hartung-Knapp interval)")


def forest(ctx: Context, measure: str | None = None, effect: str = "level_rr") -> None:
    """Forest plot of the trusts' effects and the pooled estimate."""
    measure = _measure_or_headline(ctx, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    its, _, pooled = _programme_tables(ctx)
    rows = its[(its["measure"] == measure) & (its["status"] == "ok")]
    t = pd.DataFrame(
        {
            "label": rows["trust_code"],
            "estimate": rows[effect],
            "ci_low": rows[f"{effect}_low"],
            "ci_high": rows[f"{effect}_high"],
        }
    )
    p = pooled[
        (pooled.measure == measure)
        & (pooled.effect == effect)
        & (pooled.method == "random_effects_reml_hk")
    ]
    what = (
        "level change"
        if effect == "level_rr"
        else f"rate ratio at {ctx.params.horizon_months} months"
    )
    fig, ax = plt.subplots(figsize=(7, 0.32 * (len(t) + 3) + 0.8))
    plot_forest(
        t, p.iloc[0].to_dict() if len(p) else None, ax, title=f"{ctx.label(measure)}: {what}"
    )
    est = p.iloc[0] if len(p) else None
    alt = f"Forest plot of {len(t)} trusts' {what} for {ctx.label(measure)}" + (
        f"; pooled {est.estimate:.2f} (95% CI {est.ci_low:.2f} to {est.ci_high:.2f})"
        if est is not None
        else ""
    )
    figure(fig, alt)


def funnel(ctx: Context, measure: str | None = None, months: int = 12) -> None:
    """Funnel plot of the trusts' rates over the latest months (all their wards)."""
    measure = _measure_or_headline(ctx, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    wm = ctx.data.ward_month
    last = wm["month"].max()
    recent = wm[
        (wm["month"] > last - pd.DateOffset(months=months))
        & wm[measure].notna()
        & (wm["occupied_bed_days"] > 0)
    ]
    g = recent.groupby("trust_code")[[measure, "occupied_bed_days"]].sum()
    if g.empty or g[measure].sum() == 0:
        paragraph(
            f"{ctx.label(measure)}: no trust with usable data recorded it in the last {months} "
            "months, so there is no funnel plot."
        )
        return
    table_, rate, phi = funnel_table(g[measure], g["occupied_bed_days"], pd.Series(g.index))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    plot_funnel(
        table_,
        rate,
        phi,
        funnel_limits,
        ax,
        title=f"{ctx.label(measure)}: the last {months} months, every ward",
    )
    outside = table_[table_["position"] != "within"]
    figure(
        fig,
        f"Funnel plot of {len(table_)} trusts' {ctx.label(measure)} rates per 1,000 "
        f"occupied bed days against bed days; {len(outside)} outside the 95% limits",
    )
    ci = rate_intervals(g[measure], g["occupied_bed_days"]).assign(label=g.index)
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(ci) + 1.2))
    plot_caterpillar(ci, rate, ax, title="The same rates ranked, with Poisson 95% intervals")
    figure(
        fig,
        f"Caterpillar plot of {len(ci)} trusts' {ctx.label(measure)} rates, ranked, with exact "
        "Poisson 95% intervals",
    )
    paragraph(
        f"Programme rate {rate:.1f} per 1,000 occupied bed days. "
        + (
            f"The trusts vary far more than chance allows (over-dispersion φ = {phi:.1f}), largely "
            "because they run different kinds of wards, so the limits are widened accordingly. "
            if phi > 1
            else ""
        )
        + "A funnel plot shows which trusts differ by more than chance; a league table would "
        "rank trusts whose differences are mostly noise and case-mix (Spiegelhalter 2005). The "
        "ranked chart's Poisson intervals leave out that extra variation, so its ranks look "
        "surer than they are: read it with the funnel's widened limits in mind."
    )


def aims(ctx: Context, measure: str | None = None) -> None:
    """Share of participating wards meeting the programmes' aims, and where change happened."""
    measure = _measure_or_headline(ctx, measure)
    if measure is None:
        return
    changes = ward_changes(ctx.data.ward_month, ctx.data.wards, measure)
    if changes.empty:
        paragraph("No ward has enough data in both windows to judge the aim.")
        return
    att = aim_attainment(changes)
    table(
        pd.DataFrame(
            {
                "Aim": att["aim"],
                "Wards meeting it": att["wards_meeting"],
                "Wards assessed": att["wards"],
                "Share (95% CI)": [
                    f"{s:.0%} ({a:.0%} to {b:.0%})"
                    for s, a, b in zip(att["share"], att["ci_low"], att["ci_high"], strict=True)
                ],
            }
        ),
        f"{ctx.label(measure)}: wards whose rate fell by the aim (months 6-17 after joining "
        "against the 12 months before)",
    )
    for by, label in (("ward_type", "Ward type"), ("cohort", "Wave"), ("region", "Region")):
        if ctx.data.wards[by].isna().all():
            continue  # not recorded in these data
        b = breakdown(changes, ctx.data.wards, by)
        small = b["wards"] < MIN_BREAKDOWN_WARDS  # withheld as in the breakdowns table
        withheld = f"fewer than {MIN_BREAKDOWN_WARDS} wards"
        table(
            pd.DataFrame(
                {
                    label: b[by].astype(str).str.replace("_", " "),
                    "Wards": b["wards"],
                    "Rate ratio, after / before (95% CI)": [
                        withheld if s else _ci(r, lo, hi)
                        for r, lo, hi, s in zip(b.ratio, b.ci_low, b.ci_high, small, strict=True)
                    ],
                    "Met the 25% aim": [
                        "-" if s else f"{v:.0%}" for v, s in zip(b["met_25"], small, strict=True)
                    ],
                }
            ),
            f"{ctx.label(measure)} by {label.lower()} (before-after, not controlled)",
        )


def controlled(ctx: Context, measure: str | None = None) -> None:
    """Programme or secular trend? Participating wards against wards that never joined."""
    measure = _measure_or_headline(ctx, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    panel = event_time_panel(ctx.data.ward_month, ctx.data.wards, measure)
    label = ctx.label(measure)
    short = label.split(" (")[0]
    rates = event_time_rates(panel)
    rates["rate_per_1000_obd"] = ctx.rule.aggregate_rates(
        rates["rate_per_1000_obd"], rates["count"], rates["occupied_bed_days"]
    )
    shown = rates.dropna(subset=["rate_per_1000_obd"])
    if shown.empty:
        paragraph(f"Too few {label.lower()} events to show rates by month since joining.")
        return
    fig, ax = plt.subplots(figsize=(8, 3.0))
    plot_event_time_rates(shown, ax, title=f"{short}: participating wards, aligned on joining")
    figure(
        fig,
        f"Line chart of participating wards' {label} rate per 1,000 occupied bed days by month "
        f"since joining, from {int(shown['event_time'].min())} to "
        f"{int(shown['event_time'].max())}",
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = etwfe_poisson(panel, measure, ctx.params.horizon_months)
    except ValueError as err:
        paragraph(f"No controlled analysis: {err}.")
        return
    cs = callaway_santanna(panel).rename(
        columns={"ratio": "estimate", "ratio_low": "ci_low", "ratio_high": "ci_high"}
    )
    fig, ax = plt.subplots(figsize=(8, 4.2))
    plot_event_study(
        res.event_study,
        ax,
        sensitivity=cs,
        title=f"{short}: change against wards that never joined",
    )
    lag = res.event_study[res.event_study["kind"] == "lag"]
    figure(
        fig,
        f"Event-study chart of the {label} rate ratio against the counterfactual by month since "
        f"joining; after joining the ratios range from {lag['estimate'].min():.2f} to "
        f"{lag['estimate'].max():.2f}",
    )
    e = res.effects
    h = ctx.params.horizon_months
    paragraph(
        f"Against {res.n_comparison_wards} comparison wards and wards that had not yet joined, "
        f"with a common calendar-month effect (secular trend and season), {label.lower()} "
        f"changed by a ratio of {_ci_of(e['level_rr'])} "
        f"when wards joined and {_ci_of(e['rr_h'])} "
        f"{h} months later ({res.n_wards} participating wards in {res.n_cohorts} cohorts, "
        f"{res.n_trusts} trusts; extended two-way fixed-effects Poisson model, Wooldridge 2023, "
        "standard errors clustered by trust). "
        + _placebo_text(res.placebo)
        + " Open circles: Callaway and Sant'Anna's estimator on rates, a sensitivity analysis "
        "that makes a different assumption (parallel trends in rates, not in logs)."
    )
    _methods_compared(ctx, measure)


def _placebo_text(placebo: dict) -> str:
    p = placebo.get("p_value", float("nan"))
    if not np.isfinite(p):
        return "Too few months before joining to check the trends beforehand."
    verdict = (
        "no evidence that participating wards were already diverging before they joined"
        if p >= 0.05
        else "evidence that participating wards were already diverging before they joined, so "
        "read the effect with caution"
    )
    return (
        f"In the 12 months before joining the ratio averaged {placebo['estimate']:.2f} "
        f"(p = {p:.2f}): {verdict}."
    )


def _methods_compared(ctx: Context, measure: str) -> None:
    _, _, pooled = _programme_tables(ctx)
    names = {
        "random_effects_reml": "Meta-analysis of trust ITS (REML)",
        "random_effects_reml_hk": "Meta-analysis, Hartung-Knapp interval",
        "gee_pooled": "Pooled model, participating wards (GEE)",
        "controlled": "Controlled: extended TWFE Poisson (recommended)",
        "controlled_cs": "Controlled: Callaway & Sant'Anna on rates",
    }
    rows = pooled[(pooled.measure == measure) & pooled.method.isin(names)]
    rows = rows[rows.effect.isin(["level_rr", "rr_h"])]
    h = ctx.params.horizon_months
    t = rows.pivot_table(
        index="method", columns="effect", values=["estimate", "ci_low", "ci_high"], sort=False
    )

    def cell(method: str, effect: str) -> str:
        if ("estimate", effect) not in t.columns:
            return ""
        return _ci(*(t.loc[method, (k, effect)] for k in ("estimate", "ci_low", "ci_high")))

    out = pd.DataFrame(
        {
            "Method": [names[m] for m in t.index],
            "Level change": [cell(m, "level_rr") for m in t.index],
            f"At {h} months": [cell(m, "rr_h") for m in t.index],
        }
    )
    table(out, f"{ctx.label(measure)}: every estimate of the programme's effect")
    paragraph(
        "The estimates answer different questions. The meta-analysis averages trusts, each "
        "against its own earlier trend. The GEE fits one effect to every participating ward "
        "with one calendar trend, weighting wards by their events. The controlled analyses "
        "compare with wards that never joined (and, for the Poisson model, wards that had not "
        "yet joined) in the same calendar months, so a national fall in restrictive practice is "
        "not credited to the programme; they average over wards joining in the same month "
        "(cohorts), weighted by their numbers of wards. The naive two-way fixed-effects model "
        "with one 'after joining' term is not shown: with wards joining at different times and "
        "effects that grow, it compares late joiners with earlier ones and can mislead "
        "(docs/methods.md)."
    )


def every_measure(ctx: Context) -> None:
    """Each measure's pooled and controlled effects and wards meeting the aim; balancing
    measures (violence, assaults, self-harm) flagged: a rise there is the concern."""
    _, _, pooled = _programme_tables(ctx)
    h = ctx.params.horizon_months

    def pick(measure: str, method: str, effect: str) -> str:
        r = pooled[
            (pooled.measure == measure) & (pooled.method == method) & (pooled.effect == effect)
        ]
        return _ci(r.estimate.iloc[0], r.ci_low.iloc[0], r.ci_high.iloc[0]) if len(r) else "-"

    rows = []
    for m in ctx.params.analysed_measures(ctx.data.measures):
        changes = ward_changes(ctx.data.ward_month, ctx.data.wards, m)
        att = aim_attainment(changes) if len(changes) else None
        rows.append(
            {
                "Measure": ctx.label(m),
                "Kind": "balancing" if ctx.params.measure(m).balancing else "restrictive practice",
                "Trust ITS pooled, level change": pick(m, "random_effects_reml_hk", "level_rr"),
                f"Controlled, at {h} months": pick(m, "controlled", "rr_h"),
                "Wards meeting the 25% aim": (
                    f"{att.iloc[0].share:.0%} of {int(att.iloc[0].wards)}"
                    if att is not None and not ctx.params.measure(m).balancing
                    else "-"
                ),
            }
        )
    table(pd.DataFrame(rows), "Every measure: rate ratios (95% CI)")


def breakdowns(ctx: Context, by: str = "ward_type") -> None:
    """Before-after rate ratios of every measure by ward type, wave or region."""
    labels = {"ward_type": "Ward type", "cohort": "Wave", "region": "Region"}
    if ctx.data.wards[by].isna().all():
        paragraph(f"{labels[by]} is not recorded in these data: no breakdown by it.")
        return
    cols: dict[str, pd.Series] = {}
    for m in ctx.params.analysed_measures(ctx.data.measures):
        changes = ward_changes(ctx.data.ward_month, ctx.data.wards, m)
        if changes.empty:
            continue
        b = breakdown(changes, ctx.data.wards, by).set_index(by)
        cols[ctx.label(m)] = pd.Series(
            [
                _ci(r, lo, hi)
                if n >= MIN_BREAKDOWN_WARDS
                else f"fewer than {MIN_BREAKDOWN_WARDS} wards"
                for r, lo, hi, n in zip(b.ratio, b.ci_low, b.ci_high, b.wards, strict=True)
            ],
            index=b.index.astype(str).str.replace("_", " "),
        )
    if not cols:
        paragraph("No ward has enough data before and after joining for a breakdown.")
        return
    out = pd.DataFrame(cols).fillna("-")
    out.index.name = labels[by]
    table(
        out.reset_index(),
        f"Every measure by {labels[by].lower()}: rate ratio after / before joining (95% CI; "
        "before-after, not controlled)",
    )


# --- provider-level context (no programme start dates, e.g. MHSDS) -----------------------


def headline_measure(ctx: Context) -> str:
    """The first of restrictive practice, physical restraint and people restrained present."""
    return _headline_measure(ctx.params, ctx.data.measures)


def context_title(ctx: Context) -> None:
    """Title, what the data are, and why there is no interrupted time series."""
    heading(f"{ctx.params.programme}: provider-level context", 1)
    wm = ctx.data.ward_month
    months = wm["month"]
    measure = headline_measure(ctx)
    paragraph(
        f"{len(ctx.data.trusts)} providers, {months.nunique()} months from {_month(months.min())} "
        f"to {_month(months.max())}. Headline measure: {ctx.label(measure).lower()} per 1,000 "
        "occupied bed days."
    )
    heading("Why there is no interrupted time series", 2)
    n_months = months.nunique()
    reasons = [
        "the data give no programme start month for any provider, so there is no "
        "interruption to test: nothing says when practice was meant to change"
    ]
    if n_months < 24:
        reasons.append(
            f"{n_months} months are too few to separate a change from seasonality and the "
            "underlying trend (segmented regression needs at least 8 to 12 months on each side "
            "of a start, more with seasonality)"
        )
    paragraph(
        "This report describes; it does not evaluate. No interrupted time series is fitted "
        "because " + "; and ".join(reasons) + ". What it shows: how each provider's rate varies "
        "month to month (Making Data Count charts), the national trend, and which providers "
        "differ from the rest by more than chance (funnel plot)."
    )


def national_trend(ctx: Context, measure: str | None = None) -> None:
    """Monthly total over providers reporting both the measure and bed days, as a run chart."""
    import matplotlib.pyplot as plt

    measure = measure or headline_measure(ctx)
    wm = ctx.data.ward_month
    ok = wm[wm[measure].notna() & (wm["occupied_bed_days"] > 0)]
    g = ok.groupby("month").agg(
        count=(measure, "sum"),
        occupied_bed_days=("occupied_bed_days", "sum"),
        providers=("trust_code", "nunique"),
    )
    rate = g["count"] / g["occupied_bed_days"] * 1000
    shown = ctx.rule.aggregate_rates(rate, g["count"], g["occupied_bed_days"])
    if shown.notna().sum() < 2:
        paragraph("Too few months to chart the national trend.")
        return
    res = run_chart(shown.to_numpy(), dates=pd.Series(g.index))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    plot_run_chart(
        res, ax, title=f"{ctx.label(measure)}: all providers", ylabel="per 1,000 bed days"
    )
    figure(
        fig,
        f"Run chart of {ctx.label(measure)} per 1,000 occupied bed days summed over "
        f"{int(g['providers'].max())} providers, {len(g)} months; runs "
        f"{'non-random' if res.signal else 'random'}",
    )
    breaks = ctx.data.events[ctx.data.events["type"] == "method_break"]["month"].unique()
    paragraph(
        f"Between {int(g['providers'].min())} and {int(g['providers'].max())} providers "
        "contribute each month; a provider that starts or stops reporting moves the total. "
        + (
            "Method changes: " + ", ".join(_month(pd.Timestamp(b)) for b in sorted(breaks)) + "."
            if len(breaks)
            else ""
        )
    )


def provider_spc(ctx: Context, measure: str | None = None) -> None:
    """One Making Data Count chart per provider and a table of what each says."""
    measure = measure or headline_measure(ctx)
    panels, rows = [], []
    for trust in ctx.data.trusts:
        res, series, _ = trust_spc(ctx.data, trust, measure, ctx.params)
        if res is None:
            continue
        shown = ctx.rule.rates(
            series["rate_per_1000_obd"], series["count"], series["occupied_bed_days"]
        )
        rows.append(
            {
                "Provider": trust,
                "Name": ctx.data.wards.loc[ctx.data.wards.trust_code == trust, "trust_name"].iloc[
                    0
                ],
                "Chart": res.chart,
                "Months": len(res.frame),
                "Variation (latest month)": icon_description(res.variation_icon),
                "Months not shown (small numbers)": int(shown.isna().sum()),
            }
        )
        if shown.notna().sum() >= 2:
            panels.append((trust, res, shown.to_numpy()))
    if not rows:
        paragraph(f"No provider has enough months of {ctx.label(measure).lower()} for a chart.")
        return
    fig = plot_small_multiples(panels, ncols=4, ylabel="per 1,000 bed days")
    figure(
        fig,
        f"{len(panels)} small u or u-prime charts of {ctx.label(measure)} per 1,000 occupied bed "
        "days, one per provider, suppressed months left out",
    )
    table(pd.DataFrame(rows), f"{ctx.label(measure)}: each provider's chart")


def reporting_status(ctx: Context, measure: str | None = None) -> None:
    """How the published figures were altered: suppressed, rounded, inferred zeros."""
    measure = measure or headline_measure(ctx)
    col = f"{measure}_status"
    wm = ctx.data.ward_month
    if col not in wm:
        return
    counts = wm[col].fillna("").replace("", "not published").value_counts()
    table(
        pd.DataFrame({"Status": counts.index, "Provider-months": counts.to_numpy()}),
        f"{ctx.label(measure)}: how the published figures were altered",
    )
    paragraph(
        "Counts are published rounded to the nearest 5 and suppressed below 5. A provider "
        "that published bed days but no restraint figure that month is counted as zero "
        "('inferred zero'), which may hide missing returns rather than a month without "
        "restraint; 'not published' months are left out."
    )


# --- data quality ------------------------------------------------------------------------


def completeness(ctx: Context) -> None:
    """Share of each trust's ward-months with each measure recorded."""
    import matplotlib.pyplot as plt

    wm = ctx.data.ward_month
    measures = list(ctx.data.measures)
    share = wm.groupby("trust_code")[measures].agg(lambda s: s.notna().mean())
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(share) + 1.8))
    plot_completeness(share, ax, title="Completeness by trust and measure")
    figure(fig, "Heat map of the percentage of ward-months with each measure recorded, by trust")
    months = wm.groupby("trust_code").agg(
        wards=("ward_id", "nunique"),
        ward_months=("month", "size"),
        first=("month", "min"),
        last=("month", "max"),
    )
    months["first"] = months["first"].map(_month)
    months["last"] = months["last"].map(_month)
    names = {
        "trust_code": "Trust",
        "wards": "Wards",
        "ward_months": "Ward-months",
        "first": "First month",
        "last": "Last month",
    }
    table(months.reset_index().rename(columns=names), "Reporting coverage")


def reporting_run_charts(ctx: Context) -> None:
    """Run charts of each trust's monthly occupied bed days: a shift is a reporting change."""
    wm = ctx.data.ward_month
    panels = []
    for trust, g in wm.groupby("trust_code", sort=True):
        monthly = g.groupby("month")["occupied_bed_days"].sum().reset_index()
        if len(monthly) >= 2:
            panels.append(
                (f"{trust}", run_chart(monthly["occupied_bed_days"], dates=monthly["month"]), None)
            )
    fig = plot_small_multiples(panels, ylabel="bed days")
    signals = [title for title, res, _ in panels if res.signal]
    figure(
        fig,
        f"Run charts of monthly occupied bed days for {len(panels)} trusts; "
        f"non-random variation in {', '.join(signals) if signals else 'none'}",
    )
    if signals:
        paragraph(
            f"Non-random variation in reported bed days (Anhøj's rules) for "
            f"{', '.join(signals)}: check for wards that started or stopped reporting."
        )


def validation_findings(ctx: Context) -> None:
    """Warnings from validation: every message internally; counts by trust and rule when shared."""
    frame = ctx.data.report.to_frame()
    if frame.empty:
        paragraph("Validation found no problems.")
        return
    paragraph(ctx.data.report.summary())
    if ctx.rule.internal:
        table(frame[["severity", "trust_code", "source", "line", "column", "message"]], "Findings")
        return
    counts = (
        frame.groupby(["trust_code", "severity", "rule"]).size().rename("findings").reset_index()
    )
    table(
        counts,
        "Findings by trust and rule (messages, which quote values, are in the internal report)",
    )


def events_table(ctx: Context) -> None:
    ev = ctx.data.events
    if ev.empty:
        paragraph("No events were recorded (events.csv).")
        return
    shown = ev.assign(month=ev["month"].map(_month), type=ev["type"].str.replace("_", " "))
    if not ctx.rule.internal:  # free text can name people or quote counts: kept in the trust
        shown = shown.drop(columns=["note"], errors="ignore")
    table(shown.rename(columns=str.capitalize), "Events that change a series")
    if not ctx.rule.internal and ev["note"].fillna("").astype(str).str.strip().ne("").any():
        paragraph("Event notes are free text and are shown in internal reports only.")
