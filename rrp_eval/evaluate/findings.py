"""What a reader needs first: each trust's verdict on the pre-specified measure and what needs
attention (a rate above the programme's funnel limit, a special-cause concern in the latest
month, a balancing measure that rose, a measure the trust hardly records), in words built from
the numbers. The index and each trust's key-findings box read the same functions.

Every input is a shared table (``its_effects`` and ``spc_signals`` rows) or a total over a
trust's wards (the funnel's twelve months, completeness shares): no count is stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.params import ProgrammeParams

#: a measure recorded in less than this share of a trust's ward-months is a data gap ...
GAP_SHARE = 0.5
#: ... when the other trusts record it in at least this share
OTHERS_SHARE = 0.8


def percent_change(rr: float) -> str:
    """A rate ratio as a percentage change in words: ``23% lower``, ``no different``."""
    change = (rr - 1) * 100
    if abs(change) < 0.5:
        return "no different"
    return f"{abs(change):.0f}% {'lower' if change < 0 else 'higher'}"


def join_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def recent_totals(ward_month: pd.DataFrame, measure: str, months: int = 12) -> pd.DataFrame:
    """Each trust's events and bed days over the latest ``months`` (months recording both)."""
    last = ward_month["month"].max()
    recent = ward_month[
        (ward_month["month"] > last - pd.DateOffset(months=months))
        & ward_month[measure].notna()
        & (ward_month["occupied_bed_days"] > 0)
    ]
    return recent.groupby("trust_code")[[measure, "occupied_bed_days"]].sum()


@dataclass(frozen=True)
class Verdict:
    """The pre-specified effect of one trust in a word: ``improved``, ``no clear change``,
    ``worse`` or ``not estimated``, with the rate ratio and interval it rests on."""

    word: str
    estimate: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    reason: str = ""

    @property
    def percent(self) -> str:
        """``23% lower``, ``5% higher`` or ``no different`` (blank without an estimate)."""
        return percent_change(self.estimate) if np.isfinite(self.estimate) else ""

    @property
    def numbers(self) -> str:
        """``23% lower (rate ratio 0.77, 95% CI 0.61 to 0.97)``; blank without an estimate."""
        if not np.isfinite(self.estimate):
            return ""
        return (
            f"{self.percent} (rate ratio {self.estimate:.2f}, 95% CI {self.ci_low:.2f} to "
            f"{self.ci_high:.2f})"
        )


@dataclass(frozen=True)
class Flag:
    """One thing that needs attention: ``kind`` is ``outlier``, ``concern``, ``balancing``
    or ``data``; ``text`` says it in a sentence, ``short`` in a few words (the index)."""

    kind: str
    text: str
    short: str = ""


def verdict(row: pd.Series | dict | None, effect: str, direction: str = "decrease") -> Verdict:
    """The verdict of one ``its_effects`` row on ``effect`` (``rr_h`` or ``level_rr``)."""
    if row is None:
        return Verdict("not estimated", reason="no estimate")
    est = float(row.get(effect, np.nan))
    low, high = float(row.get(f"{effect}_low", np.nan)), float(row.get(f"{effect}_high", np.nan))
    if not (np.isfinite(est) and np.isfinite(low) and np.isfinite(high)):
        reason = str(row.get("message") or row.get("status") or "no estimate")
        return Verdict("not estimated", reason=reason.replace("_", " "))
    if direction == "neutral":
        word = "changed" if high < 1 or low > 1 else "no clear change"
    else:
        better = high < 1 if direction == "decrease" else low > 1
        worse = low > 1 if direction == "decrease" else high < 1
        word = "improved" if better else "worse" if worse else "no clear change"
    return Verdict(word, est, low, high)


#: the programme aim the key findings read every estimate against: a 25% reduction
AIM_RR = 0.75


def precision_text(v: Verdict, aim: float = AIM_RR) -> str:
    """Whether an interval can tell the aim (a ``1 - aim`` reduction) from no change: read
    from the 95% interval, not from post-hoc power (Hoenig and Heisey 2001)."""
    if not np.isfinite(v.estimate):
        return ""
    fall = f"{1 - aim:.0%} fall"
    has_aim, has_none = v.ci_low <= aim <= v.ci_high, v.ci_low <= 1 <= v.ci_high
    if has_aim and has_none:
        return (
            f"no. The interval ({v.ci_low:.2f} to {v.ci_high:.2f}) includes both no change and "
            f"a {fall} (the programme's aim), so these data cannot tell them apart."
        )
    if has_none:
        return (
            f"yes, and they make a {fall} unlikely: the interval ({v.ci_low:.2f} to "
            f"{v.ci_high:.2f}) includes no change but not the aim."
        )
    if v.ci_high < aim:
        return f"yes: the whole interval is beyond the aim of a {fall}."
    if has_aim:
        return (
            f"yes: the interval excludes no change; it includes the aim of a {fall} "
            f"but also smaller falls (up to a rate ratio of {v.ci_high:.2f})."
        )
    if v.ci_high < 1:
        return (
            f"yes: the rate fell, but by less than the aim (a {fall}); the interval excludes both."
        )
    return f"yes: the rate rose; the interval excludes both no change and the aim of a {fall}."


def funnel_positions(
    ward_month: pd.DataFrame,
    measure: str,
    months: int = 12,
    rule: DisclosureRule | None = None,
) -> dict[str, str]:
    """Each trust's place on the funnel plot of ``measure`` over the latest ``months``
    (``above 99.8%``, ``above 95%``, ``within``, ...), as the programme page draws it
    (:meth:`~rrp_eval.evaluate.programme.ProgrammeEvaluation.funnel`). Under a shared
    ``rule``, a trust with 1 to ``suppress_below - 1`` events has no place, as it has no point
    on the page's plot: with its bed days, being beyond a limit would narrow its count."""
    from rrp_eval.models.meta import funnel_table

    if measure not in ward_month:
        return {}
    g = recent_totals(ward_month, measure, months)
    if len(g) < 3 or g[measure].sum() == 0:
        return {}
    table, _, _ = funnel_table(g[measure], g["occupied_bed_days"], pd.Series(g.index))
    positions = dict(zip(table["label"].astype(str), table["position"], strict=True))
    if rule is not None and not rule.internal:
        small = g.index[(g[measure] > 0) & (g[measure] < rule.suppress_below)].astype(str)
        positions = {code: where for code, where in positions.items() if code not in small}
    return positions


def completeness(ward_month: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """The share of each trust's ward-months with each measure recorded (trust × measure)."""
    present = [m for m in measures if m in ward_month]
    return ward_month.groupby("trust_code")[present].agg(lambda s: s.notna().mean())


def attention(
    code: str,
    params: ProgrammeParams,
    its: pd.DataFrame,
    spc: pd.DataFrame,
    funnel: dict[str, str],
    recorded: pd.DataFrame,
) -> list[Flag]:
    """What needs attention at trust ``code``, most serious first.

    ``its`` and ``spc`` are the trust's ``its_effects`` and ``spc_signals`` rows; ``funnel``
    from :func:`funnel_positions` of the headline measure; ``recorded`` from
    :func:`completeness` (every trust: a gap is judged against the others).
    """
    headline = params.primary.measure

    def label(m: str) -> str:
        return str(params.measure(m).label)

    flags: list[Flag] = []
    where = funnel.get(code, "")
    direction = params.measure(headline).direction
    worse_side = "above" if direction == "decrease" else "below"
    if where.startswith(worse_side):
        limit = where.split()[-1]
        flags.append(
            Flag(
                "outlier",
                f"{label(headline)} over the latest 12 months is {worse_side} the funnel plot's "
                f"{limit} limit: {'higher' if worse_side == 'above' else 'lower'} than the "
                f"programme's rate by more than chance and the programme's usual spread explain"
                + (" (a possible outlier to review)." if limit == "95%" else "."),
                f"{label(headline)} {worse_side} the funnel limit ({limit}), latest 12 months",
            )
        )
    if len(spc):
        icons = spc.set_index("measure")["variation_icon"].fillna("").astype(str)
        concern = [label(m) for m, icon in icons.items() if icon.startswith("concern")]
        if concern:
            flags.append(
                Flag(
                    "concern",
                    "Special-cause concern in the latest month (Making Data Count): "
                    f"{join_words(concern)}.",
                    f"Special-cause concern: {join_words(concern)}",
                )
            )
    h = params.horizon_months
    for row in its.itertuples():
        own = params.measure(row.measure)
        if not own.balancing:
            continue
        v = verdict(row._asdict(), "rr_h" if np.isfinite(row.rr_h) else "level_rr", own.direction)
        if v.word == "worse":
            flags.append(
                Flag(
                    "balancing",
                    f"{label(row.measure)} (a balancing measure) rose: {v.numbers} at {h} months "
                    "against its earlier trend; a possible unintended consequence to review with "
                    "the ward teams.",
                    f"{label(row.measure)} rose (balancing measure)",
                )
            )
    if code in recorded.index and len(recorded) > 1:
        others = recorded.drop(index=code)
        for m in recorded.columns:
            share, usual = float(recorded.loc[code, m]), float(others[m].median())
            if share < GAP_SHARE and usual >= OTHERS_SHARE:
                flags.append(
                    Flag(
                        "data",
                        f"{label(m)} is recorded in {share:.0%} of the trust's ward-months (other "
                        f"trusts: {usual:.0%}), so its results here say little.",
                        f"{label(m)} recorded in {share:.0%} of ward-months",
                    )
                )
    return flags
