"""A fast subset of the calibration study in validation/aim_calibration.py (issue 18).

The reference cell (a population of programmes whose trusts' true effects are normal about a
mean drawn per programme): the probability of meeting the aim from the hierarchical model is
calibrated in three bins, and the same check fails a probability known to be miscalibrated
(each trust on its own with its standard error halved), so the check has power. The study's
vectorised model is checked against ``aim_probabilities`` on a few programmes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

from aim_calibration import (
    AIM,
    BY_NAME,
    KEY,
    hierarchical_probabilities,
    no_borrowing,
    reliability,
    simulate,
)

from rrp_eval.models.hierarchical import aim_probabilities

pytestmark = pytest.mark.simulation

PROGRAMMES, TRUSTS = 1200, 8
EDGES = (0.0, 0.2, 0.8, 1.0)
#: |observed - predicted| allowed in a bin: 0.02 plus 3 Monte Carlo SEs (by programme), about
#: 0.04-0.05 here; the miscalibrated probability misses its top bin by about 0.17
SLACK, N_SE = 0.02, 3


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(2024)
    sim = simulate(BY_NAME["pop_normal"], TRUSTS, "mixed", PROGRAMMES, rng)
    sim["hit"] = sim["theta"] <= AIM
    sim["cluster"] = np.repeat(np.arange(PROGRAMMES), TRUSTS).reshape(PROGRAMMES, TRUSTS)
    return sim


def _excess(p, sim):
    """Per bin, |observed - predicted| beyond what the check allows (> 0: the bin fails)."""
    table = reliability(p, sim["hit"], sim["cluster"], edges=EDGES)
    assert (table["n"] >= 500).all(), table  # every bin is populated: the check means something
    gap = (table["observed"] - table["mean_pred"]).abs()
    return (gap - SLACK - N_SE * table["mcse"]).to_numpy(), table


def test_the_vectorised_model_is_the_shipped_one(reference):
    p, p_mu, tau = hierarchical_probabilities(reference["y"][:3], reference["s"][:3])
    for r in range(3):
        ref = aim_probabilities(reference["y"][r], reference["s"][r])
        np.testing.assert_allclose(ref.trusts[KEY], p[r], atol=1e-6)
        assert ref.programme[KEY] == pytest.approx(p_mu[r], abs=1e-6)
        assert ref.tau == pytest.approx(tau[r])


def test_reference_population_is_calibrated(reference):
    p, _, _ = hierarchical_probabilities(reference["y"], reference["s"])
    excess, table = _excess(p, reference)
    assert (excess < 0).all(), table


def test_the_same_check_fails_a_miscalibrated_probability(reference):
    # each trust on its own with its SE halved: over-confident, and the check must say so
    p = no_borrowing(reference["y"], 0.5 * reference["s"])
    excess, table = _excess(p, reference)
    assert excess.max() > 0.05, table  # fails, and not by a whisker
