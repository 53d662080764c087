"""Random-effects pooling (DerSimonian-Laird, Paule-Mandel)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.programme import PROGRAMME_COLUMNS, pool_random_effects, programme_effects

Y = np.log([0.8, 0.7, 0.9, 1.1, 0.75])
SE = np.sqrt([0.01, 0.02, 0.015, 0.03, 0.01])


def _dl_by_hand(y, v):
    w = 1 / v
    mu_fe = (w * y).sum() / w.sum()
    q = (w * (y - mu_fe) ** 2).sum()
    tau2 = max(0.0, (q - (len(y) - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    wr = 1 / (v + tau2)
    mu = (wr * y).sum() / wr.sum()
    return mu, math.sqrt(1 / wr.sum()), tau2, max(0.0, (q - (len(y) - 1)) / q)


def test_dersimonian_laird_matches_the_formula():
    mu, se, tau2, i2 = _dl_by_hand(Y, SE**2)
    out = pool_random_effects(Y, SE, "dl")
    assert_allclose(np.log(out["estimate"]), mu, rtol=1e-12)
    assert_allclose(np.log(out["ci_high"]) - np.log(out["estimate"]), 1.959964 * se, rtol=1e-6)
    assert_allclose(out["tau2"], tau2, rtol=1e-12)
    assert_allclose(out["i2"], i2, rtol=1e-12)
    assert tau2 > 0 and out["n_trusts"] == 5
    half = (np.log(out["pi_high"]) - np.log(out["pi_low"])) / 2
    assert_allclose(half, 3.182446 * math.sqrt(tau2 + se**2), rtol=1e-6)  # t(0.975, 3)


def test_between_trust_variance_is_never_negative():
    """Homogeneous effects (Q < k - 1): tau2 is 0 and pooling is the fixed-effect one."""
    y = np.log([1.0, 1.01, 0.99, 1.0])
    se = np.full(4, 0.2)
    for method in ("dl", "pm"):
        out = pool_random_effects(y, se, method)
        assert out["tau2"] == 0.0
        assert_allclose(np.log(out["estimate"]), y.mean(), atol=1e-12)
        assert_allclose(np.log(out["ci_high"]) - np.log(out["estimate"]), 1.959964 * 0.1, rtol=1e-6)


def test_paule_mandel_solves_its_estimating_equation():
    out = pool_random_effects(Y, SE, "pm")
    w = 1 / (SE**2 + out["tau2"])
    mu = (w * Y).sum() / w.sum()
    assert_allclose((w * (Y - mu) ** 2).sum(), len(Y) - 1, rtol=1e-4)


def test_few_or_no_trusts():
    assert math.isnan(pool_random_effects([], [], "dl")["estimate"])
    one = pool_random_effects([math.log(0.8)], [0.1])
    assert_allclose(one["estimate"], 0.8) and math.isnan(one["pi_low"])
    with pytest.raises(ValueError, match="method='sj'"):
        pool_random_effects(Y, SE, "sj")


def test_programme_effects_table():
    its = pd.DataFrame(
        {
            "trust_code": list("ABCDE"),
            "measure": "seclusion",
            "status": ["ok"] * 4 + ["failed"],
            "level_rr": np.exp(Y),
            "level_rr_log_se": SE,
            "slope_rr": 1.0,
            "slope_rr_log_se": 0.01,
            "rr_h": np.exp(Y),
            "rr_h_log_se": SE,
        }
    )
    out = programme_effects(its)
    assert list(out.columns) == PROGRAMME_COLUMNS
    assert set(out["effect"]) == {"level_rr", "slope_rr", "rr_h"}
    assert set(out["method"]) == {
        f"random_effects_{m}{hk}" for m in ("dl", "pm", "reml") for hk in ("", "_hk")
    }
    assert (out["n_trusts"] == 4).all()  # the failed trust is left out


# Colditz et al. (1994) BCG vaccine trials (metafor's dat.bcg): TB cases and non-cases,
# vaccinated (tpos, tneg) and not (cpos, cneg). A published example for the estimators.
BCG = [
    (4, 119, 11, 128),
    (6, 300, 29, 274),
    (3, 228, 11, 209),
    (62, 13536, 248, 12619),
    (33, 5036, 47, 5761),
    (180, 1361, 372, 1079),
    (8, 2537, 10, 619),
    (505, 87886, 499, 87892),
    (29, 7470, 45, 7232),
    (17, 1699, 65, 1600),
    (186, 50448, 141, 27197),
    (5, 2493, 3, 2338),
    (27, 16886, 29, 17825),
]


@pytest.fixture(scope="module")
def bcg():
    a, b, c, d = (np.array(x, dtype=float) for x in zip(*BCG, strict=True))
    y = np.log(a / (a + b)) - np.log(c / (c + d))
    v = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return y, np.sqrt(v)


def test_bcg_published_results(bcg):
    """metafor: DL -0.7141 (-1.0644 to -0.3638), tau2 0.3088; REML -0.7145 (-1.0669 to -0.3622),
    tau2 0.3132, I2 92.22%; fixed effect -0.4303 with Q = 152.2330 (Viechtbauer 2010)."""
    y, se = bcg
    dl = pool_random_effects(y, se, "dl")
    assert_allclose(
        np.log([dl["estimate"], dl["ci_low"], dl["ci_high"]]),
        [-0.7141, -1.0644, -0.3638],
        atol=0.5e-4,
    )
    assert_allclose(dl["tau2"], 0.3088, atol=0.5e-4)
    reml = pool_random_effects(y, se, "reml")
    assert_allclose(
        np.log([reml["estimate"], reml["ci_low"], reml["ci_high"]]),
        [-0.7145, -1.0669, -0.3622],
        atol=0.5e-4,
    )
    assert_allclose(reml["tau2"], 0.3132, atol=0.5e-4)
    assert_allclose(dl["i2"], (152.2330 - 12) / 152.2330, atol=1e-5)


def test_hartung_knapp_interval(bcg):
    y, se = bcg
    hk = pool_random_effects(y, se, "reml", hartung_knapp=True)
    tau2 = hk["tau2"]
    w = 1 / (se**2 + tau2)
    mu = (w * y).sum() / w.sum()
    se_hk = np.sqrt((w * (y - mu) ** 2).sum() / (12 * w.sum()))
    assert_allclose(np.log(hk["ci_high"]) - mu, 2.178813 * se_hk, rtol=1e-6)  # t(0.975, 12)
