"""Property-based tests of loading and validation (hypothesis): any input gives a report,
never a traceback; valid programmes round-trip exactly; the delimiter does not matter."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from datafiles import EVENTS, WARD_MONTH, WARDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrp_eval.data.load import load_raw
from rrp_eval.data.validate import validate_programme

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOCATION = re.compile(r"^(wards|ward_month|events)\.csv(:\d+(:\d+)?)?: (error|warning): .+")


def _validate(**tables):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "d"
        for name in ("wards", "ward_month", "events"):
            tables.setdefault(
                name, {"wards": WARDS, "ward_month": WARD_MONTH, "events": EVENTS}[name]
            )
        folder.mkdir()
        for name, content in tables.items():
            if content is None:
                continue
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / f"{name}.csv").write_bytes(data)
        return validate_programme(load_raw(folder))


@pytest.mark.slow
@SETTINGS
@given(st.binary(max_size=600))
def test_any_bytes_give_a_report_not_a_traceback(blob):
    data, report = _validate(ward_month=blob)
    assert data is None or report.ok
    for problem in report.problems:
        assert str(problem).startswith("ward_month.csv") or LOCATION.match(str(problem))


@pytest.mark.slow
@SETTINGS
@given(
    line=st.integers(min_value=2, max_value=37),
    column=st.integers(min_value=0, max_value=7),
    text=st.text(max_size=12),
)
def test_any_cell_gives_a_located_message_or_a_valid_table(line, column, text):
    rows = WARD_MONTH.splitlines()
    cells = rows[line - 1].split(",")
    cells[column] = text.replace(",", ";").replace("\n", " ").replace("\r", " ").replace('"', "")
    rows[line - 1] = ",".join(cells)
    data, report = _validate(ward_month="\n".join(rows) + "\n")
    for problem in report.problems:
        assert LOCATION.match(str(problem)), str(problem)
    if data is not None:
        assert (data.ward_month["occupied_bed_days"].dropna() >= 0).all()


counts = st.lists(st.integers(min_value=0, max_value=500), min_size=12, max_size=12)


@pytest.mark.slow
@SETTINGS
@given(physical=counts, beds=st.lists(st.integers(1, 20_000), min_size=12, max_size=12))
def test_valid_programmes_round_trip_exactly(physical, beds):
    rows = ["trust_code,ward_id,month,occupied_bed_days,physical_restraint"]
    for k in range(12):
        rows.append(f"RXA,W1,2021-{k + 1:02d},{beds[k]},{physical[k]}")
    wards = "trust_code,trust_name,ward_id,ward_type,start_month\nRXA,Trust A,W1,picu,2021-07\n"
    data, report = _validate(wards=wards, ward_month="\n".join(rows) + "\n", events=None)
    assert not report.errors, [str(p) for p in report.errors]
    wm = data.ward_month.sort_values("month")
    assert wm["physical_restraint"].tolist() == [float(v) for v in physical]
    assert wm["occupied_bed_days"].tolist() == [float(v) for v in beds]


@SETTINGS
@given(delimiter=st.sampled_from([";", "\t"]))
def test_the_delimiter_does_not_change_the_data(delimiter):
    base, _ = _validate()
    other, report = _validate(
        wards=WARDS.replace(",", delimiter),
        ward_month=WARD_MONTH.replace(",", delimiter),
        events=EVENTS.replace(",", delimiter),
    )
    assert report.ok
    cols = ["trust_code", "ward_id", "month", "occupied_bed_days", "physical_restraint"]
    assert np.array_equal(base.ward_month[cols].to_numpy(), other.ward_month[cols].to_numpy())
