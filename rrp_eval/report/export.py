"""Tables as shared files: CSV and an Excel workbook, safe to open and byte-reproducible.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as
a formula by Excel and LibreOffice (CSV injection, OWASP). Such cells get a leading apostrophe;
numbers are left as numbers. The workbook's zip entries and document properties carry a fixed
date so that the same tables give the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FIXED_TIME = datetime(2000, 1, 1)
FLOAT_FORMAT = "%.6g"


def neutralise(value: object) -> object:
    """A text value that a spreadsheet would run as a formula, made inert; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell passed through :func:`neutralise` (numbers untouched)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """The CSV text of a shared table: neutralised, 6 significant digits, ``\\n`` line ends."""
    return neutralised(frame).to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_workbook(path: Path, sheets: dict[str, tuple[pd.DataFrame, str]]) -> Path:
    """Write an evaluator-friendly ``.xlsx``: one sheet per table with a title row, bold
    frozen headers, filters, fitted column widths and number formats (ratios 0.000, p-values
    0.0000, counts whole). ``sheets`` maps a sheet name to (table, title)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    header_fill = PatternFill("solid", fgColor="005EB8")
    for name, (frame, title) in sheets.items():
        ws = wb.create_sheet(name[:31])
        ws.cell(row=1, column=1, value=neutralise(title)).font = Font(bold=True, size=12)
        table = neutralised(frame)
        for j, col in enumerate(table.columns, start=1):
            cell = ws.cell(row=2, column=j, value=str(col))
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for i, row in enumerate(table.itertuples(index=False), start=3):
            for j, value in enumerate(row, start=1):
                if isinstance(value, float) and value != value:  # NaN: leave the cell empty
                    continue
                if hasattr(value, "item"):
                    value = value.item()
                ws.cell(row=i, column=j, value=value)
        for j, col in enumerate(table.columns, start=1):
            letter = get_column_letter(j)
            fmt = _number_format(str(col))
            if fmt:
                for cell in ws[letter][2:]:
                    cell.number_format = fmt
            width = max([len(str(col))] + [len(str(v)) for v in table[col].head(200)])
            ws.column_dimensions[letter].width = min(max(10, width + 2), 60)
        ws.freeze_panes = "A3"
        if len(table.columns):
            ws.auto_filter.ref = f"A2:{get_column_letter(len(table.columns))}{len(table) + 2}"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "rrp-eval"
    buffer = io.BytesIO()
    wb.save(buffer)
    path.write_bytes(_fixed_zip(buffer.getvalue()))
    return path


def _number_format(column: str) -> str | None:
    c = column.lower()
    if c.startswith("p_") or c.endswith("_p") or c == "p_value":
        return "0.0000"
    if c.startswith(("n_", "baseline_months", "horizon")) or c in ("h_end", "n_trusts"):
        return "0"
    if any(k in c for k in ("rr", "estimate", "ci_", "pi_", "i2", "tau2", "dispersion")):
        return "0.000"
    return None


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every entry, and the document's created and modified times, at
    ``FIXED_TIME`` (openpyxl stamps the current time in both)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + rb"\g<2>",
                    data,
                )
            dst.writestr(fixed, data)
    return out.getvalue()
