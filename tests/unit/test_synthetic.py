"""Unit tests for rrp_eval.data.synthetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rrp_eval.data.synthetic import simulate_series


def test_same_seed_same_series_other_seed_other_series():
    a = simulate_series(seed=5, nb_alpha=0.1, ar1_rho=0.5, ar1_sd=0.2)
    b = simulate_series(seed=5, nb_alpha=0.1, ar1_rho=0.5, ar1_sd=0.2)
    c = simulate_series(seed=6, nb_alpha=0.1, ar1_rho=0.5, ar1_sd=0.2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["count"].equals(c["count"])


def test_shape_and_timing():
    df = simulate_series(n_months=36, start_index=12, first_month="2021-04")
    assert list(df.columns) == ["month", "h", "occupied_bed_days", "count", "expected"]
    assert df["month"].iloc[0] == pd.Timestamp("2021-04-01")
    assert df.loc[df.h == 0, "month"].item() == pd.Timestamp("2022-04-01")
    assert (df["occupied_bed_days"] == df["occupied_bed_days"].round()).all()


def test_expected_counts_follow_the_stated_effects():
    df = simulate_series(level_rr=0.5, slope_rr=0.9, rate_per_1000=10, bed_days=1000)
    rate = df["expected"] / df["occupied_bed_days"] * 1000
    assert rate[df.h < 0].round(10).eq(10).all()
    post = rate[df.h >= 0].to_numpy()
    np.testing.assert_allclose(post, 10 * 0.5 * 0.9 ** np.arange(len(post)))


def test_negative_binomial_variance_and_ar1_correlation():
    rng = np.random.default_rng(1)
    counts = np.concatenate(
        [
            simulate_series(level_rr=1.0, rate_per_1000=100, bed_days=1000, nb_alpha=0.2, seed=rng)[
                "count"
            ].to_numpy()
            for _ in range(200)
        ]
    )
    # mean about 100 (bed days within +/-10%), Var = mu + 0.2 mu^2 is about 2,100
    assert 1700 < counts.var() < 2600
    lat = simulate_series(
        level_rr=1.0,
        rate_per_1000=1000,
        bed_days=100000,
        ar1_rho=0.8,
        ar1_sd=0.3,
        n_months=2000,
        start_index=1000,
        seed=2,
    )
    log_rate = np.log(lat["expected"] / lat["occupied_bed_days"])
    r1 = np.corrcoef(log_rate[:-1], log_rate[1:])[0, 1]
    assert 0.7 < r1 < 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_index": 0}, "start_index=0"),
        ({"ar1_rho": 1.0}, "ar1_rho=1.0"),
        ({"nb_alpha": -1}, "must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_series(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("n_trusts", [3, 16])
def test_a_scaled_programme_of_any_size_is_valid_data(n_trusts, tmp_path):
    """The scale benchmark's programmes load without errors, even one too small to carry an
    event (an events.csv with a header and no rows is refused, so none is written)."""
    from rrp_eval.data.synthetic import scaled_programme
    from rrp_eval.data.validate import load_programme

    folder = scaled_programme(n_trusts).write(tmp_path / "data")
    programme = load_programme(folder)
    assert len(programme.trusts) == n_trusts
    assert programme.trusts[0] == "S01X01" and (n_trusts < 15 or "S02X01" in programme.trusts)
    per_trust = programme.wards.groupby("trust_code")["ward_id"].nunique()
    assert per_trust.between(12, 18).all()
