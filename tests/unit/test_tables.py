"""Unit tests for rrp_eval.evaluate.tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rrp_eval.data.synthetic import simulate_series
from rrp_eval.evaluate.tables import (
    ITS_EFFECTS_COLUMNS,
    ITS_EXTRA_COLUMNS,
    its_effects_row,
    its_effects_table,
)
from rrp_eval.models.its import fit_its

SPEC_COLUMNS = """trust_code, measure, status, message, model, n_pre, n_post, h_end, level_rr,
level_rr_low, level_rr_high, slope_rr, slope_rr_low, slope_rr_high, rr_end, rr_end_low,
rr_end_high, rr_h, rr_h_low, rr_h_high, horizon_months, p_level, p_slope, dispersion,
autocorrelation_p"""


@pytest.fixture(scope="module")
def fitted():
    df = simulate_series(seed=3, bed_days=3000)
    return fit_its(df, outcome="count", time="month", start="2022-01", exposure="occupied_bed_days")


def test_columns_are_the_spec_columns_in_order():
    assert ITS_EFFECTS_COLUMNS == [c.strip() for c in SPEC_COLUMNS.split(",")]


def test_row_from_a_fitted_model(fitted):
    row = its_effects_row("RXT", "seclusion", fitted)
    eff = fitted.effects
    assert row["status"] == "ok" and row["message"] == ""
    assert row["level_rr"] == eff.loc["level_change", "estimate"]
    assert row["slope_rr_high"] == eff.loc["slope_change", "ci_high"]
    assert row["rr_end"] == fitted.rr_at(23).estimate
    assert row["rr_h"] == fitted.rr_at(12).estimate and row["horizon_months"] == 12
    assert row["n_pre"] == 24 and row["n_post"] == 24 and row["h_end"] == 23
    assert row["dispersion"] == fitted.dispersion
    assert 0 <= row["autocorrelation_p"] <= 1
    assert row["model"].startswith(f"{fitted.spec.family};")


def test_not_estimable_row_has_reason_and_no_numbers():
    row = its_effects_row("RXT", "segregation", status="not_estimable", message="no wards")
    table = its_effects_table([row])
    assert list(table.columns) == ITS_EFFECTS_COLUMNS + ITS_EXTRA_COLUMNS
    assert table.loc[0, "message"] == "no wards"
    assert math.isnan(row["level_rr"]) and np.isnan(table.loc[0, "rr_h"])


def test_inconsistent_rows_are_refused(fitted):
    with pytest.raises(ValueError, match="exactly when its status is 'ok'"):
        its_effects_row("RXT", "seclusion", fitted, status="failed")
    with pytest.raises(ValueError, match="exactly when its status is 'ok'"):
        its_effects_row("RXT", "seclusion")
    with pytest.raises(ValueError, match="status='maybe'"):
        its_effects_row("RXT", "seclusion", status="maybe")
