"""Making Data Count statistical process control: XmR charts with the NHSRplotthedots rules.

Limits are mean ± 2.66 × mean moving range (2.66 literally, as Making Data Count and
NHSRplotthedots 0.2.2 use it); special causes, first match wins: a point outside the limits; part
of a 7-point trend (6 strict moves); part of 2 of 3 points beyond 2σ with all three on the same
side of the mean; part of 7 points on one side of the mean. Deviations from the Making Data
Count Excel tool and the R packages are listed in docs/methods.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

LIMIT = 2.66
CLOSE = 2 * LIMIT / 3
MR_SCREEN = 3.267
SHORT_GROUP = 13
IMPROVEMENTS = ("increase", "decrease", "neutral")
_DIRECTION = {"increase": 1, "decrease": -1, "neutral": 0}


@dataclass(frozen=True, eq=False)
class SPCResult:
    """An XmR chart.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per point: ``date`` (if given), ``value``, ``mean``, ``lpl``, ``upl``,
        ``rebase_group``, ``relative_to_mean``, ``special_cause_type``, ``point_type``.
    variation_icon : str
        From the last point: ``common_cause``, ``improvement_high``, ``improvement_low``,
        ``concern_high``, ``concern_low``, ``neutral_high`` or ``neutral_low``.
    assurance_icon : str or None
        From the target against the latest limits: ``consistent_pass``, ``consistent_fail``,
        ``inconsistent``; None without a target or for ``neutral``.
    improvement : str
        ``increase``, ``decrease`` or ``neutral``.
    target : float or None
    warnings : tuple of str
        Cautions (e.g. limits from fewer than 13 points).
    """

    frame: pd.DataFrame
    variation_icon: str
    assurance_icon: str | None
    improvement: str
    target: float | None
    warnings: tuple[str, ...] = field(default=())
    fix_after_n_points: int | None = None

    @property
    def signals(self) -> pd.DataFrame:
        """Points with a special cause."""
        return self.frame[self.frame["point_type"] != "common_cause"]

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the chart in Making Data Count style (see ``rrp_eval.plots.plot_spc``)."""
        from rrp_eval.plots import plot_spc

        return plot_spc(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        last = self.frame.iloc[-1]
        return (
            f"SPCResult(n={len(self.frame)}, mean={last['mean']:.4g}, lpl={last['lpl']:.4g}, "
            f"upl={last['upl']:.4g}, improvement={self.improvement!r}, "
            f"variation_icon={self.variation_icon!r}, assurance_icon={self.assurance_icon!r}, "
            f"signals={len(self.signals)})"
        )


def _seven_one_side(rtm: np.ndarray) -> np.ndarray:
    """1 at a point that ends a run of 7 on the same (non-zero) side of the mean."""
    out = np.zeros(len(rtm))
    for i in range(6, len(rtm)):
        window = rtm[i - 6 : i + 1]
        out[i] = float(rtm[i] != 0 and np.all(window == rtm[i]))
    return out


def _seven_trend(y: np.ndarray) -> np.ndarray:
    """+1 / -1 at a point that ends 6 strictly increasing / decreasing moves."""
    out = np.zeros(len(y))
    moves = np.sign(np.diff(y))
    for i in range(6, len(y)):
        window = moves[i - 6 : i]
        if np.all(window == 1):
            out[i] = 1
        elif np.all(window == -1):
            out[i] = -1
    return out


def _part_of_seven(ends: np.ndarray) -> np.ndarray:
    """A point is part of a run of 7 if it or one of the next 6 points ends one."""
    padded = np.concatenate([np.abs(ends), np.zeros(6)])
    return np.array([float(padded[i : i + 7].any()) for i in range(len(ends))])


def _two_in_three(close: np.ndarray, rtm: np.ndarray) -> np.ndarray:
    """Close-to-limit points in a window of 3 with 2+ close points all on one side of the mean."""
    n = len(close)
    cp = np.concatenate([[0, 0], close, [0, 0]]).astype(float)
    rp = np.concatenate([[0, 0], rtm, [0, 0]]).astype(float)
    hit = np.zeros(n)
    for i in range(n):
        for s in range(3):
            window = slice(i + s, i + s + 3)
            if cp[window].sum() >= 2 and abs(rp[window].sum()) == 3:
                hit[i] = 1
                break
    return hit * (close == 1)


def _label_points(
    y: np.ndarray,
    rtm: np.ndarray,
    outside: np.ndarray,
    trend: np.ndarray,
    two3: np.ndarray,
    side: np.ndarray,
) -> list[str]:
    """NHSRplotthedots labels, first match wins: limits > trend > 2 in 3 > 7 on one side."""
    moves = np.sign(np.diff(y))
    # a trend point takes the direction of its move to the next point when that is in the
    # trend too, else of its move from the previous point
    nxt = np.append(moves, moves[-1] if len(moves) else 0)
    prv = np.insert(moves, 0, 0)
    in_next = np.append(trend[1:], 0)
    direction = np.where((in_next != 0) & (trend != 0), nxt, prv)
    labels = []
    for i in range(len(y)):
        where = "Above" if rtm[i] > 0 else "Below"
        if outside[i]:
            labels.append("Above UCL" if rtm[i] == 1 else "Below LCL")
        elif trend[i]:
            labels.append(f"7 Point Trend ({'In' if direction[i] == 1 else 'De'}creasing)")
        elif two3[i]:
            labels.append(f"2 in 3 {where} CL")
        elif side[i]:
            labels.append(f"7 Points {where} CL")
        else:
            labels.append("Common Cause")
    return labels


def _special_cause_types(
    y: np.ndarray, rtm: np.ndarray, close: np.ndarray, outside: np.ndarray
) -> list[str]:
    trend = _part_of_seven(_seven_trend(y))
    two3 = _two_in_three(close.astype(float), rtm)
    side = _part_of_seven(_seven_one_side(rtm))
    return _label_points(y, rtm, outside, trend, two3, side)


def _point_type(special: str, direction: int) -> str:
    if any(w in special for w in ("Above", "Increasing")):
        v = 1
    elif any(w in special for w in ("Below", "Decreasing")):
        v = -1
    else:
        return "common_cause"
    if direction == 0:
        return "special_cause_neutral_high" if v > 0 else "special_cause_neutral_low"
    return "special_cause_improvement" if v * direction > 0 else "special_cause_concern"


def _variation_icon(point_type: str, improvement: str) -> str:
    high_is_good = improvement == "increase"
    return {
        "common_cause": "common_cause",
        "special_cause_neutral_high": "neutral_high",
        "special_cause_neutral_low": "neutral_low",
        "special_cause_improvement": "improvement_high" if high_is_good else "improvement_low",
        "special_cause_concern": "concern_low" if high_is_good else "concern_high",
    }[point_type]


def _assurance_icon(target: float | None, improvement: str, lpl: float, upl: float) -> str | None:
    if target is None or improvement == "neutral":
        return None
    increasing = improvement == "increase"
    if target > upl:
        return "consistent_fail" if increasing else "consistent_pass"
    if target < lpl:
        return "consistent_pass" if increasing else "consistent_fail"
    return "inconsistent"


def _rebase_groups(n: int, dates: pd.Series | None, rebase: Sequence[Any] | None) -> np.ndarray:
    groups = np.zeros(n, dtype=int)
    if not rebase:
        return groups
    for r in rebase:
        if dates is not None:
            at = np.flatnonzero(dates.to_numpy() == pd.Timestamp(r).to_datetime64())
            if at.size == 0:
                raise ValueError(f"rebase date {r!r} is not one of the chart's dates")
            pos = int(at[0])
        else:
            if not isinstance(r, int | np.integer) or not 0 <= r < n:
                raise ValueError(f"rebase position {r!r} must be a whole number from 0 to {n - 1}")
            pos = int(r)
        groups[pos:] += 1 if pos > 0 else 0
    return groups


def xmr(
    values: Sequence[float] | np.ndarray | pd.Series,
    dates: Sequence[Any] | pd.Series | None = None,
    improvement: str = "increase",
    target: float | None = None,
    rebase: Sequence[Any] | None = None,
    fix_after_n_points: int | None = None,
    screen_outliers: bool = True,
) -> SPCResult:
    """XmR (individuals) chart with Making Data Count rules and icons.

    Parameters
    ----------
    values : sequence of float
        The points, in time order (ordered by ``dates`` when given). Must be finite.
    dates : sequence of dates, optional
        One per value; the chart is sorted by them.
    improvement : {"increase", "decrease", "neutral"}, default "increase"
        Which direction is better (NHSRplotthedots' default is ``increase``; the suite passes
        ``decrease`` for restrictive practice).
    target : float, optional
        For the assurance icon.
    rebase : sequence, optional
        Where new limits start: dates when ``dates`` is given, else 0-based positions; each is
        the first point of a new group. Limits and rules never cross a rebase.
    fix_after_n_points : int, optional
        Compute each group's limits from its first n points only (n >= 12).
    screen_outliers : bool, default True
        Leave out moving ranges >= 3.267 × their mean once before the limits are computed
        (NHSRplotthedots); False gives the Making Data Count Excel tool's limits.

    Returns
    -------
    SPCResult

    Raises
    ------
    ValueError
        For an empty, non-finite or mis-sized input, or an option outside what is allowed.

    Notes
    -----
    Reproduces NHSRplotthedots 0.2.2 (``ptd_spc``); see docs/methods.md, "SPC".

    Examples
    --------
    >>> r = xmr([3, 5, 4, 6, 5, 4, 5, 3, 4, 6, 5, 4, 5], improvement="decrease")
    >>> r.variation_icon
    'common_cause'
    """
    if improvement not in IMPROVEMENTS:
        raise ValueError(f"improvement={improvement!r}; allowed: {', '.join(IMPROVEMENTS)}")
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("values must be a non-empty sequence of numbers")
    if not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y))[:5].tolist()
        raise ValueError(
            f"values must be finite; positions {bad} are missing or infinite (drop or suppress "
            "those points before charting)"
        )
    if fix_after_n_points is not None and (
        not isinstance(fix_after_n_points, int) or fix_after_n_points < 12
    ):
        raise ValueError(f"fix_after_n_points={fix_after_n_points!r} must be a whole number >= 12")
    date_series = None
    if dates is not None:
        date_series = pd.Series(pd.to_datetime(list(dates)))
        if len(date_series) != len(y):
            raise ValueError(f"{len(date_series)} dates for {len(y)} values")
        order = np.argsort(date_series.to_numpy(), kind="stable")
        y, date_series = y[order], date_series.iloc[order].reset_index(drop=True)
    groups = _rebase_groups(len(y), date_series, rebase)
    direction = _DIRECTION[improvement]
    parts, warnings = [], []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        yg = y[idx]
        base = yg[:fix_after_n_points] if fix_after_n_points else yg
        mean = base.mean()
        mr = np.abs(np.diff(base))
        amr = mr.mean() if len(mr) else np.nan
        if screen_outliers and len(mr):
            kept = mr[mr < MR_SCREEN * amr]
            amr = kept.mean() if len(kept) else np.nan
        lpl, upl = mean - LIMIT * amr, mean + LIMIT * amr
        nlpl, nupl = mean - CLOSE * amr, mean + CLOSE * amr
        outside = (yg > upl) | (yg < lpl)
        rtm = np.sign(yg - mean)
        close = ~outside & ((yg < nlpl) | (yg > nupl))
        special = _special_cause_types(yg, rtm, close, outside)
        if len(yg) < SHORT_GROUP:
            warnings.append(
                f"rebase group {g} has {len(yg)} points: limits from fewer than {SHORT_GROUP} "
                "points are unreliable"
            )
        parts.append(
            pd.DataFrame(
                {
                    "value": yg,
                    "mean": mean,
                    "lpl": lpl,
                    "upl": upl,
                    "rebase_group": g,
                    "relative_to_mean": rtm.astype(int),
                    "special_cause_type": special,
                    "point_type": [_point_type(s, direction) for s in special],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    if date_series is not None:
        frame.insert(0, "date", date_series)
    for w in warnings:
        logger.warning(w)
    last = frame.iloc[-1]
    return SPCResult(
        frame=frame,
        variation_icon=_variation_icon(last["point_type"], improvement),
        assurance_icon=_assurance_icon(target, improvement, last["lpl"], last["upl"]),
        improvement=improvement,
        target=target,
        warnings=tuple(warnings),
        fix_after_n_points=fix_after_n_points,
    )
