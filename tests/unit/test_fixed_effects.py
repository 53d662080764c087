"""The sparse fixed-effects Poisson fit against a GLM with a dummy per ward and month.

The reference is statsmodels' GLM on the dense design the suite used before issue 20: the
same observations (separated ones out), the same columns, the cluster sandwich with its
small-sample correction. The sparse fit must give the same coefficients and covariances.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats

import rrp_eval as rrp
from rrp_eval.models.controlled import (
    _cohort_columns,
    _drop_separated,
    _fit_poisson_fe,
    etwfe_poisson,
    event_time_panel,
    fit_event_study,
    twfe_naive,
)


def _dense_reference(panel: pd.DataFrame, treat: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """statsmodels' GLM with ward and month dummies: treatment coefficients and covariance."""
    y = panel["count"].to_numpy(float)
    keys = {"ward": pd.factorize(panel["ward"])[0], "month": pd.factorize(panel["month"])[0]}
    keep, _ = _drop_separated(y, keys)
    wards = pd.get_dummies(panel["ward"], prefix="ward", dtype=float)
    months = pd.get_dummies(panel["month"].dt.strftime("%Y-%m"), prefix="m", dtype=float)
    X = pd.concat([treat.reset_index(drop=True), wards, months], axis=1)
    X.index = panel.index
    X = X.loc[keep, X.loc[keep].abs().sum() > 0]
    X = X.drop(columns=next(c for c in X.columns if c.startswith("m_")))
    groups = pd.factorize(panel.loc[keep, "trust_code"])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GLM(
            y[keep],
            X,
            family=sm.families.Poisson(),
            offset=np.log(panel.loc[keep, "occupied_bed_days"].to_numpy(float)),
        ).fit(cov_type="cluster", cov_kwds={"groups": groups}, maxiter=200, tol=1e-12)
    cols = [c for c in treat.columns if c in X.columns]
    return res.params[cols], res.cov_params().loc[cols, cols]


def _sparse(panel: pd.DataFrame, treat: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    fit = _fit_poisson_fe(panel, treat)
    idx = [fit.columns.index(c) for c in fit.treat_cols]
    L = np.zeros((len(idx), len(fit.columns)))
    L[np.arange(len(idx)), idx] = 1.0
    cov = pd.DataFrame(fit.cov_of(L), index=fit.treat_cols, columns=fit.treat_cols)
    return pd.Series(fit.params[idx], index=fit.treat_cols), cov


def _random_panel(seed: int = 3, n_trusts: int = 6, months: int = 30) -> pd.DataFrame:
    """An unbalanced ward panel: staggered cohorts, comparison wards, over-dispersed counts, a
    ward that never has an event (separated: it leaves the fit) and ward-months missing."""
    rng = np.random.default_rng(seed)
    month = pd.date_range("2020-01-01", periods=months, freq="MS")
    starts = [month[8], month[14], month[20], None]
    rows = []
    for t in range(n_trusts):
        for w in range(4):
            cohort = starts[(t + w) % len(starts)]
            base = rng.normal(-3.5, 0.4)
            for j, m in enumerate(month):
                if rng.random() < 0.08:
                    continue
                e = (j - list(month).index(cohort)) if cohort is not None else math.nan
                log_mu = base + 0.1 * math.sin(j) + (-0.2 - 0.01 * e if e >= 0 else 0.0)
                bd = float(rng.integers(300, 800))
                mu = bd * math.exp(log_mu) * rng.gamma(4, 1 / 4)
                count = 0.0 if (t, w) == (0, 3) else float(rng.poisson(mu))
                rows.append((f"T{t}", f"W{w}", cohort, m, count, bd))
    d = pd.DataFrame(
        rows, columns=["trust_code", "ward_id", "start_month", "month", "y", "occupied_bed_days"]
    )
    wards = d[["trust_code", "ward_id", "start_month"]].drop_duplicates(["trust_code", "ward_id"])
    return event_time_panel(d.drop(columns="start_month"), wards, "y")


@pytest.mark.parametrize("seed", [3, 11])
def test_sparse_fit_equals_the_dense_glm(seed):
    panel = _random_panel(seed)
    treat, _ = _cohort_columns(panel)
    got_b, got_v = _sparse(panel, treat)
    want_b, want_v = _dense_reference(panel, treat)
    assert list(got_b.index) == list(want_b.index)
    assert_allclose(got_b, want_b, rtol=1e-7, atol=1e-9)
    assert_allclose(got_v, want_v, rtol=1e-6, atol=1e-12)


def test_the_separated_ward_leaves_the_fit_and_counts_in_dropped_observations():
    panel = _random_panel(3)
    res = etwfe_poisson(panel, "y", event_study=False)
    assert res.dropped_observations == int((panel["ward"] == "T0/W3").sum())


def test_naive_twfe_equals_the_dense_glm():
    panel = _random_panel(5)
    post = (panel["event_time"].fillna(-1) >= 0).astype(float)
    want_b, want_v = _dense_reference(panel, pd.DataFrame({"post": post}, index=panel.index))
    got = twfe_naive(panel)
    assert math.log(got["estimate"]) == pytest.approx(want_b["post"], rel=1e-8)
    assert got["log_se"] == pytest.approx(math.sqrt(want_v.loc["post", "post"]), rel=1e-6)


def test_an_event_time_no_comparison_identifies_is_left_blank():
    """In a calendar month where no ward outside the cohort had an event, that cohort's cell is
    not identified (its coefficient runs to infinity with the month's effect): its ratio must
    be blank, not a number the solver happened to stop at."""
    panel = _random_panel(3)
    cohort = panel["cohort"].dropna().min()
    month = cohort + pd.DateOffset(months=2)
    others = (panel["month"] == month) & (panel["cohort"] != cohort)
    mine = (panel["month"] == month) & (panel["cohort"] == cohort)
    panel.loc[others, "count"] = 0.0
    panel.loc[mine, "count"] = panel.loc[mine, "count"] + 1.0
    study, placebo = fit_event_study(panel, (-6, 6))
    at2 = panel[panel["event_time"] == 2]
    assert at2["cohort"].nunique() > 1
    # event time 2: the first cohort's cell is not identified, so only the others count
    row = study.set_index("event_time").loc[2]
    assert row["wards"] == at2.loc[at2["cohort"] != cohort, "ward"].nunique()
    assert np.isfinite(study[["estimate", "ci_low", "ci_high"]].to_numpy()).all()
    assert np.isfinite(placebo["estimate"])
    # with no other cohort at that event time, the month is blank
    only = panel[(panel["cohort"] == cohort) | panel["cohort"].isna()].reset_index(drop=True)
    study, _ = fit_event_study(only, (-6, 6))
    row = study.set_index("event_time").loc[2]
    assert math.isnan(row["estimate"]) and math.isnan(row["ci_low"])
    assert np.isfinite(study.set_index("event_time").loc[[0, 1, 3], "estimate"]).all()


@pytest.mark.slow
def test_demo_controlled_estimates_equal_the_dense_glm():
    """Today's demo (restrictive practice, the pre-specified phase-in) against the dense GLM."""
    prog = rrp.load_programme("")
    p = prog.params
    panel = event_time_panel(prog.ward_month, prog.wards, "restrictive_practice")
    res = etwfe_poisson(
        panel,
        "restrictive_practice",
        p.horizon_months,
        event_study=False,
        phase_in=p.phase_in_months,
    )
    from rrp_eval.models.controlled import without_phase_in

    fitted = without_phase_in(panel, p.phase_in_months)
    treat, _ = _cohort_columns(fitted, p.phase_in_months)
    want_b, want_v = _dense_reference(fitted, treat)
    cohorts = res.cohort_effects.set_index("cohort")
    for tag, row in cohorts.iterrows():
        assert math.log(row["level_rr"]) == pytest.approx(want_b[f"level_{tag}"], rel=1e-7)
        assert math.log(row["slope_rr"]) == pytest.approx(want_b[f"slope_{tag}"], rel=1e-7)
    w = cohorts["wards"] / cohorts["wards"].sum()
    vec = pd.Series(0.0, index=want_b.index)
    for tag, share in w.items():
        vec[f"level_{tag}"] = share
    se = math.sqrt(vec @ want_v @ vec)
    assert res.effects["level_rr"]["log_se"] == pytest.approx(se, rel=1e-6)
    assert math.log(res.effects["level_rr"]["estimate"]) == pytest.approx(vec @ want_b, rel=1e-7)


def _gee_reference(wm: pd.DataFrame, wards: pd.DataFrame, measure: str, phase_in: int = 0):
    """statsmodels' GEE on the dense design (intercept, trend, level, slope, two harmonic
    pairs, a dummy per ward but the first), bias-reduced sandwich clustered by trust."""
    from rrp_eval.prepare import months_since

    part = wards[wards["start_month"].notna()][["trust_code", "ward_id", "start_month"]]
    d = wm.merge(part, on=["trust_code", "ward_id"])
    d = d[d[measure].notna() & (d["occupied_bed_days"] > 0)].copy()
    h = months_since(d["month"], d["start_month"])
    d, h = d[~h.between(0, phase_in - 1)], h[~h.between(0, phase_in - 1)]
    post = (h >= 0).astype(float)
    X = pd.DataFrame(
        {
            "intercept": 1.0,
            "t": months_since(d["month"], d["month"].min()).astype(float),
            "level_change": post,
            "slope_change": (h - phase_in).clip(lower=0).astype(float) * post,
        }
    )
    for j in (1, 2):
        X[f"sin{j}"] = np.sin(2 * np.pi * j * d["month"].dt.month / 12)
        X[f"cos{j}"] = np.cos(2 * np.pi * j * d["month"].dt.month / 12)
    key = d["trust_code"] + "/" + d["ward_id"]
    X = pd.concat([X, pd.get_dummies(key, drop_first=True, dtype=float)], axis=1)
    res = sm.GEE(
        d[measure].astype(float),
        X,
        groups=pd.factorize(d["trust_code"])[0],
        family=sm.families.Poisson(),
        offset=np.log(d["occupied_bed_days"].astype(float)),
        cov_struct=sm.cov_struct.Independence(),
    ).fit(cov_type="bias_reduced", maxiter=200, ctol=1e-10)
    cols = ["level_change", "slope_change"]
    return res.params[cols], res.cov_params().loc[cols, cols]


@pytest.mark.parametrize("phase_in", [0, 3])
def test_pooled_gee_equals_statsmodels_gee_on_the_dense_design(phase_in):
    from rrp_eval.models.meta import pooled_gee

    panel = _random_panel(7)
    wm = panel.rename(columns={"count": "y"})
    wm["ward_id"] = wm["ward"].str.split("/").str[1]
    wards = wm.groupby(["trust_code", "ward_id"], as_index=False)["cohort"].first()
    wards = wards.rename(columns={"cohort": "start_month"})
    wm = wm[wm["ward"] != "T0/W3"]  # the ward without events (dropped by one, not the other)
    want_b, want_v = _gee_reference(wm, wards, "y", phase_in)
    got = pooled_gee(wm, wards, "y", 12, phase_in=phase_in)
    assert got["cov_type"] == "bias_reduced"
    q = stats.t.ppf(0.975, got["n_trusts"] - 1)
    for effect, term in (("level_rr", "level_change"), ("slope_rr", "slope_change")):
        est, se = want_b[term], math.sqrt(want_v.loc[term, term])
        assert math.log(got[effect]["estimate"]) == pytest.approx(est, rel=1e-7, abs=1e-10)
        assert math.log(got[effect]["ci_high"]) == pytest.approx(est + q * se, rel=1e-6)
    h = 12 - phase_in
    vec = np.array([1.0, h])
    se = math.sqrt(vec @ want_v.to_numpy() @ vec)
    assert math.log(got["rr_h"]["ci_low"]) == pytest.approx(vec @ want_b - q * se, rel=1e-6)


def _ward_changes_loop(wm, wards, measure, baseline=(-12, -1), follow_up=(6, 17)):
    """The ward-by-ward definition (the loop the suite used before issue 20)."""
    from rrp_eval.prepare import months_since

    part = wards[wards["start_month"].notna()][["trust_code", "ward_id", "start_month"]]
    d = wm.merge(part, on=["trust_code", "ward_id"])
    d = d[d[measure].notna() & (d["occupied_bed_days"] > 0)]
    d = d.assign(h=months_since(d["month"], d["start_month"]))
    rows = []
    for (trust, ward), g in d.groupby(["trust_code", "ward_id"], sort=True):
        b, f = g[g.h.between(*baseline)], g[g.h.between(*follow_up)]
        if len(b) < 6 or len(f) < 6 or b[measure].sum() == 0:
            continue
        kb, bb = b[measure].sum(), b["occupied_bed_days"].sum()
        mu = kb / bb * b["occupied_bed_days"].to_numpy(float)
        phi = float(np.sum((b[measure].to_numpy(float) - mu) ** 2 / mu) / (len(b) - 1))
        rows.append(
            (
                trust,
                ward,
                f[measure].sum() / f["occupied_bed_days"].sum() / (kb / bb),
                max(1.0, phi),
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_ward_changes_equal_the_ward_by_ward_definition(seed):
    from rrp_eval.models.meta import ward_changes

    rng = np.random.default_rng(seed)
    months = pd.date_range("2020-01-01", periods=int(rng.integers(14, 40)), freq="MS")
    rows, wards = [], []
    for t in range(int(rng.integers(1, 5))):
        for w in range(int(rng.integers(1, 4))):
            start = None if rng.random() < 0.2 else months[int(rng.integers(0, len(months)))]
            wards.append((f"T{t}", f"W{w}", start))
            for m in months:
                if rng.random() < 0.1:
                    continue
                rows.append(
                    (f"T{t}", f"W{w}", m, float(rng.integers(0, 600)), float(rng.poisson(2)))
                )
    wm = pd.DataFrame(rows, columns=["trust_code", "ward_id", "month", "occupied_bed_days", "y"])
    wd = pd.DataFrame(wards, columns=["trust_code", "ward_id", "start_month"])
    got = ward_changes(wm, wd, "y")
    want = _ward_changes_loop(wm, wd, "y")
    assert len(got) == len(want)
    for row, (trust, ward, ratio, phi) in zip(got.itertuples(), want, strict=True):
        assert (row.trust_code, row.ward_id) == (trust, ward)
        assert row.ratio == pytest.approx(ratio, rel=1e-12)
        assert row.dispersion == pytest.approx(phi, rel=1e-12)


FUZZ_WARD_MONTH = """trust_code,ward_id,month,occupied_bed_days,physical_restraint
T0,W0,2020-01,515,1
T0,W0,2020-02,432,16
T0,W0,2020-03,548,12
T0,W0,2020-04,455,15
T0,W0,2020-05,483,18
T0,W0,2020-06,411,16
T0,W0,2020-07,371,9
T0,W0,2020-08,371,3
T0,W0,2020-09,616,16
T0,W0,2020-10,572,22
T0,W0,2020-11,608,9
T0,W0,2020-12,458,3
T0,W0,2021-01,337,10
T0,W0,2021-02,541,17
T0,W0,2021-03,351,11
T0,W0,2021-04,522,10
T0,W0,2021-05,612,13
T0,W0,2021-06,582,15
T0,W0,2021-07,526,27
T0,W0,2021-08,566,8
T0,W0,2021-09,331,17
T0,W0,2021-10,307,2
T0,W0,2021-11,504,22
T0,W0,2021-12,620,0
T1,W0,2020-01,470,7
T1,W0,2020-02,466,2
T1,W0,2020-03,397,7
T1,W0,2020-04,422,4
T1,W0,2020-05,578,14
T1,W0,2020-06,346,1
T1,W0,2020-07,463,16
T1,W0,2020-08,550,3
T1,W0,2020-09,454,17
T1,W0,2020-10,449,3
T1,W0,2020-11,580,10
T1,W0,2020-12,576,6
T1,W0,2021-01,608,17
T1,W0,2021-02,600,9
T1,W0,2021-03,527,2
T1,W0,2021-04,605,12
T1,W0,2021-05,462,7
T1,W0,2021-06,448,5
T1,W0,2021-07,396,5
T1,W0,2021-08,316,9
T1,W0,2021-09,433,15
T1,W0,2021-10,335,1
T1,W0,2021-11,366,14
T1,W0,2021-12,376,14
T2,W0,2020-01,341,1
T2,W0,2020-02,568,1
T2,W0,2020-03,567,0
T2,W0,2020-04,410,1
T2,W0,2020-05,596,1
T2,W0,2020-06,530,1
T2,W0,2020-07,482,0
T2,W0,2020-08,466,2
T2,W0,2020-09,359,1
T2,W0,2020-10,600,2
T2,W0,2020-11,471,0
T2,W0,2020-12,424,0
T2,W0,2021-01,438,0
T2,W0,2021-02,412,1
T2,W0,2021-03,387,1
T2,W0,2021-04,518,0
T2,W0,2021-05,351,0
T2,W0,2021-06,412,0
T2,W0,2021-07,593,2
T2,W0,2021-08,573,2
T2,W0,2021-09,337,0
T2,W0,2021-10,363,0
T2,W0,2021-11,610,2
T2,W0,2021-12,361,1
"""


def test_ward_changes_of_loaded_data_equal_the_ward_by_ward_definition(tmp_path):
    """The fuzz run's programme (three one-ward trusts joining a month apart), loaded as a run
    loads it (string dtypes). The first vectorised version joined on index levels that were
    also columns and failed on the MHSDS provider data and on a fuzz example
    (``test_run``'s MHSDS test and ``test_fuzz_run`` catch that case)."""
    from rrp_eval.data.validate import load_programme
    from rrp_eval.models.meta import ward_changes

    (tmp_path / "wards.csv").write_text(
        "trust_code,trust_name,ward_id,ward_type,start_month\nT0,Trust 0,W0,adult_acute,2021-01\n"
        "T1,Trust 1,W0,adult_acute,2021-02\nT2,Trust 2,W0,adult_acute,2021-03\n"
    )
    (tmp_path / "ward_month.csv").write_text(FUZZ_WARD_MONTH)
    prog = load_programme(tmp_path)
    got = ward_changes(prog.ward_month, prog.wards, "physical_restraint")
    want = _ward_changes_loop(prog.ward_month, prog.wards, "physical_restraint")
    assert [(r.trust_code, r.ward_id) for r in got.itertuples()] == [w[:2] for w in want]
    assert len(want) == 1
    np.testing.assert_allclose(got["ratio"], [w[2] for w in want], rtol=1e-12)
