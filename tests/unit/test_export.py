"""Shared tables: formula injection neutralised, numbers untouched, reproducible workbooks."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from rrp_eval.report.export import csv_text, neutralise, write_workbook

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_starts_are_neutralised(text):
    assert neutralise(text) == "'" + text


def test_numbers_and_plain_text_are_untouched():
    assert neutralise(-2.5) == -2.5 and neutralise(3) == 3
    assert neutralise("Trust A") == "Trust A" and neutralise("") == ""


@given(st.text())
def test_no_text_cell_can_start_a_formula(text):
    out = neutralise(text)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r")) or out.startswith("'")


def _frame():
    return pd.DataFrame(
        {
            "trust_code": ["RXA", "RXB"],
            "message": [HOSTILE[0], "ok"],
            "level_rr": [0.81234567, np.nan],
            "p_level": [-0.0, 0.0123],
            "n_pre": [24, 12],
        }
    )


def test_csv_keeps_numbers_as_numbers():
    back = pd.read_csv(io.StringIO(csv_text(_frame())))
    assert back.loc[0, "message"] == "'" + HOSTILE[0]
    assert back.loc[0, "level_rr"] == pytest.approx(0.812346)
    assert back["n_pre"].tolist() == [24, 12]


def test_workbook_is_formatted_safe_and_byte_reproducible(tmp_path):
    sheets = {"ITS effects": (_frame(), "=cmd|' /C calc'!A0")}
    a = write_workbook(tmp_path / "a.xlsx", sheets).read_bytes()
    time.sleep(1.1)  # openpyxl stamps the save time to the second
    b = write_workbook(tmp_path / "b.xlsx", sheets).read_bytes()
    assert a == b
    ws = load_workbook(tmp_path / "a.xlsx")["ITS effects"]
    assert ws["A1"].value.startswith("'=") and ws["A1"].data_type == "s"
    assert [c.value for c in ws[2]] == ["trust_code", "message", "level_rr", "p_level", "n_pre"]
    assert ws["B3"].value == "'" + HOSTILE[0] and ws["B3"].data_type == "s"
    assert ws["C3"].value == pytest.approx(0.81234567) and ws["C3"].number_format == "0.000"
    assert ws["C4"].value is None  # NaN left empty
    assert ws["D4"].number_format == "0.0000" and ws["E3"].value == 24
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:E4"
