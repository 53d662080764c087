"""Provider-level context (no programme start dates, e.g. MHSDS): description, not evaluation.
Each section takes the programme's evaluation and the disclosure rule."""

from __future__ import annotations

import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.programme import ProgrammeEvaluation
from rrp_eval.models.spc import run_chart
from rrp_eval.plots import icon_description, plot_run_chart, plot_small_multiples
from rrp_eval.show.display import figure, heading, paragraph, section, table
from rrp_eval.show.text import month


@section
def title(prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """Title, what the data are, and why there is no interrupted time series."""
    heading(f"{prog.params.programme}: provider-level context", 1)
    wm = prog.data.ward_month
    months = wm["month"]
    measure = prog.headline
    paragraph(
        f"{len(prog.data.trusts)} providers, {months.nunique()} months from {month(months.min())} "
        f"to {month(months.max())}. Headline measure: {prog.label(measure).lower()} per 1,000 "
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


@section
def national_trend(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None
) -> None:
    """Monthly total over providers reporting both the measure and bed days, as a run chart."""
    import matplotlib.pyplot as plt

    measure = measure or prog.headline
    wm = prog.data.ward_month
    ok = wm[wm[measure].notna() & (wm["occupied_bed_days"] > 0)]
    g = ok.groupby("month").agg(
        count=(measure, "sum"),
        occupied_bed_days=("occupied_bed_days", "sum"),
        providers=("trust_code", "nunique"),
    )
    rate = g["count"] / g["occupied_bed_days"] * 1000
    shown = rule.aggregate_rates(rate, g["count"], g["occupied_bed_days"])
    if shown.notna().sum() < 2:
        paragraph("Too few months to chart the national trend.")
        return
    res = run_chart(shown.to_numpy(), dates=pd.Series(g.index))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    plot_run_chart(
        res, ax, title=f"{prog.label(measure)}: all providers", ylabel="per 1,000 bed days"
    )
    ax.set_ylim(bottom=0)  # a rate's axis starts at 0: a cropped axis exaggerates a trend
    ax.set_gid(f"programme/all providers/{measure}")
    figure(
        fig,
        f"Run chart of {prog.label(measure)} per 1,000 occupied bed days summed over "
        f"{int(g['providers'].max())} providers, {len(g)} months; runs "
        f"{'non-random' if res.signal else 'random'}",
    )
    breaks = prog.data.events[prog.data.events["type"] == "method_break"]["month"].unique()
    paragraph(
        f"Between {int(g['providers'].min())} and {int(g['providers'].max())} providers "
        "contribute each month; a provider that starts or stops reporting moves the total. "
        + (
            "Method changes: " + ", ".join(month(pd.Timestamp(b)) for b in sorted(breaks)) + "."
            if len(breaks)
            else ""
        )
    )


@section
def provider_spc(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None
) -> None:
    """One Making Data Count chart per provider and a table of what each says."""
    measure = measure or prog.headline
    panels, rows, keys = [], [], []
    for trust in prog.data.trusts:
        s = prog.trusts[trust].spc[measure].controlled(rule)  # centre and limits stepped too
        res = s.result
        if res is None:
            continue
        shown = res.frame["value"]
        rows.append(
            {
                "Provider": trust,
                "Name": prog.data.wards.loc[prog.data.wards.trust_code == trust, "trust_name"].iloc[
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
            keys.append(f"{trust}/trust:{s.label}/{measure}")
    if not rows:
        paragraph(f"No provider has enough months of {prog.label(measure).lower()} for a chart.")
        return
    fig = plot_small_multiples(panels, ncols=4, ylabel="per 1,000 bed days", keys=keys)
    figure(
        fig,
        f"{len(panels)} small u or u-prime charts of {prog.label(measure)} per 1,000 occupied bed "
        "days, one per provider, suppressed months left out",
    )
    table(pd.DataFrame(rows), f"{prog.label(measure)}: each provider's chart")


@section
def reporting_status(
    prog: ProgrammeEvaluation, rule: DisclosureRule, measure: str | None = None
) -> None:
    """How the published figures were altered: suppressed, rounded, inferred zeros."""
    measure = measure or prog.headline
    col = f"{measure}_status"
    wm = prog.data.ward_month
    if col not in wm:
        return
    counts = wm[col].fillna("").replace("", "not published").value_counts()
    table(
        pd.DataFrame({"Status": counts.index, "Provider-months": counts.to_numpy()}),
        f"{prog.label(measure)}: how the published figures were altered",
    )
    paragraph(
        "Counts are published rounded to the nearest 5 and suppressed below 5. A provider "
        "that published bed days but no restraint figure that month is counted as zero "
        "('inferred zero'), which may hide missing returns rather than a month without "
        "restraint; 'not published' months are left out."
    )
