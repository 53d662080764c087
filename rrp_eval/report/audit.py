"""The recoverability audit: can anything in a shared output folder give back a small count?

:func:`audit_outputs` reads everything a shared run writes, as a recipient would: the HTML
pages (tables, text and every embedded figure), the executed notebooks (HTML, text, error and
figure outputs), CSV, xlsx and Parquet tables, ``run.json``, logs and the PNG files. Figures are
read from the data each PNG carries (:mod:`rrp_eval.show.figdata`: what each axes draws, at a
quarter of a pixel), so the audit sees what a reader measures from the picture.

It then does what an attacker would, by interval arithmetic over everything published together:

- **cells**: each table's count and bed-day cells are 0, ``*`` or a multiple of the rounding at
  or above the threshold; no rate beside a suppressed count; no rate whose row's bed days give
  its count as 1-4 (:func:`rrp_eval.disclosure.audit_tables`, knowing the rate step);
- **bed days from limits**: a u chart's centre and limit give each month's bed days
  (``n = 9,000 c / (UCL - c)^2`` per 1,000), bed-day run charts give them directly;
- **rate × bed days**: a shown monthly rate over those bed days may not give a count of 1-4,
  taking the rate as exact unless it sits on the rule's step (then ± half a step);
- **baseline centre**: the centre line times the baseline's summed bed days;
- **totals and parts**: a total's rate minus its other parts' (restrictive practice = physical
  restraint + seclusion + rapid tranquillisation, same wards and month) may not pin a suppressed
  part to part of 1-4;
- **interval widths**: an exact Poisson interval's high/low ratio depends on the count alone;
- **funnel points**: rate × bed days read off the axes;
- **marking and paths**: no "internal" stamp, no absolute path of this machine, no SHA-256
  digest of an input, no Python traceback in a shared folder.

Findings name the file and the place; their ``detail`` may quote values and goes to the local
console only (the shared ``run.json`` records file, check and place).

The audit lives in ``report`` (not ``disclosure``, which the issue named) because it reads
files; ``disclosure`` keeps the pure rules and checks it calls.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrp_eval.disclosure import DisclosureRule, audit_tables
from rrp_eval.params import DisclosureParams
from rrp_eval.report.html import html_tables
from rrp_eval.schema import DERIVED_MEASURES
from rrp_eval.show.figdata import read_figure_data

_IMG = re.compile(r"""src=["']data:image/png;base64,([A-Za-z0-9+/=\s]+)["']""")
_TAG = re.compile(r"<[^>]+>")
_PATH = re.compile(
    r"(?<![\w.:/])(/(?:home|root|usr|tmp|opt|var|Users|mnt|srv|work|private|Volumes|scratch)"
    r"/[^\s\"'<>|]+|[A-Za-z]:\\[^\s\"'<>|]+)"
)
_SITE = re.compile(r"site-packages|dist-packages")
_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
_INTERNAL = re.compile(r"INTERNAL: NOT FOR SHARING", re.I)
_TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Finding:
    """One way a shared file could give back a small number or expose the machine."""

    file: str
    check: str
    where: str
    detail: str

    def public(self) -> dict[str, str]:
        """The finding without values (for the shared run.json)."""
        return {"file": self.file, "check": self.check, "where": self.where}

    def __str__(self) -> str:
        return f"{self.file}: {self.check}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit_outputs` read and found."""

    folder: Path
    files: int
    tables: int
    figures: int
    findings: tuple[Finding, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def files_with_findings(self) -> list[str]:
        return sorted({f.file for f in self.findings})

    def public(self) -> dict[str, Any]:
        """A summary for the shared run.json (no values)."""
        return {
            "files": self.files,
            "tables": self.tables,
            "figures": self.figures,
            "seconds": round(self.seconds, 2),
            "findings": [f.public() for f in self.findings],
        }

    def __repr__(self) -> str:
        state = "no findings" if self.ok else f"{len(self.findings)} finding(s)"
        return (
            f"<AuditReport {self.folder}: {self.files} files, {self.tables} tables, "
            f"{self.figures} figures; {state}>"
        )


@dataclass
class _Published:
    tables: list[tuple[str, str, list[list[str]]]] = field(default_factory=list)
    figures: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0


# --- reading a folder ---------------------------------------------------------------------


def _html(pub: _Published, name: str, page: str) -> None:
    for caption, rows in html_tables(page).items():
        pub.tables.append((name, caption, rows))
    for match in _IMG.finditer(page):
        _png(pub, name, base64.b64decode(re.sub(r"\s", "", match.group(1))))
    pub.texts.append((name, _IMG.sub("", page)))


def _png(pub: _Published, name: str, png: bytes) -> None:
    data = read_figure_data(png)
    if data is not None:
        pub.figures.append((name, data))
        pub.texts.append((name, "\n".join(_figure_texts(data))))


def _figure_texts(data: dict[str, Any]) -> Iterator[str]:
    yield from data.get("texts", [])
    for ax in data.get("axes", []):
        yield from ax.get("texts", [])
        yield ax.get("title") or ""


def _notebook(pub: _Published, name: str, text: str) -> None:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        pub.texts.append((name, text))
        return
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        pub.texts.append((name, "".join(source) if isinstance(source, list) else source))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                pub.texts.append((name, "\n".join(out.get("traceback", []))))
            if "text" in out:
                t = out["text"]
                pub.texts.append((name, "".join(t) if isinstance(t, list) else t))
            for mime, value in (out.get("data") or {}).items():
                value = "".join(value) if isinstance(value, list) else value
                if mime == "text/html":
                    _html(pub, name, value)
                elif mime == "image/png":
                    _png(pub, name, base64.b64decode(value))
                elif mime.startswith("text/"):
                    pub.texts.append((name, value))


def _rows_of(frame: Any) -> list[list[str]]:
    return [[str(c) for c in frame.columns]] + [
        ["" if v is None or (isinstance(v, float) and math.isnan(v)) else _cell(v) for v in row]
        for row in frame.itertuples(index=False)
    ]


def _cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _workbook(pub: _Published, name: str, path: Path) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for ws in wb.worksheets:
            rows = [
                ["" if v is None else _cell(v) for v in row]
                for row in ws.iter_rows(values_only=True)
            ]
            pub.texts.append((name, "\n".join(" ".join(r) for r in rows[:3])))
            start = next((i for i, r in enumerate(rows) if sum(bool(c) for c in r) >= 2), None)
            if start is not None:
                pub.tables.append((name, f"{ws.title}", rows[start:]))
    finally:
        wb.close()


def _read(folder: Path) -> _Published:
    import pandas as pd

    pub = _Published()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        pub.files += 1
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            _html(pub, name, path.read_text(encoding="utf-8", errors="replace"))
        elif suffix == ".ipynb":
            _notebook(pub, name, path.read_text(encoding="utf-8", errors="replace"))
        elif suffix == ".png":
            _png(pub, name, path.read_bytes())
        elif suffix == ".csv":
            text = path.read_text(encoding="utf-8-sig", errors="replace")
            pub.tables.append((name, name, list(csv.reader(io.StringIO(text)))))
            pub.texts.append((name, text))
        elif suffix == ".xlsx":
            _workbook(pub, name, path)
        elif suffix == ".pdf":  # printed (rrp-eval run --pdf) from the audited HTML pages
            continue
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
            pub.tables.append((name, name, _rows_of(frame)))
            pub.texts.append((name, frame.to_csv(index=False)))
        else:  # run.json, logs, the folder marker: text
            pub.texts.append((name, path.read_text(encoding="utf-8", errors="replace")))
    return pub


# --- checks -------------------------------------------------------------------------------


def _text_findings(pub: _Published) -> list[Finding]:
    import html as html_lib

    found: dict[tuple[str, str], Finding] = {}
    for name, raw in pub.texts:
        text = html_lib.unescape(_TAG.sub(" ", raw)) if "<" in raw else raw
        checks = []
        if _INTERNAL.search(text):
            checks.append(("marking", "internal stamp", "an internal report's stamp"))
        m = _PATH.search(text)
        if m:
            checks.append(("path", "absolute path", f"{m.group(0)[:80]}"))
        elif _SITE.search(text):
            checks.append(("path", "install path", "an installed package's path"))
        if _TRACEBACK in text:
            checks.append(("traceback", "Python traceback", "may hold paths and cell values"))
        if name == "run.json" and _DIGEST.search(_without_code_digests(text)):
            checks.append(("digest", "SHA-256 digest", "an input's or a slice's digest"))
        for check, where, detail in checks:
            found.setdefault((name, check), Finding(name, check, where, detail))
    return list(found.values())


def _without_code_digests(text: str) -> str:
    """run.json without the digests of the notebooks' code (which say which version ran and
    hold nothing of the data)."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(manifest, dict):
        manifest.pop("notebooks", None)
    return json.dumps(manifest)


def _table_findings(pub: _Published, rule: DisclosureRule) -> list[Finding]:
    out = []
    for name, caption, rows in pub.tables:
        for message in audit_tables({caption: rows}, rule):
            out.append(Finding(name, "cells", caption[:80], message))
    return out


def _key(ax: dict[str, Any]) -> tuple[str, str, str] | None:
    key = ax.get("key")
    if not key or key.count("/") < 2:
        return None
    trust, scope, measure = key.split("/", 2)
    return trust, scope, measure


def _series(ax: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for s in ax.get("series", []) if s.get("role") == role]


def _by_x(series: list[dict[str, Any]]) -> dict[Any, float | None]:
    """x -> y over a role's artists (a hidden point is None where any artist has the x)."""
    out: dict[Any, float | None] = {}
    for s in series:
        for x, y in zip(s.get("x", []), s.get("y", []), strict=False):
            if x is None:
                continue
            if y is not None or x not in out:
                out[x] = y
    return out


def _chart_type(ax: dict[str, Any]) -> str | None:
    for t in ax.get("texts", []):
        m = re.fullmatch(r"(\S+) chart", t.strip())
        if m:
            return m.group(1).replace("′", "'")
    return None


class _Interval:
    """Closed intervals [lo, hi] with the arithmetic the audit needs (non-negative values)."""

    __slots__ = ("hi", "lo")

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __mul__(self, other: _Interval) -> _Interval:
        products = [self.lo * other.lo, self.lo * other.hi, self.hi * other.lo, self.hi * other.hi]
        return _Interval(min(products), max(products))

    def __sub__(self, other: _Interval) -> _Interval:
        return _Interval(self.lo - other.hi, self.hi - other.lo)

    def __add__(self, other: _Interval) -> _Interval:
        return _Interval(self.lo + other.lo, self.hi + other.hi)

    def scale(self, k: float) -> _Interval:
        return _Interval(self.lo * k, self.hi * k)

    def intersect(self, other: _Interval) -> _Interval:
        return _Interval(max(self.lo, other.lo), min(self.hi, other.hi))

    def integers(self) -> range:
        return range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1)

    def __repr__(self) -> str:
        return f"[{self.lo:.4g}, {self.hi:.4g}]"


def _steps_between(fine: float, coarse: float) -> list[float]:
    """The 1, 2 or 5 × 10^k steps from ``fine`` to ``coarse``."""
    out, k = [], math.floor(math.log10(fine)) - 1
    while True:
        for m in (1, 2, 5):
            step = m * 10.0**k
            if step > coarse * (1 + 1e-9):
                return out
            if step >= fine * (1 - 1e-9):
                out.append(step)
        k += 1


@functools.lru_cache(maxsize=65536)
def _cached_step(rule: DisclosureRule, bed_days: float) -> float:
    return float(rule.rate_step(bed_days))


def _rate_step(rule: DisclosureRule, bed_days: float) -> float:
    """:meth:`DisclosureRule.rate_step` of one figure (cached on the bed days as the rule
    rounds them, which is all the step depends on)."""
    published = rule.round_to * round(bed_days / rule.round_to) if rule.round_to > 1 else bed_days
    return _cached_step(rule, float(max(published, rule.round_to)))


def _published_rate(v: float, res: float, bed_days: _Interval, rule: DisclosureRule) -> _Interval:
    """What a reader knows for certain of the true rate behind a drawn ``v`` (read to ``res``)
    over bed days somewhere in ``bed_days``: the rule rounds to a step between the one the
    most and the one the fewest of those bed days give; ``v`` is a multiple of the true step,
    so the true rate is within half the coarsest step ``v`` sits on. A ``v`` on none of them
    was not rounded, and is as exact as the picture."""
    least = max(rule.round_to, 1.0)  # fewer bed days are published as 0: no rate at all
    fine = _rate_step(rule, max(bed_days.hi, least))
    coarse = _rate_step(rule, max(bed_days.lo, least))
    on = [st for st in _steps_between(fine, coarse) if abs(v - round(v / st) * st) <= res]
    if on:
        half = max(on) / 2
        return _Interval(max(v - half, 0.0), v + half)
    return _Interval(max(v - res / 2, 0.0), v + res / 2)


def _small(interval: _Interval, rule: DisclosureRule) -> list[int]:
    """The counts an interval allows, when all are 1 to threshold - 1 (else empty)."""
    ks = interval.integers()
    if len(ks) and ks[0] >= 1 and ks[-1] < rule.suppress_below:
        return list(ks)
    return []


def _small_count(
    name: str, check: str, where: str, count: _Interval, rule: DisclosureRule, detail: str
) -> list[Finding]:
    """A finding when ``count`` allows only 1 to threshold - 1 events; ``{n}`` in ``detail``
    becomes the counts it allows."""
    ks = _small(count, rule)
    return [Finding(name, check, where, detail.replace("{n}", _span(ks)))] if ks else []


def _total(intervals: Any) -> _Interval:
    """The sum of intervals (empty: 0)."""
    total = _Interval(0.0, 0.0)
    for k in intervals:
        total = total + k
    return total


def _span(ks: list[int]) -> str:
    return str(ks[0]) if len(ks) == 1 else f"{ks[0]} to {ks[-1]}"


def _figure_findings(pub: _Published, rule: DisclosureRule) -> list[Finding]:
    """Bed days from limits and run charts, rates over them, totals and parts, centres, interval
    widths and funnel points (see the module docstring)."""
    findings: list[Finding] = []
    bed_days: dict[tuple[str, str, str], _Interval] = {}
    rates: dict[tuple[str, str, str, str], tuple[float | None, float, str, str]] = {}
    spc_axes: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = []

    def know(key: tuple[str, str, str], value: _Interval) -> None:
        old = bed_days.get(key)
        bed_days[key] = value if old is None else old.intersect(value)

    for name, data in pub.figures:
        for ax in data.get("axes", []):
            key = _key(ax)
            if key is None:
                continue
            trust, scope, measure = key
            yres = float(ax.get("yres") or 0.0)
            if "caterpillar" == scope:
                findings += _caterpillar(name, ax, rule)
                continue
            if "funnel" == scope:
                findings += _funnel(name, ax, rule)
                continue
            if measure == "occupied_bed_days":
                for x, y in _by_x(_series(ax, "value")).items():
                    if y is not None:
                        half = max(yres / 2, rule.round_to / 2 if y % rule.round_to == 0 else 0)
                        know((trust, scope, x), _Interval(max(y - half, 0.0), y + half))
                continue
            points = _by_x(_series(ax, "rate"))
            if not points and "per 1,000" in (ax.get("ylabel") or ""):
                points = _by_x(_series(ax, "value"))
            for x, y in points.items():
                rates[(trust, scope, measure, x)] = (y, yres, name, ax.get("title") or "")
            if _series(ax, "centre") and _chart_type(ax) == "u":
                spc_axes.append((name, ax, key))
                for x, n in _chart_bed_days(ax, rule).items():
                    know((trust, scope, x), n)

    # a shown rate over known bed days, and the parts of a total
    for (trust, scope, _measure, x), (y, yres, name, title) in rates.items():
        bd = bed_days.get((trust, scope, x))
        if y is None or bd is None:
            continue
        count = _published_rate(y, yres, bd, rule) * bd.scale(1e-3)
        findings += _small_count(
            name,
            "rate_count",
            f"{title}, {x}",
            count,
            rule,
            f"the rate drawn and the bed days ({bd!r}) give a count of {{n}}",
        )
    for total, parts in DERIVED_MEASURES.items():
        members = (total, *parts)
        groups: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(dict)
        for (trust, scope, measure, x), value in rates.items():
            if measure in members:
                groups[(trust, scope, x)][measure] = value
        for (trust, scope, x), got in groups.items():
            bd = bed_days.get((trust, scope, x))
            if bd is None or set(got) != set(members):
                continue
            hidden = [m for m in parts if got[m][0] is None]
            if len(hidden) != 1 or got[total][0] is None:
                continue
            known = {
                m: _published_rate(got[m][0], got[m][1], bd, rule)
                for m in members
                if m not in hidden
            }
            rest = known[total]
            for m in parts:
                if m not in hidden:
                    rest = rest - known[m]
            count = rest * bd.scale(1e-3)
            count = count.intersect(_Interval(0, rule.min_rate_count - 1))
            ks = list(count.integers())
            if ks and ks[0] >= 1 and len(ks) < rule.suppress_below - 1:
                name, title = got[hidden[0]][2], got[hidden[0]][3]
                findings.append(
                    Finding(
                        name,
                        "parts",
                        f"{title}, {x}",
                        f"{total} minus the other parts pins the suppressed {hidden[0]} to "
                        f"{_span(ks)}",
                    )
                )
    # the baseline centre line times the baseline's bed days
    for name, ax, (trust, scope, _measure) in spc_axes:
        centre = [(x, c) for x, c in _by_x(_series(ax, "centre")).items() if c is not None]
        if not centre:
            continue
        first = centre[0][1]
        months = [x for x, c in centre if c == first]
        known = [bed_days.get((trust, scope, x)) for x in months]
        if any(k is None for k in known):
            continue
        total = _total(known)
        yres = float(ax.get("yres") or 0.0)
        count = _published_rate(first, yres, total, rule) * total.scale(1e-3)
        findings += _small_count(
            name,
            "centre",
            f"{ax.get('title')}",
            count,
            rule,
            "the centre line times the baseline's bed days gives {n} events",
        )
    return findings


def _chart_bed_days(ax: dict[str, Any], rule: DisclosureRule) -> dict[str, _Interval]:
    """Each month's bed days from a u chart: ``UCL = c + 3 sqrt(1,000 c / n)`` gives ``n``.
    The centre and limits are taken as :func:`_published_rate` allows, over bed days first
    assumed anywhere from 1 to 10^9, then narrowed to what the last pass found (the centre
    over the baseline's summed months), until nothing changes: every interval holds the
    truth, so what it says a reader could also say."""
    res = float(ax.get("yres") or 0.0)
    centre = _by_x(_series(ax, "centre"))
    upper = _by_x(_series(ax, "upper_limit"))
    months = [x for x, c in centre.items() if c is not None and c > 0 and upper.get(x)]
    if not months:
        return {}
    first = centre[months[0]]
    baseline = [x for x in months if centre[x] == first]
    anything = _Interval(1.0, 1e9)
    n = {x: anything for x in months}
    total = anything
    for _ in range(4):
        new = {}
        for x in months:
            cc = _published_rate(centre[x], res, total if x in baseline else anything, rule)
            uu = _published_rate(upper[x], res, n[x], rule)
            gap = uu - cc
            if gap.lo <= 0 or cc.lo <= 0:
                new[x] = anything
                continue
            new[x] = _Interval(9000 * cc.lo / gap.hi**2, 9000 * cc.hi / gap.lo**2)
        total = _total(new[x] for x in baseline)
        total = total if total.lo > 0 else anything
        if all(new[x].lo == n[x].lo and new[x].hi == n[x].hi for x in months):
            break
        n = new
    return {x: v for x, v in n.items() if v.hi < 1e9}


def _garwood_ratios(limit: int = 400) -> np.ndarray:
    from scipy import stats

    k = np.arange(1, limit + 1)
    return stats.chi2.ppf(0.975, 2 * k + 2) / stats.chi2.ppf(0.025, 2 * k)


def _caterpillar(name: str, ax: dict[str, Any], rule: DisclosureRule) -> list[Finding]:
    """An exact interval's high/low ratio depends on its count alone."""
    ratios = _garwood_ratios()
    out = []
    xres = float(ax.get("xres") or 0.0)
    for s in _series(ax, "interval"):
        for lo, hi in zip(s.get("x0", []), s.get("x1", []), strict=False):
            if lo is None or hi is None or lo - xres / 2 <= 0:
                continue
            r = _Interval((hi - xres / 2) / (lo + xres / 2), (hi + xres / 2) / (lo - xres / 2))
            ks = [i + 1 for i, v in enumerate(ratios) if r.lo <= v <= r.hi]
            if ks and ks[-1] < rule.suppress_below:
                out.append(
                    Finding(
                        name,
                        "interval",
                        str(ax.get("title")),
                        f"an exact interval {lo:g} to {hi:g} is the width of {_span(ks)} events",
                    )
                )
    return out


def _funnel(name: str, ax: dict[str, Any], rule: DisclosureRule) -> list[Finding]:
    """A funnel point is (bed days, rate): their product is the count."""
    out = []
    xres, yres = float(ax.get("xres") or 0.0), float(ax.get("yres") or 0.0)
    log = ax.get("xscale") == "log"
    for s in _series(ax, "rate"):
        for x, y in zip(s.get("x", []), s.get("y", []), strict=False):
            if x is None or y is None:
                continue
            bd = (
                _Interval(x * 10 ** (-xres / 2), x * 10 ** (xres / 2))
                if log
                else _Interval(x - xres / 2, x + xres / 2)
            )
            count = _Interval(max(y - yres / 2, 0.0), y + yres / 2) * bd.scale(1e-3)
            out += _small_count(
                name,
                "funnel",
                str(ax.get("title")),
                count,
                rule,
                f"a point at {x:g} bed days and rate {y:g} is {{n}} events",
            )
    return out


def _rule_of(folder: Path) -> DisclosureRule:
    path = folder / "run.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path}: cannot read the run's disclosure rule ({exc.__class__.__name__}); "
            "pass the rule to audit_outputs"
        ) from None
    parameters = manifest.get("parameters", {})
    disclosure = parameters.get("programme", {}).get("disclosure", {})
    return DisclosureRule.from_params(
        DisclosureParams(**disclosure), internal=parameters.get("internal") is True
    )


def audit_outputs(folder: str | Path, rule: DisclosureRule | None = None) -> AuditReport:
    """Audit a shared output folder (see the module docstring); ``rule`` defaults to the one
    its ``run.json`` records. An internal folder is not for sharing: nothing is checked."""
    t0 = time.perf_counter()
    folder = Path(folder)
    rule = rule or _rule_of(folder)
    if rule.internal:
        return AuditReport(folder, 0, 0, 0, (), time.perf_counter() - t0)
    pub = _read(folder)
    findings = _text_findings(pub) + _table_findings(pub, rule) + _figure_findings(pub, rule)
    return AuditReport(
        folder,
        pub.files,
        len(pub.tables),
        len(pub.figures),
        tuple(findings),
        time.perf_counter() - t0,
    )


__all__ = ["AuditReport", "Finding", "audit_outputs"]
