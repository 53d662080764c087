"""The trust evaluation's sections: each takes the evaluation and the disclosure rule and
returns a :class:`~rrp_eval.show.display.Section` that Jupyter displays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.trust import TrustEvaluation
from rrp_eval.models.spc import run_chart
from rrp_eval.plots import icon_description, plot_its, plot_small_multiples, plot_spc
from rrp_eval.prepare import trust_series, ward_series
from rrp_eval.show.display import (
    box,
    definitions,
    figure,
    heading,
    markdown,
    paragraph,
    section,
    table,
)
from rrp_eval.show.names import display_name, display_names
from rrp_eval.show.text import (
    averted,
    ci,
    influence_text,
    its_reading,
    month,
    pct,
    placebo_text,
    spc_caveat,
)


@section
def title(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """Title and how the trust's ITS is set up (a provider's figures: what the report is)."""
    if provider_level(trust):
        heading(f"{trust.name} ({trust.code}): provider report", 1)
        paragraph(
            f"Provider-level figures from {trust.params.programme}: one monthly series for the "
            "whole provider, with no wards and no programme start dates. This report describes "
            "how its rates varied over time (Making Data Count); it does not estimate the "
            "effect of a programme. Rates are per 1,000 occupied bed days."
        )
        return
    heading(f"{trust.name} ({trust.code})", 1)
    design = trust.design
    paragraph(
        f"Evaluation of {trust.params.programme}. Interrupted time series: {design.description}. "
        f"Rates are per 1,000 occupied bed days."
    )


def descriptive(trust: TrustEvaluation) -> bool:
    """No measure has a programme start to evaluate (no participating ward)."""
    return all(trust.its[m].design.kind == "none" for m in trust.measures)


def provider_level(trust: TrustEvaluation) -> bool:
    """A provider's totals (MHSDS figures: one ``all`` ward, no start dates), not a trust's
    wards in a programme."""
    wards = trust.data.wards[trust.data.wards["trust_code"] == trust.code]
    return descriptive(trust) and bool((wards["ward_type"] == "all").all())


@section
def key_findings(
    trust: TrustEvaluation, rule: DisclosureRule, programme: ProgrammeData | None = None
) -> None:
    """The answer first: the pre-specified measure's verdict in words and numbers, whether the
    data can tell the programme's aim from no change, and what needs attention. ``programme``
    (every trust's data) places the trust on the funnel plot and judges its recording against
    the others; without it only the trust's own results are read."""
    from rrp_eval.evaluate import findings

    p = trust.params.primary
    label = trust.label(p.measure)
    h = trust.params.horizon_months
    when = f"{h} months after joining" if p.effect == "rr_h" else "on joining"
    its = trust.its.get(p.measure)
    v = findings.verdict(its.row() if its is not None else None, p.effect, _direction(trust))
    if descriptive(trust):
        items = [
            (
                "What this shows",
                "how the rates varied over time; with no programme start dates there is no "
                "estimate of a programme effect.",
            )
        ]
        latest = [
            f"{trust.label(m)}: {icon_description(trust.spc[m].result.variation_icon)}"
            for m in trust.measures
            if trust.spc[m].result is not None
        ]
        if latest:
            items.append(("Latest month", "; ".join(latest) + "."))
    else:
        if v.word == "not estimated":
            answer = f"{label}, {when}: not estimated ({v.reason})."
        else:
            answer = (
                f"{label}, {when}: {v.numbers} than expected from the trust's earlier trend "
                f"({VERDICT_WORDS[v.word]})."
            )
        items = [("Pre-specified answer", answer)]
        precision = findings.precision_text(v)
        if precision:
            items.append(("Could the data show the aim?", precision))
        if programme is not None:
            items += _aim_items(trust, programme)
    its_rows = pd.DataFrame([trust.its[m].row() for m in trust.measures])
    spc_rows = pd.DataFrame([trust.spc[m].row(rule) for m in trust.measures])
    wm = (
        programme.without_trusts(programme.report.failed_trusts)
        if programme is not None
        else trust.data
    ).ward_month
    flags = findings.attention(
        trust.code,
        trust.params,
        its_rows,
        spc_rows,
        findings.funnel_positions(wm, p.measure, rule=rule),
        findings.completeness(wm, list(trust.measures)),
    )
    for f in flags:
        items.append(("Needs attention", f.text))
    if not flags:
        items.append(
            (
                "Needs attention",
                "nothing flagged: no rate above the funnel limit, no special-cause concern in "
                "the latest month, no balancing measure that rose and no measure left unrecorded.",
            )
        )
    box("Key findings", items)
    paragraph(
        "The detail behind each finding follows below; technical terms are explained in the "
        "glossary at the end of the page."
    )


def _aim_items(trust: TrustEvaluation, programme: ProgrammeData) -> list[tuple[str, str]]:
    """How likely it is that the trust met the aim (the hierarchical model over every trust's
    estimate) and how likely an evaluation with its data was to show the aim (power)."""
    from rrp_eval.evaluate.aims import PROGRAMME_ROW, programme_aims, trust_aims
    from rrp_eval.evaluate.planning import detectability
    from rrp_eval.models.hierarchical import probability_words

    # the measure the page leads with (the pre-specified one, or the headline when the data
    # do not have it), as the run's detectability is computed
    measure, h = trust.headline, trust.params.horizon_months
    items: list[tuple[str, str]] = []
    if measure not in trust.its:
        return items
    table = programme_aims(programme, trust.params)
    mine, prog = trust_aims(table, trust.code, measure), trust_aims(table, PROGRAMME_ROW, measure)
    if mine is not None and prog is not None:
        items.append(
            (
                "Probability of meeting the aim",
                f"that the true rate {h} months after joining is at least 25% lower than "
                "expected without the programme (the aim): "
                f"{probability_words(mine['p_rr_le_0_75'])}; at least a third lower: "
                f"{probability_words(mine['p_rr_le_0_67'])}; lower at all: "
                f"{probability_words(mine['p_rr_lt_1'])}. For the programme's average the "
                f"aim is {probability_words(prog['p_rr_le_0_75'])}: a trust's probability "
                "moves with the programme's, so read the two together. Both read this "
                f"trust's estimate with the spread of all {int(mine['n_trusts'])} trusts' "
                "estimates (a hierarchical model), which pulls an estimate from little data "
                "towards the programme's average: the trust's adjusted rate ratio is "
                f"{mine['shrunken']:.2f} ({mine['shrunken_low']:.2f} to "
                f"{mine['shrunken_high']:.2f}).",
            )
        )
    d = detectability(programme, trust.code, trust.params, measure)
    items.append(("Power for the aim", d.sentence()))
    return items


@section
def since_last_run(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """In a batch run with an earlier run to compare with: what changed for this trust (new or
    ended special causes, conclusions and probabilities that moved, new and revised months,
    data-quality findings). Nothing in a notebook opened by hand."""
    from rrp_eval.evaluate.aims import run_changes

    text = (run_changes() or {}).get(trust.code)
    if text:
        heading("Since the last run", 2)
        markdown(text)


#: a verdict in the words a board reads
VERDICT_WORDS = {
    "improved": "an improvement: the 95% interval excludes no change",
    "no clear change": "no clear change: the 95% interval includes no change",
    "worse": "a rise, which is a concern: the 95% interval excludes no change",
    "changed": "a clear change: the 95% interval excludes no change",
}


def _direction(trust: TrustEvaluation) -> str:
    return trust.params.measure(trust.params.primary.measure).direction


@section
def wards(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The trust's wards and their data coverage (this trust's wards only)."""
    heading("Wards and data", 2)
    if provider_level(trust):
        paragraph(
            "The provider's figures come as one total over all its wards (a row named ALL); "
            "there are no ward-level figures and no programme start dates."
        )
    else:
        paragraph(
            "The trust's own wards only. Participating wards joined the programme in the month "
            "shown; comparison wards never joined and are not part of the trust's series."
        )
    wards = trust.data.wards[trust.data.wards["trust_code"] == trust.code]
    wm = trust.data.ward_month[trust.data.ward_month["trust_code"] == trust.code]
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
            "Type": display_names("ward_type", out["ward_type"]),
            "Joined": [
                month(m)
                if not pd.isna(m)
                else "provider total"
                if t == "all"
                else "comparison ward"
                for m, t in zip(out["start_month"], out["ward_type"], strict=True)
            ],
            "Wave": out.get("cohort", pd.Series("", index=out.index)).fillna(""),
            "Months of data": out["months"].fillna(0).astype(int),
            "From": out["first"].map(month),
            "To": out["last"].map(month),
            "Occupied bed days": rule.counts(out["bed_days"]),
        }
    )
    table(shown, "Wards and data coverage")


@section
def spc_intro(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The Making Data Count section's heading and how its charts are read."""
    heading("Monthly rates: Making Data Count", 2)
    over = "the provider's monthly figures" if provider_level(trust) else "the participating wards"
    baseline = (
        "all the months shown (there is no start date)"
        if descriptive(trust)
        else "the baseline (the months before the wards joined, when there are at least 12)"
    )
    paragraph(
        f"Control charts of each measure's monthly rate per 1,000 occupied bed days over {over}: "
        "a u chart, or Laney's u′ chart when the months vary more than chance alone allows "
        f"(over-dispersion, usual with large denominators). The centre line and limits come from "
        f"{baseline}. Blue diamonds are special causes of improvement and orange squares of "
        "concern, by the Making Data Count rules (each chart's legend names them); the icon at "
        "the top right gives the latest month's variation."
    )


@section
def spc_summary(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """One row per measure: the chart used, its latest limits (controlled as the chart's are:
    stepped, withheld under 5 baseline events) and what it says now."""
    rows = []
    for m in trust.measures:
        s = trust.spc[m].controlled(rule)
        res, series = s.result, s.series
        if res is None:
            rows.append(
                {"Measure": trust.label(m), "Months": len(series), "Variation": "too few points"}
            )
            continue
        last = res.frame.iloc[-1]
        rows.append(
            {
                "Measure": trust.label(m),
                "Chart": res.chart,
                "Months": len(res.frame),
                "Centre": "withheld" if pd.isna(last["centre"]) else f"{last['centre']:g}",
                "Limits (latest month)": "withheld"
                if pd.isna(last["ucl"])
                else f"{last['lcl']:g} to {last['ucl']:g}",
                "Variation (latest month)": icon_description(res.variation_icon),
                "Improvement points": int(
                    (res.frame.point_type == "special_cause_improvement").sum()
                ),
                "Concern points": int((res.frame.point_type == "special_cause_concern").sum()),
                "Runs": "non-random" if res.runs.signal else "random",
                "Baseline months left out": len(s.excluded_months),
                "Chance of a signal with no change": (
                    "" if pd.isna(s.false_alarm) else f"{s.false_alarm:.0%}"
                ),
            }
        )
    table(pd.DataFrame(rows), "Making Data Count summary (rates per 1,000 occupied bed days)")
    paragraph(spc_caveat([trust.spc[m].controlled(rule) for m in trust.measures]))


def _centre_text(centre: float) -> str:
    """The centre line for alt text, at the precision it was controlled to."""
    if pd.isna(centre):
        return "centre line and limits withheld (under 5 events in the baseline)"
    return f"centre line {centre:g}"


@section
def spc_charts(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """A u or u′ chart per measure, suppressed points left out."""
    import matplotlib.pyplot as plt

    design = trust.design
    start = min(design.starts) if design.starts else None
    events = trust.data.events[trust.data.events["trust_code"] == trust.code]
    coarsest = 1.0  # the coarsest rate step drawn
    for m in trust.measures:
        s = trust.spc[m].controlled(rule)  # values, centre and limits as they may be shared
        res, series, label = s.result, s.series, s.label
        if res is None:
            paragraph(f"{trust.label(m)}: too few months with data for a chart.")
            continue
        shown = res.frame["value"]
        if shown.isna().all():
            paragraph(
                f"{trust.label(m)}: every month's numbers are too small to show (latest "
                f"variation: {icon_description(res.variation_icon)})."
            )
            continue
        fig, ax = plt.subplots(figsize=(8, 3.2))
        plot_spc(
            res,
            ax,
            shown=shown.to_numpy(),
            title=f"{trust.label(m)} ({label})",
            events=events,
            start=start,
        )
        ax.set_gid(f"{trust.code}/trust:{label}/{m}")  # what the audit reads it as
        n_hidden = int(shown.isna().sum())
        alt = (
            f"{res.chart} chart of {trust.label(m)} per 1,000 occupied bed days, {len(series)} "
            f"months; {_centre_text(res.frame['centre'].iloc[-1])}; latest variation: "
            f"{icon_description(res.variation_icon)}"
            + (f"; {n_hidden} months not shown (small numbers)" if n_hidden else "")
        )
        figure(fig, alt)
        if not rule.internal and shown.notna().any():
            steps = rule.rate_step(series["occupied_bed_days"][shown.notna()])
            coarsest = max(coarsest, float(np.nanmax(steps)))
    if coarsest > 1:
        paragraph(
            f"In months with few bed days the charts' rates are rounded more coarsely, up to "
            f"the nearest {coarsest:g} per 1,000 (disclosure control: a finer rate over so few "
            "bed days would give away its count); the signals are judged on the exact rates."
        )


@section
def ward_charts(trust: TrustEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """Small multiples: one run chart per ward of the trust (its own wards only); ``measure``
    defaults to the headline measure. A provider's single total has none."""
    if provider_level(trust):
        return
    measure = measure or trust.headline
    heading("Wards", 3)
    paragraph(
        f"Run charts of {trust.label(measure).lower()} on each of the trust's wards, with their "
        "medians. Months whose numbers are too small to share are left out."
    )
    wards = ward_series(trust.data, trust.code, measure, participating_only=False)
    own = trust.data.wards[trust.data.wards["trust_code"] == trust.code]
    comparison = set(
        own.loc[own["start_month"].isna() & (own["ward_type"] != "all"), "ward_id"].astype(str)
    )
    panels, keys, left_out = [], [], []
    for ward, g in wards.groupby("ward_id", sort=True):
        shown = rule.rates(g["rate_per_1000_obd"], g["count"], g["occupied_bed_days"])
        if shown.notna().sum() < 2:
            left_out.append(str(ward))
            continue
        ok = shown.notna().to_numpy()
        name = f"Ward {ward}" + (" (comparison)" if str(ward) in comparison else "")
        panels.append((name, run_chart(shown[ok], dates=g["month"][ok]), None))
        keys.append(f"{trust.code}/ward:{ward}/{measure}")
    left_out += sorted(set(own["ward_id"].astype(str)) - set(wards["ward_id"].astype(str)))
    if not panels:
        paragraph(f"Too few ward-months can be shown for ward charts of {trust.label(measure)}.")
        return
    fig = plot_small_multiples(panels, ylabel="per 1,000 bed days", keys=keys)
    n_comp = sum(k.split("/")[1].removeprefix("ward:") in comparison for k in keys)
    figure(
        fig,
        f"Run charts of {trust.label(measure)} per 1,000 occupied bed days for each of "
        f"{len(panels)} wards"
        + (f" ({n_comp} of them comparison wards)" if n_comp else "")
        + ", with their medians",
    )
    if left_out:
        paragraph(
            f"Not charted: ward{'s' * (len(left_out) > 1)} {', '.join(left_out)} (fewer than two "
            "months of this measure that can be shown)."
        )
    if n_comp:
        paragraph(
            "Comparison wards never joined the programme: they are charted for context and are "
            "not part of the trust's series above."
        )


@section
def its_intro(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The interrupted time-series section's heading and what it estimates (or why a trust
    without start dates has none)."""
    if descriptive(trust):
        heading("No interrupted time series", 2)
        paragraph(
            "None of these figures has a programme start date, so there is no before and after "
            "to compare and no programme effect is estimated. The charts above describe the "
            "variation over time; the programme report places the figures beside the others."
        )
        return
    heading("Did restrictive practice fall when the wards joined?", 2)
    paragraph(
        "Segmented regression (interrupted time series) of monthly counts with the log of "
        "occupied bed days as offset, a secular trend, seasonality and over-dispersion. The "
        "level change is the ratio of the observed to the expected rate in the first month "
        "after joining; the slope change is the further change per month; the rate ratio at "
        "the horizon combines both. Ratios below 1 mean fewer episodes than the earlier trend "
        "predicts (0.80 is 20% lower)."
    )


@section
def appendix(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The technical appendix's heading (sensitivity tables follow), printed on a new page."""
    if descriptive(trust):
        return
    heading("Appendix: sensitivity of the estimates", 2, css_class="rrp-appendix")
    paragraph(
        "The primary model beside alternatives: other count families, a phase-in of 0, 3 or 6 "
        "months left out after the start, and with or without seasonality. Estimates that "
        "agree across models are robust to these choices."
    )


@section
def its_summary(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The effects of every measure's ITS in one table."""
    if descriptive(trust):
        return
    rows = []
    p = trust.params.primary
    for m in trust.measures:
        its = trust.its[m]
        row = its.row()
        own = trust.params.measure(m)
        role = (
            "primary measure"
            if m == p.measure
            else "exploratory"
            if own.balancing or own.negative_control
            else "secondary"
        )
        rows.append(
            {
                "Measure": trust.label(m),
                "Role": role,
                "Status": display_name("status", its.status),
                "Level change (rate ratio, 95% CI)": ci(
                    row["level_rr"], row["level_rr_low"], row["level_rr_high"]
                ),
                "Slope change per month": ci(
                    row["slope_rr"], row["slope_rr_low"], row["slope_rr_high"], 3
                ),
                f"At {trust.params.horizon_months} months": ci(
                    row["rr_h"], row["rr_h_low"], row["rr_h_high"]
                ),
                "Change": pct(row["rr_h"]) if np.isfinite(row["rr_h"]) else "",
                "Episodes averted (95% CI)": averted(its),
                "Model": ""
                if its.result is None
                else its.result.spec.family.replace("negbin", "neg. binomial"),
                "Note": its.message,
            }
        )
    table(pd.DataFrame(rows), "Interrupted time series: rate ratios against the counterfactual")
    h = trust.params.horizon_months
    paragraph(
        f"The programme's pre-specified measure is {trust.label(p.measure).lower()}, read "
        + (f"{h} months after joining" if p.effect == "rr_h" else "as the change on joining")
        + "; the other measures are secondary, and the balancing measures exploratory (read "
        "for harm moved elsewhere). Each interval is a 95% interval on its own: across this "
        "many measures and effects, about 1 in 20 would exclude no change by chance alone."
    )
    paragraph(
        "These rate ratios compare each month after the start with the trust's own earlier "
        "trend and season carried forward, so a fall that was already under way is not "
        "credited to the programme. The Making Data Count icons above do not do that: they "
        "flag any change against the baseline's level, including a national trend, so an "
        "'improvement' icon is not by itself evidence that the programme worked."
    )
    if trust.placebo is not None:
        paragraph(
            placebo_text(trust.placebo, trust.label(trust.headline), trust.params.horizon_months)
        )


@section
def negative_controls(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The balancing measures (and any marked ``negative_control``) read as negative controls:
    measures the programme should not reduce, so a clear fall in them at the start points to
    something else (a recording change, another initiative, a secular shift)."""
    controls = [
        m
        for m in trust.measures
        if trust.params.measure(m).balancing or trust.params.measure(m).negative_control
    ]
    if not controls or descriptive(trust):
        return
    h = trust.params.horizon_months
    heading("Negative controls", 3)
    rows, fell, rose = [], [], []
    for m in controls:
        res = trust.its[m].result
        if res is None:
            rows.append({"Measure": trust.label(m), f"At {h} months": "", "Reading": "no model"})
            continue
        eff = res.rr_h if res.spec.slope_change else res.effect("level_change")
        if eff.ci_high < 1:
            reading, _ = "fell", fell.append(trust.label(m))
        elif eff.ci_low > 1:
            reading, _ = "rose", rose.append(trust.label(m))
        else:
            reading = "no clear change"
        rows.append(
            {
                "Measure": trust.label(m),
                f"At {h} months": ci(eff.estimate, eff.ci_low, eff.ci_high),
                "Reading": reading,
            }
        )
    table(pd.DataFrame(rows), f"Negative controls: rate ratios at {h} months")
    text = (
        "These measures are not what the programme sets out to reduce, so they should not fall "
        "when the wards join. "
    )
    if fell:
        text += (
            f"{', '.join(fell)} fell clearly too: part of the fall in restrictive practice may "
            "come from something that changed at the same time (recording, another initiative, "
            "a general trend), not the programme."
        )
    else:
        text += "None fell clearly: no sign of a shared cause behind the results above."
    if rose:
        text += (
            f" {', '.join(rose)} rose clearly: as balancing measures, a possible unintended "
            "consequence to review with the ward teams."
        )
    paragraph(text)


@section
def its_details(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """Per measure: the chart with its counterfactual and a reading written from the numbers."""
    import matplotlib.pyplot as plt

    if descriptive(trust):
        return
    for m in trust.measures:
        its = trust.its[m]
        heading(trust.label(m), 3)
        direction = trust.params.measure(m).direction
        if its.result is not None:
            series = trust_series(trust.data, trust.code, m)
            shown = pd.DataFrame(
                {
                    "month": series["month"],
                    "rate": rule.rates(
                        series["rate_per_1000_obd"], series["count"], series["occupied_bed_days"]
                    ),
                }
            )
            fig, ax = plt.subplots(figsize=(8, 3.4))
            plot_its(
                its.result,
                ax,
                shown=shown,
                title=f"{trust.label(m)}: observed, model and counterfactual",
            )
            ax.set_gid(f"{trust.code}/its/{m}")
            figure(
                fig,
                f"Interrupted time series of {trust.label(m)}: observed monthly rate, fitted "
                "model and the counterfactual without the programme",
            )
        paragraph(its_reading(its, trust.label(m), direction))
        influence = influence_text(its)
        if influence:
            paragraph(influence)


@section
def its_sensitivity(
    trust: TrustEvaluation, rule: DisclosureRule, measure: str = "restrictive_practice"
) -> None:
    """The primary model beside its alternatives for one measure."""
    if measure not in trust.measures or trust.its[measure].result is None:
        return
    rows = trust.sensitivity[measure].to_dict("records")
    shown = pd.DataFrame(
        {
            "Model": [r["variant"] for r in rows],
            "Family": [r["family"] for r in rows],
            "Phase-in": [r["phase_in"] for r in rows],
            "Harmonics": [r["harmonics"] for r in rows],
            "Level change": [
                ci(r["level_rr"], r["level_rr_low"], r["level_rr_high"]) for r in rows
            ],
            "Slope change per month": [
                ci(r["slope_rr"], r["slope_rr_low"], r["slope_rr_high"], 3) for r in rows
            ],
            f"At {trust.params.horizon_months} months": [
                ci(r["rr_h"], r["rr_h_low"], r["rr_h_high"]) for r in rows
            ],
            "Status": [
                display_name("status", r["status"]) + (f": {r['message']}" if r["message"] else "")
                for r in rows
            ],
        }
    )
    table(shown, f"Sensitivity: {trust.label(measure)}")


@section
def glossary(trust: TrustEvaluation, rule: DisclosureRule) -> None:
    """The technical terms this page uses, in plain words (all of them: ``methods.html``)."""
    from rrp_eval.show.glossary import PAGE_TERMS, entries

    kind = "provider" if provider_level(trust) else "trust"
    definitions(
        "Glossary",
        entries(PAGE_TERMS[kind], trust.params.horizon_months),
        "../methods.html",
    )
