"""The layout and import rules of DESIGN.md, enforced by parsing every module's imports.

Layers, lowest first: base (version, digests, schema, parameters, the disclosure rule) → data →
prepare → models → evaluate → show and plots → report, cli and the public API. A module imports
only from its own layer or below; the one upward call allowed is a result's ``plot()``
importing ``rrp_eval.plots`` when called.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rrp_eval"

LAYERS = [
    ("base", ("rrp_eval._version", "rrp_eval.digest", "rrp_eval.schema", "rrp_eval.params",
              "rrp_eval.disclosure")),
    ("data", ("rrp_eval.data",)),
    ("prepare", ("rrp_eval.prepare",)),
    ("models", ("rrp_eval.models",)),
    ("evaluate", ("rrp_eval.evaluate",)),
    ("show", ("rrp_eval.plots", "rrp_eval.show")),
    ("report", ("rrp_eval.report", "rrp_eval.cli", "rrp_eval.its", "rrp_eval.spc", "rrp_eval")),
]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    assert best is not None, f"{module} is in no layer: add it to LAYERS and DESIGN.md"
    return best[0]


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, enclosing function or None, line) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, function, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, function, child.lineno))
                # ``from rrp_eval import show`` imports the submodule
                found.extend(
                    (f"{child.module}.{a.name}", function, child.lineno)
                    for a in child.names
                    if f"{child.module}.{a.name}" in MODULES
                )
            visit(child, function)

    visit(tree, None)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _internal_edges() -> list[tuple[str, str, str | None, int]]:
    edges = []
    for name, path in MODULES.items():
        for target, function, line in _imports(path):
            if target.startswith("rrp_eval") and target != name:
                target = target if target in MODULES else target.rsplit(".", 1)[0]
                edges.append((name, target, function, line))
    return edges


def test_every_module_is_in_a_layer():
    for name in MODULES:
        _layer(name)


def test_modules_import_only_from_their_layer_or_below():
    upward = []
    for source, target, function, line in _internal_edges():
        if _layer(target) <= _layer(source):
            continue
        if function == "plot" and target == "rrp_eval.plots":
            continue  # a result's plot(): the one allowed upward call
        upward.append(f"{MODULES[source].relative_to(PACKAGE.parent)}:{line}: {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("IPython", ("rrp_eval.show.display",)),
        ("papermill", ("rrp_eval.report",)),
        ("nbconvert", ("rrp_eval.report",)),
        ("nbclient", ("rrp_eval.report",)),
        ("matplotlib", ("rrp_eval.plots", "rrp_eval.show", "rrp_eval.report")),
        ("seaborn", ("rrp_eval.plots",)),
    ],
)
def test_libraries_are_imported_only_where_design_allows(library, allowed):
    wrong = [
        f"{name}:{line}"
        for name, path in MODULES.items()
        for target, _, line in _imports(path)
        if (target == library or target.startswith(library + "."))
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert not wrong, f"{library} imported outside {allowed}: {wrong}"


def test_only_data_reads_data_files():
    """pandas readers appear in data/ (the inputs) and report/ (which reads back its own
    tables to reuse them); nowhere else."""
    readers = ("read_csv", "read_excel", "read_parquet", "load_workbook")
    wrong = []
    for name, path in MODULES.items():
        if name.startswith(("rrp_eval.data", "rrp_eval.report")):
            continue
        text = path.read_text(encoding="utf-8")
        wrong += [f"{name}: {r}" for r in readers if f"{r}(" in text]
    assert not wrong, wrong


def test_the_layer_test_can_fail(tmp_path):
    """A models module importing the evaluation layer is caught; its plot() is let through."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from rrp_eval.evaluate.trust import evaluate_trust\n"
        "def plot():\n    from rrp_eval.plots import plot_its\n",
        encoding="utf-8",
    )
    source = "rrp_eval.models.bad"
    assert ("rrp_eval.plots", "plot", 3) in _imports(bad)
    (target, function, _line) = next(
        t for t in _imports(bad) if t[0].startswith("rrp_eval.evaluate")
    )
    assert function is None and _layer(target) > _layer(source)
