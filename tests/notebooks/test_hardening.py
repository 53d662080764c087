"""Hostile names, paths and parameters: escaped, literal, contained (issue 8)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from datafiles import WARD_MONTH, WARDS, write_programme
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from rrp_eval.params import ParameterError, load_params
from rrp_eval.report.plan import inside
from rrp_eval.report.suite import UnusableInput, run_suite

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_NAME = "<script>alert('t')</script> Trust & Co"
IMG_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_STRINGS = [
    '"; import os; os.system("touch PWNED"); x = "',
    "'''; import os; os.system('touch PWNED'); '''",
    "x\nimport os\nos.system('touch PWNED')",
    "\\\"; open('PWNED', 'w'); \\\"",
    "{__import__('os').system('touch PWNED')}",
]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    wards = WARDS.replace("Trust A", f'"{SCRIPT_NAME}"').replace(",Ash,", f",{IMG_NAME},")
    wards = wards.replace("Wave 1,London", "<b>Wave</b>,London", 1)
    data = write_programme(base / 'd"; import os; os.system("touch PWNED"); "', wards=wards)
    out = base / "out"
    summary = run_suite(data=data, params_dir=ROOT / "params", out=out, trusts=["RXA"], jobs=2)
    return base, out, summary


def test_names_with_html_are_escaped_in_every_report(hostile_run):
    _, out, summary = hostile_run
    assert summary.exit_code == 0, [(r.task.html, r.message) for r in summary.results]
    pages = {p.name: p.read_text(encoding="utf-8") for p in out.rglob("*.html")}
    assert {"index.html", "programme.html", "RXA.html", "data_quality.html"} <= set(pages)
    for name, page in pages.items():
        scripts = page.lower().count("<script")
        assert scripts == (1 if name == "index.html" else 0), name  # only the index's sorter
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page and not re.search(r"<[^>]*\sonerror=", page), name
        assert "<b>Wave</b>" not in page, name
    assert "&lt;script&gt;" in pages["RXA.html"] and "&lt;img src=x" in pages["RXA.html"]


def test_a_hostile_data_path_reaches_the_notebook_as_a_literal(hostile_run):
    base, out, _ = hostile_run
    assert not list(base.rglob("PWNED")) and not Path("PWNED").exists()
    nb = nbformat.read(out / "notebooks" / "20_trust_evaluation_RXA.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    names: dict = {}
    exec(injected.source, {}, names)  # the cell papermill wrote, run on its own
    assert names["data"].endswith('d"; import os; os.system("touch PWNED"); "')


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_papermill_writes_hostile_strings_as_literals(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nb = load_notebook_node(str(ROOT / "notebooks" / "20_trust_evaluation.ipynb"))
    out = parameterize_notebook(nb, {"trust_code": value, "data": value})
    injected = next(c for c in out.cells if "injected-parameters" in c.metadata.get("tags", []))
    names: dict = {}
    exec(injected.source, {}, names)
    assert names["trust_code"] == value and names["data"] == value
    assert not (tmp_path / "PWNED").exists()


def test_hostile_trust_codes_are_refused_before_anything_runs(tmp_path):
    wards = WARDS.replace("RXB,Trust B", "../../x,Trust B")
    wm = WARD_MONTH.replace("RXB,", "../../x,")
    data = write_programme(tmp_path / "data", wards=wards, ward_month=wm)
    with pytest.raises(UnusableInput):
        run_suite(data=data, params_dir=ROOT / "params", out=tmp_path / "out", jobs=1)
    assert not (tmp_path / "out").exists()


def test_no_output_path_can_leave_the_output_folder(tmp_path):
    assert inside(tmp_path, "trusts/RXA.html") == (tmp_path / "trusts" / "RXA.html").resolve()
    for bad in ("../x.html", "trusts/../../x.html", "/etc/passwd"):
        with pytest.raises(UnusableInput):
            inside(tmp_path, bad)


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "programme.yaml").write_text(
        'programme: !!python/object/apply:os.system ["touch PWNED"]\n', encoding="utf-8"
    )
    with pytest.raises(ParameterError, match=r"programme\.yaml:1: not valid YAML"):
        load_params(tmp_path)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
