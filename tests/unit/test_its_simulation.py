"""A small subset of the simulation study in validation/its_coverage.py (issue 6).

200 series in two cells (Monte Carlo SE of a 95% coverage: 1.5 points): the default model
(automatic family, AR(1)-corrected errors) must cover the truth 89-99% of the time for the level
change, the slope change and the rate ratio at 12 months, and Newey-West must do worse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

from its_coverage import MODELS, run_cell

pytestmark = pytest.mark.slow

pytestmark = pytest.mark.simulation

DEFAULT = "default (auto, AR(1))"
NW = "quasi-Poisson, Newey-West"


@pytest.mark.parametrize(
    "cell",
    [
        {"n_months": 48, "post_share": 0.5, "rho": 0.3, "nb_alpha": 0.05, "seasonal": True},
        {"n_months": 24, "post_share": 0.5, "rho": 0.0, "nb_alpha": 0.2, "seasonal": False},
    ],
)
def test_default_model_covers_the_truth(cell):
    models = {k: MODELS[k] for k in (DEFAULT, NW)}
    table = run_cell(cell, 200, np.random.SeedSequence(7), models).set_index(["model", "effect"])
    for effect in ("level_change", "slope_change", "rr_h"):
        cover = table.loc[(DEFAULT, effect), "coverage"]
        assert 0.89 <= cover <= 0.99, (effect, cover)
        assert table.loc[(NW, effect), "coverage"] < cover
        assert abs(table.loc[(DEFAULT, effect), "bias"]) < 0.12
    assert table.loc[(DEFAULT, "level_change"), "n_failed"] == 0
