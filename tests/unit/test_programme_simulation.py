"""A fast subset of the pooled-estimator study in validation/programme_coverage.py (issues 7, 16).

A few simulated programmes: every estimator returns an interval around its estimate, each is
scored against its own estimand, the scenarios do what their names say (a null programme has
no effect, the trend scenario makes participating wards fall faster than comparison wards),
and the summary computes bias and coverage as the study reports them.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

from programme_coverage import (
    RECOMMENDED,
    SCENARIOS,
    TREND_GAP,
    replicate,
    simulate_programme,
    summarise,
)

pytestmark = pytest.mark.simulation


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return pd.DataFrame([row for seed in (11, 12) for row in replicate(("base", seed))])


def test_every_estimator_gives_an_interval_around_its_estimate(records):
    methods = set(records["method"])
    assert {
        RECOMMENDED,
        "random_effects_dl",
        "gee_pooled",
        "controlled",
        "controlled_cs",
    } <= methods
    ok = records.dropna(subset=["log_estimate"])
    assert len(ok) == len(records)
    assert (ok["log_low"] <= ok["log_estimate"]).all()
    assert (ok["log_estimate"] <= ok["log_high"]).all()


def test_pooled_estimates_land_near_their_own_estimands(records):
    summary = summarise(records).set_index(["method", "effect"])
    for method in (RECOMMENDED, "controlled"):
        for effect in ("level_rr", "rr_h"):
            assert abs(summary.loc[(method, effect), "bias"]) < 0.12, (method, effect)
    assert abs(summary.loc[(RECOMMENDED, "slope_rr"), "bias"]) < 0.01


def test_the_scenarios_generate_what_they_say():
    wards, wm, truth = simulate_programme("no_effect", 3)
    assert all(v == 0 for group in ("trusts", "wards") for v in truth[group].values())
    assert set(wards["trust_code"]) == {f"T{k:02d}" for k in range(1, 15)}
    assert (wards["start_month"] == "").sum() == 9  # comparison wards
    _, _, base = simulate_programme("base", 3)
    assert -0.6 < base["trusts"]["rr_h"] < -0.1
    # Callaway & Sant'Anna's estimand (a ratio of mean rates) differs from the mean of logs
    assert base["cs"]["rr_h"] != pytest.approx(base["wards"]["rr_h"], abs=1e-6)
    # trends_null: participating wards fall faster, comparison wards do not
    _, wm, _ = simulate_programme("trends_null", 4)
    w, _, _ = simulate_programme("trends_null", 4)
    part = set(
        w.loc[w["start_month"] != "", "ward_id"] + w.loc[w["start_month"] != "", "trust_code"]
    )
    key = wm["ward_id"] + wm["trust_code"]
    t = pd.to_datetime(wm["month"]).dt.year * 12 + pd.to_datetime(wm["month"]).dt.month
    late = t > t.median()
    ratio = {}
    for name, sel in (("part", key.isin(part)), ("comp", ~key.isin(part))):
        g = wm[sel]
        rate = (
            g.groupby(late[sel])["physical_restraint"].sum()
            / g.groupby(late[sel])["occupied_bed_days"].sum()
        )
        ratio[name] = math.log(rate[True] / rate[False])
    assert ratio["part"] - ratio["comp"] == pytest.approx(24 * TREND_GAP, abs=0.12)
    _, _, skew = simulate_programme("skewed", 5)
    assert skew["trusts"]["level_rr"] != 0
    assert len(SCENARIOS) == 8


def test_summary_counts_coverage_and_bias():
    rows = pd.DataFrame(
        {
            "scenario": "base",
            "seed": [1, 2, 3, 4],
            "method": "m",
            "effect": "level_rr",
            "log_estimate": -0.2 + np.array([0.1, -0.1, 0.3, 0.0]),
            "log_low": -0.2 + np.array([-0.1, -0.3, 0.1, -0.2]),
            "log_high": -0.2 + np.array([0.3, 0.1, 0.5, 0.2]),
            "truth": -0.2,
        }
    )
    s = summarise(rows).iloc[0]
    assert s["programmes"] == 4 and s["coverage"] == 0.75
    assert s["bias"] == pytest.approx(0.075)
    assert s["median_width"] == pytest.approx(0.4)
