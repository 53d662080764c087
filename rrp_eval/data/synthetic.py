"""Synthetic series with known truth, for the demonstration run and simulation tests.

The generating model is documented in ``docs/methods.md`` ("Synthetic series").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def simulate_series(
    *,
    n_months: int = 48,
    start_index: int = 24,
    level_rr: float = 0.75,
    slope_rr: float = 1.0,
    pre_trend_rr: float = 1.0,
    rate_per_1000: float = 30.0,
    bed_days: float = 600.0,
    seasonal_amplitude: float = 0.0,
    nb_alpha: float = 0.0,
    ar1_rho: float = 0.0,
    ar1_sd: float = 0.0,
    first_month: str = "2020-01",
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Simulate one monthly count series with a known interruption.

    Parameters
    ----------
    n_months : int, default 48
        Length of the series.
    start_index : int, default 24
        0-based position of the first post-intervention month (h = 0).
    level_rr, slope_rr, pre_trend_rr : float
        True rate ratios: level change at h = 0, further change per month after the start, and
        the secular change per month.
    rate_per_1000 : float, default 30
        Rate per 1,000 occupied bed days in the first month, before seasonality and noise.
    bed_days : float, default 600
        Mean occupied bed days per month (drawn uniformly within +/- 10%).
    seasonal_amplitude : float, default 0
        Amplitude on the log scale of a 12-month sine wave peaking in April.
    nb_alpha : float, default 0
        Negative-binomial (NB2) over-dispersion: Var = mu + alpha mu^2; 0 gives Poisson counts.
    ar1_rho, ar1_sd : float, default 0
        Latent AR(1) noise on the log rate: lag-1 correlation and marginal standard deviation.
    first_month : str, default "2020-01"
        First month of the series.
    seed : int or numpy.random.Generator, default 0
        Seed; the same seed gives the same series.

    Returns
    -------
    pandas.DataFrame
        ``month`` (first of the month), ``h`` (months since the start), ``occupied_bed_days``,
        ``count`` and ``expected`` (the mean count given the latent noise).
    """
    if not 0 < start_index < n_months:
        raise ValueError(
            f"start_index={start_index} must lie inside the series (1..{n_months - 1})"
        )
    if not -1 < ar1_rho < 1:
        raise ValueError(f"ar1_rho={ar1_rho} must lie strictly between -1 and 1")
    if nb_alpha < 0 or ar1_sd < 0:
        raise ValueError("nb_alpha and ar1_sd must be >= 0")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    months = pd.date_range(first_month, periods=n_months, freq="MS")
    t = np.arange(n_months)
    h = t - start_index
    post = h >= 0
    obd = np.round(rng.uniform(0.9, 1.1, n_months) * bed_days)
    latent = np.zeros(n_months)
    if ar1_sd > 0:
        innovation_sd = ar1_sd * math.sqrt(1 - ar1_rho**2)
        latent[0] = rng.normal(0, ar1_sd)
        for i in range(1, n_months):
            latent[i] = ar1_rho * latent[i - 1] + rng.normal(0, innovation_sd)
    log_mu = (
        np.log(rate_per_1000 / 1000 * obd)
        + t * math.log(pre_trend_rr)
        + post * (math.log(level_rr) + h * math.log(slope_rr))
        + seasonal_amplitude * np.sin(2 * np.pi * (months.month.to_numpy() - 1) / 12)
        + latent
    )
    mu = np.exp(log_mu)
    lam = rng.gamma(1 / nb_alpha, nb_alpha * mu) if nb_alpha > 0 else mu
    return pd.DataFrame(
        {
            "month": months,
            "h": h,
            "occupied_bed_days": obd,
            "count": rng.poisson(lam),
            "expected": mu,
        }
    )
