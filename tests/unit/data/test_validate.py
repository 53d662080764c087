"""One test per validation rule, asserting the location and the message (issue 3, SPEC §1)."""

from __future__ import annotations

import pytest
from datafiles import EVENTS, WARD_MONTH, WARDS, replace_line, write_programme

from rrp_eval.data.load import load_raw
from rrp_eval.data.problems import DataValidationError
from rrp_eval.data.validate import load_programme, validate_programme
from rrp_eval.params import PlausibilityParams, ProgrammeParams

# line 2 of ward_month is RXA/W1 2021-01: 551 bed days, 11 restraints, 1 prone, 1 seclusion
ROW = "RXA,W1,2021-01,551,11,1,1,1"


def _report(tmp_path, params=None, **tables):
    data, report = validate_programme(load_raw(write_programme(tmp_path / "d", **tables)), params)
    return data, report


def _only(report, severity="error"):
    found = [p for p in report.problems if p.severity == severity]
    assert len(found) == 1, [str(p) for p in report.problems]
    return found[0]


def test_the_fixture_is_clean(tmp_path):
    data, report = _report(tmp_path)
    assert report.problems == ()
    assert data.trusts == ["RXA", "RXB"]
    assert data.wards.loc[2, "ward_id"] == "001"  # keys stay text


ERROR_CASES = [
    # (table, line, new text, expected str(problem), scope)
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,551,abc,1,1,1",
        "ward_month.csv:2:5: error: physical_restraint: 'abc' is not a number; allowed: a whole "
        "number >= 0, or blank for not recorded",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,551,11.5,1,1,1",
        "ward_month.csv:2:5: error: physical_restraint: 11.5 is not a whole number",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,551,11,1,-2,1",
        "ward_month.csv:2:7: error: seclusion: '-2' is negative; allowed: a whole number >= 0",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,-551,11,1,1,1",
        "ward_month.csv:2:4: error: occupied_bed_days: '-551' is negative; allowed: a number >= 0",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,0,11,1,1,1",
        "ward_month.csv:2:4: error: occupied_bed_days: 0 with restrictive practice recorded; 0 is "
        "allowed only for a closed ward with no counts",
        "trust",
    ),
    (
        "ward_month",
        3,
        "RXA,W1,2021-01,552,12,0,2,2",
        "ward_month.csv:3:3: error: duplicate ward-month RXA/W1 2021-01: also on line 2",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W9,2021-01,551,11,1,1,1",
        "ward_month.csv:2:2: error: ward_id: ward 'W9' of trust 'RXA' is not in wards.csv (1 row; "
        "first here)",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,Jan 2021,551,11,1,1,1",
        "ward_month.csv:2:3: error: month: 'Jan 2021' is not a month; write months as YYYY-MM, "
        "YYYY-MM-01 or 01/MM/YYYY",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01-15,551,11,1,1,1",
        "ward_month.csv:2:3: error: month: 2021-01-15 is not the first of a month",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-13,551,11,1,1,1",
        "ward_month.csv:2:3: error: month: '2021-13' is not a month",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,,551,11,1,1,1",
        "ward_month.csv:2:3: error: month: blank; a month is required",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,551,11,12,1,1",
        "ward_month.csv:2:6: error: prone_restraint: 12 is more than physical_restraint (11); "
        "prone restraint is one kind of physical restraint",
        "trust",
    ),
    (
        "ward_month",
        2,
        "RXA,,2021-01,551,11,1,1,1",
        "ward_month.csv:2:2: error: ward_id: blank; a value is required",
        "trust",
    ),
    (
        "ward_month",
        2,
        ",W1,2021-01,551,11,1,1,1",
        "ward_month.csv:2:1: error: trust_code: blank; a value is required",
        "structural",
    ),
    (
        "ward_month",
        2,
        "RXA,W 1,2021-01,551,11,1,1,1",
        "ward_month.csv:2:2: error: ward_id: 'W 1' must use letters, digits, '-' and '_' only",
        "structural",
    ),
    (
        "wards",
        2,
        "RXA,Trust A,W1,Ash,acute,2021-07,Wave 1,London,20",
        "wards.csv:2:5: error: ward_type: 'acute' is not a ward type; allowed: adult_acute,",
        "trust",
    ),
    (
        "wards",
        2,
        "RXA,Trust A,W1,Ash,adult_acute,July 2021,Wave 1,London,20",
        "wards.csv:2:6: error: start_month: 'July 2021' is not a month",
        "trust",
    ),
    (
        "wards",
        3,
        "RXA,Trust A,W2,Beech,picu,,,London,10\nRXA,Trust A,W2,Beech,picu,,,London,10",
        "wards.csv:4:3: error: duplicate ward RXA/W2: also on line 3",
        "trust",
    ),
    (
        "wards",
        2,
        "RXA,Trust A,W1,Ash,adult_acute,2021-07,Wave 1,London,2.5",
        "wards.csv:2:9: error: beds: 2.5 is not a whole number",
        "trust",
    ),
    (
        "wards",
        2,
        "RXA,,W1,Ash,adult_acute,2021-07,Wave 1,London,20",
        "wards.csv:2:2: error: trust_name: blank; a value is required",
        "trust",
    ),
    (
        "events",
        2,
        "RXA,ALL,2021-03,outage,Down",
        "events.csv:2:4: error: type: 'outage' is not an event type; allowed: method_break,",
        "trust",
    ),
    (
        "events",
        2,
        "RXA,W7,2021-03,other,x",
        "events.csv:2:2: error: ward_id: ward 'W7' of trust 'RXA' is not in wards.csv (use ALL for "
        "the whole trust)",
        "trust",
    ),
    (
        "events",
        2,
        "RXZ,ALL,2021-03,other,x",
        "events.csv:2:1: error: trust_code: 'RXZ' is not in wards.csv",
        "trust",
    ),
]


@pytest.mark.parametrize(
    ("table", "line", "new", "expected", "scope"),
    ERROR_CASES,
    ids=[c[3].split(": ", 3)[2][:40] for c in ERROR_CASES],
)
def test_error_rule(tmp_path, table, line, new, expected, scope):
    texts = {"wards": WARDS, "ward_month": WARD_MONTH, "events": EVENTS}
    texts[table] = replace_line(texts[table], line, new)
    _, report = _report(tmp_path, **texts)
    problem = _only(report)
    assert str(problem).startswith(expected)
    assert problem.scope == scope
    if scope == "trust":
        assert problem.trust_code in ("RXA", "RXZ")
        assert set(report.failed_trusts) <= {"RXA", "RXZ"}


def test_an_unsafe_code_is_one_problem_per_file(tmp_path):
    wards = WARDS.replace("RXB,", "RX/B,")
    wm = WARD_MONTH.replace("RXB,", "RX/B,")
    _, report = _report(tmp_path, wards=wards, ward_month=wm)
    assert [str(p) for p in report.problems] == [
        "wards.csv:4:1: error: trust_code: 'RX/B' must use letters, digits, '-' and '_' only, "
        "at most 32 characters (the code names files)",
        "ward_month.csv:26:1: error: trust_code: 'RX/B' must use letters, digits, '-' and '_' "
        "only, at most 32 characters (the code names files) (12 rows; first here)",
    ]
    assert {p.scope for p in report.problems} == {"structural"}


def test_every_problem_is_reported_once_and_all_are_listed(tmp_path):
    wm = replace_line(WARD_MONTH, 2, "RXA,W1,2021-01,551,abc,1,-1,1")
    wm = replace_line(wm, 30, "RXB,001,2021-05,505,x,0,1,1")
    _, report = _report(tmp_path, ward_month=wm)
    lines = [str(p) for p in report.errors]
    assert len(lines) == len(set(lines)) == 3
    assert report.failed_trusts.keys() == {"RXA", "RXB"}


def test_trust_errors_leave_the_data_usable_structural_errors_do_not(tmp_path):
    wm = replace_line(WARD_MONTH, 2, "RXA,W1,2021-01,551,abc,1,1,1")
    data, report = _report(tmp_path, ward_month=wm)
    assert data is not None and report.failed_trusts.keys() == {"RXA"}
    with pytest.raises(DataValidationError, match="1 error"):
        load_programme(tmp_path / "d")
    assert load_programme(tmp_path / "d", allow_trust_errors=True).trusts == ["RXA", "RXB"]
    bad = replace_line(WARD_MONTH, 2, "R A,W1,2021-01,551,11,1,1,1")
    data, report = _report(tmp_path / "s", ward_month=bad)
    assert data is None and report.structural_errors


STRUCTURAL_CASES = [
    (
        {"ward_month": "trust_code,ward_id,month,physical_restraint\nRXA,W1,2021-01,3\n"},
        "ward_month.csv:1: error: required column 'occupied_bed_days' is missing; the header has "
        "trust_code, ward_id, month, physical_restraint",
    ),
    (
        {"ward_month": "Trust_Code,ward_id,month,occupied_bed_days,seclusion\n"},
        "ward_month.csv:1: error: required column 'trust_code' is missing (found 'Trust_Code': "
        "column names are lower case)",
    ),
    (
        {"ward_month": "trust_code,ward_id,month,occupied_bed_days,seclusion\n"},
        "ward_month.csv:1: error: the table has a header but no data rows",
    ),
    ({"ward_month": ""}, "ward_month.csv: error: the file is empty"),
    (
        {"ward_month": "trust_code,ward_id,month,occupied_bed_days\nRXA,W1,2021-01,3\n"},
        "ward_month.csv:1: error: ward_month has no measure column; expected at least one of "
        "physical_restraint",
    ),
    (
        {"ward_month": "trust_code,ward_id,month,month,seclusion\n"},
        "ward_month.csv:1: error: column 'month' appears twice in the header",
    ),
    (
        {
            "ward_month": WARD_MONTH.replace(
                "RXA,W1,2021-02,552,12,0,2,2", "RXA,W1,2021-02,552,12,0,2,2,9"
            )
        },
        "ward_month.csv:3: error: 9 fields where the header has 8",
    ),
]


@pytest.mark.parametrize(
    ("tables", "expected"),
    STRUCTURAL_CASES,
    ids=[c[1].split("error: ")[1][:40] for c in STRUCTURAL_CASES],
)
def test_structural_rule(tmp_path, tables, expected):
    data, report = _report(tmp_path, **tables)
    problem = _only(report)
    assert str(problem).startswith(expected)
    assert problem.scope == "structural" and data is None


def test_missing_file_and_missing_folder(tmp_path):
    folder = write_programme(tmp_path / "d")
    (folder / "wards.csv").unlink()
    _, report = validate_programme(load_raw(folder))
    assert str(_only(report)) == (
        "d: error: wards is missing: expected wards.csv (or .parquet) in the folder"
    )
    _, report = validate_programme(load_raw(tmp_path / "nowhere"))
    assert str(_only(report)).endswith("nowhere: error: no such file or folder")


def test_unreadable_files(tmp_path):
    folder = write_programme(tmp_path / "d")
    (folder / "ward_month.csv").write_bytes("trust_code,ward_id\nRXA,Wé\n".encode("cp1252"))
    _, report = validate_programme(load_raw(folder))
    assert str(_only(report)) == (
        "ward_month.csv:2: error: not UTF-8 text (byte 0xe9); save it "
        "as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)"
    )
    (folder / "ward_month.csv").write_bytes(b"PK\x03\x04rest of a zip")
    _, report = validate_programme(load_raw(folder))
    assert "this is an Excel workbook or other zip file, not text" in str(_only(report))
    (folder / "ward_month.csv").write_bytes(b"\x00\x01\x02")
    _, report = validate_programme(load_raw(folder))
    assert "not a text file" in str(_only(report))


def test_the_same_table_given_twice_is_refused(tmp_path):
    folder = write_programme(tmp_path / "d")
    (folder / "wards.txt").write_text(WARDS)
    _, report = validate_programme(load_raw(folder))
    assert "wards is given twice (wards.csv, wards.txt); keep one" in str(_only(report))


def test_status_values(tmp_path):
    wm = WARD_MONTH.replace(
        "rapid_tranquillisation\n", "rapid_tranquillisation,seclusion_status\n", 1
    )
    wm = "\n".join(line + ("," if i else "") for i, line in enumerate(wm.splitlines())) + "\n"
    wm = wm.replace(
        "rapid_tranquillisation,seclusion_status,", "rapid_tranquillisation,seclusion_status"
    )
    good = replace_line(wm, 2, ROW + ",rounded5")
    data, report = _report(tmp_path / "a", ward_month=good)
    assert report.ok and data.ward_month.loc[0, "seclusion_status"] == "rounded5"
    bad = replace_line(wm, 2, ROW + ",approx")
    _, report = _report(tmp_path / "b", ward_month=bad)
    assert str(_only(report)).startswith(
        "ward_month.csv:2:9: error: seclusion_status: 'approx' "
        "is not a status; allowed: suppressed, rounded5"
    )


def test_a_measure_named_in_the_parameters_must_be_present(tmp_path):
    params = ProgrammeParams.model_validate({"measures": {"injuries": {}}})
    _, report = _report(tmp_path, params=params)
    assert str(_only(report)) == (
        "ward_month.csv:1: error: measure 'injuries' is named "
        "in the parameters but ward_month has no such column"
    )


# --- warnings -------------------------------------------------------------------------------


WARNING_CASES = [
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,551,900,1,1,1",
        "ward_month.csv:2:5: warning: physical_restraint: 1633 per 1,000 occupied bed days is "
        "above the plausible maximum of 1000",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,,11,1,1,1",
        "ward_month.csv:2:4: warning: occupied_bed_days: blank alongside recorded counts",
    ),
    (
        "ward_month",
        2,
        "RXA,W1,2021-01,700,11,1,1,1",
        "ward_month.csv:2:4: warning: occupied_bed_days: 700 is more than beds x days in the month "
        "(620)",
    ),
    (
        "ward_month",
        5,
        "RXA,W1,2021-04,100,1,1,1,1",
        "ward_month.csv:5:4: warning: occupied_bed_days: 553 to 100 from 2021-03 to 2021-04 (more "
        "than x2)",
    ),
    (
        "ward_month",
        5,
        "RXA,W1,2021-04,554,400,1,1,1",
        "ward_month.csv:5:5: warning: physical_restraint: 10 to 400 from 2021-03 to 2021-04 (more "
        "than x10)",
    ),
    (
        "wards",
        2,
        "RXA,Trust A,W1,Ash,adult_acute,2022-03,Wave 1,London,20",
        "ward_month.csv:13:3: warning: month: ward RXA/W1 joins in 2022-03, after its last month "
        "of data (2021-12): there is no post-intervention period",
    ),
]


@pytest.mark.parametrize(
    ("table", "line", "new", "expected"),
    WARNING_CASES,
    ids=[c[3].split("warning: ")[1][:40] for c in WARNING_CASES],
)
def test_warning_rule(tmp_path, table, line, new, expected):
    texts = {"wards": WARDS, "ward_month": WARD_MONTH, "events": EVENTS}
    texts[table] = replace_line(texts[table], line, new)
    data, report = _report(tmp_path, **texts)
    problem = _only(report, "warning")
    assert str(problem).startswith(expected)
    assert report.ok and data is not None


def _drop_line(text: str, line: int) -> str:
    lines = text.splitlines()
    del lines[line - 1]
    return "\n".join(lines) + "\n"


def test_gap_and_late_onset(tmp_path):
    wm = _drop_line(_drop_line(WARD_MONTH, 6), 5)  # RXA/W1 2021-04 and 2021-05
    _, report = _report(tmp_path / "gap", ward_month=wm)
    assert str(_only(report, "warning")) == (
        "ward_month.csv:5:3: warning: month: ward RXA/W1 has no row for the 2 months between "
        "2021-03 and 2021-06"
    )
    late = WARD_MONTH
    for _ in range(4):
        late = _drop_line(late, 14)  # RXA/W2 starts in 2021-05
    _, report = _report(tmp_path / "late", ward_month=late)
    assert str(_only(report, "warning")).startswith(
        "ward_month.csv:14:3: warning: month: ward RXA/W2 starts reporting in 2021-05, 4 months "
        "after the data begin (2021-01)"
    )
    onset = EVENTS + "RXA,W2,2021-05,reporting_onset,Joined the data collection\n"
    _, report = _report(tmp_path / "explained", ward_month=late, events=onset)
    assert report.problems == ()


def test_a_jump_explained_by_an_event_is_not_warned(tmp_path):
    wm = replace_line(WARD_MONTH, 5, "RXA,W1,2021-04,100,1,1,1,1")
    events = EVENTS + "RXA,W1,2021-04,reconfiguration,Beds closed\n"
    _, report = _report(tmp_path, ward_month=wm, events=events)
    assert report.problems == ()


def test_thresholds_come_from_the_parameters(tmp_path):
    params = ProgrammeParams(plausibility=PlausibilityParams(max_rate_per_1000_obd=15.0))
    _, report = _report(tmp_path, params=params)
    assert {p.rule for p in report.problems} == {"implausible-rate"}
    assert all(p.severity == "warning" for p in report.problems)


def test_wards_without_data_and_inconsistent_trust_names(tmp_path):
    wards = WARDS + "RXB,Trust Bee,002,Dale,rehab,,,Midlands,12\n"
    _, report = _report(tmp_path, wards=wards)
    messages = {str(p) for p in report.warnings}
    assert messages == {
        "wards.csv:4:2: warning: trust_name: trust RXB has 2 different names; use one",
        "wards.csv:5:3: warning: ward_id: ward 002 has no rows in ward_month",
    }
