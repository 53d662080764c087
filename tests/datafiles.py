"""A tiny valid programme written as CSV text, for tests that change one cell at a time."""

from __future__ import annotations

from pathlib import Path

WARDS = """trust_code,trust_name,ward_id,ward_name,ward_type,start_month,cohort,region,beds
RXA,Trust A,W1,Ash,adult_acute,2021-07,Wave 1,London,20
RXA,Trust A,W2,Beech,picu,,,London,10
RXB,Trust B,001,Cedar,older_adult,2021-07,Wave 1,Midlands,18
"""


def ward_month_rows() -> list[str]:
    rows = [
        "trust_code,ward_id,month,occupied_bed_days,physical_restraint,prone_restraint,"
        "seclusion,rapid_tranquillisation"
    ]
    for trust, ward, bd in (("RXA", "W1", 550), ("RXA", "W2", 250), ("RXB", "001", 500)):
        for m in range(1, 13):
            month = f"2021-{m:02d}"
            rows.append(f"{trust},{ward},{month},{bd + m},{10 + m % 3},{m % 2},{m % 4},{m % 3}")
    return rows


WARD_MONTH = "\n".join(ward_month_rows()) + "\n"
EVENTS = "trust_code,ward_id,month,type,note\nRXA,ALL,2021-03,system_change,New system\n"


def write_programme(
    folder: Path, *, wards: str = WARDS, ward_month: str = WARD_MONTH, events: str | None = EVENTS
) -> Path:
    """Write the three tables (events optional) to ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wards.csv").write_text(wards, encoding="utf-8")
    (folder / "ward_month.csv").write_text(ward_month, encoding="utf-8")
    if events is not None:
        (folder / "events.csv").write_text(events, encoding="utf-8")
    return folder


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of a CSV text."""
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"
