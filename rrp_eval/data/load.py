"""Read the input tables from a folder of CSV or Parquet files or an .xlsx workbook.

Reading never transforms: every cell arrives as text exactly as written (stripped of surrounding
spaces), with its line number, so that validation can say where a problem is. The SPEC §1
reading rules live here: delimiter sniffing, the UTF-8 byte-order mark, decimal commas under
semicolons (flagged for the parser), keys kept as text.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rrp_eval.data.problems import ERROR, STRUCTURAL, Problem
from rrp_eval.schema import REQUIRED_TABLES, TABLES

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, eq=False)
class RawTable:
    """One table as read: text cells, the line of each row, and where it came from.

    Attributes
    ----------
    name : str
        ``wards``, ``ward_month`` or ``events``.
    source : str
        How messages name it: ``ward_month.csv`` or ``book.xlsx[ward_month]``.
    frame : pandas.DataFrame
        Text cells ("" for blank), columns as in the file's header.
    lines : numpy.ndarray
        Line (or sheet row) of each row; the header is line 1.
    decimal_comma : bool
        True when numbers may use a decimal comma (semicolon-separated files).
    path : pathlib.Path
        The file read.
    """

    name: str
    source: str
    frame: pd.DataFrame
    lines: np.ndarray
    decimal_comma: bool
    path: Path

    def column_number(self, column: str) -> int | None:
        """1-based position of a column in the file's header."""
        try:
            return int(self.frame.columns.get_loc(column)) + 1
        except KeyError:
            return None


@dataclass(frozen=True, eq=False)
class RawProgramme:
    """The tables found at a path, and the problems met while reading them."""

    path: Path
    tables: dict[str, RawTable]
    problems: tuple[Problem, ...] = ()
    files: tuple[Path, ...] = field(default=())


def _structural(source: str, rule: str, message: str, line: int | None = None) -> Problem:
    return Problem(ERROR, STRUCTURAL, rule, message, source, line)


def _decode(data: bytes, source: str) -> tuple[str | None, Problem | None]:
    if data.startswith(XLSX_MAGIC):
        return None, _structural(
            source,
            "unreadable",
            "this is an Excel workbook or other zip file, not text; "
            "pass the .xlsx file itself, or save each sheet as CSV UTF-8",
        )
    if b"\x00" in data[:65536]:
        return None, _structural(
            source, "unreadable", "not a text file (it contains NUL bytes); save it as CSV UTF-8"
        )
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, _structural(
            source,
            "encoding",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as 'CSV UTF-8' "
            "(Excel: File > Save As > CSV UTF-8)",
            line,
        )


def sniff_delimiter(header_line: str) -> str:
    """The delimiter among comma, semicolon and tab that the header line uses most."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _rows_from_text(
    text: str, delimiter: str, source: str, problems: list[Problem]
) -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, fields) for every non-blank row; handles quoted newlines.

    A file the csv module cannot read (a cell longer than its field limit, which is what an
    unmatched double quote usually causes, or a NUL) ends the table with a located problem.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first = last + 1
            if "field larger than field limit" in str(exc):
                message = (
                    f"a cell starting on line {first} runs on for more than "
                    f"{csv.field_size_limit():,} characters: most likely an unmatched double "
                    'quote (") there; a quote must open and close a whole cell'
                )
            else:
                message = f"cannot be read as {DELIMITER_NAMES[delimiter]}-separated text ({exc})"
            problems.append(_structural(source, "unreadable", message, first))
            return
        first = last + 1
        last = reader.line_num
        if fields and any(f.strip() for f in fields):
            yield first, fields


def _frame_from_rows(
    rows: Iterable[tuple[int, list[str]]], source: str, problems: list[Problem]
) -> tuple[pd.DataFrame, np.ndarray] | None:
    rows = iter(rows)
    try:
        header_line, header = next(rows)
    except StopIteration:
        problems.append(
            _structural(
                source,
                "empty-table",
                "the file is empty; it needs a header row and at least one data row",
            )
        )
        return None
    header = [h.strip() for h in header]
    while header and header[-1] == "":
        header.pop()
    blank = [i + 1 for i, h in enumerate(header) if h == ""]
    if blank:
        problems.append(
            _structural(
                source, "header", f"column {blank[0]} of the header has no name", header_line
            )
        )
        return None
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(
                _structural(
                    source, "header", f"column {name!r} appears twice in the header", header_line
                )
            )
            return None
        seen.add(name)
    width = len(header)
    cells, lines = [], []
    for line, fields in rows:
        fields = [f.strip() for f in fields]
        if len(fields) > width and not any(fields[width:]):
            fields = fields[:width]
        if len(fields) != width:
            problems.append(
                _structural(
                    source, "ragged-row", f"{len(fields)} fields where the header has {width}", line
                )
            )
            continue
        cells.append(fields)
        lines.append(line)
    frame = (
        pd.DataFrame(cells, columns=header, dtype=object)
        if cells
        else pd.DataFrame(columns=header, dtype=object)
    )
    return frame, np.asarray(lines, dtype=int)


def read_text_table(path: Path, name: str, problems: list[Problem]) -> RawTable | None:
    """Read one delimited text file; problems are appended, None if unusable."""
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(_structural(source, "unreadable", f"cannot be read: {exc.strerror}"))
        return None
    text, problem = _decode(data, source)
    if problem:
        problems.append(problem)
        return None
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = sniff_delimiter(first_line)
    read = _frame_from_rows(_rows_from_text(text, delimiter, source, problems), source, problems)
    if read is None:
        return None
    frame, lines = read
    return RawTable(name, source, frame, lines, delimiter == ";", path)


def _cell_text(value: object) -> str:
    """An .xlsx or Parquet cell as the text a CSV would hold."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime | datetime.date | pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, np.floating):
        return _cell_text(float(value))
    return str(value).strip()


def read_workbook(path: Path, problems: list[Problem]) -> tuple[dict[str, RawTable], set[str]]:
    """Read the sheets named like the tables from an .xlsx workbook (tables, sheets present)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        problems.append(
            _structural(
                path.name,
                "unreadable",
                f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})",
            )
        )
        return {}, set()
    tables = {}
    sheets = {c.name for c in TABLES if c.name in book.sheetnames}
    try:
        for contract in TABLES:
            if contract.name not in sheets:
                continue
            source = f"{path.name}[{contract.name}]"
            sheet = book[contract.name]
            rows = (
                (i, [_cell_text(v) for v in values])
                for i, values in enumerate(sheet.iter_rows(values_only=True), start=1)
                if any(v is not None and str(v).strip() for v in values)
            )
            read = _frame_from_rows(rows, source, problems)
            if read is not None:
                tables[contract.name] = RawTable(contract.name, source, *read, False, path)
    finally:
        book.close()
    return tables, sheets


def read_parquet_table(path: Path, name: str, problems: list[Problem]) -> RawTable | None:
    """Read one Parquet file; rows are numbered as lines after a header line."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        problems.append(
            _structural(
                path.name,
                "unreadable",
                f"not a readable Parquet file ({type(exc).__name__}: {exc})",
            )
        )
        return None
    frame = pd.DataFrame(
        {str(c): [_cell_text(v) for v in df[c].tolist()] for c in df.columns}, dtype=object
    )
    rows = list(zip(range(2, len(frame) + 2), frame.to_numpy().tolist(), strict=True))
    read = _frame_from_rows([(1, list(frame.columns)), *rows], path.name, problems)
    if read is None:
        return None
    return RawTable(name, path.name, *read, False, path)


def _table_files(folder: Path, name: str) -> list[Path]:
    candidates = [folder / f"{name}{s}" for s in (*TEXT_SUFFIXES, ".parquet")]
    return [p for p in candidates if p.is_file()]


def load_raw(path: str | Path) -> RawProgramme:
    """Read the input tables at ``path`` without interpreting them.

    Parameters
    ----------
    path : str or pathlib.Path
        A folder holding ``wards``, ``ward_month`` and optionally ``events`` as ``.csv`` (or
        ``.tsv``/``.txt``) or ``.parquet`` files, or an ``.xlsx`` workbook with sheets of those
        names.

    Returns
    -------
    RawProgramme
        The tables read and the problems met (missing or unreadable files, encodings, ragged
        rows); never raises for bad data.
    """
    path = Path(path)
    problems: list[Problem] = []
    tables: dict[str, RawTable] = {}
    present: set[str] = set()
    if path.is_dir():
        for contract in TABLES:
            found = _table_files(path, contract.name)
            if found:
                present.add(contract.name)
            if len(found) > 1:
                problems.append(
                    _structural(
                        found[0].name,
                        "ambiguous",
                        f"{contract.name} is given "
                        f"twice ({', '.join(p.name for p in found)}); keep one",
                    )
                )
            if len(found) != 1:
                continue
            file = found[0]
            if not file.resolve().is_relative_to(path.resolve()):
                problems.append(
                    _structural(
                        file.name,
                        "outside-folder",
                        f"is a link to a file outside the data folder ({file.resolve().parent}); "
                        "copy the file into the folder",
                    )
                )
                continue
            reader = read_parquet_table if file.suffix == ".parquet" else read_text_table
            table = reader(file, contract.name, problems)
            if table is not None:
                tables[contract.name] = table
        source, where = path.name or str(path), "in the folder"
    elif path.is_file() and path.suffix.lower() == ".xlsx":
        tables, present = read_workbook(path, problems)
        source, where = path.name, "as a sheet of the workbook"
    elif path.exists():
        problems.append(
            _structural(
                path.name,
                "unreadable",
                "give a folder of CSV or Parquet files or an .xlsx workbook",
            )
        )
        return RawProgramme(path, {}, tuple(problems))
    else:
        problems.append(_structural(str(path), "missing-file", "no such file or folder"))
        return RawProgramme(path, {}, tuple(problems))
    for name in REQUIRED_TABLES:
        if name not in present:
            problems.append(
                _structural(
                    source,
                    "missing-file",
                    f"{name} is missing: expected {name}.csv (or .parquet) {where}",
                )
            )
    files = tuple(sorted({t.path for t in tables.values()}))
    return RawProgramme(path, tables, tuple(problems), files)


def write_csv_tables(folder: str | Path, frames: dict[str, pd.DataFrame]) -> Path:
    """Write each frame to ``folder/<name>.csv`` (UTF-8, ``\\n`` line ends, no index)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        (out / f"{name}.csv").write_text(
            frame.to_csv(index=False, lineterminator="\n"), encoding="utf-8"
        )
    return out
