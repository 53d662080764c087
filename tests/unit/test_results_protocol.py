"""Every model and evaluation result follows one protocol (DESIGN.md, "Results objects"):
a frozen dataclass with ``spec``, a tidy ``summary_frame``, ``summary()`` with text and HTML,
``plot()`` returning a Figure, a short repr and ``warnings`` kept as text."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import rrp_eval as rrp
from rrp_eval.models.controlled import etwfe_poisson, event_time_panel
from rrp_eval.models.its import fit_its

TIDY = {"estimate", "ci_low", "ci_high", "p_value"}
POINTS = {"value", "centre"}


@pytest.fixture(scope="module")
def small():
    """The demonstration programme cut to four trusts (quick to evaluate whole)."""
    programme = rrp.load_programme()
    keep = {"X01", "X02", "X03", "X06"}
    return programme.without_trusts(t for t in programme.trusts if t not in keep)


@pytest.fixture(scope="module")
def prog(small):
    return rrp.evaluate_programme(small)


def _its():
    rng = np.random.default_rng(1)
    t = np.arange(36)
    y = rng.poisson(np.exp(3 - 0.3 * (t >= 18)))
    df = pd.DataFrame({"t": t, "y": y, "n": 1000.0})
    return fit_its(df, outcome="y", time="t", start=18, exposure="n", family="poisson")


RESULTS = {
    "ITSResult": (lambda small, prog: _its(), TIDY),
    "SPCResult": (lambda small, prog: rrp.xmr(np.arange(24.0) % 5), POINTS),
    "ControlChartResult": (
        lambda small, prog: rrp.u_chart(np.arange(24) % 4 + 2, np.full(24, 900.0)),
        POINTS,
    ),
    "RunChartResult": (lambda small, prog: rrp.run_chart(np.arange(24.0) % 7), POINTS),
    "ControlledResult": (
        lambda small, prog: etwfe_poisson(
            event_time_panel(small.ward_month, small.wards, "physical_restraint"),
            "physical_restraint",
        ),
        TIDY,
    ),
    "MeasureITS": (lambda small, prog: prog.trusts["X01"].its["physical_restraint"], TIDY),
    "MeasureSPC": (lambda small, prog: prog.trusts["X01"].spc["physical_restraint"], POINTS),
    "TrustEvaluation": (lambda small, prog: prog.trusts["X02"], TIDY),
    "ControlledFit": (lambda small, prog: prog.controlled["physical_restraint"], TIDY),
    "ProgrammeEvaluation": (lambda small, prog: prog, {"estimate", "ci_low", "ci_high"}),
    "PooledEffect": (lambda small, prog: prog.pool("physical_restraint"), TIDY),
    "DataQuality": (
        lambda small, prog: rrp.evaluate_quality(small),
        {"wards", "ward_months", "completeness", "errors", "warnings"},
    ),
}


@pytest.mark.slow  # evaluates a four-trust programme (about 30 s)
@pytest.mark.parametrize("kind", list(RESULTS))
def test_every_result_follows_the_protocol(kind, small, prog):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    make, columns = RESULTS[kind]
    result = make(small, prog)
    assert type(result).__name__ == kind
    assert dataclasses.is_dataclass(result) and type(result).__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.frame = None  # type: ignore[misc]
    assert isinstance(result.spec, dict | object) and result.spec is not None
    frame = result.summary_frame()
    assert isinstance(frame, pd.DataFrame) and columns <= set(frame.columns), frame.columns
    summary = result.summary()
    assert str(summary).strip() and "<table" in summary._repr_html_()
    assert "<table" in result._repr_html_()
    text = repr(result)
    assert 0 < len(text.splitlines()) <= 6 and len(text) < 600, text
    assert isinstance(result.warnings, tuple)
    assert all(isinstance(w, str) for w in result.warnings)
    fig = result.plot()
    fig = fig.figure if hasattr(fig, "figure") and fig.figure is not None else fig
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close("all")


@pytest.mark.slow
def test_the_analysts_moves_on_a_trust(prog):
    """What the trust notebook promises: inspect, refit with other options, plot."""
    trust = prog.trusts["X01"]
    seclusion = trust.its["seclusion"]
    assert "level_change" in str(seclusion.summary())
    refit = trust.refit("seclusion", phase_in=3)
    assert refit.result.spec.phase_in == 3 and seclusion.result.spec.phase_in == 0
    assert (
        refit.result.effect("level_change").estimate
        != seclusion.result.effect("level_change").estimate
    )
    with pytest.raises(ValueError, match="not allowed"):
        trust.refit("seclusion", phase=3)
    assert trust.summary_frame().index.names == ["measure", "effect"]


@pytest.mark.slow
def test_a_pooled_effect_is_the_programme_tables_row(prog):
    """``prog.pool`` re-pools what the ``programme_effects`` table holds, trusts named."""
    for method, name in (("reml", "random_effects_reml_hk"), ("dl", "random_effects_dl_hk")):
        pooled = prog.pool("seclusion", "rr_h", method)
        row = prog.effect("seclusion", name, "rr_h")
        assert row is not None
        np.testing.assert_allclose(
            [pooled.row()[k] for k in ("estimate", "ci_low", "ci_high", "tau2")],
            row[["estimate", "ci_low", "ci_high", "tau2"]].to_numpy(float),
            rtol=1e-12,
        )
        assert set(pooled.labels) <= set(prog.trusts) and len(pooled.labels) == pooled.n_trusts
    with pytest.raises(ValueError, match="pooled effects are"):
        prog.pool("seclusion", "rr_end")


def test_warnings_are_recorded_not_silenced():
    from rrp_eval.models.results import with_warnings

    def noisy():
        import warnings

        warnings.warn("the model did not converge", RuntimeWarning, stacklevel=2)
        return 1

    value, caught = with_warnings(noisy)
    assert value == 1 and caught == ("RuntimeWarning: the model did not converge",)
