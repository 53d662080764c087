"""Trust series and ward panels (SPEC §2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from datafiles import WARD_MONTH, WARDS, replace_line, write_programme

from rrp_eval.data.validate import load_programme
from rrp_eval.prepare import (
    rate_per_1000,
    trust_design,
    trust_series,
    ward_series,
    with_derived_measures,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return with_derived_measures(load_programme(write_programme(tmp_path_factory.mktemp("d"))))


def test_rates_per_1000_bed_days():
    assert rate_per_1000([5, 1, 2], [1000, 0, np.nan]).tolist()[0] == 5.0
    assert np.isnan(rate_per_1000([1], [0])[0])


def test_restrictive_practice_is_the_sum_of_its_parts_and_blank_if_any_is(tmp_path):
    wm = replace_line(WARD_MONTH, 2, "RXA,W1,2021-01,551,11,1,,1")
    d = with_derived_measures(load_programme(write_programme(tmp_path, ward_month=wm)))
    rows = d.ward_month
    assert "restrictive_practice" in d.measures
    first = rows.iloc[0]
    assert np.isnan(first["restrictive_practice"])
    second = rows.iloc[1]
    assert second["restrictive_practice"] == (
        second["physical_restraint"] + second["seclusion"] + second["rapid_tranquillisation"]
    )


def test_the_treated_series_sums_participating_wards_only(data):
    s = trust_series(data, "RXA", "physical_restraint")
    wm = data.ward_month
    w1 = wm[(wm.trust_code == "RXA") & (wm.ward_id == "W1")]
    assert s["count"].tolist() == w1["physical_restraint"].tolist()  # W2 is a comparison ward
    both = wm[wm.trust_code == "RXA"].groupby("month")["occupied_bed_days"].sum()
    assert np.allclose(s["bed_day_share"], w1["occupied_bed_days"].to_numpy() / both.to_numpy())
    everything = trust_series(data, "RXA", "physical_restraint", participating_only=False)
    assert (everything["n_wards"] == 2).all()


def test_wards_that_did_not_record_a_month_are_left_out_of_count_and_denominator(tmp_path):
    wards = WARDS.replace("RXA,Trust A,W2,Beech,picu,,", "RXA,Trust A,W2,Beech,picu,2021-07,")
    wm = replace_line(WARD_MONTH, 14, "RXA,W2,2021-01,251,,0,1,1")
    d = load_programme(write_programme(tmp_path, wards=wards, ward_month=wm))
    s = trust_series(d, "RXA", "physical_restraint").set_index("month")
    jan = s.loc[pd.Timestamp("2021-01-01")]
    assert jan["n_wards"] == 1 and jan["occupied_bed_days"] == 551
    assert s.loc[pd.Timestamp("2021-02-01"), "n_wards"] == 2


def test_design(tmp_path, data):
    assert trust_design(data, "RXA").kind == "summed"
    wards = WARDS.replace("RXA,Trust A,W2,Beech,picu,,", "RXA,Trust A,W2,Beech,picu,2021-09,")
    d = load_programme(write_programme(tmp_path, wards=wards))
    design = trust_design(d, "RXA")
    assert design.kind == "stacked" and "different months" in design.description
    no_start = WARDS.replace("2021-07,Wave 1,Midlands", ",,Midlands")
    d = load_programme(write_programme(tmp_path / "n", wards=no_start))
    assert trust_design(d, "RXB").kind == "none"
    assert trust_design(d, "RXA", exclude=("W1",)).kind == "none"


def test_ward_series_columns(data):
    w = ward_series(data, "RXA", "seclusion", participating_only=False)
    assert list(w.columns) == [
        "ward_id",
        "ward_type",
        "start_month",
        "month",
        "count",
        "occupied_bed_days",
        "rate_per_1000_obd",
    ]
    assert set(w.ward_id) == {"W1", "W2"}
