"""Data that used to end a whole run (issue 14, deliverable 4): each now gives a complete run.

One run of the real notebooks on the demonstration programme with, at once: a measure that
is zero everywhere (mechanical restraint often is), a trust-scoped error in one trust (a
mid-month date), no optional ``region`` column, and names that matplotlib would parse as TeX.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.report.suite import run_suite

ROOT = Path(__file__).resolve().parents[2]
TRUSTS = ["X01", "X02", "X03", "X04"]
BAD_MONTH = "2021-06-15"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-data")
    data = write_demo_programme(base / "data")
    wm = pd.read_csv(data / "ward_month.csv", dtype=str, keep_default_na=False)
    wards = pd.read_csv(data / "wards.csv", dtype=str, keep_default_na=False)
    recorded = wm["mechanical_restraint"] != ""
    wm.loc[recorded, "mechanical_restraint"] = "0"
    row = wm.index[(wm.trust_code == "X03") & (wm.month == "2021-06")][0]
    wm.loc[row, "month"] = BAD_MONTH
    wards = wards.drop(columns=["region"])
    wards.loc[wards.trust_code == "X01", "trust_name"] = r"$\frac$ Trust"
    wards["ward_name"] = wards["ward_name"] + r" $\sqrt{"
    wm.to_csv(data / "ward_month.csv", index=False)
    wards.to_csv(data / "wards.csv", index=False)
    out = base / "out"
    summary = run_suite(data=data, params_dir=ROOT / "params", out=out, trusts=TRUSTS, jobs=2)
    return out, summary


def test_the_run_completes_with_only_the_bad_trust_failed(hostile):
    out, summary = hostile
    status = {r.task.html: (r.status, r.message) for r in summary.results}
    assert all(s == "ok" for s, _ in status.values()), status
    assert set(summary.failed_trusts) == {"X03"}
    assert summary.exit_code == 1
    for page in ("index.html", "programme.html", "data_quality.html", "trusts/X01.html"):
        assert (out / page).is_file(), page
    assert (out / "programme_at_a_glance.png").stat().st_size > 1000


def test_the_programme_fits_leave_out_the_failed_trust(hostile):
    out, _ = hostile
    effects = pd.read_csv(out / "tables" / "programme_effects.csv")
    panel = effects[effects.method.isin(["gee_pooled", "controlled"])]
    assert not panel.empty
    # the panel models use every trust in the data (14) but the one that failed
    assert panel["n_trusts"].max() == 13
    pooled = effects[effects.method.str.startswith("random_effects")]
    assert pooled["n_trusts"].max() == len(TRUSTS) - 1
    its = pd.read_csv(out / "tables" / "its_effects.csv")
    assert set(its.loc[its.trust_code == "X03", "status"]) == {"failed"}


def test_the_all_zero_measure_is_not_estimable_not_a_crash(hostile):
    out, _ = hostile
    its = pd.read_csv(out / "tables" / "its_effects.csv")
    mech = its[(its.measure == "mechanical_restraint") & (its.trust_code != "X03")]
    assert len(mech) == 3 and set(mech["status"]) == {"not_estimable"}
    pooled = pd.read_csv(out / "tables" / "programme_effects.csv")
    assert pooled.loc[pooled.measure == "mechanical_restraint", "estimate"].isna().all()


def test_the_failure_note_names_the_place_and_rule_never_the_value(hostile):
    out, summary = hostile
    assert "ward_month.csv:" in summary.failed_trusts["X03"]
    assert "mid-month" in summary.failed_trusts["X03"]
    shared = [out / "index.html", out / "run.json", out / "programme.html"]
    shared += list((out / "tables").glob("*.csv"))
    for path in shared:
        assert BAD_MONTH not in path.read_text(encoding="utf-8"), path.name
    manifest = json.loads((out / "run.json").read_text())
    assert "mid-month" in manifest["outputs"]["trusts/X03.html"]["message"]


def test_names_are_drawn_literally(hostile):
    out, _ = hostile
    page = (out / "trusts" / "X01.html").read_text(encoding="utf-8")
    assert "$\\frac$ Trust" in page


def test_without_the_region_column_the_breakdown_says_so(hostile):
    out, _ = hostile
    page = (out / "programme.html").read_text(encoding="utf-8")
    assert "Region is not recorded in these data" in page


def test_only_the_required_columns_and_one_rare_measure_give_a_complete_run(tmp_path):
    """The least a trust can send: required columns, one measure (seclusion, rare on some
    wards), no events file; three trusts of the demonstration programme."""
    demo = write_demo_programme(tmp_path / "demo")
    data = tmp_path / "minimal"
    data.mkdir()
    wards = pd.read_csv(demo / "wards.csv", dtype=str, keep_default_na=False)
    wm = pd.read_csv(demo / "ward_month.csv", dtype=str, keep_default_na=False)
    keep = ["X01", "X05", "X09"]
    wards = wards[wards.trust_code.isin(keep)]
    wm = wm[wm.trust_code.isin(keep)]
    wards[["trust_code", "trust_name", "ward_id", "ward_type", "start_month"]].to_csv(
        data / "wards.csv", index=False
    )
    wm[["trust_code", "ward_id", "month", "occupied_bed_days", "seclusion"]].to_csv(
        data / "ward_month.csv", index=False
    )
    summary = run_suite(data=data, out=tmp_path / "out", jobs=2)
    status = {r.task.html: (r.status, r.message) for r in summary.results}
    assert all(s == "ok" for s, _ in status.values()), status
    assert summary.exit_code == 0 and not summary.failed_trusts
    its = pd.read_csv(tmp_path / "out" / "tables" / "its_effects.csv")
    assert set(its.trust_code) == set(keep)
    assert set(its.measure) == {"seclusion"}
