"""The programme evaluation's sections: each takes the evaluation and the disclosure rule and
returns a :class:`~rrp_eval.show.display.Section` that Jupyter displays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.programme import METHOD_NAMES, ProgrammeEvaluation, effect_words
from rrp_eval.models.controlled import event_time_rates
from rrp_eval.models.meta import (
    breakdown,
    funnel_limits,
    rate_intervals,
)
from rrp_eval.plots import (
    plot_caterpillar,
    plot_event_time_rates,
    plot_forest,
    plot_funnel,
    plot_glance,
    plot_glance_series,
)
from rrp_eval.prepare import programme_series
from rrp_eval.show.display import definitions, figure, heading, paragraph, section, table
from rrp_eval.show.names import display_name, display_names
from rrp_eval.show.quality import programme_facts
from rrp_eval.show.text import ci, ci_of, interval, month, multiplicity_text, pct, primary_text

MIN_BREAKDOWN_WARDS = 3  # a group of fewer wards could reveal one ward's figures


def _measure_or_headline(prog: ProgrammeEvaluation, measure: str | None) -> str | None:
    """``measure`` if the data allow it (None, with a sentence, if not); default the headline."""
    if measure is None:
        return prog.headline
    if measure not in prog.measures:
        paragraph(f"{prog.label(measure)}: not recorded in these data.")
        return None
    return measure


@section
def title(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The programme's name, its trusts and wards, and the months the data cover."""
    heading(prog.params.programme, 1)
    paragraph(programme_facts(prog.data))


@section
def primary_answer(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The pre-specified answer first (``programme.yaml``'s ``primary``), then what the
    other estimates are worth (multiplicity)."""
    if not prog.has_starts:
        return
    heading("The pre-specified answer", 2)
    p = prog.params
    paragraph(
        primary_text(
            prog.primary, prog.label(p.primary.measure), p.horizon_months, p.phase_in_months
        )
    )
    pooled = prog.pooled
    paragraph(multiplicity_text(pooled.loc[pooled["estimate"].notna(), "role"]))


def _glance_parts(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str
) -> tuple[list[tuple[str, str]], tuple[str, str], pd.DataFrame]:
    """The glance's (value, label) facts, its (headline, explanation) and monthly series."""
    wm, wards = prog.data.ward_month, prog.data.wards
    h = prog.headline_effect(measure)  # the pre-specified effect and method
    att = prog.aims(measure)
    part = wards["start_month"].notna()
    events = wm[measure].sum() if measure in wm else float("nan")
    facts = [
        (f"{len(prog.data.trusts)}", "trusts" if part.any() else "providers"),
        (
            (f"{int(part.sum())}", f"participating wards (+{int((~part).sum())} comparison)")
            if part.any()
            else ("0", "programme start dates: a descriptive summary")
        ),
        (
            f"{wm['month'].nunique()}",
            f"months ({month(wm['month'].min())} to {month(wm['month'].max())})",
        ),
        (rule.count(float(wm["occupied_bed_days"].sum())), "occupied bed days"),
        (rule.count(float(events)), f"episodes of {prog.label(measure).split(' (')[0].lower()}"),
    ]
    if h is not None:
        p = prog.params
        big = pct(h.estimate)
        text = (
            f"{prog.label(measure)}, {effect_words(h.effect, p.horizon_months, p.phase_in_months)}"
            f" ({h.role}): rate ratio {h.estimate:.2f} (95% CI {h.ci_low:.2f} to "
            f"{h.ci_high:.2f}), "
            + (
                f"against comparison wards, {int(h.n_trusts)} trusts"
                if h.method.startswith("controlled")
                else f"pooled over {int(h.n_trusts)} trusts"
            )
        )
        if att is not None:
            a = att.iloc[0]
            text += f"; {a.share:.0%} of wards met the 25% aim ({a.chance:.0%} would by chance)"
    elif not part.any():
        big, text = "No programme effect", "the data have no start dates, so nothing is evaluated"
    else:
        big = "No pre-specified estimate"
        text = prog.primary.reason if measure == prog.primary.measure else "too few trusts"
    s = programme_series(prog.data, measure)
    # a group may be one small ward: its monthly rates are controlled like any other
    s = s.assign(
        rate=rule.aggregate_rates(s["rate_per_1000_obd"], s["count"], s["occupied_bed_days"])
    )
    return facts, (big, text), s


def glance_figure(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None
) -> tuple[Any, str]:
    """The 'programme at a glance' figure (a slide: key figures, headline and sparklines) and
    its alt text (figures rounded for sharing); ``measure`` defaults to the headline."""
    measure = measure or prog.headline
    facts, (big, text), s = _glance_parts(prog, rule, measure)
    fig = plot_glance(facts, (big, text), s, title=f"{prog.params.programme}: at a glance")
    fig.get_axes()[0].set_gid(f"programme/glance/{measure}")
    alt = f"Programme at a glance: {'; '.join(f'{v} {k}' for v, k in facts)}. {big}: {text}."
    return fig, alt


@section
def glance(prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """The summary at the top of the programme report: key figures and the headline as text
    (a screen reader reads them; they reflow and print), the monthly rates as a chart."""
    import matplotlib.pyplot as plt

    measure = measure or prog.headline
    facts, (big, text), s = _glance_parts(prog, rule, measure)
    heading("At a glance", 2)
    table(
        pd.DataFrame(
            {"Figure": [k[:1].upper() + k[1:] for _, k in facts], "Value": [v for v, _ in facts]}
        ),
        "The programme in figures",
    )
    paragraph(f"{big}: {text}.")
    fig, ax = plt.subplots(figsize=(8, 3))
    plot_glance_series(s, ax)
    ax.set_gid(f"programme/glance/{measure}")
    figure(
        fig,
        f"Monthly {prog.label(measure).lower()} per 1,000 occupied bed days over every trust's "
        "participating wards"
        + (" and comparison wards" if (s["group"] == "comparison").any() else ""),
    )


@section
def trust_overview(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None
) -> None:
    """Every trust: design and its ITS effects for one measure."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    its = prog.its_effects
    rows = its[its["measure"] == measure]
    wards = prog.data.wards
    out = []
    for r in rows.itertuples():
        tw = wards[wards["trust_code"] == r.trust_code]
        out.append(
            {
                "Trust": r.trust_code,
                "Name": prog.trust_names.get(r.trust_code, ""),
                "Wave": ", ".join(sorted(tw["cohort"].dropna().unique())),
                "Participating wards": int(tw["start_month"].notna().sum()),
                "Design": r.design,
                "Status": display_name("status", r.status),
                "Level change": ci(r.level_rr, r.level_rr_low, r.level_rr_high),
                f"At {prog.params.horizon_months} months": ci(r.rr_h, r.rr_h_low, r.rr_h_high),
                "Note": r.message,
            }
        )
    table(pd.DataFrame(out), f"Trusts: {prog.label(measure)}")


def funnel_text(table_: pd.DataFrame) -> str:
    """The trusts outside the funnel's limits, named in words (not only as points)."""
    parts = []
    for where, words in (
        ("above 99.8%", "above the 99.8% limit"),
        ("above 95%", "between the 95% and 99.8% upper limits"),
        ("below 95%", "between the 95% and 99.8% lower limits"),
        ("below 99.8%", "below the 99.8% limit"),
    ):
        codes = sorted(table_.loc[table_["position"] == where, "label"].astype(str))
        if codes:
            parts.append(f"{', '.join(codes)} {words}")
    if not parts:
        return "Every trust lies within the funnel's 95% limits: no outlier."
    return (
        "Outside the funnel: "
        + "; ".join(parts)
        + ". A trust beyond the 99.8% limit differs from the programme's rate by more than "
        "chance and the usual spread between trusts explain (review its case mix and "
        "recording before its practice); between the limits, about 1 trust in 20 lands by "
        "chance."
    )


def meta_method(prog: ProgrammeEvaluation) -> str:
    """The meta-analysis the pages show: the primary method when it is one, else REML with the
    modified Hartung-Knapp interval."""
    method = prog.params.primary.method
    return method if method.startswith("random_effects") else "random_effects_reml_hk"


@section
def pooled_effects(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """Random-effects pooled level change and effect at the horizon, every measure, each marked
    primary, secondary or exploratory (the pre-specified meta-analysis, else REML with the
    modified Hartung-Knapp interval)."""
    pooled = prog.pooled
    method = meta_method(prog)
    dl = pooled[(pooled["method"] == method) & pooled["effect"].isin(["level_rr", "rr_h"])]
    shown = pd.DataFrame(
        {
            "Measure": dl["measure"].map(prog.label),
            "Effect": dl["effect"].map(
                {"level_rr": "level change", "rr_h": f"at {prog.params.horizon_months} months"}
            ),
            "Role": dl["role"],
            "Pooled rate ratio (95% CI)": [
                ci(a, b, c) for a, b, c in zip(dl.estimate, dl.ci_low, dl.ci_high, strict=True)
            ],
            "Prediction interval": [
                interval(a, b) for a, b in zip(dl.pi_low, dl.pi_high, strict=True)
            ],
            "I² (from τ²)": dl["i2"].map(lambda v: f"{v * 100:.0f}%"),
            "Trusts": dl["n_trusts"],
        }
    )
    table(shown, f"Pooled effects: {METHOD_NAMES[method]}")
    paragraph(
        "Each trust enters with the uncertainty of its own interval (its degrees of freedom "
        "taken into account). The prediction interval is where a new trust's effect would "
        "fall; it is never narrower than the confidence interval. I² is the share of the "
        "variation between trusts' estimates that is real difference rather than chance, "
        "computed from the between-trust variance τ² of this method (Higgins & Thompson 2002, "
        "as metafor reports it)."
    )


@section
def influence(prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """Leave-one-trust-out: the pooled primary effect with each trust left out in turn."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    method = meta_method(prog)
    effect = prog.params.primary.effect
    kind = method.removeprefix("random_effects_").removesuffix("_hk")
    try:
        pooled = prog.pool(measure, effect, kind, method.endswith("_hk"))
    except ValueError as exc:
        paragraph(f"No leave-one-trust-out analysis: {exc}.")
        return
    loo = pooled.leave_one_out()
    if loo.empty:
        paragraph("Fewer than 3 trusts: no leave-one-trust-out analysis.")
        return
    what = effect_words(effect, prog.params.horizon_months, prog.params.phase_in_months)
    table(
        pd.DataFrame(
            {
                "Trust left out": loo["left_out"],
                "Pooled rate ratio without it (95% CI)": [
                    ci(a, b, c)
                    for a, b, c in zip(loo.estimate, loo.ci_low, loo.ci_high, strict=True)
                ],
                "Change": [f"{(v - 1) * 100:+.1f}%" for v in loo["change"]],
                "I² (from τ²)": loo["i2"].map(lambda v: f"{v * 100:.0f}%"),
            }
        ),
        f"{prog.label(measure)}, {what}: the pooled estimate with each trust left out "
        f"(all trusts: {ci(pooled.estimate, pooled.ci_low, pooled.ci_high)})",
    )
    big = loo.iloc[(np.log(loo["change"])).abs().argmax()]
    crosses = ((loo["ci_high"] < 1) != (pooled.ci_high < 1)) | (
        (loo["ci_low"] > 1) != (pooled.ci_low > 1)
    )
    paragraph(
        f"Leaving out {big.left_out} moves the pooled estimate most ({(big.change - 1) * 100:+.1f}%"
        f", to {big.estimate:.2f}). "
        + (
            f"Without {', '.join(loo.loc[crosses, 'left_out'])} the interval "
            + ("would include" if pooled.ci_high < 1 or pooled.ci_low > 1 else "would exclude")
            + " no change: the conclusion rests on "
            + ("that trust." if crosses.sum() == 1 else "those trusts.")
            if crosses.any()
            else "No single trust's removal changes whether the interval excludes no change."
        )
    )


@section
def forest(
    prog: ProgrammeEvaluation,
    rule: DisclosureRule,
    measure: str | None = None,
    effect: str = "level_rr",
) -> None:
    """Forest plot of the trusts' effects and the pooled estimate."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    its, pooled = prog.its_effects, prog.pooled
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
        & (pooled.method == meta_method(prog))
    ]
    what = (
        "level change"
        if effect == "level_rr"
        else f"rate ratio at {prog.params.horizon_months} months"
    )
    fig, ax = plt.subplots(figsize=(7, 0.32 * (len(t) + 3) + 0.8))
    plot_forest(
        t, p.iloc[0].to_dict() if len(p) else None, ax, title=f"{prog.label(measure)}: {what}"
    )
    est = p.iloc[0] if len(p) else None
    alt = f"Forest plot of {len(t)} trusts' {what} for {prog.label(measure)}" + (
        f"; pooled {est.estimate:.2f} (95% CI {est.ci_low:.2f} to {est.ci_high:.2f})"
        if est is not None
        else ""
    )
    figure(fig, alt)


@section
def funnel(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None, months: int = 12
) -> None:
    """Funnel plot of the trusts' rates over the latest months (all their wards)."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    funnel = prog.funnel(measure, months)
    if funnel is None:
        paragraph(
            f"{prog.label(measure)}: no trust with usable data recorded it in the last {months} "
            "months, so there is no funnel plot."
        )
        return
    table_, rate, phi = funnel
    g = prog.recent_totals(measure, months)
    # a point at (bed days, rate) or an exact interval gives its count: 1-4 is not shown
    small = (g[measure] > 0) & (g[measure] < rule.suppress_below) & (not rule.internal)
    g = g[~small]
    table_ = table_[~table_["label"].isin(small[small].index)]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    plot_funnel(
        table_,
        rate,
        phi,
        funnel_limits,
        ax,
        title=f"{prog.label(measure)}: the last {months} months, one point per trust",
    )
    ax.set_gid(f"programme/funnel/{measure}")
    outside = table_[table_["position"] != "within"]
    figure(
        fig,
        f"Funnel plot of {len(table_)} trusts' {prog.label(measure)} rates per 1,000 "
        f"occupied bed days against bed days; {len(outside)} outside the 95% limits",
    )
    paragraph(funnel_text(table_))
    ci = rate_intervals(g[measure], g["occupied_bed_days"]).assign(label=g.index)
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(ci) + 1.2))
    plot_caterpillar(ci, rate, ax, title="The same rates ranked, with Poisson 95% intervals")
    ax.set_gid(f"programme/caterpillar/{measure}")
    figure(
        fig,
        f"Caterpillar plot of {len(ci)} trusts' {prog.label(measure)} rates, ranked, with exact "
        "Poisson 95% intervals",
    )
    if small.any():
        paragraph(
            f"{int(small.sum())} trust(s) with 1 to {rule.suppress_below - 1} events in these "
            "months are not shown in either plot (small numbers)."
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


@section
def trust_aims(prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """Each trust's probability of meeting the aim and its adjusted (shrunken) rate ratio,
    from the hierarchical model over every trust's ITS estimate (docs/methods.md §9.2)."""
    from rrp_eval.evaluate.aims import PROGRAMME_ROW, aims_table
    from rrp_eval.models.hierarchical import MIN_TRUSTS, probability_words

    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    table_ = aims_table(dict(prog.trusts), prog.params, [measure])
    if table_.empty:
        paragraph(
            f"Fewer than {MIN_TRUSTS} trusts have an estimate of {prog.label(measure).lower()}: "
            "too few to read each one with the others."
        )
        return
    rows = table_.assign(order=(table_["trust_code"] == PROGRAMME_ROW).astype(int)).sort_values(
        ["order", "trust_code"]
    )
    names = {**prog.trust_names, PROGRAMME_ROW: "Programme average"}
    h = prog.params.horizon_months
    table(
        pd.DataFrame(
            {
                "Trust": [names.get(c, c) for c in rows["trust_code"]],
                f"Rate ratio at {h} months (its own estimate)": [
                    "" if c == PROGRAMME_ROW else f"{v:.2f}"
                    for c, v in zip(rows["trust_code"], rows["estimate"], strict=True)
                ],
                "Adjusted rate ratio (95% interval)": [
                    f"{m:.2f} ({a:.2f} to {b:.2f})"
                    for m, a, b in zip(
                        rows["shrunken"], rows["shrunken_low"], rows["shrunken_high"], strict=True
                    )
                ],
                "A fall of at least 25%": rows["p_rr_le_0_75"].map(probability_words),
                "At least 33%": rows["p_rr_le_0_67"].map(probability_words),
                "Any fall": rows["p_rr_lt_1"].map(probability_words),
            }
        ),
        f"{prog.label(measure)}: how likely each trust's true change at {h} months meets the aim",
    )
    paragraph(
        "Each trust's estimate is read together with every trust's (a hierarchical model): an "
        "estimate from little data is pulled towards the programme's average, which gives the "
        "adjusted rate ratio and the probabilities. A trust's probability moves with the "
        "programme's, so read them together; they are not to be added up into a count of "
        "trusts that met the aim. Probabilities are given in words and to one decimal because "
        "simulation shows them right to about ±0.1 at best (validation/aim_calibration.md)."
    )


@section
def aims(prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """Share of participating wards meeting the programmes' aims, and where change happened."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    changes = prog.ward_changes(measure)
    if changes.empty:
        paragraph("No ward has enough data in both windows to judge the aim.")
        return
    att = prog.aims(measure)
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
                "Expected with no change (95% range)": [
                    f"{s:.0%} ({a:.0%} to {b:.0%})"
                    for s, a, b in zip(
                        att["chance"], att["chance_low"], att["chance_high"], strict=True
                    )
                ],
                "Estimated share truly meeting it": att["estimated"].map(lambda v: f"{v:.0%}"),
            }
        ),
        f"{prog.label(measure)}: wards whose rate fell by the aim (months 6-17 after joining "
        "against the 12 months before)",
    )
    a = att.iloc[0]
    paragraph(
        f"With no change at all, noise alone would take about {a.chance:.0%} of these wards "
        f"past the {a.aim.split('(')[-1].rstrip(')')} (simulated from each ward's own baseline "
        "rate and its month-to-month variation): small wards swing widely from one year to "
        f"the next. {a.share:.0%} observed against {a.chance:.0%} by chance is the comparison "
        "to read. The last column shrinks each ward's change towards the average of all "
        "wards in proportion to its noise (empirical Bayes) and estimates the share whose "
        f"true rate fell by the aim: {a.estimated:.0%}. Both remain before-after comparisons: "
        "a ward that joined after an unusually bad spell would have improved anyway "
        "(regression to the mean), and a national fall in restrictive practice counts as "
        "improvement here; the controlled analysis and the trusts' time series allow for "
        "that."
    )
    for by, label in (("ward_type", "Ward type"), ("cohort", "Wave"), ("region", "Region")):
        if prog.data.wards[by].isna().all():
            continue  # not recorded in these data
        b = breakdown(changes, prog.data.wards, by)
        small = b["wards"] < MIN_BREAKDOWN_WARDS  # withheld as in the breakdowns table
        withheld = f"fewer than {MIN_BREAKDOWN_WARDS} wards"
        table(
            pd.DataFrame(
                {
                    label: display_names(by, b[by]),
                    "Wards": b["wards"],
                    "Rate ratio, after / before (95% CI)": [
                        withheld if s else ci(r, lo, hi)
                        for r, lo, hi, s in zip(b.ratio, b.ci_low, b.ci_high, small, strict=True)
                    ],
                    "Met the 25% aim": [
                        "-" if s else f"{v:.0%}" for v, s in zip(b["met_25"], small, strict=True)
                    ],
                }
            ),
            f"{prog.label(measure)} by {label.lower()} (before-after, not controlled)",
        )


@section
def controlled(prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None) -> None:
    """Programme or secular trend? Participating wards against wards that never joined."""
    measure = _measure_or_headline(prog, measure)
    if measure is None:
        return
    import matplotlib.pyplot as plt

    fit = prog.controlled[measure]
    panel = fit.panel
    label = prog.label(measure)
    short = label.split(" (")[0]
    rates = event_time_rates(panel)
    rates["rate_per_1000_obd"] = rule.aggregate_rates(
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
    if fit.result is None:
        paragraph(f"No controlled analysis: {fit.message}.")
        return
    res = fit.result
    fig, ax = plt.subplots(figsize=(8, 4.2))
    fit.plot(ax, title=f"{short}: change against wards that never joined")
    lag = fit.event_study[fit.event_study["kind"] == "lag"]
    figure(
        fig,
        f"Event-study chart of the {label} rate ratio against the counterfactual by month since "
        f"joining; after joining the ratios range from {lag['estimate'].min():.2f} to "
        f"{lag['estimate'].max():.2f}",
    )
    e = res.effects
    h = prog.params.horizon_months
    paragraph(
        f"Against {res.n_comparison_wards} comparison wards and wards that had not yet joined, "
        f"with a common calendar-month effect (secular trend and season), {label.lower()} "
        f"changed by a ratio of {ci_of(e['level_rr'])} "
        f"when wards joined and {ci_of(e['rr_h'])} "
        f"{h} months later ({res.n_wards} participating wards in {res.n_cohorts} cohorts, "
        f"{res.n_trusts} trusts; extended two-way fixed-effects Poisson model, Wooldridge 2023, "
        "standard errors clustered by trust). "
        + _placebo_text(fit.placebo)
        + " Open circles: Callaway and Sant'Anna's estimator on rates, a sensitivity analysis "
        "that makes a different assumption (parallel trends in rates, not in logs)."
    )
    _methods_compared(prog, measure)


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


def _methods_compared(prog: ProgrammeEvaluation, measure: str) -> None:
    pooled = prog.pooled
    names = {
        "random_effects_reml": "Meta-analysis of trust ITS (REML, normal interval)",
        "random_effects_reml_hk": "Meta-analysis of trust ITS (REML, modified Hartung-Knapp)",
        "gee_pooled": "Pooled model, participating wards (GEE)",
        "controlled": "Controlled: extended TWFE Poisson",
        "controlled_cs": "Controlled: Callaway & Sant'Anna on rates",
    }
    primary = prog.params.primary.method
    if primary in names:
        names[primary] += " (pre-specified)"
    rows = pooled[(pooled.measure == measure) & pooled.method.isin(names)]
    rows = rows[rows.effect.isin(["level_rr", "rr_h"])]
    h = prog.params.horizon_months
    t = rows.pivot_table(
        index="method", columns="effect", values=["estimate", "ci_low", "ci_high"], sort=False
    )

    def cell(method: str, effect: str) -> str:
        if ("estimate", effect) not in t.columns:
            return ""
        return ci(*(t.loc[method, (k, effect)] for k in ("estimate", "ci_low", "ci_high")))

    out = pd.DataFrame(
        {
            "Method": [names[m] for m in t.index],
            "Level change": [cell(m, "level_rr") for m in t.index],
            f"At {h} months": [cell(m, "rr_h") for m in t.index],
        }
    )
    table(out, f"{prog.label(measure)}: every estimate of the programme's effect")
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


@section
def every_measure(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """Each measure's pooled and controlled effects and wards meeting the aim; balancing
    measures (violence, assaults, self-harm) flagged: a rise there is the concern."""
    pooled = prog.pooled
    h = prog.params.horizon_months
    what = effect_words(prog.params.primary.effect, h, prog.params.phase_in_months)

    def pick(measure: str, method: str, effect: str) -> str:
        r = pooled[
            (pooled.measure == measure) & (pooled.method == method) & (pooled.effect == effect)
        ]
        return ci(r.estimate.iloc[0], r.ci_low.iloc[0], r.ci_high.iloc[0]) if len(r) else "-"

    rows = []
    for m in prog.params.analysed_measures(prog.data.measures):
        att = prog.aims(m)
        rows.append(
            {
                "Measure": prog.label(m),
                "Kind": "balancing" if prog.params.measure(m).balancing else "restrictive practice",
                "Role": prog.role(m, prog.params.primary.effect, prog.params.primary.method),
                f"Pre-specified: {what}": pick(
                    m, prog.params.primary.method, prog.params.primary.effect
                ),
                "Trust ITS pooled, level change": pick(m, meta_method(prog), "level_rr"),
                f"Controlled, at {h} months": pick(m, "controlled", "rr_h"),
                "Wards meeting the 25% aim": (
                    f"{att.iloc[0].share:.0%} of {int(att.iloc[0].wards)} "
                    f"({att.iloc[0].chance:.0%} by chance)"
                    if att is not None and not prog.params.measure(m).balancing
                    else "-"
                ),
            }
        )
    table(pd.DataFrame(rows), "Every measure: rate ratios (95% CI)")


@section
def breakdowns(prog: ProgrammeEvaluation, rule: DisclosureRule, by: str = "ward_type") -> None:
    """Before-after rate ratios of every measure by ward type, wave or region."""
    labels = {"ward_type": "Ward type", "cohort": "Wave", "region": "Region"}
    if prog.data.wards[by].isna().all():
        paragraph(f"{labels[by]} is not recorded in these data: no breakdown by it.")
        return
    cols: dict[str, pd.Series] = {}
    for m in prog.params.analysed_measures(prog.data.measures):
        changes = prog.ward_changes(m)
        if changes.empty:
            continue
        b = breakdown(changes, prog.data.wards, by).set_index(by)
        cols[prog.label(m)] = pd.Series(
            [
                ci(r, lo, hi)
                if n >= MIN_BREAKDOWN_WARDS
                else f"fewer than {MIN_BREAKDOWN_WARDS} wards"
                for r, lo, hi, n in zip(b.ratio, b.ci_low, b.ci_high, b.wards, strict=True)
            ],
            index=display_names(by, b.index),
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


@section
def glossary(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The technical terms the programme page uses, in plain words (all: ``methods.html``)."""
    from rrp_eval.show.glossary import PAGE_TERMS, entries

    definitions(
        "Glossary", entries(PAGE_TERMS["programme"], prog.params.horizon_months), "methods.html"
    )


@section
def appendix(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The technical appendix's heading (the robustness analyses follow), printed on a new
    page."""
    heading("Appendix: robustness of the pooled answer", 2, css_class="rrp-appendix")
    paragraph(
        "How much the pre-specified pooled effect depends on any one trust: the pooled estimate "
        "recomputed with each trust left out in turn."
    )
