"""Planning and detectability: could a trust's data show the programme's aim?

Power here is found by simulation with the evaluation's own model (docs/methods.md §9.1): each
simulated series has the trust's design (its wards, their starts, months and occupied bed days),
rates equal to the trust's baseline rates (each unit's mean before its start, no trend), and
noise with the over-dispersion and autocorrelation its baseline shows; a fall of ``1 - rr`` from
the start month on is applied, and the series is fitted by
:func:`~rrp_eval.evaluate.trust.fit_trust_its` with the trust's parameters, exactly as its
evaluation is. A simulated evaluation *detects* the fall when it is estimable (enough events,
:func:`~rrp_eval.evaluate.trust.information_problem`) and its 95% interval for ``rr_h`` lies below 1
(the report's "improved"). Power is the share detected, with its binomial Monte Carlo error.

This is prospective (design) power: the effect is the aim, never the trust's observed estimate,
which would make power a restatement of the p-value (Hoenig and Heisey 2001).

The noise: a latent Gaussian AR(1) process on each unit's log rate, with stationary variance
σ² and monthly decay d, under Poisson counts (a Poisson-lognormal process, ARMA(1,1) on the
count scale, the generator of validation/its_null_study.py). σ² and d are solved so that the
counts have the baseline's Pearson dispersion φ and lag-1 autocorrelation ρ:
Var(y) = m + m²(e^σ² − 1) = φm and Cov(y_t, y_t+1) = m²(e^{σ²d} − 1), so
σ² = log(1 + (φ − 1)/m) and d = log(1 + ρφ/m)/σ² (m the mean monthly count of a unit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.evaluate.cache import cached
from rrp_eval.params import EffectiveTrustParams, ProgrammeParams
from rrp_eval.prepare import TrustDesign, trust_design, trust_series, ward_series

#: the aims whose power is reported: a fall of a quarter and of a third
AIMS = (0.75, 0.67)
#: power a plan asks for (the usual 80%)
TARGET_POWER = 0.8
#: the rate ratios a plan's power curve is simulated at (common random numbers across them)
RR_GRID = (0.9, 0.75, 0.67, 0.5)
FOLLOW_UP = (12, 18, 24, 36)
#: simulations per cell: for a run's pages (one cell: the aim; at most, see PAGE_BATCH) and
#: for a plan
PAGE_SIMS = 100
PLAN_SIMS = 100
#: a run's detectability is simulated PAGE_BATCH at a time and stops once its verdict is
#: settled: the SETTLED Clopper-Pearson interval of the power inside one verdict band (below
#: 50%, 50-80%, 80% and over). Three early looks at 99% keep the chance that an early stop gives
#: another verdict than the true power's under 3% (docs/methods.md §9.1)
PAGE_BATCH = 25
SETTLED = 0.99
VERDICT_BOUNDS = (0.5, 0.8)
#: programme sizes a programme plan reports
PROGRAMME_SIZES = (5, 10, 15, 20, 30)
#: between-trust SD of the true log rate ratios a programme plan assumes when none is given
#: (the demonstration programme's posterior median is 0.18; published collaboratives' trust
#: effects spread similarly)
DEFAULT_TAU = 0.15
MAX_DECAY = 0.95


@dataclass(frozen=True)
class Noise:
    """The baseline's noise as the simulation reproduces it: Pearson dispersion ``dispersion``
    and lag-1 autocorrelation ``lag1`` of the counts' residuals (what the diagnostics show),
    and the latent AR(1) log-rate process that gives them (``sigma2``, ``decay``)."""

    dispersion: float
    lag1: float
    sigma2: float
    decay: float
    mean_count: float


@dataclass(frozen=True)
class PlanFrame:
    """A trust's series in the shape its ITS is fitted on (``series``: the summed series or
    the stacked ward series), the design, and the baseline rate of each unit per bed day."""

    code: str
    measure: str
    design: TrustDesign
    series: pd.DataFrame
    unit: np.ndarray  # per row of series
    start: np.ndarray  # per row: the unit's start month (datetime64)
    rates: dict[str, float]
    noise: Noise
    baseline_months: int

    @property
    def post(self) -> np.ndarray:
        return self.series["month"].to_numpy() >= self.start


def _units(series: pd.DataFrame, design: TrustDesign) -> tuple[np.ndarray, np.ndarray]:
    if design.kind == "summed":
        n = len(series)
        return np.full(n, "all", dtype=object), np.full(n, np.datetime64(design.starts[0], "ns"))
    return series["ward_id"].astype(str).to_numpy(), series["start_month"].to_numpy(
        dtype="datetime64[ns]"
    )


def estimate_noise(
    series: pd.DataFrame, unit: np.ndarray, pre: np.ndarray, harmonics: int | None = None
) -> Noise:
    """Dispersion and lag-1 autocorrelation of the baseline (``pre`` rows): Pearson residuals
    of a Poisson model with a rate per unit, a common linear trend and the seasonal harmonics
    the evaluation fits (``harmonics`` pairs; None: its automatic rule, 2 pairs from 24
    months), so that neither a trend nor a season the evaluation removes is taken for noise;
    and the latent process that reproduces them.

    The lag-1 autocorrelation of residuals from a short series is biased low, by the mean
    (Marriott and Pope) and more by the trend and harmonics: it is the value that gives the
    residuals' statistic on average under this fit (:func:`unbiased_lag1`), in [0, 0.9]. A
    Poisson-lognormal process can carry autocorrelation ρ only with dispersion
    φ ≥ 1/(1 − ρ/0.95) (decay at most 0.95): when the baseline's φ is below that, φ is raised
    to it, so that the autocorrelation reported is the one simulated
    (validation/power_study.md found it silently dropped otherwise)."""
    import statsmodels.api as sm

    f = series.loc[pre, ["month", "count", "occupied_bed_days"]].copy()
    f["unit"] = unit[pre]
    f = f[f["occupied_bed_days"] > 0]
    if len(f) < 4 or f["count"].sum() == 0:
        return Noise(1.0, 0.0, 0.0, 0.0, float(f["count"].mean()) if len(f) else 0.0)
    t = (f["month"].dt.year * 12 + f["month"].dt.month).to_numpy(float)
    X = pd.get_dummies(f["unit"], dtype=float)
    X["t"] = (t - t.mean()) / 12
    months = int(f["month"].nunique())
    pairs = (2 if months >= 24 else 0) if harmonics is None else int(harmonics)
    if months < 2 * pairs + 6:  # too few months to fit the season as well
        pairs = 0
    for k in range(1, pairs + 1):
        angle = 2 * np.pi * k * f["month"].dt.month.to_numpy(float) / 12
        X[f"sin{k}"], X[f"cos{k}"] = np.sin(angle), np.cos(angle)
    y = f["count"].to_numpy(float)
    design = X.to_numpy()
    fit = sm.GLM(y, design, family=sm.families.Poisson(), offset=np.log(f["occupied_bed_days"]))
    res = fit.fit()
    mu = res.fittedvalues
    r = (y - mu) / np.sqrt(mu)
    df = max(len(y) - X.shape[1], 1)
    phi = max(1.0, float(r @ r / df))
    # lag-1 autocorrelation within units, consecutive months only
    units = pd.factorize(f["unit"])[0]
    order = np.lexsort((t, units))
    r, t, units = r[order], t[order], units[order]
    same = (units[1:] == units[:-1]) & (np.diff(t) == 1)
    rho = 0.0
    if same.any():
        raw = float(np.sum(r[:-1][same] * r[1:][same]) / np.sum(r**2) * len(r) / same.sum())
        weighted = design[order] * np.sqrt(mu[order])[:, None]
        rho = unbiased_lag1(raw, np.linalg.qr(weighted)[0], units, t, same)
    if rho > 0:
        phi = max(phi, 1.0 / (1.0 - rho / MAX_DECAY))
    m = float(mu.mean())
    return _noise(phi, rho, m)


def unbiased_lag1(
    raw: float, q: np.ndarray, units: np.ndarray, t: np.ndarray, same: np.ndarray
) -> float:
    """The lag-1 autocorrelation c in [0, 0.9] whose residuals would show ``raw`` on average.

    The residuals of a fitted regression are M e (M = I - Q Q', Q an orthonormal basis of the
    weighted design, rows sorted by unit and month), so their lag-1 statistic is biased low by
    everything the fit removes: the mean (the Marriott-Pope case), but also the trend and the
    harmonics, which take up much more of a slow process in 24-36 months. With e of AR(1)
    correlation c within each unit (Σ_c), the statistic's expected value is
    h(c) = tr(P M Σ_c M) / tr(M Σ_c) × n / pairs (P the symmetric matrix of consecutive months);
    the estimate solves h(c) = ``raw`` (0 when ``raw`` is at or below h(0), the value white
    noise gives: Durbin and Watson's null mean)."""
    from scipy.optimize import brentq

    n, pairs = len(t), int(same.sum())
    # Σ_c and P are block diagonal by unit: every trace is a sum over the units' blocks
    edges = np.flatnonzero(np.diff(units)) + 1
    blocks = []
    for rows in np.split(np.arange(n), edges):
        tu, qu = t[rows], q[rows]
        link = same[rows[:-1]] if len(rows) > 1 else np.zeros(0, bool)
        P = np.zeros((len(rows), len(rows)))
        k = np.flatnonzero(link)
        P[k, k + 1] = P[k + 1, k] = 0.5
        blocks.append((np.abs(tu[:, None] - tu[None, :]), qu, P, P @ qu))
    QPQ = sum(qu.T @ PQ for _, qu, _, PQ in blocks)

    def h(c: float) -> float:
        top = bottom = 0.0
        QSQ = 0.0
        for gap, qu, P, PQ in blocks:
            sigma = c**gap
            SQ = sigma @ qu
            top += np.sum(P * sigma) - 2 * np.sum(SQ * PQ)
            bottom += np.sum(qu * SQ)
            QSQ = QSQ + qu.T @ SQ
        top += np.sum(QPQ * QSQ)
        return top / (n - bottom) * n / pairs

    if raw <= h(0.0):
        return 0.0
    if raw >= h(0.9):
        return 0.9
    return float(brentq(lambda c: h(c) - raw, 0.0, 0.9, xtol=1e-4))


def _harmonics(own: EffectiveTrustParams) -> int | None:
    """The harmonic pairs the trust's evaluation fits (None: the automatic rule)."""
    h = own.model.harmonics
    return None if h == "auto" else int(h)


def _noise(phi: float, rho: float, m: float) -> Noise:
    """The latent AR(1) process with dispersion ``phi`` and lag-1 autocorrelation ``rho`` of
    counts with mean ``m`` (the module's docstring)."""
    sigma2 = math.log1p((phi - 1) / m) if m > 0 else 0.0
    decay = 0.0
    if sigma2 > 1e-9 and rho > 0:
        decay = min(MAX_DECAY, math.log1p(rho * phi / m) / sigma2)
    return Noise(phi, rho, sigma2, decay, m)


def plan_frame(
    data: ProgrammeData,
    code: str,
    measure: str,
    params: ProgrammeParams,
    follow_up: int | None = None,
) -> PlanFrame:
    """The trust's series as its evaluation fits it, or projected: with ``follow_up``, each
    unit's series runs to ``follow_up`` months after its start (months beyond the data get the
    mean bed days of the unit's latest 12 months; months beyond the follow-up are cut). A trust
    that has not started is planned as if all its wards joined the month after its data end."""
    design = trust_design(data, code)
    if design.kind == "none":
        series = trust_series(data, code, measure, participating_only=False)
        if series.empty:
            raise ValueError(f"{code}: no months with {measure} recorded")
        start = series["month"].max() + pd.offsets.MonthBegin(1)
        design = TrustDesign("summed", (start,), design.comparison, ())
        if follow_up is None:
            follow_up = params.for_trust(code).horizon_months
    elif design.kind == "summed":
        series = trust_series(data, code, measure)
    else:
        series = ward_series(data, code, measure)
    series = series.reset_index(drop=True)
    unit, start = _units(series, design)
    if follow_up is not None:
        series, unit, start = _project(series, unit, start, design, follow_up)
    pre = series["month"].to_numpy() < start
    rates = {}
    for u in pd.unique(unit):
        rows = pre & (unit == u)
        bd = float(series.loc[rows, "occupied_bed_days"].sum())
        rates[u] = float(series.loc[rows, "count"].sum()) / bd if bd > 0 else 0.0
    months = int(pd.Series(series["month"][pre]).nunique())
    return PlanFrame(
        code,
        measure,
        design,
        series,
        unit,
        start,
        rates,
        estimate_noise(series, unit, pre, _harmonics(params.for_trust(code))),
        months,
    )


def series_frame(
    series: pd.DataFrame,
    start: str | pd.Timestamp,
    measure: str = "restrictive_practice",
    code: str = "series",
    follow_up: int | None = None,
) -> PlanFrame:
    """A :class:`PlanFrame` of one monthly series (``month``, ``count``,
    ``occupied_bed_days``) with a start month: a summed trust series built by hand (a stated
    plan, or a simulation study)."""
    series = series.reset_index(drop=True).copy()
    series["month"] = pd.to_datetime(series["month"])
    design = TrustDesign("summed", (pd.Timestamp(start),), ("all",), ())
    unit, starts = _units(series, design)
    if follow_up is not None:
        series, unit, starts = _project(series, unit, starts, design, follow_up)
    pre = series["month"].to_numpy() < starts
    bd = float(series.loc[pre, "occupied_bed_days"].sum())
    rate = float(series.loc[pre, "count"].sum()) / bd if bd > 0 else 0.0
    months = int(pd.Series(series["month"][pre]).nunique())
    noise = estimate_noise(series, unit, pre)
    return PlanFrame(code, measure, design, series, unit, starts, {"all": rate}, noise, months)


def _project(
    series: pd.DataFrame, unit: np.ndarray, start: np.ndarray, design: TrustDesign, follow_up: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    parts = []
    for u in pd.unique(unit):
        rows = series[unit == u]
        s = pd.Timestamp(start[unit == u][0])
        end = s + pd.DateOffset(months=follow_up - 1)
        keep = rows[rows["month"] <= end]
        last = keep["month"].max()
        extra = pd.date_range(last + pd.offsets.MonthBegin(1), end, freq="MS")
        if len(extra):
            template = rows.iloc[[-1] * len(extra)].copy()
            template["month"] = extra
            template["occupied_bed_days"] = float(rows["occupied_bed_days"].tail(12).mean())
            keep = pd.concat([keep, template], ignore_index=True)
        parts.append(keep)
    projected = pd.concat(parts, ignore_index=True)
    u2, s2 = _units(projected, design)
    return projected, u2, s2


def simulate_counts(frame: PlanFrame, rr: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` simulated count vectors (n × rows) for a fall to ``rr`` from each unit's start."""
    s = frame.series
    base = np.array([frame.rates[u] for u in frame.unit]) * s["occupied_bed_days"].to_numpy(float)
    mean = base * np.where(frame.post, rr, 1.0)
    noise = frame.noise
    latent = np.zeros((n, len(s)))
    if noise.sigma2 > 0:
        months = (s["month"].dt.year * 12 + s["month"].dt.month).to_numpy()
        for u in pd.unique(frame.unit):
            idx = np.flatnonzero(frame.unit == u)
            idx = idx[np.argsort(months[idx])]
            steps = np.diff(months[idx], prepend=months[idx][0])
            e = rng.normal(0.0, math.sqrt(noise.sigma2), size=n)
            latent[:, idx[0]] = e
            for j in range(1, len(idx)):
                a = noise.decay ** steps[j]
                e = a * e + rng.normal(0.0, math.sqrt(noise.sigma2 * (1 - a * a)), size=n)
                latent[:, idx[j]] = e
        latent -= noise.sigma2 / 2
    return rng.poisson(mean[None, :] * np.exp(latent)).astype(float)


def _detects(
    frame: PlanFrame, counts: np.ndarray, own: EffectiveTrustParams
) -> tuple[bool, float, float]:
    """Whether the evaluation of one simulated series finds a fall (95% interval of rr_h below
    1), with its estimate and standard error on the log scale (NaN when not estimable)."""
    from rrp_eval.evaluate.trust import fit_trust_its
    from rrp_eval.prepare import rate_per_1000

    series = frame.series.copy()
    series["count"] = counts
    if "rate_per_1000_obd" in series:
        series["rate_per_1000_obd"] = rate_per_1000(counts, series["occupied_bed_days"])
    m = fit_trust_its(None, frame.code, frame.measure, own, series=series, design=frame.design)  # type: ignore[arg-type]
    if m.result is None:
        return False, math.nan, math.nan
    r = m.result.rr_h
    se = (math.log(r.ci_high) - math.log(r.ci_low)) / (2 * 1.959964)
    return bool(r.ci_high < 1), math.log(r.estimate), se


@dataclass(frozen=True)
class PowerCell:
    rr: float
    follow_up: int | None
    n_sims: int
    detected: int
    estimates: np.ndarray = field(repr=False)
    ses: np.ndarray = field(repr=False)

    @property
    def power(self) -> float:
        return self.detected / self.n_sims

    @property
    def mc_se(self) -> float:
        """Binomial Monte Carlo error; at 0 or n detected, that of half a detection (an
        honest margin instead of ±0)."""
        n = self.n_sims
        p = min(max(self.power, 0.5 / n), 1 - 0.5 / n)
        return math.sqrt(p * (1 - p) / n)


def power_cell(
    frame: PlanFrame,
    own: EffectiveTrustParams,
    rr: float,
    n: int,
    seed: int,
    batch: int | None = None,
) -> PowerCell:
    """Power of the evaluation of ``frame`` to detect a fall to ``rr`` (``n`` simulations).
    With ``batch``, the simulations are made ``batch`` at a time and stop early once the
    verdict is :func:`settled` (``n_sims`` says how many were made: the first of the same
    ``n`` series, so that a cell run to the end is the cell without ``batch``)."""
    sims = simulate_counts(frame, rr, n, np.random.default_rng(seed))  # cheap: the fits are not
    out: list[tuple[bool, float, float]] = []
    for y in sims:
        out.append(_detects(frame, y, own))
        if batch is not None and len(out) % batch == 0 and len(out) < n:
            if settled(sum(d for d, _, _ in out), len(out)):
                break
    return PowerCell(
        rr,
        None,
        len(out),
        sum(d for d, _, _ in out),
        np.array([e for _, e, _ in out]),
        np.array([s for _, _, s in out]),
    )


def settled(detected: int, n: int, level: float = SETTLED) -> bool:
    """True when the ``level`` Clopper-Pearson interval of the power, ``detected`` of ``n``,
    lies inside one verdict band (no bound of :data:`VERDICT_BOUNDS` inside it)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(detected, n, alpha=1 - level, method="beta")
    return all(high < b or low >= b for b in VERDICT_BOUNDS)


def _seed(*parts: object) -> int:
    from rrp_eval.digest import digest

    return int(digest("plan", *[str(p) for p in parts])[:8], 16)


@dataclass(frozen=True)
class Detectability:
    """Whether a trust's data could show the programme's aim: the power of its evaluation,
    with its design as it is, to detect a fall of ``1 - aim`` in ``measure`` (``power``, with
    Monte Carlo error ``mc_se`` from ``n_sims`` simulations: a run makes them
    :data:`PAGE_BATCH` at a time and stops once the verdict is settled). NaN power when no
    simulation could be made (``reason``)."""

    code: str
    measure: str
    aim: float
    power: float
    mc_se: float
    n_sims: int
    months_before: int
    months_after: int
    dispersion: float
    lag1: float
    reason: str = ""

    @property
    def verdict(self) -> str:
        """``likely`` (power ≥ 80%), ``possible`` (50-80%), ``unlikely`` (< 50%), ``unknown``."""
        if not np.isfinite(self.power):
            return "unknown"
        return "likely" if self.power >= 0.8 else "possible" if self.power >= 0.5 else "unlikely"

    def sentence(self) -> str:
        fall = f"{1 - self.aim:.0%} fall"
        if not np.isfinite(self.power):
            return f"Whether these data could show a {fall} is not known: {self.reason}."
        words = {
            "likely": "could show",
            "possible": "might show",
            "unlikely": "are unlikely to show",
        }[self.verdict]
        return (
            f"These data {words} a real {fall}: an evaluation with this trust's wards, "
            f"{self.months_before} months before and {self.months_after} after the start, and "
            f"its baseline's variation finds such a fall {self.power:.0%} of the time "
            f"({self.n_sims} simulations, ±{1.96 * self.mc_se:.0%} from the simulation alone; "
            "a fall from the "
            "start month assumed: a fall that builds up over months is shown less often); "
            "80% is the usual standard."
        )


def detectability(
    data: ProgrammeData,
    code: str,
    params: ProgrammeParams | None = None,
    measure: str | None = None,
    aim: float = AIMS[0],
    n_sims: int = PAGE_SIMS,
) -> Detectability:
    """The power of the trust's evaluation, on its data as they are (its months before and
    after the start and its bed days), to detect a fall to ``aim`` in ``measure`` (default the
    headline measure), by up to ``n_sims`` simulations from its baseline, made
    :data:`PAGE_BATCH` at a time until the verdict is :func:`settled`. Cached in a run."""
    from rrp_eval.evaluate.trust import headline_measure

    params = params or data.params or ProgrammeParams()
    measure = measure or headline_measure(params, data.measures)
    own_data = data.only_trust(code)
    return cached(
        "detectability",
        (code, own_data.digest(), params.digest(code), measure, aim, n_sims),
        lambda: _detectability(own_data, code, params, measure, aim, n_sims),
    )


def _detectability(
    data: ProgrammeData, code: str, params: ProgrammeParams, measure: str, aim: float, n: int
) -> Detectability:
    design = trust_design(data, code)
    if design.kind == "none":
        return _unknown(code, measure, aim, "the trust has no participating ward (no start month)")
    try:
        frame = plan_frame(data, code, measure, params)
    except ValueError as exc:
        return _unknown(code, measure, aim, str(exc))
    if sum(frame.rates.values()) == 0:
        return _unknown(code, measure, aim, "no events before the start")
    own = params.for_trust(code)
    cell = power_cell(frame, own, aim, n, _seed(code, measure, aim), batch=PAGE_BATCH)
    post = int(pd.Series(frame.series["month"][frame.post]).nunique())
    return Detectability(
        code,
        measure,
        aim,
        cell.power,
        cell.mc_se,
        cell.n_sims,
        frame.baseline_months,
        post,
        frame.noise.dispersion,
        frame.noise.lag1,
    )


def _unknown(code: str, measure: str, aim: float, reason: str) -> Detectability:
    return Detectability(
        code, measure, aim, math.nan, math.nan, 0, 0, 0, math.nan, math.nan, reason
    )


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class TrustPlan:
    """A trust's plan: ``power`` (one row per follow-up and rate ratio: power and Monte Carlo
    error), the minimum detectable rate ratio at 80% power per follow-up (``mde``), and the
    follow-up months needed to detect each aim with 80% power (``months_needed``; None when
    none of the follow-ups simulated reaches it)."""

    code: str
    measure: str
    noise: Noise
    baseline_months: int
    power: pd.DataFrame
    mde: dict[int, float]
    months_needed: dict[float, int | None]
    cells: tuple[PowerCell, ...] = field(repr=False, default=())

    def table(self) -> pd.DataFrame:
        """One row per follow-up: the power for each aim and the minimum detectable ratio."""
        wide = self.power.pivot_table(index="follow_up", columns="rr", values="power")
        out = pd.DataFrame(index=wide.index)
        for aim in AIMS:
            if aim in wide:
                out[f"power_rr_{aim:.2f}".replace(".", "_")] = wide[aim]
        out["mde_rr"] = pd.Series(self.mde)
        out.insert(0, "trust_code", self.code)
        out.insert(1, "measure", self.measure)
        return out.reset_index()


def minimum_detectable(power: pd.Series, target: float = TARGET_POWER) -> float:
    """The rate ratio nearest 1 at which ``power`` (indexed by rate ratio) reaches ``target``,
    interpolated linearly in log rate ratio between the simulated ratios; NaN when no simulated
    ratio reaches it (the fall needed is larger than the largest simulated)."""
    p = power.sort_index(ascending=False)  # from ratios near 1 to large falls
    rr, pw = np.log(p.index.to_numpy(float)), p.to_numpy(float)
    pw = np.maximum.accumulate(pw)  # power rises with the fall (Monte Carlo noise aside)
    above = np.flatnonzero(pw >= target)
    if not len(above):
        return math.nan
    i = above[0]
    if i == 0:
        return float(math.exp(rr[0]))
    w = (target - pw[i - 1]) / (pw[i] - pw[i - 1])
    return float(math.exp(rr[i - 1] + w * (rr[i] - rr[i - 1])))


def plan_trust(
    data: ProgrammeData,
    code: str,
    params: ProgrammeParams | None = None,
    measure: str | None = None,
    follow_up: Sequence[int] = FOLLOW_UP,
    rr_grid: Sequence[float] = RR_GRID,
    n_sims: int = PLAN_SIMS,
) -> TrustPlan:
    """Power of the trust's evaluation by follow-up months (from its baseline: the months
    before its start, or all its months if it has not started) and true rate ratio, with the
    model and parameters its evaluation will use. Common random numbers across rate ratios at
    each follow-up, so the power curve is smooth enough to interpolate."""
    from rrp_eval.evaluate.trust import headline_measure

    params = params or data.params or ProgrammeParams()
    measure = measure or headline_measure(params, data.measures)
    own_data = data.only_trust(code)
    own = params.for_trust(code)
    grid = sorted({*rr_grid, *AIMS}, reverse=True)
    rows, cells = [], []
    noise, months = None, 0
    for f in follow_up:
        frame = plan_frame(own_data, code, measure, params, follow_up=f)
        if sum(frame.rates.values()) == 0:
            raise ValueError(f"{code}: no {measure} events in the baseline: nothing to plan from")
        noise, months = frame.noise, frame.baseline_months
        for rr in grid:
            cell = replace(power_cell(frame, own, rr, n_sims, _seed(code, measure, f)), follow_up=f)
            cells.append(cell)
            rows.append({"follow_up": f, "rr": rr, "power": cell.power, "mc_se": cell.mc_se})
    assert noise is not None
    return _trust_plan(code, measure, noise, months, rows, cells)


def stated_frame(
    rate_per_1000: float,
    bed_days: float,
    months_before: int,
    follow_up: int,
    dispersion: float = 1.0,
    lag1: float = 0.0,
    measure: str = "restrictive_practice",
    start: str = "2026-01-01",
) -> PlanFrame:
    """A plan from stated figures, before any data: a summed series with ``bed_days`` occupied
    bed days a month, ``rate_per_1000`` events per 1,000 of them, ``months_before`` months of
    baseline and ``follow_up`` after the start, and the stated Pearson dispersion and lag-1
    autocorrelation of the monthly counts (1 and 0: Poisson)."""
    if rate_per_1000 <= 0 or bed_days <= 0:
        raise ValueError("the rate and the bed days must be positive")
    if months_before < 6 or follow_up < 1:
        raise ValueError("at least 6 months before the start and 1 after are needed")
    if dispersion < 1 or not 0 <= lag1 < 1:
        raise ValueError("dispersion must be at least 1 and the autocorrelation in [0, 1)")
    first = pd.Timestamp(start) - pd.DateOffset(months=months_before)
    months = pd.date_range(first, periods=months_before + follow_up, freq="MS")
    m = rate_per_1000 * bed_days / 1000
    series = pd.DataFrame(
        {"month": months, "count": m, "occupied_bed_days": float(bed_days)},
    )
    design = TrustDesign("summed", (pd.Timestamp(start),), ("all",), ())
    unit, starts = _units(series, design)
    if lag1 > 0 and dispersion < 1.0 / (1.0 - lag1 / MAX_DECAY):
        raise ValueError(
            f"an autocorrelation of {lag1:g} needs a dispersion of at least "
            f"{1.0 / (1.0 - lag1 / MAX_DECAY):.2f} (counts cannot be more autocorrelated than "
            "their extra-Poisson variation allows)"
        )
    noise = _noise(dispersion, lag1, m)
    return PlanFrame(
        "stated",
        measure,
        design,
        series,
        unit,
        starts,
        {"all": rate_per_1000 / 1000},
        noise,
        months_before,
    )


def plan_frames(
    frames: dict[int, PlanFrame],
    own: EffectiveTrustParams,
    rr_grid: Sequence[float] = RR_GRID,
    n_sims: int = PLAN_SIMS,
) -> TrustPlan:
    """A :class:`TrustPlan` from one :class:`PlanFrame` per follow-up (a stated plan)."""
    grid = sorted({*rr_grid, *AIMS}, reverse=True)
    rows, cells = [], []
    frame = next(iter(frames.values()))
    for f, fr in frames.items():
        for rr in grid:
            cell = replace(
                power_cell(fr, own, rr, n_sims, _seed(fr.code, fr.measure, f)), follow_up=f
            )
            cells.append(cell)
            rows.append({"follow_up": f, "rr": rr, "power": cell.power, "mc_se": cell.mc_se})
    return _trust_plan(frame.code, frame.measure, frame.noise, frame.baseline_months, rows, cells)


def _trust_plan(
    code: str, measure: str, noise: Noise, months: int, rows: list[dict], cells: list[PowerCell]
) -> TrustPlan:
    table = pd.DataFrame(rows)
    mde = {
        int(f): minimum_detectable(part.set_index("rr")["power"])
        for f, part in table.groupby("follow_up")
    }
    needed: dict[float, int | None] = {}
    for aim in AIMS:
        ok = table[(table["rr"] == aim) & (table["power"] >= TARGET_POWER)]["follow_up"]
        needed[aim] = int(ok.min()) if len(ok) else None
    return TrustPlan(code, measure, noise, months, table, mde, needed, tuple(cells))


def programme_power(
    plans: Sequence[TrustPlan],
    sizes: Sequence[int] = PROGRAMME_SIZES,
    tau: float = DEFAULT_TAU,
    aim: float = AIMS[0],
    method: str = "random_effects_reml_hk",
    n_programmes: int = 1000,
    seed: int = 18,
) -> pd.DataFrame:
    """Power of the programme's pooled estimate of ``rr_h`` to show a fall (95% interval below
    1) when the programme's average true rate ratio is ``aim`` and trusts' true log ratios
    spread about it with SD ``tau``, by number of trusts and follow-up months.

    Each simulated programme draws its trusts (with replacement) from ``plans``, the trusts
    planned, and for each one of that trust's simulated evaluations at ``aim`` (its estimate
    and standard error, from :func:`plan_trust`); a trust's departure from the average, drawn
    from N(0, tau²), shifts its estimate (on the log scale the evaluation's estimate moves
    with the true effect); trusts whose simulated evaluation was not estimable leave the
    pooling, as they would. The trusts' estimates are pooled by ``method`` (a
    ``random_effects_{reml,pm,dl}[_hk]`` method; others are approximated by REML with the
    modified Hartung-Knapp interval, the default).
    """
    from rrp_eval.models.meta import pool_random_effects

    parts = method.split("_")
    how = (
        parts[2]
        if len(parts) >= 3 and parts[0] == "random" and parts[2] in ("reml", "pm", "dl")
        else "reml"
    )
    hk = method.endswith("_hk") or (how == "reml" and not method.startswith("random"))
    rng = np.random.default_rng(seed)
    follow_ups = sorted(set.intersection(*[{c.follow_up for c in p.cells} for p in plans]))
    rows = []
    for f in follow_ups:
        draws = []
        for p in plans:
            cell = next(c for c in p.cells if c.follow_up == f and math.isclose(c.rr, aim))
            draws.append((cell.estimates, cell.ses))
        for k in sizes:
            detected = 0
            for _ in range(n_programmes):
                who = rng.integers(len(draws), size=k)
                y, s = [], []
                for i in who:
                    est, se = draws[i]
                    j = rng.integers(len(est))
                    y.append(est[j] + rng.normal(0.0, tau))
                    s.append(se[j])
                pooled = pool_random_effects(np.array(y), np.array(s), how, hk, adhoc=hk)
                detected += bool(pooled.n_trusts >= 2 and pooled.ci_high < 1)
            power = detected / n_programmes
            rows.append(
                {
                    "follow_up": f,
                    "n_trusts": k,
                    "power": power,
                    "mc_se": math.sqrt(max(power * (1 - power), 1e-12) / n_programmes),
                }
            )
    return pd.DataFrame(rows)


def _plan_one(args: tuple) -> TrustPlan | str:
    data, code, params, measure, follow_up, n_sims = args
    try:
        return plan_trust(data, code, params, measure, follow_up, n_sims=n_sims)
    except ValueError as exc:
        return f"{code}: {exc}"


def plan_programme(
    data: str | None = None,
    params: str | None = None,
    trusts: Sequence[str] | None = None,
    measure: str | None = None,
    follow_up: Sequence[int] = FOLLOW_UP,
    n_sims: int = PLAN_SIMS,
    jobs: int | None = None,
    progress: bool = False,
) -> list[TrustPlan]:
    """Plan every trust of a programme (or ``trusts``) in ``jobs`` processes; a trust that
    cannot be planned (no events in its baseline, data errors) is named on stderr and left
    out. Raises ValueError when no trust can be planned."""
    import os
    import sys
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from rrp_eval.evaluate.programme import load_programme

    programme = load_programme(data, params)
    p = programme.params or ProgrammeParams()
    failed = programme.report.failed_trusts
    codes = list(trusts or [t for t in programme.trusts if t not in failed])
    unknown = [c for c in codes if c not in programme.trusts]
    if unknown:
        raise ValueError(
            f"not in the data: {', '.join(unknown)}; trusts are {', '.join(programme.trusts)}"
        )
    work = [(programme.only_trust(c), c, p, measure, tuple(follow_up), n_sims) for c in codes]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(work)))
    bar = tqdm(
        total=len(work), desc="rrp-eval plan", unit="trust", disable=not progress, file=sys.stderr
    )
    out: list[TrustPlan] = []
    with ProcessPoolExecutor(workers) as pool:
        for result in pool.map(_plan_one, work):
            bar.update(1)
            if isinstance(result, str):
                print(f"  not planned: {result}", file=sys.stderr)
            else:
                out.append(result)
    bar.close()
    if not out:
        raise ValueError("no trust could be planned")
    return out


def plan_tables(plans: Sequence[TrustPlan], tau: float = DEFAULT_TAU) -> dict[str, pd.DataFrame]:
    """``trusts``: per trust and follow-up, the power for each aim and the minimum detectable
    rate ratio; ``power``: the full power curves; ``programme``: the pooled estimate's power
    by number of trusts and follow-up (with 3 or more trusts planned, or a stated plan)."""
    trusts = pd.concat([p.table() for p in plans], ignore_index=True)
    curves = pd.concat(
        [p.power.assign(trust_code=p.code, measure=p.measure) for p in plans], ignore_index=True
    )
    tables = {"trusts": trusts.assign(table="trusts"), "power": curves.assign(table="power")}
    if len(plans) >= 3 or (len(plans) == 1 and plans[0].code == "stated"):
        prog = programme_power(plans, tau=tau)
        tables["programme"] = prog.assign(table="programme", tau=tau)
    return tables


def plan_text(plans: Sequence[TrustPlan], tables: dict[str, pd.DataFrame], tau: float) -> str:
    """The plan in words and small tables, for the console."""
    lines = []
    for p in plans:
        n = p.noise
        lines.append(
            # no count: the console output may be shared, and a mean of 1-4 events is a small
            # number under the disclosure rule
            f"{p.code} ({p.measure}): {p.baseline_months} baseline months, dispersion "
            f"{n.dispersion:.2f}, lag-1 autocorrelation {n.lag1:.2f}"
        )
        t = p.table()
        for r in t.itertuples(index=False):
            mde = "beyond the simulated range" if not np.isfinite(r.mde_rr) else f"{r.mde_rr:.2f}"
            lines.append(
                f"  {r.follow_up:>3} months after the start: power {r.power_rr_0_75:.0%} for a "
                f"25% fall, {r.power_rr_0_67:.0%} for a 33% fall; detectable with 80% power: "
                f"rate ratio {mde}"
            )
        for aim, months in p.months_needed.items():
            words = f"{months} months" if months else "not within the follow-ups simulated"
            lines.append(f"  80% power for a {1 - aim:.0%} fall: {words}")
    prog = tables.get("programme")
    if prog is not None:
        lines.append(
            f"Programme: power of the pooled estimate for an average 25% fall (trusts' true "
            f"effects spread with SD {tau:g} on the log scale), by trusts and months:"
        )
        wide = prog.pivot_table(index="n_trusts", columns="follow_up", values="power")
        lines.append("  trusts  " + "  ".join(f"{int(c):>4}m" for c in wide.columns))
        for k, row in wide.iterrows():
            lines.append(f"  {int(k):>6}  " + "  ".join(f"{v:>5.0%}" for v in row))
    sims = plans[0].cells[0].n_sims if plans and plans[0].cells else 0
    error = 1.96 * 0.5 / math.sqrt(max(sims, 1))
    lines.append(
        f"Simulated ({sims} series per cell; Monte Carlo error up to ±{error:.0%}) with the "
        "evaluation's own model; see docs/methods.md §9.1."
    )
    return "\n".join(lines)
