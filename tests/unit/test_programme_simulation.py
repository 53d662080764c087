"""A fast subset of the pooled-estimator study in validation/programme_coverage.py (issue 7).

Three simulated programmes: every estimator returns an interval around its estimate, the
meta-analysis and the controlled model land near the generating effects on average, and the
summary computes bias and coverage as the study reports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

from programme_coverage import RECOMMENDED, TRUTH, replicate, summarise

pytestmark = pytest.mark.slow

pytestmark = pytest.mark.simulation


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return pd.DataFrame([row for seed in (11, 12, 13) for row in replicate(seed)])


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


def test_pooled_estimates_land_near_the_generating_effects(records):
    summary = summarise(records).set_index(["method", "effect"])
    for method in (RECOMMENDED, "controlled"):
        for effect in ("level_rr", "rr_h"):
            assert abs(summary.loc[(method, effect), "bias"]) < 0.12, (method, effect)
    assert abs(summary.loc[(RECOMMENDED, "slope_rr"), "bias"]) < 0.01


def test_summary_counts_coverage_and_bias():
    rows = pd.DataFrame(
        {
            "seed": [1, 2, 3, 4],
            "method": "m",
            "effect": "level_rr",
            "log_estimate": TRUTH["level_rr"] + np.array([0.1, -0.1, 0.3, 0.0]),
            "log_low": TRUTH["level_rr"] + np.array([-0.1, -0.3, 0.1, -0.2]),
            "log_high": TRUTH["level_rr"] + np.array([0.3, 0.1, 0.5, 0.2]),
            "truth": TRUTH["level_rr"],
            "realised": TRUTH["level_rr"] + 0.1,
        }
    )
    s = summarise(rows).iloc[0]
    assert s["programmes"] == 4 and s["coverage"] == 0.75
    assert s["bias"] == pytest.approx(0.075) and s["bias_vs_realised"] == pytest.approx(-0.025)
    assert s["median_width"] == pytest.approx(0.4)
