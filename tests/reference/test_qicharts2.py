"""u, u′ and I charts and Anhøj's run rules against qicharts2 0.8.1
(shared/reference/spc/qicharts2_cases.json)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import half_unit, load_cases
from numpy.testing import assert_allclose

from rrp_eval.models.spc import anhoej_limits, i_chart, run_chart, u_chart

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def cases(reference):
    return load_cases(reference, "qicharts2_cases.json")


def _runs(res, expected):
    runs = res.runs
    keys = ("n_useful", "longest_run", "longest_run_max", "n_crossings", "n_crossings_min")
    for key in (k for k in keys if k in expected):
        assert getattr(runs, key) == expected[key], key
    assert runs.signal == bool(expected["runs_signal"])


def test_anhoej_thresholds(cases):
    case = cases["anhoej_thresholds"]
    for row in case["table"]:
        assert anhoej_limits(row["n"]) == (row["longest_run_max"], row["n_crossings_min"]), row
    check = case["vignette_check"]
    assert anhoej_limits(check["n"]) == (check["longest_run_max"], check["n_crossings_min"])


def test_hai_u_chart(cases):
    case = cases["qic_hai_u_chart_all"]
    res = u_chart(case["inputs"]["count"], case["inputs"]["days"], dates=case["inputs"]["month"])
    exp, full = case["expected"], case["computed_full_precision"]
    for key, value in (("CL", res.frame.centre[0]), ("aLCL", res.aLCL), ("aUCL", res.aUCL)):
        assert_allclose(value, exp[key], rtol=0, atol=half_unit(exp[key]), err_msg=key)
        assert_allclose(value, full[key], rtol=1e-12, err_msg=key)
    assert_allclose(res.frame.lcl, full["per_point_lcl"], rtol=1e-12)
    assert_allclose(res.frame.ucl, full["per_point_ucl"], rtol=1e-12)
    assert int(res.frame.sigma_signal.sum()) == exp["sigma_signal"]
    _runs(res, exp)


def test_hai_u_chart_by_infection_and_laney(cases):
    for facet in cases["qic_hai_u_chart_by_infection"]["facets"]:
        res = u_chart(facet["count"], facet["days"])
        exp = facet["expected_u"]
        assert_allclose(
            [res.frame.centre[0], res.aLCL, res.aUCL],
            [exp["CL"], exp["aLCL"], exp["aUCL"]],
            rtol=0,
            atol=half_unit(exp["CL"]),
        )
        _runs(res, exp)
        up = facet.get("computed_u_prime_NOT_VERIFIED_AGAINST_R")
        if up:  # a restatement of qicharts2's u′, not printed by R
            lap = u_chart(facet["count"], facet["days"], laney=True)
            assert_allclose(lap.sigma_z, up["sigma_z_screened"], rtol=1e-10)
            assert_allclose([lap.aLCL, lap.aUCL], [up["aLCL"], up["aUCL"]], rtol=1e-10)


def test_montgomery_u_chart_with_varying_n_and_multiply(cases):
    case = cases["qic_montgomery_ex7_5_u_chart_varying_n"]
    inp, exp = case["inputs"], case["expected"]
    res = u_chart(inp["count"], inp["n"], multiply=inp["multiply"])
    assert_allclose(res.frame.centre[0], exp["cl"], rtol=1e-12)
    assert_allclose(res.frame.ucl, exp["ucl"], rtol=1e-12)
    assert_allclose(res.frame.lcl, exp["lcl"], rtol=1e-12)
    assert_allclose(res.frame.value, exp["y"], rtol=1e-12)
    assert res.frame.sigma_signal.tolist() == exp["sigma_signal"]
    _runs(res, exp)


def test_vignette_i_chart(cases):
    case = cases["qic_vignette_i_chart_seed19"]
    res = i_chart(case["inputs"]["y"])
    exp, full = case["expected"], case["computed_full_precision"]
    row = res.frame.iloc[0]
    assert_allclose(
        [row.centre, row.lcl, row.ucl], [full["CL"], full["LCL"], full["UCL"]], rtol=1e-12
    )
    assert_allclose([row.lcl, row.ucl], [exp["aLCL"], exp["aUCL"]], atol=0.5e-6)
    two_sigma = row.centre + (row.lcl - row.centre) * 2 / 3
    assert_allclose(two_sigma, exp["aLCL_95"], atol=0.5e-6)
    assert int(res.frame.sigma_signal.sum()) == exp["sigma_signal"]
    _runs(res, exp)


def test_montgomery_i_chart_with_a_frozen_baseline(cases):
    case = cases["qic_montgomery_ex6_5_i_chart_freeze"]
    exp = case["expected"]
    res = i_chart(case["inputs"]["y"], freeze=case["inputs"]["freeze"])
    row = res.frame.iloc[0]
    assert_allclose([row.centre, row.lcl, row.ucl], [exp["cl"], exp["lcl"], exp["ucl"]], rtol=1e-12)
    assert (np.flatnonzero(res.frame.sigma_signal) + 1).tolist() == exp["sigma_signal_points"]
    _runs(res, exp)


def test_i_chart_on_the_deviations_data(cases):
    case = cases["derived_qic_i_chart_on_ptd_deviations_data"]
    for screen, key in ((True, "screened"), (False, "unscreened")):
        row = i_chart(case["inputs"]["y"], screen_outliers=screen).frame.iloc[0]
        exp = case["computed"][key]
        assert_allclose(
            [row.centre, row.lcl, row.ucl], [exp["cl"], exp["lcl"], exp["ucl"]], rtol=1e-12
        )


def test_run_chart_uses_the_median_and_drops_points_on_it(cases):
    y = cases["qic_vignette_i_chart_seed19"]["inputs"]["y"]
    res = run_chart(y)
    assert res.frame["median"][0] == pytest.approx(np.median(y))
    assert res.n_useful == 24 and res.signal  # the shift of 2 in the second half
    assert run_chart([1, 2, 2, 2, 3]).n_useful == 2
