"""Notebooks are committed without outputs or execution counts (DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"


def unstripped_cells(path: Path) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        i
        for i, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "notebooks").rglob("*.ipynb")), ids=lambda p: p.name
)
def test_committed_notebooks_are_stripped(path):
    assert "checkpoint" not in str(path)
    assert unstripped_cells(path) == [], f"{path.name}: clear outputs before committing"


def test_checker_accepts_a_stripped_notebook():
    assert unstripped_cells(FIXTURES / "stripped.ipynb") == []


def test_checker_catches_outputs_and_execution_counts():
    assert unstripped_cells(FIXTURES / "with_outputs.ipynb") == [1, 2]
