"""The disclosure check every shared page passes: small counts, rates beside suppressed counts,
and counts back-calculated from a rate and rounded bed days."""

from __future__ import annotations

import pytest

from rrp_eval.disclosure import DisclosureRule, audit_tables, implied_count
from rrp_eval.report.html import html_tables

RULE = DisclosureRule()


def _page(header, *rows, caption="T"):
    cells = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><caption>{caption}</caption><tr>{cells}</tr>{body}</table>"


def _audit(page, rule=RULE):
    return audit_tables(html_tables(page), rule)


def test_controlled_counts_pass():
    page = _page(["Ward", "Occupied bed days", "Episodes"], ["W1", "1,235", "*"], ["W2", "0", "15"])
    assert _audit(page) == []


@pytest.mark.parametrize("value", ["3", "12", "1,232"])
def test_small_or_unrounded_counts_are_flagged(value):
    page = _page(["Ward", "Episodes"], ["W1", value])
    findings = _audit(page)
    assert len(findings) == 1 and "'Episodes'" in findings[0]


def test_a_rate_beside_a_suppressed_count_is_flagged():
    page = _page(["Month", "Episodes", "Rate per 1,000 bed days"], ["2021-01", "*", "12"])
    assert "beside a suppressed count" in _audit(page)[0]


def test_a_back_calculable_count_is_flagged():
    # 20 per 1,000 over 150 (145-155) bed days: 2.9-3.1 episodes, i.e. exactly 3
    page = _page(["Ward", "Occupied bed days", "Rate per 1,000"], ["W1", "150", "20"])
    assert "reveal a count of 3" in _audit(page)[0]
    # over 1,500 bed days the same rate means 30 episodes: not small
    page = _page(["Ward", "Occupied bed days", "Rate per 1,000"], ["W1", "1,500", "20"])
    assert _audit(page) == []


def test_implied_count_brackets_the_truth():
    low, high = implied_count(22, 0, 310, 5)
    assert low <= 7 <= high and high - low < 1  # 7 / 312 bed days = 22.4 per 1,000


def test_columns_that_are_not_counts_are_left_alone():
    page = _page(
        ["Trust", "Wards", "Months of data", "Events averted", "Share (95% CI)"],
        ["X01", "3", "47", "2.1 (-1 to 5)", "50%"],
    )
    assert _audit(page) == []


def test_internal_reports_are_not_checked():
    page = _page(["Ward", "Episodes"], ["W1", "3"])
    assert _audit(page, DisclosureRule(internal=True)) == []
