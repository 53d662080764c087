"""The data-quality sections: completeness, reporting changes, validation findings, events.
Each takes the data-quality evaluation (``rrp.evaluate_quality``) and the rule."""

from __future__ import annotations

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.quality import FINDING_COLUMNS, DataQuality
from rrp_eval.plots import plot_completeness, plot_small_multiples
from rrp_eval.show.display import figure, heading, paragraph, section, table
from rrp_eval.show.text import month


@section
def title(quality: DataQuality, rule: DisclosureRule) -> None:
    """The programme's name, its trusts and wards, and the months the data cover."""
    params = quality.data.params
    heading(params.programme if params else "Programme", 1)
    paragraph(programme_facts(quality.data))


def programme_facts(data: ProgrammeData) -> str:
    """How many trusts, participating and comparison wards, and the months covered."""
    part = data.wards["start_month"].notna()
    months = data.ward_month["month"]
    return (
        f"{len(data.trusts)} trusts, {int(part.sum())} participating wards and "
        f"{int((~part).sum())} comparison wards; data from {month(months.min())} to "
        f"{month(months.max())}."
    )


@section
def completeness(quality: DataQuality, rule: DisclosureRule) -> None:
    """Share of each trust's ward-months with each measure recorded."""
    import matplotlib.pyplot as plt

    share = quality.completeness
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(share) + 1.8))
    plot_completeness(share, ax, title="Completeness by trust and measure")
    figure(fig, "Heat map of the percentage of ward-months with each measure recorded, by trust")
    months = quality.coverage.copy()
    months["first"] = months["first"].map(month)
    months["last"] = months["last"].map(month)
    names = {
        "trust_code": "Trust",
        "wards": "Wards",
        "ward_months": "Ward-months",
        "first": "First month",
        "last": "Last month",
    }
    table(months.reset_index().rename(columns=names), "Reporting coverage")


@section
def reporting_run_charts(quality: DataQuality, rule: DisclosureRule) -> None:
    """Run charts of each trust's monthly occupied bed days: a shift is a reporting change."""
    panels = [(trust, chart, None) for trust, chart in quality.bed_days.items()]
    keys = [f"{trust}/all wards/occupied_bed_days" for trust in quality.bed_days]
    fig = plot_small_multiples(panels, ylabel="bed days", keys=keys)
    signals = quality.reporting_changes
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


@section
def validation_findings(quality: DataQuality, rule: DisclosureRule) -> None:
    """Warnings from validation: every message internally; counts by trust and rule when shared."""
    if quality.findings.empty:
        paragraph("Validation found no problems.")
        return
    paragraph(quality.report.summary())
    if rule.internal:
        table(quality.findings[FINDING_COLUMNS], "Findings")
        return
    table(
        quality.findings_by_rule(),
        "Findings by trust and rule (messages, which quote values, are in the internal report)",
    )


@section
def events_table(quality: DataQuality, rule: DisclosureRule) -> None:
    """The events that change a series (free-text notes in internal reports only)."""
    ev = quality.data.events
    if ev.empty:
        paragraph("No events were recorded (events.csv).")
        return
    shown = ev.assign(month=ev["month"].map(month), type=ev["type"].str.replace("_", " "))
    if not rule.internal:  # free text can name people or quote counts: kept in the trust
        shown = shown.drop(columns=["note"], errors="ignore")
    table(shown.rename(columns=str.capitalize), "Events that change a series")
    if not rule.internal and ev["note"].fillna("").astype(str).str.strip().ne("").any():
        paragraph("Event notes are free text and are shown in internal reports only.")
