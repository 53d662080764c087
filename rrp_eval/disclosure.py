"""Small-number suppression for anything that leaves a trust (DOMAIN.md, "Disclosure control").

The default follows NHS Digital's MHSDS publication rule: counts and bed days of 1-4 are shown
as ``*``, others rounded to the nearest 5; a rate is suppressed where its count is under 5 or its
bed days under 100, and otherwise shown to a whole number at ward-month level. Model estimates,
their intervals, and rates over a trust-year or larger aggregate are complex statistics that
NHS Digital treats as not disclosive. The rule is configurable (``disclosure:`` in the
parameters) and stated in every report's footer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from rrp_eval.params import DisclosureParams

SUPPRESSED = "*"


@dataclass(frozen=True)
class DisclosureRule:
    """The rule in force; ``internal=True`` turns every control off (nothing is shared)."""

    suppress_below: int = 5
    round_to: int = 5
    min_rate_count: int = 5
    min_rate_bed_days: int = 100
    rate_decimals: int = 0
    internal: bool = False

    @classmethod
    def from_params(cls, params: DisclosureParams, internal: bool = False) -> DisclosureRule:
        return cls(
            suppress_below=params.suppress_below,
            round_to=params.round_to,
            min_rate_count=params.min_rate_count,
            min_rate_bed_days=params.min_rate_bed_days,
            rate_decimals=params.rate_decimals,
            internal=internal,
        )

    @property
    def statement(self) -> str:
        """One sentence for the report footer."""
        if self.internal:
            return (
                "INTERNAL: NOT FOR SHARING. Small numbers are shown unsuppressed; this report "
                "must not leave the trust."
            )
        return (
            f"Disclosure control: counts and bed days of 1 to {self.suppress_below - 1} are "
            f"shown as {SUPPRESSED} and others rounded to the nearest {self.round_to}; monthly "
            f"rates are not shown where the count is under {self.min_rate_count} or the bed "
            f"days under {self.min_rate_bed_days}, and are otherwise rounded to "
            f"{self.rate_decimals} decimal place{'s' * (self.rate_decimals != 1)}. Model "
            "estimates and their intervals are not disclosive (NHS Digital's MHSDS rule)."
        )

    def count(self, value: float) -> str:
        """One count or bed-day figure as it may be shown."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if self.internal:
            return f"{value:,.0f}"
        if 0 < value < self.suppress_below:
            return SUPPRESSED
        rounded = self.round_to * round(value / self.round_to)
        return f"{rounded:,.0f}"

    def counts(self, values: pd.Series) -> pd.Series:
        """A column of counts or bed days as text that may be shown."""
        return values.map(self.count)

    def rate_mask(self, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """True where a monthly rate may be shown."""
        if self.internal:
            return count.notna() & bed_days.notna()
        return (count >= self.min_rate_count) & (bed_days >= self.min_rate_bed_days)

    def rates(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Monthly rates that may be shown: NaN where suppressed, else rounded (for charts)."""
        shown = rate.where(self.rate_mask(count, bed_days))
        return shown if self.internal else shown.round(self.rate_decimals)

    def aggregate_rates(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Rates over many wards or providers (a national or programme month): the same
        small-number mask as :meth:`rates` but to one decimal place, since rounding such an
        aggregate to a whole number protects no one and hides its trend."""
        shown = rate.where(self.rate_mask(count, bed_days))
        return shown if self.internal else shown.round(1)

    def rate_text(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Monthly rates as text for tables: ``*`` where suppressed."""
        decimals = 1 if self.internal else self.rate_decimals
        shown = self.rates(rate, count, bed_days)
        text = shown.map(lambda v: "" if pd.isna(v) else f"{v:,.{decimals}f}")
        return text.where(shown.notna() | count.isna() | bed_days.isna(), SUPPRESSED)


def suppressed_share(rule: DisclosureRule, count: pd.Series, bed_days: pd.Series) -> float:
    """Share of monthly points a shared chart leaves out."""
    ok = count.notna() & bed_days.notna()
    if not ok.any():
        return 0.0
    return float((~rule.rate_mask(count[ok], bed_days[ok])).mean())


__all__ = ["SUPPRESSED", "DisclosureRule", "suppressed_share"]
