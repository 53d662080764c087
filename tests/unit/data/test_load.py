"""Reading the tables: formats, delimiters, encodings and line numbers (SPEC §1 reading rules)."""

from __future__ import annotations

import pandas as pd
import pytest
from datafiles import EVENTS, WARD_MONTH, WARDS, write_programme

from rrp_eval.data.load import load_raw, sniff_delimiter
from rrp_eval.data.validate import load_programme


@pytest.fixture(scope="module")
def reference_tables(tmp_path_factory):
    return load_programme(write_programme(tmp_path_factory.mktemp("csv")))


def _assert_same(a, b):
    for name in ("wards", "ward_month", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_dtype=False)
    assert a.measures == b.measures


def test_typed_tables(reference_tables):
    wm = reference_tables.ward_month
    assert wm["month"].dtype.kind == "M" and (wm["month"].dt.day == 1).all()
    assert wm["physical_restraint"].dtype == float
    assert reference_tables.wards["start_month"].isna().sum() == 1
    assert reference_tables.events.loc[0, "type"] == "system_change"
    assert reference_tables.measures == (
        "physical_restraint",
        "prone_restraint",
        "rapid_tranquillisation",
        "seclusion",
    )


def _semicolon(text: str) -> str:
    return text.replace(",", ";")


def test_semicolon_csv_with_decimal_commas_bom_and_crlf(tmp_path, reference_tables):
    wm = _semicolon(WARD_MONTH).replace(";551;", ";551,0;")  # 551,0 bed days: a decimal comma
    folder = write_programme(
        tmp_path, wards=_semicolon(WARDS), ward_month=wm, events=_semicolon(EVENTS)
    )
    raw = (folder / "wards.csv").read_text()
    (folder / "wards.csv").write_bytes(b"\xef\xbb\xbf" + raw.replace("\n", "\r\n").encode())
    data = load_programme(folder)
    _assert_same(data, reference_tables)
    assert load_raw(folder).tables["ward_month"].decimal_comma


def test_tab_separated(tmp_path, reference_tables):
    tab = {
        k: v.replace(",", "\t")
        for k, v in {"wards": WARDS, "ward_month": WARD_MONTH, "events": EVENTS}.items()
    }
    _assert_same(load_programme(write_programme(tmp_path, **tab)), reference_tables)


def test_decimal_comma_is_not_accepted_under_commas(tmp_path):
    wm = WARD_MONTH.replace(",551,", ',"551,5",')
    data = load_raw(write_programme(tmp_path, ward_month=wm))
    from rrp_eval.data.validate import validate_programme

    _, report = validate_programme(data)
    assert "'551,5' is not a number" in str(report.errors[0])


def test_xlsx_workbook_with_date_cells(tmp_path, reference_tables):
    book = tmp_path / "programme.xlsx"
    with pd.ExcelWriter(book) as writer:
        wards = pd.read_csv(
            write_programme(tmp_path / "src") / "wards.csv", dtype=str, keep_default_na=False
        )
        wards.to_excel(writer, sheet_name="wards", index=False)
        wm = pd.read_csv(tmp_path / "src" / "ward_month.csv", dtype={"ward_id": str})
        wm["month"] = pd.to_datetime(wm["month"])  # real date cells
        wm.to_excel(writer, sheet_name="ward_month", index=False)
        pd.read_csv(tmp_path / "src" / "events.csv").to_excel(
            writer, sheet_name="events", index=False
        )
    data = load_programme(book)
    _assert_same(data, reference_tables)
    assert load_raw(book).tables["ward_month"].source == "programme.xlsx[ward_month]"


def test_xlsx_messages_name_the_sheet_and_row(tmp_path):
    book = tmp_path / "b.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.read_csv(write_programme(tmp_path / "s") / "wards.csv", dtype=str).to_excel(
            writer, sheet_name="wards", index=False
        )
        wm = pd.read_csv(tmp_path / "s" / "ward_month.csv", dtype=str)
        wm.loc[4, "seclusion"] = "-3"
        wm.to_excel(writer, sheet_name="ward_month", index=False)
    from rrp_eval.data.validate import validate_programme

    _, report = validate_programme(load_raw(book))
    assert [str(p) for p in report.errors] == [
        "b.xlsx[ward_month]:6:7: error: seclusion: '-3' is negative; allowed: a whole number >= 0, "
        "or blank for not recorded"
    ]


def test_parquet(tmp_path, reference_tables):
    src = write_programme(tmp_path / "src")
    out = tmp_path / "pq"
    out.mkdir()
    for name in ("wards", "ward_month", "events"):
        frame = pd.read_csv(src / f"{name}.csv", dtype={"ward_id": str})
        if name == "ward_month":
            frame["month"] = pd.to_datetime(frame["month"])
        frame.to_parquet(out / f"{name}.parquet")
    _assert_same(load_programme(out), reference_tables)


def test_keys_stay_text_and_quoted_newlines_keep_line_numbers(tmp_path):
    wards = WARDS.replace("RXB,Trust B,001,Cedar", 'RXB,Trust B,001,"Cedar\nUnit"')
    wm = WARD_MONTH.replace("RXB,001,2021-02,502", "RXB,001,2021-02,-502")
    folder = write_programme(tmp_path, wards=wards, ward_month=wm)
    raw = load_raw(folder)
    assert raw.tables["wards"].frame.loc[2, "ward_id"] == "001"
    assert list(raw.tables["wards"].lines) == [2, 3, 4]
    from rrp_eval.data.validate import validate_programme

    wards_bad = wards + "RXB,Trust B,002,Dale,bad_type,,,,\n"
    folder = write_programme(tmp_path / "b", wards=wards_bad)
    _, report = validate_programme(load_raw(folder))
    assert str(report.errors[0]).startswith("wards.csv:6:5: error: ward_type: 'bad_type'")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a,b;c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ("single", ","),
        ("a;b,c;d", ";"),
    ],
)
def test_sniff_delimiter(header, expected):
    assert sniff_delimiter(header) == expected


def test_extra_columns_are_carried_and_blank_lines_skipped(tmp_path):
    wm = WARD_MONTH.replace("rapid_tranquillisation\n", "rapid_tranquillisation,comment\n", 1)
    lines = wm.splitlines()
    wm = "\n".join([lines[0]] + [ln + ",note" for ln in lines[1:]]) + "\n\n\n"
    data = load_programme(write_programme(tmp_path, ward_month=wm))
    assert "comment" in data.ward_month and "comment" not in data.measures
