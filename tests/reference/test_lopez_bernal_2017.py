"""Lopez Bernal, Cummins & Gasparrini (2017), Int J Epidemiol 46(1):348-355: models M1-M4.

Tolerance: half a unit of the last printed digit (shared/reference/README.md).
"""

from __future__ import annotations

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.models.its import fit_its

pytestmark = pytest.mark.reference

HALF_4DP = 0.5e-4


@pytest.fixture(scope="module")
def sicily(reference):
    return pd.read_csv(reference / "its" / "sicily.csv")


def _fit(sicily, family, **kw):
    return fit_its(
        sicily, outcome="aces", time="time", start=37, exposure="stdpop", family=family, **kw
    )


@pytest.mark.parametrize(
    ("model", "family", "kwargs", "rr", "dispersion"),
    [
        ("M1", "poisson", {}, (0.8944, 0.8647, 0.9251), 1.0),
        ("M2", "quasipoisson", {}, (0.8944, 0.8392, 0.9532), 3.5592),
        (
            "M3",
            "quasipoisson",
            {"harmonics": 2, "season": "month"},
            (0.8851, 0.8394, 0.9332),
            2.2622,
        ),
    ],
)
def test_level_change_models(sicily, model, family, kwargs, rr, dispersion):
    res = _fit(sicily, family, slope_change=False, **kwargs)
    eff = res.effects.loc["level_change"]
    assert_allclose(
        [eff.estimate, eff.ci_low, eff.ci_high], rr, rtol=0, atol=HALF_4DP, err_msg=model
    )
    assert_allclose(res.dispersion, dispersion, rtol=0, atol=HALF_4DP, err_msg=model)
    assert "slope_change" not in res.effects.index


def test_m1_reports_the_overdispersion_its_poisson_model_ignores(sicily):
    res = _fit(sicily, "poisson", slope_change=False)
    assert res.dispersion == 1.0
    assert_allclose(res.pearson_dispersion, 3.5592, rtol=0, atol=HALF_4DP)


def test_m3_as_printed_in_the_tutorial(sicily):
    eff = _fit(sicily, "quasipoisson", slope_change=False, harmonics=2, season="month").effects
    row = eff.loc["level_change"]
    assert_allclose([row.estimate, row.ci_low, row.ci_high], [0.885, 0.839, 0.933], atol=0.5e-3)


def test_m4_slope_change_and_level_change_under_the_suite_convention(sicily):
    res = _fit(sicily, "quasipoisson", harmonics=2, season="month")
    assert_allclose(res.params["slope_change"], 0.001482, rtol=0, atol=0.5e-6)
    slope = res.effects.loc["slope_change"]
    assert_allclose(
        [slope.estimate, slope.ci_low, slope.ci_high],
        [1.0015, 0.9978, 1.0051],
        rtol=0,
        atol=HALF_4DP,
    )
    level = res.effects.loc["level_change"]
    # slope term (time - 37) * smokban: 0 in the first post period, so the level change is the
    # effect at h = 0 (the tutorial's I(time-36) would give it at h = -1).
    assert_allclose(
        [level.estimate, level.ci_low, level.ci_high],
        [0.8778, 0.8291, 0.9292],
        rtol=0,
        atol=HALF_4DP,
    )
    assert_allclose(res.dispersion, 2.2746, rtol=0, atol=HALF_4DP)


def test_m4_rr_at_the_first_post_period_is_the_level_change(sicily):
    res = _fit(sicily, "quasipoisson", harmonics=2, season="month")
    assert_allclose(res.rr_at(0)[:4].to_numpy(), res.effects.loc["level_change"].to_numpy())
    # the tutorial's parameterisation: level change at time 36, one period earlier
    assert_allclose(res.rr_at(-1).estimate, 0.8778 / 1.0015, atol=1e-4)
