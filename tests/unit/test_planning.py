"""Planning and detectability (rrp_eval.evaluate.planning): the simulation's noise reproduces
the baseline it was fitted to, the power curve's interpolation, a trust's detectability, the
programme's power and the `rrp-eval plan` command. The power's agreement with the rejection
rate on fresh trusts from other processes is validation/power_study.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import rrp_eval as rrp
from rrp_eval.cli import main
from rrp_eval.evaluate.planning import (
    PowerCell,
    TrustPlan,
    detectability,
    estimate_noise,
    minimum_detectable,
    power_cell,
    programme_power,
    settled,
    simulate_counts,
    stated_frame,
    unbiased_lag1,
)
from rrp_eval.params import ProgrammeParams


@pytest.mark.parametrize(("dispersion", "lag1"), [(1.0, 0.0), (2.5, 0.0), (3.0, 0.4)])
def test_the_simulated_noise_has_the_stated_dispersion_and_autocorrelation(dispersion, lag1):
    frame = stated_frame(40, 1500, 600, 1, dispersion, lag1)  # 600 months: moments, not noise
    y = simulate_counts(frame, 1.0, 4, np.random.default_rng(3))
    m = frame.noise.mean_count
    pearson = (y - m) / math.sqrt(m)
    assert np.mean(pearson**2) == pytest.approx(dispersion, rel=0.12)
    r = np.mean([np.corrcoef(p[:-1], p[1:])[0, 1] for p in pearson])
    assert r == pytest.approx(lag1, abs=0.06)


def test_the_noise_estimated_from_a_baseline_is_the_noise_that_made_it():
    frame = stated_frame(40, 1500, 400, 1, 2.5, 0.3)
    y = simulate_counts(frame, 1.0, 1, np.random.default_rng(5))[0]
    series = frame.series.assign(count=y)
    pre = np.ones(len(series), bool)
    noise = estimate_noise(series, frame.unit, pre)
    assert noise.dispersion == pytest.approx(2.5, rel=0.2)
    assert noise.lag1 == pytest.approx(0.3, abs=0.1)


@pytest.mark.parametrize("raw", [0.0, 0.1, 0.3, 0.5])
def test_the_lag1_correction_for_a_mean_alone_is_marriott_and_popes(raw):
    n = 60
    t, units, same = np.arange(n, dtype=float), np.zeros(n, int), np.ones(n - 1, bool)
    c = unbiased_lag1(raw, np.ones((n, 1)) / math.sqrt(n), units, t, same)
    assert c == pytest.approx(raw + (1 + 3 * raw) / n, abs=0.015)


@pytest.mark.parametrize("rho", [0.0, 0.4])
def test_the_lag1_correction_allows_for_the_trend_and_the_harmonics(rho):
    """36 months of AR(1) noise through the baseline's fit (mean, trend, two harmonic pairs):
    the residuals' raw lag-1 statistic is far too low; the corrected one is close to the truth
    (and 0 for most white-noise baselines)."""
    n = 36
    t, units, same = np.arange(n, dtype=float), np.zeros(n, int), np.ones(n - 1, bool)
    season = [f(2 * np.pi * k * t / 12) for k in (1, 2) for f in (np.sin, np.cos)]
    q = np.linalg.qr(np.column_stack([np.ones(n), t, *season]))[0]
    rng = np.random.default_rng(1)
    raw, fixed = [], []
    for _ in range(300):
        e = np.zeros(n)
        e[0] = rng.normal()
        for j in range(1, n):
            e[j] = rho * e[j - 1] + rng.normal() * math.sqrt(1 - rho**2)
        r = e - q @ (q.T @ e)
        raw.append(np.sum(r[:-1] * r[1:]) / np.sum(r * r) * n / (n - 1))
        fixed.append(unbiased_lag1(raw[-1], q, units, t, same))
    assert np.mean(raw) < rho - 0.15
    if rho:
        assert np.mean(fixed) == pytest.approx(rho, abs=0.06)
    else:
        assert np.median(fixed) == 0 and np.mean(fixed) < 0.1


def test_the_lag1_correction_inverts_the_expected_statistic_of_stacked_wards_with_gaps():
    """Five wards with months missing, each its own rate, a common trend and season: the
    statistic's ratio of expectations, by Monte Carlo under AR(1) noise at c = 0.5, is mapped
    back to 0.5 (the traces are summed over the wards' blocks correctly)."""
    rng = np.random.default_rng(3)
    units = np.repeat(np.arange(5), 30)
    t = np.tile(np.arange(30, dtype=float), 5)
    keep = rng.random(len(t)) > 0.15
    units, t = units[keep], t[keep]
    same = (units[1:] == units[:-1]) & (np.diff(t) == 1)
    dummies = (units[:, None] == np.arange(5)).astype(float)
    season = [np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12)]
    q = np.linalg.qr(np.column_stack([dummies, t, *season]))[0]
    c, n = 0.5, len(t)
    first = np.r_[True, units[1:] != units[:-1]]
    decay = np.where(first, 0.0, c ** np.diff(t, prepend=t[0]))
    num = den = 0.0
    for _ in range(3000):
        z = rng.normal(size=n)
        e = np.empty(n)
        for i in range(n):
            e[i] = z[i] if first[i] else decay[i] * e[i - 1] + z[i] * math.sqrt(1 - decay[i] ** 2)
        r = e - q @ (q.T @ e)
        num += np.sum(r[:-1][same] * r[1:][same])
        den += np.sum(r * r)
    expected = num / den * n / same.sum()
    assert unbiased_lag1(expected, q, units, t, same) == pytest.approx(c, abs=0.03)


def test_a_fall_is_applied_from_the_start_only():
    frame = stated_frame(40, 1500, 24, 24)
    y = simulate_counts(frame, 0.5, 2000, np.random.default_rng(1)).mean(axis=0)
    assert y[:24].mean() == pytest.approx(60, rel=0.02)
    assert y[24:].mean() == pytest.approx(30, rel=0.02)


def test_minimum_detectable_interpolates_in_log_rate_ratio():
    power = pd.Series([0.1, 0.5, 0.9, 1.0], index=[0.9, 0.75, 0.6, 0.4])
    mde = minimum_detectable(power)
    w = (0.8 - 0.5) / (0.9 - 0.5)
    assert mde == pytest.approx(math.exp(math.log(0.75) + w * (math.log(0.6) - math.log(0.75))))
    assert math.isnan(minimum_detectable(pd.Series([0.1, 0.2], index=[0.9, 0.5])))
    assert minimum_detectable(pd.Series([0.85, 0.9], index=[0.9, 0.5])) == pytest.approx(0.9)


def test_power_rises_with_the_fall_and_with_follow_up():
    own = ProgrammeParams().for_trust("stated")
    frames = {f: stated_frame(80, 1500, 24, f, 1.2, 0.0) for f in (12, 36)}
    plan = rrp.evaluate.planning.plan_frames(frames, own, rr_grid=(0.9, 0.5), n_sims=30)
    p = plan.power.set_index(["follow_up", "rr"])["power"]
    assert p[(36, 0.5)] >= p[(36, 0.9)]
    assert p[(36, 0.5)] > 0.8  # a halving over 36 months of 120 events a month is plain
    assert p[(36, 0.75)] >= p[(12, 0.75)] - 0.15  # Monte Carlo margin


def test_a_trust_without_a_start_has_unknown_detectability(tmp_path):
    programme = rrp.load_programme()
    d = detectability(programme, "X01", n_sims=12)
    assert 0 <= d.power <= 1 and d.n_sims == 12
    assert d.months_before > 0 and d.months_after > 0
    assert "fall" in d.sentence() and f"{d.power:.0%}" in d.sentence()
    no_start = programme.wards.assign(start_month=pd.NaT)
    data = programme.__class__(**{**programme.__dict__, "wards": no_start})
    unknown = detectability(data, "X01", n_sims=12)
    assert math.isnan(unknown.power) and unknown.verdict == "unknown"
    assert "no participating ward" in unknown.sentence()


def test_a_verdict_is_settled_when_its_interval_stays_in_one_band():
    assert settled(0, 25) and settled(2, 25)  # 99% upper bounds 0.19 and 0.33: below 50%
    assert not settled(12, 25) and not settled(24, 25)  # 0.23-0.74 and 0.74-1.00
    assert settled(25, 25)  # 99% lower bound 0.81: 80% and over
    assert settled(65, 100)  # 0.52-0.77: between 50% and 80%
    assert not settled(50, 100) and not settled(80, 100)


@pytest.mark.parametrize("power", [0.05, 0.3, 0.45, 0.49, 0.5, 0.51, 0.65, 0.79, 0.8, 0.81, 0.95])
def test_an_early_stop_rarely_gives_another_verdict_than_the_true_power(power):
    """The stopping rule on its own, with exact binomial detections: at any true power, an
    early stop with a verdict other than the true power's happens under 3% of the time."""
    from rrp_eval.evaluate.planning import PAGE_BATCH, PAGE_SIMS, VERDICT_BOUNDS

    looks = range(PAGE_BATCH, PAGE_SIMS, PAGE_BATCH)
    table = {n: np.array([settled(d, n) for d in range(n + 1)]) for n in looks}
    rng = np.random.default_rng(11)
    hits = rng.binomial(PAGE_BATCH, power, size=(20_000, PAGE_SIMS // PAGE_BATCH)).cumsum(axis=1)
    band = np.searchsorted(VERDICT_BOUNDS, power, side="right")
    open_ = np.ones(len(hits), bool)
    wrong = 0
    for j, n in enumerate(looks):
        stop = open_ & table[n][hits[:, j]]
        shown = np.searchsorted(VERDICT_BOUNDS, hits[stop, j] / n, side="right")
        wrong += int((shown != band).sum())
        open_ &= ~stop
    assert wrong / len(hits) < 0.03


@pytest.mark.parametrize(
    ("pattern", "made"),
    [([False], 25), ([True], 25), ([True, False], 100), ([True, True, False, False, True], 100)],
)
def test_a_run_simulates_in_batches_until_the_verdict_is_settled(monkeypatch, pattern, made):
    from rrp_eval.evaluate import planning

    calls = iter(range(1000))
    monkeypatch.setattr(
        planning,
        "_detects",
        lambda *a: (pattern[next(calls) % len(pattern)], math.log(0.75), 0.2),
    )
    frame = stated_frame(40, 1500, 24, 24)
    own = ProgrammeParams().for_trust("stated")
    cell = power_cell(frame, own, 0.75, 100, seed=1, batch=25)
    assert cell.n_sims == made == len(cell.estimates)
    assert power_cell(frame, own, 0.75, 100, seed=1).n_sims == 100  # a plan: all of them


def test_a_null_fall_is_settled_after_one_batch_of_the_same_simulations():
    frame = stated_frame(40, 1500, 24, 24, 1.5, 0.2)
    own = ProgrammeParams().for_trust("stated")
    cell = power_cell(frame, own, 1.0, 100, seed=2, batch=25)
    assert cell.n_sims == 25 and cell.detected <= 2
    every = power_cell(frame, own, 1.0, 100, seed=2)  # a plan's cell: all 100
    np.testing.assert_array_equal(cell.estimates, every.estimates[:25])


def _fake_plan(code: str, se: float, n: int = 400) -> TrustPlan:
    rng = np.random.default_rng(len(code) + int(se * 100))
    est = np.log(0.75) + rng.normal(0, se, n)
    cell = PowerCell(0.75, 24, n, int((est + 1.96 * se < 0).sum()), est, np.full(n, se))
    frame = stated_frame(40, 1500, 24, 24)
    power = pd.DataFrame({"follow_up": [24], "rr": [0.75], "power": [cell.power], "mc_se": [0]})
    return TrustPlan(code, "restrictive_practice", frame.noise, 24, power, {}, {}, (cell,))


def test_the_programme_power_grows_with_trusts_and_falls_with_spread():
    plans = [_fake_plan(f"T{i}", se) for i, se in enumerate([0.2, 0.3, 0.4])]
    tight = programme_power(plans, sizes=(3, 10, 30), tau=0.05, n_programmes=300)
    wide = programme_power(plans, sizes=(3, 10, 30), tau=0.5, n_programmes=300)
    assert list(tight["power"]) == sorted(tight["power"])
    assert tight["power"].iloc[-1] > 0.95
    assert (wide["power"].to_numpy() <= tight["power"].to_numpy() + 0.05).all()


def test_plan_command_from_stated_figures(capsys):
    code = main(["plan", "--rate", "60", "--bed-days", "1400", "--sims", "10", "--follow-up", "24"])
    out = capsys.readouterr().out
    assert code == 0
    assert "power" in out and "Programme: power of the pooled estimate" in out


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--rate", "60"],
        ["plan", "--rate", "60", "--bed-days", "1400", "--follow-up", "x"],
        ["plan", "--rate", "-1", "--bed-days", "1400", "--sims", "10"],
        ["plan", "--rate", "60", "--bed-days", "1400", "--sims", "2"],
    ],
)
def test_plan_command_refuses_bad_arguments(args, capsys):
    assert main(args) == 2
    assert "rrp-eval plan" in capsys.readouterr().err
