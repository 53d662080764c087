"""MHSDS import: both published layouts, the headerless extracts, statuses and events."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rrp_eval.cli import main
from rrp_eval.data.mhsds import MHSDSError, convert_mhsds, parse_month, provider_code
from rrp_eval.data.validate import load_programme

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mhsds"


@pytest.fixture(scope="module")
def sample():
    return convert_mhsds([FIXTURES])


def _cell(result, trust: str, month: str, column: str):
    wm = result.ward_month.set_index(["trust_code", "month"])
    return wm.loc[(trust, month), column]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2022-02-01", (2022, 2)),
        ("01/02/2022", (2022, 2)),
        ("2022-02", (2022, 2)),
        ("2022-02-02", None),
        ("02/01/2022", None),
        ("2/1/2022", None),
        ("2022-13-01", None),
    ],
)
def test_months_are_read_with_one_explicit_pattern_each(text, expected):
    got = parse_month(text)
    assert (None if got is None else (got.year, got.month)) == expected


def test_both_layouts_map_to_the_spec_measures(sample):
    # 2022-06, primary layout: physical = prone 10 + standing 35 + supine 20
    assert _cell(sample, "RX1", "2022-06", "physical_restraint") == 65
    assert _cell(sample, "RX1", "2022-06", "prone_restraint") == 10
    assert _cell(sample, "RX1", "2022-06", "seclusion") == 15
    assert _cell(sample, "RX1", "2022-06", "rapid_tranquillisation") == 40
    assert _cell(sample, "RX1", "2022-06", "people_restrained") == 45
    assert _cell(sample, "RX1", "2022-06", "restrictive_interventions") == 120
    assert _cell(sample, "RX1", "2022-06", "occupied_bed_days") == 9875
    assert _cell(sample, "RX1", "2022-06", "physical_restraint_status") == "rounded5"
    # 2024-05, LEVEL_ONE/METRIC layout: type 15 (oral chemical restraint) is not a measure
    assert _cell(sample, "RX1", "2024-05", "physical_restraint") == 30
    assert _cell(sample, "RX1", "2024-05", "prone_restraint") == 5
    assert _cell(sample, "RX1", "2024-05", "rapid_tranquillisation") == 0
    assert _cell(sample, "RX1", "2024-05", "people_restrained") == 50


def test_suppression_and_inferred_zeros(sample):
    # a suppressed part makes the sum blank
    assert math.isnan(_cell(sample, "RY2", "2022-06", "physical_restraint"))
    assert _cell(sample, "RY2", "2022-06", "physical_restraint_status") == "suppressed"
    assert _cell(sample, "RX1", "2024-05", "segregation_status") == "suppressed"
    assert math.isnan(_cell(sample, "RY2", "2022-06", "people_restrained"))
    # the provider reported that month (bed days) but published no restraint row: zero, flagged
    assert _cell(sample, "RY2", "2022-07", "people_restrained") == 0
    assert _cell(sample, "RY2", "2022-07", "people_restrained_status") == "inferred_zero"
    # no row at all that month: blank, not zero
    assert math.isnan(_cell(sample, "RZ3", "2022-06", "people_restrained"))
    assert _cell(sample, "RZ3", "2022-06", "people_restrained_status") == ""


def test_providers_events_and_unknown(sample):
    assert list(sample.wards["trust_code"]) == ["RX1", "RY2", "RZ3"]
    assert set(sample.wards["ward_id"]) == {"ALL"} and set(sample.wards["ward_type"]) == {"all"}
    assert (sample.wards["start_month"] == "").all()
    assert sample.wards.set_index("trust_code").loc["RX1", "trust_name"] == (
        "North Wolds Mental Health NHS Trust"
    )
    assert any("UNKNOWN" in w for w in sample.warnings)
    ev = {tuple(r) for r in sample.events[["trust_code", "month", "type"]].to_numpy()}
    assert ("RX1", "2022-07", "method_break") in ev and ("RX1", "2024-04", "method_break") in ev
    assert ("RY2", "2022-07", "method_break") in ev
    assert ("RZ3", "2022-07", "reporting_onset") in ev
    assert not any(t == "RZ3" and k == "method_break" for t, _, k in ev)


def test_converted_sample_validates(sample, tmp_path):
    data = load_programme(sample.write(tmp_path / "data"))
    assert list(data.trusts) == ["RX1", "RY2", "RZ3"]
    assert "people_restrained" in data.measures


def test_ods_map_gives_codes_and_regions(tmp_path):
    ods = tmp_path / "ods.csv"
    ods.write_text(
        "name,code,region\nNorth Wolds Mental Health NHS Trust,RXA,North East\n", encoding="utf-8"
    )
    result = convert_mhsds([FIXTURES / "primary_2022-06.csv"], ods)
    wards = result.wards.set_index("trust_code")
    assert "RXA" in wards.index and wards.loc["RXA", "region"] == "North East"
    assert "RY2" in wards.index


def test_names_without_codes_get_stable_codes():
    a = provider_code("NORTH WOLDS  MENTAL HEALTH NHS TRUST")
    assert a == provider_code("north wolds mental health nhs trust")
    assert a.startswith("NWMHNT_") and a != provider_code("SOUTH FENS CARE NHS TRUST")


def test_unreadable_values_name_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("2022-02-01,SOME TRUST,MHS76,12a\n2022-02-15,SOME TRUST,MHS76,5\n")
    with pytest.raises(MHSDSError) as err:
        convert_mhsds([bad])
    assert f"{bad}:1:4: '12a' is not a count" in err.value.problems[0]
    assert f"{bad}:2:1: '2022-02-15' is not a month" in err.value.problems[1]


def test_cli_writes_nothing_on_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n")
    out = tmp_path / "out"
    assert main(["mhsds", str(bad), "--out", str(out)]) == 2
    assert not out.exists()
    assert "expected an MHSDS header or 4 columns" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_extracts_convert_and_validate(reference, tmp_path):
    folder = reference / "mhsds"  # folders are searched for .csv files at any depth
    out = tmp_path / "mhsds"
    assert main(["mhsds", str(folder), "--out", str(out)]) == 0
    wm = pd.read_csv(out / "ward_month.csv", dtype={"month": str})
    assert wm["month"].nunique() == 12
    assert wm["month"].min() == "2021-09" and wm["month"].max() == "2022-08"
    assert (wm["people_restrained_status"] == "suppressed").sum() == 35
    shown = wm["people_restrained"].dropna()
    assert (shown % 5 == 0).all()
    data = load_programme(out)
    assert len(data.trusts) >= 42
    assert data.report.ok
