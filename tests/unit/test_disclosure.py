"""Disclosure control: NHS Digital's MHSDS rule by default (DOMAIN.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rrp_eval.disclosure import SUPPRESSED, DisclosureRule, suppressed_share
from rrp_eval.params import DisclosureParams


def test_counts_one_to_four_are_stars_others_round_to_five():
    rule = DisclosureRule()
    shown = rule.counts(pd.Series([0, 1, 4, 5, 7, 8, 12.5, 1234, np.nan]))
    assert shown.tolist() == ["0", SUPPRESSED, SUPPRESSED, "5", "5", "10", "10", "1,235", ""]


def test_rates_need_five_events_and_a_hundred_bed_days():
    rule = DisclosureRule()
    count = pd.Series([4, 5, 5, 20, np.nan])
    bed_days = pd.Series([500, 99, 100, 300, 300])
    rate = count / bed_days * 1000
    shown = rule.rates(rate, count, bed_days)
    assert shown.isna().tolist() == [True, True, False, False, True]
    # to a step of 1, 2 or 5 x 10^k with step x bed days / 1,000 >= 5: 50 and 20 per 1,000 here
    assert shown[2] == 50 and shown[3] == 60  # 66.7 to the nearest 20
    text = rule.rate_text(rate, count, bed_days)
    assert text.tolist() == [SUPPRESSED, SUPPRESSED, "50", "60", ""]
    assert suppressed_share(rule, count, bed_days) == 0.5


def test_internal_turns_control_off_and_says_so():
    rule = DisclosureRule(internal=True)
    assert rule.counts(pd.Series([3])).tolist() == ["3"]
    assert rule.rates(pd.Series([12.345]), pd.Series([1]), pd.Series([81])).tolist() == [12.345]
    assert rule.statement.startswith("INTERNAL: NOT FOR SHARING")


def test_rule_comes_from_the_parameters_and_is_stated():
    rule = DisclosureRule.from_params(DisclosureParams(suppress_below=10, round_to=10))
    assert rule.counts(pd.Series([9, 14])).tolist() == [SUPPRESSED, "10"]
    assert "1 to 9 are shown as *" in rule.statement and "nearest 10" in rule.statement
