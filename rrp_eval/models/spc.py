"""Making Data Count statistical process control: XmR charts with the NHSRplotthedots rules.

Limits are mean ± 2.66 × mean moving range (2.66 literally, as Making Data Count and
NHSRplotthedots 0.2.2 use it); special causes, first match wins: a point outside the limits; part
of a 7-point trend (6 strict moves); part of 2 of 3 points beyond 2σ with all three on the same
side of the mean; part of 7 points on one side of the mean. Deviations from the Making Data
Count Excel tool and the R packages are listed in docs/methods.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.models.results import ResultMixin, as_figure

logger = logging.getLogger(__name__)

LIMIT = 2.66
CLOSE = 2 * LIMIT / 3
MR_SCREEN = 3.267
SHORT_GROUP = 13
IMPROVEMENTS = ("increase", "decrease", "neutral")
_DIRECTION = {"increase": 1, "decrease": -1, "neutral": 0}


def _unified(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    cols = [c for c in ("date", "value", *names, "point_type") if c in frame]
    return frame[cols].rename(columns=names).reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class SPCResult(ResultMixin):
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

    @property
    def spec(self) -> dict[str, Any]:
        """The chart and its options."""
        return {
            "chart": "xmr",
            "improvement": self.improvement,
            "target": self.target,
            "fix_after_n_points": self.fix_after_n_points,
            "groups": int(self.frame["rebase_group"].nunique()),
        }

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per point in the suite's vocabulary: ``value, centre, lower, upper,
        point_type`` (the SPEC columns ``mean, lpl, upl`` stay in ``frame``)."""
        return _unified(self.frame, {"mean": "centre", "lpl": "lower", "upl": "upper"})

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the chart in Making Data Count style (see ``rrp_eval.plots.plot_spc``)."""
        from rrp_eval.plots import plot_spc

        return as_figure(plot_spc(self, ax=ax, **kwargs))

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
        if len(base) < 2:
            raise ValueError(
                f"rebase group {g} has {len(base)} point: limits need at least 2 points (a "
                "moving range)"
            )
        mean = base.mean()
        mr = np.abs(np.diff(base))
        amr = mr.mean()
        if amr == 0:
            warnings.append(
                f"rebase group {g}: every value is the same, so the limits are the mean"
            )
        elif screen_outliers:
            amr = mr[mr < MR_SCREEN * amr].mean()
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
        logger.info(w)
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


# --- Anhøj run-chart rules ----------------------------------------------------------------


@dataclass(frozen=True)
class RunsAnalysis:
    """Anhøj's rules around a centre line (points on the line are not useful)."""

    n_obs: int
    n_useful: int
    longest_run: int
    longest_run_max: int
    n_crossings: int
    n_crossings_min: int

    @property
    def signal(self) -> bool:
        """Non-random variation: an unusually long run or unusually few crossings."""
        return self.longest_run > self.longest_run_max or self.n_crossings < self.n_crossings_min


def anhoej_limits(n_useful: int) -> tuple[int, int]:
    """(longest_run_max, n_crossings_min) for ``n_useful`` points (Anhøj & Olesen 2014).

    round(log2 n) + 3 and the 5th percentile of Binomial(n - 1, 0.5) (R's ``qbinom``).
    """
    from scipy import stats

    if n_useful < 1:
        return 0, 0
    longest = round(np.log2(n_useful)) + 3
    crossings = int(stats.binom.ppf(0.05, n_useful - 1, 0.5)) if n_useful > 1 else 0
    return longest, crossings


def runs_analysis(values: np.ndarray, centre: np.ndarray | float) -> RunsAnalysis:
    """Longest run and number of crossings around ``centre``."""
    y = np.asarray(values, dtype=float)
    side = np.sign(y - np.broadcast_to(np.asarray(centre, dtype=float), y.shape))
    useful = side[side != 0]
    n = len(useful)
    longest, crossings = 0, 0
    if n:
        changes = np.flatnonzero(np.diff(useful) != 0)
        crossings = len(changes)
        bounds = np.concatenate([[-1], changes, [n - 1]])
        longest = int(np.max(np.diff(bounds)))
    run_max, cross_min = anhoej_limits(n)
    return RunsAnalysis(len(y), n, longest, run_max, crossings, cross_min)


@dataclass(frozen=True, eq=False)
class RunChartResult(ResultMixin):
    """A run chart: ``frame`` (``value``, ``median``, ``useful``) and its Anhøj analysis."""

    frame: pd.DataFrame
    runs: RunsAnalysis
    warnings: tuple[str, ...] = ()

    @property
    def signal(self) -> bool:
        return self.runs.signal

    @property
    def spec(self) -> dict[str, Any]:
        """Anhøj's limits for this number of useful points."""
        return {
            "chart": "run",
            "longest_run_max": self.runs.longest_run_max,
            "n_crossings_min": self.runs.n_crossings_min,
        }

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per point: ``value, centre`` (the median)."""
        return _unified(self.frame, {"median": "centre"})

    def __repr__(self) -> str:
        r = self.runs
        return (
            f"RunChartResult(n={len(self.frame)}, longest_run={r.longest_run} "
            f"(max {r.longest_run_max}), crossings={r.n_crossings} (min {r.n_crossings_min}), "
            f"signal={self.signal})"
        )

    def __getattr__(self, name: str) -> Any:
        if name in RunsAnalysis.__dataclass_fields__:
            return getattr(self.runs, name)
        raise AttributeError(name)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        from rrp_eval.plots import plot_run_chart

        return as_figure(plot_run_chart(self, ax=ax, **kwargs))


def _finite(values: Any, what: str = "values") -> np.ndarray:
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"{what} must be a non-empty sequence of numbers")
    if not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y))[:5].tolist()
        raise ValueError(f"{what} must be finite; positions {bad} are missing or infinite")
    return y


def run_chart(
    values: Sequence[float] | np.ndarray | pd.Series, dates: Any = None
) -> RunChartResult:
    """Run chart with a median centre line and Anhøj's rules.

    Parameters
    ----------
    values : sequence of float
    dates : sequence, optional

    Returns
    -------
    RunChartResult
        ``longest_run``, ``longest_run_max``, ``n_crossings``, ``n_crossings_min``, ``signal``
        (also as attributes of the result).
    """
    y = _finite(values)
    median = float(np.median(y))
    frame = pd.DataFrame({"value": y, "median": median, "useful": y != median})
    if dates is not None:
        frame.insert(0, "date", pd.to_datetime(list(dates)))
    return RunChartResult(frame, runs_analysis(y, median))


# --- Shewhart charts for rates and proportions (qicharts2) -------------------------------


@dataclass(frozen=True, eq=False)
class ControlChartResult(ResultMixin):
    """A u, u′, p, p′ or I chart.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``date`` (if given), ``value``, ``centre``, ``lcl``, ``ucl``, ``sigma_signal`` (outside
        the limits), ``special_cause_type`` and ``point_type`` (Making Data Count rules against
        these limits).
    chart : str
        ``u``, ``u'``, ``p``, ``p'`` or ``i``.
    sigma_z : float or None
        Laney's between-point scaling (u′, p′).
    runs : RunsAnalysis
        Anhøj's rules around the centre line.
    variation_icon : str
    improvement : str
    """

    frame: pd.DataFrame
    chart: str
    sigma_z: float | None
    runs: RunsAnalysis
    variation_icon: str
    improvement: str
    warnings: tuple[str, ...] = ()
    freeze: int | None = None

    @property
    def signals(self) -> pd.DataFrame:
        return self.frame[self.frame["point_type"] != "common_cause"]

    @property
    def aLCL(self) -> float:
        return float(self.frame["lcl"].mean())

    @property
    def aUCL(self) -> float:
        return float(self.frame["ucl"].mean())

    @property
    def spec(self) -> dict[str, Any]:
        """The chart and its options."""
        return {
            "chart": self.chart,
            "improvement": self.improvement,
            "baseline_points": self.freeze or len(self.frame),
            "sigma_z": self.sigma_z,
        }

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per point: ``value, centre, lower, upper, point_type``."""
        return _unified(self.frame, {"centre": "centre", "lcl": "lower", "ucl": "upper"})

    def __repr__(self) -> str:
        last = self.frame.iloc[-1]
        return (
            f"ControlChartResult({self.chart}, n={len(self.frame)}, centre={last['centre']:.4g}, "
            f"lower={last['lcl']:.4g}, upper={last['ucl']:.4g}, "
            f"variation_icon={self.variation_icon!r}, signals={len(self.signals)})"
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        from rrp_eval.plots import plot_spc

        return as_figure(plot_spc(self, ax=ax, **kwargs))


def _mdc_types(
    y: np.ndarray,
    centre: np.ndarray,
    sigma: np.ndarray,
    lcl: np.ndarray,
    ucl: np.ndarray,
    improvement: str,
) -> tuple[list[str], list[str]]:
    """Making Data Count labels and point types against any limits (2σ = centre ± 2 sigma)."""
    outside = (y > ucl) | (y < lcl)
    rtm = np.sign(y - centre)
    close = ~outside & ((y < centre - 2 * sigma) | (y > centre + 2 * sigma))
    special = _special_cause_types(y, rtm, close, outside)
    return special, [_point_type(s, _DIRECTION[improvement]) for s in special]


def _baseline(n: int, freeze: int | None) -> slice:
    if freeze is None:
        return slice(0, n)
    if not isinstance(freeze, int) or not 2 <= freeze <= n:
        raise ValueError(f"freeze={freeze!r} must be a whole number from 2 to {n}")
    return slice(0, freeze)


def _kept(n: int, base: slice, exclude: Sequence[int]) -> np.ndarray:
    """Positions of the baseline that the centre line and limits come from: ``exclude``
    (qicharts2's ``exclude``, 0-based here) taken out. The points stay on the chart and are
    judged against the limits like any other."""
    drop = np.asarray(list(exclude), dtype=int)
    if drop.size and ((drop < 0) | (drop >= n)).any():
        raise ValueError(f"exclude={list(exclude)!r}: positions must be from 0 to {n - 1}")
    kept = np.setdiff1d(np.arange(n)[base], drop)
    if len(kept) < 2:
        raise ValueError("exclude leaves fewer than 2 baseline points for the limits")
    return kept


def _laney_sigma_z(z: np.ndarray) -> float:
    """Laney's sigma_z: mean moving range of z-scores, screened once at 3.267 × their mean."""
    mr = np.abs(np.diff(z))
    if len(mr) == 0:
        raise ValueError("a Laney chart needs at least 2 points in the baseline")
    mr = mr[mr < MR_SCREEN * mr.mean()] if mr.mean() > 0 else mr
    return float(mr.mean() / 1.128) if len(mr) else 0.0


def _attribute_chart(
    chart: str,
    counts: Any,
    denominators: Any,
    *,
    laney: bool,
    multiply: float,
    freeze: int | None,
    dates: Any,
    improvement: str,
    exclude: Sequence[int] = (),
) -> ControlChartResult:
    if improvement not in IMPROVEMENTS:
        raise ValueError(f"improvement={improvement!r}; allowed: {', '.join(IMPROVEMENTS)}")
    x = _finite(counts, "counts")
    n = _finite(denominators, "denominators" if chart == "p" else "exposure")
    if len(x) != len(n):
        raise ValueError(
            f"{len(x)} counts for {len(n)} {'denominators' if chart == 'p' else 'exposures'}"
        )
    if (n <= 0).any():
        bad = np.flatnonzero(n <= 0)[:5].tolist()
        raise ValueError(
            f"denominators must be > 0; positions {bad} are zero or negative (leave those "
            "points out: a rate needs an exposure)"
        )
    if (x < 0).any():
        raise ValueError("counts must be >= 0")
    if chart == "p" and (x > n).any():
        raise ValueError("a p chart needs counts no larger than their denominators")
    if not (isinstance(multiply, int | float) and multiply > 0):
        raise ValueError(f"multiply={multiply!r} must be a positive number")
    base = _baseline(len(x), freeze)
    kept = _kept(len(x), base, exclude)
    cl = x[kept].sum() / n[kept].sum()
    y = x / n
    if chart == "u":
        sd = np.sqrt(cl / n)
    else:
        sd = np.sqrt(cl * (1 - cl) / n)
    warnings = []
    if cl == 0 or (chart == "p" and cl == 1):
        warnings.append("every point has the same value: the limits collapse onto the centre line")
    sigma_z = None
    if laney:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, (y - cl) / sd, 0.0)
        sigma_z = _laney_sigma_z(z[kept])
        sd = sd * sigma_z
    ucl = cl + 3 * sd
    lcl = np.maximum(cl - 3 * sd, 0.0)
    if chart == "p":
        ucl = np.minimum(ucl, 1.0)
    centre = np.full(len(y), cl)
    special, types = _mdc_types(y, centre, sd, lcl, ucl, improvement)
    frame = pd.DataFrame(
        {
            "value": y * multiply,
            "centre": centre * multiply,
            "lcl": lcl * multiply,
            "ucl": ucl * multiply,
            "sigma_signal": (y > ucl) | (y < lcl),
            "special_cause_type": special,
            "point_type": types,
            "count": x,
            "denominator": n,
            "excluded": ~np.isin(np.arange(len(x)), kept) & (np.arange(len(x)) < base.stop),
        }
    )
    if dates is not None:
        frame.insert(0, "date", pd.to_datetime(list(dates)))
    name = chart + ("'" if laney else "")
    for w in warnings:
        logger.info(w)
    return ControlChartResult(
        frame,
        name,
        sigma_z,
        runs_analysis(y, cl),
        _variation_icon(types[-1], improvement),
        improvement,
        tuple(warnings),
        freeze,
    )


def u_chart(
    counts: Sequence[float] | np.ndarray | pd.Series,
    exposure: Sequence[float] | np.ndarray | pd.Series,
    laney: bool = False,
    multiply: float = 1,
    *,
    freeze: int | None = None,
    dates: Any = None,
    improvement: str = "increase",
    exclude: Sequence[int] = (),
) -> ControlChartResult:
    """u chart of rates (counts per unit of exposure), or Laney's u′ chart.

    Parameters
    ----------
    counts, exposure : sequence of float
        Events and exposure (e.g. occupied bed days) per period; exposure > 0.
    laney : bool, default False
        Laney's u′: the Poisson sigma of each point is scaled by sigma_z, the mean moving range
        of the points' z-scores (screened once at 3.267 × their mean) / 1.128; not floored at 1.
    multiply : float, default 1
        Report rates per ``multiply`` units (1000 for per 1,000 occupied bed days).
    freeze : int, optional
        Centre line (and sigma_z) from the first ``freeze`` points only.
    dates : sequence, optional
    improvement : {"increase", "decrease", "neutral"}, default "increase"
        For the Making Data Count point types and icon.
    exclude : sequence of int, optional
        Positions (0-based) left out of the centre line and sigma_z, as qicharts2's
        ``exclude`` (1-based there): a baseline month that is itself a special cause. The
        points stay on the chart (``excluded`` is True in ``frame``). With nothing excluded
        the chart is exactly qicharts2's.

    Returns
    -------
    ControlChartResult
        Centre line Σcounts/Σexposure; limits centre ± 3 sigma_i varying with the exposure, the
        lower limit truncated at 0 (qicharts2 0.8.1).
    """
    return _attribute_chart(
        "u",
        counts,
        exposure,
        laney=laney,
        multiply=multiply,
        freeze=freeze,
        dates=dates,
        improvement=improvement,
        exclude=exclude,
    )


def p_chart(
    counts: Sequence[float] | np.ndarray | pd.Series,
    denominators: Sequence[float] | np.ndarray | pd.Series,
    laney: bool = False,
    multiply: float = 1,
    *,
    freeze: int | None = None,
    dates: Any = None,
    improvement: str = "increase",
    exclude: Sequence[int] = (),
) -> ControlChartResult:
    """p chart of proportions, or Laney's p′ chart (as :func:`u_chart`, binomial sigma)."""
    return _attribute_chart(
        "p",
        counts,
        denominators,
        laney=laney,
        multiply=multiply,
        freeze=freeze,
        dates=dates,
        improvement=improvement,
        exclude=exclude,
    )


def i_chart(
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    freeze: int | None = None,
    screen_outliers: bool = True,
    dates: Any = None,
    improvement: str = "increase",
) -> ControlChartResult:
    """qicharts2's I chart: mean ± 3 × (mean moving range / 1.128).

    The variant for comparison with qicharts2 (3/1.128 = 2.6596 where Making Data Count uses
    2.66); the reports use :func:`xmr`. Moving ranges are screened once at 3.267 × their mean
    as qicharts2 does; ``freeze`` takes the centre line and limits from the first points.
    """
    if improvement not in IMPROVEMENTS:
        raise ValueError(f"improvement={improvement!r}; allowed: {', '.join(IMPROVEMENTS)}")
    y = _finite(values)
    if len(y) < 2:
        raise ValueError("an I chart needs at least 2 points")
    base = y[_baseline(len(y), freeze)]
    mr = np.abs(np.diff(base))
    if screen_outliers and mr.mean() > 0:
        mr = mr[mr < MR_SCREEN * mr.mean()]
    sigma = mr.mean() / 1.128
    cl = base.mean()
    centre = np.full(len(y), cl)
    sd = np.full(len(y), sigma)
    lcl, ucl = cl - 3 * sd, cl + 3 * sd
    special, types = _mdc_types(y, centre, sd, lcl, ucl, improvement)
    frame = pd.DataFrame(
        {
            "value": y,
            "centre": centre,
            "lcl": lcl,
            "ucl": ucl,
            "sigma_signal": (y > ucl) | (y < lcl),
            "special_cause_type": special,
            "point_type": types,
        }
    )
    if dates is not None:
        frame.insert(0, "date", pd.to_datetime(list(dates)))
    return ControlChartResult(
        frame,
        "i",
        None,
        runs_analysis(y, cl),
        _variation_icon(types[-1], improvement),
        improvement,
        (),
        freeze,
    )


def overdispersion_test(counts: Any, exposure: Any) -> tuple[float, float]:
    """Pearson χ² test of Poisson variation between points: (dispersion, p-value).

    The reports draw Laney's u′ chart when p < 0.01 (the between-point variation is larger
    than the Poisson variation that u-chart limits assume) and a u chart otherwise.
    """
    from scipy import stats

    x = _finite(counts, "counts")
    n = _finite(exposure, "exposure")
    cl = x.sum() / n.sum()
    if cl == 0 or len(x) < 2:
        return 1.0, 1.0
    chi2 = float((((x - cl * n) ** 2) / (cl * n)).sum())
    df = len(x) - 1
    return chi2 / df, float(stats.chi2.sf(chi2, df))


# --- how often the rules signal when nothing changed (issue 16) ---------------------------


def special_cause_matrix(
    Y: np.ndarray, centre: np.ndarray, sigma: np.ndarray, lcl: np.ndarray, ucl: np.ndarray
) -> np.ndarray:
    """Whether each point of each row of ``Y`` is a special cause under the Making Data Count
    rules (a point outside the limits, part of a trend of 7, 2 of 3 beyond 2 sigma on one side,
    part of a run of 7 on one side): :func:`_mdc_types` for many series at once. ``centre``,
    ``sigma``, ``lcl`` and ``ucl`` broadcast against ``Y`` (rows = series)."""
    from numpy.lib.stride_tricks import sliding_window_view as windows

    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    rows, n = Y.shape
    outside = (Y > ucl) | (Y < lcl)
    rtm = np.sign(Y - centre)
    close = ~outside & ((Y < centre - 2 * sigma) | (Y > centre + 2 * sigma))

    def part_of_seven(ends: np.ndarray) -> np.ndarray:
        # ends has n - 6 columns, for points 6 .. n - 1; a point is in a run of 7 if a run
        # ends at it or at one of the next 6 points
        full = np.zeros((rows, n + 6), dtype=bool)
        full[:, 6:n] = ends
        return windows(full, 7, axis=1)[:, :n].any(axis=2)

    if n >= 7:
        w = windows(rtm, 7, axis=1)
        side_end = (w == w[..., -1:]).all(axis=2) & (w[..., -1] != 0)
        moves = np.sign(np.diff(Y, axis=1))
        m = windows(moves, 6, axis=1)
        trend_end = (m == 1).all(axis=2) | (m == -1).all(axis=2)
        side, trend = part_of_seven(side_end), part_of_seven(trend_end)
    else:
        side = trend = np.zeros((rows, n), dtype=bool)
    cp = np.pad(close.astype(float), ((0, 0), (2, 2)))
    rp = np.pad(rtm, ((0, 0), (2, 2)))
    ok = (windows(cp, 3, axis=1).sum(axis=2) >= 2) & (
        np.abs(windows(rp, 3, axis=1).sum(axis=2)) == 3
    )  # windows starting at padded positions 0 .. n + 1
    two3 = (ok[:, 0:n] | ok[:, 1 : n + 1] | ok[:, 2 : n + 2]) & close
    return outside | trend | two3 | side


FALSE_ALARM_SIMULATIONS = 1000


def false_alarm_rate(
    rate: float,
    exposure: Any,
    n_baseline: int,
    dispersion: float = 1.0,
    laney: bool = False,
    n_sim: int = FALSE_ALARM_SIMULATIONS,
    seed: int = 16,
) -> float:
    """The share of charts like this one that would show at least one special cause after the
    baseline if nothing had changed.

    Simulates ``n_sim`` series with the chart's own ``exposure`` (bed days) and a constant
    ``rate`` (events per unit of exposure: the baseline's), Poisson, or gamma-Poisson whose
    variance is ``dispersion`` times the mean on average (the baseline's Pearson dispersion,
    for a chart of over-dispersed counts). Each simulated chart is built as the real one is
    (centre line and, with ``laney``, sigma_z from its own first ``n_baseline`` points,
    limits frozen) and judged by the Making Data Count rules (:func:`special_cause_matrix`)
    on the points after the baseline. Deterministic for given inputs (``seed``); Monte Carlo
    SE at most 1.6 points with the default 1,000 series.
    """
    e = np.asarray(exposure, dtype=float)
    if not 2 <= n_baseline < len(e):
        raise ValueError(f"n_baseline={n_baseline} must be from 2 to {len(e) - 1}")
    if not rate > 0:
        return math.nan
    mu = rate * e
    rng = np.random.default_rng(seed)
    lam = np.broadcast_to(mu, (n_sim, len(e)))
    alpha = max(dispersion - 1.0, 0.0) / float(mu[:n_baseline].mean())
    if alpha > 0:
        lam = rng.gamma(1 / alpha, alpha * lam)
    Y = rng.poisson(lam) / e
    cl = (Y[:, :n_baseline] * e[:n_baseline]).sum(axis=1, keepdims=True) / e[:n_baseline].sum()
    sd = np.sqrt(cl / e)
    if laney:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, (Y - cl) / sd, 0.0)[:, :n_baseline]
        mr = np.abs(np.diff(z, axis=1))
        keep = mr < MR_SCREEN * mr.mean(axis=1, keepdims=True)
        sigma_z = np.where(keep, mr, 0).sum(axis=1, keepdims=True) / np.maximum(
            keep.sum(axis=1, keepdims=True), 1
        )
        sd = sd * sigma_z / 1.128
    special = special_cause_matrix(Y, cl, sd, np.maximum(cl - 3 * sd, 0), cl + 3 * sd)
    return float(special[:, n_baseline:].any(axis=1).mean())
