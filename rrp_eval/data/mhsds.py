"""NHS Digital MHSDS restrictive-intervention statistics to the SPEC §1 tables.

Reads the monthly publication's provider-level CSVs in either published layout, or the
headerless four-column extracts (period, provider, measure, value), and writes ``wards.csv``
(one ``ALL`` ward per provider, ward type ``all``, no start month), ``ward_month.csv`` (bed days,
the mapped measures and their ``<measure>_status``) and ``events.csv`` (method breaks and
reporting onsets). See docs/methods.md, "MHSDS import", for every rule.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from rrp_eval.data.load import write_csv_tables
from rrp_eval.schema import STANDARD_MEASURES

# measure id (upper case) -> SPEC measure, for the Provider breakdown
PROVIDER_MEASURES = {
    "MHS76": "people_restrained",
    "MHS77": "restrictive_interventions",
    "MHS136": "restrictive_incidents",
}
# MHSDS RestrictiveIntType code -> SPEC measure, for "Provider; Restrictive Intervention Type"
TYPE_MEASURES = {
    1: ("physical_restraint", "prone_restraint"),
    4: ("mechanical_restraint",),
    5: ("seclusion",),
    6: ("segregation",),
    7: ("physical_restraint",),
    8: ("physical_restraint",),
    9: ("physical_restraint",),
    10: ("physical_restraint",),
    11: ("physical_restraint",),
    12: ("physical_restraint",),
    13: ("physical_restraint",),
    14: ("rapid_tranquillisation",),
}
# words that identify a type when the file gives only its description
TYPE_WORDS = (
    ("prone", 1),
    ("mechanical", 4),
    ("seclusion", 5),
    ("segregation", 6),
    ("rapid tranquil", 14),
)
EXTRA_MEASURES = {
    "restrictive_interventions": "Restrictive interventions (MHS77)",
    "restrictive_incidents": "Restrictive intervention incidents (MHS136)",
}
BED_DAY_IDS = {"MHS24"}
BED_DAY_NAMES = {"bed days in rp"}
METHOD_BREAKS = {"2022-07": "MHSDS v5 (July 2022)", "2024-04": "MHSDS method change (April 2024)"}
OUTPUT_MEASURES = (*STANDARD_MEASURES, "restrictive_interventions", "restrictive_incidents")
PRIMARY = ("REPORTING_PERIOD_START", "BREAKDOWN", "PRIMARY_LEVEL", "MEASURE_ID", "MEASURE_VALUE")
LEVELS = ("REPORTING_PERIOD_START", "BREAKDOWN", "LEVEL_ONE", "METRIC", "METRIC_VALUE")
_MONTHS = (
    (re.compile(r"^(\d{4})-(\d{2})$"), ("y", "m")),
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{2})/(\d{2})/(\d{4})$"), ("d", "m", "y")),
)


class MHSDSError(ValueError):
    """An MHSDS file that cannot be read; ``problems`` lists ``file:line:column: message``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the MHSDS files; first: {problems[0]}"
            if problems
            else "no MHSDS rows"
        )


@dataclass
class MHSDSImport:
    """The converted tables and what the conversion did."""

    wards: pd.DataFrame
    ward_month: pd.DataFrame
    events: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def write(self, out: str | Path) -> Path:
        """Write ``wards.csv``, ``ward_month.csv`` and ``events.csv`` (UTF-8, ``\\n``), and a
        ``programme.yaml`` beside them (``rrp-eval run --data DATA --params DATA``)."""
        folder = write_csv_tables(
            out,
            {name: getattr(self, name) for name in ("wards", "ward_month", "events")},
        )
        extras = [m for m in EXTRA_MEASURES if m in self.ward_month.columns]
        lines = [
            "# Written by rrp-eval mhsds: parameters for NHS Digital MHSDS provider-level data.",
            "programme: MHSDS restrictive interventions (provider level)",
            "data: .",
        ]
        if extras:
            lines.append("measures:")
            lines += [f"  {m}: {{label: {EXTRA_MEASURES[m]}, direction: decrease}}" for m in extras]
        (folder / "programme.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder


def parse_month(text: str) -> date | None:
    """A month in exactly one of SPEC §1's forms (``YYYY-MM``, ``YYYY-MM-01``, ``01/MM/YYYY``).

    Each form has its own pattern, so ``2022-02-01`` is 1 February (a day-first parser guessing
    across mixed formats would read 2 January).
    """
    for pattern, parts in _MONTHS:
        m = pattern.match(text.strip())
        if m:
            values = dict(zip(parts, (int(g) for g in m.groups()), strict=True))
            if values.get("d", 1) != 1 or not 1 <= values["m"] <= 12:
                return None
            return date(values["y"], values["m"], 1)
    return None


def _value(text: str) -> tuple[float, bool] | None:
    """A published value: a number, or ``*`` (suppressed). None when unreadable."""
    t = text.strip()
    if t == "*":
        return math_nan(), True
    try:
        v = float(t.replace(",", ""))
    except ValueError:
        return None
    if not np.isfinite(v) or v < 0:
        return None
    return v, False


def math_nan() -> float:
    return float("nan")


def _read_rows(path: Path) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252")  # NHS Digital files are sometimes Windows-1252
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        rows.append((reader.line_num, [c.strip() for c in row]))
    if not rows:
        return None, []
    first = [c.upper() for c in rows[0][1]]
    if "REPORTING_PERIOD_START" in first:
        return first, rows[1:]
    return None, rows


def read_mhsds_file(path: Path, problems: list[str]) -> pd.DataFrame:
    """One file's provider-level rows in a common long form.

    Columns: ``month, provider_code, provider_name, breakdown, type_code, type_name,
    measure_id, measure_name, value, suppressed, source, line``.
    """
    header, rows = _read_rows(path)
    out = []

    def bad(line: int, col: int, message: str) -> None:
        problems.append(f"{path}:{line}:{col}: {message}")

    if header is None:
        layout = "extract"
        if rows and len(rows[0][1]) != 4:
            bad(rows[0][0], 1, f"expected an MHSDS header or 4 columns, found {len(rows[0][1])}")
            return pd.DataFrame()
    else:
        if all(c in header for c in PRIMARY):
            layout = "primary"
        elif all(c in header for c in LEVELS):
            layout = "levels"
        else:
            missing = [c for c in PRIMARY if c not in header]
            bad(1, 1, "not an MHSDS layout: missing " + ", ".join(missing))
            return pd.DataFrame()
        col = {c: i for i, c in enumerate(header)}
    for line, cells in rows:
        if layout == "extract":
            if len(cells) != 4:
                bad(line, 1, f"expected 4 columns, found {len(cells)}")
                continue
            period, name, measure, value = cells
            rec = {
                "provider_code": "",
                "provider_name": name,
                "breakdown": "Provider",
                "type_code": "",
                "type_name": "",
                "measure_id": measure,
                "measure_name": measure,
            }
            vcol = 4
        else:
            if len(cells) < len(header):
                bad(line, len(cells) + 1, f"expected {len(header)} columns, found {len(cells)}")
                continue
            p = "PRIMARY_LEVEL" if layout == "primary" else "LEVEL_ONE"
            s = "SECONDARY_LEVEL" if layout == "primary" else "LEVEL_TWO"
            mid = "MEASURE_ID" if layout == "primary" else "METRIC"
            mv = "MEASURE_VALUE" if layout == "primary" else "METRIC_VALUE"
            mname = "MEASURE_NAME" if layout == "primary" else "METRIC_NAME"

            def cell(name: str, cells: list[str] = cells) -> str:
                return cells[col[name]] if name in col else ""

            period, value = cell("REPORTING_PERIOD_START"), cell(mv)
            rec = {
                "provider_code": cell(p),
                "provider_name": cell(p + "_DESCRIPTION") or cell(p),
                "breakdown": cell("BREAKDOWN"),
                "type_code": cell(s),
                "type_name": cell(s + "_DESCRIPTION"),
                "measure_id": cell(mid),
                "measure_name": cell(mname),
            }
            vcol = col[mv] + 1
        month = parse_month(period)
        if month is None:
            bad(line, 1, f"{period!r} is not a month; MHSDS periods are YYYY-MM-DD or DD/MM/YYYY")
            continue
        parsed = _value(value)
        if parsed is None:
            bad(line, vcol, f"{value!r} is not a count: a number >= 0 or * (suppressed)")
            continue
        rec.update(
            month=pd.Timestamp(month),
            value=parsed[0],
            suppressed=parsed[1],
            source=str(path),
            line=line,
        )
        out.append(rec)
    return pd.DataFrame(out)


def provider_code(name: str) -> str:
    """A stable code from a provider's name: its initials and 4 hex digits of its hash."""
    norm = re.sub(r"\s+", " ", name.strip().upper())
    initials = "".join(w[0] for w in re.findall(r"[A-Z0-9]+", norm))[:8] or "P"
    return f"{initials}_{hashlib.sha256(norm.encode()).hexdigest()[:4].upper()}"


def _type_code(code: str, name: str) -> int | None:
    digits = re.sub(r"\D", "", code)
    if digits and code.strip().isdigit():
        return int(digits)
    low = f"{code} {name}".lower()
    for word, k in TYPE_WORDS:
        if word in low:
            return k
    return None


def _ods_map(path: Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = {c.lower(): c for c in frame.columns}
    if "name" not in cols or "code" not in cols:
        raise ValueError(f"{path}: an ODS map needs columns name and code (optional region)")
    out = {}
    for row in frame.itertuples(index=False):
        rec = row._asdict()
        name = rec[cols["name"]].strip().upper()
        code = rec[cols["code"]].strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]+", code):
            raise ValueError(f"{path}: ODS code {code!r} for {name!r}: letters, digits, - and _")
        out[name] = {"code": code, "region": rec.get(cols.get("region", ""), "") or ""}
    return out


def convert_mhsds(files: list[str | Path], ods_map: str | Path | None = None) -> MHSDSImport:
    """Convert MHSDS files to the SPEC tables (see the module docstring).

    Raises
    ------
    MHSDSError
        Listing every unreadable row as ``file:line:column: message``.
    """
    paths = _expand(files)
    problems: list[str] = []
    frames = [read_mhsds_file(p, problems) for p in paths]
    if problems:
        raise MHSDSError(problems)
    long = pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else None
    if long is None or long.empty:
        raise MHSDSError([f"{', '.join(map(str, paths))}: no MHSDS rows"])
    warnings: list[str] = []
    bd = long["breakdown"].str.lower().str.strip()
    long = long[bd.isin(["provider", "provider; restrictive intervention type"])].copy()
    long["breakdown"] = bd[long.index]
    mapping = _ods_map(Path(ods_map) if ods_map else None)
    names = long["provider_name"].str.strip().str.upper().str.replace(r"\s+", " ", regex=True)
    long["provider_name"] = names
    unknown = names.eq("UNKNOWN") | long["provider_code"].str.upper().eq("UNKNOWN")
    if unknown.any():
        warnings.append(f"{int(unknown.sum())} rows for provider UNKNOWN dropped")
        long = long[~unknown]
    long["trust_code"] = [
        mapping[n]["code"] if n in mapping else (c if _safe(c) else provider_code(n))
        for n, c in zip(long["provider_name"], long["provider_code"], strict=True)
    ]
    mid = long["measure_id"].str.upper().str.strip()
    is_beds = mid.isin(BED_DAY_IDS) | long["measure_name"].str.lower().isin(BED_DAY_NAMES)
    months = sorted(long["month"].unique())
    ri = long[~is_beds]
    providers = sorted(ri["trust_code"].unique())
    dropped = set(long["trust_code"]) - set(providers)
    if dropped:
        warnings.append(
            f"{len(dropped)} providers with bed days but no restrictive-intervention row in any "
            "month left out"
        )
    index = pd.MultiIndex.from_product(
        [providers, pd.DatetimeIndex(months)], names=["trust_code", "month"]
    )
    reported = set(zip(long["trust_code"], long["month"], strict=True))
    out = pd.DataFrame(index=index)
    beds = long[is_beds].drop_duplicates(["trust_code", "month"]).set_index(["trust_code", "month"])
    out["occupied_bed_days"] = beds["value"].reindex(index)
    values: dict[str, pd.Series] = {}
    status: dict[str, pd.Series] = {}
    # Provider breakdown: one published value per measure
    prov = ri[ri["breakdown"] == "provider"]
    for measure_id, measure in PROVIDER_MEASURES.items():
        rows = prov[prov["measure_id"].str.upper() == measure_id]
        if rows.empty:
            continue
        rows = rows.drop_duplicates(["trust_code", "month"]).set_index(["trust_code", "month"])
        v, s = _published(rows, index, reported)
        values[measure], status[measure] = v, s
    # Provider; Restrictive Intervention Type: sums of types
    typed = ri[(ri["breakdown"] != "provider") & (ri["measure_id"].str.upper() == "MHS77")]
    if len(typed):
        typed = typed.assign(
            type_k=[_type_code(c, n) for c, n in zip(typed.type_code, typed.type_name, strict=True)]
        )
        wanted: dict[str, list[int]] = {}
        for k, ms in TYPE_MEASURES.items():
            for m in ms:
                wanted.setdefault(m, []).append(k)
        for measure, kinds in wanted.items():
            rows = typed[typed["type_k"].isin(kinds)]
            if rows.empty:
                continue
            v, s = _summed(rows, index, reported)
            values[measure], status[measure] = v, s
    for m in OUTPUT_MEASURES:
        if m in values:
            out[m] = values[m]
            out[f"{m}_status"] = status[m]
    out = out.reset_index()
    out["ward_id"] = "ALL"
    out["month"] = out["month"].dt.strftime("%Y-%m")
    cols = ["trust_code", "ward_id", "month", "occupied_bed_days"] + [
        c for c in out.columns if c in values or c.removesuffix("_status") in values
    ]
    ward_month = out[cols]
    first_name = long.drop_duplicates("trust_code").set_index("trust_code")["provider_name"]
    wards = pd.DataFrame(
        {
            "trust_code": providers,
            "trust_name": [first_name[p].title().replace("Nhs", "NHS") for p in providers],
            "ward_id": "ALL",
            "ward_name": "",
            "ward_type": "all",
            "start_month": "",
            "cohort": "",
            "region": [
                next(
                    (v["region"] for n, v in mapping.items() if v["code"] == p),
                    "",
                )
                for p in providers
            ],
            "beds": "",
        }
    )
    events = _events(ward_month, months, values)
    return MHSDSImport(wards, ward_month, events, warnings, paths)


def _safe(code: str) -> bool:
    return bool(code) and code.upper() != "UNKNOWN" and bool(re.fullmatch(r"[A-Za-z0-9_-]+", code))


def _expand(files: list[str | Path]) -> list[Path]:
    paths: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            paths.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() == ".csv"))
        elif p.is_file():
            paths.append(p)
        else:
            raise MHSDSError([f"{p}: no such file or folder"])
    if not paths:
        raise MHSDSError([f"{', '.join(map(str, files))}: no .csv files"])
    return paths


def _with_status(
    value: pd.Series, present: pd.Series, suppressed: pd.Series, reported: set
) -> tuple[pd.Series, pd.Series]:
    """Values and statuses per provider-month: ``rounded5`` where published, blank and
    ``suppressed`` where (a part was) suppressed, 0 and ``inferred_zero`` where the provider
    reported that month but published no row, blank otherwise."""
    index = value.index
    was_reported = pd.Series([k in reported for k in index], index=index)
    infer = ~present & was_reported
    value = value.where(~suppressed).where(~infer, 0.0)
    status = pd.Series("", index=index, dtype=object)
    status[present & ~suppressed] = "rounded5"
    status[suppressed] = "suppressed"
    status[infer] = "inferred_zero"
    return value, status


def _published(
    rows: pd.DataFrame, index: pd.MultiIndex, reported: set
) -> tuple[pd.Series, pd.Series]:
    """A published count per provider-month: value, or blank with its status."""
    suppressed = rows["suppressed"].reindex(index).fillna(False).astype(bool)
    present = pd.Series(index.isin(rows.index), index=index)
    return _with_status(rows["value"].reindex(index), present, suppressed, reported)


def _summed(rows: pd.DataFrame, index: pd.MultiIndex, reported: set) -> tuple[pd.Series, pd.Series]:
    """A sum over intervention types: blank if any part is suppressed."""
    g = rows.groupby(["trust_code", "month"])
    total = g["value"].sum(min_count=1)
    present = pd.Series(index.isin(total.index), index=index)
    suppressed = g["suppressed"].any().reindex(index).fillna(False).astype(bool)
    return _with_status(total.reindex(index), present, suppressed, reported)


def _events(ward_month: pd.DataFrame, months: list, values: dict) -> pd.DataFrame:
    """Method breaks inside each provider's data, and reporting onsets after the first month."""
    rows = []
    first_month = pd.Timestamp(months[0]).strftime("%Y-%m")
    measure_cols = [m for m in OUTPUT_MEASURES if m in values]
    has = ward_month[measure_cols].notna().any(axis=1) if measure_cols else None
    for trust, g in ward_month.groupby("trust_code", sort=True):
        g_has = g[has[g.index]] if has is not None else g
        if g_has.empty:
            continue
        span = (g_has["month"].min(), g_has["month"].max())
        for month, note in METHOD_BREAKS.items():
            if span[0] < month <= span[1]:
                rows.append((trust, "ALL", month, "method_break", note))
        if span[0] > first_month:
            rows.append(
                (trust, "ALL", span[0], "reporting_onset", "first month with published figures")
            )
    return pd.DataFrame(rows, columns=["trust_code", "ward_id", "month", "type", "note"])
