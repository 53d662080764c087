"""How likely is it that a trust (or the programme) met the aim: a hierarchical normal model.

Each trust's estimated log rate ratio y_i (its ITS ``rr_h``) is taken as normal about its true
log ratio θ_i with its standard error s_i; the θ_i as normal about the programme's mean μ with
between-trust standard deviation τ; a flat prior on μ and a uniform prior on τ (Gelman et al.
2013, *Bayesian Data Analysis*, 3rd ed., §5.4-5.5, the "eight schools" model; Gelman 2006 on the
uniform prior for τ with few groups). τ is integrated over a grid from its marginal posterior
(eq. 5.21), μ and θ_i analytically given τ, so every probability is exact to the grid and
carries the uncertainty in τ that a plug-in (empirical Bayes) estimate leaves out.

Calibration (validation/aim_calibration.md): across a population of programmes the
probabilities can be read at face value; for one programme whose mean sits near the aim they
are over-confident at both ends, because every trust shares the error in the programme's
estimated mean. Reports therefore give each trust's probability beside the programme's, in
words and to one decimal (:func:`probability_words`).

A trust's probability borrows strength from the others: a trust with a wide interval is pulled
towards the programme's mean, so a striking estimate from little data is not read as success.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: the aims whose probabilities are reported: a fall of at least 25% and 33%, and any fall
AIM_THRESHOLDS = {"p_rr_le_0_75": 0.75, "p_rr_le_0_67": 0.67, "p_rr_lt_1": 1.0}
GRID_POINTS = 1000
#: fewer trusts than this give no probabilities: with a uniform prior the posterior of τ falls
#: off only like τ^(1-k), so with 3 or 4 trusts the grid's end (the prior's, in effect) moves
#: the probabilities by up to 0.07 (validation/aim_calibration.md, section 10); from 5 trusts
#: by less than 0.01
MIN_TRUSTS = 5
#: the τ grid runs to this many times the larger of the estimates' spread and largest SE
TOP_FACTOR = 10.0
TAU_SCALE: float | None = None


@dataclass(frozen=True)
class AimProbabilities:
    """Per trust (``trusts``: ``label, estimate, shrunken, shrunken_low, shrunken_high`` and
    one ``p_...`` column per aim) and for the programme's mean (``programme``: the same keys),
    with the posterior median of τ (``tau``)."""

    trusts: pd.DataFrame
    programme: dict[str, float]
    tau: float


def _tau_grid(y: np.ndarray, v: np.ndarray, points: int, factor: float = TOP_FACTOR) -> np.ndarray:
    # wide enough that the posterior of τ has (from MIN_TRUSTS trusts) negligible mass beyond
    # it: ten times the spread of the estimates and of their standard errors
    top = factor * max(float(np.std(y, ddof=1)), float(np.sqrt(np.max(v))), 0.05)
    return np.linspace(0.0, top, points)


def _conditionals(y: np.ndarray, v: np.ndarray, taus: np.ndarray):
    """Per τ: the log marginal posterior, μ's conditional mean and variance, and each θ_i's
    conditional mean and variance (BDA3 eqs. 5.17-5.21)."""
    t2 = taus[:, None] ** 2
    w = 1.0 / (v[None, :] + t2)  # grid x trusts
    v_mu = 1.0 / w.sum(axis=1)
    mu = (w * y[None, :]).sum(axis=1) * v_mu
    log_post = (
        0.5 * np.log(v_mu)
        + 0.5 * np.log(w).sum(axis=1)
        - 0.5 * (w * (y[None, :] - mu[:, None]) ** 2).sum(axis=1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(t2 > 0, t2 / (t2 + v[None, :]), 0.0)  # weight on the trust's own y
    mean = (1 - shrink) * mu[:, None] + shrink * y[None, :]
    var = shrink * v[None, :] + (1 - shrink) ** 2 * v_mu[:, None]
    return log_post, mu, v_mu, mean, var


def _mixture_quantile(weights: np.ndarray, mean: np.ndarray, sd: np.ndarray, q: float) -> float:
    """The q-quantile of a mixture of normals (weights over the τ grid), by bisection."""
    lo = float(np.min(mean - 10 * sd))
    hi = float(np.max(mean + 10 * sd))
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(weights @ stats.norm.cdf((mid - mean) / sd)) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def aim_probabilities(
    log_effects: Sequence[float],
    se: Sequence[float],
    labels: Sequence[str] | None = None,
    thresholds: dict[str, float] | None = None,
    points: int = GRID_POINTS,
    tau_scale: float | None = TAU_SCALE,
    top_factor: float = TOP_FACTOR,
) -> AimProbabilities:
    """The posterior probability that each trust's true rate ratio, and the programme's mean,
    is at or below each aim (default 0.75, 0.67, and below 1), with shrunken estimates.

    Trusts with a non-finite estimate or a standard error that is not positive are left out;
    fewer than ``MIN_TRUSTS`` (5) left raises ValueError (τ is not estimable well enough).
    """
    thresholds = thresholds or AIM_THRESHOLDS
    y_all = np.asarray(log_effects, float)
    s_all = np.asarray(se, float)
    names = list(labels) if labels is not None else [str(i) for i in range(len(y_all))]
    ok = np.isfinite(y_all) & np.isfinite(s_all) & (s_all > 0)
    if ok.sum() < MIN_TRUSTS:
        raise ValueError(
            f"fewer than {MIN_TRUSTS} trusts with an estimate: the spread between trusts is "
            "not estimable well enough to borrow strength"
        )
    y, v = y_all[ok], s_all[ok] ** 2
    taus = _tau_grid(y, v, points, top_factor)
    log_post, mu, v_mu, mean, var = _conditionals(y, v, taus)
    if tau_scale is not None:  # half-Cauchy prior on τ; uniform when None
        log_post = log_post - np.log1p((taus / tau_scale) ** 2)
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    sd = np.sqrt(var)
    rows = []
    for i, name in enumerate(np.asarray(names)[ok]):
        m, s = mean[:, i], sd[:, i]
        row = {
            "label": name,
            "estimate": math.exp(y[i]),
            "shrunken": math.exp(_mixture_quantile(weights, m, s, 0.5)),
            "shrunken_low": math.exp(_mixture_quantile(weights, m, s, 0.025)),
            "shrunken_high": math.exp(_mixture_quantile(weights, m, s, 0.975)),
        }
        for key, cut in thresholds.items():
            row[key] = float(weights @ stats.norm.cdf((math.log(cut) - m) / s))
        rows.append(row)
    sd_mu = np.sqrt(v_mu)
    programme = {
        "estimate": math.exp(_mixture_quantile(weights, mu, sd_mu, 0.5)),
        "ci_low": math.exp(_mixture_quantile(weights, mu, sd_mu, 0.025)),
        "ci_high": math.exp(_mixture_quantile(weights, mu, sd_mu, 0.975)),
        **{
            key: float(weights @ stats.norm.cdf((math.log(cut) - mu) / sd_mu))
            for key, cut in thresholds.items()
        },
    }
    cdf = np.cumsum(weights)
    tau = float(taus[np.searchsorted(cdf, 0.5)])
    return AimProbabilities(pd.DataFrame(rows), programme, tau)


#: how a probability is said: calibration is good to about ±0.1 at best, so one decimal
PROBABILITY_WORDS = (
    (0.9, "very likely"),
    (0.7, "likely"),
    (0.3, "uncertain"),
    (0.1, "unlikely"),
    (0.0, "very unlikely"),
)


def probability_words(p: float) -> str:
    """``"likely (0.8)"``: the band's word and the probability to one decimal (never
    "certain": validation/aim_calibration.md found trusts given ≥ 0.9 met the aim as seldom
    as 63-76% of the time in programmes whose mean sits near the aim)."""
    if not np.isfinite(p):
        return ""
    shown = f"{p:.1f}"  # the word follows the number shown, so "unlikely (0.3)" cannot occur
    word = next(w for cut, w in PROBABILITY_WORDS if float(shown) >= cut - 1e-9)
    return f"{word} ({shown})"
