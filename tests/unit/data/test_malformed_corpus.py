"""A corpus of malformed inputs through the command line: each gives exit 2 with a specific
message at its place (``rrp-eval validate``), and ``rrp-eval run`` writes nothing when the
problem is structural and fails only that trust when it is confined to one (SPEC §1)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from datafiles import WARD_MONTH, WARDS, replace_line, write_programme

from rrp_eval.cli import main
from rrp_eval.data.load import load_raw
from rrp_eval.data.validate import validate_programme

ROW = "RXA,W1,2021-01,551,11,1,1,1"  # line 2 of ward_month


def _zip_as_csv(folder: Path) -> None:
    with zipfile.ZipFile(folder / "ward_month.csv", "w") as z:
        z.writestr("ward_month.csv", WARD_MONTH)


def _latin1(folder: Path) -> None:
    (folder / "wards.csv").write_bytes(WARDS.replace("Trust A", "Trust \xe9").encode("latin-1"))


def _nul(folder: Path) -> None:
    (folder / "ward_month.csv").write_bytes(WARD_MONTH.encode() + b"\x00\x00")


def _twice(folder: Path) -> None:
    (folder / "wards.tsv").write_text(WARDS.replace(",", "\t"), encoding="utf-8")


def _missing(folder: Path) -> None:
    (folder / "ward_month.csv").unlink()


def _wm(line: int, text: str):
    return {"ward_month": replace_line(WARD_MONTH, line, text)}


def _wards(line: int, text: str):
    return {"wards": replace_line(WARDS, line, text)}


# (case, tables to change or a function on the folder, expected text in the message, scope)
CORPUS = [
    ("missing ward_month", _missing, "ward_month", "structural"),
    ("not UTF-8", _latin1, "wards.csv:2: error: not UTF-8 text (byte 0xe9)", "structural"),
    ("a zip file named .csv", _zip_as_csv, "ward_month.csv: error:", "structural"),
    ("NUL bytes", _nul, "ward_month.csv", "structural"),
    ("a table given twice", _twice, "wards", "structural"),
    (
        "no month column",
        {"ward_month": WARD_MONTH.replace(",month,", ",period,", 1)},
        "ward_month.csv:1",
        "structural",
    ),
    (
        "header in the wrong case",
        {"ward_month": WARD_MONTH.replace(",month,", ",Month,", 1)},
        "Month",
        "structural",
    ),
    (
        "repeated header",
        {"ward_month": WARD_MONTH.replace("seclusion", "prone_restraint", 1)},
        "ward_month.csv:1",
        "structural",
    ),
    ("ragged row", _wm(2, ROW + ",9"), "ward_month.csv:2", "structural"),
    ("empty table", {"ward_month": ""}, "ward_month.csv: error: the file is empty", "structural"),
    (
        "unsafe trust code",
        {
            "wards": WARDS.replace("RXB,Trust B", "RX B;rm,Trust B"),
            "ward_month": WARD_MONTH.replace("RXB,", "RX B;rm,"),
        },
        "wards.csv:4:1",
        "structural",
    ),
    ("text count", _wm(2, "RXA,W1,2021-01,551,abc,1,1,1"), "ward_month.csv:2:5", "trust"),
    ("negative count", _wm(2, "RXA,W1,2021-01,551,11,1,-2,1"), "ward_month.csv:2:7", "trust"),
    ("fractional count", _wm(2, "RXA,W1,2021-01,551,11.5,1,1,1"), "ward_month.csv:2:5", "trust"),
    ("prone above physical", _wm(2, "RXA,W1,2021-01,551,1,3,1,1"), "ward_month.csv:2:6", "trust"),
    ("negative bed days", _wm(2, "RXA,W1,2021-01,-5,11,1,1,1"), "ward_month.csv:2:4", "trust"),
    (
        "counts with zero bed days",
        _wm(2, "RXA,W1,2021-01,0,11,1,1,1"),
        "ward_month.csv:2",
        "trust",
    ),
    ("month 13", _wm(2, "RXA,W1,2021-13,551,11,1,1,1"), "ward_month.csv:2:3", "trust"),
    ("mid-month date", _wm(2, "RXA,W1,2021-01-15,551,11,1,1,1"), "ward_month.csv:2:3", "trust"),
    ("US date", _wm(2, "RXA,W1,01/31/2021,551,11,1,1,1"), "ward_month.csv:2:3", "trust"),
    ("duplicate ward-month", _wm(3, ROW), "ward_month.csv:3", "trust"),
    ("unknown ward", _wm(2, "RXA,W9,2021-01,551,11,1,1,1"), "ward_month.csv:2:2", "trust"),
    (
        "unknown ward type",
        _wards(2, "RXA,Trust A,W1,Ash,acute_ward,2021-07,Wave 1,London,20"),
        "wards.csv:2:5",
        "trust",
    ),
    (
        "unreadable start month",
        _wards(2, "RXA,Trust A,W1,Ash,adult_acute,July 2021,Wave 1,London,20"),
        "wards.csv:2:6",
        "trust",
    ),
    (
        "unknown event type",
        {"events": "trust_code,ward_id,month,type,note\nRXA,ALL,2021-03,party,x\n"},
        "events.csv:2:4",
        "trust",
    ),
]
IDS = [c[0] for c in CORPUS]


def _folder(tmp_path: Path, change) -> Path:
    if callable(change):
        folder = write_programme(tmp_path / "data")
        change(folder)
        return folder
    return write_programme(tmp_path / "data", **change)


@pytest.mark.parametrize("case, change, expected, scope", CORPUS, ids=IDS)
def test_validate_exits_2_with_a_specific_message(case, change, expected, scope, tmp_path, capsys):
    folder = _folder(tmp_path, change)
    assert main(["validate", str(folder)]) == 2
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if ": error: " in line]
    assert errors, out
    assert any(expected in line for line in errors), (case, errors)
    _, report = validate_programme(load_raw(folder))
    scopes = {p.scope for p in report.errors}
    assert scope in scopes, (case, scopes)


STRUCTURAL = [c for c in CORPUS if c[3] == "structural"]


@pytest.mark.parametrize(
    "case, change, expected, scope", STRUCTURAL, ids=[c[0] for c in STRUCTURAL]
)
def test_run_writes_nothing_on_structural_errors(case, change, expected, scope, tmp_path, capsys):
    folder = _folder(tmp_path, change)
    out = tmp_path / "out"
    assert main(["run", "--data", str(folder), "--out", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob(".out.build-*"))
    assert "nothing was written" in capsys.readouterr().err
