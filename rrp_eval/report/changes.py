"""What changed since the last run (the monthly refresh): new or ended special causes,
conclusions that changed, months that are new or were revised (late returns), data-quality
findings that are new or resolved, trusts added or dropped.

A run is read as a :class:`RunSnapshot` (its shared tables, its data-quality findings and the
digests of each trust-month of its data); :func:`changes_between` compares two snapshots into
the ``changes.csv`` table and :func:`changes_markdown` says it in a few bullets for the index
(the programme view) and each trust's page.

Disclosure: everything this module writes says only months, measure names, verdict words, rate
ratios and their intervals, probabilities and validation rule names, all of which the shared
tables already publish; no count, bed-day figure or validation message (a message can quote a
cell) is ever copied into the table or the text. The month digests that tell a revised month
are kept only in the run's private state file beside the output folder
(:func:`~rrp_eval.report.manifest.state_path`), never in the shared folder: a hash of a small
count can be brute-forced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.evaluate.findings import AIM_RR, join_words, percent_change, verdict

logger = logging.getLogger(__name__)

#: the private state's key holding :func:`month_digests`
MONTH_DIGESTS_KEY = "month_digests"
#: the private state's key holding :func:`finding_records` (the validation findings' keys)
FINDINGS_KEY = "quality_findings"

CHANGE_COLUMNS = ["trust_code", "measure", "kind", "before", "after", "text"]

#: every kind of change, in the order a trust's changes are listed (conclusions first)
KINDS = (
    "conclusion_changed",
    "interval_now_excludes_1",
    "interval_now_includes_1",
    "probability_crossed",
    "special_cause_new",
    "special_cause_ended",
    "icon_changed",
    "trust_added",
    "trust_dropped",
    "finding_new",
    "finding_resolved",
    "revised_month",
    "new_month",
)
#: the kinds that change what a trust's results say (one row per trust and measure at most)
CONCLUSION_KINDS = (
    "conclusion_changed",
    "interval_now_excludes_1",
    "interval_now_includes_1",
    "probability_crossed",
)
SPECIAL_CAUSE_KINDS = ("special_cause_new", "special_cause_ended", "icon_changed")
FINDING_KINDS = ("finding_new", "finding_resolved")
MONTH_KINDS = ("revised_month", "new_month")

#: the probability of meeting the programme's aim (a rate ratio of 0.75 or less)
AIM_COLUMN = "p_rr_le_0_75"
#: the trust code of programme-wide rows (e.g. the programme's aim probability)
PROGRAMME = "programme"

#: the most bullets :func:`changes_markdown` lists before "and N more"
MAX_BULLETS = 12


@dataclass(frozen=True)
class RunSnapshot:
    """What one run said, as far as the comparison needs it.

    ``its_effects``, ``spc_signals`` and ``aims`` are the run's ``tables/its_effects.csv``,
    ``tables/spc_signals.csv`` and ``tables/aim_probabilities.csv`` (an empty frame when the
    run did not write one: nothing of it is compared). ``findings`` are the validation
    findings (columns ``trust_code``, ``rule`` or ``kind``, optionally ``severity``,
    ``source`` and ``column``; a message is never read): a frame *without* a ``rule``/``kind``
    column means "not known" and no finding change is reported, a frame with the columns and
    no rows means "no findings". ``months`` is :func:`month_digests` of the run's data
    (``{}``: not known, no month change is reported). ``label`` says which run it was (e.g.
    its ``created_utc``).
    """

    its_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    spc_signals: pd.DataFrame = field(default_factory=pd.DataFrame)
    aims: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: pd.DataFrame = field(default_factory=pd.DataFrame)
    months: dict[str, dict[str, str]] = field(default_factory=dict)
    label: str = ""


# --- month digests ---------------------------------------------------------------------------


_BLANK = "\x00"


def _canonical_column(values: pd.Series) -> pd.Series:
    """A column's cells as text that does not depend on its dtype: numbers as ``n:5`` (5 and
    5.0 alike) or ``n:0.25``, dates as ``d:2024-01-01``, text as ``s:...``, blanks alike."""
    index = values.index
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        arr = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        out = np.full(len(arr), _BLANK, dtype=object)
        whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2.0**53)
        out[whole] = [f"n:{v}" for v in arr[whole].astype(np.int64).tolist()]
        other = ~np.isnan(arr) & ~whole
        out[other] = [f"n:{v!r}" for v in arr[other].tolist()]
        return pd.Series(out, index=index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S").str.removesuffix("T00:00:00")
        return ("d:" + text.astype(object)).where(values.notna(), _BLANK).astype(object)
    text = values.astype(object)
    blank = text.isna()
    return ("s:" + text.where(~blank, "").astype(str)).where(~blank, _BLANK).astype(object)


def _month_labels(months: pd.Series) -> pd.Series:
    """``YYYY-MM`` of each month ("" where it is not a date)."""
    dates = pd.to_datetime(months, errors="coerce")
    return dates.dt.strftime("%Y-%m").astype(object).where(dates.notna(), "")


def month_digests(ward_month: pd.DataFrame) -> dict[str, dict[str, str]]:
    """A SHA-256 digest of each trust's rows of each month: ``{trust: {"YYYY-MM": digest}}``.

    The digest covers every column (in name order) of every row of that trust and month, and
    does not depend on the order of the rows or columns or on a column's dtype (5 and 5.0 are
    the same value); it changes when any value of that trust-month changes, when a row is
    added or removed, or when the columns change. A later run compares them to tell a revised
    month (a late return or a correction) from an unchanged one.

    PRIVATE: these digests may only be kept in the run's private state file beside the output
    folder (:func:`~rrp_eval.report.manifest.state_path`), never in the shared output folder,
    ``run.json`` or any table: a trust-month's counts are small numbers, so a hash of them can
    be brute-forced to recover them.

    Rows without a trust code or a readable month are left out; a frame without the
    ``trust_code`` or ``month`` column gives ``{}``.
    """
    if not isinstance(ward_month, pd.DataFrame) or ward_month.empty:
        return {}
    if "trust_code" not in ward_month.columns or "month" not in ward_month.columns:
        return {}
    frame = ward_month.reset_index(drop=True)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    names = sorted(frame.columns, key=str)
    header = json.dumps([str(c) for c in names]).encode()
    lines = pd.Series("", index=frame.index, dtype=object)
    for i, c in enumerate(names):
        lines = (lines + "\x1f" if i else lines) + _canonical_column(frame[c])
    trusts = frame["trust_code"].astype(object).where(frame["trust_code"].notna(), "")
    keyed = pd.DataFrame(
        {
            "trust": trusts.astype(str).str.strip(),
            "month": _month_labels(frame["month"]),
            "line": lines,
        }
    )
    keyed = keyed[(keyed["trust"] != "") & (keyed["month"] != "")]
    keyed = keyed.sort_values(["trust", "month", "line"], kind="mergesort")
    out: dict[str, dict[str, str]] = {}
    for (trust, month), rows in keyed.groupby(["trust", "month"], sort=False):
        h = hashlib.sha256(header)
        for line in rows["line"]:
            h.update(b"\x1e" + line.encode())
        out.setdefault(str(trust), {})[str(month)] = h.hexdigest()
    return out


def finding_records(findings: pd.DataFrame | None) -> list[dict[str, str]]:
    """The keys of validation findings (``ValidationReport.to_frame()`` or
    ``DataQuality.findings``) as JSON-able records, each once: ``trust_code``, ``severity``,
    ``rule``, ``source`` and ``column``. Never the message (it can quote a cell) nor the line
    (it moves when rows are added), so that a finding is the same finding next month."""
    keys = _finding_keys(findings if findings is not None else pd.DataFrame(columns=["rule"]))
    if keys is None:
        return []
    return [
        dict(zip(("trust_code", "severity", "rule", "source", "column"), k, strict=True))
        for k in sorted(keys)
    ]


def state_entries(
    ward_month: pd.DataFrame | None = None, findings: pd.DataFrame | None = None
) -> dict[str, Any]:
    """What a run adds to its PRIVATE state file (the full manifest at ``state_path``) for the
    next run's comparison: ``month_digests`` (:func:`month_digests`) and ``quality_findings``
    (:func:`finding_records`). Never to ``run.json`` or anything in the output folder."""
    out: dict[str, Any] = {}
    if ward_month is not None:
        out[MONTH_DIGESTS_KEY] = month_digests(ward_month)
    if findings is not None:
        out[FINDINGS_KEY] = finding_records(findings)
    return out


# --- reading a previous run ------------------------------------------------------------------

_TEXT_COLUMNS = (
    "trust_code",
    "measure",
    "status",
    "message",
    "series",
    "chart",
    "last_month",
    "last_point_type",
    "variation_icon",
    "assurance_icon",
)


def _read_table(tables: Path, name: str) -> pd.DataFrame | None:
    """``tables/<name>.csv`` (else its Parquet copy), without an internal run's ``marking``
    column; None when neither can be read."""
    frame = None
    csv = tables / f"{name}.csv"
    if csv.is_file():
        try:
            frame = pd.read_csv(csv, dtype=dict.fromkeys(_TEXT_COLUMNS, str), keep_default_na=True)
        except Exception:  # an unreadable table is a table the run did not write
            frame = None
    parquet = tables / "parquet" / f"{name}.parquet"
    if frame is None and parquet.is_file():
        try:
            frame = pd.read_parquet(parquet)
        except Exception:  # no Parquet engine, or a damaged file
            frame = None
    if frame is None:
        return None
    return frame.drop(columns=["marking"], errors="ignore")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _months_from_state(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for trust, months in value.items():
        if isinstance(months, dict):
            kept = {str(m): str(d) for m, d in months.items() if isinstance(d, str)}
            if kept:
                out[str(trust)] = kept
    return out


def _findings_from_state(value: Any) -> pd.DataFrame:
    """The stored finding records as a frame; with no records stored: a frame without
    columns (not known)."""
    if not isinstance(value, list):
        return pd.DataFrame()
    rows = [r for r in value if isinstance(r, dict)]
    columns = ["trust_code", "severity", "rule", "source", "column"]
    return pd.DataFrame(rows, columns=columns).fillna("")


def snapshot_from_folder(out_dir: Path) -> RunSnapshot | None:
    """The run whose reports are in ``out_dir`` (read before the next run replaces them).

    Reads ``tables/its_effects.csv``, ``tables/spc_signals.csv`` and, where there is one,
    ``tables/aim_probabilities.csv`` (each from its Parquet copy when the CSV cannot be read;
    an internal run's ``marking`` column dropped; a missing table gives an empty frame); the
    label from ``run.json``'s ``created_utc``; and, from the run's PRIVATE state file
    (:func:`~rrp_eval.report.manifest.state_path`, used only when it belongs to the run in the
    folder: :func:`~rrp_eval.report.incremental.previous_outputs`), the month digests under
    ``month_digests`` and the validation findings' keys under ``quality_findings``.

    Data-quality findings: a run writes none of them anywhere readable except these
    ``quality_findings`` records (the data-quality page shows them only as HTML); a run
    without them gives a findings frame without columns (not known: no finding change is
    reported). Likewise a run without ``month_digests`` gives ``months={}``.

    Returns None (never raises) when the folder does not exist or holds no run (no
    ``run.json`` and none of the tables).
    """
    from rrp_eval.report.incremental import previous_outputs

    try:
        out_dir = Path(out_dir)
        if not out_dir.is_dir():
            return None
        tables = out_dir / "tables"
        its = _read_table(tables, "its_effects")
        spc = _read_table(tables, "spc_signals")
        aims = _read_table(tables, "aim_probabilities")
        manifest = _read_json(out_dir / "run.json")
        if its is None and spc is None and aims is None and manifest is None:
            return None
        state = previous_outputs(out_dir)
    except OSError:
        return None
    label = str((manifest or {}).get("created_utc") or state.get("created_utc") or "")
    return RunSnapshot(
        its_effects=its if its is not None else pd.DataFrame(),
        spc_signals=spc if spc is not None else pd.DataFrame(),
        aims=aims if aims is not None else pd.DataFrame(),
        findings=_findings_from_state(state.get(FINDINGS_KEY)),
        months=_months_from_state(state.get(MONTH_DIGESTS_KEY)),
        label=label,
    )


# --- comparing two runs ----------------------------------------------------------------------


def _text(value: Any) -> str:
    """A cell as text ("" for a blank)."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def _frame(frame: Any, *needed: str) -> pd.DataFrame | None:
    """``frame`` when it is a data frame with the ``needed`` columns, else None."""
    if not isinstance(frame, pd.DataFrame) or any(c not in frame.columns for c in needed):
        return None
    return frame


def _keyed(frame: pd.DataFrame, keys: list[str]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Rows by their key (text), the last of duplicates kept."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        out[tuple(_text(row.get(k)) for k in keys)] = row
    return out


def _trusts(frame: Any) -> set[str] | None:
    f = _frame(frame, "trust_code")
    if f is None or f.empty:
        return None
    return {t for t in map(_text, f["trust_code"]) if t and t != PROGRAMME}


def _label(measure: str, labels: Mapping[str, str] | None) -> str:
    if labels and measure in labels:
        return str(labels[measure])
    text = measure.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _row(trust: str, measure: str, kind: str, before: str, after: str, text: str) -> dict:
    return dict(zip(CHANGE_COLUMNS, (trust, measure, kind, before, after, text), strict=True))


def _trust_changes(before: RunSnapshot, after: RunSnapshot) -> tuple[list[dict], set[str] | None]:
    """Trusts added and dropped, judged on the sources both runs have; and the trusts in both
    (None: no source to tell, compare everything)."""
    sources = []
    for get in (
        lambda s: _trusts(s.its_effects),
        lambda s: _trusts(s.spc_signals),
        lambda s: set(s.months) if s.months else None,
    ):
        b, a = get(before), get(after)
        if b is not None and a is not None:
            sources.append((b, a))
    if not sources:
        return [], None
    b_all = set().union(*(b for b, _ in sources))
    a_all = set().union(*(a for _, a in sources))
    rows = [
        _row(
            t,
            "",
            "trust_added",
            "",
            "in this run",
            f"Trust {t} is new in this run: its results are reported for the first time.",
        )
        for t in sorted(a_all - b_all)
    ]
    rows += [
        _row(
            t,
            "",
            "trust_dropped",
            "in the last run",
            "",
            f"Trust {t} was in the last run but is not in this one (its data were not supplied "
            "or were left out).",
        )
        for t in sorted(b_all - a_all)
    ]
    return rows, b_all & a_all


def _interval(v: Any) -> str:
    return f"{v.word}: {v.estimate:.2f} ({v.ci_low:.2f} to {v.ci_high:.2f})"


def _horizon(row: Mapping[str, Any]) -> str:
    h = _number(row.get("horizon_months"))
    return f"{h:.0f} months" if math.isfinite(h) and h > 0 else "the programme's horizon"


def _conclusions(
    before: pd.DataFrame,
    after: pd.DataFrame,
    keep: set[str] | None,
    directions: Mapping[str, str],
    labels: Mapping[str, str] | None,
) -> list[dict]:
    """Verdicts on ``rr_h`` that changed, for rows with status ok in both runs."""
    b_f, a_f = _frame(before, "trust_code", "measure"), _frame(after, "trust_code", "measure")
    if b_f is None or a_f is None:
        return []
    b_rows, a_rows = _keyed(b_f, ["trust_code", "measure"]), _keyed(a_f, ["trust_code", "measure"])
    rows = []
    for key in sorted(set(b_rows) & set(a_rows)):
        trust, measure = key
        if not trust or not measure or (keep is not None and trust not in keep):
            continue
        b, a = b_rows[key], a_rows[key]
        if any(_text(r.get("status", "ok")) not in ("ok", "") for r in (b, a)):
            continue
        direction = directions.get(measure, "decrease")
        try:
            vb = verdict(_effect(b), "rr_h", direction)
            va = verdict(_effect(a), "rr_h", direction)
        except (TypeError, ValueError):
            continue
        if "not estimated" in (vb.word, va.word) or vb.word == va.word:
            continue
        b_excl, a_excl = not vb.ci_low <= 1 <= vb.ci_high, not va.ci_low <= 1 <= va.ci_high
        name, h = _label(measure, labels), _horizon(a)
        was = (
            f"at the last run it was '{vb.word}' (rate ratio {vb.estimate:.2f}, 95% CI "
            f"{vb.ci_low:.2f} to {vb.ci_high:.2f})"
        )
        if a_excl and not b_excl:
            kind = "interval_now_excludes_1"
            text = (
                f"{name}: the verdict is now '{va.word}', {va.numbers} at {h}, as the 95% "
                f"interval no longer includes no change; {was}."
            )
        elif b_excl and not a_excl:
            kind = "interval_now_includes_1"
            text = (
                f"{name}: the verdict is now '{va.word}', {va.numbers} at {h}, as the 95% "
                f"interval now includes no change; {was}."
            )
        else:
            kind = "conclusion_changed"
            text = f"{name}: the verdict is now '{va.word}', {va.numbers} at {h}; {was}."
        rows.append(_row(trust, measure, kind, _interval(vb), _interval(va), text))
    return rows


def _effect(row: Mapping[str, Any]) -> dict[str, Any]:
    """The headline effect's numbers as floats (a CSV cell may be text)."""
    out = {k: _number(row.get(k)) for k in ("rr_h", "rr_h_low", "rr_h_high")}
    out["status"], out["message"] = _text(row.get("status")), _text(row.get("message"))
    return out


def _aim_words(column: str) -> str:
    """What a probability column is the probability of: ``p_rr_le_0_75`` -> ``the rate is at
    least 25% lower than expected without the programme (the aim)``."""
    m = re.fullmatch(r"p_rr_(le|lt)_(\d+)_?(\d*)", column)
    if not m:
        return "the programme's aim is met"
    value = float(f"{m.group(2)}.{m.group(3) or 0}")
    if value >= 1:
        return "the rate is lower than expected without the programme"
    aim = " (the programme's aim)" if abs(value - AIM_RR) < 1e-9 else ""
    return f"the rate is at least {percent_change(value)} than expected without the programme{aim}"


def _probabilities(
    before: pd.DataFrame,
    after: pd.DataFrame,
    keep: set[str] | None,
    threshold: float,
    column: str,
    labels: Mapping[str, str] | None,
) -> list[dict]:
    """The probability in ``column`` that crossed ``threshold`` (either way)."""
    b_f = _frame(before, "trust_code", "measure", column)
    a_f = _frame(after, "trust_code", "measure", column)
    if b_f is None or a_f is None:
        return []
    b_rows, a_rows = _keyed(b_f, ["trust_code", "measure"]), _keyed(a_f, ["trust_code", "measure"])
    aim = _aim_words(column)
    rows = []
    for key in sorted(set(b_rows) & set(a_rows)):
        trust, measure = key
        if not trust or not measure:
            continue
        if trust != PROGRAMME and keep is not None and trust not in keep:
            continue
        pb, pa = _number(b_rows[key].get(column)), _number(a_rows[key].get(column))
        if not (math.isfinite(pb) and math.isfinite(pa)):
            continue
        up = pb < threshold <= pa
        down = pa < threshold <= pb
        if not (up or down):
            continue
        name = _label(measure, labels)
        lead = f"Across the programme, {name.lower()}" if trust == PROGRAMME else name
        text = (
            f"{lead}: the probability that {aim} "
            f"{'rose' if up else 'fell'} from {pb:.2f} to {pa:.2f}, "
            f"{'reaching' if up else 'dropping below'} {threshold:g}."
        )
        rows.append(_row(trust, measure, "probability_crossed", f"{pb:.2f}", f"{pa:.2f}", text))
    return rows


def _signal(row: Mapping[str, Any] | None) -> tuple[str, str]:
    """(category, side) of an SPC row's latest point: category ``improvement``, ``concern``,
    ``neutral``, ``common`` or "" (no chart); side ``high``, ``low`` or ""."""
    if row is None:
        return "", ""
    icon = _text(row.get("variation_icon"))
    for cat in ("improvement", "concern", "neutral"):
        if icon.startswith(cat):
            return cat, icon.rsplit("_", 1)[-1] if "_" in icon else ""
    if icon == "common_cause":
        return "common", ""
    point = _text(row.get("last_point_type"))  # an older table without the icon
    for cat in ("improvement", "concern", "neutral"):
        if point.startswith(f"special_cause_{cat}"):
            return cat, point.rsplit("_", 1)[-1] if cat == "neutral" else ""
    return ("common", "") if point == "common_cause" else ("", "")


_SIDE = {"high": " (rate higher than expected)", "low": " (rate lower than expected)"}


def _signal_words(cat: str, side: str) -> str:
    if cat == "common":
        return "common cause"
    if cat == "":
        return "no chart"
    return f"special-cause {_cat_word(cat)}{_SIDE.get(side, '')}"


def _special_causes(
    before: pd.DataFrame,
    after: pd.DataFrame,
    keep: set[str] | None,
    labels: Mapping[str, str] | None,
) -> list[dict]:
    """Special causes in the latest month that are new, ended or changed (per trust, measure
    and, where both tables have it, series)."""
    b_f, a_f = _frame(before, "trust_code", "measure"), _frame(after, "trust_code", "measure")
    if b_f is None or a_f is None:
        return []
    if not any(c in f.columns for f in (b_f, a_f) for c in ("variation_icon", "last_point_type")):
        return []
    keys = ["trust_code", "measure"] + (
        ["series"] if "series" in b_f.columns and "series" in a_f.columns else []
    )
    b_rows, a_rows = _keyed(b_f, keys), _keyed(a_f, keys)
    charted = {k[0] for k in b_rows} & {k[0] for k in a_rows}  # trusts in both tables
    rows = []
    for key in sorted(set(b_rows) | set(a_rows)):
        trust, measure = key[0], key[1]
        if not trust or not measure or trust == PROGRAMME or trust not in charted:
            continue
        if keep is not None and trust not in keep:
            continue
        b, a = b_rows.get(key), a_rows.get(key)
        (cb, sb), (ca, sa) = _signal(b), _signal(a)
        special_b, special_a = cb not in ("", "common"), ca not in ("", "common")
        name = _label(measure, labels)
        series = f" ({key[2]})" if len(key) > 2 and key[2] and _several_series(a_f, b_f) else ""
        last_a = _text(a.get("last_month")) if a else ""
        last_b = _text(b.get("last_month")) if b else ""
        latest = f" ({last_a})" if last_a else ""
        if special_a and not special_b:
            kind = "special_cause_new"
            text = (
                f"{name}{series}: the latest month{latest} shows a new special-cause "
                f"{_cat_word(ca)}{_SIDE.get(sa, '')}; the last run showed "
                f"{'common-cause variation' if cb == 'common' else 'no special cause'}."
            )
        elif special_b and not special_a:
            kind = "special_cause_ended"
            seen = f" seen in {last_b}" if last_b else ""
            text = (
                f"{name}{series}: the special-cause {_cat_word(cb)}{seen} has ended; the latest "
                f"month{latest} shows "
                f"{'common-cause variation' if ca == 'common' else 'no chart'}."
            )
        elif special_a and special_b and (cb, sb) != (ca, sa):
            kind = "icon_changed"
            text = (
                f"{name}{series}: the latest month{latest} now shows a special-cause "
                f"{_cat_word(ca)}{_SIDE.get(sa, '')}; the last run showed a special-cause "
                f"{_cat_word(cb)}{_SIDE.get(sb, '')}."
            )
        else:
            continue
        rows.append(_row(trust, measure, kind, _signal_words(cb, sb), _signal_words(ca, sa), text))
    return rows


def _cat_word(cat: str) -> str:
    return "change with no preferred direction" if cat == "neutral" else cat


def _several_series(*frames: pd.DataFrame) -> bool:
    return any(f.groupby(["trust_code", "measure"]).size().gt(1).any() for f in frames if len(f))


def _finding_keys(findings: Any) -> set[tuple[str, str, str, str, str]] | None:
    """(trust_code, severity, rule, source, column) of each finding; None when the frame does
    not say which rule each finding is (not known)."""
    if not isinstance(findings, pd.DataFrame):
        return None
    rule_col = (
        "rule" if "rule" in findings.columns else "kind" if "kind" in findings.columns else None
    )
    if rule_col is None:
        return None
    out = set()
    for row in findings.to_dict("records"):
        rule = _text(row.get(rule_col))
        if not rule:
            continue
        column = row.get("column")
        number = _number(column)
        col = f"{number:.0f}" if math.isfinite(number) else _text(column)
        out.add(
            (
                _text(row.get("trust_code")),
                _text(row.get("severity")),
                rule,
                _text(row.get("source")),
                col,
            )
        )
    return out


def _finding_words(key: tuple[str, str, str, str, str]) -> str:
    _, severity, rule, source, column = key
    where = f" in {source}" + (f" column {column}" if column else "") if source else ""
    return f"{severity or 'finding'}: {rule}{where}"


def _findings(before: Any, after: Any, keep: set[str] | None) -> list[dict]:
    kb, ka = _finding_keys(before), _finding_keys(after)
    if kb is None or ka is None:
        return []
    rows = []
    for kind, keys in (("finding_new", ka - kb), ("finding_resolved", kb - ka)):
        for key in sorted(keys):
            trust = key[0]
            if trust and keep is not None and trust not in keep:
                continue
            severity, rule = key[1] or "data-quality finding", key[2].replace("_", " ")
            words = _finding_words(key)
            if kind == "finding_new":
                before, after = "", words
                text = f"New data-quality {severity}: '{rule}' (see the data-quality report)."
            else:
                before, after = words, ""
                text = f"The data-quality {severity} '{rule}' of the last run is no longer found."
            rows.append(_row(trust, "", kind, before, after, text))
    return rows


def _months(
    before: dict[str, dict[str, str]], after: dict[str, dict[str, str]], keep: set[str] | None
) -> list[dict]:
    """New and revised months of trusts in both runs (nothing when either run's digests are
    not known)."""
    if not isinstance(before, dict) or not isinstance(after, dict) or not before or not after:
        return []
    rows = []
    for trust in sorted(set(before) & set(after)):
        if keep is not None and trust not in keep:
            continue
        b, a = before.get(trust), after.get(trust)
        if not isinstance(b, dict) or not isinstance(a, dict):
            continue
        for month in sorted(set(b) & set(a)):
            if b[month] != a[month]:
                rows.append(
                    _row(
                        trust,
                        "",
                        "revised_month",
                        month,
                        "revised",
                        f"The data for {month}, already in the last run, have changed (a late "
                        "return or a correction).",
                    )
                )
        for month in sorted(set(b) - set(a)):
            rows.append(
                _row(
                    trust,
                    "",
                    "revised_month",
                    month,
                    "removed",
                    f"The data for {month}, in the last run, are no longer in the data.",
                )
            )
        for month in sorted(set(a) - set(b)):
            rows.append(
                _row(
                    trust,
                    "",
                    "new_month",
                    "",
                    month,
                    f"The data for {month} are new in this run.",
                )
            )
    return rows


def _trust_rank(code: str) -> tuple[int, str]:
    return (0 if code == "" else 1 if code == PROGRAMME else 2, code)


def changes_between(
    before: RunSnapshot,
    after: RunSnapshot,
    aim_threshold: float = 0.8,
    *,
    directions: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    aim_column: str = AIM_COLUMN,
) -> pd.DataFrame:
    """Everything that changed from the run ``before`` to the run ``after`` (``changes.csv``).

    Columns ``CHANGE_COLUMNS``: ``trust_code`` (``"programme"`` for a programme-wide
    probability, ``""`` for a finding not confined to a trust), ``measure`` (``""`` when not
    measure-specific), ``kind``, ``before``, ``after`` (short strings) and ``text`` (one
    sentence). One row per change; sorted by trust (programme-wide first), then ``KINDS``
    order (conclusions first), then measure and month.

    Kinds (a trust added or dropped gets only its ``trust_added``/``trust_dropped`` row: the
    other comparisons are made for trusts in both runs):

    * ``trust_added`` / ``trust_dropped``: a trust code in ``after`` and not ``before`` (or
      the reverse) in any of ``its_effects``, ``spc_signals`` or the month digests that both
      runs have (a table one run lacks is not used).
    * ``conclusion_changed``, ``interval_now_excludes_1``, ``interval_now_includes_1``: for a
      (trust, measure) with ``status`` ok in both ``its_effects`` (a missing status counts as
      ok), the verdict word of ``verdict(row, "rr_h", direction)`` changed (both estimated).
      One row per change: ``interval_now_excludes_1`` when the 95% interval of ``rr_h`` no
      longer contains 1 (e.g. "no clear change" -> "improved"), ``interval_now_includes_1``
      when it now does ("improved" -> "no clear change"), ``conclusion_changed`` for a change
      with no crossing of 1 ("improved" <-> "worse"). ``before``/``after``:
      ``word: rr (low to high)``. ``directions`` maps a measure to its improvement direction
      (``decrease``, the default, ``increase`` or ``neutral``).
    * ``probability_crossed``: in ``aims`` (``aim_probabilities.csv``; both runs must have
      it), the probability of meeting the aim (``aim_column``, default ``p_rr_le_0_75``) went
      from below ``aim_threshold`` to at or above it, or the reverse; for trusts and for the
      ``programme`` rows.
    * ``special_cause_new`` / ``special_cause_ended`` / ``icon_changed``: per (trust,
      measure, series) of ``spc_signals``, the latest point's Making Data Count signal read
      from ``variation_icon`` (``improvement_*``, ``concern_*``, ``neutral_*`` are special
      causes; ``common_cause`` is not; blank means no chart; an older table without the icon
      falls back on ``last_point_type``). New: no special cause before (common cause, no chart
      or no row), one now; ended: the reverse; icon_changed: a special cause in both whose
      kind or side differs (e.g. improvement -> concern). A continuing special cause is not a
      change. Only for trusts with rows in both runs' tables (a measure one run has no row
      for counts as no chart).
    * ``finding_new`` / ``finding_resolved``: a validation finding's key (trust, severity,
      rule, source file, column; never its message or line) found only in ``after`` (or only
      in ``before``). Only when both runs' findings are known (see :class:`RunSnapshot`).
    * ``new_month``: a trust's month whose digest is only in ``after`` (``after`` holds the
      month). ``revised_month``: a month in both runs' digests whose digest differs (``before``
      holds the month, ``after`` says ``revised``), or a month only in ``before`` (``after``
      says ``removed``). Only when both runs' digests are known.

    Never raises on odd input: a missing table or column, a blank or non-numeric cell, skips
    what it stops being able to compare. No count or bed-day figure is written.

    Examples
    --------
    >>> empty = RunSnapshot(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {})
    >>> changes_between(empty, empty).empty
    True
    """
    directions = dict(directions or {}) if isinstance(directions, Mapping) else {}
    labels = labels if isinstance(labels, Mapping) else None
    if not isinstance(before, RunSnapshot) or not isinstance(after, RunSnapshot):
        return pd.DataFrame(columns=CHANGE_COLUMNS).astype(object)
    try:
        trust_rows, keep = _trust_changes(before, after)
    except Exception:  # odd input: compare everything, report no trust change
        logger.warning("changes: trusts could not be compared", exc_info=True)
        trust_rows, keep = [], None
    rows: list[dict] = list(trust_rows)
    steps = {
        "conclusions": lambda: _conclusions(
            before.its_effects, after.its_effects, keep, directions, labels
        ),
        "probabilities": lambda: _probabilities(
            before.aims, after.aims, keep, float(aim_threshold), aim_column, labels
        ),
        "special causes": lambda: _special_causes(
            before.spc_signals, after.spc_signals, keep, labels
        ),
        "findings": lambda: _findings(before.findings, after.findings, keep),
        "months": lambda: _months(before.months, after.months, keep),
    }
    for what, step in steps.items():
        try:
            rows += step()
        except Exception:  # never raise on odd input: skip what cannot be compared
            logger.warning("changes: %s could not be compared", what, exc_info=True)
    rank = {k: i for i, k in enumerate(KINDS)}
    rows.sort(
        key=lambda r: (
            _trust_rank(r["trust_code"]),
            rank.get(r["kind"], len(KINDS)),
            r["measure"],
            r["before"] or r["after"],
        )
    )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS).astype(object)


# --- in words --------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """Text with Markdown's special characters escaped (it is shown, not interpreted)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def _since(since: str) -> str:
    """``2026-11-02T07:57:25+00:00`` -> ``2026-11-02`` (other text as it is)."""
    text = str(since or "").strip()
    return text[:10] if re.match(r"\d{4}-\d{2}-\d{2}T", text) else text


def month_span(months: list[str]) -> str:
    """Months as runs: ``2023-01 to 2023-03, 2023-06``."""
    parsed = []
    for m in sorted(set(months)):
        match = re.fullmatch(r"(\d{4})-(\d{2})", m)
        parsed.append((int(match.group(1)) * 12 + int(match.group(2)) - 1, m) if match else None)
    out, run = [], []
    for item in [*parsed, None]:
        if item is not None and run and item[0] == run[-1][0] + 1:
            run.append(item)
            continue
        if run:
            out.append(run[0][1] if len(run) == 1 else f"{run[0][1]} to {run[-1][1]}")
        run = [item] if item is not None else []
    out += [m for m, p in zip(sorted(set(months)), parsed, strict=True) if p is None]
    return ", ".join(out)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _month_bullets(rows: pd.DataFrame) -> list[str]:
    """A trust's new, revised and removed months in (at most) three bullets."""
    out = []
    new = rows.loc[rows["kind"] == "new_month", "after"].tolist()
    revised = rows.loc[(rows["kind"] == "revised_month") & (rows["after"] != "removed"), "before"]
    removed = rows.loc[(rows["kind"] == "revised_month") & (rows["after"] == "removed"), "before"]
    if new:
        out.append(f"New months in this run: {month_span(new)}.")
    if len(revised):
        out.append(
            "Months already in the last run whose data changed (late returns or corrections): "
            f"{month_span(revised.tolist())}."
        )
    if len(removed):
        out.append(f"Months no longer in the data: {month_span(removed.tolist())}.")
    return out


def _trust_bullets(rows: pd.DataFrame) -> list[str]:
    bullets = [_md(t) for t in rows.loc[~rows["kind"].isin(MONTH_KINDS), "text"]]
    return bullets + [_md(b) for b in _month_bullets(rows)]


def _programme_bullets(changes: pd.DataFrame) -> list[str]:
    bullets: list[str] = []
    for kind, lead in (
        ("trust_added", "Trusts new in this run"),
        ("trust_dropped", "Trusts in the last run but not in this one"),
    ):
        codes = changes.loc[changes["kind"] == kind, "trust_code"].tolist()
        if codes:
            bullets.append(f"{lead}: {_md(join_words(codes))}.")
    for row in changes[changes["kind"].isin(CONCLUSION_KINDS)].itertuples():
        lead = "" if row.trust_code in ("", PROGRAMME) else f"**{_md(row.trust_code)}** — "
        bullets.append(lead + _md(row.text))
    months = changes[changes["kind"] == "new_month"]
    if len(months):
        by_span = months.groupby("trust_code")["after"].agg(lambda s: month_span(list(s)))
        for span, trusts in by_span.groupby(by_span):
            codes = sorted(trusts.index)
            who = join_words(codes) if len(codes) <= 6 else _plural(len(codes), "trust")
            bullets.append(f"New months: {_md(span)} ({_md(who)}).")
    revised = changes[changes["kind"] == "revised_month"]
    if len(revised):
        spans = revised.groupby("trust_code")["before"].agg(lambda s: month_span(list(s)))
        listed = "; ".join(f"{t} ({s})" for t, s in spans.items())
        bullets.append(
            f"Months whose data changed since the last run (late returns or corrections): "
            f"{_md(listed)}."
        )
    other = changes[changes["kind"].isin(SPECIAL_CAUSE_KINDS + FINDING_KINDS)]
    words = {
        "special_cause_new": ("new special cause", "new special causes"),
        "special_cause_ended": ("special cause ended", "special causes ended"),
        "icon_changed": ("special cause changed", "special causes changed"),
        "finding_new": ("new data-quality finding", "new data-quality findings"),
        "finding_resolved": ("data-quality finding resolved", "data-quality findings resolved"),
    }
    for trust, rows in other.groupby("trust_code", sort=False):
        counts = rows["kind"].value_counts()
        parts = [
            _plural(int(counts[k]), *words[k]) for k in KINDS if k in counts.index and k in words
        ]
        who = f"**{_md(trust)}**" if trust else "Programme-wide"
        bullets.append(f"{who}: {', '.join(parts)}.")
    return bullets


def changes_markdown(
    changes: pd.DataFrame,
    trust_code: str | None = None,
    since: str = "",
    *,
    max_bullets: int = MAX_BULLETS,
) -> str:
    """The body of a "Since the last run" section, in Markdown.

    ``trust_code`` given: that trust's changes, one bullet each (conclusions, probabilities,
    special causes, data-quality findings), its new and its revised months in one bullet each.
    ``trust_code=None``: the programme view: trusts added and dropped, every conclusion
    change (with its trust), the new months (grouped by trusts sharing them), the revised
    months by trust, and per trust how many special causes and data-quality findings are new,
    ended or resolved. At most ``max_bullets`` bullets, then "and N more" (the full list is in
    ``changes.csv``). ``since`` (e.g. the previous run's ``created_utc``) names the run
    compared with. Text from :func:`changes_between` only: no count or bed-day figure.
    """
    run = _since(since)
    of = f" of {_md(run)}" if run else ""
    empty = f"No change since the {'run' if run else 'last run'}{of}."
    frame = _frame(changes, *CHANGE_COLUMNS)
    if frame is None or frame.empty:
        return empty
    frame = frame.fillna("").astype(str)
    if trust_code is not None:
        frame = frame[frame["trust_code"] == str(trust_code)]
        if frame.empty:
            return empty
        bullets = _trust_bullets(frame)
    else:
        bullets = _programme_bullets(frame)
    if not bullets:
        return empty
    limit = max(int(max_bullets), 1)
    if len(bullets) > limit:
        rest = len(bullets) - (limit - 1)
        bullets = [*bullets[: limit - 1], f"… and {rest} more (all changes are in changes.csv)."]
    lead = f"Compared with the run{of}:" if run else "Compared with the last run:"
    return lead + "\n\n" + "\n".join(f"- {b}" for b in bullets) + "\n"
