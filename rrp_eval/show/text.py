"""Words and numbers as reports print them: intervals, months and readings of results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.evaluate.trust import MeasureITS


def ci(est: float, low: float, high: float, digits: int = 2) -> str:
    """``est (low to high)``; ``est (no interval)`` without limits; blank without an estimate.
    A ratio that rounds to zero is written ``<0.01`` (a sparse measure's interval), not 0.00."""
    if not np.isfinite(est):
        return ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{ratio(est, digits)} (no interval)"
    return f"{ratio(est, digits)} ({ratio(low, digits)} to {ratio(high, digits)})"


def ratio(value: float, digits: int = 2) -> str:
    """A ratio at ``digits`` places; one that would round to zero as ``<0.01``."""
    floor = 0.5 * 10**-digits
    if np.isfinite(value) and 0 <= value < floor:
        return f"<{10**-digits:.{digits}f}"
    return f"{value:.{digits}f}"


def ci_of(effect: dict) -> str:
    """:func:`ci` of a dict with ``estimate, ci_low, ci_high``."""
    return ci(effect["estimate"], effect["ci_low"], effect["ci_high"])


def interval(low: float, high: float, digits: int = 2) -> str:
    """``low to high`` (blank without limits)."""
    return "" if not np.isfinite(low) else f"{low:.{digits}f} to {high:.{digits}f}"


def month(value: Any) -> str:
    """``Jan 2024`` (blank for a missing month)."""
    return "" if pd.isna(value) else f"{pd.Timestamp(value):%b %Y}"


def averted(its: MeasureITS) -> str:
    """Events averted over the fitted post period (a model estimate: not disclosive); a
    negative estimate is written as extra episodes (``476 extra (120 to 830)``)."""
    if its.result is None:
        return ""
    a = its.result.events_averted()
    if a.estimate < 0:
        return f"{-a.estimate:,.0f} extra ({-a.ci_high:,.0f} to {-a.ci_low:,.0f} extra)"
    return f"{a.estimate:,.0f} ({a.ci_low:,.0f} to {a.ci_high:,.0f})"


def post_period(res: Any) -> str:
    """The fitted post period in words: calendar months for one series, ward-months for a
    stacked one (whose rows are wards' months, not the data's span)."""
    post = res.frame[res.frame["level_change"] > 0]
    units = post["unit"].nunique() if "unit" in post else 1
    if units > 1:
        return (
            f"the {len(post):,} ward-months after the {units} wards' own starts "
            f"({post['time_value'].nunique()} calendar months)"
        )
    return f"the {res.n_post} months after the start"


def averted_sentence(res: Any) -> str:
    """Episodes averted, or extra episodes when the estimate is negative, in a sentence with
    its interval read the same way."""
    a = res.events_averted()
    lo, hi = a.ci_low, a.ci_high
    if a.estimate >= 0:
        what = f"{a.estimate:,.0f} fewer episodes than expected"
    else:
        what = f"{-a.estimate:,.0f} more episodes than expected"
    return (
        f"Over {post_period(res)} that is an estimated {what} (95% CI from "
        f"{_signed(lo)} to {_signed(hi)})."
    )


def _signed(v: float) -> str:
    return f"{v:,.0f} fewer" if v >= 0 else f"{-v:,.0f} more"


def pct(rr: float) -> str:
    """A rate ratio as a percentage change in words (:func:`~rrp_eval.evaluate.findings.
    percent_change`)."""
    from rrp_eval.evaluate.findings import percent_change

    return percent_change(rr)


#: an interval whose ends differ more than this many times says nothing useful in words
WIDE_RATIO = 10


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
        f"{label}: {when}, the rate was {pct(lvl.estimate)} than the earlier trend predicts "
        f"(rate ratio {ratio(lvl.estimate)}, 95% CI {ratio(lvl.ci_low)} to "
        f"{ratio(lvl.ci_high)})."
    )
    if lvl.ci_high / max(lvl.ci_low, 1e-12) > WIDE_RATIO:
        text += (
            f" The interval is very wide (its ends differ more than {WIDE_RATIO}-fold): too few "
            "episodes to say whether the rate changed."
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
            f"estimated {pct(rr_h.estimate)} than expected (rate ratio {ratio(rr_h.estimate)}, "
            f"{ratio(rr_h.ci_low)} to {ratio(rr_h.ci_high)})."
        )
        if h > res.h_end:
            text += (
                f" That is beyond the last month of data (month {res.h_end:.0f}): an extrapolation."
            )
    text += f" {averted_sentence(res)}"
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
    if res.serial is not None:
        df = res.rr_h.df if res.spec.slope_change else res.effect("level_change").df
        if res.spec.cov_type == "arma":
            corr = (
                f"{res.serial.structure}, averaged over the correlations the data allow: "
                f"{res.serial.lag1:.2f} between neighbouring months on average"
            )
        else:
            corr = (
                f"{res.serial.structure}, neighbouring months correlated "
                f"{res.serial.lag1:.2f}, estimated by REML"
            )
        text += (
            f", errors allowing for autocorrelation between months ({corr}; "
            f"t intervals on {df:.0f} degrees of freedom)"
        )
    elif res.spec.cov_type == "cluster":
        text += ", errors clustered by ward"
    text += "."
    if m.message:
        text += f" Caution: {m.message}."
    return text


def _month_of_index(value: float) -> str:
    """``Jan 2024`` from months since year 0 (the ITS's ``time_value`` of monthly data)."""
    v = int(value)
    return month(pd.Timestamp(year=v // 12, month=v % 12 + 1, day=1))


def influence_text(m: MeasureITS, limit: int = 4) -> str:
    """The months whose omission moves the estimates by more than one standard error, in
    words (blank when there are none or no model)."""
    if m.result is None or m.result.spec.time_kind != "monthly" or m.result.spec.link != "log":
        return ""
    top = m.result.influential()
    if top.empty:
        return (
            "Influence: leaving out any single month moves neither the change at the start nor "
            "the effect at the horizon by more than one standard error."
        )
    stacked = top["unit"].nunique() > 1 or m.design.kind == "stacked"
    parts = []
    for _, r in top.head(limit).iterrows():
        where = _month_of_index(r["time_value"]) + (f" ({r['unit']})" if stacked else "")
        moved = f"level change {r['level_rr_without']:.2f} without it"
        if "rr_h_without" in r:
            moved += f", {m.result.spec.horizon}-month effect {r['rr_h_without']:.2f}"
        parts.append(f"{where}: {moved}")
    more = f" and {len(top) - limit} more" if len(top) > limit else ""
    return (
        "Influence: leaving out these months moves an estimate by more than one standard "
        f"error: {'; '.join(parts)}{more}. Check them for recording problems or one-off events; "
        "the robust row of the sensitivity table down-weights such months."
    )


def placebo_text(pc: Any, label: str, horizon: int) -> str:
    """A placebo check (:class:`~rrp_eval.evaluate.trust.PlaceboCheck`) in words."""
    what = f"the effect at {horizon} months" if pc.effect == "rr_h" else "the change at the start"
    text = (
        f"Placebo check ({label}): {pc.n_starts} baseline months were tried as false starts, "
        f"with the model fitted to the baseline alone; {pc.n_as_extreme} of them gave {what} at "
        f"least as far from no change as the real start's ({pc.real:.2f}), a rank share of "
        f"{pc.share:.2f}."
    )
    if pc.share <= 0.1:
        text += " The real change stands out from the baseline's own swings."
    else:
        text += (
            " Changes this large are not unusual in the baseline itself, so read the estimate "
            "with caution: the baseline's own swings could produce it."
        )
    return text


def primary_text(answer: Any, label: str, horizon: int, phase_in: int = 0) -> str:
    """The pre-specified answer (:class:`~rrp_eval.evaluate.programme.PrimaryAnswer`) in words
    and numbers, or why it could not be estimated."""
    from rrp_eval.evaluate.programme import METHOD_NAMES, effect_words

    what = f"{label}, {effect_words(answer.effect, horizon, phase_in)}"
    how = METHOD_NAMES.get(answer.method, answer.method)
    if not answer.estimated:
        return (
            f"The pre-specified primary answer ({what}, by {how}) could not be estimated: "
            f"{answer.reason}. Nothing else on this page replaces it; every other estimate is "
            "secondary or exploratory."
        )
    r = answer.row
    text = (
        f"Pre-specified primary answer: {what}: {pct(r.estimate)} than expected without the "
        f"programme (rate ratio {r.estimate:.2f}, 95% CI {r.ci_low:.2f} to {r.ci_high:.2f}; "
        f"{int(r.n_trusts)} trusts; {how})."
    )
    if np.isfinite(r.get("pi_low", np.nan)):
        text += (
            f" A new trust like these could expect a rate ratio between {r.pi_low:.2f} and "
            f"{r.pi_high:.2f} (95% prediction interval)."
        )
    if r.ci_high < 1:
        text += " The interval excludes no change."
    elif r.ci_low > 1:
        text += " The interval excludes no change: the rate rose."
    else:
        text += " The interval includes no change."
    return text


def multiplicity_text(roles: pd.Series) -> str:
    """What the secondary and exploratory estimates are worth, from the ``role`` column of
    the estimates a page shows (one entry per estimate with an interval)."""
    n_sec = int((roles == "secondary").sum())
    n_exp = int((roles == "exploratory").sum())
    n = n_sec + n_exp
    if n == 0:
        return ""
    return (
        f"Besides the primary answer the programme's tables hold {n_sec} secondary and {n_exp} "
        "exploratory estimates (other effects, methods and measures). Each interval is a 95% "
        "interval on its own, not corrected for the others: if the programme had changed "
        f"nothing, about 1 in 20 of them, roughly {max(1, round(0.05 * n))} here, would still "
        "exclude no change by chance. Read them as context for the primary answer, not as "
        "separate findings."
    )


def spc_caveat(charts: list[Any]) -> str:
    """What a trust's Making Data Count signals can and cannot say, with the simulated chance
    of a signal after the start when nothing changed (``MeasureSPC.false_alarm``) and the
    baseline months left out of the limits."""
    rates = [c.false_alarm for c in charts if np.isfinite(c.false_alarm)]
    left = sum(len(c.excluded_months) for c in charts)
    text = (
        "Making Data Count signals flag any change against the baseline's limits, including a "
        "national trend, a change in recording or the programme; they do not say which."
    )
    if rates:
        low, high = min(rates), max(rates)
        span = f"{low:.0%}" if round(low, 2) == round(high, 2) else f"{low:.0%} to {high:.0%}"
        text += (
            " Even with no change at all, charts of this length would show at least one "
            f"special cause after the start in {span} of cases (simulated from each chart's "
            "own baseline: the last column), so a single signal is weak evidence."
        )
    if left:
        text += (
            f" {left} baseline month{'s' * (left != 1)} outside the limits "
            f"{'were' if left != 1 else 'was'} itself a special cause and "
            f"{'were' if left != 1 else 'was'} left out of the centre line and limits "
            "(marked × on the charts)."
        )
    return text
