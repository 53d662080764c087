"""Linden (2015), Stata Journal 15(2):480-500: controlled ITS on the Proposition 99 panel.

Coefficients to every printed digit; the controlled model's p-values within +/-0.002
(shared/reference/README.md).
"""

from __future__ import annotations

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.models.its import fit_its

pytestmark = pytest.mark.reference


def _printed(value: str) -> tuple[float, float]:
    """A printed number and half a unit of its last digit."""
    decimals = len(value.split(".")[1]) if "." in value else 0
    return float(value), 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def controlled(reference):
    panel = pd.read_csv(reference / "its" / "california_prop99.csv", sep=";")
    panel["california"] = (panel["State"] == "California").astype(int)
    return fit_its(
        panel,
        outcome="PacksPerCapita",
        time="Year",
        start=1989,
        family="gaussian",
        group="california",
        unit="State",
        cov_type="hac",
        maxlags=1,
    )


def test_treated_file_column_is_treated_times_post(reference):
    panel = pd.read_csv(reference / "its" / "california_prop99.csv", sep=";")
    expected = ((panel["State"] == "California") & (panel["Year"] >= 1989)).astype(int)
    assert (panel["treated"] == expected).all()


def test_coefficients_to_every_printed_digit(controlled):
    b = controlled.params
    quantities = {
        "California intercept": (b["intercept"] + b["group"], "132.2258"),
        "California pre-trend": (b["pre_trend"] + b["group:pre_trend"], "-1.779474"),
        "California level change": (b["level_change"] + b["group:level_change"], "-20.0581"),
        "California post-trend": (
            b["pre_trend"] + b["slope_change"] + b["group:pre_trend"] + b["group:slope_change"],
            "-3.274126",
        ),
        "controls intercept": (b["intercept"], "135.4995"),
        "controls pre-trend": (b["pre_trend"], "-0.5477701"),
        "controls level change": (b["level_change"], "-17.25168"),
        "controls post-trend": (b["pre_trend"] + b["slope_change"], "-1.051279"),
        "difference in level change": (b["group:level_change"], "-2.806417"),
        "difference in slope change": (b["group:slope_change"], "-0.991143"),
    }
    for name, (value, printed) in quantities.items():
        expected, tol = _printed(printed)
        assert_allclose(value, expected, rtol=0, atol=tol, err_msg=name)


def test_effects_table_names_the_treated_control_and_difference_rows(controlled):
    eff = controlled.effects
    assert_allclose(eff.loc["level_change", "estimate"], -20.0581, atol=0.5e-4)
    assert_allclose(eff.loc["level_change_control", "estimate"], -17.25168, atol=0.5e-5)
    assert_allclose(eff.loc["level_change_vs_control", "estimate"], -2.806417, atol=0.5e-6)
    assert_allclose(eff.loc["slope_change_vs_control", "estimate"], -0.991143, atol=0.5e-6)


def test_controlled_p_values(controlled):
    eff = controlled.effects
    assert_allclose(eff.loc["level_change_vs_control", "p_value"], 0.631, atol=0.002)
    assert_allclose(eff.loc["slope_change_vs_control", "p_value"], 0.136, atol=0.002)
    assert controlled.spec.maxlags == 1
    assert controlled.spec.hac_correction == "n/(n-k)"
