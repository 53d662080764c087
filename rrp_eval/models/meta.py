"""Programme-level pooling of trust effects (random-effects meta-analysis)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats
from statsmodels.stats.meta_analysis import combine_effects

from rrp_eval.models import fe
from rrp_eval.models.results import FrozenMap, ResultMixin, as_figure
from rrp_eval.prepare import months_since

METHODS = {"dl": "random_effects_dl", "pm": "random_effects_pm", "reml": "random_effects_reml"}
EFFECTS = ("level_rr", "slope_rr", "rr_h")
PROGRAMME_COLUMNS = [
    "measure",
    "effect",
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "pi_low",
    "pi_high",
    "i2",
    "tau2",
    "n_trusts",
]


def _tau2(y: np.ndarray, v: np.ndarray, method: str) -> float:
    """Between-trust variance, truncated at 0.

    DerSimonian-Laird by its closed form (statsmodels 0.15's ``combine_effects`` returns a
    negative DL estimate untruncated when Q < k - 1, and then weights with it); Paule-Mandel
    by statsmodels' iteration.
    """
    if method == "pm":
        with np.errstate(divide="ignore", invalid="ignore"):
            return max(float(combine_effects(y, v, method_re="pm").tau2), 0.0)
    if method == "reml":
        return _tau2_reml(y, v)
    w = 1.0 / v
    mu_fe = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu_fe) ** 2)
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    return max(0.0, float((q - (len(y) - 1)) / denom)) if denom > 0 else 0.0


def _tau2_reml(y: np.ndarray, v: np.ndarray, tol: float = 1e-10, max_iter: int = 500) -> float:
    """REML between-trust variance by its fixed-point equation (Viechtbauer 2005, eq. 12):
    τ² = Σ w²((y - μ)² - v) / Σ w² + 1/Σ w, w = 1/(v + τ²), from the DL value, truncated at 0."""
    tau2 = _tau2(y, v, "dl")
    for _ in range(max_iter):
        w = 1.0 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        new = max(0.0, float(np.sum(w**2 * ((y - mu) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w)))
        if abs(new - tau2) < tol:
            return new
        tau2 = new
    return tau2


def _i2(v: np.ndarray, tau2: float) -> float:
    """I² = τ² / (τ² + s²) with the "typical" within-trust variance
    s² = (k - 1) Σw / ((Σw)² - Σw²), w = 1/v (Higgins & Thompson 2002, eq. 9; metafor's
    definition): the share of the variation that is between trusts, from the τ² of the
    method used. With DerSimonian-Laird's τ² it equals the Q-based (Q - (k - 1)) / Q."""
    w = 1.0 / v
    k = len(v)
    typical = (k - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    return float(tau2 / (tau2 + typical)) if tau2 > 0 else 0.0


def interval_se(low: np.ndarray, high: np.ndarray, level: float = 0.95) -> np.ndarray:
    """The standard error on the log scale that a trust's ``level`` interval implies: half its
    log width over the normal quantile.

    A trust's interval is a t interval on its own degrees of freedom (matched df for the
    integrated autocorrelation, Satterthwaite for the AR(1) plug-in), so this SE is the
    model SE inflated by t(df)/z: pooled as if known, a trust on few degrees of freedom
    enters with the uncertainty its own interval states, not the smaller one its SE alone
    would (the t-based inflation of issue 16; a trust on many df is barely changed)."""
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(np.asarray(high, float)) - np.log(np.asarray(low, float))) / (2 * z)


POOLED_FIELDS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "i2", "tau2", "n_trusts")


@dataclass(frozen=True, eq=False)
class PooledEffect(ResultMixin):
    """A random-effects pooled rate ratio over trusts (``pool_random_effects``).

    ``estimate, ci_low, ci_high`` are rate ratios (95% interval: normal, or t on k - 1 df with
    Hartung-Knapp); ``pi_low, pi_high`` the 95% prediction interval for a new trust (NaN below
    3 trusts); ``i2`` (from the method's τ², metafor's definition: see ``_i2``), ``tau2``
    (log scale) and ``n_trusts``. ``log_effects`` and
    ``se`` are the trusts that entered (finite, positive SE), ``log_se`` and ``df`` the pooled
    estimate's standard error and the interval's degrees of freedom (None: normal).
    """

    estimate: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    i2: float
    tau2: float
    n_trusts: int
    log_se: float
    df: int | None
    log_effects: tuple[float, ...]
    se: tuple[float, ...]
    labels: tuple[str, ...]
    spec: FrozenMap
    warnings: tuple[str, ...] = ()

    def row(self) -> dict[str, float]:
        """The fields of a ``programme_effects`` row."""
        return {name: getattr(self, name) for name in POOLED_FIELDS}

    @property
    def p_value(self) -> float:
        """Two-sided p-value against a rate ratio of 1 (normal, or t on ``df``)."""
        if not (math.isfinite(self.estimate) and self.log_se > 0):
            return math.nan
        stat = abs(math.log(self.estimate)) / self.log_se
        dist = stats.norm if self.df is None else stats.t(self.df)
        return float(2 * dist.sf(stat))

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row, ``pooled``: the 95% intervals (computed at fitting; ``alpha`` is ignored)."""
        del alpha
        return pd.DataFrame([{**self.row(), "p_value": self.p_value}], index=["pooled"]).astype(
            {"n_trusts": int}
        )

    def leave_one_out(self) -> pd.DataFrame:
        """The pooled estimate with each trust left out in turn (metafor ``leave1out``): how
        much the answer rests on one trust. One row per trust: ``left_out``, ``estimate``,
        ``ci_low``, ``ci_high``, ``tau2``, ``i2`` and ``change`` (the pooled ratio without the
        trust over the pooled ratio with every trust). Empty below 3 trusts."""
        columns = ["left_out", "estimate", "ci_low", "ci_high", "tau2", "i2", "change"]
        y, s = np.asarray(self.log_effects), np.asarray(self.se)
        if len(y) < 3:
            return pd.DataFrame(columns=columns)
        labels = self.labels or tuple(f"trust {i + 1}" for i in range(len(y)))
        rows = []
        for i, label in enumerate(labels):
            keep = np.arange(len(y)) != i
            sub = pool_random_effects(
                y[keep],
                s[keep],
                self.spec["method"],
                self.spec["hartung_knapp"],
                adhoc=self.spec.get("adhoc", False),
            )
            rows.append(
                {
                    "left_out": label,
                    **{k: getattr(sub, k) for k in ("estimate", "ci_low", "ci_high", "tau2", "i2")},
                    "change": sub.estimate / self.estimate,
                }
            )
        return pd.DataFrame(rows, columns=columns)

    def _summary_title(self) -> str:
        how = "normal"
        if self.spec["hartung_knapp"]:
            how = "modified Hartung-Knapp" if self.spec.get("adhoc") else "Hartung-Knapp"
        return f"Random-effects pooled rate ratio ({self.spec['method']}, {how} interval)"

    def plot(self, ax: Any = None) -> Any:
        """Forest plot: each trust's rate ratio (95% normal interval) and the pooled one."""
        from rrp_eval.plots import plot_forest

        y, s = np.asarray(self.log_effects), np.asarray(self.se)
        labels = self.labels or tuple(f"trust {i + 1}" for i in range(len(y)))
        table = pd.DataFrame(
            {
                "label": labels,
                "estimate": np.exp(y),
                "ci_low": np.exp(y - Z95 * s),
                "ci_high": np.exp(y + Z95 * s),
            }
        )
        return as_figure(plot_forest(table, self.row(), ax, title=self._summary_title()))

    def __repr__(self) -> str:
        return (
            f"PooledEffect({self.spec['method']}{'-HK' if self.spec['hartung_knapp'] else ''}: "
            f"{self.estimate:.3f} ({self.ci_low:.3f} to {self.ci_high:.3f}), "
            f"{self.n_trusts} trusts, tau2={self.tau2:.3g})"
        )


Z95 = float(stats.norm.ppf(0.975))


def pool_random_effects(
    log_effects: np.ndarray,
    se: np.ndarray,
    method: str = "dl",
    hartung_knapp: bool = False,
    labels: Sequence[str] | None = None,
    adhoc: bool = False,
) -> PooledEffect:
    """Inverse-variance random-effects pooling of log rate ratios.

    Parameters
    ----------
    log_effects, se : array
        Each trust's log rate ratio and its standard error (non-finite values and SEs of 0
        are left out).
    method : {"dl", "pm", "reml"}, default "dl"
        Between-trust variance by DerSimonian-Laird, Paule-Mandel (statsmodels) or REML.
    hartung_knapp : bool, default False
        Hartung-Knapp(-Sidik-Jonkman) interval: the variance of the pooled estimate from the
        weighted residuals, Σ w (y - μ)² / ((k - 1) Σ w), with t on k - 1 df (metafor
        ``test="knha"``).
    labels : sequence of str, optional
        The trusts' names, for the forest plot.
    adhoc : bool, default False
        With ``hartung_knapp``, the modified (ad hoc) version: the variance factor
        Σ w (y - μ)² / (k - 1) is floored at 1, so the interval is never narrower than the t
        interval with the usual random-effects standard error (Knapp & Hartung 2003; Röver,
        Knapp & Friede 2015; Jackson et al. 2017; metafor ``test="adhoc"``). Without the
        floor, homogeneous trusts give an interval narrower than the normal one.

    Returns
    -------
    PooledEffect
        ``estimate, ci_low, ci_high`` (rate ratios, 95% interval), ``pi_low, pi_high``
        (95% prediction interval for a new trust, Higgins, Thompson & Spiegelhalter 2009:
        t on k - 2 df, never narrower than the confidence interval; NaN below 3 trusts),
        ``i2`` (τ²-based as metafor reports it; Q-based for DL), ``tau2`` (log scale),
        ``n_trusts``.

    Examples
    --------
    >>> import numpy as np
    >>> pooled = pool_random_effects(np.log([0.7, 0.8, 0.9]), [0.1, 0.1, 0.1], "reml")
    >>> round(pooled.estimate, 3), pooled.n_trusts
    (0.796, 3)
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; allowed: {', '.join(METHODS)}")
    y = np.asarray(log_effects, dtype=float)
    s = np.asarray(se, dtype=float)
    names = list(labels) if labels is not None else [""] * len(y)
    if len(names) != len(y):
        raise ValueError(f"{len(names)} labels for {len(y)} effects")
    ok = np.isfinite(y) & np.isfinite(s) & (s > 0)
    y, s = y[ok], s[ok]
    k = len(y)
    out = dict.fromkeys(POOLED_FIELDS, math.nan) | {"n_trusts": k, "log_se": math.nan}
    out["df"] = None
    if k == 1:
        out.update(
            estimate=math.exp(y[0]),
            ci_low=math.exp(y[0] - Z95 * s[0]),
            ci_high=math.exp(y[0] + Z95 * s[0]),
            i2=0.0,
            tau2=0.0,
            log_se=float(s[0]),
        )
    elif k > 1:
        tau2 = _tau2(y, s**2, method)
        w = 1.0 / (s**2 + tau2)
        mu = float(np.sum(w * y) / np.sum(w))
        se_mu = float(1.0 / math.sqrt(np.sum(w)))
        z = Z95
        if hartung_knapp:
            factor = float(np.sum(w * (y - mu) ** 2) / (k - 1))
            if adhoc:
                factor = max(1.0, factor)
            se_mu = float(math.sqrt(factor / np.sum(w)))
            z = stats.t.ppf(0.975, k - 1)
            out["df"] = k - 1
        out.update(
            estimate=math.exp(mu),
            ci_low=math.exp(mu - z * se_mu),
            ci_high=math.exp(mu + z * se_mu),
            i2=_i2(s**2, tau2),
            tau2=tau2,
            log_se=se_mu,
        )
        if k >= 3:
            # never narrower than the interval for the mean effect itself
            half = max(stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + se_mu**2), z * se_mu)
            out.update(pi_low=math.exp(mu - half), pi_high=math.exp(mu + half))
    return PooledEffect(
        **out,
        log_effects=tuple(float(v) for v in y),
        se=tuple(float(v) for v in s),
        labels=tuple(n for n, keep in zip(names, ok, strict=True) if keep) if labels else (),
        spec=FrozenMap(
            {"method": method, "hartung_knapp": hartung_knapp, "adhoc": hartung_knapp and adhoc}
        ),
    )


def programme_effects(
    its_effects: pd.DataFrame, methods: tuple[str, ...] = ("dl", "pm", "reml")
) -> pd.DataFrame:
    """Pool every measure's ``level_rr``, ``slope_rr`` and ``rr_h`` over trusts.

    Parameters
    ----------
    its_effects : pandas.DataFrame
        The ``its_effects`` table; rows whose status is not ``ok`` are left out. Each trust
        enters with the standard error its own 95% interval implies (:func:`interval_se`:
        its degrees of freedom taken into account).
    methods : tuple of {"dl", "pm", "reml"}
        Each also with the modified (ad hoc) Hartung-Knapp interval (``<method>_hk``).

    Returns
    -------
    pandas.DataFrame
        ``PROGRAMME_COLUMNS``, one row per measure, effect and method.
    """
    ok = its_effects[its_effects["status"] == "ok"]
    rows = []
    for measure, g in ok.groupby("measure", sort=False):
        for effect in EFFECTS:
            se_col = f"{effect}_log_se"
            if se_col not in g or g[effect].isna().all():
                continue
            logs = np.log(g[effect].to_numpy(float))
            ses = interval_se(g[f"{effect}_low"], g[f"{effect}_high"])
            for method in methods:
                for hk in (False, True):
                    pooled = pool_random_effects(logs, ses, method, hk, adhoc=hk)
                    name = METHODS[method] + ("_hk" if hk else "")
                    row = pooled.row()
                    rows.append({"measure": measure, "effect": effect, "method": name, **row})
    return pd.DataFrame(rows, columns=PROGRAMME_COLUMNS)


# --- funnel plot (Spiegelhalter 2005) -----------------------------------------------------

FUNNEL_Z = {"95%": 1.959964, "99.8%": 3.090232}


def funnel_limits(
    rate: float, exposure: np.ndarray, phi: float = 1.0, per: float = 1000.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """95% and 99.8% control limits of a rate against its exposure.

    Exact Poisson limits (Spiegelhalter 2005): the count quantiles of Poisson(rate × exposure)
    for the two-sided level, interpolated between integers as Spiegelhalter recommends, over the
    exposure; with over-dispersion ``phi`` > 1 the normal limits rate ± z √(φ rate / exposure)
    (the multiplicative adjustment). Returned per 1,000 (``per``) units of exposure.
    """
    from scipy import stats

    e = np.asarray(exposure, dtype=float)
    theta = rate / per
    out = {}
    for name, z in FUNNEL_Z.items():
        if phi > 1:
            half = z * np.sqrt(phi * theta / e)
            low, high = np.maximum(theta - half, 0.0), theta + half
        else:
            p = stats.norm.cdf(z)
            mean = theta * e
            upper = stats.poisson.ppf(p, mean)
            lower = stats.poisson.ppf(1 - p, mean)
            # Spiegelhalter's interpolation: move within the integer step by how far the
            # cumulative probability overshoots the target
            alpha_u = (stats.poisson.cdf(upper, mean) - p) / np.maximum(
                stats.poisson.pmf(upper, mean), 1e-300
            )
            alpha_l = (stats.poisson.cdf(lower, mean) - (1 - p)) / np.maximum(
                stats.poisson.pmf(lower, mean), 1e-300
            )
            high = (upper - alpha_u) / e
            low = np.maximum(lower - alpha_l, 0.0) / e
        out[name] = (low * per, high * per)
    return out


def funnel_table(
    counts: pd.Series,
    exposure: pd.Series,
    labels: pd.Series,
    overdispersion: bool = True,
    per: float = 1000.0,
) -> tuple[pd.DataFrame, float, float]:
    """Each unit's rate, z-score and where it falls on the funnel.

    Returns (table, overall rate, phi): phi is the over-dispersion factor from the z-scores
    winsorised at 10% in each tail (Spiegelhalter 2005, §3); 1 when ``overdispersion`` is False
    or the spread is no more than Poisson.
    """
    x = counts.to_numpy(dtype=float)
    e = exposure.to_numpy(dtype=float)
    theta = x.sum() / e.sum()
    z = (x / e - theta) / np.sqrt(theta / e)
    phi = 1.0
    if overdispersion and len(z) >= 5:
        lo, hi = np.quantile(z, [0.1, 0.9])
        zw = np.clip(z, lo, hi)
        phi = max(1.0, float(np.mean(zw**2)))
    limits = funnel_limits(theta * per, e, phi, per)
    rate = x / e * per
    where = np.where(
        rate > limits["99.8%"][1],
        "above 99.8%",
        np.where(
            rate > limits["95%"][1],
            "above 95%",
            np.where(
                rate < limits["99.8%"][0],
                "below 99.8%",
                np.where(rate < limits["95%"][0], "below 95%", "within"),
            ),
        ),
    )
    table = pd.DataFrame(
        {
            "label": labels.to_numpy(),
            "count": x,
            "exposure": e,
            "rate_per_1000_obd": rate,
            "z": z / np.sqrt(phi),
            "position": where,
        }
    )
    return table, theta * per, phi


# --- aim attainment ------------------------------------------------------------------------

AIMS = {"MHSIP (25% reduction)": 0.25, "NCCMH pilot (33% reduction)": 0.33}
BASELINE_MONTHS = (-12, -1)
FOLLOW_UP_MONTHS = (6, 17)


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion (Newcombe 1998)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def ward_changes(
    ward_month: pd.DataFrame,
    wards: pd.DataFrame,
    measure: str,
    baseline: tuple[int, int] = BASELINE_MONTHS,
    follow_up: tuple[int, int] = FOLLOW_UP_MONTHS,
) -> pd.DataFrame:
    """Each participating ward's rate in a baseline and a follow-up window and their ratio.

    Windows are in months since the ward's start (default the 12 months before it, and months
    6 to 17 after it, leaving the first months of change aside); a ward needs at least 6
    months with data in each window and some events in its baseline.
    """
    part = wards[wards["start_month"].notna()][["trust_code", "ward_id", "start_month"]]
    wm = ward_month.merge(part, on=["trust_code", "ward_id"])
    wm = wm[wm[measure].notna() & (wm["occupied_bed_days"] > 0)]
    h = months_since(wm["month"], wm["start_month"])
    keys = ["trust_code", "ward_id"]
    y = wm[measure].astype(float)
    bd = wm["occupied_bed_days"].astype(float)
    windows = {}
    for name, (lo, hi) in (("b", baseline), ("f", follow_up)):
        inside = h.between(lo, hi)
        d = pd.DataFrame({"k": y[inside], "bd": bd[inside]}).join(wm.loc[inside, keys])
        windows[name] = d.groupby(keys, sort=True).agg(
            k=("k", "sum"), bd=("bd", "sum"), n=("k", "size")
        )
    b, f = windows["b"], windows["f"]
    both = b.merge(f, left_index=True, right_index=True, suffixes=("_b", "_f"))
    both = both[(both["n_b"] >= 6) & (both["n_f"] >= 6) & (both["k_b"] > 0)]
    if both.empty:
        return pd.DataFrame(columns=WARD_CHANGE_COLUMNS)
    # the baseline months' Pearson dispersion about the baseline rate (floored at 1)
    inside = h.between(*baseline)
    base = wm.loc[inside, keys].assign(y=y[inside], bd=bd[inside])
    base = base.merge(both[["k_b", "bd_b", "n_b"]].reset_index(), on=keys)
    mu = base["k_b"] / base["bd_b"] * base["bd"]
    base["pearson"] = (base["y"] - mu) ** 2 / mu
    phi = base.groupby(keys, sort=True)["pearson"].sum() / (both["n_b"] - 1)
    kb, bb, kf, bf = both["k_b"], both["bd_b"], both["k_f"], both["bd_f"]
    out = pd.DataFrame(
        {
            "baseline_rate": kb / bb * 1000,
            "follow_up_rate": kf / bf * 1000,
            "ratio": (kf / bf) / (kb / bb),
            # counts + 0.5 (Haldane-Anscombe): finite for a ward with no events after
            "log_ratio": np.log((kf + 0.5) / bf) - np.log((kb + 0.5) / bb),
            "baseline_events": kb.astype(float),
            "follow_up_events": kf.astype(float),
            "baseline_bed_days": bb.astype(float),
            "follow_up_bed_days": bf.astype(float),
            "dispersion": np.maximum(1.0, phi.reindex(both.index).to_numpy(float)),
            "baseline_months": both["n_b"].astype(int),
            "follow_up_months": both["n_f"].astype(int),
        },
        index=both.index,
    ).reset_index()
    return out.reindex(columns=WARD_CHANGE_COLUMNS)


WARD_CHANGE_COLUMNS = [
    "trust_code",
    "ward_id",
    "baseline_rate",
    "follow_up_rate",
    "ratio",
    "log_ratio",
    "baseline_events",
    "follow_up_events",
    "baseline_bed_days",
    "follow_up_bed_days",
    "dispersion",
    "baseline_months",
    "follow_up_months",
]


def aims_by_chance(changes: pd.DataFrame, n_sim: int = 2000, seed: int = 16) -> pd.DataFrame:
    """The share of wards that would meet each aim if nothing had changed.

    Each ward's baseline and follow-up windows are simulated ``n_sim`` times at its own
    baseline rate (per month, with its own bed days spread evenly over its months) with its
    baseline's over-dispersion (gamma-Poisson with the Pearson dispersion φ ≥ 1); a ward
    meets an aim when its simulated follow-up rate is at least that much below its simulated
    baseline rate, and, as in :func:`ward_changes`, a simulated baseline without events
    does not count. Returns per aim the expected share and its 2.5% and 97.5% points across
    the simulated programmes: what noise alone gives (the issue measured 27% of wards at 10
    events a year meeting the 25% aim with no change).
    """
    rng = np.random.default_rng(seed)
    c = changes
    rate = (c["baseline_events"] / c["baseline_bed_days"]).to_numpy(float)
    out = np.zeros((n_sim, len(AIMS)))
    phi = c["dispersion"].to_numpy(float)
    totals = {}
    for window in ("baseline", "follow_up"):
        months = c[f"{window}_months"].to_numpy(int)
        lam = np.broadcast_to(
            rate * c[f"{window}_bed_days"].to_numpy(float) / months, (n_sim, len(c))
        )
        over = phi > 1  # gamma-Poisson with variance φ × mean: shape mean / (φ - 1)
        total = np.zeros((n_sim, len(c)))
        for m in range(int(months.max())):
            draw = lam.copy()
            if over.any():
                shape = lam[:, over] / (phi[over] - 1)
                draw[:, over] = rng.gamma(np.maximum(shape, 1e-12), phi[over] - 1)
            total += rng.poisson(draw) * (m < months)
        totals[window] = total
    kb, kf = totals["baseline"], totals["follow_up"]
    bb = c["baseline_bed_days"].to_numpy(float)
    bf = c["follow_up_bed_days"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (kf / bf) / (kb / bb)
    counted = kb > 0
    for j, cut in enumerate(AIMS.values()):
        met = (ratio <= 1 - cut) & counted
        out[:, j] = met.sum(axis=1) / np.maximum(counted.sum(axis=1), 1)
    return pd.DataFrame(
        {
            "aim": list(AIMS),
            "expected_share": out.mean(axis=0),
            "low": np.quantile(out, 0.025, axis=0),
            "high": np.quantile(out, 0.975, axis=0),
        }
    )


def aims_shrunken(changes: pd.DataFrame) -> pd.DataFrame:
    """The share of wards whose true rate ratio meets each aim, estimated from shrunken ward
    effects (empirical Bayes).

    Each ward's log ratio y_w (counts + 0.5) has sampling variance
    v_w = φ_w (1/(k_f + 0.5) + 1/(k_b + 0.5)) (φ_w its baseline over-dispersion); the wards'
    true log ratios are taken as normal with mean μ and variance τ² (REML, as the trusts'
    meta-analysis), so a ward's posterior is normal with mean μ + B_w (y_w - μ) and variance
    B_w v_w + (1 - B_w)² Var(μ̂), B_w = τ² / (τ² + v_w) (Morris 1983). The estimated
    share meeting an aim is the mean over wards of the posterior probability that the ward's
    ratio is at least that much below 1. Noise no longer counts as success; wards that
    joined after a bad spell still carry regression to the mean in their own baseline,
    which no before-after estimate removes.
    """
    y = changes["log_ratio"].to_numpy(float)
    v = changes["dispersion"].to_numpy(float) * (
        1 / (changes["follow_up_events"].to_numpy(float) + 0.5)
        + 1 / (changes["baseline_events"].to_numpy(float) + 0.5)
    )
    if len(y) < 3:
        tau2 = 0.0
    else:
        tau2 = _tau2_reml(y, v)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    shrink = tau2 / (tau2 + v)
    post_mean = mu + shrink * (y - mu)
    # with μ's own uncertainty (Morris 1983): exact when τ² is 0, small otherwise
    post_sd = np.sqrt(shrink * v + (1 - shrink) ** 2 / np.sum(w))
    rows = []
    for aim, cut in AIMS.items():
        z = (math.log(1 - cut) - post_mean) / np.where(post_sd > 0, post_sd, np.inf)
        p = np.where(post_sd > 0, stats.norm.cdf(z), (post_mean <= math.log(1 - cut)) * 1.0)
        rows.append(
            {
                "aim": aim,
                "estimated_share": float(p.mean()),
                "shrunken_meeting": int((post_mean <= math.log(1 - cut)).sum()),
                "mean_ratio": math.exp(mu),
                "tau": math.sqrt(tau2),
            }
        )
    return pd.DataFrame(rows)


def aim_attainment(changes: pd.DataFrame) -> pd.DataFrame:
    """Share of wards whose rate fell by at least each aim, with Wilson 95% intervals."""
    n = len(changes)
    rows = []
    for aim, cut in AIMS.items():
        k = int((changes["ratio"] <= 1 - cut).sum()) if n else 0
        low, high = wilson_interval(k, n)
        rows.append(
            {
                "aim": aim,
                "wards_meeting": k,
                "wards": n,
                "share": k / n if n else math.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def aims_table(changes: pd.DataFrame, n_sim: int = 2000) -> pd.DataFrame:
    """Per aim: the wards meeting it (:func:`aim_attainment`), the share expected if nothing
    had changed (:func:`aims_by_chance`: ``chance``, ``chance_low``, ``chance_high``) and the
    share estimated from shrunken ward effects (:func:`aims_shrunken`: ``estimated``)."""
    att = aim_attainment(changes)
    chance = aims_by_chance(changes, n_sim).rename(
        columns={"expected_share": "chance", "low": "chance_low", "high": "chance_high"}
    )
    shrunk = aims_shrunken(changes)[["aim", "estimated_share"]].rename(
        columns={"estimated_share": "estimated"}
    )
    return att.merge(chance, on="aim").merge(shrunk, on="aim")


def breakdown(changes: pd.DataFrame, wards: pd.DataFrame, by: str) -> pd.DataFrame:
    """Wards' before-after rate ratios summarised by ``by`` (ward type, cohort or region).

    The geometric mean ratio with a t interval on the log ratios (counts + 0.5, so that a ward
    with no events after joining does not make the mean 0), and the share of wards that met
    the 25% aim. An uncontrolled before-after comparison: it describes where change
    happened, it does not separate the programme from secular trends.
    """
    from scipy import stats

    data = changes.merge(wards[["trust_code", "ward_id", by]], on=["trust_code", "ward_id"])
    rows = []
    for key, g in data.groupby(by, dropna=False, sort=True):
        logs = g["log_ratio"].to_numpy(float)
        n = len(logs)
        mean = float(logs.mean())
        half = (
            float(stats.t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n))
            if n > 1
            else math.nan
        )
        rows.append(
            {
                by: "unknown" if pd.isna(key) else key,
                "wards": n,
                "ratio": math.exp(mean),
                "ci_low": math.exp(mean - half) if n > 1 else math.nan,
                "ci_high": math.exp(mean + half) if n > 1 else math.nan,
                "met_25": float((g["ratio"] <= 0.75).mean()),
            }
        )
    return pd.DataFrame(rows)


# --- pooled model on the ward panel (GEE, clustered by trust) ---------------------------------


def pooled_gee(
    ward_month: pd.DataFrame,
    wards: pd.DataFrame,
    measure: str,
    horizon: int = 12,
    harmonics: int = 2,
    phase_in: int = 0,
) -> dict[str, dict]:
    """One programme effect from every participating ward: a GEE on the ward panel.

    log E[y_wt] = log(bed days) + α_w + β·t + seasonality + γ·D_wt + δ·h_wt·D_wt, with ward
    fixed effects α_w, a common calendar trend β (months since the first month), two harmonic
    pairs of the month, D = 1 from the ward's own start and h the months since it; Poisson
    mean-variance (quasi-likelihood), independence working correlation, and the sandwich
    covariance clustered by trust with Mancl & DeRouen's (2001) bias-reduced correction for
    few clusters (the numbers of statsmodels' ``GEE`` with ``cov_type="bias_reduced"``, with the
    ward effects absorbed: :mod:`rrp_eval.models.fe`). Comparison wards are left
    out (they enter the controlled analysis instead). With ``phase_in`` k, each ward's months
    0 to k - 1 after joining are left out and h counts from month k, so ``level_rr`` is the
    change at month k, as in the trust ITS and the controlled model.

    Returns
    -------
    dict
        ``level_rr``, ``slope_rr`` and ``rr_h`` each as ``estimate, ci_low, ci_high`` (t on
        the number of trusts - 1 df), plus ``n_trusts``, ``n_wards`` and ``cov_type``
        (``bias_reduced``, or ``robust`` when the bias-reduced correction is singular).
    """
    part = wards[wards["start_month"].notna()][["trust_code", "ward_id", "start_month"]]
    d = ward_month.merge(part, on=["trust_code", "ward_id"])
    d = d[d[measure].notna() & (d["occupied_bed_days"] > 0)].copy()
    if d.empty:
        raise ValueError(f"no participating ward with {measure} recorded")
    h = months_since(d["month"], d["start_month"])
    d = d[~h.between(0, phase_in - 1)].copy()
    h = h[d.index]
    first = d["month"].min()
    d["t"] = months_since(d["month"], first)
    d["post"] = (h >= 0).astype(float)
    d["slope"] = (h - phase_in).clip(lower=0).astype(float) * d["post"]
    X = pd.DataFrame(
        {"t": d["t"].astype(float), "level_change": d["post"], "slope_change": d["slope"]},
        index=d.index,
    )
    month = d["month"].dt.month.to_numpy()
    for j in range(1, harmonics + 1):
        X[f"sin{j}"] = np.sin(2 * np.pi * j * month / 12)
        X[f"cos{j}"] = np.cos(2 * np.pi * j * month / 12)
    ward_key = d["trust_code"] + "/" + d["ward_id"]
    n_wards = int(ward_key.nunique())
    # a ward with no event has its effect at minus infinity and tells nothing about the rest
    # (the likelihood's limit): its months leave the fit, as in the controlled model
    has_events = d.groupby(ward_key)[measure].transform("sum").to_numpy() > 0
    X, d, ward_key = X[has_events], d[has_events], ward_key[has_events]
    if d.empty:
        raise ValueError(f"no participating ward with {measure} events")
    groups = pd.factorize(d["trust_code"])[0]
    wards_code, ward_names = pd.factorize(ward_key)
    y = d[measure].to_numpy(float)
    fit = fe.fit_poisson(
        y,
        np.log(d["occupied_bed_days"].to_numpy(float)),
        sparse.csr_matrix(X.to_numpy(float)),
        wards_code,
        len(ward_names),
        tol=1e-12,
    )
    try:
        scores = fe.bias_reduced_scores(fit, y - fit.mu, groups)
        cov_type = "bias_reduced"
    except np.linalg.LinAlgError:
        # a trust whose wards have leverage 1 makes I - H singular: the plain sandwich
        scores = fe.cluster_scores(fit.design, y - fit.mu, groups)
        cov_type = "robust"
    params = pd.Series(fit.beta[: X.shape[1]], index=X.columns)
    # the sandwich on the columns of interest (the first ones of the design)
    L = np.eye(X.shape[1], fit.design.shape[1])
    cov = pd.DataFrame(fe.sandwich(fit.hessian, scores, L), index=X.columns, columns=X.columns)
    k = len(np.unique(groups))
    q = stats.t.ppf(0.975, k - 1)
    out: dict[str, dict] = {
        "n_trusts": k,
        "n_wards": n_wards,
        "cov_type": cov_type,
    }
    for name, w in (
        ("level_rr", {"level_change": 1.0}),
        ("slope_rr", {"slope_change": 1.0}),
        ("rr_h", {"level_change": 1.0, "slope_change": float(horizon - phase_in)}),
    ):
        vec = pd.Series(0.0, index=params.index)
        for term, value in w.items():
            vec[term] = value
        est = float(vec @ params)
        se = float(np.sqrt(vec @ cov @ vec))
        out[name] = {
            "estimate": math.exp(est),
            "ci_low": math.exp(est - q * se),
            "ci_high": math.exp(est + q * se),
        }
    return out


def gee_rows(
    ward_month: pd.DataFrame,
    wards: pd.DataFrame,
    measures: tuple[str, ...],
    horizon: int = 12,
    phase_in: int = 0,
) -> pd.DataFrame:
    """``programme_effects`` rows (method ``gee_pooled``) for every measure that can be fitted."""
    rows = []
    for m in measures:
        try:
            fit = pooled_gee(ward_month, wards, m, horizon, phase_in=phase_in)
        except (ValueError, np.linalg.LinAlgError):
            continue
        for effect in EFFECTS:
            rows.append(
                {
                    "measure": m,
                    "effect": effect,
                    "method": "gee_pooled",
                    **fit[effect],
                    "pi_low": math.nan,
                    "pi_high": math.nan,
                    "i2": math.nan,
                    "tau2": math.nan,
                    "n_trusts": fit["n_trusts"],
                }
            )
    return pd.DataFrame(rows, columns=PROGRAMME_COLUMNS)


def rate_intervals(counts: pd.Series, exposure: pd.Series, per: float = 1000.0) -> pd.DataFrame:
    """Exact (Garwood) 95% Poisson intervals of each unit's rate, for a caterpillar plot."""
    from scipy import stats

    x = counts.to_numpy(dtype=float)
    e = exposure.to_numpy(dtype=float)
    low = np.where(x > 0, stats.chi2.ppf(0.025, 2 * x) / 2, 0.0) / e * per
    high = stats.chi2.ppf(0.975, 2 * x + 2) / 2 / e * per
    return pd.DataFrame({"rate": x / e * per, "ci_low": low, "ci_high": high}, index=counts.index)
