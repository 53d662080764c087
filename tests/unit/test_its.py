"""Unit tests for rrp_eval.models.its: conventions (SPEC §2), options, errors, recovery."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rrp_eval.data.synthetic import simulate_series
from rrp_eval.models.its import ITSResult, NotEstimableError, fit_its


def _series(seed=0, **kw):
    defaults = {"bed_days": 5000.0, "rate_per_1000": 20.0}
    return simulate_series(seed=seed, **(defaults | kw))


def _fit(df, **kw):
    opts = {
        "outcome": "count",
        "time": "month",
        "start": "2022-01",
        "exposure": "occupied_bed_days",
    } | kw
    return fit_its(df, **opts)


def test_slope_term_is_zero_in_the_first_post_period_and_level_term_starts_there():
    res = _fit(_series(), harmonics=0)
    f = res.frame
    assert f.loc[f.h == 0, "slope_change"].item() == 0
    assert f.loc[f.h == 5, "slope_change"].item() == 5
    assert (f.loc[f.h < 0, ["level_change", "slope_change"]] == 0).all().all()
    assert (f.loc[f.h >= 0, "level_change"] == 1).all()
    assert f["t"].min() == 0 and f["pre_trend"].iloc[3] == 3


def test_monthly_and_numeric_time_give_the_same_model():
    df = _series(seed=3)
    df["time"] = np.arange(len(df)) + 1
    df["moy"] = df["month"].dt.month
    by_month = _fit(df, harmonics=2)
    by_number = _fit(df, time="time", start=25, harmonics=2, season="moy")
    assert_allclose(by_month.params.to_numpy(), by_number.params.to_numpy(), rtol=1e-10)
    assert_allclose(by_month.effects.to_numpy(), by_number.effects.to_numpy(), rtol=1e-10)


def test_start_may_be_a_timestamp_or_period():
    df = _series(seed=4)
    a = _fit(df, start="2022-01", harmonics=0)
    b = _fit(df, start=pd.Timestamp("2022-01-01"), harmonics=0)
    c = _fit(df, start=pd.Period("2022-01", "M"), harmonics=0)
    assert_allclose(a.params, b.params)
    assert_allclose(a.params, c.params)


def test_harmonics_are_sine_cosine_pairs_of_the_season():
    res = _fit(_series(), harmonics=2)
    f = res.frame
    month = (f["time_value"] % 12 + 1).to_numpy()
    assert_allclose(f["sin1"], np.sin(2 * np.pi * month / 12))
    assert_allclose(f["cos2"], np.cos(2 * np.pi * 2 * month / 12))
    assert list(res.params.index) == [
        "intercept",
        "pre_trend",
        "level_change",
        "slope_change",
        "sin1",
        "cos1",
        "sin2",
        "cos2",
    ]


@pytest.mark.parametrize(("n", "expected"), [(48, 2), (24, 2), (20, 0)])
def test_automatic_harmonics(n, expected):
    df = _series(n_months=n, start_index=n // 2)
    start = df.loc[df.h == 0, "month"].item()
    assert _fit(df, start=start).spec.harmonics == expected


def test_automatic_harmonics_need_a_season_source():
    df = _series()
    df["time"] = np.arange(len(df))
    assert _fit(df, time="time", start=24).spec.harmonics == 0
    with pytest.raises(ValueError, match="harmonics need a season"):
        _fit(df, time="time", start=24, harmonics=1)


def test_phase_in_drops_the_first_months_and_moves_the_slope_origin():
    df = _series(seed=5)
    res = _fit(df, phase_in=3, harmonics=0)
    f = res.frame
    assert not f["h"].between(0, 2).any()
    assert res.spec.n_dropped_phase_in == 3
    assert f.loc[f.h == 3, "slope_change"].item() == 0
    assert f.loc[f.h == 3, "level_change"].item() == 1
    assert res.n_post == 21
    # level change is the effect at h = phase_in
    assert_allclose(res.rr_at(3)[:4].to_numpy(), res.effects.loc["level_change"].to_numpy())
    assert_allclose(
        res.rr_at(10).estimate, np.exp(res.params["level_change"] + 7 * res.params["slope_change"])
    )


def test_effect_scale_and_horizon():
    res = _fit(_series(seed=6), harmonics=0, horizon=6)
    assert_allclose(
        res.rr_h.estimate, np.exp(res.params["level_change"] + 6 * res.params["slope_change"])
    )
    assert res.h_end == 23
    assert_allclose(res.rr_end.to_numpy(), res.rr_at(23).to_numpy())
    low, high = res.rr_h.ci_low, res.rr_h.ci_high
    assert low < res.rr_h.estimate < high


def test_missing_outcomes_are_dropped_and_counted():
    df = _series(seed=7)
    df.loc[[2, 30], "count"] = np.nan
    res = _fit(df, harmonics=0)
    assert res.nobs == 46 and res.spec.n_dropped_missing == 2


def test_quasipoisson_scales_poisson_standard_errors_by_root_dispersion():
    df = _series(seed=8, nb_alpha=0.1)
    p = _fit(df, family="poisson", harmonics=0)
    q = _fit(df, family="quasipoisson", harmonics=0)
    assert_allclose(p.params, q.params)
    assert_allclose(q.bse, p.bse * np.sqrt(q.dispersion))
    assert q.dispersion == pytest.approx(p.pearson_dispersion)
    assert p.dispersion == 1.0 and q.dispersion > 1.5


def test_auto_family_chooses_poisson_without_overdispersion():
    res = _fit(_series(seed=21), harmonics=0)
    assert res.spec.family == "poisson"
    assert res.spec.family_reason.startswith("auto: Poisson") and "no over-dispersion" in (
        res.spec.family_reason
    )


def _wide_means(seed, kind):
    rng = np.random.default_rng(seed)
    df = _series(seed=seed, n_months=48)
    bed_days = np.exp(np.linspace(np.log(200), np.log(8000), 48))
    rng.shuffle(bed_days)
    mu = 0.02 * bed_days * np.where(df.h >= 0, 0.8, 1.0)
    if kind == "nb2":
        counts = rng.poisson(rng.gamma(1 / 0.3, 0.3 * mu))
    else:
        counts = 4 * rng.poisson(mu / 4)  # Var = 4 mu: proportional to the mean
    return df.assign(occupied_bed_days=bed_days, count=counts)


@pytest.mark.parametrize(("kind", "family"), [("nb2", "negbin"), ("nb1", "quasipoisson")])
def test_auto_family_tells_quadratic_from_proportional_variance(kind, family):
    res = _fit(_wide_means(3, kind), harmonics=0)
    assert res.spec.family == family, res.spec.family_reason
    assert "Cameron-Trivedi" in res.spec.family_reason


def test_gaussian_effects_are_differences_with_t_inference():
    df = _series(seed=9)
    df["rate"] = df["count"] / df["occupied_bed_days"] * 1000
    res = _fit(df, outcome="rate", exposure=None, family="gaussian", harmonics=0)
    assert res.spec.effect_scale == "difference"
    assert res.spec.inference == "t"
    ols = np.linalg.lstsq(res.model_result.model.exog, res.model_result.model.endog, rcond=None)[0]
    assert_allclose(res.params.to_numpy(), ols)
    assert res.effects.loc["level_change", "estimate"] == pytest.approx(res.params["level_change"])
    with pytest.raises(ValueError, match="rr_at needs a log-link"):
        res.rr_at(0)


def _stacked(seed=10):
    treated = _series(seed=seed, level_rr=0.6).assign(unit="T", z=1)
    controls = [_series(seed=seed + i, level_rr=1.0).assign(unit=f"C{i}", z=0) for i in (1, 2)]
    return pd.concat([treated, *controls], ignore_index=True)


def test_group_parameter_names_and_effect_rows():
    res = _fit(_stacked(), group="z", unit="unit", harmonics=0)
    assert list(res.params.index) == [
        "intercept",
        "pre_trend",
        "level_change",
        "slope_change",
        "group",
        "group:pre_trend",
        "group:level_change",
        "group:slope_change",
    ]
    assert list(res.effects.index) == [
        "level_change",
        "slope_change",
        "level_change_vs_control",
        "slope_change_vs_control",
        "level_change_control",
        "slope_change_control",
    ]
    b = res.params
    assert res.effects.loc["level_change", "estimate"] == pytest.approx(
        np.exp(b["level_change"] + b["group:level_change"])
    )
    assert res.effects.loc["level_change_vs_control", "estimate"] == pytest.approx(
        np.exp(b["group:level_change"])
    )
    assert res.effect_at(4, vs_control=True).estimate == pytest.approx(
        np.exp(b["group:level_change"] + 4 * b["group:slope_change"])
    )


def _newey_west_within_units(X, e, units, lags):
    """Textbook Newey-West meat summed within units, Bartlett weights, n/(n-k) correction."""
    meat = np.zeros((X.shape[1], X.shape[1]))
    for u in np.unique(units):
        xu, eu = X[units == u], e[units == u]
        s = xu * eu[:, None]
        meat += s.T @ s
        for lag in range(1, lags + 1):
            w = 1 - lag / (lags + 1)
            g = s[lag:].T @ s[:-lag]
            meat += w * (g + g.T)
    bread = np.linalg.inv(X.T @ X)
    n, k = X.shape
    return bread @ meat @ bread * n / (n - k)


def test_newey_west_is_computed_within_units():
    df = _stacked(seed=11)
    df["rate"] = df["count"] / df["occupied_bed_days"] * 1000
    res = _fit(
        df,
        outcome="rate",
        exposure=None,
        family="gaussian",
        group="z",
        unit="unit",
        harmonics=0,
        cov_type="hac",
        maxlags=2,
    )
    X = res.model_result.model.exog
    e = res.model_result.resid_response.to_numpy()
    units = res.frame["unit"].to_numpy()
    assert_allclose(res.cov_params.to_numpy(), _newey_west_within_units(X, e, units, 2), rtol=1e-8)
    pooled = _newey_west_within_units(X, e, np.zeros(len(e)), 2)
    assert not np.allclose(res.cov_params.to_numpy(), pooled, rtol=1e-3)
    assert res.spec.inference == "normal"


def test_default_hac_lag_follows_newey_west_1994():
    res = _fit(_series(), harmonics=0, cov_type="hac")
    assert res.spec.maxlags == 3  # floor(4 * (48/100)^(2/9))


def test_result_is_frozen_and_reprs_as_text():
    res = _fit(_series(), harmonics=0)
    assert isinstance(res, ITSResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.dispersion = 2.0  # type: ignore[misc]
    text = repr(res)
    assert "level_change" in text and f"family={res.spec.family}" in text


def test_summary_frame_and_conf_int_agree():
    res = _fit(_series(), harmonics=0)
    sf = res.summary_frame()
    ci = res.conf_int()
    assert_allclose(sf["ci_low"], ci["lower"])
    assert_allclose(sf["std_err"], res.bse)
    assert_allclose(res.conf_int().to_numpy(), res.model_result.conf_int().to_numpy())
    assert_allclose(sf["p_value"], res.model_result.pvalues)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "nope"}, "outcome='nope' is not a column"),
        ({"family": "binomial"}, "family='binomial' is not supported; allowed: auto"),
        ({"cov_type": "hc3"}, "cov_type='hc3' is not supported"),
        ({"phase_in": -1}, "phase_in=-1 must be a whole number"),
        ({"start": "January"}, "start='January' is not a month"),
        ({"start": "2022-01-15"}, "start='2022-01-15' is not a month"),
        ({"start": 25}, "start=25 is not a month"),
        ({"harmonics": 7}, "harmonics=7 must be a whole number from 0 to 6"),
        ({"family": "gaussian"}, "exposure is an offset for log-link families"),
    ],
)
def test_bad_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _fit(_series(), **kwargs)


def test_bad_data_says_what_is_wrong():
    df = _series()
    neg = df.assign(count=df["count"] - 1000)
    with pytest.raises(ValueError, match="must be >= 0"):
        _fit(neg)
    zero = df.assign(occupied_bed_days=0.0)
    with pytest.raises(ValueError, match="must be > 0 where 'count' is recorded"):
        _fit(zero)
    text = df.assign(count=df["count"].astype(str))
    with pytest.raises(ValueError, match="outcome column 'count' must be numeric"):
        _fit(text)
    twice = pd.concat([df, df])
    with pytest.raises(ValueError, match="repeat a value of 'month' within a series; pass unit="):
        _fit(twice)
    with pytest.raises(ValueError, match="must hold only 0"):
        _fit(df.assign(z=2), group="z")
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        fit_its(df.to_dict(), outcome="count", time="month", start="2022-01")


def test_too_few_points_or_all_zero_is_not_estimable():
    df = _series(n_months=26, start_index=24)
    with pytest.raises(NotEstimableError, match="24 pre-intervention and 2 post-intervention"):
        _fit(df, start=df.loc[df.h == 0, "month"].item())
    zeros = _series().assign(count=0)
    with pytest.raises(NotEstimableError, match="zero in every period"):
        _fit(zeros)
    assert issubclass(NotEstimableError, ValueError)


def test_spec_is_serialisable():
    spec = _fit(_series(), harmonics=2).spec.as_dict()
    assert spec["formula"].endswith("offset(log(occupied_bed_days))")
    assert spec["terms"][:3] == ["intercept", "pre_trend", "level_change"]
    assert spec["start"] == "2022-01"


@pytest.mark.simulation
def test_recovers_known_effects_on_large_counts():
    df = _series(
        seed=12,
        bed_days=200000.0,
        level_rr=0.7,
        slope_rr=0.98,
        pre_trend_rr=1.01,
        seasonal_amplitude=0.2,
    )
    res = _fit(df, harmonics=1)
    # within 4 standard errors (a 1-in-15,000 miss for a correct estimator)
    for name, true in {"level_change": 0.7, "slope_change": 0.98, "pre_trend": 1.01}.items():
        z = (res.params[name] - np.log(true)) / res.bse[name]
        assert abs(z) < 4, (name, np.exp(res.params[name]), z)
    assert res.bse["level_change"] < 0.02  # the 4-SE check has teeth


@pytest.mark.slow
@pytest.mark.simulation
def test_interval_coverage_on_poisson_series():
    """Wald intervals of a correctly specified model cover the truth about 95% of the time.

    400 series: the Monte Carlo standard error of a 95% coverage is 1.1%, so 91-99% holds
    unless the intervals are wrong.
    """
    rng = np.random.default_rng(20261126)
    hits = {"level_change": 0, "slope_change": 0}
    truth = {"level_change": 0.8, "slope_change": 0.99}
    n_sim = 400
    for _ in range(n_sim):
        df = simulate_series(level_rr=0.8, slope_rr=0.99, rate_per_1000=20, bed_days=600, seed=rng)
        eff = _fit(df, family="poisson", harmonics=0).effects
        for name, true in truth.items():
            hits[name] += eff.loc[name, "ci_low"] <= true <= eff.loc[name, "ci_high"]
    for name, count in hits.items():
        assert 0.91 <= count / n_sim <= 0.99, (name, count / n_sim)


# --- the full engine: negative binomial, AR(1) errors, predictions, diagnostics -----------


def test_negative_binomial_estimates_alpha():
    df = simulate_series(
        seed=31, n_months=48, nb_alpha=0.2, rate_per_1000=50, bed_days=2000, level_rr=0.7
    )
    res = _fit(df, family="negbin", harmonics=0)
    assert res.spec.family == "negbin" and 0.08 < res.alpha < 0.4
    assert res.dispersion == 1.0 and 0.5 < res.pearson_dispersion < 1.6
    est = res.effects.loc["level_change"]
    assert est.ci_low < 0.7 < est.ci_high


def test_ar1_with_no_autocorrelation_is_the_model_based_covariance():
    from rrp_eval.models.its import _sandwich

    res = _fit(_series(seed=32, nb_alpha=0.05), family="quasipoisson", harmonics=0)
    X = res.design.to_numpy(float)
    y = res.frame["y"].to_numpy(float)
    mu = res.frame["fitted"].to_numpy(float)
    units = np.zeros(len(y), dtype=int)
    t = res.frame["time_value"].to_numpy(float)
    cov = _sandwich(X, y, mu, "quasipoisson", "log", res.dispersion, None, units, t, rho=0.0)
    assert_allclose(cov, res.cov_params.to_numpy(), rtol=1e-6, atol=1e-10)


def test_ar1_widens_intervals_for_autocorrelated_series():
    df = simulate_series(
        seed=2, n_months=48, rate_per_1000=200, bed_days=2000, ar1_rho=0.7, ar1_sd=0.25
    )
    ar1 = _fit(df, family="quasipoisson", cov_type="ar1", harmonics=0)
    plain = _fit(df, family="quasipoisson", harmonics=0)
    assert ar1.rho > 0.3
    assert ar1.bse["level_change"] > 1.2 * plain.bse["level_change"]
    assert ar1.spec.inference == "t" and "AR(1)" in ar1.spec.hac_correction
    assert_allclose(ar1.params, plain.params)


def test_predictions_and_counterfactual():
    res = _fit(_series(seed=34), harmonics=0)
    pred = res.predictions()
    assert_allclose(pred["fitted"], res.frame["fitted"], rtol=1e-10)
    pre = pred["h"] < 0
    assert_allclose(pred.loc[pre, "counterfactual"], pred.loc[pre, "fitted"], rtol=1e-10)
    assert (pred["fitted_low"] < pred["fitted"]).all() and (
        pred["fitted"] < pred["fitted_high"]
    ).all()
    post = ~pre
    ratio = pred.loc[post, "fitted"] / pred.loc[post, "counterfactual"]
    assert_allclose(
        ratio,
        np.exp(res.params["level_change"] + res.params["slope_change"] * pred.loc[post, "h"]),
        rtol=1e-10,
    )


def test_events_averted_by_the_delta_method():
    res = _fit(_series(seed=35, level_rr=0.6), harmonics=0)
    averted = res.events_averted()
    pred = res.predictions()
    post = pred["h"] >= 0
    assert averted.estimate == pytest.approx(
        (pred.loc[post, "counterfactual"] - pred.loc[post, "fitted"]).sum()
    )
    # the analytic gradient against a numerical one
    beta, cov = res.params.to_numpy(), res.cov_params.to_numpy()
    X = res.design.to_numpy(float)[post.to_numpy()]
    Xc = res._counterfactual_design()[post.to_numpy()]
    off = res.offset[post.to_numpy()]

    def total(b):
        return np.exp(Xc @ b + off).sum() - np.exp(X @ b + off).sum()

    eps = 1e-6
    grad = np.array(
        [(total(beta + eps * e) - total(beta - eps * e)) / (2 * eps) for e in np.eye(len(beta))]
    )
    assert averted.std_err == pytest.approx(np.sqrt(grad @ cov @ grad), rel=1e-5)
    assert averted.ci_low < averted.estimate < averted.ci_high and averted.estimate > 0


def test_diagnostics():
    from statsmodels.stats.stattools import durbin_watson

    res = _fit(_series(seed=36), harmonics=0)
    d = res.diagnostics()
    assert d["durbin_watson"] == pytest.approx(durbin_watson(res.frame["pearson_resid"]))
    assert 0 <= d["breusch_godfrey_p"] <= 1 and 0 <= d["ljung_box_p"] <= 1
    assert len(d["acf"]) == 6 and d["lags"] == 9
    many = _fit(_stacked(seed=38).assign(z=1), unit="unit", harmonics=0)
    assert np.isnan(many.diagnostics()["ljung_box_p"])


def test_negbin_refuses_newey_west_with_a_reason():
    with pytest.raises(ValueError, match="cov_type='hac' is not available for family='negbin'"):
        _fit(_series(), family="negbin", cov_type="hac")
