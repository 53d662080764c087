"""A fast subset of the stated-against-observed power study in validation/power_study.py
(issue 18).

On the planning's own generator the power the planning states from a baseline agrees with the
rejection rate of the evaluation on fresh trusts; the same check fails a stated power known to
be wrong (the planning's noise forced to Poisson when the true dispersion is 4), so the check
has power. A third test checks that the study's reference process is the planning's latent
process (its moments map back to the decay and autocorrelation it was built from).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

from power_study import (
    DGP,
    REF_DECAY,
    REF_RHO,
    REFERENCE,
    Design,
    compare,
    observed_power,
    plan_baselines,
    stated_powers,
    true_noise,
)

from rrp_eval.evaluate.planning import Noise

pytestmark = pytest.mark.simulation

#: 100 events a month, 24 months before and 24 after: power about 0.3 on the reference
DESIGN = Design(100, 24, 24)
FRESH, BASELINES, PLAN_SIMS = 60, 4, 30


def _check(dgp: DGP, plan_noise: Noise | None = None, seed: int = 7) -> dict:
    obs = observed_power(dgp, DESIGN, 0.75, FRESH, np.random.default_rng(seed))
    baselines = plan_baselines(dgp, DESIGN, BASELINES, seed)
    stated = stated_powers(baselines, DESIGN, 0.75, PLAN_SIMS, seed + 1, plan_noise=plan_noise)
    return {
        "observed": obs["observed"],
        **compare(stated["power"].to_numpy(), PLAN_SIMS, obs["observed_detected"], FRESH),
    }


def test_the_reference_process_is_the_planning_s():
    for events in (5, 20, 100):
        noise = true_noise(REFERENCE, events)
        assert noise.lag1 == pytest.approx(REF_RHO, abs=1e-6)
        # the planning's map from (φ, ρ) to the latent process gives back its decay
        m, phi = noise.mean_count, noise.dispersion
        assert math.log1p((phi - 1) / m) == pytest.approx(noise.sigma2)
        decay = math.log1p(REF_RHO * phi / m) / noise.sigma2
        assert decay == pytest.approx(REF_DECAY, abs=1e-6)


@pytest.mark.slow
def test_stated_power_agrees_with_observed_on_the_planning_generator():
    c = _check(REFERENCE)
    assert 0.05 < c["observed"] < 0.95, c  # an informative cell: not all or nothing
    assert abs(c["diff"]) <= 4 * c["diff_se"], c


@pytest.mark.slow
def test_the_check_fails_a_stated_power_that_ignores_overdispersion():
    overdispersed = DGP("phi4", phi=4.0, decay=0.0, reference=True)
    assert true_noise(overdispersed, DESIGN.events).dispersion == pytest.approx(4.0)
    poisson = Noise(1.0, 0.0, 0.0, 0.0, DESIGN.events)
    c = _check(overdispersed, plan_noise=poisson)
    assert c["verdict"] == "over-states", c
    assert c["diff"] > 3 * c["diff_se"], c
