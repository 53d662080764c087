"""Trust-level ITS and SPC on the demonstration programme, and the plain-English reading."""

from __future__ import annotations

import numpy as np
import pytest

from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.data.validate import load_programme
from rrp_eval.evaluate.programme import evaluate_programme
from rrp_eval.evaluate.tables import ITS_EFFECTS_COLUMNS, SPC_COLUMNS
from rrp_eval.evaluate.trust import evaluate_trust, fit_trust_its, trust_spc
from rrp_eval.params import ProgrammeParams
from rrp_eval.prepare import with_derived_measures
from rrp_eval.show.text import its_reading


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = write_demo_programme(tmp_path_factory.mktemp("demo"))
    return with_derived_measures(load_programme(folder)), ProgrammeParams()


def test_summed_series_for_a_trust_with_one_start(demo):
    data, params = demo
    m = fit_trust_its(data, "X01", "physical_restraint", params.for_trust("X01"))
    assert m.status == "ok" and m.design.kind == "summed"
    assert m.result.spec.unit is None and m.result.n_pre == 18


def test_stacked_wards_for_a_trust_whose_wards_join_at_different_times(demo):
    data, params = demo
    m = fit_trust_its(data, "X03", "physical_restraint", params.for_trust("X03"))
    assert m.design.kind == "stacked" and m.status == "ok"
    spec = m.result.spec
    # model-based within ward, as the summed series (issue 16: not CR1 on 2-5 df)
    assert spec.unit == "ward_id" and spec.unit_effects and spec.cov_type == "arma"
    assert m.result.serial is not None and m.result.effect("level_change").df > 20
    assert any(name.startswith("unit[") for name in m.result.params.index)
    assert m.row()["design"] == "stacked"


def test_not_estimable_cases_have_reasons(demo):
    data, params = demo
    x05 = fit_trust_its(data, "X05", "mechanical_restraint", params.for_trust("X05"))
    assert x05.status == "not_estimable" and "zero in every period" in x05.message
    assert np.isnan(x05.row()["level_rr"])


@pytest.mark.slow
def test_tables_have_the_spec_columns(demo):
    data, params = demo
    prog = evaluate_programme(data, params, trusts=["X01", "X06"])
    its, spc = prog.its_effects, prog.spc_signals
    assert list(its.columns[: len(ITS_EFFECTS_COLUMNS)]) == ITS_EFFECTS_COLUMNS
    assert list(spc.columns) == SPC_COLUMNS
    measures = params.analysed_measures(data.measures)
    assert len(its) == len(spc) == 2 * len(measures)
    assert "restrictive_practice" in set(its.measure)


def test_spc_limits_come_from_the_baseline(demo):
    data, params = demo
    s = trust_spc(data, "X01", "physical_restraint", params)
    res, series, label = s.result, s.series, s.label
    assert label == "participating wards" and res.freeze == 18
    assert res.improvement == "decrease" and res.chart in ("u", "u'")
    base = series.iloc[:18]
    expected = base["count"].sum() / base["occupied_bed_days"].sum() * 1000
    assert res.frame["centre"].iloc[0] == pytest.approx(expected)


def test_reading_is_written_from_the_numbers(demo):
    data, params = demo
    m = fit_trust_its(data, "X07", "physical_restraint", params.for_trust("X07"))
    text = its_reading(m, "Physical restraint")
    lvl = m.result.effect("level_change")
    assert f"rate ratio {lvl.estimate:.2f}" in text
    assert f"{(1 - lvl.estimate) * 100:.0f}% lower" in text
    assert "evidence of an improvement" in text  # X07's true level effect is 0.70
    none = fit_trust_its(data, "X05", "mechanical_restraint", params.for_trust("X05"))
    assert "no interrupted time-series estimate" in its_reading(none, "Mechanical restraint")


def test_a_trust_with_no_participating_ward_gets_no_its(tmp_path):
    from datafiles import WARDS, write_programme

    wards = WARDS.replace("2021-07,Wave 1,Midlands", ",,Midlands")
    data = with_derived_measures(load_programme(write_programme(tmp_path, wards=wards)))
    m = fit_trust_its(data, "RXB", "seclusion", ProgrammeParams().for_trust("RXB"))
    assert m.status == "not_estimable" and "no participating ward" in m.message
    s = trust_spc(data, "RXB", "seclusion", ProgrammeParams())
    res, label = s.result, s.label
    assert label == "all wards" and res is not None and res.freeze is None


@pytest.mark.slow
def test_sensitivity_variants_and_rows(demo):
    from rrp_eval.evaluate.tables import SENSITIVITY_COLUMNS
    from rrp_eval.evaluate.trust import sensitivity_table

    data, params = demo
    rows = sensitivity_table(data, "X01", "physical_restraint", params.for_trust("X01")).to_dict(
        "records"
    )
    variants = [r["variant"] for r in rows]
    assert variants == [
        "primary",
        "family poisson",
        "family negbin",
        "phase-in 3 months",
        "phase-in 6 months",
        "no seasonality",
        "seasonality (2 harmonics)",
        "baseline: last 12 months",
        "quadratic trend",
        "robust (Huber weights)",
        "autocorrelation: AR(1) plug-in",
    ]
    primary = fit_trust_its(data, "X01", "physical_restraint", params.for_trust("X01")).row()
    assert rows[0]["level_rr"] == primary["level_rr"]
    by = {r["variant"]: r for r in rows}
    assert by["phase-in 6 months"]["phase_in"] == 6 and by["no seasonality"]["harmonics"] == 0
    assert by["family negbin"]["family"] == "negbin"
    assert by["autocorrelation: AR(1) plug-in"]["cov_type"] == "ar1"
    assert by["primary"]["cov_type"] == "arma"
    table = evaluate_trust(data, "X06", params).tables()["its_sensitivity"]
    assert list(table.columns) == SENSITIVITY_COLUMNS
    assert len(table) == len(params.analysed_measures(data.measures)) * len(variants)


@pytest.mark.slow
def test_pooled_gee_recovers_the_programme_effect(demo):
    import json

    import numpy as np

    from rrp_eval.data.synthetic import demo_programme
    from rrp_eval.models.meta import pooled_gee

    data, params = demo
    truth = demo_programme().truth["trusts"]
    for measure in ("physical_restraint", "restrictive_practice", "seclusion"):
        fit = pooled_gee(data.ward_month, data.wards, measure)
        true = np.exp(np.mean([np.log(t["measures"][measure]["level_rr"]) for t in truth.values()]))
        lvl = fit["level_rr"]
        assert lvl["ci_low"] < true < lvl["ci_high"], (measure, lvl, true)
        assert fit["n_trusts"] == 14 and fit["n_wards"] == 60
    table = evaluate_programme(data, params, trusts=["X01", "X02", "X03"]).pooled
    gee = table[table.method == "gee_pooled"]
    assert set(gee.effect) == {"level_rr", "slope_rr", "rr_h"} and (gee.n_trusts >= 13).all()
    assert json.dumps(sorted(set(table.method)))  # serialisable method names
