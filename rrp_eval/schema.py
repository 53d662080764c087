"""The column contract of the input tables (SPEC §1): names, types and allowed values."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_KEY_CHARS = 32
KEY_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_KEY_CHARS}}}$")
KEY_RULE = (
    f"letters, digits, '-' and '_' only, at most {MAX_KEY_CHARS} characters (the code names files)"
)

#: the longest text cell accepted (names, labels, notes); longer is an error
MAX_TEXT_CHARS = 1_000
#: characters never accepted in a text cell: C0 and C1 controls (tab and line breaks, which
#: a quoted cell may hold, excepted), and the bidirectional embedding, override and isolate
#: marks that can make a name display as something else
UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: ceilings on one ward-month (a provider's month included): above them a value is a mistake
#: (a unit or paste error), and values near float limits would overflow the models
MAX_COUNT = 100_000
MAX_BED_DAYS = 1_000_000

WARD_TYPES = (
    "adult_acute",
    "older_adult",
    "picu",
    "camhs",
    "ld_autism",
    "forensic",
    "rehab",
    "eating_disorder",
    "perinatal",
    "other",
    "all",
)

STANDARD_MEASURES = (
    "physical_restraint",
    "prone_restraint",
    "rapid_tranquillisation",
    "seclusion",
    "segregation",
    "mechanical_restraint",
    "people_restrained",
)

# Balancing measures recognised by name: analysed when present, never required.
BALANCING_MEASURES = (
    "violence_incidents",
    "assaults_on_staff",
    "assaults_on_patients",
    "self_harm",
)

# restrictive_practice = physical restraint + seclusion + rapid tranquillisation (NCCMH, MHSIP)
DERIVED_MEASURES = {
    "restrictive_practice": ("physical_restraint", "seclusion", "rapid_tranquillisation"),
}

MEASURE_LABELS = {
    "physical_restraint": "Physical restraint",
    "prone_restraint": "Prone restraint",
    "rapid_tranquillisation": "Rapid tranquillisation",
    "seclusion": "Seclusion",
    "segregation": "Long-term segregation",
    "mechanical_restraint": "Mechanical restraint",
    "people_restrained": "People subject to restrictive intervention",
    "restrictive_practice": "Restrictive practice (restraint, seclusion, rapid tranquillisation)",
    "violence_incidents": "Violence and aggression incidents",
    "assaults_on_staff": "Assaults on staff",
    "assaults_on_patients": "Assaults on patients",
    "self_harm": "Self-harm incidents",
}

STATUS_VALUES = ("suppressed", "rounded5", "inferred_zero", "estimated")
STATUS_SUFFIX = "_status"

EVENT_TYPES = ("method_break", "reporting_onset", "reconfiguration", "system_change", "other")
ALL_WARDS = "ALL"


@dataclass(frozen=True)
class TableContract:
    """Required and optional columns of one input table."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


WARDS = TableContract(
    "wards",
    required=("trust_code", "trust_name", "ward_id", "ward_type", "start_month"),
    optional=("ward_name", "cohort", "region", "beds"),
    keys=("trust_code", "ward_id"),
)
WARD_MONTH = TableContract(
    "ward_month",
    required=("trust_code", "ward_id", "month", "occupied_bed_days"),
    optional=STANDARD_MEASURES + BALANCING_MEASURES,
    keys=("trust_code", "ward_id", "month"),
)
EVENTS = TableContract(
    "events",
    required=("trust_code", "ward_id", "month", "type"),
    optional=("note",),
)
TABLES = (WARDS, WARD_MONTH, EVENTS)
REQUIRED_TABLES = ("wards", "ward_month")
