"""Issue 16: one pre-specified answer, every other estimate marked secondary or exploratory."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import rrp_eval as rrp
from rrp_eval import show
from rrp_eval.evaluate.programme import PrimaryAnswer, result_role
from rrp_eval.params import PrimaryParams, ProgrammeParams
from rrp_eval.show.text import multiplicity_text, primary_text


@pytest.fixture(scope="module")
def small():
    programme = rrp.load_programme()
    keep = {"X01", "X02", "X03", "X06"}
    return programme.without_trusts(t for t in programme.trusts if t not in keep)


@pytest.fixture(scope="module")
def prog(small):
    return rrp.evaluate_programme(small)


def test_roles_follow_the_plan():
    p = ProgrammeParams()
    assert result_role(p, "restrictive_practice", "rr_h", "random_effects_reml_hk") == "primary"
    # the primary measure's other effects and methods
    assert result_role(p, "restrictive_practice", "level_rr", "controlled") == "secondary"
    # other restrictive practices: the primary effect by the primary method
    assert result_role(p, "seclusion", "rr_h", "random_effects_reml_hk") == "secondary"
    assert result_role(p, "seclusion", "level_rr", "gee_pooled") == "exploratory"
    # balancing measures are never evidence of benefit
    assert result_role(p, "self_harm", "rr_h", "random_effects_reml_hk") == "exploratory"
    q = p.model_copy(update={"primary": PrimaryParams(measure="seclusion", method="controlled")})
    assert result_role(q, "seclusion", "rr_h", "controlled") == "primary"
    assert result_role(q, "restrictive_practice", "rr_h", "random_effects_reml_hk") == (
        "exploratory"
    )


def test_the_programme_has_exactly_one_primary_estimate(prog):
    pooled = prog.pooled
    assert set(pooled["role"]) == {"primary", "secondary", "exploratory"}
    primary = pooled[pooled["role"] == "primary"]
    assert len(primary) == 1
    row = primary.iloc[0]
    assert (row.measure, row.effect, row.method) == (
        "restrictive_practice",
        "rr_h",
        "random_effects_reml_hk",
    )
    answer = prog.primary
    assert answer.estimated and answer.row["estimate"] == row.estimate
    # the reports lead with it: the headline effect is the primary one
    assert prog.headline == "restrictive_practice"
    assert prog.headline_effect()["estimate"] == row.estimate
    assert set(prog.summary_frame()["effect"]) == {"rr_h"}


def test_the_page_leads_with_the_primary_answer_and_says_what_the_rest_is_worth(prog):
    rule = rrp.DisclosureRule.from_params(prog.params.disclosure)
    text = show.programme.primary_answer(prog, rule).text
    r = prog.primary.row
    assert "Pre-specified primary answer: Restrictive practice" in text
    assert f"rate ratio {r.estimate:.2f}, 95% CI {r.ci_low:.2f} to {r.ci_high:.2f}" in text
    shown = prog.pooled[prog.pooled["estimate"].notna()]
    n = int((shown["role"] != "primary").sum())
    assert f"roughly {round(0.05 * n)} here" in text


def test_a_primary_that_cannot_be_estimated_is_reported_not_replaced(small):
    params = small.params.model_copy(
        update={"primary": PrimaryParams(measure="long_term_segregation", method="controlled")}
    )
    prog = rrp.evaluate_programme(small, params)
    answer = prog.primary
    assert not answer.estimated and "not recorded in these data" in answer.reason
    rule = rrp.DisclosureRule.from_params(params.disclosure)
    text = show.programme.primary_answer(prog, rule).text
    assert "could not be estimated" in text and answer.reason in text
    assert "Nothing else on this page replaces it" in text


def test_primary_text_edge_cases():
    row = pd.Series(
        {"estimate": 1.04, "ci_low": 0.9, "ci_high": 1.2, "pi_low": math.nan, "n_trusts": 2}
    )
    text = primary_text(PrimaryAnswer("seclusion", "level_rr", "controlled", row), "Seclusion", 12)
    assert "4% higher than expected" in text and "includes no change" in text
    assert "prediction interval" not in text and "change in level on joining" in text
    text = primary_text(PrimaryAnswer("seclusion", "level_rr", "gee_pooled", row), "S", 12, 3)
    assert "3 months after joining (the end of the phase-in)" in text
    assert multiplicity_text(pd.Series(["primary"])) == ""
    assert "roughly 1 here" in multiplicity_text(pd.Series(["secondary"] * 3))


def test_the_index_leads_with_the_primary_answer(prog):
    from rrp_eval.report.index import index_page

    rule = rrp.DisclosureRule.from_params(prog.params.disclosure)
    page = index_page(
        prog.params,
        pd.DataFrame({"trust_code": [], "trust_name": []}),
        prog.its_effects,
        prog.spc_signals,
        [],
        {},
        rule,
        prog.headline,
        prog.pooled,
    )
    r = prog.primary.row
    head = page.index("The pre-specified answer")
    assert head < page.index("trust evaluations complete")
    assert f"rate ratio {r.estimate:.2f}, 95% CI {r.ci_low:.2f} to {r.ci_high:.2f}" in page
    assert "At 12 months (pre-specified)" in page
    # without a primary row the index says so rather than leading with another estimate
    page = index_page(
        prog.params,
        pd.DataFrame({"trust_code": [], "trust_name": []}),
        prog.its_effects,
        prog.spc_signals,
        [],
        {},
        rule,
        prog.headline,
        prog.pooled.assign(role="secondary"),
    )
    assert "could not be estimated: see the programme evaluation" in page


def test_the_trust_page_marks_the_primary_measure(prog):
    rule = rrp.DisclosureRule.from_params(prog.params.disclosure)
    trust = prog.trusts["X02"]
    sec = show.trust.its_summary(trust, rule)
    roles = dict(zip(sec.tables[0]["Measure"], sec.tables[0]["Role"], strict=True))
    assert roles[trust.label("restrictive_practice")] == "primary measure"
    assert roles[trust.label("self_harm")] == "exploratory"
    assert roles[trust.label("seclusion")] == "secondary"
    assert "pre-specified measure is restrictive practice" in sec.text
