"""End to end: the real notebooks executed by papermill on the demonstration programme, the
HTML they leave, and the failure paths with tiny fixture notebooks."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from datafiles import WARD_MONTH, replace_line, write_programme

import rrp_eval as rrp
from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.data.validate import load_programme
from rrp_eval.disclosure import DisclosureRule, audit_tables
from rrp_eval.evaluate.programme import evaluate_programme
from rrp_eval.evaluate.tables import ITS_EFFECTS_COLUMNS, SPC_COLUMNS
from rrp_eval.evaluate.trust import evaluate_trust
from rrp_eval.models.meta import PROGRAMME_COLUMNS
from rrp_eval.params import load_params
from rrp_eval.prepare import with_derived_measures
from rrp_eval.report.audit import Finding, audit_outputs
from rrp_eval.report.export import csv_text
from rrp_eval.report.html import external_requests, html_tables
from rrp_eval.report.manifest import state_path
from rrp_eval.report.plan import INTERNAL_STAMP
from rrp_eval.report.suite import UnusableInput, run_suite

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "suite"
TRUSTS = ["X01", "X03"]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return write_demo_programme(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def shared_run(demo_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    summary = run_suite(data=demo_data, params_dir=ROOT / "params", out=out, trusts=TRUSTS, jobs=2)
    return out, summary


def test_the_full_output_set(shared_run):
    out, summary = shared_run
    assert summary.exit_code == 0, [(r.task.html, r.message) for r in summary.results]
    for name in (
        "index.html",
        "programme.html",
        "data_quality.html",
        "run.json",
        "trusts/X01.html",
        "trusts/X03.html",
        "notebooks/20_trust_evaluation_X01.ipynb",
        "notebooks/30_programme_evaluation_programme.ipynb",
        "programme_at_a_glance.png",
        "tables/its_sensitivity.csv",
    ):
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(".out.build-*")), "the build folder is left behind"


def test_tables_have_the_spec_columns(shared_run):
    out, _ = shared_run
    its = pd.read_csv(out / "tables" / "its_effects.csv")
    assert list(its.columns[: len(ITS_EFFECTS_COLUMNS)]) == ITS_EFFECTS_COLUMNS
    assert set(its.trust_code) == set(TRUSTS) and set(its.status) <= {"ok", "not_estimable"}
    programme = pd.read_csv(out / "tables" / "programme_effects.csv")
    # SPEC's columns, then each row's role in the pre-specified plan (issue 16)
    assert list(programme.columns) == [*PROGRAMME_COLUMNS, "role"]
    assert (programme["role"] == "primary").sum() == 1
    assert {"random_effects_dl", "random_effects_reml", "gee_pooled"} <= set(programme.method)
    assert list(pd.read_csv(out / "tables" / "spc_signals.csv").columns) == SPC_COLUMNS


def test_tables_match_a_direct_evaluation_and_nothing_flows_back_from_a_notebook(
    shared_run, demo_data
):
    out, summary = shared_run
    assert {r.kernel for r in summary.results} == {"warm"}  # the default, on Linux
    params = load_params(ROOT / "params")
    data = with_derived_measures(load_programme(demo_data, params))
    prog = evaluate_programme(data, params, trusts=TRUSTS)
    sensitivity = pd.concat(
        [evaluate_trust(data, t, params).tables()["its_sensitivity"] for t in TRUSTS],
        ignore_index=True,
    )
    # the shared table's centre lines and limits are controlled (MeasureSPC.controlled)
    rule = DisclosureRule.from_params(params.disclosure)
    spc = pd.concat([prog.trusts[t].tables(rule)["spc_signals"] for t in TRUSTS])
    assert not spc.reset_index(drop=True).equals(prog.spc_signals)  # the exact ones are not
    for name, frame in (
        ("its_effects", prog.its_effects),
        ("spc_signals", spc),
        ("its_sensitivity", sensitivity),
        ("programme_effects", prog.pooled),
    ):
        assert (out / "tables" / f"{name}.csv").read_text() == csv_text(frame), name
    assert not (out / "notebooks" / "rows").exists()  # no side channel from the notebooks


def test_manifest(shared_run):
    out, _ = shared_run
    m = json.loads(state_path(out.resolve()).read_text())  # the full manifest, beside it
    assert {"data/wards.csv", "data/ward_month.csv", "params/programme.yaml"} <= set(m["inputs"])
    assert all(len(v["sha256"]) == 64 for v in m["inputs"].values())
    assert m["outputs"]["trusts/X01.html"]["status"] == "ok"
    assert m["parameters"]["trusts"] == TRUSTS and m["timings_seconds"]["total"] > 0
    # the panel fits ran as tasks beside the trusts', one per measure, and were timed
    assert m["timings_seconds"]["panel_restrictive_practice"] > 0


def test_the_shared_manifest_has_no_paths_and_no_hashes_of_the_data(shared_run):
    out, _ = shared_run
    full = json.loads(state_path(out.resolve()).read_text())
    text = (out / "run.json").read_text()
    shared = json.loads(text)
    assert {"data/wards.csv", "data/ward_month.csv", "params/programme.yaml"} <= set(
        shared["inputs"]
    )
    for entry in full["inputs"].values():
        assert entry["sha256"] not in text and entry["path"] not in text
    assert "input_sha256" not in text
    digests = [e["input_sha256"] for e in full["outputs"].values() if "input_sha256" in e]
    assert digests and not any(d in text for d in digests)

    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    assert not [s for s in strings(shared) if s.startswith("/")]
    assert str(out.resolve().parent) not in text and " /" not in shared["reproduce"]
    assert shared["outputs"]["trusts/X01.html"]["status"] == "ok"


def _html_table(page: str, caption: str) -> pd.DataFrame:
    rows = html_tables(page)[caption]
    return pd.DataFrame(rows[1:], columns=rows[0])


def _pages(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


def test_no_page_shows_nan_or_a_small_group(shared_run):
    """A ward with no events after joining once printed "0.00 (nan to nan)", and the aims
    tables showed groups of 1-2 wards that the breakdowns withhold."""
    out, _ = shared_run
    for name, page in _pages(out).items():
        cells = [c for rows in html_tables(page).values() for r in rows for c in r]
        assert not [c for c in cells if re.search(r"\bnan\b", str(c), re.I)], name
    page = (out / "programme.html").read_text(encoding="utf-8")
    for caption, rows in html_tables(page).items():
        if "Wards" in rows[0] and "before-after" in caption:
            n = rows[0].index("Wards")
            for row in rows[1:]:
                if int(row[n]) < 3:
                    assert "fewer than 3 wards" in row, (caption, row)


def test_pages_make_no_request_to_another_address(shared_run):
    out, _ = shared_run
    for name, page in _pages(out).items():
        assert external_requests(page) == [], name


def test_pages_hide_code_and_have_alt_text_and_table_headers(shared_run):
    out, _ = shared_run
    for name, page in _pages(out).items():
        assert "load_programme(" not in page and "import rrp_eval" not in page, name
        imgs = re.findall(r"<img\b[^>]*>", page)
        assert all(re.search(r'\balt="[^"]{20,}"', img) for img in imgs), name
        if name == "methods.html":  # the methods and glossary: no data, nothing to control
            assert "<dl" in page and "Internal: not for sharing" not in page
            continue
        assert "<th" in page, name
        assert "Disclosure control:" in page and "Internal: not for sharing" not in page
    trust_page = (out / "trusts" / "X01.html").read_text()
    assert len(re.findall(r"<img\b", trust_page)) >= 10  # XmR and ITS charts per measure


def test_a_trust_report_shows_no_other_trust(shared_run, demo_data):
    out, _ = shared_run
    page = (out / "trusts" / "X01.html").read_text()
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # not words
    wards = pd.read_csv(demo_data / "wards.csv")
    own = set(wards.loc[wards.trust_code == "X01", "ward_name"])
    others = set(wards.loc[wards.trust_code != "X01", "ward_name"]) - own
    assert not [n for n in others if n in page]
    assert not [t for t in set(wards.trust_code) - {"X01"} if re.search(rf"\b{t}\b", page)]


def test_a_trust_report_shows_the_its_diagnostics(shared_run):
    """Issue 15: the reading names the correlation and degrees of freedom, every fitted
    measure has an influence line, the headline has its placebo check, the balancing measures
    are read as negative controls and the sensitivity table has the robust and plug-in rows."""
    out, _ = shared_run
    text = re.sub(r"<[^>]+>", " ", (out / "trusts" / "X01.html").read_text())
    assert "averaged over the correlations the data allow" in text
    assert re.search(r"on average; t intervals on \d+ degrees of freedom", text)
    assert text.count("Influence:") >= 3
    assert "Placebo check (Restrictive practice" in text and "false starts" in text
    assert "Negative controls" in text and "Assaults on staff" in text
    assert "robust (Huber weights)" in text and "autocorrelation: AR(1) plug-in" in text


def test_shared_tables_show_counts_rounded_to_five(shared_run):
    out, _ = shared_run
    page = (out / "trusts" / "X01.html").read_text()
    table = _html_table(page, "Wards and data coverage")
    shown = table["Occupied bed days"].str.replace(",", "")
    assert len(shown) == 4
    assert shown.map(lambda v: v == "*" or int(v) % 5 == 0).all()


def test_index_lists_every_trust_with_effects_and_icons(shared_run):
    out, _ = shared_run
    index = (out / "index.html").read_text()
    assert 'href="trusts/X01.html"' in index and 'href="trusts/X03.html"' in index
    assert "stacked" in index and "summed" in index and 'class="badge badge-' in index
    assert external_requests(index) == []


def test_programme_report_answers_the_programme_questions(shared_run, demo_data):
    out, _ = shared_run
    page = (out / "programme.html").read_text()
    assert "Programme or secular trend?" in page and "Event-study chart" in page
    methods = _html_table(
        page,
        "Restrictive practice (restraint, seclusion, rapid tranquillisation): every estimate "
        "of the programme's effect",
    )
    assert "Controlled: extended TWFE Poisson" in set(methods["Method"])
    # the pre-specified method is marked (issue 16), and the page leads with its answer
    assert sum(m.endswith("(pre-specified)") for m in methods["Method"]) == 1
    assert page.index("Pre-specified primary answer") < page.index("Programme or secular trend?")
    aims = _html_table(
        page,
        "Restrictive practice (restraint, seclusion, rapid tranquillisation): wards whose rate "
        "fell by the aim (months 6-17 after joining against the 12 months before)",
    )
    assert {"Expected with no change (95% range)", "Estimated share truly meeting it"} <= set(
        aims.columns
    )
    every = _html_table(page, "Every measure: rate ratios (95% CI)")
    assert {"Prone restraint", "Violence and aggression incidents"} <= set(every["Measure"])
    assert set(every.loc[every["Kind"] == "balancing", "Wards meeting the 25% aim"]) == {"-"}
    # breakdowns cover every measure; a group of fewer than 3 wards shows no estimate
    by_type = _html_table(
        page,
        "Every measure by ward type: rate ratio after / before joining (95% CI; before-after, "
        "not controlled)",
    )
    assert {"Prone restraint", "Self-harm incidents"} <= set(by_type.columns)
    wards = pd.read_csv(demo_data / "wards.csv")
    small = wards[wards["start_month"].notna()].groupby("ward_type").size()
    for ward_type in small[small < 3].index:
        row = by_type[by_type["Ward type"] == ward_type.replace("_", " ")]
        assert row.empty or (row.iloc[0, 1:].isin(["fewer than 3 wards", "-"])).all()
    effects = pd.read_csv(out / "tables" / "programme_effects.csv")
    controlled = effects[effects["method"] == "controlled"]
    assert set(controlled["effect"]) == {"level_rr", "slope_rr", "rr_h"}
    assert {"prone_restraint", "violence_incidents"} <= set(controlled["measure"])


def test_mhsds_data_give_a_provider_context_report(tmp_path):
    from rrp_eval.data.mhsds import convert_mhsds

    data = convert_mhsds([ROOT / "tests" / "fixtures" / "mhsds"]).write(tmp_path / "data")
    out = tmp_path / "out"
    summary = run_suite(data=data, params_dir=data, out=out, jobs=2)
    assert summary.exit_code == 0, [(r.task.html, r.message) for r in summary.results]
    page = (out / "programme.html").read_text()
    assert "provider-level context" in page and "Why there is no interrupted time series" in page
    assert "Funnel plot of" in page and "per provider" in page
    its = pd.read_csv(out / "tables" / "its_effects.csv")
    assert set(its["status"]) == {"not_estimable"}
    index = (out / "index.html").read_text()
    assert "MHSDS restrictive interventions" in index
    # issue 19: a provider report, not a trust evaluation with empty effect columns
    table = html_tables(index)["Every provider in the run"]
    assert table[0][0] == "Provider" and "Verdict" not in table[0]
    assert not [c for c in table[0] if "months" in c or "Level change" in c]
    assert "provider reports complete" in index
    provider = next((out / "trusts").glob("*.html")).read_text()
    assert "provider report" in provider and "No interrupted time series" in provider
    assert "comparison ward" not in provider and "One trust's evaluation" not in provider
    assert "provider total" in provider
    assert "Interrupted time series: rate ratios" not in provider  # no empty effects table


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI") == "true":
        pytest.fail("CI needs a headless browser: apt-get install chromium")
    pytest.skip("no headless browser (Debian: apt-get install chromium)")


def _browser(*args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    cmd += ["--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("name", ["index.html", "trusts/X01.html", "programme.html"])
def test_pages_render_in_a_headless_browser_without_console_errors(shared_run, name, tmp_path):
    from PIL import Image, ImageStat

    out, _ = shared_run
    png = tmp_path / "shot.png"
    proc = _browser("--window-size=1200,1600", f"--screenshot={png}", (out / name).as_uri())
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert png.stat().st_size > 20_000
    image = Image.open(png).convert("L")
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 10  # not a blank page
    dark = sum(image.histogram()[:128]) / (image.width * image.height)
    assert 0.005 < dark < 0.9  # some text and figures, on a light page


def test_index_table_sorts_in_a_browser(shared_run):
    out, _ = shared_run
    url = (out / "index.html").as_uri()
    proc = _browser("--dump-dom", url + "#sort=5")
    assert 'class="js-sortable"' in proc.stdout
    table = html_tables(proc.stdout)["Every trust in the run"]
    head = table[0]
    values = [row[head.index("At 12 months (pre-specified)")] for row in table[1:]]
    numbers = [float(v.split()[0]) for v in values if v]
    assert numbers == sorted(numbers) and len(numbers) >= 2
    proc = _browser("--dump-dom", url + "#sort=5-")
    table = html_tables(proc.stdout)["Every trust in the run"]
    values = [row[head.index("At 12 months (pre-specified)")] for row in table[1:]]
    numbers = [float(v.split()[0]) for v in values if v]
    assert numbers == sorted(numbers, reverse=True)


def test_internal_run_marks_every_page(demo_data, tmp_path):
    summary = run_suite(
        data=demo_data,
        params_dir=ROOT / "params",
        out=tmp_path / "internal",
        trusts=["X01"],
        jobs=1,
        internal=True,
        notebooks=FIXTURES,
    )
    assert summary.exit_code == 0
    assert summary.out.name == "internal-internal"  # an internal run has its own folder
    for name, page in _pages(summary.out).items():
        assert "Internal: not for sharing" in page, name
    for path in (summary.out / "tables").glob("*.csv"):  # a copied CSV still says so
        frame = pd.read_csv(path)
        assert frame.columns[0] == "marking", path.name
        assert (frame["marking"] == INTERNAL_STAMP).all(), path.name
    assert summary.audit is None  # an internal folder is not for sharing: nothing to audit


def test_a_failing_notebook_does_not_stop_the_others(demo_data, tmp_path):
    summary = run_suite(
        data=demo_data, out=tmp_path / "o", trusts=["X01", "X02", "X04"], jobs=2, notebooks=FIXTURES
    )
    status = {r.task.name: r.status for r in summary.results if r.task.stage.startswith("20")}
    assert status == {"X01": "ok", "X02": "failed", "X04": "ok"}
    assert summary.exit_code == 1
    failed = (tmp_path / "o" / "trusts" / "X02.html").read_text()
    assert "deliberate failure for X02" in failed  # the partial notebook is rendered with its error
    # ... but not its traceback, whose frames name install paths (and may quote data)
    executed = (tmp_path / "o" / "notebooks" / "20_trust_evaluation_X02.ipynb").read_text()
    for text in (failed, executed):
        assert "most recent call last" not in text and "site-packages" not in text
    index = (tmp_path / "o" / "index.html").read_text()
    assert "RuntimeError: deliberate failure for X02" in index
    assert "programme ok" in (tmp_path / "o" / "programme.html").read_text()


def test_a_page_failing_the_disclosure_check_is_withheld(demo_data, tmp_path):
    summary = run_suite(
        data=demo_data, out=tmp_path / "o", trusts=["X01", "X05"], jobs=2, notebooks=FIXTURES
    )
    status = {r.task.name: (r.status, r.message) for r in summary.results}
    assert status["X01"][0] == "ok" and status["X05"][0] == "failed"
    assert status["X05"][1].startswith("disclosure check: 1 finding(s)")
    page = (tmp_path / "o" / "trusts" / "X05.html").read_text()
    assert "Report withheld" in page and "<caption>Leak" not in page
    assert summary.exit_code == 1


def test_every_shared_run_ends_with_the_recoverability_audit(shared_run):
    out, summary = shared_run
    audit = json.loads((out / "run.json").read_text())["disclosure_audit"]
    assert audit["findings"] == [] and summary.audit.ok
    assert audit["files"] >= 20 and audit["tables"] >= 20 and audit["figures"] >= 40
    again = audit_outputs(out)  # the folder as published, read from disk again
    assert again.ok, [str(f) for f in again.findings]
    assert again.figures == audit["figures"]


def test_a_file_with_an_audit_finding_is_withheld_and_the_run_exits_1(
    demo_data, tmp_path, monkeypatch
):
    from rrp_eval.report import suite

    def leaky(folder, rule):
        report = audit_outputs(folder, rule)
        leak = Finding("trusts/X01.html", "parts", "Seclusion, 2021-03", "pins it to 3")
        return dataclasses.replace(report, findings=(*report.findings, leak))

    monkeypatch.setattr(suite, "audit_outputs", leaky)
    summary = run_suite(
        data=demo_data, out=tmp_path / "o", trusts=["X01", "X03"], jobs=2, notebooks=FIXTURES
    )
    assert summary.exit_code == 1
    assert not (tmp_path / "o" / "trusts" / "X01.html").exists()
    assert (tmp_path / "o" / "trusts" / "X03.html").exists()
    manifest = (tmp_path / "o" / "run.json").read_text()
    assert json.loads(manifest)["disclosure_audit"]["findings"] == [
        {"file": "trusts/X01.html", "check": "parts", "where": "Seclusion, 2021-03"}
    ]
    assert "pins it to 3" not in manifest  # the value stays on the console


def test_no_shared_page_or_table_shows_an_uncontrolled_small_count(shared_run):
    out, _ = shared_run
    rule = DisclosureRule()
    for name, page in _pages(out).items():
        assert audit_tables(html_tables(page), rule) == [], name
    count_like = re.compile(r"count|episodes|bed_days|incidents", re.I)
    for path in (out / "tables").glob("*.csv"):
        frame = pd.read_csv(path)
        assert not [c for c in frame.columns if count_like.search(c)], path.name


def test_two_runs_give_byte_identical_tables_and_a_manifest_to_reproduce_them(demo_data, tmp_path):
    outs = []
    for k in (1, 2):
        out = tmp_path / f"run{k}"
        run_suite(
            data=demo_data,
            params_dir=ROOT / "params",
            out=out,
            trusts=["X01", "X03"],
            jobs=2,
            notebooks=FIXTURES,
        )
        outs.append(out)
    names = sorted(
        str(p.relative_to(outs[0] / "tables"))
        for p in (outs[0] / "tables").rglob("*")
        if p.is_file()
    )
    assert {"results.xlsx", "its_effects.csv", "parquet/its_effects.parquet"} <= set(names)
    for name in names:
        assert (outs[0] / "tables" / name).read_bytes() == (
            outs[1] / "tables" / name
        ).read_bytes(), name
    m = json.loads((outs[0] / "run.json").read_text())
    assert (
        m["reproduce"].startswith("rrp-eval run --data ") and "--trusts X01,X03" in m["reproduce"]
    )
    assert set(m["notebooks"]) == {
        "10_data_quality",
        "20_trust_evaluation",
        "30_programme_evaluation",
    }
    assert all(len(v["sha256"]) == 64 for v in m["notebooks"].values())
    assert m["seeds"] == {"callaway_santanna_bootstrap": 20210}
    assert {"statsmodels", "openpyxl", "nbconvert"} <= set(m["versions"])
    assert {"data/ward_month.csv", "params/programme.yaml"} <= set(m["inputs"])


def test_trust_scoped_errors_fail_that_trust_only(tmp_path):
    wm = replace_line(WARD_MONTH, 26, "RXB,001,2021-01,501,abc,1,1,1")
    data = write_programme(tmp_path / "d", ward_month=wm)
    summary = run_suite(data=data, out=tmp_path / "o", jobs=1, notebooks=FIXTURES)
    assert list(summary.failed_trusts) == ["RXB"]
    # shared outputs name the place and the rule, never the cell (it may be a small count)
    assert "ward_month.csv:26:5: error: not-a-number" in summary.failed_trusts["RXB"]
    assert [r.task.name for r in summary.results if r.task.stage.startswith("20")] == ["RXA"]
    assert summary.exit_code == 1
    index = (tmp_path / "o" / "index.html").read_text()
    assert "RXB" in index and "ward_month.csv:26:5" in index and "abc" not in index
    its = pd.read_csv(tmp_path / "o" / "tables" / "its_effects.csv")
    assert set(its.loc[its.trust_code == "RXB", "status"]) == {"failed"}


def test_structural_errors_write_nothing(tmp_path):
    wm = replace_line(WARD_MONTH, 2, "R A,W1,2021-01,551,11,1,1,1")
    data = write_programme(tmp_path / "d", ward_month=wm)
    with pytest.raises(UnusableInput, match="cannot be used"):
        run_suite(data=data, out=tmp_path / "o", notebooks=FIXTURES)
    assert not (tmp_path / "o").exists()
    assert not list(tmp_path.glob(".o.*"))
    script = Path(sys.executable).parent / "rrp-eval"
    run = subprocess.run(
        [str(script), "run", "--data", str(data), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "ward_month.csv:2:1: error: trust_code: 'R A'" in run.stderr
    assert "nothing was written" in run.stderr and not (tmp_path / "o").exists()


def test_notebook_parameters_are_validated(demo_data):
    programme = rrp.load_programme(demo_data)
    with pytest.raises(ValueError, match="trust_code='NOPE' is not in the data; trusts are X01"):
        rrp.evaluate_trust(programme, "NOPE")
    with pytest.raises(ValueError, match="internal='yes' must be True or False"):
        rrp.DisclosureRule.from_params(programme.params.disclosure, internal="yes")
    with pytest.raises(ValueError, match="no such file or folder"):
        rrp.load_programme(demo_data / "missing")


def test_external_request_checker_catches_what_it_should():
    bad = (
        '<script src="x.js"></script><img src="https://cdn.example/x.png">'
        '<link rel="stylesheet" href="//cdn.example/a.css"><style>@import "https://x/y.css";'
        "div{background:url(http://x/y.png)}</style>"
    )
    assert len(external_requests(bad)) == 5
    assert len(external_requests('<script>fetch("/x")</script>')) == 1
    assert len(external_requests("<script>new Image().src = 'https://x.example/p'</script>")) == 1
    ok = '<a href="https://example.org">link</a><img src="data:image/png;base64,AAAA" alt="x">'
    ok += "<script>document.title = 'sorted';</script>"
    assert external_requests(ok) == []


@pytest.mark.parametrize("stage", ["20_trust_evaluation"])
def test_a_notebook_runs_top_to_bottom_with_its_defaults(stage, tmp_path, monkeypatch):
    """As in JupyterLab from a fresh checkout: no parameters given, run from notebooks/."""
    import papermill as pm

    monkeypatch.setenv("RRP_EVAL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / f"{stage}.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / f"{stage}.ipynb"),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    text = out.read_text()
    assert "Northmoor Mental Health NHS Foundation Trust (X01)" in text
    assert (tmp_path / "cache").is_dir()  # the demonstration programme was generated on first use
