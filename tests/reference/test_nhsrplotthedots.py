"""XmR parity with NHSRplotthedots 0.2.2 (shared/reference/spc/nhsrplotthedots_cases.json).

Limits to the printed precision; labels, point types and icons exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import half_unit, load_cases
from numpy.testing import assert_allclose

from rrp_eval.models import spc
from rrp_eval.models.spc import xmr

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def cases(reference):
    return load_cases(reference, "nhsrplotthedots_cases.json")


def _check_limits(res, expected, group=0):
    """mean, lpl and upl of a rebase group to the precision printed."""
    row = res.frame[res.frame.rebase_group == group].iloc[0]
    for key in ("mean", "lpl", "upl"):
        assert_allclose(row[key], expected[key], rtol=0, atol=half_unit(expected[key]), err_msg=key)


def test_rnorm20(cases):
    case = cases["ptd_rnorm20_seed123"]
    res = xmr(case["inputs"]["y"], dates=case["inputs"]["dates"])
    exp = case["expected"]
    _check_limits(res, exp)
    assert (res.frame.point_type == "common_cause").sum() == exp["common_cause"] == 20
    assert res.variation_icon == exp["variation_icon"]
    assert_allclose(
        res.frame.loc[0, ["mean", "lpl", "upl"]].astype(float),
        list(case["computed_full_precision"].values()),
        rtol=1e-9,
    )


def test_outlier_screening(cases):
    base = cases["ptd_rnorm20_seed123"]["inputs"]
    y = list(base["y"])
    y[14] = 10.0
    exp = cases["ptd_rnorm20_seed123_outlier15"]["expected"]
    for screen, key in ((True, "screen_outliers_true"), (False, "screen_outliers_false")):
        res = xmr(y, dates=base["dates"], screen_outliers=screen)
        _check_limits(res, exp[key])
        assert res.frame.loc[14, "special_cause_type"] == "Above UCL"
        assert res.frame.loc[14, "point_type"] == "special_cause_improvement"
        assert (res.frame.drop(index=14).special_cause_type == "Common Cause").all()


def test_rebase_gives_separate_limits_and_a_short_group_warning(cases):
    base = cases["ptd_rnorm20_seed123"]["inputs"]
    case = cases["ptd_rnorm20_seed123_facets_or_rebase"]
    by_date = xmr(base["y"], dates=base["dates"], rebase=["2020-01-12"])
    by_position = xmr(base["y"], rebase=[10])
    for res in (by_date, by_position):
        assert res.frame.rebase_group.tolist() == [0] * 10 + [1] * 10
        for g in (0, 1):
            _check_limits(res, case["computed_full_precision"][f"group{g}"], group=g)
            _check_limits(res, case["expected"][f"group{g}"], group=g)
        assert len(res.warnings) == 2 and "fewer than 13" in res.warnings[0]


def test_fix_after_12(cases):
    base = cases["ptd_rnorm20_seed123"]["inputs"]
    exp = cases["ptd_rnorm20_seed123_fix_after_12"]["computed_not_asserted_upstream"]
    res = xmr(base["y"], dates=base["dates"], fix_after_n_points=12)
    _check_limits(res, exp)
    with pytest.raises(ValueError, match="fix_after_n_points=5 must be a whole number >= 12"):
        xmr(base["y"], fix_after_n_points=5)


def test_deviations_vignette(cases):
    case = cases["ptd_deviations_vignette_outlier_screening"]
    y = case["inputs"]["y"]
    for screen, key, full in (
        (True, "screen_outliers_true", "screened"),
        (False, "screen_outliers_false_excel_mdc", "unscreened"),
    ):
        res = xmr(y, screen_outliers=screen)
        exp = case["expected"][key]
        row = res.frame.iloc[0]
        assert_allclose(
            [row["mean"], row["lpl"], row["upl"]], [exp["mean"], exp["lpl"], exp["upl"]], atol=0.005
        )
        _check_limits(res, case["computed_full_precision"][full])
        special = (np.flatnonzero(res.frame.point_type != "common_cause") + 1).tolist()
        assert special == exp["special_cause_points"]
        assert res.frame.loc[4, "point_type"] == exp["point5"]
        assert res.variation_icon == "common_cause"


def test_two_in_three_needs_all_three_on_one_side(cases):
    case = cases["ptd_two_in_three_opposite_sides"]
    res = xmr(case["inputs"]["y"], dates=case["inputs"]["dates"])
    assert res.frame.point_type.tolist()[-2:] == case["expected"]["last_two_point_types"]
    assert (res.frame.point_type == "common_cause").all()


def _icon_cases(cases):
    return cases["ptd_icons"]["variants"]


def test_icons(cases):
    for v in _icon_cases(cases):
        res = xmr(v["y"], improvement=v["improvement_direction"], target=v["target"])
        assert res.variation_icon + ".svg" == v["expected_variation_icon"], v["name"]
        expected = v["expected_assurance_icon"]
        mapping = {
            "pass.svg": "consistent_pass",
            "fail.svg": "consistent_fail",
            "inconsistent.svg": "inconsistent",
            None: None,
        }
        assert res.assurance_icon == mapping[expected], v["name"]
        comp = v["computed"]
        _check_limits(res, comp)
        assert res.frame.point_type.tolist() == comp["point_types"], v["name"]
        assert res.frame.special_cause_type.iloc[-1] == comp["last_point_special_cause_type"]


def test_rule_unit_vectors(cases):
    c = cases["ptd_rule_unit_vectors"]
    for v in c["seven_point_one_side_mean"]:
        assert spc._seven_one_side(np.array(v["relative_to_mean"])).tolist() == v["expected"]
    for v in c["seven_point_trend"]:
        assert spc._seven_trend(np.array(v["y"], dtype=float)).tolist() == v["expected"]
    for v in c["part_of_seven"]:
        assert spc._part_of_seven(np.array(v["v"])).tolist() == v["expected"]
    for v in c["two_in_three_window"]:
        got = spc._two_in_three(np.array(v["close"]), np.array(v["rtm"]))
        # the window rule before "part of" keeps only close points: compare on those
        window = [e for e, cl in zip(v["expected"], v["close"], strict=True) if cl]
        assert got[np.array(v["close"]) == 1].tolist() == window
    for v in c["part_of_two_in_three"]:
        got = spc._two_in_three(np.array(v["close"]), np.array(v["rtm"]))
        assert got.tolist() == v["expected"]


def test_precedence(cases):
    ex = cases["ptd_rule_unit_vectors"]["precedence_example"]
    y = np.array(ex["y"], dtype=float)
    rtm = np.array(ex["relative_to_mean"])
    trend = np.abs(np.array(ex["part_of_trend"]))
    side = np.abs(np.array(ex["part_of_7_one_side"]))
    two3 = np.array(ex["part_of_2in3"])
    outside = np.array(ex["outside_limits"]) != 0
    labels = spc._label_points(y, rtm, outside, trend, two3, side)
    assert labels == ex["expected"]


def test_assurance_unit(cases):
    c = cases["ptd_assurance_unit"]
    inp = c["inputs"]
    for improvement, expected in c["expected"].items():
        if improvement == "rebase_note":
            continue
        got = [
            spc._assurance_icon(inp["target"], improvement, lo, hi)
            for lo, hi in zip(inp["lpl"], inp["upl"], strict=True)
        ]
        assert got == expected


def test_all_rules_synthetic(cases):
    c = cases["derived_all_rules_synthetic"]
    res = xmr(c["inputs"]["y"], improvement=c["inputs"]["improvement_direction"])
    _check_limits(res, c["computed"])
    assert res.frame.special_cause_type.tolist() == c["computed"]["special_cause_type"]
    assert res.frame.point_type.tolist() == c["computed"]["point_type"]
