"""One table of the names a reader sees: ward types, statuses and designs as words, never the
data's codes (``picu``, ``ld_autism``, ``not_estimable``)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: ward types (``rrp_eval.schema.WARD_TYPES``) as a report names them
WARD_TYPES = {
    "adult_acute": "Adult acute",
    "older_adult": "Older adult",
    "picu": "Psychiatric intensive care (PICU)",
    "camhs": "Children and young people (CAMHS)",
    "ld_autism": "Learning disability and autism",
    "forensic": "Forensic (secure)",
    "rehab": "Rehabilitation",
    "eating_disorder": "Eating disorder",
    "perinatal": "Perinatal (mother and baby)",
    "other": "Other",
    "all": "All wards (provider total)",
}

STATUSES = {
    "ok": "estimated",
    "not_estimable": "not estimable",
    "failed": "failed",
    "skipped": "skipped",
}

DESIGNS = {
    "summed": "one series (wards summed)",
    "stacked": "ward series stacked on their own starts",
    "none": "no start dates",
}

#: every table above, by what it names
DISPLAY_NAMES = {"ward_type": WARD_TYPES, "status": STATUSES, "design": DESIGNS}


def display_name(kind: str, code: object) -> str:
    """``code`` of ``kind`` (``ward_type``, ``status``, ``design``) as a report writes it;
    an unknown code is written with spaces for underscores, first letter kept."""
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return ""
    text = str(code)
    return DISPLAY_NAMES.get(kind, {}).get(text, text.replace("_", " "))


def display_names(kind: str, codes: Iterable[object]) -> list[str]:
    """:func:`display_name` of each code."""
    return [display_name(kind, c) for c in codes]
