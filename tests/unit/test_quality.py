"""The data-quality evaluation (``rrp.evaluate_quality``): what the data-quality page shows."""

from __future__ import annotations

import pytest

import rrp_eval as rrp
from tests.datafiles import write_programme


def _ward_month(blank_seclusion_from: int = 13, drop_w2_from: int = 13) -> str:
    """RXA's W2 stops reporting from month ``drop_w2_from``; RXB leaves seclusion blank from
    month ``blank_seclusion_from`` (24 months)."""
    rows = [
        "trust_code,ward_id,month,occupied_bed_days,physical_restraint,prone_restraint,"
        "seclusion,rapid_tranquillisation"
    ]
    for trust, ward, bd in (("RXA", "W1", 550), ("RXA", "W2", 250), ("RXB", "001", 500)):
        for m in range(1, 25):
            if ward == "W2" and m >= drop_w2_from:
                continue
            month = f"{2021 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}"
            sec = "" if trust == "RXB" and m >= blank_seclusion_from else str(m % 4)
            rows.append(f"{trust},{ward},{month},{bd + m % 5},{10 + m % 3},{m % 2},{sec},{m % 3}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def quality(tmp_path):
    wm = _ward_month(blank_seclusion_from=19, drop_w2_from=13)
    return rrp.evaluate_quality(rrp.load_programme(write_programme(tmp_path, ward_month=wm)))


def test_completeness_is_the_share_of_ward_months_recorded(quality):
    assert quality.completeness.loc["RXB", "seclusion"] == pytest.approx(18 / 24)
    assert quality.completeness.loc["RXA", "seclusion"] == 1.0
    cov = quality.coverage
    assert cov.loc["RXA", "wards"] == 2 and cov.loc["RXA", "ward_months"] == 24 + 12
    assert str(cov.loc["RXA", "last"].date()) == "2022-12-01"


def test_a_ward_that_stops_reporting_is_a_reporting_change(quality):
    """RXA's bed days fall by a third when W2 stops: a shift on the run chart; RXB's do not."""
    assert quality.reporting_changes == ["RXA"]
    row = quality.summary_frame().loc["RXA"]
    assert bool(row["reporting_change"]) and row["errors"] == 0


def test_findings_by_rule_name_no_values(tmp_path):
    wm = _ward_month().replace("RXB,001,2021-03,503", "RXB,001,2021-03,99999", 1)
    quality = rrp.evaluate_quality(rrp.load_programme(write_programme(tmp_path, ward_month=wm)))
    assert not quality.findings.empty
    by_rule = quality.findings_by_rule()
    assert list(by_rule.columns) == ["trust_code", "severity", "rule", "findings"]
    assert "99999" not in by_rule.to_string()
    assert quality.summary_frame().loc["RXB", "warnings"] >= 1


def test_a_trust_that_failed_validation_is_listed_by_its_findings_only(tmp_path):
    wm = _ward_month().replace("RXB,001,2021-03,503", "RXB,001,2021-03,-5", 1)
    quality = rrp.evaluate_quality(rrp.load_programme(write_programme(tmp_path, ward_month=wm)))
    assert "RXB" not in quality.coverage.index and "RXB" in set(quality.findings.trust_code)
