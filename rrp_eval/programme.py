"""Programme-level pooling of trust effects (random-effects meta-analysis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

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


def pool_random_effects(
    log_effects: np.ndarray, se: np.ndarray, method: str = "dl", hartung_knapp: bool = False
) -> dict:
    """Inverse-variance random-effects pooling of log rate ratios.

    Parameters
    ----------
    log_effects, se : array
        Each trust's log rate ratio and its standard error.
    method : {"dl", "pm", "reml"}, default "dl"
        Between-trust variance by DerSimonian-Laird, Paule-Mandel (statsmodels) or REML.
    hartung_knapp : bool, default False
        Hartung-Knapp(-Sidik-Jonkman) interval: the variance of the pooled estimate from the
        weighted residuals, Σ w (y - μ)² / ((k - 1) Σ w), with t on k - 1 df.

    Returns
    -------
    dict
        ``estimate, ci_low, ci_high`` (rate ratios, normal 95% interval), ``pi_low, pi_high``
        (95% prediction interval for a new trust, Higgins, Thompson & Spiegelhalter 2009:
        t on k - 2 df; NaN below 3 trusts), ``i2``, ``tau2`` (log scale), ``n_trusts``.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; allowed: {', '.join(METHODS)}")
    y = np.asarray(log_effects, dtype=float)
    s = np.asarray(se, dtype=float)
    ok = np.isfinite(y) & np.isfinite(s) & (s > 0)
    y, s = y[ok], s[ok]
    k = len(y)
    out = dict.fromkeys(
        ["estimate", "ci_low", "ci_high", "pi_low", "pi_high", "i2", "tau2"], math.nan
    )
    out["n_trusts"] = k
    if k == 0:
        return out
    if k == 1:
        z = stats.norm.ppf(0.975)
        out.update(
            estimate=math.exp(y[0]),
            ci_low=math.exp(y[0] - z * s[0]),
            ci_high=math.exp(y[0] + z * s[0]),
            i2=0.0,
            tau2=0.0,
        )
        return out
    tau2 = _tau2(y, s**2, method)
    w = 1.0 / (s**2 + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se_mu = float(1.0 / math.sqrt(np.sum(w)))
    z = stats.norm.ppf(0.975)
    if hartung_knapp:
        se_mu = float(math.sqrt(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w))))
        z = stats.t.ppf(0.975, k - 1)
    w_fe = 1.0 / s**2
    q = float(np.sum(w_fe * (y - np.sum(w_fe * y) / np.sum(w_fe)) ** 2))
    out.update(
        estimate=math.exp(mu),
        ci_low=math.exp(mu - z * se_mu),
        ci_high=math.exp(mu + z * se_mu),
        i2=max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0,
        tau2=tau2,
    )
    if k >= 3:
        half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + se_mu**2)
        out.update(pi_low=math.exp(mu - half), pi_high=math.exp(mu + half))
    return out


def programme_effects(
    its_effects: pd.DataFrame, methods: tuple[str, ...] = ("dl", "pm", "reml")
) -> pd.DataFrame:
    """Pool every measure's ``level_rr``, ``slope_rr`` and ``rr_h`` over trusts.

    Parameters
    ----------
    its_effects : pandas.DataFrame
        The ``its_effects`` table with its ``*_log_se`` columns; rows whose status is not ``ok``
        are left out.
    methods : tuple of {"dl", "pm", "reml"}
        Each also with the Hartung-Knapp interval (``<method>_hk``).

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
            logs, ses = np.log(g[effect].to_numpy(float)), g[se_col].to_numpy(float)
            for method in methods:
                for hk in (False, True):
                    pooled = pool_random_effects(logs, ses, method, hk)
                    name = METHODS[method] + ("_hk" if hk else "")
                    rows.append({"measure": measure, "effect": effect, "method": name, **pooled})
    return pd.DataFrame(rows, columns=PROGRAMME_COLUMNS)
