"""Random names, cells and column sets through a small whole run (issue 14, deliverable 4).

Hypothesis draws a three-trust programme (every optional column present or absent, a random
set of measures, events with or without notes, names of any characters, a few cells replaced
by hostile values) and runs the real notebooks on it. Whatever it draws, the run either refuses
the data before writing anything (exit 2, with located messages) or completes: every notebook
that runs succeeds, exactly the trusts with trust-scoped errors are marked failed, and the
index and programme page are written. Examples are derandomised, so CI runs the same ones;
``RRP_FUZZ_EXAMPLES=50`` explores fresh ones.
"""

from __future__ import annotations

import csv
import io
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrp_eval.data.load import load_raw
from rrp_eval.data.validate import validate_programme
from rrp_eval.report.suite import UnusableInput, run_suite

OPTIONAL_WARD_COLUMNS = ("ward_name", "cohort", "region", "beds")
MEASURES = (
    "physical_restraint",
    "prone_restraint",
    "seclusion",
    "rapid_tranquillisation",
    "segregation",
    "mechanical_restraint",
)
HOSTILE_CELLS = (
    "",
    "0",
    "-1",
    "1e308",
    "n/a",
    "2.5",
    "99999999999",
    "=1+1",
    "2021-13",
    "<b>x</b>",
    "$\\frac$",
    "\u202e1",
)
#: 5 fixed examples in the suite; RRP_FUZZ_EXAMPLES=N explores N fresh random ones
EXAMPLES = int(os.environ.get("RRP_FUZZ_EXAMPLES", "5"))
MONTHS = [f"{2020 + (m // 12)}-{m % 12 + 1:02d}" for m in range(24)]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def programmes(draw):
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    name = st.text(max_size=24)
    ward_columns = [c for c in OPTIONAL_WARD_COLUMNS if draw(st.booleans())]
    measures = [m for m in MEASURES if draw(st.booleans())] or ["physical_restraint"]
    if "prone_restraint" in measures and "physical_restraint" not in measures:
        measures.remove("prone_restraint")
    wards, ward_month = [], []
    for t in range(3):
        trust_name = draw(name)
        for w in range(draw(st.integers(1, 2))):
            start = "" if w == 1 and draw(st.booleans()) else MONTHS[12 + t]
            row = {
                "trust_code": f"T{t}",
                "trust_name": trust_name,
                "ward_id": f"W{w}",
                "ward_type": "adult_acute",
                "start_month": start,
                "ward_name": draw(name),
                "cohort": f"Wave {t % 2 + 1}",
                "region": draw(st.sampled_from(["London", "North", ""])),
                "beds": "20",
            }
            wards.append(
                [
                    row[c]
                    for c in [
                        "trust_code",
                        "trust_name",
                        "ward_id",
                        "ward_type",
                        "start_month",
                        *ward_columns,
                    ]
                ]
            )
            rate = rng.uniform(0.5, 30) / 1000
            for month in MONTHS:
                bed_days = rng.randint(300, 620)
                counts = {m: rng.randint(0, max(1, round(2 * rate * bed_days))) for m in measures}
                if "prone_restraint" in counts:
                    counts["prone_restraint"] = min(
                        counts["prone_restraint"], counts["physical_restraint"]
                    )
                ward_month.append(
                    [f"T{t}", f"W{w}", month, str(bed_days), *(str(counts[m]) for m in measures)]
                )
    wm_header = ["trust_code", "ward_id", "month", "occupied_bed_days", *measures]
    for _ in range(draw(st.integers(0, 3))):  # a few hostile cells
        row = draw(st.integers(0, len(ward_month) - 1))
        col = draw(st.integers(3, len(wm_header) - 1))
        ward_month[row][col] = draw(st.sampled_from(HOSTILE_CELLS) | st.text(max_size=8))
    files = {
        "wards.csv": _csv(
            ["trust_code", "trust_name", "ward_id", "ward_type", "start_month", *ward_columns],
            wards,
        ),
        "ward_month.csv": _csv(wm_header, ward_month),
    }
    if draw(st.booleans()):
        note = draw(st.booleans())
        header = ["trust_code", "ward_id", "month", "type", *(["note"] if note else [])]
        event = ["T1", "ALL", MONTHS[6], "system_change", *([draw(name)] if note else [])]
        files["events.csv"] = _csv(header, [event])
    return files


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="RRP_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(files=programmes())
def test_any_programme_is_refused_cleanly_or_run_completely(files, tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    data = base / "data"
    data.mkdir()
    for file, text in files.items():
        (data / file).write_text(text, encoding="utf-8")
    out = base / "out"
    _, report = validate_programme(load_raw(data))
    try:
        summary = run_suite(data=data, out=out, jobs=2)
    except UnusableInput as exc:
        assert report.structural_errors, str(exc)
        assert str(exc) and not out.exists()
        return
    failures = {r.task.html: r.message for r in summary.results if r.status != "ok"}
    assert not failures, failures
    assert set(summary.failed_trusts) == set(report.failed_trusts)
    assert summary.exit_code == (1 if report.failed_trusts else 0)
    for page in ("index.html", "programme.html", "data_quality.html", "run.json"):
        assert (out / page).is_file(), page
    for trust in {"T0", "T1", "T2"} - set(report.failed_trusts):
        assert (out / "trusts" / f"{trust}.html").is_file(), trust


@settings(max_examples=25, deadline=None, derandomize=True)
@given(files=programmes())
def test_the_strategy_draws_what_it_says(files):
    """The generator itself: valid CSV with the drawn columns (a guard on the test above)."""
    wards = next(csv.reader(io.StringIO(files["wards.csv"])))
    assert wards[:5] == ["trust_code", "trust_name", "ward_id", "ward_type", "start_month"]
    assert set(wards[5:]) <= set(OPTIONAL_WARD_COLUMNS)
    rows = list(csv.reader(io.StringIO(files["ward_month.csv"])))
    assert len({len(r) for r in rows}) == 1 and len(rows) > 24
