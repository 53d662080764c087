"""Issue 19: the verdicts, the 'could the data show the aim' sentence and the attention flags
are built from the numbers, with their edge cases; chart and badge colours meet WCAG AA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rrp_eval.evaluate.findings import (
    Verdict,
    attention,
    completeness,
    funnel_positions,
    precision_text,
    verdict,
)
from rrp_eval.params import ProgrammeParams


def _row(est, low, high, **extra):
    return {"rr_h": est, "rr_h_low": low, "rr_h_high": high, **extra}


@pytest.mark.parametrize(
    ("interval", "direction", "word"),
    [
        ((0.7, 0.6, 0.9), "decrease", "improved"),
        ((0.9, 0.7, 1.1), "decrease", "no clear change"),
        ((1.3, 1.1, 1.6), "decrease", "worse"),
        ((1.3, 1.1, 1.6), "increase", "improved"),
        ((0.7, 0.6, 0.9), "increase", "worse"),
        ((0.7, 0.6, 0.9), "neutral", "changed"),
    ],
)
def test_the_verdict_follows_the_interval_and_the_direction(interval, direction, word):
    assert verdict(_row(*interval), "rr_h", direction).word == word


def test_a_missing_estimate_is_not_estimated_with_its_reason():
    v = verdict(_row(np.nan, np.nan, np.nan, status="not_estimable", message=""), "rr_h")
    assert v.word == "not estimated" and v.reason == "not estimable" and v.numbers == ""
    assert verdict(None, "rr_h").word == "not estimated"


def test_percent_words_are_right_either_side_of_one():
    assert Verdict("x", 0.77, 0.6, 0.9).percent == "23% lower"
    assert Verdict("x", 1.2, 1.1, 1.3).percent == "20% higher"
    assert Verdict("x", 1.004, 0.9, 1.1).percent == "no different"
    assert (
        Verdict("x", 0.77, 0.61, 0.97).numbers == "23% lower (rate ratio 0.77, 95% CI 0.61 to 0.97)"
    )


@pytest.mark.parametrize(
    ("interval", "start"),
    [
        ((0.95, 0.51, 1.77), "no."),  # both no change and the aim
        ((0.9, 0.8, 1.1), "yes, and they make a 25% fall unlikely"),
        ((0.6, 0.5, 0.7), "yes: the whole interval is beyond the aim"),
        ((0.7, 0.6, 0.9), "yes: the interval excludes no change; it includes the aim"),
        ((0.85, 0.8, 0.9), "yes: the rate fell, but by less than the aim"),
        ((1.3, 1.1, 1.5), "yes: the rate rose"),
    ],
)
def test_whether_the_data_could_show_the_aim(interval, start):
    assert precision_text(Verdict("x", *interval)).startswith(start)


def test_no_precision_sentence_without_an_estimate():
    assert precision_text(Verdict("not estimated")) == ""


def _ward_month(rates: dict[str, float], months: int = 12, bed_days: float = 3000.0):
    rows = []
    for code, rate in rates.items():
        for m in pd.date_range("2023-01-01", periods=months, freq="MS"):
            rows.append(
                {
                    "trust_code": code,
                    "month": m,
                    "occupied_bed_days": bed_days,
                    "restrictive_practice": rate * bed_days / 1000,
                    "mechanical_restraint": 1.0 if code != "T3" else np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_attention_flags_an_outlier_a_concern_a_rising_balancing_measure_and_a_gap():
    params = ProgrammeParams()
    wm = _ward_month({"T1": 10, "T2": 10.5, "T3": 30, "T4": 9.5, "T5": 10, "T6": 10.2})
    funnel = funnel_positions(wm, "restrictive_practice")
    assert funnel["T3"] == "above 99.8%" and funnel["T1"] == "within"
    recorded = completeness(wm, ["restrictive_practice", "mechanical_restraint"])
    its = pd.DataFrame(
        [
            {"measure": "self_harm", **_row(1.5, 1.2, 1.9)},
            {"measure": "seclusion", **_row(1.5, 1.2, 1.9)},  # not balancing: the verdict's job
        ]
    )
    spc = pd.DataFrame(
        {"measure": ["seclusion", "prone_restraint"], "variation_icon": ["concern_high", ""]}
    )
    flags = attention("T3", params, its, spc, funnel, recorded)
    kinds = [f.kind for f in flags]
    assert kinds == ["outlier", "concern", "balancing", "data"]
    assert "99.8%" in flags[0].text and "Seclusion" in flags[1].text
    assert "Self-harm" in flags[2].text and "rose" in flags[2].text
    assert "recorded in 0%" in flags[3].text and "other trusts: 100%" in flags[3].text
    assert all(f.short for f in flags)
    quiet = attention("T1", params, its.iloc[:0], spc.iloc[:0], funnel, recorded)
    assert quiet == []


def test_a_trust_with_a_small_count_has_no_funnel_place_or_flag_in_a_shared_report():
    """A trust with 1-4 events over the 12 months has no point on the programme page's funnel
    plot; its place beyond a limit would, with its bed days, narrow its count. A shared report
    gives it no place and no outlier flag; an internal one does."""
    from rrp_eval.disclosure import DisclosureRule

    wm = _ward_month({"T1": 10, "T2": 10.5, "T3": 10.2, "T4": 9.5, "T5": 10})
    tiny = _ward_month({"T6": 0.0}, bed_days=5.0)  # 60 bed days in the 12 months
    tiny.loc[tiny.index[:4], "restrictive_practice"] = 1.0  # 4 events: 67 a 1,000 against 10
    wm = pd.concat([wm, tiny])
    params = ProgrammeParams()
    internal = funnel_positions(wm, "restrictive_practice", rule=DisclosureRule(internal=True))
    shared = funnel_positions(wm, "restrictive_practice", rule=DisclosureRule())
    assert internal == funnel_positions(wm, "restrictive_practice")  # no rule: every place
    assert internal["T6"].startswith("above") and "T6" not in shared
    assert {k: v for k, v in internal.items() if k != "T6"} == shared
    wm.loc[wm["trust_code"] == "T6", "restrictive_practice"] *= 2  # 8 events: shown
    assert funnel_positions(wm, "restrictive_practice", rule=DisclosureRule())["T6"] != ""
    recorded = completeness(wm, ["restrictive_practice"])
    none = pd.DataFrame(columns=["measure", "variation_icon"])
    assert [f.kind for f in attention("T6", params, none, none, internal, recorded)] == ["outlier"]
    assert attention("T6", params, none, none, shared, recorded) == []


def test_a_funnel_needs_three_trusts():
    assert funnel_positions(_ward_month({"T1": 10, "T2": 50}), "restrictive_practice") == {}


def _contrast(a: str, b: str) -> float:
    def lum(h: str) -> float:
        c = [int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_chart_colours_reach_3_to_1_and_icon_letters_4_5_to_1():
    from rrp_eval import plots

    for name, colour in plots.POINT_COLOURS.items():
        assert _contrast(colour, "#ffffff") >= 3, name
    for name, (_, colour, _) in plots.ICON_TEXT.items():
        assert _contrast(colour, "#ffffff") >= 4.5, name  # white letter on the disc
    shapes = {marker for marker, _, _ in plots.POINT_STYLES.values()}
    assert len(shapes) == len(plots.POINT_STYLES)  # shape as well as colour
