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


def _two_wards(tmp_path, onset: int | None, events: str | None = None):
    """Two wards sharing a start (2022-07), rates 2 and 20 per 1,000 bed days, no programme
    effect, no trend; counts are the expected counts. W2 reports from month ``onset``."""
    wards = (
        "trust_code,trust_name,ward_id,ward_name,ward_type,start_month,cohort,region,beds\n"
        "RXC,Trust C,W1,Ash,adult_acute,2022-07,Wave 1,London,20\n"
        "RXC,Trust C,W2,Beech,picu,2022-07,Wave 1,London,20\n"
    )
    rows = ["trust_code,ward_id,month,occupied_bed_days,physical_restraint"]
    for k in range(36):
        month = f"{2021 + k // 12}-{k % 12 + 1:02d}"
        rows.append(f"RXC,W1,{month},5000,10")
        if onset is None or k >= onset:
            rows.append(f"RXC,W2,{month},5000,100")
    folder = write_programme(
        tmp_path, wards=wards, ward_month="\n".join(rows) + "\n", events=events
    )
    return load_programme(folder)


def test_a_ward_that_enters_the_series_late_makes_the_design_stacked(tmp_path):
    from rrp_eval.evaluate.trust import fit_trust_its
    from rrp_eval.models.its import fit_its
    from rrp_eval.params import ProgrammeParams

    params = ProgrammeParams().for_trust("RXC")
    d = _two_wards(tmp_path / "late", onset=6)
    design = trust_design(d, "RXC")
    assert design.kind == "stacked" and design.composition == "W2 not reported in every month"
    assert "changing size cannot look like a change in the rate" in design.description
    m = fit_trust_its(d, "RXC", "physical_restraint", params)
    assert m.status == "ok"
    assert m.row()["level_rr"] == pytest.approx(1.0, abs=0.01)  # there is no effect
    # the summed series would have seen a step where W2 began reporting
    summed = fit_its(
        trust_series(d, "RXC", "physical_restraint"),
        outcome="count",
        time="month",
        exposure="occupied_bed_days",
        start=pd.Timestamp("2022-07-01"),
        family="poisson",
        harmonics=0,
    )
    assert abs(summed.effect("level_change").estimate - 1) > 0.1
    balanced = _two_wards(tmp_path / "balanced", onset=None)
    assert trust_design(balanced, "RXC").kind == "summed"
    resized = _two_wards(
        tmp_path / "resized",
        onset=None,
        events="trust_code,ward_id,month,type,note\nRXC,W2,2021-09,reconfiguration,Fewer beds\n",
    )
    design = trust_design(resized, "RXC")
    assert design.kind == "stacked" and design.composition == "W2: reconfiguration Sep 2021"
