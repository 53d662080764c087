"""The recoverability audit (rrp_eval.report.audit): folders built to leak in each way the
issue lists are caught, and their controlled twins pass."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.report.audit import audit_outputs
from rrp_eval.show.display import png_base64

RULE = DisclosureRule()
MONTHS = pd.date_range("2022-01-01", periods=12, freq="MS")


def _page(folder, name, figures=(), body=""):
    imgs = "".join(f'<img src="data:image/png;base64,{png_base64(f)}" alt="">' for f in figures)
    for f in figures:
        plt.close(f)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><body>{body}{imgs}</body></html>", encoding="utf-8")


def _spc(key, rates, centre, upper, chart="u"):
    """A chart drawn as plot_spc draws one: rate, centre and limit lines with their roles."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(MONTHS, np.broadcast_to(centre, len(MONTHS)), gid="centre")
    ax.plot(MONTHS, np.broadcast_to(upper, len(MONTHS)), gid="upper_limit")
    ax.plot(MONTHS, rates, gid="rate")
    ax.text(1.0, -0.28, f"{chart} chart", transform=ax.transAxes)
    ax.set_ylim(0, 80)
    ax.set_title(key)
    ax.set_gid(key)
    return fig


def _checks(folder, rule=RULE):
    report = audit_outputs(folder, rule)
    return sorted({f.check for f in report.findings}), report


def test_a_rate_over_bed_days_given_by_u_chart_limits_is_caught(tmp_path):
    # 420 bed days a month and a centre of 10.3 per 1,000, drawn unrounded: the limit gives
    # the bed days, and the rate 2 / 420 the count
    rates = np.full(12, 20.0)
    rates[5] = 2 / 420 * 1000
    upper = 10.3 + 3 * math.sqrt(10.3 * 1000 / 420)
    _page(tmp_path, "trusts/T1.html", [_spc("T1/trust:all wards/seclusion", rates, 10.3, upper)])
    checks, report = _checks(tmp_path)
    assert checks == ["rate_count"], report.findings
    assert report.findings[0].file == "trusts/T1.html"
    assert "2" in report.findings[0].detail


def test_the_same_chart_controlled_passes(tmp_path):
    rates = np.full(12, 20.0)
    rates[5] = np.nan  # suppressed: 2 events; centre and limits on the rule's steps
    _page(tmp_path, "trusts/T1.html", [_spc("T1/trust:all wards/seclusion", rates, 10.0, 25.0)])


def test_a_nice_looking_rate_over_rounded_limits_is_not_pinned(tmp_path):
    # 5 per 1,000 with centre 10 and limit 25 could be 2 events over 400 bed days, but every
    # drawn value sits on a step the rule could have rounded it to: nothing is certain
    rates = np.full(12, 20.0)
    rates[5] = 5.0
    _page(tmp_path, "trusts/T1.html", [_spc("T1/trust:all wards/seclusion", rates, 10.0, 25.0)])
    checks, report = _checks(tmp_path)
    assert checks == [], report.findings


def test_a_baseline_centre_times_the_baseline_bed_days_is_caught(tmp_path):
    # 1,000 bed days a month (UCL = 0.25 + 3 sqrt(0.25)) and a centre of 0.25: 3 events a year
    fig = _spc("T1/trust:all wards/segregation", np.full(12, np.nan), 0.25, 1.75)
    fig.axes[0].set_ylim(0, 3)
    _page(tmp_path, "trusts/T1.html", [fig])
    checks, report = _checks(tmp_path)
    assert checks == ["centre"], report.findings
    assert "3" in report.findings[0].detail


def test_a_suppressed_part_pinned_by_its_total_and_the_other_parts_is_caught(tmp_path):
    # 1,000 bed days: physical restraint 31, rapid tranquillisation 11, total 44 -> seclusion 2
    key = "T1/trust:participating wards/{}"
    u44 = 44 + 3 * math.sqrt(44)
    figs = [
        _spc(key.format("restrictive_practice"), np.full(12, 44.0), 44.0, u44),
        _spc(key.format("physical_restraint"), np.full(12, 31.0), 31.0, 31 + 3 * math.sqrt(31)),
        _spc(key.format("rapid_tranquillisation"), np.full(12, 11.0), 11.0, 11 + 3 * math.sqrt(11)),
        _spc(key.format("seclusion"), np.full(12, np.nan), 3.0, 3 + 3 * math.sqrt(3)),
    ]
    _page(tmp_path, "trusts/T1.html", figs)
    checks, report = _checks(tmp_path)
    assert "parts" in checks, report.findings
    assert next(f.detail[-2:] for f in report.findings if f.check == "parts") == " 2"


def test_parts_rounded_to_the_step_do_not_pin_the_suppressed_one(tmp_path):
    key = "T1/trust:participating wards/{}"
    figs = [  # rates and limits on the 5-per-1,000 step 1,000 bed days get
        _spc(key.format("restrictive_practice"), np.full(12, 45.0), 45.0, 65.0),
        _spc(key.format("physical_restraint"), np.full(12, 30.0), 30.0, 45.0),
        _spc(key.format("rapid_tranquillisation"), np.full(12, 10.0), 10.0, 20.0),
        _spc(key.format("seclusion"), np.full(12, np.nan), 5.0, 10.0),
    ]
    _page(tmp_path, "trusts/T1.html", figs)
    checks, report = _checks(tmp_path)
    assert checks == [], report.findings


def _caterpillar(counts, bed_days):
    k, e = np.asarray(counts, float), np.asarray(bed_days, float)
    low = stats.chi2.ppf(0.025, 2 * k) / 2 / e * 1000
    high = stats.chi2.ppf(0.975, 2 * k + 2) / 2 / e * 1000
    fig, ax = plt.subplots(figsize=(7.5, 2.5))
    y = np.arange(len(k))
    ax.hlines(y, low, high, gid="interval")
    ax.scatter(k / e * 1000, y, gid="rate")
    ax.set_gid("programme/caterpillar/seclusion")
    return fig


def test_an_exact_interval_of_a_small_count_is_caught_by_its_width(tmp_path):
    _page(tmp_path, "programme.html", [_caterpillar([3, 40, 90], [9000, 20000, 31000])])
    checks, report = _checks(tmp_path)
    assert checks == ["interval"], report.findings
    assert " 3 events" in report.findings[0].detail


def test_intervals_of_large_counts_pass(tmp_path):
    _page(tmp_path, "programme.html", [_caterpillar([12, 40, 90], [9000, 20000, 31000])])
    assert _checks(tmp_path)[0] == []


def _funnel(points):
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.scatter([p[0] for p in points], [p[1] for p in points], gid="rate")
    ax.set_xscale("log")
    ax.set_gid("programme/funnel/seclusion")
    return fig


def test_a_funnel_point_of_a_small_count_is_caught(tmp_path):
    _page(tmp_path, "programme.html", [_funnel([(800, 3.75), (20000, 5.0), (9000, 8.0)])])
    checks, report = _checks(tmp_path)
    assert checks == ["funnel"], report.findings


def test_bed_day_run_charts_and_rates_together_are_caught(tmp_path):
    # the data quality page's monthly bed days (600) and a trust chart's rate 5: 3 events
    fig, ax = plt.subplots(figsize=(4.2, 2.4))
    ax.plot(MONTHS, np.full(12, 600.0), gid="value")
    ax.set_gid("T1/trust:all wards/occupied_bed_days")
    _page(tmp_path, "data_quality.html", [fig])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    rates = np.full(12, 50.0)
    rates[2] = 5.0
    ax.plot(MONTHS, rates, gid="rate")
    ax.set_gid("T1/trust:all wards/prone_restraint")
    _page(tmp_path, "trusts/T1.html", [fig])
    checks, report = _checks(tmp_path)
    assert checks == ["rate_count"], report.findings


def test_table_cells_in_every_format_are_checked(tmp_path):
    frame = pd.DataFrame({"trust_code": ["T1", "T2"], "events": [3, 10]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "b.parquet")
    with pd.ExcelWriter(tmp_path / "c.xlsx") as xl:
        frame.to_excel(xl, index=False)
    (tmp_path / "d.html").write_text(frame.to_html(index=False), encoding="utf-8")
    _, report = _checks(tmp_path)
    assert sorted(f.file for f in report.findings if f.check == "cells") == [
        "a.csv",
        "b.parquet",
        "c.xlsx",
        "d.html",
    ]


def test_rounded_and_suppressed_cells_pass(tmp_path):
    pd.DataFrame({"trust_code": ["T1", "T2"], "events": ["*", "10"]}).to_csv(
        tmp_path / "a.csv", index=False
    )
    assert _checks(tmp_path)[0] == []


def test_marking_paths_tracebacks_and_digests_are_caught(tmp_path):
    (tmp_path / "index.html").write_text(
        "<p>INTERNAL: NOT FOR SHARING (small numbers are not suppressed)</p>", encoding="utf-8"
    )
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "source": "x",
                "outputs": [
                    {
                        "output_type": "error",
                        "traceback": [
                            "Traceback (most recent call last)",
                            '  File "/home/analyst/.venv/lib/python3.11/x.py"',
                        ],
                    }
                ],
            }
        ]
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "run.json").write_text(
        json.dumps({"inputs": {"data/ward_month.csv": "ab" * 32}}), encoding="utf-8"
    )
    _, report = _checks(tmp_path)
    got = {(f.file, f.check) for f in report.findings}
    assert got == {
        ("index.html", "marking"),
        ("n.ipynb", "path"),
        ("n.ipynb", "traceback"),
        ("run.json", "digest"),
    }
    assert all("ab" * 32 not in json.dumps(f.public()) for f in report.findings)


def test_an_internal_stamp_on_a_picture_is_caught(tmp_path):
    fig = plt.figure()
    fig.text(0.5, 0.9, "INTERNAL: NOT FOR SHARING (small numbers are not suppressed)")
    (tmp_path / "programme_at_a_glance.png").write_bytes(
        __import__("base64").b64decode(png_base64(fig))
    )
    plt.close(fig)
    assert _checks(tmp_path)[0] == ["marking"]


def test_an_internal_folder_is_not_audited(tmp_path):
    (tmp_path / "a.csv").write_text("events\n3\n", encoding="utf-8")
    report = audit_outputs(tmp_path, DisclosureRule(internal=True))
    assert report.ok and report.files == 0


@pytest.mark.parametrize("value", [0.1234, 7.0, 55.5])
def test_figure_data_is_kept_to_a_quarter_pixel(value):
    from rrp_eval.show.figdata import figure_data

    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot([0, 1], [value, 60.0], gid="rate")
    ax.set_ylim(0, 80)
    data = figure_data(fig, 100)
    plt.close(fig)
    axes = data["axes"][0]
    y = axes["series"][0]["y"][0]
    assert abs(y - value) <= axes["yres"] / 2 + 1e-9
    # a quarter of a pixel of a ~2.5 inch high axes at 100 dpi
    assert 80 / 4 / 300 < axes["yres"] < 80 / 4 / 150


@pytest.fixture(scope="module")
def x07():
    import rrp_eval as rrp

    return rrp.evaluate_trust(rrp.load_programme(), "X07", sensitivity=False)


def _trust_page(folder, trust, old_way):
    """X07's SPC charts drawn as the suite draws them, or the way they were drawn before the
    rate step (exact centre and limits, rates to a whole number)."""
    from rrp_eval.plots import plot_spc

    figs = []
    for m in trust.measures:
        s = trust.spc[m] if old_way else trust.spc[m].controlled(RULE)
        if s.result is None:
            continue
        series = s.series
        if old_way:
            ok = (series["count"] >= 5) & (series["occupied_bed_days"] >= 100)
            shown = series["rate_per_1000_obd"].round(0).where(ok).to_numpy()
        else:
            shown = s.result.frame["value"].to_numpy()
        fig, ax = plt.subplots(figsize=(8, 3.2))
        plot_spc(s.result, ax, shown=shown, title=m)
        ax.set_gid(f"X07/trust:{s.label}/{m}")
        figs.append(fig)
    _page(folder, "trusts/X07.html", figs)


def test_the_demo_charts_drawn_the_old_way_give_counts_away(x07, tmp_path):
    _trust_page(tmp_path, x07, old_way=True)
    checks, report = _checks(tmp_path)
    # exact limits give the bed days; whole-number rates of the total and the other parts
    # then narrow a suppressed part (2 months of X07: seclusion 2020-07, rapid
    # tranquillisation 2023-04)
    assert checks == ["parts"], report.findings
    assert len(report.findings) >= 2


def test_the_demo_charts_as_drawn_now_pass(x07, tmp_path):
    _trust_page(tmp_path, x07, old_way=False)
    checks, report = _checks(tmp_path)
    assert checks == [], [str(f) for f in report.findings]


@pytest.mark.parametrize("rule", [RULE, DisclosureRule(round_to=10, rate_decimals=1)])
def test_the_audits_cached_step_is_the_rules_step(rule):
    from rrp_eval.report.audit import _rate_step

    # from the rounding base up (fewer bed days are published as 0, with no rate)
    bed_days = np.r_[np.arange(rule.round_to, 3000, 0.7), np.geomspace(rule.round_to, 1e9, 400)]
    assert [_rate_step(rule, b) for b in bed_days] == [float(rule.rate_step(b)) for b in bed_days]


def test_an_spc_table_with_centre_and_limits_finer_than_the_step_is_caught(tmp_path):
    # the trust page's summary table once printed uncontrolled centre lines and limits to one
    # decimal: with the limits they give the month's bed days and a small baseline count
    leaky = pd.DataFrame(
        {
            "Measure": ["Long-term segregation"],
            "Chart": ["u"],
            "Centre": ["0.1"],
            "Limits (latest month)": ["0.0 to 1.2"],
        }
    )
    (tmp_path / "a.html").write_text(leaky.to_html(index=False), encoding="utf-8")
    controlled = leaky.assign(Centre=["withheld"], **{"Limits (latest month)": ["withheld"]})
    (tmp_path / "b.html").write_text(controlled.to_html(index=False), encoding="utf-8")
    _, report = _checks(tmp_path)
    assert {(f.file, f.check) for f in report.findings} == {("a.html", "cells")}
    assert len(report.findings) == 2  # the centre and the limits


def test_the_trust_spc_summary_is_controlled_like_the_charts(x07):
    # X07's long-term segregation has 1-4 baseline events: its centre and limits are withheld
    # in the table as in spc_signals.csv (found by an attack on the shared demo folder)
    from rrp_eval.disclosure import audit_tables
    from rrp_eval.show.trust import spc_summary

    table = spc_summary(x07, RULE).tables[0].set_index("Measure")
    row = table.loc[x07.label("segregation")]
    assert row["Centre"] == "withheld" and row["Limits (latest month)"] == "withheld"
    assert math.isnan(x07.spc["segregation"].controlled(RULE).row()["mean"])  # as in the CSV
    frame = table.reset_index().astype(str)
    rows = [list(frame.columns), *frame.to_numpy().tolist()]
    assert audit_tables({"summary": rows}, RULE) == []
