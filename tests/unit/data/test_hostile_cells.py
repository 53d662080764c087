"""Cells, codes, files and parameters that used to crash or slip through (issue 14).

Each gets a located message (file:line:column, the rule, what is allowed) and the documented
scope: structural (exit 2, nothing written) or confined to one trust.
"""

from __future__ import annotations

import tracemalloc

import pytest
from datafiles import WARD_MONTH, WARDS, write_programme

from rrp_eval.data.load import load_raw
from rrp_eval.data.problems import MAX_REPEATS
from rrp_eval.data.validate import validate_programme
from rrp_eval.params import ParameterError, load_params
from rrp_eval.schema import MAX_COUNT, MAX_TEXT_CHARS


def _validate(tmp_path, **tables):
    data = write_programme(tmp_path / "data", **tables)
    return validate_programme(load_raw(data))


def _messages(report):
    return [str(p) for p in report.problems]


def test_an_unmatched_quote_is_a_located_problem_not_a_traceback(tmp_path):
    rows = WARD_MONTH.splitlines()
    rows[3] = rows[3].replace("RXA,W1,", 'RXA,"W1,', 1)  # the quote never closes...
    filler = [f"RXB,001,2022-{m:02d},500,1,0,0,0" for m in range(1, 13)] * 2000  # > 128 KiB
    programme, report = _validate(tmp_path, ward_month="\n".join(rows + filler) + "\n")
    assert programme is None
    assert any(
        m.startswith("ward_month.csv:4: error: a cell starting on line 4 runs on")
        and "unmatched double quote" in m
        for m in _messages(report)
    ), _messages(report)


def test_an_over_long_cell_fails_its_trust_only(tmp_path):
    wards = WARDS.replace("Cedar", "C" * (MAX_TEXT_CHARS + 1))
    programme, report = _validate(tmp_path, wards=wards)
    assert programme is not None and set(report.failed_trusts) == {"RXB"}
    (problem,) = report.failed_trusts["RXB"]
    assert str(problem).startswith("wards.csv:4:4: error: ward_name: 1,001 characters")
    assert "C" * 50 not in str(problem)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Trust \u202eA", "202E"),
        ("Tr\x07ust", "0007"),
        ("Trust\u2066 A", "2066"),
        ("T\x85x", "0085"),
    ],
)
def test_control_and_direction_characters_in_names_are_refused(tmp_path, name, code):
    _, report = _validate(tmp_path, wards=WARDS.replace("Trust B", name))
    assert set(report.failed_trusts) == {"RXB"}
    message = str(report.failed_trusts["RXB"][0])
    assert message.startswith("wards.csv:4:2: error: trust_name: holds the invisible character")
    assert f"U+{code}" in message


def test_over_long_and_case_colliding_codes_are_structural(tmp_path):
    long = "R" * 300
    programme, report = _validate(
        tmp_path / "long",
        wards=WARDS.replace("RXB,", f"{long},"),
        ward_month=WARD_MONTH.replace("RXB,", f"{long},"),
    )
    assert programme is None
    first = _messages(report)[0]
    assert (
        first.startswith("wards.csv:4:1: error: trust_code:") and "at most 32 characters" in first
    )
    assert len(first) < 300  # the code is quoted cut short
    programme, report = _validate(
        tmp_path / "case",
        wards=WARDS.replace("RXB,", "rxa,"),
        ward_month=WARD_MONTH.replace("RXB,", "rxa,"),
    )
    assert programme is None
    assert _messages(report) == [
        "wards.csv:4:1: error: trust_code: 'rxa' differs from 'RXA' only in upper and lower "
        "case; their reports would overwrite each other on a case-insensitive drive, so give "
        "each trust its own code"
    ]


@pytest.mark.parametrize("value", ["1e308", "99999999999999999999999", str(MAX_COUNT + 1)])
def test_implausibly_large_counts_are_errors(tmp_path, value):
    wm = WARD_MONTH.replace("RXB,001,2021-03,503,10", f"RXB,001,2021-03,503,{value}")
    assert wm != WARD_MONTH
    _, report = _validate(tmp_path, ward_month=wm)
    assert set(report.failed_trusts) == {"RXB"}
    (problem,) = report.failed_trusts["RXB"]
    assert problem.rule == "implausible-number" and problem.column == 5
    assert f"above {MAX_COUNT:,}" in problem.message


def test_a_count_at_the_ceiling_is_accepted(tmp_path):
    wm = WARD_MONTH.replace("RXB,001,2021-03,503,10", f"RXB,001,2021-03,503,{MAX_COUNT}")
    _, report = _validate(tmp_path, ward_month=wm)
    assert not report.errors


def test_a_data_file_linking_outside_the_folder_is_refused(tmp_path):
    data = write_programme(tmp_path / "data")
    secret = tmp_path / "elsewhere" / "ward_month.csv"
    secret.parent.mkdir()
    (data / "ward_month.csv").rename(secret)
    (data / "ward_month.csv").symlink_to(secret)
    programme, report = validate_programme(load_raw(data))
    assert programme is None
    assert any(
        m.startswith("ward_month.csv: error: is a link to a file outside the data folder")
        for m in _messages(report)
    )


def test_repeated_problems_are_capped_per_kind(tmp_path):
    rows = WARD_MONTH.splitlines()
    extra = [f"RXB,001,20{y:02d}-{m:02d},500,-1,0,0,0" for y in range(30, 40) for m in range(1, 13)]
    _, report = _validate(tmp_path, ward_month="\n".join(rows + extra) + "\n")
    negative = [p for p in report.errors if p.column == 5]
    assert len(negative) == MAX_REPEATS + 1
    assert negative[-1].message.startswith(f"{len(extra) - MAX_REPEATS} more like the above")
    assert set(report.failed_trusts) == {"RXB"}


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["programme: Bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):  # 7**12 strings if expanded
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 7) + "]")
    (tmp_path / "programme.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tracemalloc.start()
    with pytest.raises(ParameterError) as exc:
        load_params(tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000
    assert str(exc.value).endswith(
        "programme.yaml:3: not valid YAML: aliases (*a0) are not allowed in parameters; "
        "write the value out"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("programme: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
        ("measures:\n  month: {direction: decrease}\n", "'month' is a column of the data"),
        ("measures:\n  occupied_bed_days: {}\n", "is a column of the data"),
        ("trusts:\n  X01:\n    bogus: 1\n", "programme.yaml:1: unknown key 'trusts' (per-trust"),
        ("source: /etc/passwd\n", "programme.yaml:1: unknown key 'source'"),
    ],
)
def test_parameters_that_used_to_crash_or_slip_through_are_refused(tmp_path, text, message):
    (tmp_path / "programme.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_params(tmp_path)
