"""The demonstration programme: deterministic, realistic, valid, and true to its truth.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rrp_eval.data.load import load_raw
from rrp_eval.data.synthetic import demo_data_path, demo_programme, write_demo_programme
from rrp_eval.data.validate import validate_programme
from rrp_eval.models.its import fit_its
from rrp_eval.schema import BALANCING_MEASURES, STANDARD_MEASURES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = write_demo_programme(tmp_path_factory.mktemp("demo"))
    data, report = validate_programme(load_raw(folder))
    truth = json.loads((folder / "truth.json").read_text())
    return folder, data, report, truth


def test_regenerates_byte_identically_from_its_seed(tmp_path, demo):
    again = write_demo_programme(tmp_path / "again")
    for name in ("wards.csv", "ward_month.csv", "events.csv", "truth.json"):
        assert (again / name).read_bytes() == (demo[0] / name).read_bytes(), name
    other = write_demo_programme(tmp_path / "other", seed=7)
    assert (other / "ward_month.csv").read_bytes() != (demo[0] / "ward_month.csv").read_bytes()


def test_validates_without_errors_and_shows_its_quirks(demo):
    _, data, report, _ = demo
    assert report.ok, [str(p) for p in report.errors]
    rules = {p.rule for p in report.warnings}
    assert "gap" in rules  # the missing month is left for the data-quality report to find
    assert "late-onset" not in rules  # explained by the reporting_onset event
    assert set(data.events["type"]) >= {"reporting_onset", "reconfiguration", "system_change"}


def test_size_and_design(demo):
    _, data, _, truth = demo
    wards, wm = data.wards, data.ward_month
    assert len(data.trusts) >= 12 and len(wards) >= 60
    assert wm["month"].nunique() == 48
    assert wards["ward_type"].nunique() >= 8 and wards["region"].nunique() >= 5
    assert wards["cohort"].dropna().nunique() == 3
    assert wards["start_month"].isna().sum() >= 5  # comparison wards that never join
    starts = wards.dropna(subset=["start_month"]).groupby("trust_code")["start_month"].nunique()
    assert (starts > 1).any()  # a trust whose wards join in different months
    assert set(STANDARD_MEASURES) <= set(data.measures)
    assert set(data.measures) & set(BALANCING_MEASURES)
    by_type = wm.merge(wards[["trust_code", "ward_id", "ward_type"]])
    rate = by_type.groupby("ward_type").apply(
        lambda g: g["physical_restraint"].sum() / g["occupied_bed_days"].sum() * 1000,
        include_groups=False,
    )
    assert rate["ld_autism"] > rate["adult_acute"] > rate["perinatal"]
    x05 = wm[wm["trust_code"] == "X05"]
    assert x05["mechanical_restraint"].isna().all()  # a trust that does not record a measure
    roles = {t["role"] for t in truth["trusts"].values()}
    assert roles == {"reduction", "no_change", "worsens"}


def test_over_dispersed_and_seasonal(demo):
    _, data, _, _ = demo
    wm = data.ward_month
    one = wm[(wm.trust_code == "X01") & (wm.ward_id == "W1")]
    counts = one["physical_restraint"]
    assert counts.var() > 1.5 * counts.mean()


def test_truth_json_is_complete_and_consistent(demo):
    _, data, _, truth = demo
    assert set(truth["trusts"]) == set(data.trusts)
    for t in truth["trusts"].values():
        assert set(t["measures"]) == set(data.measures) | {"restrictive_practice"}
        assert t["measures"]["seclusion"] == {"level_rr": 1.0, "slope_rr": 1.0}  # unaffected
    assert truth["trusts"]["X06"]["measures"]["physical_restraint"]["level_rr"] == 1.0
    assert truth["trusts"]["X11"]["measures"]["physical_restraint"]["level_rr"] == 1.2
    prog = truth["programme"]["realised_all_trusts"]
    logs = [
        np.log(t["measures"]["physical_restraint"]["level_rr"]) for t in truth["trusts"].values()
    ]
    assert prog["log_level_mean"] == pytest.approx(np.mean(logs), abs=1e-5)
    assert prog["log_level_sd"] == pytest.approx(np.std(logs, ddof=1), abs=1e-5)


def _summed(data, trust):
    wards = data.wards[(data.wards.trust_code == trust) & data.wards.start_month.notna()]
    rows = data.ward_month.merge(wards[["trust_code", "ward_id"]])
    series = rows.groupby("month")[["physical_restraint", "occupied_bed_days"]].sum()
    return series.reset_index(), wards["start_month"].iloc[0]


@pytest.mark.simulation
def test_the_stated_effects_are_in_the_data(demo):
    """ITS on each trust's summed wards recovers truth.json's level effects."""
    _, data, _, truth = demo
    covered, errors = 0, []
    trusts = [t for t, v in truth["trusts"].items() if not v["staggered"]]
    for trust in trusts:
        series, start = _summed(data, trust)
        res = fit_its(
            series,
            outcome="physical_restraint",
            time="month",
            start=start,
            exposure="occupied_bed_days",
        )
        est = res.effects.loc["level_change"]
        true = truth["trusts"][trust]["measures"]["physical_restraint"]["level_rr"]
        covered += est.ci_low <= true <= est.ci_high
        errors.append(np.log(est.estimate) - np.log(true))
    assert covered >= len(trusts) - 2
    assert abs(np.mean(errors)) < 0.1


def test_demo_data_path_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RRP_EVAL_CACHE", str(tmp_path))
    path = demo_data_path()
    assert path.parent == tmp_path and (path / "ward_month.csv").is_file()
    stamp = (path / "ward_month.csv").stat().st_mtime_ns
    assert demo_data_path() == path
    assert (path / "ward_month.csv").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_demo_tables_follow_the_contract():
    demo = demo_programme()
    assert list(demo.wards.columns) == [
        "trust_code",
        "trust_name",
        "ward_id",
        "ward_name",
        "ward_type",
        "start_month",
        "cohort",
        "region",
        "beds",
    ]
    assert demo.ward_month["month"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert isinstance(demo.ward_month, pd.DataFrame)
