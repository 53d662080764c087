"""The monthly refresh and the planning answers on the pages (issue 18): a run on the
demonstration programme with its last three months removed, then a run on the full data (with
one month of one trust revised) compared with it: what changed is in changes.csv and on the
index and the trust pages, beside each trust's power for the aim and probability of meeting
it; the digests that tell a revised month stay out of the shared folder."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.report.manifest import state_path
from rrp_eval.report.suite import UnusableInput, run_suite

ROOT = Path(__file__).resolve().parents[2]
TRUSTS = ["X01", "X02", "X03", "X04", "X05", "X06"]
pytestmark = pytest.mark.notebook


def _text(path: Path) -> str:
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<(script|style).*?</\1>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def refresh(tmp_path_factory):
    base = tmp_path_factory.mktemp("refresh")
    full = write_demo_programme(base / "full")
    early = base / "early"
    early.mkdir()
    for f in full.iterdir():
        (early / f.name).write_bytes(f.read_bytes())
    wm = pd.read_csv(full / "ward_month.csv", dtype=str, keep_default_na=False)
    months = sorted(wm["month"].unique())
    wm[~wm["month"].isin(months[-3:])].to_csv(early / "ward_month.csv", index=False)
    # a late return: one of X02's earlier months is revised in the full data
    revised = months[-6]
    row = (wm["trust_code"] == "X02") & (wm["month"] == revised) & (wm["seclusion"] != "")
    i = wm.index[row][0]
    wm.loc[i, "seclusion"] = str(int(wm.loc[i, "seclusion"]) + 7)
    wm.to_csv(full / "ward_month.csv", index=False)
    first = run_suite(data=early, params_dir=ROOT / "params", out=base / "a", trusts=TRUSTS, jobs=2)
    second = run_suite(
        data=full,
        params_dir=ROOT / "params",
        out=base / "b",
        trusts=TRUSTS,
        jobs=2,
        since=base / "a",
    )
    return base, months[-3:], revised, first, second


def test_both_runs_complete(refresh):
    _, _, _, first, second = refresh
    assert first.exit_code == 0 and second.exit_code == 0


def test_changes_name_the_new_and_revised_months_and_no_digest(refresh):
    base, new, revised, _, _ = refresh
    changes = pd.read_csv(base / "b" / "tables" / "changes.csv", dtype=str, keep_default_na=False)
    fresh = changes[changes["kind"] == "new_month"]
    assert set(fresh["trust_code"]) == set(TRUSTS)
    assert set(fresh["after"]) == set(new)
    rev = changes[changes["kind"] == "revised_month"]
    assert list(zip(rev["trust_code"], rev["before"], strict=True)) == [("X02", revised)]
    text = (base / "b" / "tables" / "changes.csv").read_text()
    assert not re.search(r"[0-9a-f]{32}", text)  # the month digests stay private
    assert "month_digests" in state_path(base / "b").read_text()
    for f in (base / "b").rglob("*"):
        if f.is_file() and f.suffix in (".json", ".csv", ".html"):
            assert "month_digests" not in f.read_text(encoding="utf-8", errors="ignore"), f


def test_the_first_run_has_no_changes_section(refresh):
    base, *_ = refresh
    assert "Since the last run" not in _text(base / "a" / "index.html")
    changes = pd.read_csv(base / "a" / "tables" / "changes.csv")
    assert changes.empty


def test_the_index_shows_detectability_probability_and_changes(refresh):
    base, new, _, _, _ = refresh
    text = _text(base / "b" / "index.html")
    assert "Since the last run" in text
    assert f"New months: {new[0]} to {new[-1]}" in text
    assert "Power for the aim" in text and "Probability of the aim" in text
    found = pd.read_csv(base / "b" / "tables" / "detectability.csv")
    assert set(found["trust_code"]) == set(TRUSTS)
    assert found["power"].between(0, 1).all() and found["n_sims"].isin([25, 50, 75, 100]).all()
    aims = pd.read_csv(base / "b" / "tables" / "aim_probabilities.csv")
    head = aims[aims["measure"] == "restrictive_practice"]
    assert set(head["trust_code"]) <= {*TRUSTS, "programme"} and "programme" in set(
        head["trust_code"]
    )
    for r in found.itertuples():  # each trust's power is in its row of the index
        assert f"{r.power:.0%} (±" in text


def test_a_trust_page_shows_its_changes_power_and_probability(refresh):
    base, _, revised, _, _ = refresh
    text = _text(base / "b" / "trusts" / "X02.html")
    assert "Since the last run" in text and revised in text
    assert "Power for the aim:" in text and "Probability of meeting the aim:" in text
    assert "X01" not in text  # no other trust's changes on its page


def test_since_must_name_a_run(tmp_path):
    with pytest.raises(UnusableInput, match="no run there"):
        run_suite(out=tmp_path / "o", since=tmp_path / "nothing", trusts=["X01"])
