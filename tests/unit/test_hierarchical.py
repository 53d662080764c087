"""Probability of meeting the aim: the hierarchical normal model (BDA3 §5.4-5.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rrp_eval.models.hierarchical import GRID_POINTS, aim_probabilities, probability_words

SCHOOLS_Y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
SCHOOLS_SE = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
#: Gelman et al. (2013) Table 5.3: posterior medians of the eight schools' effects (200 draws)
SCHOOLS_MEDIANS = [10, 8, 7, 8, 5, 6, 10, 8]


def test_eight_schools_posterior_medians_match_the_published_table():
    res = aim_probabilities(SCHOOLS_Y, SCHOOLS_SE, thresholds={"p_le_0": math.exp(0)})
    medians = np.log(res.trusts["shrunken"].to_numpy())
    # the table's medians are from 200 simulation draws (Monte Carlo error about 0.7)
    np.testing.assert_allclose(medians, SCHOOLS_MEDIANS, atol=1.6)


def _brute_force(y, se, cut, points=801):
    """The same posterior by direct integration over a (μ, τ) grid of the likelihood
    prod N(y_i; μ, s_i² + τ²), flat priors: an independent route to the probabilities."""
    v = se**2
    taus = np.linspace(0, 4 * max(np.std(y, ddof=1), np.sqrt(v.max())), points)[1:]
    mus = np.linspace(y.min() - 4 * se.max(), y.max() + 4 * se.max(), points)
    M, T = np.meshgrid(mus, taus, indexing="ij")
    total = v[None, None, :] + T[..., None] ** 2
    loglik = stats.norm.logpdf(y[None, None, :], M[..., None], np.sqrt(total)).sum(axis=-1)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    prec = 1 / v[None, None, :] + 1 / T[..., None] ** 2
    mean = (y[None, None, :] / v[None, None, :] + M[..., None] / T[..., None] ** 2) / prec
    p_trust = (w[..., None] * stats.norm.cdf((cut - mean) * np.sqrt(prec))).sum(axis=(0, 1))
    p_mu = float((w * (M <= cut)).sum())
    return p_trust, p_mu


@pytest.mark.parametrize("cut", [0.0, 10.0])
def test_probabilities_equal_direct_integration_over_mu_and_tau(cut):
    res = aim_probabilities(SCHOOLS_Y, SCHOOLS_SE, thresholds={"p": math.exp(cut)})
    p_trust, p_mu = _brute_force(SCHOOLS_Y, SCHOOLS_SE, cut)
    np.testing.assert_allclose(res.trusts["p"], p_trust, atol=5e-3)
    assert res.programme["p"] == pytest.approx(p_mu, abs=5e-3)


def test_a_trust_with_little_data_is_pulled_to_the_programme():
    y = np.log([0.8, 0.85, 0.75, 0.9, 0.82, 0.3])
    se = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 2.0])  # the last: a striking fall from little data
    res = aim_probabilities(y, se)
    last = res.trusts.iloc[-1]
    assert last["estimate"] == pytest.approx(0.3)
    assert 0.7 < last["shrunken"] < 0.9  # near the others, not 0.3
    assert abs(last["p_rr_le_0_75"] - res.programme["p_rr_le_0_75"]) < 0.25
    assert 0 <= res.programme["p_rr_le_0_67"] <= res.programme["p_rr_le_0_75"]
    assert res.programme["p_rr_le_0_75"] <= res.programme["p_rr_lt_1"] <= 1


def test_fewer_than_five_trusts_is_refused():
    with pytest.raises(ValueError, match="fewer than 5 trusts"):
        aim_probabilities([0.1, -0.2, 0.0, 0.3, np.nan], [0.1, 0.2, 0.1, 0.1, 0.1])
    assert len(aim_probabilities([0.1, -0.2, 0.0, 0.3, 0.2], [0.1, 0.2, 0.1, 0.1, 0.1]).trusts)


def test_the_grid_reaches_far_enough_for_five_trusts():
    # the posterior of tau decays like tau^(1-k): a grid ten times longer must not move the
    # probabilities (it moved them by up to 0.07 with 3 trusts and a grid 4x the spread)
    y, se = np.log([0.7, 0.9, 0.8, 1.1, 0.6]), np.array([0.3, 0.25, 0.4, 0.3, 0.35])
    base = aim_probabilities(y, se)
    longer = aim_probabilities(y, se, points=10 * GRID_POINTS, top_factor=100)
    np.testing.assert_allclose(
        base.trusts["p_rr_le_0_75"], longer.trusts["p_rr_le_0_75"], atol=0.01
    )


@pytest.mark.parametrize(
    ("p", "words"),
    [
        (0.97, "very likely (1.0)"),
        (0.87, "very likely (0.9)"),
        (0.8, "likely (0.8)"),
        (0.5, "uncertain (0.5)"),
        (0.29, "uncertain (0.3)"),
        (0.12, "unlikely (0.1)"),
        (0.02, "very unlikely (0.0)"),
    ],
)
def test_probability_words(p, words):
    assert probability_words(p) == words
