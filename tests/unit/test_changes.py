"""Issue 18: what changed since the last run: each kind of change is found from two runs'
tables, and nothing is found when nothing changed; month digests; reading a previous output
folder; the Markdown summary is capped and names no count."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from rrp_eval.report.changes import (
    CHANGE_COLUMNS,
    FINDINGS_KEY,
    KINDS,
    MONTH_DIGESTS_KEY,
    RunSnapshot,
    changes_between,
    changes_markdown,
    finding_records,
    month_digests,
    month_span,
    snapshot_from_folder,
    state_entries,
)
from rrp_eval.report.incremental import MARKER
from rrp_eval.report.manifest import state_path

#: values in count-like columns that must never reach the changes table or its text
COUNTS = {"n_pre": 731, "n_post": 737, "mean": 4321, "lpl": 3917, "upl": 4783}


def its_row(trust, measure, rr=0.9, low=0.7, high=1.1, status="ok", **extra):
    row = {
        "trust_code": trust,
        "measure": measure,
        "status": status,
        "message": "",
        "n_pre": COUNTS["n_pre"],
        "n_post": COUNTS["n_post"],
        "level_rr": 0.95,
        "level_rr_low": 0.8,
        "level_rr_high": 1.1,
        "rr_h": rr,
        "rr_h_low": low,
        "rr_h_high": high,
        "horizon_months": 12,
    }
    return row | extra


def spc_row(trust, measure, icon="common_cause", last_month="2024-01", **extra):
    point = {
        "common_cause": "common_cause",
        "": "",
    }.get(icon, f"special_cause_{icon.split('_')[0]}")
    row = {
        "trust_code": trust,
        "measure": measure,
        "series": "participating wards",
        "chart": "u",
        "n_points": 48,
        "mean": COUNTS["mean"],
        "lpl": COUNTS["lpl"],
        "upl": COUNTS["upl"],
        "last_month": last_month,
        "last_point_type": point,
        "variation_icon": icon,
        "assurance_icon": "",
        "runs_signal": False,
        "n_improvement": 0,
        "n_concern": 0,
    }
    return row | extra


TRUSTS = ("X01", "X02")
MEASURES = ("seclusion", "self_harm")


def ward_month(trusts=TRUSTS, months=("2023-11", "2023-12")) -> pd.DataFrame:
    rows = []
    for t in trusts:
        for w in ("W1", "W2"):
            for i, m in enumerate(months):
                rows.append(
                    {
                        "trust_code": t,
                        "ward_id": w,
                        "month": pd.Timestamp(f"{m}-01"),
                        "occupied_bed_days": 6007 + 10 * i,
                        "seclusion": 1913 + i,
                        "self_harm": 1777.0,
                    }
                )
    return pd.DataFrame(rows)


def snapshot(trusts=TRUSTS, **changes) -> RunSnapshot:
    """A run of two trusts and two measures where nothing is remarkable."""
    base = RunSnapshot(
        its_effects=pd.DataFrame([its_row(t, m) for t in trusts for m in MEASURES]),
        spc_signals=pd.DataFrame([spc_row(t, m) for t in trusts for m in MEASURES]),
        aims=pd.DataFrame(
            [
                {"trust_code": t, "measure": "seclusion", "estimate": 0.8, "p_rr_le_0_75": 0.5}
                for t in (*trusts, "programme")
            ]
        ),
        findings=pd.DataFrame(
            [
                {
                    "severity": "warning",
                    "scope": "trust",
                    "rule": "gap",
                    "trust_code": "X01",
                    "source": "ward_month.csv",
                    "line": 12,
                    "column": 3,
                    "message": "month: ward X01/W1 has no row for the 1 month between ...",
                }
            ]
        ),
        months=month_digests(ward_month(trusts)),
        label="2026-11-02T07:57:25+00:00",
    )
    return dataclasses.replace(base, **changes)


def with_its(snap, trust, measure, **values):
    its = snap.its_effects.copy()
    at = (its["trust_code"] == trust) & (its["measure"] == measure)
    for k, v in values.items():
        its.loc[at, k] = v
    return dataclasses.replace(snap, its_effects=its)


def with_spc(snap, trust, measure, **values):
    spc = snap.spc_signals.copy()
    at = (spc["trust_code"] == trust) & (spc["measure"] == measure)
    for k, v in values.items():
        spc.loc[at, k] = v
    return dataclasses.replace(snap, spc_signals=spc)


def with_aim(snap, trust, p):
    aims = snap.aims.copy()
    aims.loc[aims["trust_code"] == trust, "p_rr_le_0_75"] = p
    return dataclasses.replace(snap, aims=aims)


def kinds(changes: pd.DataFrame) -> list[tuple[str, str, str]]:
    return list(zip(changes["trust_code"], changes["measure"], changes["kind"], strict=True))


# --- nothing changed -------------------------------------------------------------------------


def test_a_run_compared_with_itself_has_no_change():
    snap = snapshot()
    changes = changes_between(snap, snap)
    assert changes.empty
    assert list(changes.columns) == CHANGE_COLUMNS
    assert changes_markdown(changes, since=snap.label) == "No change since the run of 2026-11-02."
    assert changes_markdown(changes, "X01") == "No change since the last run."


def test_copies_and_reordered_rows_are_no_change():
    snap = snapshot()
    shuffled = RunSnapshot(
        its_effects=snap.its_effects.iloc[::-1].copy(),
        spc_signals=snap.spc_signals.sample(frac=1, random_state=1),
        aims=snap.aims.iloc[::-1].copy(),
        findings=snap.findings.assign(line=99, message="another wording, another value"),
        months=month_digests(ward_month().iloc[::-1]),
    )
    assert changes_between(snap, shuffled).empty


def test_a_changed_estimate_with_the_same_verdict_is_no_change():
    before = snapshot()
    after = with_its(before, "X01", "seclusion", rr_h=0.95, rr_h_low=0.8, rr_h_high=1.2)
    after = with_aim(after, "X01", 0.79)  # moved, but on the same side of 0.8
    after = with_spc(after, "X02", "self_harm", last_month="2024-02")  # still common cause
    assert changes_between(before, after).empty


def test_odd_input_never_raises(caplog):
    snap = snapshot()
    odd = RunSnapshot(
        its_effects=pd.DataFrame({"trust_code": ["X01", None], "rr_h": ["abc", np.nan]}),
        spc_signals=pd.DataFrame({"measure": ["seclusion"]}),
        aims=pd.DataFrame({"trust_code": ["X01"], "measure": ["seclusion"], "p_rr_le_0_75": ["?"]}),
        findings=pd.DataFrame({"message": ["no rule column"]}),
        months={"X01": "not a dict"},  # type: ignore[dict-item]
    )
    for a, b in ((snap, odd), (odd, snap), (odd, odd), (RunSnapshot(), RunSnapshot())):
        out = changes_between(a, b)
        assert list(out.columns) == CHANGE_COLUMNS
        assert set(out["kind"]) <= set(KINDS)
    nan_row = with_its(snap, "X01", "seclusion", rr_h=np.nan, rr_h_low=np.nan, rr_h_high=np.nan)
    assert changes_between(snap, nan_row).empty  # not estimated now: cannot be compared
    assert changes_markdown(pd.DataFrame({"x": [1]})) == "No change since the last run."
    assert "could not be compared" not in caplog.text  # handled, not caught
    assert changes_between(None, snap).empty  # type: ignore[arg-type]


# --- conclusions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "kind", "words"),
    [
        ((0.9, 0.7, 1.1), (0.7, 0.6, 0.9), "interval_now_excludes_1", ("no clear", "improved")),
        ((0.7, 0.6, 0.9), (0.9, 0.7, 1.1), "interval_now_includes_1", ("improved", "no clear")),
        ((0.9, 0.7, 1.1), (1.3, 1.1, 1.5), "interval_now_excludes_1", ("no clear", "worse")),
        ((0.7, 0.6, 0.9), (1.3, 1.1, 1.5), "conclusion_changed", ("improved", "worse")),
    ],
)
def test_a_changed_verdict_is_one_change_of_the_right_kind(before, after, kind, words):
    b = with_its(
        snapshot(),
        "X02",
        "self_harm",
        **dict(zip(("rr_h", "rr_h_low", "rr_h_high"), before, strict=True)),
    )
    a = with_its(
        snapshot(),
        "X02",
        "self_harm",
        **dict(zip(("rr_h", "rr_h_low", "rr_h_high"), after, strict=True)),
    )
    changes = changes_between(b, a)
    assert kinds(changes) == [("X02", "self_harm", kind)]
    row = changes.iloc[0]
    assert row["before"].startswith(words[0]) and row["after"].startswith(words[1])
    assert f"{after[0]:.2f}" in row["after"] and f"{after[2]:.2f}" in row["after"]
    assert "Self harm" in row["text"] and "12 months" in row["text"]


def test_the_direction_of_a_measure_decides_its_verdict():
    b = with_its(snapshot(), "X01", "seclusion", rr_h=0.9, rr_h_low=0.7, rr_h_high=1.1)
    a = with_its(snapshot(), "X01", "seclusion", rr_h=1.3, rr_h_low=1.1, rr_h_high=1.5)
    assert changes_between(b, a).iloc[0]["after"].startswith("worse")
    up = changes_between(b, a, directions={"seclusion": "increase"})
    assert up.iloc[0]["after"].startswith("improved")


def test_only_rows_with_status_ok_in_both_runs_are_compared():
    b = with_its(snapshot(), "X01", "seclusion", status="not_estimable")
    a = with_its(snapshot(), "X01", "seclusion", rr_h=0.7, rr_h_low=0.6, rr_h_high=0.9)
    assert changes_between(b, a).empty
    assert changes_between(a, b).empty


def test_a_probability_crossing_the_threshold_either_way_is_a_change():
    before = with_aim(with_aim(snapshot(), "programme", 0.75), "X01", 0.85)
    after = with_aim(with_aim(snapshot(), "programme", 0.81), "X01", 0.6)
    changes = changes_between(before, after)
    assert kinds(changes) == [
        ("programme", "seclusion", "probability_crossed"),
        ("X01", "seclusion", "probability_crossed"),
    ]
    assert changes["before"].tolist() == ["0.75", "0.85"]
    assert changes["after"].tolist() == ["0.81", "0.60"]
    assert "rose" in changes.iloc[0]["text"] and "programme" in changes.iloc[0]["text"]
    assert "fell" in changes.iloc[1]["text"] and "25%" in changes.iloc[1]["text"]
    assert changes_between(before, after, aim_threshold=0.9).empty
    # the threshold itself counts as reached
    at = changes_between(with_aim(snapshot(), "X02", 0.79), with_aim(snapshot(), "X02", 0.8))
    assert kinds(at) == [("X02", "seclusion", "probability_crossed")]
    assert changes_between(
        with_aim(snapshot(), "X02", 0.8), with_aim(snapshot(), "X02", 0.95)
    ).empty
    # an older run without the table: no probability change
    older = dataclasses.replace(before, aims=pd.DataFrame())
    assert changes_between(older, after).empty


# --- special causes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ("common_cause", "concern_high", "special_cause_new"),
        ("", "improvement_low", "special_cause_new"),
        ("improvement_low", "common_cause", "special_cause_ended"),
        ("concern_high", "", "special_cause_ended"),
        ("improvement_low", "concern_high", "icon_changed"),
        ("neutral_high", "neutral_low", "icon_changed"),
        ("improvement_low", "improvement_low", None),
        ("common_cause", "common_cause", None),
    ],
)
def test_special_causes_new_ended_and_changed(before, after, kind):
    b = with_spc(snapshot(), "X01", "self_harm", variation_icon=before, last_month="2023-12")
    a = with_spc(snapshot(), "X01", "self_harm", variation_icon=after, last_month="2024-01")
    changes = changes_between(b, a)
    if kind is None:
        assert changes.empty
        return
    assert kinds(changes) == [("X01", "self_harm", kind)]
    text = changes.iloc[0]["text"]
    assert text.startswith("Self harm")
    if kind == "special_cause_new":
        assert "2024-01" in text and "new special-cause" in text


def test_an_older_spc_table_without_the_icon_uses_the_latest_point():
    b = snapshot()
    a = with_spc(snapshot(), "X02", "seclusion", last_point_type="special_cause_concern")
    b = dataclasses.replace(b, spc_signals=b.spc_signals.drop(columns="variation_icon"))
    a = dataclasses.replace(a, spc_signals=a.spc_signals.drop(columns="variation_icon"))
    assert kinds(changes_between(b, a)) == [("X02", "seclusion", "special_cause_new")]


def test_a_measure_without_a_row_is_compared_but_a_trust_without_rows_is_not():
    b = with_spc(snapshot(), "X01", "self_harm", variation_icon="concern_high")
    gone_measure = dataclasses.replace(
        b, spc_signals=b.spc_signals[~(b.spc_signals["measure"] == "self_harm")]
    )
    assert kinds(changes_between(b, gone_measure)) == [("X01", "self_harm", "special_cause_ended")]
    gone_trust = dataclasses.replace(
        b, spc_signals=b.spc_signals[b.spc_signals.trust_code != "X01"]
    )
    assert changes_between(b, gone_trust).empty  # X01 is still in its_effects and the months


# --- trusts ----------------------------------------------------------------------------------


def test_trusts_added_and_dropped_get_one_row_each_and_nothing_else():
    before = snapshot(trusts=("X01", "X02"))
    after = snapshot(trusts=("X01", "X03"))
    after = with_spc(after, "X03", "seclusion", variation_icon="concern_high")
    changes = changes_between(before, after)
    assert kinds(changes) == [("X02", "", "trust_dropped"), ("X03", "", "trust_added")]
    assert "X03" in changes.iloc[1]["text"]


def test_a_table_an_older_run_lacks_does_not_drop_its_trusts():
    before = dataclasses.replace(snapshot(), spc_signals=pd.DataFrame(), months={})
    assert changes_between(before, snapshot()).empty
    assert changes_between(snapshot(), before).empty


# --- data-quality findings -------------------------------------------------------------------


def test_findings_new_and_resolved_by_their_rule_never_their_message():
    before = snapshot()
    new = {
        "severity": "warning",
        "rule": "jump",
        "trust_code": "X02",
        "source": "ward_month.csv",
        "line": 40,
        "column": 5,
        "message": "seclusion: 2 to 37 from 2023-10 to 2023-11 (more than x10)",
    }
    after = dataclasses.replace(before, findings=pd.DataFrame([new]))
    changes = changes_between(before, after)
    assert kinds(changes) == [("X01", "", "finding_resolved"), ("X02", "", "finding_new")]
    assert "gap" in changes.iloc[0]["before"] and "jump" in changes.iloc[1]["after"]
    assert "37" not in changes.to_csv()  # the message quotes a value: it is never copied
    # a run whose findings are not known reports no finding change
    unknown = dataclasses.replace(before, findings=pd.DataFrame())
    assert changes_between(unknown, after).empty
    # ... but a run known to have none does
    none = dataclasses.replace(before, findings=pd.DataFrame(columns=["trust_code", "rule"]))
    assert kinds(changes_between(none, after)) == [("X02", "", "finding_new")]


def test_finding_records_keep_no_message_or_line():
    records = finding_records(snapshot().findings)
    assert records == [
        {
            "trust_code": "X01",
            "severity": "warning",
            "rule": "gap",
            "source": "ward_month.csv",
            "column": "3",
        }
    ]
    assert finding_records(None) == []


# --- months ----------------------------------------------------------------------------------


def test_a_month_digest_changes_with_a_value_of_that_month_only():
    wm = ward_month()
    d0 = month_digests(wm)
    assert set(d0) == {"X01", "X02"} and set(d0["X01"]) == {"2023-11", "2023-12"}
    changed = wm.copy()
    changed.loc[(changed.trust_code == "X01") & (changed.month == "2023-12"), "seclusion"] += 1
    d1 = month_digests(changed)
    assert d1["X01"]["2023-12"] != d0["X01"]["2023-12"]
    assert d1["X01"]["2023-11"] == d0["X01"]["2023-11"]
    assert d1["X02"] == d0["X02"]
    blank = wm.copy()
    blank.loc[0, "self_harm"] = np.nan
    assert month_digests(blank)["X01"]["2023-11"] != d0["X01"]["2023-11"]
    fewer = wm.drop(index=0)
    assert month_digests(fewer)["X01"]["2023-11"] != d0["X01"]["2023-11"]


def test_a_month_digest_ignores_row_and_column_order_and_dtype():
    wm = ward_month()
    d0 = month_digests(wm)
    assert month_digests(wm.sample(frac=1, random_state=3)) == d0
    assert month_digests(wm[list(reversed(wm.columns))]) == d0
    assert month_digests(wm.astype({"seclusion": float, "self_harm": int})) == d0
    assert month_digests(wm.set_index("ward_id", drop=False)) == d0
    assert month_digests(pd.DataFrame({"trust_code": ["X01"]})) == {}


@pytest.fixture(scope="session")
def demo_ward_month() -> pd.DataFrame:
    from rrp_eval.data.synthetic import demo_programme

    return demo_programme().ward_month


def test_month_digests_of_the_demo_data_tell_the_one_revised_month(demo_ward_month):
    wm = demo_ward_month.copy()
    d0 = month_digests(wm)
    assert len(d0) == wm["trust_code"].nunique()
    i = wm.index[len(wm) // 2]
    wm.loc[i, "occupied_bed_days"] += 1
    d1 = month_digests(wm)
    differ = [(t, m) for t in d0 for m in d0[t] if d0[t][m] != d1[t][m]]
    month = pd.Timestamp(demo_ward_month.loc[i, "month"]).strftime("%Y-%m")
    assert differ == [(demo_ward_month.loc[i, "trust_code"], month)]
    assert month_digests(demo_ward_month.iloc[::-1]) == d0


def test_new_revised_and_removed_months():
    before = snapshot()
    wm = ward_month(months=("2023-11", "2023-12", "2024-01"))
    wm.loc[(wm.trust_code == "X02") & (wm.month == "2023-11"), "self_harm"] = 8.0
    wm = wm[~((wm.trust_code == "X02") & (wm.month == "2023-12"))]
    after = dataclasses.replace(before, months=month_digests(wm))
    changes = changes_between(before, after)
    assert list(
        zip(changes.trust_code, changes.kind, changes.before, changes.after, strict=True)
    ) == [
        ("X01", "new_month", "", "2024-01"),
        ("X02", "revised_month", "2023-11", "revised"),
        ("X02", "revised_month", "2023-12", "removed"),
        ("X02", "new_month", "", "2024-01"),
    ]
    # unknown digests (an older run): no month change
    assert changes_between(dataclasses.replace(before, months={}), after).empty


def test_state_entries_are_json_and_carry_no_message():
    entries = state_entries(ward_month(), snapshot().findings)
    assert set(entries) == {MONTH_DIGESTS_KEY, FINDINGS_KEY}
    text = json.dumps(entries)
    assert "has no row" not in text and "line" not in text


# --- a previous output folder ----------------------------------------------------------------


def write_run(folder, snap: RunSnapshot, run_id="abc", state_run_id="abc", internal=False):
    tables = folder / "tables"
    tables.mkdir(parents=True)
    for name, frame in (("its_effects", snap.its_effects), ("spc_signals", snap.spc_signals)):
        if internal:
            frame = frame.copy()
            frame.insert(0, "marking", "INTERNAL: NOT FOR SHARING")
        frame.to_csv(tables / f"{name}.csv", index=False)
    snap.aims.to_csv(tables / "aim_probabilities.csv", index=False)
    (folder / "run.json").write_text(
        json.dumps({"command": "run", "created_utc": snap.label}), encoding="utf-8"
    )
    (folder / MARKER).write_text(
        json.dumps({"written_by": "rrp-eval run", "mode": "shared", "run_id": run_id}),
        encoding="utf-8",
    )
    state = {"run_id": state_run_id, **state_entries(ward_month(), snap.findings)}
    state_path(folder).write_text(json.dumps(state), encoding="utf-8")


@pytest.mark.parametrize("internal", [False, True])
def test_a_folder_read_back_equals_the_run_that_wrote_it(tmp_path, internal):
    snap = snapshot()
    write_run(tmp_path / "out", snap, internal=internal)
    read = snapshot_from_folder(tmp_path / "out")
    assert read is not None
    assert read.label == snap.label
    assert read.months == snap.months
    assert "marking" not in read.its_effects.columns
    assert changes_between(snap, read).empty and changes_between(read, snap).empty
    # and a change made after reading is found
    later = with_its(snap, "X01", "seclusion", rr_h=0.7, rr_h_low=0.6, rr_h_high=0.9)
    assert kinds(changes_between(read, later)) == [("X01", "seclusion", "interval_now_excludes_1")]


def test_a_state_file_of_another_run_is_not_used(tmp_path):
    write_run(tmp_path / "out", snapshot(), run_id="new", state_run_id="old")
    read = snapshot_from_folder(tmp_path / "out")
    assert read is not None and read.months == {}
    assert "rule" not in read.findings.columns  # not known, not "none"


def test_a_folder_with_only_some_tables(tmp_path):
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    snap = snapshot()
    snap.spc_signals.to_csv(out / "tables" / "spc_signals.csv", index=False)
    read = snapshot_from_folder(out)
    assert read is not None
    assert read.its_effects.empty and read.aims.empty and read.months == {} and read.label == ""
    assert len(read.spc_signals) == len(snap.spc_signals)
    assert "rule" not in read.findings.columns
    assert changes_between(read, snap).empty and changes_between(snap, read).empty
    changed = with_spc(snap, "X02", "seclusion", variation_icon="concern_high")
    assert kinds(changes_between(read, changed)) == [("X02", "seclusion", "special_cause_new")]


def test_trust_codes_are_read_as_text(tmp_path):
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    its = pd.DataFrame([its_row("001", "seclusion")])
    its.to_csv(out / "tables" / "its_effects.csv", index=False)
    read = snapshot_from_folder(out)
    assert read is not None and read.its_effects["trust_code"].tolist() == ["001"]
    assert changes_between(RunSnapshot(its_effects=its), read).empty


def test_a_table_is_read_from_its_parquet_copy_when_the_csv_is_missing(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "out"
    (out / "tables" / "parquet").mkdir(parents=True)
    snap = snapshot()
    snap.its_effects.to_parquet(out / "tables" / "parquet" / "its_effects.parquet", index=False)
    read = snapshot_from_folder(out)
    assert read is not None and len(read.its_effects) == len(snap.its_effects)
    assert changes_between(dataclasses.replace(snap, spc_signals=pd.DataFrame()), read).empty


def test_no_run_in_the_folder_is_none(tmp_path):
    assert snapshot_from_folder(tmp_path / "missing") is None
    assert snapshot_from_folder(tmp_path) is None
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert snapshot_from_folder(tmp_path) is None


# --- in words --------------------------------------------------------------------------------


def many_changes() -> tuple[RunSnapshot, RunSnapshot]:
    measures = [f"measure_{i:02d}" for i in range(20)]
    before = RunSnapshot(
        its_effects=pd.DataFrame([its_row("X01", m) for m in measures]),
        spc_signals=pd.DataFrame([spc_row("X01", m) for m in measures]),
        months=month_digests(ward_month(("X01",))),
    )
    after = RunSnapshot(
        its_effects=pd.DataFrame(
            [its_row("X01", m, 0.7, 0.6, 0.9) for m in measures[:3]]
            + [its_row("X01", m) for m in measures[3:]]
        ),
        spc_signals=pd.DataFrame([spc_row("X01", m, "concern_high") for m in measures]),
        months=month_digests(ward_month(("X01",), months=("2023-11", "2023-12", "2024-01"))),
    )
    return before, after


def bullets(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("- ")]


def test_the_trust_view_is_capped_and_lists_conclusions_first():
    before, after = many_changes()
    changes = changes_between(before, after)
    assert len(changes) == 3 + 20 + 1
    assert changes["kind"].tolist()[:3] == ["interval_now_excludes_1"] * 3
    text = changes_markdown(changes, "X01", since="2026-11-02T07:57:25+00:00")
    assert text.startswith("Compared with the run of 2026-11-02:")
    listed = bullets(text)
    assert len(listed) == 12
    assert "improved" in listed[0]
    assert re.search(r"and 13 more", listed[-1]) and "changes.csv" in listed[-1]
    assert changes_markdown(changes, "X01", max_bullets=100).count("New months") == 1
    assert changes_markdown(changes, "X99") == "No change since the last run."


def test_the_programme_view_counts_per_trust_and_names_conclusions():
    before, after = many_changes()
    text = changes_markdown(changes_between(before, after))
    listed = bullets(text)
    assert len(listed) <= 12
    assert sum("improved" in b for b in listed) == 3
    assert any("20 new special causes" in b for b in listed)
    assert any("New months: 2024-01" in b for b in listed)


def test_no_count_or_bed_days_reaches_the_table_or_the_text():
    before, after = many_changes()
    before = dataclasses.replace(before, findings=snapshot().findings)
    after = dataclasses.replace(
        after,
        findings=snapshot().findings.assign(rule="implausible-rate", message="seclusion: 917"),
    )
    wm = ward_month(("X01",), months=("2023-11", "2023-12", "2024-01"))
    changes = changes_between(before, after)
    published = changes.to_csv() + changes_markdown(changes) + changes_markdown(changes, "X01")
    numbers = set(re.findall(r"\d+(?:\.\d+)?", published))
    counts = {str(v) for v in COUNTS.values()} | {"917"}
    counts |= {str(int(v)) for c in ("occupied_bed_days", "seclusion") for v in wm[c]}
    counts |= {str(v) for v in wm["self_harm"]} | {"1777"}
    assert not numbers & counts, numbers & counts
    assert not re.search(r"[0-9a-f]{64}", published)  # no digest either


def test_markdown_escapes_what_it_shows():
    changes = pd.DataFrame(
        [["X_1", "", "trust_added", "", "in this run", "Trust *X_1* <b>"]], columns=CHANGE_COLUMNS
    )
    text = changes_markdown(changes, "X_1")
    assert r"\*X\_1\*" in text and r"\<b\>" in text


def test_month_span_joins_runs_of_months():
    assert month_span(["2023-12", "2024-01", "2023-11", "2024-03"]) == (
        "2023-11 to 2024-01, 2024-03"
    )
    assert month_span([]) == ""
