"""Shared test fixtures: the reference-data folder and the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TESTS = ROOT / "tests" / "notebooks"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/notebooks starts kernels or whole runs: marked ``notebook``."""
    for item in items:
        if Path(item.fspath).is_relative_to(NOTEBOOK_TESTS):
            item.add_marker(pytest.mark.notebook)


def reference_dir() -> Path:
    """``RRP_EVAL_REFERENCE``, defaulting to ``../shared/reference`` beside the project."""
    env = os.environ.get("RRP_EVAL_REFERENCE")
    return Path(env) if env else ROOT.parent / "shared" / "reference"


def reference_required() -> bool:
    """CI sets RRP_EVAL_REQUIRE_REFERENCE (and CI=true): there, missing data is a failure."""
    flag = os.environ.get("RRP_EVAL_REQUIRE_REFERENCE", "") or os.environ.get("CI", "")
    return flag.lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def reference() -> Path:
    path = reference_dir()
    if not path.is_dir():
        msg = f"reference data not found at {path}; set RRP_EVAL_REFERENCE to ../shared/reference"
        if reference_required():
            pytest.fail(msg + " (required in CI: reference tests may never be skipped there)")
        pytest.skip(msg)
    return path


def half_unit(value: float) -> float:
    """Half a unit of the last decimal printed for ``value`` (a tolerance for printed numbers)."""
    text = repr(float(value))
    return 0.5 * 10.0 ** -len(text.split(".")[1]) if "." in text and "e" not in text else 0.5e-12


def load_cases(reference: Path, name: str) -> dict:
    """The cases of a reference JSON file, by id."""
    import json

    data = json.loads((reference / "spc" / name).read_text(encoding="utf-8"))
    return {c["id"]: c for c in data["cases"]}


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
