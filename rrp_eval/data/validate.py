"""Validate the input tables and turn their text into typed tables (SPEC §1).

Every problem is reported once as ``file:line:column: message`` saying what is allowed. Errors
are impossible values; warnings are implausible ones (thresholds in ``plausibility`` of the
parameters, documented in docs/methods.md). Errors are classed as structural (the data cannot be
used: files, columns, encodings, unsafe or blank trust codes) or confined to one trust's rows.
Value rules on parsed columns use pandera schemas; parsing, cross-table and time-series rules
are written out here.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from rrp_eval.data.load import RawProgramme, RawTable, load_raw
from rrp_eval.data.problems import (
    ERROR,
    STRUCTURAL,
    TRUST,
    WARNING,
    DataValidationError,
    Problem,
    ValidationReport,
)
from rrp_eval.digest import digest, frame_digest
from rrp_eval.params import PlausibilityParams, ProgrammeParams
from rrp_eval.schema import (
    ALL_WARDS,
    BALANCING_MEASURES,
    EVENT_TYPES,
    EVENTS,
    KEY_PATTERN,
    KEY_RULE,
    MAX_BED_DAYS,
    MAX_COUNT,
    MAX_TEXT_CHARS,
    STANDARD_MEASURES,
    STATUS_SUFFIX,
    STATUS_VALUES,
    TABLES,
    UNSAFE_TEXT,
    WARD_TYPES,
)

logger = logging.getLogger(__name__)

MONTH_RULE = "write months as YYYY-MM, YYYY-MM-01 or 01/MM/YYYY"
COUNT_RULE = "a whole number >= 0, or blank for not recorded"
NUMBER_RULE = "a number >= 0, or blank for not recorded"
_MONTH_FORMATS = (
    (r"^\d{4}-\d{2}$", "%Y-%m"),
    (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d"),
    (r"^\d{2}/\d{2}/\d{4}$", "%d/%m/%Y"),
)
_JUMP_EXPLAINED_BY = ("reconfiguration", "method_break", "system_change")


@dataclass(frozen=True, eq=False)
class ProgrammeData:
    """Typed, validated input tables.

    Attributes
    ----------
    wards : pandas.DataFrame
        One row per ward; ``start_month`` is a first-of-month Timestamp or NaT (comparison ward).
    ward_month : pandas.DataFrame
        One row per ward-month; ``month`` first-of-month Timestamps, bed days and measures as
        floats (NaN = not recorded), ``<measure>_status`` as text.
    events : pandas.DataFrame
        ``trust_code, ward_id, month, type, note`` (empty when there is no events table).
    measures : tuple of str
        Measure columns present in ``ward_month`` (standard ones and those named in the
        parameters).
    report : ValidationReport
        Everything validation found (warnings only, unless errors were allowed through).
    files : tuple of pathlib.Path
        The files read.
    params : ProgrammeParams or None
        The parameters the data were validated with (what an evaluation uses by default).
    """

    wards: pd.DataFrame
    ward_month: pd.DataFrame
    events: pd.DataFrame
    measures: tuple[str, ...]
    report: ValidationReport
    path: Path
    files: tuple[Path, ...]
    params: ProgrammeParams | None = None

    @property
    def trusts(self) -> list[str]:
        """Trust codes in the order of ``wards``."""
        return list(dict.fromkeys(self.wards["trust_code"]))

    def without_wards(self, wards: dict[str, tuple[str, ...]]) -> ProgrammeData:
        """The same data without these wards (``{trust: (ward_id, ...)}``), e.g. the trusts'
        ``exclude_wards``; events recorded for a whole trust (``ALL``) stay."""
        pairs = {(t, w) for t, ws in wards.items() for w in ws}
        if not pairs:
            return self

        def keep(frame: pd.DataFrame) -> pd.DataFrame:
            key = pd.Series(list(zip(frame["trust_code"], frame["ward_id"], strict=True)))
            return frame[~key.isin(pairs).to_numpy()].reset_index(drop=True)

        return dataclasses.replace(
            self,
            wards=keep(self.wards),
            ward_month=keep(self.ward_month),
            events=keep(self.events),
        )

    def only_trust(self, code: str) -> ProgrammeData:
        """The same data with one trust's rows only: what a trust's evaluation sees."""
        return self.without_trusts(t for t in self.trusts if t != code)

    def digest(self) -> str:
        """SHA-256 of the tables' contents and the measures (not of where they came from)."""
        return digest(frame_digest(self.wards, self.ward_month, self.events), list(self.measures))

    def without_trusts(self, codes: Iterable[str]) -> ProgrammeData:
        """The same data without these trusts' rows (the report is kept whole): what every
        programme-level analysis fits when some trusts failed validation."""
        drop = set(codes)
        if not drop:
            return self

        def keep(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[~frame["trust_code"].isin(drop)].reset_index(drop=True)

        return dataclasses.replace(
            self,
            wards=keep(self.wards),
            ward_month=keep(self.ward_month),
            events=keep(self.events),
        )


class _TableCheck:
    """Collects problems for one table, locating them by row and column."""

    def __init__(self, table: RawTable):
        self.table = table
        self.problems: list[Problem] = []
        self.error_rows: set[int] = set()
        self.flagged: set[tuple[int, str | None]] = set()
        frame = table.frame
        self.trust = frame["trust_code"] if "trust_code" in frame else pd.Series("", frame.index)

    def add(
        self,
        rows: pd.Index | np.ndarray | list[int],
        column: str | None,
        rule: str,
        message: Callable[[int], str] | str,
        *,
        severity: str = ERROR,
        scope: str = TRUST,
    ) -> None:
        col = self.table.column_number(column) if column else None
        for i in rows:
            if severity == ERROR:
                self.error_rows.add(int(i))
            self.flagged.add((int(i), column))
            trust = str(self.trust.iloc[i]) or None
            text = message(i) if callable(message) else message
            self.problems.append(
                Problem(
                    severity,
                    scope,
                    rule,
                    text,
                    self.table.source,
                    int(self.table.lines[i]),
                    col,
                    trust,
                )
            )

    def cells(self, column: str) -> pd.Series:
        return self.table.frame[column].astype(str)


def _decimal(text: pd.Series, decimal_comma: bool) -> pd.Series:
    return text.str.replace(",", ".", regex=False) if decimal_comma else text


def _parse_number(
    check: _TableCheck, column: str, *, whole: bool, required: bool = False, ceiling: float
) -> pd.Series:
    """Text to float (NaN for blank or bad); text, fractions, negatives and values above
    ``ceiling`` reported."""
    text = check.cells(column)
    blank = text == ""
    values = pd.to_numeric(_decimal(text, check.table.decimal_comma), errors="coerce").astype(float)
    values = values.where(np.isfinite(values))
    rule = COUNT_RULE if whole else NUMBER_RULE
    bad_text = ~blank & values.isna()
    check.add(
        np.flatnonzero(bad_text),
        column,
        "not-a-number",
        lambda i: f"{column}: {text.iloc[i]!r} is not a number; allowed: {rule}",
    )
    huge = values > ceiling
    check.add(
        np.flatnonzero(huge),
        column,
        "implausible-number",
        lambda i: (
            f"{column}: {text.iloc[i][:20]} is above {ceiling:,.0f}, the most one ward-month "
            "can hold; check the units and the cell"
        ),
    )
    values = values.mask(huge)
    if whole:
        fraction = values.notna() & (values % 1 != 0)
        check.add(
            np.flatnonzero(fraction),
            column,
            "fractional-count",
            lambda i: f"{column}: {text.iloc[i]} is not a whole number; allowed: {rule}",
        )
        values = values.mask(fraction)
    if required:
        check.add(np.flatnonzero(blank), column, "blank", f"{column}: blank; allowed: {rule}")
    return values


def _parse_month(check: _TableCheck, column: str, *, blank_ok: bool) -> pd.Series:
    """Text to first-of-month Timestamps with explicit patterns only."""
    text = check.cells(column)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    matched = pd.Series(False, index=text.index)
    for pattern, fmt in _MONTH_FORMATS:
        hit = text.str.match(pattern) & ~matched
        if hit.any():
            out[hit] = pd.to_datetime(text[hit], format=fmt, errors="coerce")
            matched |= hit
    blank = text == ""
    unreadable = ~blank & out.isna()
    check.add(
        np.flatnonzero(unreadable),
        column,
        "bad-month",
        lambda i: f"{column}: {text.iloc[i]!r} is not a month; {MONTH_RULE}",
    )
    mid = out.notna() & (out.dt.day != 1)
    check.add(
        np.flatnonzero(mid),
        column,
        "mid-month",
        lambda i: f"{column}: {text.iloc[i]} is not the first of a month; {MONTH_RULE}",
    )
    if not blank_ok:
        check.add(
            np.flatnonzero(blank),
            column,
            "blank",
            f"{column}: blank; a month is required ({MONTH_RULE})",
        )
    return out.mask(mid)


def _key_column() -> pa.Column:
    return pa.Column(
        str,
        pa.Check.str_matches(KEY_PATTERN.pattern, error=f"must use {KEY_RULE}"),
        nullable=False,
        coerce=False,
    )


def _count_checks() -> list[pa.Check]:
    return [pa.Check.ge(0, error=f"is negative; allowed: {COUNT_RULE}")]


def _pandera_problems(
    check: _TableCheck, schema: pa.DataFrameSchema, frame: pd.DataFrame, raw: pd.DataFrame
) -> None:
    """Run a pandera schema lazily and report each failing cell with its own message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        reported_keys: set[tuple[str, str]] = set()
        for case in cases.itertuples(index=False):
            column, index = case.column, case.index
            if column is None or index is None or pd.isna(index):
                continue
            i = int(index)
            value = raw[column].iloc[i] if column in raw else case.failure_case
            shown = _shown(value)
            if case.check == "not_nullable":
                text = f"{column}: blank; a value is required"
                rule = "blank"
            else:
                err = next(
                    (
                        c.error
                        for c in schema.columns[column].checks
                        if c.error and c.name == case.check
                    ),
                    case.check,
                )
                text = f"{column}: {shown} {err}"
                rule = case.check
            keyish = column in ("trust_code", "ward_id")
            if keyish and rule != "blank":
                # an unsafe code is one problem however many rows carry it
                if (column, value) in reported_keys:
                    continue
                reported_keys.add((column, value))
                n = int((raw[column] == value).sum())
                text += f" ({n} rows; first here)" if n > 1 else ""
            structural = keyish and (column == "trust_code" or rule != "blank")
            check.add([i], column, rule, text, scope=STRUCTURAL if structural else TRUST)


def _shown(value: object, most: int = 40) -> str:
    """A cell quoted in a message, cut short (a message never carries a whole long cell)."""
    text = repr(value)
    return text if len(text) <= most else f"{text[: most - 5]}...' ({len(str(value))} characters)"


def _missing_columns(table: RawTable, required: tuple[str, ...]) -> list[Problem]:
    present = list(table.frame.columns)
    lower = {c.lower(): c for c in present}
    out = []
    for name in required:
        if name in present:
            continue
        hint = ""
        if name in lower:
            hint = f" (found {lower[name]!r}: column names are lower case)"
        out.append(
            Problem(
                ERROR,
                STRUCTURAL,
                "missing-column",
                f"required column {name!r} is missing{hint}; the header has "
                f"{', '.join(present) or 'no columns'}",
                table.source,
                1,
            )
        )
    if table.frame.empty and not out:
        out.append(
            Problem(
                ERROR,
                STRUCTURAL,
                "empty-table",
                "the table has a header but no data rows",
                table.source,
                1,
            )
        )
    return out


def _duplicates(check: _TableCheck, keys: list[str], what: str, show: Callable[[int], str]) -> None:
    frame = check.table.frame
    dup = frame.duplicated(keys, keep="first")
    if not dup.any():
        return
    first = frame.reset_index().groupby(keys, sort=False)["index"].transform("first")
    check.add(
        np.flatnonzero(dup),
        keys[-1],
        "duplicate",
        lambda i: (
            f"duplicate {what} {show(i)}: also on line {check.table.lines[int(first.iloc[i])]}"
        ),
    )


def _validate_wards(check: _TableCheck) -> pd.DataFrame:
    raw = check.table.frame
    frame = raw.replace("", np.nan)
    out = pd.DataFrame(index=raw.index)
    out["start_month"] = _parse_month(check, "start_month", blank_ok=True)
    if "beds" in raw:
        out["beds"] = _parse_number(check, "beds", whole=True, ceiling=MAX_COUNT)
    columns = {
        "trust_code": _key_column(),
        "ward_id": _key_column(),
        "trust_name": pa.Column(str, nullable=False),
        "ward_type": pa.Column(
            str,
            pa.Check.isin(
                WARD_TYPES, error="is not a ward type; allowed: " + ", ".join(WARD_TYPES)
            ),
            nullable=False,
        ),
    }
    if "beds" in raw:
        columns["beds"] = pa.Column(
            float, pa.Check.ge(0, error=f"is negative; allowed: {COUNT_RULE}"), nullable=True
        )
    schema = pa.DataFrameSchema(columns)
    _pandera_problems(check, schema, frame.assign(**{c: out[c] for c in out if c in columns}), raw)
    _duplicates(
        check,
        ["trust_code", "ward_id"],
        "ward",
        lambda i: f"{raw['trust_code'].iloc[i]}/{raw['ward_id'].iloc[i]}",
    )
    _case_collisions(check, raw)
    names = frame.groupby("trust_code")["trust_name"].nunique()
    for trust in names[names > 1].index:
        rows = np.flatnonzero(raw["trust_code"] == trust)
        check.add(
            rows[:1],
            "trust_name",
            "trust-name",
            f"trust_name: trust {trust} has {names[trust]} different names; use one",
            severity=WARNING,
        )
    typed = raw.copy()
    typed["start_month"] = out["start_month"]
    if "beds" in out:
        typed["beds"] = out["beds"]
    for col in ("ward_name", "cohort", "region"):
        # optional columns are always there once validated (blank when the file has none)
        typed[col] = typed[col].replace("", np.nan) if col in typed else np.nan
    if "beds" not in typed:
        typed["beds"] = np.nan
    return typed


def _case_collisions(check: _TableCheck, raw: pd.DataFrame) -> None:
    """Trust codes that differ only in case (``TB`` and ``tb``): their report files would be
    one file on a case-insensitive share (Windows, macOS, SharePoint)."""
    codes = pd.Series(raw["trust_code"].unique())
    folded = codes.str.casefold()
    for _, group in codes.groupby(folded, sort=False):
        if len(group) < 2:
            continue
        first, *others = list(group)
        for code in others:
            row = int(np.flatnonzero(raw["trust_code"] == code)[0])
            check.add(
                [row],
                "trust_code",
                "case-collision",
                f"trust_code: {code!r} differs from {first!r} only in upper and lower case; "
                "their reports would overwrite each other on a case-insensitive drive, so "
                "give each trust its own code",
                scope=STRUCTURAL,
            )


def _text_cells(check: _TableCheck) -> None:
    """Every text cell: no control or bidirectional-override characters, and not over-long
    (``MAX_TEXT_CHARS``). Codes are checked by their own pattern."""
    frame = check.table.frame
    for column in frame.columns:
        if column in ("trust_code", "ward_id"):
            continue
        text = frame[column].astype(str)
        unsafe = text.str.contains(UNSAFE_TEXT)
        check.add(
            np.flatnonzero(unsafe),
            column,
            "control-character",
            lambda i, text=text, column=column: (
                f"{column}: holds the invisible character "
                f"U+{ord(UNSAFE_TEXT.search(text.iloc[i]).group()):04X} at position "
                f"{UNSAFE_TEXT.search(text.iloc[i]).start() + 1}; control and text-direction "
                "characters are not allowed (they can make a name display as another)"
            ),
        )
        long = text.str.len() > MAX_TEXT_CHARS
        check.add(
            np.flatnonzero(long & ~unsafe),
            column,
            "too-long",
            lambda i, text=text, column=column: (
                f"{column}: {len(text.iloc[i]):,} characters; at most {MAX_TEXT_CHARS:,} "
                "are allowed in a cell"
            ),
        )


def _validate_ward_month(
    check: _TableCheck, measures: tuple[str, ...], wards: pd.DataFrame | None
) -> pd.DataFrame:
    raw = check.table.frame
    frame = raw.replace("", np.nan)
    typed = raw.copy()
    typed["month"] = _parse_month(check, "month", blank_ok=False)
    typed["occupied_bed_days"] = _parse_number(
        check, "occupied_bed_days", whole=False, ceiling=MAX_BED_DAYS
    )
    for m in measures:
        typed[m] = _parse_number(check, m, whole=True, ceiling=MAX_COUNT)
    columns = {"trust_code": _key_column(), "ward_id": _key_column()}
    columns["occupied_bed_days"] = pa.Column(
        float, pa.Check.ge(0, error=f"is negative; allowed: {NUMBER_RULE}"), nullable=True
    )
    for m in measures:
        columns[m] = pa.Column(float, _count_checks(), nullable=True)
    status_cols = [f"{m}{STATUS_SUFFIX}" for m in measures if f"{m}{STATUS_SUFFIX}" in raw]
    for s in status_cols:
        columns[s] = pa.Column(
            str,
            pa.Check.isin(
                STATUS_VALUES,
                error="is not a status; allowed: " + ", ".join(STATUS_VALUES) + ", or blank",
            ),
            nullable=True,
        )
    numeric = ["occupied_bed_days", *measures]
    _pandera_problems(
        check, pa.DataFrameSchema(columns), frame.assign(**{c: typed[c] for c in numeric}), raw
    )
    for c in [*numeric]:
        typed[c] = typed[c].mask(typed[c] < 0)
    for s in status_cols:
        typed[s] = typed[s].replace("", np.nan).where(raw[s].isin(STATUS_VALUES) | (raw[s] == ""))
    _duplicates(
        check,
        ["trust_code", "ward_id", "month"],
        "ward-month",
        lambda i: f"{raw['trust_code'].iloc[i]}/{raw['ward_id'].iloc[i]} {raw['month'].iloc[i]}",
    )
    counts = typed[list(measures)]
    zero_bd = (typed["occupied_bed_days"] == 0) & (counts > 0).any(axis=1)
    check.add(
        np.flatnonzero(zero_bd),
        "occupied_bed_days",
        "counts-without-bed-days",
        "occupied_bed_days: 0 with restrictive practice recorded; 0 is allowed only for a "
        "closed ward with no counts",
    )
    if "prone_restraint" in measures and "physical_restraint" in measures:
        prone = typed["prone_restraint"] > typed["physical_restraint"]
        check.add(
            np.flatnonzero(prone),
            "prone_restraint",
            "prone-above-physical",
            lambda i: (
                f"prone_restraint: {raw['prone_restraint'].iloc[i]} is more than "
                f"physical_restraint ({raw['physical_restraint'].iloc[i]}); prone restraint is "
                "one kind of physical restraint"
            ),
        )
    if wards is not None:
        known = pd.MultiIndex.from_frame(wards[["trust_code", "ward_id"]])
        here = pd.MultiIndex.from_frame(raw[["trust_code", "ward_id"]])
        keys_ok = raw["trust_code"].str.match(KEY_PATTERN) & raw["ward_id"].str.match(KEY_PATTERN)
        unknown = ~here.isin(known) & keys_ok
        trusts = set(wards["trust_code"])
        if unknown.any():
            pairs = raw[unknown].groupby(["trust_code", "ward_id"], sort=False).groups
            for (trust, ward), idx in pairs.items():
                n = f"{len(idx)} row{'s' * (len(idx) > 1)}; first here"
                if trust in trusts:
                    check.add(
                        [int(idx[0])],
                        "ward_id",
                        "unknown-ward",
                        f"ward_id: ward {ward!r} of trust {trust!r} is not in wards.csv ({n})",
                    )
                else:
                    check.add(
                        [int(idx[0])],
                        "trust_code",
                        "unknown-trust",
                        f"trust_code: trust {trust!r} is not in wards.csv ({n})",
                    )
    return typed


def _validate_events(check: _TableCheck, wards: pd.DataFrame | None) -> pd.DataFrame:
    raw = check.table.frame
    frame = raw.replace("", np.nan)
    typed = raw.copy()
    typed["month"] = _parse_month(check, "month", blank_ok=False)
    schema = pa.DataFrameSchema(
        {
            "trust_code": _key_column(),
            "ward_id": _key_column(),
            "type": pa.Column(
                str,
                pa.Check.isin(
                    EVENT_TYPES, error="is not an event type; allowed: " + ", ".join(EVENT_TYPES)
                ),
                nullable=False,
            ),
        }
    )
    _pandera_problems(check, schema, frame, raw)
    if wards is not None:
        trusts = set(wards["trust_code"])
        known = set(zip(wards["trust_code"], wards["ward_id"], strict=True))
        for i, (trust, ward) in enumerate(zip(raw["trust_code"], raw["ward_id"], strict=True)):
            if trust and trust not in trusts:
                check.add(
                    [i], "trust_code", "unknown-trust", f"trust_code: {trust!r} is not in wards.csv"
                )
            elif ward and ward != ALL_WARDS and (trust, ward) not in known:
                check.add(
                    [i],
                    "ward_id",
                    "unknown-ward",
                    f"ward_id: ward {ward!r} of trust {trust!r} is not in wards.csv "
                    f"(use {ALL_WARDS} for the whole trust)",
                )
    if "note" not in typed:
        typed["note"] = ""
    return typed


def _explained(
    events: pd.DataFrame, trust: str, ward: str, month: pd.Timestamp, types: tuple[str, ...]
) -> bool:
    if events.empty:
        return False
    hit = (
        (events["trust_code"] == trust)
        & events["ward_id"].isin([ward, ALL_WARDS])
        & (events["month"] == month)
        & events["type"].isin(types)
    )
    return bool(hit.any())


def _plausibility_warnings(
    check: _TableCheck,
    typed: pd.DataFrame,
    wards: pd.DataFrame,
    events: pd.DataFrame,
    measures: tuple[str, ...],
    rules: PlausibilityParams,
) -> None:
    """Implausible values in rows without errors: each a warning with the threshold it crossed."""
    typed = typed.drop(index=list(check.error_rows))
    obd = typed["occupied_bed_days"]
    for m in measures:
        rate = typed[m] / obd * 1000
        high = rate > rules.max_rate_per_1000_obd
        check.add(
            high.index[high.fillna(False).to_numpy()],
            m,
            "implausible-rate",
            lambda i, m=m, rate=rate: (
                f"{m}: {rate.loc[i]:.0f} per 1,000 occupied bed days "
                f"is above the plausible maximum of {rules.max_rate_per_1000_obd:g}; check the "
                "count and the bed days"
            ),
            severity=WARNING,
        )
    blank_bd = obd.isna() & typed[list(measures)].notna().any(axis=1)
    check.add(
        blank_bd.index[blank_bd.to_numpy()],
        "occupied_bed_days",
        "blank-bed-days",
        "occupied_bed_days: blank alongside recorded counts; no rate can be given for this month",
        severity=WARNING,
    )
    info = wards.drop_duplicates(["trust_code", "ward_id"]).set_index(["trust_code", "ward_id"])
    if "beds" in info:
        beds = pd.MultiIndex.from_frame(typed[["trust_code", "ward_id"]]).map(
            info["beds"].to_dict()
        )
        capacity = np.asarray(beds, dtype=float) * typed["month"].dt.days_in_month
        over = obd > capacity
        check.add(
            over.index[over.fillna(False).to_numpy()],
            "occupied_bed_days",
            "bed-days-above-beds",
            lambda i: (
                f"occupied_bed_days: {obd.loc[i]:g} is more than beds x days in the "
                f"month ({capacity.loc[i]:g})"
            ),
            severity=WARNING,
        )
    valid = typed.dropna(subset=["month"]).sort_values(["trust_code", "ward_id", "month"])
    first_month = valid["month"].min()
    for (trust, ward), g in valid.groupby(["trust_code", "ward_id"], sort=False):
        months = g["month"]
        idx = months.index.to_numpy()
        steps = (months.dt.year * 12 + months.dt.month).diff().to_numpy()
        for pos in np.flatnonzero(steps > 1):
            before, after = months.iloc[pos - 1], months.iloc[pos]
            n = int(steps[pos]) - 1
            check.add(
                [int(idx[pos])],
                "month",
                "gap",
                f"month: ward {trust}/{ward} has no row for the {n} month{'s' * (n > 1)} "
                f"between {before:%Y-%m} and {after:%Y-%m}",
                severity=WARNING,
            )
        onset = (
            (months.iloc[0].year - first_month.year) * 12
            + months.iloc[0].month
            - (first_month.month)
        )
        if onset >= rules.late_onset_months and not _explained(
            events, trust, ward, months.iloc[0], ("reporting_onset",)
        ):
            check.add(
                [int(idx[0])],
                "month",
                "late-onset",
                f"month: ward {trust}/{ward} starts reporting in {months.iloc[0]:%Y-%m}, "
                f"{onset} months after the data begin ({first_month:%Y-%m}); record a "
                "reporting_onset event or check for missing rows",
                severity=WARNING,
            )
        _jump_warnings(check, g, trust, ward, events, measures, rules)
        start = info["start_month"].get((trust, ward), pd.NaT)
        if pd.notna(start):
            _measure_gap_warnings(check, g, trust, ward, measures)
        if pd.notna(start) and start > months.iloc[-1]:
            check.add(
                [int(idx[-1])],
                "month",
                "start-after-data",
                f"month: ward {trust}/{ward} joins in {start:%Y-%m}, after its last month of "
                f"data ({months.iloc[-1]:%Y-%m}): there is no post-intervention period",
                severity=WARNING,
            )


def _measure_gap_warnings(
    check: _TableCheck, g: pd.DataFrame, trust: str, ward: str, measures: tuple[str, ...]
) -> None:
    """A participating ward with bed days that leaves a measure blank in some months and
    records it in others: summed into the trust's series, the gap would look like a change."""
    open_months = g[g["occupied_bed_days"] > 0]
    for m in measures:
        blank = open_months[m].isna()
        if not blank.any() or blank.all():
            continue
        months = open_months.loc[blank, "month"]
        listed = ", ".join(f"{v:%Y-%m}" for v in months.iloc[:6])
        more = f" and {len(months) - 6} more" if len(months) > 6 else ""
        check.add(
            [int(months.index[0])],
            m,
            "measure-gap",
            f"{m}: participating ward {trust}/{ward} has occupied bed days but no {m} in "
            f"{len(months)} month{'s' * (len(months) > 1)} ({listed}{more}) while it records "
            f"it in others; the trust's {m} ITS uses the ward series (stacked) so that the gap "
            "cannot pass for a change",
            severity=WARNING,
        )


def _wards_without_data(check: _TableCheck, ward_month: pd.DataFrame) -> None:
    wards = check.table.frame
    reported = set(zip(ward_month["trust_code"], ward_month["ward_id"], strict=True))
    silent = [
        i
        for i, key in enumerate(zip(wards["trust_code"], wards["ward_id"], strict=True))
        if key not in reported and i not in check.error_rows
    ]
    check.add(
        silent,
        "ward_id",
        "no-data",
        lambda i: f"ward_id: ward {wards['ward_id'].iloc[i]} has no rows in ward_month",
        severity=WARNING,
    )


def _jump_warnings(
    check: _TableCheck,
    g: pd.DataFrame,
    trust: str,
    ward: str,
    events: pd.DataFrame,
    measures: tuple[str, ...],
    rules: PlausibilityParams,
) -> None:
    """Month-on-month jumps in bed days and counts not explained by an event."""
    idx = g.index.to_numpy()
    series = {"occupied_bed_days": (g["occupied_bed_days"], rules.bed_day_jump_ratio, 100.0)}
    for m in measures:
        series[m] = (g[m], rules.count_jump_ratio, float(rules.count_jump_min))
    months = g["month"].to_numpy()
    for column, (values, ratio, floor) in series.items():
        v = values.to_numpy(float)
        prev = np.r_[np.nan, v[:-1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            hi = np.fmax(v, prev)
            lo = np.clip(np.fmin(v, prev), 1e-9, None)
            jump = (hi >= floor) & (hi / lo > ratio) & ~np.isnan(v) & ~np.isnan(prev)
        for pos in np.flatnonzero(jump):
            if jump[pos - 1]:  # the series returning from a jump flagged a month earlier
                continue
            month = pd.Timestamp(months[pos])
            already = {(int(idx[pos]), column), (int(idx[pos - 1]), column)} & check.flagged
            if already or _explained(events, trust, ward, month, _JUMP_EXPLAINED_BY):
                continue
            check.add(
                [int(idx[pos])],
                column,
                "jump",
                f"{column}: {prev[pos]:g} to {v[pos]:g} from "
                f"{pd.Timestamp(months[pos - 1]):%Y-%m} to {month:%Y-%m} (more than x{ratio:g}); "
                "check the data or record the change in events.csv",
                severity=WARNING,
            )


def _measure_columns(
    table: RawTable, params: ProgrammeParams
) -> tuple[tuple[str, ...], list[Problem]]:
    columns = list(table.frame.columns)
    present = [m for m in STANDARD_MEASURES + BALANCING_MEASURES if m in columns]
    problems = []
    for extra in params.extra_measures:
        if extra in columns:
            present.append(extra)
        else:
            problems.append(
                Problem(
                    ERROR,
                    STRUCTURAL,
                    "missing-column",
                    f"measure {extra!r} is named in the parameters but ward_month "
                    "has no such column",
                    table.source,
                    1,
                )
            )
    if not present and not problems:
        problems.append(
            Problem(
                ERROR,
                STRUCTURAL,
                "missing-column",
                "ward_month has no measure column; expected at least one of "
                + ", ".join(STANDARD_MEASURES),
                table.source,
                1,
            )
        )
    return tuple(present), problems


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trust_code": pd.Series(dtype=str),
            "ward_id": pd.Series(dtype=str),
            "month": pd.Series(dtype="datetime64[ns]"),
            "type": pd.Series(dtype=str),
            "note": pd.Series(dtype=str),
        }
    )


def validate_programme(
    raw: RawProgramme, params: ProgrammeParams | None = None
) -> tuple[ProgrammeData | None, ValidationReport]:
    """Check the tables read by :func:`rrp_eval.data.load.load_raw` and type them.

    Parameters
    ----------
    raw : RawProgramme
        The tables as read.
    params : ProgrammeParams, optional
        Measures beyond the standard ones and the plausibility thresholds; defaults if None.

    Returns
    -------
    (ProgrammeData or None, ValidationReport)
        The typed tables (None when a structural error makes them unusable) and every problem.
        Rows with trust-scoped errors stay in the tables; ``report.failed_trusts`` names the
        trusts that must not be analysed.
    """
    params = params or ProgrammeParams()
    problems = list(raw.problems)
    tables = raw.tables
    contracts = {c.name: c for c in TABLES}
    usable = {}
    for name, table in tables.items():
        missing = _missing_columns(table, contracts[name].required)
        problems += missing
        if not missing:
            usable[name] = table
    measures: tuple[str, ...] = ()
    if "ward_month" in usable:
        measures, measure_problems = _measure_columns(usable["ward_month"], params)
        problems += measure_problems
        if measure_problems:
            usable.pop("ward_month")
    wards = ward_month = None
    events = _empty_events()
    checks = {name: _TableCheck(table) for name, table in usable.items()}
    for check in checks.values():
        _text_cells(check)
    if "wards" in checks:
        wards = _validate_wards(checks["wards"])
    if "ward_month" in checks:
        ward_month = _validate_ward_month(checks["ward_month"], measures, wards)
    if "events" in checks:
        events = _validate_events(checks["events"], wards)[[*EVENTS.required, "note"]]
    if wards is not None and ward_month is not None:
        _plausibility_warnings(
            checks["ward_month"], ward_month, wards, events, measures, params.plausibility
        )
        _wards_without_data(checks["wards"], ward_month)
    for check in checks.values():
        problems += check.problems
    report = ValidationReport.from_problems(problems)
    if report.structural_errors or wards is None or ward_month is None:
        return None, report
    ward_month = ward_month.sort_values(["trust_code", "ward_id", "month"], kind="stable")
    data = ProgrammeData(
        wards=wards.reset_index(drop=True),
        ward_month=ward_month.reset_index(drop=True),
        events=events.reset_index(drop=True),
        measures=measures,
        report=report,
        path=raw.path,
        files=raw.files,
        params=params,
    )
    return data, report


def load_programme(
    path: str | Path, params: ProgrammeParams | None = None, *, allow_trust_errors: bool = False
) -> ProgrammeData:
    """Read and validate a programme's data in one step.

    Parameters
    ----------
    path : str or pathlib.Path
        Folder of CSV/Parquet files or an .xlsx workbook (see :func:`load_raw`).
    params : ProgrammeParams, optional
    allow_trust_errors : bool, default False
        Return the data when every error is confined to some trusts (``data.report`` names
        them); otherwise any error raises.

    Raises
    ------
    DataValidationError
        With the full report, when the data cannot be used.
    """
    data, report = validate_programme(load_raw(path), params)
    if data is None or (report.errors and not allow_trust_errors):
        raise DataValidationError(report)
    return data
