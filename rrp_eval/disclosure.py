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
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
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
        """The rule of the parameters' ``disclosure:`` (``internal`` shows everything)."""
        if not isinstance(internal, bool):
            raise ValueError(f"internal={internal!r} must be True or False")
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
            f"days under {self.min_rate_bed_days}, and are otherwise rounded (to 1, 2 or 5 "
            "× 10^k per 1,000, at least "
            f"{self.rate_decimals} decimal place{'s' * (self.rate_decimals != 1)}) so that no "
            f"rate gives its count more precisely than rounding to {self.round_to} does; SPC "
            "centre lines and limits are rounded the same way and withheld when the baseline "
            f"has under {self.min_rate_count} events, and funnel and caterpillar plots leave out "
            f"a trust with 1 to {self.suppress_below - 1} events. Model estimates and their "
            "intervals are not disclosive (NHS Digital's MHSDS rule)."
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

    def rate_step(self, bed_days: Any, minimum: float | None = None, per: float = 1000.0) -> Any:
        """The step a shared rate over ``bed_days`` is rounded to: coarse enough that the rate
        pins its count no more finely than counts are rounded (step × bed days / ``per`` ≥
        ``round_to``), taken up to 1, 2 or 5 × 10^k, and never finer than ``minimum`` (default
        ``10^-rate_decimals``). The step comes from the bed days rounded as they are
        published, so that a reader who knows the rule computes the same step. Bed days of 0
        or NaN give NaN (no rate)."""
        floor = 10.0**-self.rate_decimals if minimum is None else minimum
        bd = np.asarray(bed_days, dtype=float)
        if self.round_to > 1:  # from the bed days as published, so a reader gets the same step
            bd = self.round_to * np.round(bd / self.round_to)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(bd > 0, self.round_to * per / bd, np.nan)
        step = np.fmax(nice_step(need), floor)
        return np.where(bd > 0, step, np.nan)

    def round_rate(self, rate: Any, bed_days: Any, minimum: float | None = None) -> Any:
        """``rate`` rounded to :meth:`rate_step` (unchanged in internal reports); a Series
        stays a Series."""
        if self.internal:
            return rate
        step = self.rate_step(bed_days, minimum)
        values = np.asarray(rate, dtype=float)
        with np.errstate(invalid="ignore"):
            rounded = np.round(np.round(values / step) * step, 10)
        if isinstance(rate, pd.Series):
            return pd.Series(rounded, index=rate.index, name=rate.name)
        return rounded if np.ndim(rounded) else float(rounded)

    def rate_mask(self, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """True where a monthly rate may be shown."""
        if self.internal:
            return count.notna() & bed_days.notna()
        return (count >= self.min_rate_count) & (bed_days >= self.min_rate_bed_days)

    def rates(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Monthly rates that may be shown: NaN where suppressed, else rounded to
        :meth:`rate_step` (for charts and tables)."""
        shown = rate.where(self.rate_mask(count, bed_days))
        return self.round_rate(shown, bed_days)

    def aggregate_rates(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Rates over many wards or providers (a national or programme month): the same
        small-number mask as :meth:`rates`, rounded to :meth:`rate_step` but to one decimal
        place where the bed days allow (a whole number would hide such an aggregate's trend)."""
        shown = rate.where(self.rate_mask(count, bed_days))
        return self.round_rate(shown, bed_days, minimum=0.1)

    def rate_text(self, rate: pd.Series, count: pd.Series, bed_days: pd.Series) -> pd.Series:
        """Monthly rates as text for tables: ``*`` where suppressed."""
        shown = self.rates(rate, count, bed_days)
        if self.internal:
            text = shown.map(lambda v: "" if pd.isna(v) else f"{v:,.1f}")
        else:
            steps = pd.Series(self.rate_step(bed_days), index=shown.index)
            text = pd.Series(
                [
                    "" if pd.isna(v) else f"{v:,.{_decimals(st)}f}"
                    for v, st in zip(shown, steps, strict=True)
                ],
                index=shown.index,
            )
        return text.where(shown.notna() | count.isna() | bed_days.isna(), SUPPRESSED)


def _decimals(step: float) -> int:
    """Decimal places that show a multiple of ``step`` exactly."""
    if not np.isfinite(step) or step >= 1:
        return 0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def nice_step(need: Any) -> Any:
    """The smallest of 1, 2 or 5 × 10^k at or above ``need`` (elementwise; NaN stays NaN)."""
    need = np.asarray(need, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        power = 10.0 ** np.floor(np.log10(need))
        mantissa = need / power
        factor = np.where(mantissa <= 1, 1.0, np.where(mantissa <= 2, 2.0, 5.0))
        factor = np.where(mantissa > 5, 10.0, factor)
        # a mantissa a hair above 1, 2 or 5 from floating point is that step (and only those:
        # a mantissa of 3 or 4 takes 5)
        snapped = np.round(mantissa)
        nice = np.isin(snapped, (1.0, 2.0, 5.0)) & np.isclose(mantissa, snapped)
        factor = np.where(nice, snapped, factor)
        step = np.where(need > 0, factor * power, np.nan)
    return step


def suppressed_share(rule: DisclosureRule, count: pd.Series, bed_days: pd.Series) -> float:
    """Share of monthly points a shared chart leaves out."""
    ok = count.notna() & bed_days.notna()
    if not ok.any():
        return 0.0
    return float((~rule.rate_mask(count[ok], bed_days[ok])).mean())


__all__ = ["SUPPRESSED", "DisclosureRule", "nice_step", "suppressed_share"]


# --- the check every shared page passes before it is written --------------------------------

_COUNT_HEADER = re.compile(r"bed days|episodes|events|count|incidents|people|restraints", re.I)
_NOT_COUNT = re.compile(
    r"averted|per 1,000|rate|months|wards|trusts|providers|share|points|findings|aim|ratio",
    re.I,
)
_RATE_HEADER = re.compile(r"\brate\b|per 1,000", re.I)
_CONTROL_HEADER = re.compile(r"^(centre|limits)\b", re.I)  # SPC centre lines and limits
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_NUMBER = re.compile(r"^-?[\d,]*\.?\d+$")


def _number(cell: str) -> float | None:
    text = cell.strip().replace(",", "")
    return float(text) if _NUMBER.match(cell.strip()) else None


def implied_count(
    rate: float, rate_decimals: int, bed_days: float, round_to: int, per: float = 1000.0
) -> tuple[float, float]:
    """The range of counts consistent with a rate shown to ``rate_decimals`` places beside
    bed days shown rounded to ``round_to``: what a reader could back-calculate."""
    h = 0.5 * 10.0**-rate_decimals
    half = round_to / 2 if round_to > 1 else 0.0
    low = max(rate - h, 0.0) * max(bed_days - half, 0.0) / per
    high = (rate + h) * (bed_days + half) / per
    return low, high


def audit_tables(tables: dict[str, list[list[str]]], rule: DisclosureRule) -> list[str]:
    """Uncontrolled small numbers in a shared page's tables (header row first).

    Flags (1) a count or bed-day cell that is neither ``*``, 0 nor a multiple of the rounding
    base at or above the suppression threshold, (2) a rate shown beside a suppressed count, and
    (3) a rate and bed days in one row from which a suppressed count (1 to threshold - 1) can be
    back-calculated, and (4) an SPC centre line or limit (columns "Centre", "Limits ...")
    shown finer than the rule's finest rate step (they are stepped like rates, and a finer one
    with the limits gives away a month's bed days and, times them, a small baseline count).
    Returns one message per finding (empty when the page may be shared).
    """
    if rule.internal:
        return []
    findings = []
    small = range(1, rule.suppress_below)
    for caption, rows in tables.items():
        if len(rows) < 2:
            continue
        header = rows[0]
        counts = [
            j for j, h in enumerate(header) if _COUNT_HEADER.search(h) and not _NOT_COUNT.search(h)
        ]
        beds = [j for j in counts if re.search(r"bed days", header[j], re.I)]
        rates = [j for j, h in enumerate(header) if _RATE_HEADER.search(h)]
        controls = [j for j, h in enumerate(header) if _CONTROL_HEADER.search(h.strip())]
        floor = 10.0**-rule.rate_decimals
        for i, row in enumerate(rows[1:], start=2):
            for j in controls:
                for text in _ANY_NUMBER.findall(row[j] if j < len(row) else ""):
                    v = float(text.replace(",", ""))
                    if abs(v / floor - round(v / floor)) > 1e-6:
                        findings.append(
                            f"{caption!r} row {i}, {header[j]!r}: {row[j]} is finer than the "
                            f"rate step ({floor:g})"
                        )
                        break
            for j in counts:
                if j >= len(row):
                    continue
                v = _number(row[j])
                if v is None or v == 0:
                    continue
                if v < rule.suppress_below or v % rule.round_to:
                    findings.append(
                        f"{caption!r} row {i}, {header[j]!r}: {row[j]} is not suppressed or "
                        f"rounded to {rule.round_to}"
                    )
            suppressed = any(j < len(row) and row[j] == SUPPRESSED for j in counts)
            for r in rates:
                rate = _number(row[r]) if r < len(row) else None
                if rate is None:
                    continue
                if suppressed:
                    findings.append(
                        f"{caption!r} row {i}: rate {row[r]} shown beside a suppressed count"
                    )
                decimals = len(row[r].split(".")[1]) if "." in row[r] else 0
                for b in beds:
                    bd = _number(row[b]) if b < len(row) else None
                    if bd is None:
                        continue
                    low, high = implied_count(rate, decimals, bd, rule.round_to)
                    possible = range(math.ceil(low), math.floor(high) + 1)
                    if len(possible) and all(k in small for k in possible):
                        findings.append(
                            f"{caption!r} row {i}: rate {row[r]} and bed days {row[b]} reveal a "
                            f"count of {possible[0]}"
                            + (f" to {possible[-1]}" if len(possible) > 1 else "")
                        )
    return findings
