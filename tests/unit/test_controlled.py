"""Controlled analysis: extended TWFE Poisson, Callaway & Sant'Anna, and the naive TWFE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.models.controlled import (
    callaway_santanna,
    etwfe_poisson,
    event_time_panel,
    event_time_rates,
    twfe_naive,
)

MONTHS = pd.date_range("2020-01-01", periods=36, freq="MS")
# (trust, cohort or None, level, slope) per ward; three trusts hold the comparison wards
WARDS = [
    ("T1", "2021-01", -0.30, -0.010),
    ("T1", "2021-01", -0.30, -0.010),
    ("T2", "2021-07", -0.10, -0.030),
    ("T2", "2021-07", -0.10, -0.030),
    ("T3", "2021-07", -0.10, -0.030),
    ("T3", None, 0.0, 0.0),
    ("T4", "2022-01", -0.50, 0.0),
    ("T4", None, 0.0, 0.0),
    ("T5", None, 0.0, 0.0),
]


def _panel(dynamic: bool = True, noise: bool = False, seed: int = 1) -> tuple:
    """Ward-months with expected counts exactly log-linear: ward, month and cohort effects."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(MONTHS))
    season = 0.2 * np.cos(2 * np.pi * t / 12)
    rows, wards = [], []
    for i, (trust, cohort, level, slope) in enumerate(WARDS):
        wards.append(
            {
                "trust_code": trust,
                "ward_id": f"W{i}",
                "start_month": pd.Timestamp(cohort) if cohort else pd.NaT,
            }
        )
        bed_days = 600.0 + 20 * i
        ward_effect = 0.1 * i
        for j, month in enumerate(MONTHS):
            log_mu = math.log(bed_days * 0.03) + ward_effect + season[j] - 0.01 * j
            if cohort:
                h = (month.year - pd.Timestamp(cohort).year) * 12 + month.month - int(cohort[5:])
                if h >= 0:
                    log_mu += level + (slope * h if dynamic else 0.0)
            mu = math.exp(log_mu)
            rows.append(
                {
                    "trust_code": trust,
                    "ward_id": f"W{i}",
                    "month": month,
                    "occupied_bed_days": bed_days,
                    "y": float(rng.poisson(mu)) if noise else mu,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(wards)


def _weighted_truth():
    """The cohort-size-weighted level, slope and 12-month effects the model should return."""
    cohorts: dict[str, list] = {}
    for _, cohort, level, slope in WARDS:
        if cohort:
            cohorts.setdefault(cohort, []).append((level, slope))
    n = sum(len(v) for v in cohorts.values())
    level = sum(len(v) * v[0][0] for v in cohorts.values()) / n
    slope = sum(len(v) * v[0][1] for v in cohorts.values()) / n
    return level, slope


def test_event_time_panel_aligns_each_ward_on_its_start():
    wm, wards = _panel()
    p = event_time_panel(wm, wards, "y")
    first = p[(p["ward"] == "T1/W0") & (p["month"] == pd.Timestamp("2021-01-01"))]
    assert first["event_time"].item() == 0 and first["t"].item() == 12
    assert p.loc[p["cohort"].isna(), "event_time"].isna().all()
    rates = event_time_rates(p, (-3, 3))
    assert list(rates["event_time"]) == [-3, -2, -1, 0, 1, 2, 3]
    assert (rates["wards"] == 6).all()


@pytest.mark.slow
def test_etwfe_recovers_cohort_level_and_slope_changes_exactly():
    wm, wards = _panel()
    res = etwfe_poisson(event_time_panel(wm, wards, "y"), "y", horizon=12)
    level, slope = _weighted_truth()
    assert_allclose(math.log(res.effects["level_rr"]["estimate"]), level, atol=1e-6)
    assert_allclose(math.log(res.effects["slope_rr"]["estimate"]), slope, atol=1e-6)
    assert_allclose(math.log(res.effects["rr_h"]["estimate"]), level + 12 * slope, atol=1e-6)
    cohorts = res.cohort_effects.set_index("cohort")
    assert_allclose(cohorts.loc["2021-07", "level_rr"], math.exp(-0.10), rtol=1e-6)
    assert list(cohorts["wards"]) == [2, 3, 1]
    assert res.n_comparison_wards == 3 and res.n_trusts == 5 and res.n_cohorts == 3


def test_event_study_lags_are_ratios_of_expected_events_and_leads_are_one():
    wm, wards = _panel()
    res = etwfe_poisson(event_time_panel(wm, wards, "y"), "y", window=(-6, 6))
    es = res.event_study.set_index("event_time")
    assert_allclose(es.loc[-6:-1, "estimate"], 1.0, atol=1e-6)
    # month 3: cohorts 2021-01 (2 wards), 2021-07 (3) and 2022-01 (1), weighted by their
    # expected counterfactual events at that month
    wm2 = wm.merge(wards, on=["trust_code", "ward_id"])
    h = (wm2["month"].dt.year - wm2["start_month"].dt.year) * 12 + (
        wm2["month"].dt.month - wm2["start_month"].dt.month
    )
    at = wm2[h == 3]
    effect = np.array(
        [next(w for w in WARDS if w[1] == c.strftime("%Y-%m"))[2:] for c in at["start_month"]]
    )
    mu1 = at["y"].to_numpy()
    mu0 = mu1 / np.exp(effect[:, 0] + 3 * effect[:, 1])
    assert_allclose(es.loc[3, "estimate"], mu1.sum() / mu0.sum(), rtol=1e-6)
    assert es.loc[3, "wards"] == 6
    assert_allclose(res.placebo["estimate"], 1.0, atol=1e-6)


def test_naive_twfe_is_biased_under_staggered_dynamic_effects():
    """The pitfall docs/methods.md describes: effects that grow with time since joining make
    the static TWFE compare late joiners with earlier joiners that are still changing."""
    wards = pd.DataFrame(
        {
            "trust_code": ["T1", "T2", "T3", "T3"],
            "ward_id": ["A", "B", "C", "D"],
            "start_month": pd.to_datetime(["2020-07-01", "2021-07-01", "2021-10-01", None]),
        }
    )
    rows, mu0 = [], []
    for _, w in wards.iterrows():
        for j, month in enumerate(MONTHS):
            h = (month.year - w.start_month.year) * 12 + month.month - w.start_month.month
            treated = pd.notna(w.start_month) and h >= 0
            base = 20 * math.exp(-0.01 * j)
            y = base * math.exp(-0.06 * h) if treated else base
            rows.append((w.trust_code, w.ward_id, month, 600.0, y))
            if treated:
                mu0.append((base, y))
    wm = pd.DataFrame(rows, columns=["trust_code", "ward_id", "month", "occupied_bed_days", "y"])
    panel = event_time_panel(wm, wards, "y")
    base, treated = np.array(mu0).T
    att = math.log(treated.sum() / base.sum())  # the ratio over every treated ward-month
    naive = math.log(twfe_naive(panel)["estimate"])
    assert abs(naive - att) > 0.2
    es = etwfe_poisson(panel, "y", window=(-6, 60)).event_study
    lags = es[es["kind"] == "lag"]
    assert_allclose(np.log(lags["estimate"]), -0.06 * lags["event_time"], atol=1e-6)
    # without dynamics (a pure level shift per cohort) the extended model gives the weighted
    # average exactly
    wm, wards = _panel(dynamic=False)
    panel = event_time_panel(wm, wards, "y")
    assert_allclose(
        math.log(etwfe_poisson(panel, "y", event_study=False).effects["level_rr"]["estimate"]),
        _weighted_truth()[0],
        atol=1e-6,
    )


def test_callaway_santanna_recovers_an_additive_effect_on_rates():
    wm, wards = _panel(dynamic=False)
    # additive model on the rate scale: ward and month effects plus a constant effect
    rate = 30 + wm.index % 9 + np.tile(np.arange(36), 9) * 0.2
    w = wm.merge(wards, on=["trust_code", "ward_id"])
    post = w["start_month"].notna() & (w["month"] >= w["start_month"])
    wm["y"] = (rate - 5.0 * post) * wm["occupied_bed_days"] / 1000
    cs = callaway_santanna(event_time_panel(wm, wards, "y"), window=(-3, 3), n_boot=49)
    cs = cs.set_index("event_time")
    assert_allclose(cs.loc[0:3, "att"], -5.0, atol=1e-9)
    assert_allclose(cs.loc[-3:-2, "att"], 0.0, atol=1e-9)
    assert (cs.loc[0:3, "ratio"] < 1).all()
    assert (cs["att_low"] <= cs["att"] + 1e-9).all() and (cs["att"] <= cs["att_high"] + 1e-9).all()


@pytest.mark.slow
def test_zero_event_cells_give_a_ratio_of_zero_not_a_crash():
    wm, wards = _panel(noise=True)
    late = wm["ward_id"].eq("W6") & (wm["month"] >= pd.Timestamp("2022-01-01"))
    wm.loc[late, "y"] = 0.0  # the one-ward cohort records no event after joining
    wm.loc[wm["ward_id"].eq("W8"), "y"] = 0.0  # a comparison ward with no events at all
    res = etwfe_poisson(event_time_panel(wm, wards, "y"), "y", window=(-3, 12))
    assert res.dropped_observations >= 36
    assert np.isfinite(res.effects["level_rr"]["estimate"])
    es = res.event_study.set_index("event_time")
    assert es.loc[0, "estimate"] > 0 and es["ci_high"].notna().sum() > 10


def test_controlled_analysis_needs_comparison_wards():
    wm, wards = _panel()
    wards = wards[wards["start_month"].notna()]
    with pytest.raises(ValueError, match="comparison ward"):
        etwfe_poisson(event_time_panel(wm, wards, "y"))


@pytest.mark.slow
def test_clustered_intervals_cover_the_truth_with_noise():
    wm, wards = _panel(noise=True, seed=3)
    res = etwfe_poisson(event_time_panel(wm, wards, "y"), "y", event_study=False)
    level, slope = _weighted_truth()
    e = res.effects["rr_h"]
    assert e["ci_low"] < math.exp(level + 12 * slope) < e["ci_high"]
    assert 0 < e["p_value"] < 1 and e["log_se"] > 0


@pytest.mark.parametrize("k", [0, 3])
def test_level_change_means_month_k_with_a_phase_in_in_every_panel_model(k):
    """Issue 16: with a phase-in of k months, ``level_rr`` is the change at month k in the
    controlled model and the GEE, as in the trust ITS; ``rr_h`` is still the change at the
    horizon. The data are exactly level + slope after joining, with a transient spike in the
    phase-in months that must not leak into either effect."""
    from rrp_eval.models.meta import pooled_gee

    wm, wards = _panel()
    start = wards.set_index("ward_id")["start_month"]
    h = (
        (wm["month"].dt.year - wm["ward_id"].map(start).dt.year) * 12
        + wm["month"].dt.month
        - wm["ward_id"].map(start).dt.month
    )
    # a spike in the months the phase-in leaves out (none when k = 0)
    wm = wm.assign(y=wm["y"] * np.where(h.between(0, k - 1), 3.0, 1.0))
    level, slope = _weighted_truth()
    res = etwfe_poisson(event_time_panel(wm, wards, "y"), "y", 12, event_study=False, phase_in=k)
    assert_allclose(math.log(res.effects["level_rr"]["estimate"]), level + k * slope, atol=1e-6)
    assert_allclose(math.log(res.effects["rr_h"]["estimate"]), level + 12 * slope, atol=1e-6)
    gee = pooled_gee(wm, wards, "y", 12, phase_in=k)
    # the GEE has one calendar trend for every ward and no comparison wards: not exact here,
    # but its level must move with k like the truth does, and not pick up the spike
    assert abs(math.log(gee["level_rr"]["estimate"]) - (level + k * slope)) < 0.06
    assert abs(math.log(gee["rr_h"]["estimate"]) - (level + 12 * slope)) < 0.06
