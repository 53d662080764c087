"""The data-quality evaluation: completeness, reporting coverage, reporting changes (run charts
of bed days), what validation found and the recorded events. No display, no files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rrp_eval.data.problems import ValidationReport
from rrp_eval.data.validate import ProgrammeData
from rrp_eval.evaluate.findings import completeness as recorded_shares
from rrp_eval.models.results import FrozenMap, ResultMixin, as_figure
from rrp_eval.models.spc import RunChartResult, run_chart

FINDING_COLUMNS = ["severity", "trust_code", "source", "line", "column", "message"]


@dataclass(frozen=True, eq=False)
class DataQuality(ResultMixin):
    """What the data-quality report shows, computed once.

    ``data`` is the programme analysed (a trust that failed validation is left out: it is
    listed by its ``findings`` only); ``completeness`` the share of each trust's ward-months
    with each measure recorded (trust × measure); ``coverage`` each trust's wards, ward-months
    and first and last month; ``bed_days`` a run chart of each trust's monthly occupied bed
    days (a shift is a reporting change); ``findings`` every validation message.
    """

    data: ProgrammeData = field(repr=False)
    report: ValidationReport = field(repr=False)
    completeness: pd.DataFrame
    coverage: pd.DataFrame
    bed_days: FrozenMap[RunChartResult]
    findings: pd.DataFrame
    spec: FrozenMap = field(default_factory=FrozenMap)
    warnings: tuple[str, ...] = ()

    @property
    def reporting_changes(self) -> list[str]:
        """Trusts whose monthly bed days show non-random variation (Anhøj's rules)."""
        return [t for t, chart in self.bed_days.items() if chart.signal]

    def findings_by_rule(self) -> pd.DataFrame:
        """How many findings of each rule each trust has (no message: messages quote values)."""
        f = self.findings
        if f.empty:
            return pd.DataFrame(columns=["trust_code", "severity", "rule", "findings"])
        return f.groupby(["trust_code", "severity", "rule"]).size().rename("findings").reset_index()

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per trust: wards, ward-months, mean completeness over the measures, errors,
        warnings and whether its bed days show a reporting change (``alpha`` is not used)."""
        del alpha
        frame = self.coverage[["wards", "ward_months"]].copy()
        frame["completeness"] = self.completeness.mean(axis=1)
        f = self.findings
        for severity, col in (("error", "errors"), ("warning", "warnings")):
            counts = f[f["severity"] == severity].groupby("trust_code").size() if len(f) else None
            frame[col] = (
                counts.reindex(frame.index).fillna(0).astype(int) if counts is not None else 0
            )
        frame["reporting_change"] = [t in set(self.reporting_changes) for t in frame.index]
        return frame

    def _summary_title(self) -> str:
        return f"Data quality: {self.report.summary()}"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The completeness heat map (a Figure)."""
        from rrp_eval.plots import plot_completeness

        kwargs.setdefault("title", "Completeness by trust and measure")
        return as_figure(plot_completeness(self.completeness, ax, **kwargs))

    def __repr__(self) -> str:
        return (
            f"DataQuality({len(self.coverage)} trusts, {len(self.findings)} findings, "
            f"reporting changes in {len(self.reporting_changes)})"
        )


def evaluate_quality(programme: ProgrammeData) -> DataQuality:
    """The data-quality evaluation of a validated programme (``load_programme``).

    Examples
    --------
    >>> import rrp_eval as rrp
    >>> quality = rrp.evaluate_quality(rrp.load_programme())
    >>> quality.completeness.shape[0] == len(quality.coverage)
    True
    """
    report = programme.report
    data = programme.without_trusts(report.failed_trusts)
    wm = data.ward_month
    measures = list(data.measures)
    completeness = recorded_shares(wm, measures)
    coverage = wm.groupby("trust_code").agg(
        wards=("ward_id", "nunique"),
        ward_months=("month", "size"),
        first=("month", "min"),
        last=("month", "max"),
    )
    charts = {}
    for trust, g in wm.groupby("trust_code", sort=True):
        monthly = g.groupby("month")["occupied_bed_days"].sum().reset_index()
        if len(monthly) >= 2:
            charts[str(trust)] = run_chart(monthly["occupied_bed_days"], dates=monthly["month"])
    findings = report.to_frame()
    return DataQuality(
        data=data,
        report=report,
        completeness=completeness,
        coverage=coverage,
        bed_days=FrozenMap(charts),
        findings=findings,
        spec=FrozenMap({"measures": tuple(measures), "trusts": tuple(data.trusts)}),
    )
