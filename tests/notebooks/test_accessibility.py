"""Issue 19: every page of a demonstration run, read in Debian's headless Chromium as a person
and a screen reader would: axe-core finds no violation (WCAG 2.2 A/AA and best practice), no
page scrolls sideways at 320 px, badge and verdict text reach 4.5:1, a trust page prints on
about a dozen A4 pages with its key findings on the first, and the pages open with the answer.

The browser is driven by ``tests/browser/check.mjs`` (axe-core and playwright-core from npm,
installed by ``make install``; Debian's Chromium, installed by CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.report.html import html_tables
from rrp_eval.report.suite import run_suite

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
MAX_PRINTED_PAGES = 13  # "no more than about a dozen"

pytestmark = pytest.mark.notebook


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data = write_demo_programme(tmp_path_factory.mktemp("demo"))
    out = tmp_path_factory.mktemp("a11y") / "out"
    summary = run_suite(data=data, params_dir=ROOT / "params", out=out, jobs=2)
    assert summary.exit_code == 0, [(r.task.html, r.message) for r in summary.results]
    return out


@pytest.fixture(scope="module")
def checked(demo_run, tmp_path_factory):
    """check.mjs's reading of every page of the run, by path relative to the output."""
    _require(shutil.which("node") is not None, "Node.js (apt-get install nodejs npm)")
    _require(
        (BROWSER / "node_modules" / "axe-core").is_dir(),
        "the browser checks' packages (make install runs npm ci in tests/browser)",
    )
    _require(
        any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
        "a headless browser (apt-get install chromium)",
    )
    pages = sorted(demo_run.rglob("*.html"))
    pdfs = tmp_path_factory.mktemp("pdf")
    proc = subprocess.run(
        ["node", str(BROWSER / "check.mjs"), "--pdf", str(pdfs), *map(str, pages)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=BROWSER,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {str(Path(r["page"]).relative_to(demo_run)): r for r in results}


def test_every_page_of_a_demo_run_is_checked(demo_run, checked):
    assert {"index.html", "methods.html", "programme.html", "data_quality.html"} <= set(checked)
    assert sum(name.startswith("trusts/") for name in checked) == 14


def test_axe_core_finds_no_violation_on_any_page(checked):
    found = {
        name: [(v["id"], v["nodes"], v["examples"][:1]) for v in r["violations"]]
        for name, r in checked.items()
        if r["violations"]
    }
    assert found == {}, json.dumps(found, indent=1)[:4000]


def test_no_page_scrolls_sideways_at_320_px(checked):
    wide = {name: r["overflow320"] for name, r in checked.items() if r["overflow320"] > 0}
    assert wide == {}


def test_the_first_tab_reaches_a_visible_skip_link_with_the_nhs_focus_style(checked):
    for name, r in checked.items():
        focus = r["focus"]
        assert focus["text"].startswith("Skip to") and focus["visible"], (name, focus)
        # NHS focus: yellow (#ffeb3b) with a dark bar beneath, >= 3:1 on any background here
        assert focus["background"] == "rgb(255, 235, 59)", (name, focus)
        assert "rgb(35, 31, 32)" in focus["shadow"], (name, focus)


def test_pages_load_without_console_errors(checked):
    errors = {name: r["consoleErrors"] for name, r in checked.items() if r["consoleErrors"]}
    assert errors == {}


def test_a_trust_page_prints_on_about_a_dozen_pages_with_its_key_findings_first(checked):
    for name in ("trusts/X01.html", "trusts/X11.html"):
        r = checked[name]
        assert 1 <= r["pdfPages"] <= MAX_PRINTED_PAGES, (name, r["pdfPages"])
        assert r["keyFindingsOnFirstPage"] is True, name
    assert checked["index.html"]["keyFindingsOnFirstPage"] is True


def test_trust_pages_open_with_their_answer(demo_run):
    for code in ("X01", "X11"):
        page = (demo_run / "trusts" / f"{code}.html").read_text()
        key = page.index('class="rrp-key"')
        assert key < page.index("Wards and data coverage")  # before any detail
        box = page[key : page.index("</section>", key)]
        assert "Pre-specified answer" in box and "months after joining" in box
        assert "Could the data show the aim?" in box
    x11 = (demo_run / "trusts" / "X11.html").read_text()
    assert "above the funnel plot" in x11[: x11.index("Wards and data coverage")]
    x05 = (demo_run / "trusts" / "X05.html").read_text()
    head = x05[: x05.index("Wards and data coverage")]
    assert "Self-harm" in head and "recorded in 0%" in head


def test_the_index_gives_a_verdict_and_flags_in_words(demo_run):
    page = (demo_run / "index.html").read_text()
    assert page.index("The pre-specified answer") < page.index("Every trust in the run")
    table = html_tables(page)["Every trust in the run"]
    head, rows = table[0], {r[0]: r for r in table[1:]}
    verdicts = {code: r[head.index("Verdict")] for code, r in rows.items()}
    words = ("Improved", "No clear change", "Worse")
    assert all(v.startswith(words) for v in verdicts.values()), verdicts
    assert verdicts["X02"].startswith("Improved") and "24% lower" in verdicts["X02"]
    attention = {code: r[head.index("Needs attention")] for code, r in rows.items()}
    assert "funnel" in attention["X11"] and "Self-harm" in attention["X05"]
    assert attention["X01"] == "None flagged"
    signals = [r[head.index("Making Data Count, latest month")] for r in rows.values()]
    # every signal names its measure in text (not only in a colour or a tooltip)
    assert all(("Common cause" in s or "Concern" in s or "Improvement" in s) for s in signals)
    assert any("Concern Self-harm" in s for s in signals)


def test_the_methods_page_is_shipped_and_linked(demo_run):
    methods = (demo_run / "methods.html").read_text()
    assert 'id="glossary"' in methods and "Rate ratio" in methods
    for name in ("index.html", "programme.html", "trusts/X01.html"):
        page = (demo_run / name).read_text()
        assert "methods.html" in page, name
        assert "docs/methods.md in the rrp-eval repository" not in page


def test_pdfs_for_board_papers_are_printed_from_every_page(demo_run, tmp_path):
    """``rrp-eval run --pdf``'s printing (write_pdfs) on the finished demo run: one A4 PDF per
    page; the run's own audit is unaffected (the PDFs are printed from the audited pages)."""
    import re

    from rrp_eval.report.audit import audit_outputs
    from rrp_eval.report.pdf import find_browser, write_pdfs

    _require(find_browser() is not None, "a headless browser (apt-get install chromium)")
    copy = tmp_path / "out"
    shutil.copytree(demo_run, copy)
    pdfs = write_pdfs(copy, jobs=2)
    assert {p.name for p in pdfs} >= {"index.pdf", "programme.pdf", "trusts_X01.pdf"}
    for pdf in pdfs:
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf.name
    pages = len(re.findall(rb"/Type\s*/Page[^s]", (copy / "pdf" / "trusts_X01.pdf").read_bytes()))
    assert 1 <= pages <= MAX_PRINTED_PAGES
    assert audit_outputs(copy).ok
