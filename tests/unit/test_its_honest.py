"""The trust ITS stays honest on realistic data (issue 15): autocorrelation integrated over
its posterior (REML with a reference prior) or REML AR(1) with Satterthwaite degrees of
freedom, a dispersion floor, a minimum of information, per-measure
recording gaps, and a subset of the null-calibrated study in validation/its_null_study.py."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.data.synthetic import simulate_series, write_demo_programme
from rrp_eval.data.validate import load_programme
from rrp_eval.evaluate.trust import MIN_SEGMENT_EVENTS, fit_trust_its, information_problem
from rrp_eval.models.its import fit_its
from rrp_eval.params import ProgrammeParams
from rrp_eval.prepare import measure_gaps, with_derived_measures

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

import its_null_study as study


def _ar1_gaussian(n: int, rho: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    e[0] = rng.normal()
    for i in range(1, n):
        e[i] = rho * e[i - 1] + rng.normal() * np.sqrt(1 - rho**2)
    t = np.arange(n)
    return pd.DataFrame({"t": t, "y": 10 + 0.01 * t + e})


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_reml_recovers_the_autocorrelation_of_a_long_series(rho):
    df = _ar1_gaussian(400, rho, seed=11)
    res = fit_its(df, "y", "t", 200, family="gaussian", cov_type="ar1", harmonics=0)
    assert res.serial.structure == "AR(1)"
    assert abs(res.rho - rho) < 0.1
    lvl = res.effect("level_change")
    assert 1 <= lvl.df <= res.df_resid


def _posterior_by_hand(r, Xt, units, t, rule="floor"):
    """The integrated ARMA(1,1) posterior computed directly on n x n matrices: REML criterion,
    reference prior sqrt(det I), I_ij = tr(W_i W_j) with W_0 = R P, W_i = ∂R/∂ψ_i P."""
    from rrp_eval.models import its as m

    lag = m._lags(units, t)
    finite = np.isfinite(lag) & (lag > 0)
    k = np.where(finite, lag, 1.0)
    out = []
    for d, s in m._POSTERIOR_GRID:
        R = m._correlation(lag, d, s)
        crit, phi = m._reml_criterion(r, Xt, R)
        Ri = np.linalg.inv(R)
        P = Ri - Ri @ Xt @ np.linalg.solve(Xt.T @ Ri @ Xt, Xt.T @ Ri)
        Ws = [R @ P, np.where(finite, s * k * d ** (k - 1), 0) @ P, np.where(finite, d**k, 0) @ P]
        info = np.array([[np.trace(a @ b) for b in Ws] for a in Ws])
        C = np.linalg.inv(Xt.T @ Xt)
        cov = C @ Xt.T @ R @ Xt @ C * (max(1.0, phi) if rule == "floor" else phi)
        out.append((-0.5 * crit + 0.5 * np.linalg.slogdet(info)[1], cov, phi))
    logw = np.array([o[0] for o in out])
    w = np.exp(logw - logw.max())
    return w / w.sum(), np.array([o[1] for o in out]), np.array([o[2] for o in out])


def test_the_integrated_interval_is_the_posterior_mixture_of_t_intervals():
    """cov_type="arma": the interval of a contrast is the 2.5-97.5% range of the posterior
    mixture of t distributions, computed here from scratch on n x n matrices."""
    from scipy import optimize, stats

    from rrp_eval.models import its as m

    df = simulate_series(
        seed=2,
        n_months=36,
        start_index=18,
        rate_per_1000=200,
        bed_days=2000,
        ar1_rho=0.7,
        ar1_sd=0.25,
    )
    res = fit_its(
        df,
        "count",
        "month",
        "2021-07",
        exposure="occupied_bed_days",
        family="quasipoisson",
        cov_type="arma",
    )
    assert res.serial.structure == "ARMA(1,1)" and "reference prior" in res.serial.method
    X = res.design.to_numpy(float)
    Xt = m._working_design(X, res.frame["fitted"].to_numpy(float), "quasipoisson", "log", None)
    r = res.frame["pearson_resid"].to_numpy(float)
    t = res.frame["time_value"].to_numpy(float)
    w, covs, phi = _posterior_by_hand(r, Xt, np.zeros(len(r)), t)
    assert_allclose(res.serial.lag1, w @ np.prod(m._POSTERIOR_GRID, axis=1), rtol=1e-8)
    assert_allclose(res.cov_params.to_numpy(), np.einsum("k,kij->ij", w, covs), rtol=1e-8)
    c = res._weight_vector({"level_change": 1.0, "slope_change": 12.0})
    se_k = np.sqrt(np.einsum("i,kij,j->k", c, covs, c))
    nu = np.where(phi > 1, res.df_resid, np.inf)
    for alpha in (0.05, 0.2):

        def cdf(x, se_k=se_k, nu=nu):
            return np.sum(
                w
                * np.where(
                    np.isfinite(nu),
                    stats.t.cdf(x / se_k, np.where(np.isfinite(nu), nu, 1)),
                    stats.norm.cdf(x / se_k),
                )
            )

        half = optimize.brentq(lambda x, a=alpha: cdf(x) - (1 - a / 2), 0, 10)
        row = res.rr_at(12, alpha=alpha)
        got = np.log(row.ci_high) - np.log(row.estimate)
        assert_allclose(np.log(row.estimate) - np.log(row.ci_low), got, rtol=1e-9)
        t_max = stats.t.ppf(1 - alpha / 2, res.df_resid) * row.std_err
        if half > t_max:  # matched: the t on row.df gives the mixture's interval
            assert_allclose(got, half, rtol=1e-7)
        else:  # never narrower than the t on n - p with the posterior-mean standard error
            assert_allclose(got, t_max, rtol=1e-9)
    # strongly correlated and short: the matched degrees of freedom fall well below n - p
    assert res.rr_h.df < 0.6 * res.df_resid


def test_the_integrated_posterior_runs_over_independent_series_with_gaps():
    """Stacked series (one block per ward, a missing month in one) give the same posterior
    and covariance as the n x n computation, and series are independent of each other."""
    from rrp_eval.models import its as m

    rng = np.random.default_rng(1)
    units = np.repeat([0, 1, 2], 20)
    t = np.r_[np.arange(20), np.arange(20), np.arange(2, 22)].astype(float)
    t[45:] += 1
    Xt = rng.normal(size=(60, 5))
    r = rng.normal(size=60)
    r -= Xt @ np.linalg.lstsq(Xt, r, rcond=None)[0]
    got = m._integrated_correlation(r, Xt, units, t, "free")
    w, covs, phi = _posterior_by_hand(r, Xt, units, t, rule="free")
    kept = w > m._POSTERIOR_FLOOR
    assert_allclose(got._weights, w[kept] / w[kept].sum(), rtol=1e-8)
    assert_allclose(got.cov(), np.einsum("k,kij->ij", w, covs), rtol=1e-8, atol=1e-14)
    assert_allclose(got.dispersion, w @ phi, rtol=1e-8)


def test_no_autocorrelation_gives_the_model_based_covariance():
    df = simulate_series(seed=5, n_months=48, rate_per_1000=30, bed_days=1000)
    kw = {"exposure": "occupied_bed_days", "family": "poisson", "harmonics": 0}
    plain = fit_its(df, "count", "month", "2022-01", **kw)
    serial = fit_its(df, "count", "month", "2022-01", cov_type="ar1", **kw)
    if serial.rho == 0:
        assert_allclose(serial.cov_params, plain.cov_params, rtol=1e-6)
    assert_allclose(serial.params, plain.params)


def test_quasi_poisson_dispersion_is_never_below_one():
    t = np.arange(36)
    df = pd.DataFrame({"t": t, "y": 100 + (t % 2), "e": 1000.0})  # under-dispersed
    for cov in ("nonrobust", "arma"):
        res = fit_its(df, "y", "t", 18, exposure="e", family="quasipoisson", cov_type=cov)
        assert res.dispersion == 1.0
        assert res.pearson_dispersion < 1


def test_auto_family_is_not_described_as_quasi_poisson():
    doc = fit_its.__doc__
    assert "``auto`` is not quasi-Poisson" in doc


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = write_demo_programme(tmp_path_factory.mktemp("demo"))
    return with_derived_measures(load_programme(folder)), ProgrammeParams()


def test_too_few_events_after_the_start_is_not_estimable():
    t = np.arange(48)
    y = np.where(t < 24, 5, 0)
    y[30] = 1
    df = pd.DataFrame({"t": t, "y": y, "e": 1000.0})
    res = fit_its(df, "y", "t", 24, exposure="e", family="quasipoisson", harmonics=0)
    why = information_problem(res)
    assert why.startswith(f"fewer than {MIN_SEGMENT_EVENTS} events after")
    assert not any(ch.isdigit() for ch in why.replace(str(MIN_SEGMENT_EVENTS), ""))


def test_an_effect_outside_the_display_range_is_not_a_finding():
    """Enough events, all in the first post months: the slope sends the rate ratio at 12
    months towards 0, which is not reported as a finding."""
    t = np.arange(48)
    y = np.where(t < 24, 8, 0)
    y[24:27] = [8, 4, 1]
    df = pd.DataFrame({"t": t, "y": y, "e": 1000.0})
    res = fit_its(df, "y", "t", 24, exposure="e", family="quasipoisson", harmonics=0)
    assert res.rr_h.estimate < 0.05
    assert "too little information" in information_problem(res)


def test_enough_information_passes(demo):
    data, params = demo
    m = fit_trust_its(data, "X01", "physical_restraint", params.for_trust("X01"))
    assert m.status == "ok" and information_problem(m.result) == ""
    assert m.result.serial is not None and m.result.spec.family == "quasipoisson"
    row = m.row()
    assert row["correlation"] in ("AR(1)", "ARMA(1,1)") and row["rr_h_df"] >= 1


def test_a_recording_gap_switches_the_measure_to_ward_series(demo):
    data, params = demo
    own = params.for_trust("X01")
    before = fit_trust_its(data, "X01", "seclusion", own)
    assert before.design.kind == "summed"
    ward = before.design.participating[0]
    wm = data.ward_month.copy()
    rows = (wm["trust_code"] == "X01") & (wm["ward_id"] == ward)
    months = sorted(wm.loc[rows, "month"])[30:36]
    wm.loc[rows & wm["month"].isin(months), "seclusion"] = np.nan
    gapped = dataclasses.replace(data, ward_month=wm)
    text = measure_gaps(gapped, "X01", before.design.participating, "seclusion")
    assert ward in text and "6 months" in text
    after = fit_trust_its(gapped, "X01", "seclusion", own)
    assert after.design.kind == "stacked" and ward in after.design.composition
    if after.result is not None:
        assert after.result.spec.unit == "ward_id"
    # other measures of the trust keep the summed series
    assert fit_trust_its(gapped, "X01", "physical_restraint", own).design.kind == "summed"


def test_validation_warns_of_a_measure_gap(tmp_path):
    folder = write_demo_programme(tmp_path / "d")
    wm_path = folder / "ward_month.csv"
    wm = pd.read_csv(wm_path, dtype=str, keep_default_na=False)
    wards = pd.read_csv(folder / "wards.csv", dtype=str, keep_default_na=False)
    part = wards[wards["start_month"] != ""].iloc[0]
    rows = wm.index[(wm["trust_code"] == part.trust_code) & (wm["ward_id"] == part.ward_id)]
    wm.loc[rows[20:23], "seclusion"] = ""
    wm.to_csv(wm_path, index=False)
    data = load_programme(folder)
    found = [w for w in data.report.warnings if w.rule == "measure-gap"]
    assert len(found) == 1
    assert part.ward_id in found[0].message and "3 months" in found[0].message


# --- a subset of the null-calibrated simulation study ---------------------------------------


def test_study_null_cell_size_and_the_previous_default():
    """24 months, 150 events a month, count-scale lag-1 autocorrelation 0.4, no effect: the
    default keeps its size near 5%; the previous default (moment AR(1)) over-rejects rr_h."""
    cell = study.Cell(lag1=0.4, events=150, months=24)
    table = study.run_cell(cell, 150, np.random.SeedSequence(4))
    size = table.set_index(["model", "estimate"])["rejects"]
    default, _plug_in, previous = list(study.MODELS)
    assert size[(default, "level_rr")] <= 0.08 and size[(default, "rr_h")] <= 0.08
    assert size[(previous, "rr_h")] >= 0.10
    assert table["n_failed"].max() <= 3


def test_study_generator_hits_the_count_scale_autocorrelation():
    """The latent variance the study solves for gives counts with the stated lag-1
    autocorrelation (a long series with a constant mean)."""
    rng = np.random.default_rng(3)
    for lag1, mean in ((0.2, 20.0), (0.4, 150.0)):
        s2 = study.latent_variance(lag1, mean)
        n = 200_000
        x = np.zeros(n)
        sd = np.sqrt(s2)
        shocks = rng.normal(0, sd * np.sqrt(1 - study.DECAY**2), n)
        x[0] = rng.normal(0, sd)
        for i in range(1, n):
            x[i] = study.DECAY * x[i - 1] + shocks[i]
        y = rng.poisson(mean * np.exp(x)).astype(float)
        y -= y.mean()
        assert abs(float(y[1:] @ y[:-1] / (y @ y)) - lag1) < 0.02


def test_trend_form_sensitivity_options():
    """A decelerating decline and no effect: the quadratic trend's counterfactual follows the
    curve (its rate ratio at 12 months is nearer 1 than the linear trend's), and a baseline cut
    to the last 12 months drops the earlier rows."""
    t = np.arange(48)
    mu = 200 * np.exp(-0.03 * t + 0.03 * t**2 / 94)
    df = pd.DataFrame({"t": t, "y": np.round(mu), "e": 1000.0})
    kw = {"exposure": "e", "family": "quasipoisson", "harmonics": 0}
    linear = fit_its(df, "y", "t", 24, **kw)
    curved = fit_its(df, "y", "t", 24, trend="quadratic", **kw)
    assert "pre_trend_sq" in curved.params.index and curved.spec.trend == "quadratic"
    assert abs(np.log(curved.rr_h.estimate)) < 0.2 * abs(np.log(linear.rr_h.estimate))
    recent = fit_its(df, "y", "t", 24, baseline_months=12, **kw)
    assert recent.n_pre == 12 and recent.spec.baseline_months == 12
    with pytest.raises(ValueError, match="trend="):
        fit_its(df, "y", "t", 24, trend="cubic", **kw)


@pytest.mark.parametrize("units", [np.zeros(40, int), np.repeat([0, 1, 2], [15, 12, 13])])
def test_fast_reml_criteria_equal_the_direct_one(units):
    """The prewhitened AR(1) criterion and the batched ARMA grid give the REML criterion
    computed from the full correlation matrix, also with gaps in time and several series."""
    from rrp_eval.models import its as m

    rng = np.random.default_rng(5)
    t = np.concatenate(
        [np.sort(rng.choice(60, np.sum(units == u), replace=False)) for u in np.unique(units)]
    ).astype(float)
    n = len(units)
    X = np.column_stack([np.ones(n), t, rng.normal(size=n), rng.normal(size=n)])
    r = rng.normal(size=n)
    lag = m._lags(units, t)
    first = np.r_[True, units[1:] != units[:-1]]
    steps = np.r_[0.0, np.diff(t)]
    for decay in (0.0, 0.4, 0.93):
        direct = m._reml_criterion(r, X, m._correlation(lag, decay, 1.0))[0]
        assert_allclose(m._ar1_reml_criterion(r, X, steps, first, decay), direct, rtol=1e-10)
    with pytest.raises(ValueError, match="ordered"):
        m._serial_correlation(r, X, units, t[::-1].copy(), "fixed")


def test_sensitivity_of_a_not_estimable_primary_fits_nothing(demo, monkeypatch):
    from rrp_eval.evaluate import trust as tr

    data, params = demo
    own = params.for_trust("X01")
    primary = tr.fit_trust_its(data, "X01", "mechanical_restraint", own)
    assert primary.status == "not_estimable"
    calls = []
    monkeypatch.setattr(tr, "fit_trust_its", lambda *a, **k: calls.append(a))
    table = tr.sensitivity_table(data, "X01", "mechanical_restraint", own, primary)
    assert not calls and len(table) > 5
    assert set(table["status"]) == {"not_estimable"}
    assert set(table["message"]) == {primary.message}


def _series_with_outlier(at: int | None, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = pd.date_range("2021-01", periods=48, freq="MS")
    y = rng.poisson(30 * np.exp(-0.005 * np.arange(48)))
    if at is not None:
        y[at] *= 5
    return pd.DataFrame({"month": months, "count": y, "obd": 1000.0})


def _fit(df: pd.DataFrame, **kw):
    start = pd.Timestamp("2023-01-01")  # month 24 of the series
    opts = {"family": "quasipoisson", "cov_type": "arma"} | kw
    return fit_its(df, "count", "month", start, exposure="obd", **opts)


def test_influence_matches_leaving_a_month_out_and_names_the_outlier():
    df = _series_with_outlier(23)
    res = _fit(df)
    inf = res.influence()
    assert len(inf) == len(df) and {"level_change", "rr_h"} <= set(inf.columns)
    for i in (5, 30, 40):  # ordinary months: the one-step change is the refit's
        exact = _fit(df.drop(index=i))
        assert_allclose(
            inf.loc[i, "level_rr_without"], exact.effect("level_change").estimate, rtol=0.01
        )
        assert_allclose(inf.loc[i, "rr_h_without"], exact.rr_h.estimate, rtol=0.01)
    top = res.influential()
    assert top.index[0] == 23 and top.loc[23, "rr_h"] > 1
    assert res.influential(threshold=1e9).empty


def test_robust_fit_resists_an_outlier_and_changes_little_without_one():
    clean, dirty = _fit(_series_with_outlier(None)), _fit(_series_with_outlier(23))
    robust_clean = _fit(_series_with_outlier(None), robust=True)
    robust_dirty = _fit(_series_with_outlier(23), robust=True)
    level = lambda r: r.effect("level_change").estimate  # noqa: E731
    assert abs(np.log(level(robust_clean) / level(clean))) < 0.03
    # the outlier halves the non-robust estimate; the robust one stays near the clean fit
    assert abs(np.log(level(dirty) / level(clean))) > 0.5
    assert abs(np.log(level(robust_dirty) / level(clean))) < 0.05
    assert robust_dirty.spec.robust and robust_dirty.serial.dispersion < 2
    with pytest.raises(ValueError, match="robust"):
        _fit(_series_with_outlier(None), family="negbin", robust=True)


def test_placebo_check_separates_a_real_step_from_the_baselines_swings(demo):
    from rrp_eval.evaluate import trust as tr

    data, params = demo
    own = params.for_trust("X01")
    m = tr.fit_trust_its(data, "X01", "restrictive_practice", own)
    pc = tr.placebo_check(m, own)
    assert pc is not None and pc.n_starts >= 5 and 0 < pc.share <= 1
    assert pc.n_as_extreme == sum(abs(np.log(v)) >= abs(np.log(pc.real)) for v in pc.placebo)
    # each false start is the primary model fitted to the baseline with that start
    baseline = m.series[m.series["month"] < pd.Timestamp(m.design.starts[0])]
    baseline = baseline.sort_values("month").reset_index(drop=True)
    false_start = baseline["month"].iloc[tr.PLACEBO_MIN_MONTHS]
    direct = fit_its(
        baseline,
        "count",
        "month",
        false_start,
        exposure="occupied_bed_days",
        family="quasipoisson",
        phase_in=own.phase_in_months,
        horizon=own.horizon_months,
    )
    assert_allclose(pc.placebo[0], direct.rr_h.estimate, rtol=1e-6)
    # the same series with a halving at the start: no false start comes near it
    series = m.series.copy()
    post = series["month"] >= pd.Timestamp(m.design.starts[0])
    series.loc[post, "count"] = np.round(series.loc[post, "count"] * 0.4)
    stepped = tr.fit_trust_its(data, "X01", "restrictive_practice", own, series, m.design)
    strong = tr.placebo_check(stepped, own)
    assert strong.n_as_extreme == 0 and strong.share == 1 / (strong.n_starts + 1)


def test_negative_controls_and_the_robust_row_reach_the_trust_report(demo):
    from rrp_eval import show
    from rrp_eval.disclosure import DisclosureRule
    from rrp_eval.evaluate.trust import evaluate_trust

    data, params = demo
    trust = evaluate_trust(data, "X01", params)
    assert "robust (Huber weights)" in set(trust.sensitivity["restrictive_practice"]["variant"])
    section = show.trust.negative_controls(trust, DisclosureRule.from_params(params.disclosure))
    assert "Negative controls" in section.text
    shown = section.tables[0]
    balancing = [m for m in trust.measures if params.measure(m).balancing]
    assert balancing and list(shown["Measure"]) == [trust.label(m) for m in balancing]
    fell = [
        trust.label(m)
        for m in balancing
        if trust.its[m].result is not None and trust.its[m].result.rr_h.ci_high < 1
    ]
    assert ("fell clearly too" in section.text) == bool(fell)
    assert all(label in section.text for label in fell)


def test_every_study_cell_can_be_generated():
    """Each cell's count-scale autocorrelation is reachable at its latent decay and events a
    month (a count's lag-1 autocorrelation stays below the latent decay), so no cell fails."""
    for cell in study.cells():
        nb = 0.1 if cell.generator == "overdispersed" else 0.0
        assert study.latent_variance(cell.lag1, cell.events, nb, cell.decay) >= 0
    with pytest.raises(ValueError, match="out of reach"):
        study.latent_variance(0.6, 20.0, 0.0, 0.5)
