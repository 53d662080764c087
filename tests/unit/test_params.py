"""Strict parameters: every mistake names the file, line, key and what is allowed."""

from __future__ import annotations

import pytest

from rrp_eval.params import ParameterError, ProgrammeParams, load_params


def _write(folder, text, trusts=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "programme.yaml").write_text(text)
    for code, body in (trusts or {}).items():
        (folder / "trusts").mkdir(exist_ok=True)
        (folder / "trusts" / f"{code}.yaml").write_text(body)
    return folder


def _error(tmp_path, text, trusts=None) -> str:
    with pytest.raises(ParameterError) as info:
        load_params(_write(tmp_path / "p", text, trusts))
    return str(info.value)


def test_defaults_without_a_folder():
    p = load_params(None)
    assert p.horizon_months == 12 and p.phase_in_months == 0
    assert p.model.family == "quasipoisson" and p.model.cov_type == "arma"
    assert p.disclosure.suppress_below == 5


def test_the_repository_parameters_are_valid(root):
    p = load_params(root / "params")
    assert p.data is None
    assert p.measure("violence_incidents").balancing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "horizon_months: twelve\n",
            "programme.yaml:1: key 'horizon_months': should be a valid integer (got 'twelve')",
        ),
        (
            "horizon_months: 0\n",
            "programme.yaml:1: key 'horizon_months': should be greater than or equal to 1 (got 0)",
        ),
        (
            "phase_in: 3\n",
            "programme.yaml:1: unknown key 'phase_in'; allowed here: programme, "
            "data, measures, phase_in_months",
        ),
        (
            "model:\n  family: binomial\n",
            "programme.yaml:2: key 'model.family': should be 'quasipoisson', "
            "'auto', 'poisson' or 'negbin' (got 'binomial')",
        ),
        (
            "model:\n  harmonics: 9\n",
            "programme.yaml:2: key 'model.harmonics': should be 'auto' or "
            "a whole number of sine/cosine pairs from 0 to 6 (got 9)",
        ),
        (
            "model:\n  colour: red\n",
            "programme.yaml:2: unknown key 'model.colour'; allowed here: "
            "family, harmonics, cov_type, maxlags",
        ),
        (
            "measures:\n  violence:\n    direction: down\n",
            "programme.yaml:3: key "
            "'measures.violence.direction': should be 'decrease', 'increase' or 'neutral'",
        ),
        (
            "measures:\n  violence:\n    colour: 1\n",
            "programme.yaml:3: unknown key "
            "'measures.violence.colour'; allowed here: direction, label, balancing",
        ),
        (
            "comparison_wards: maybe\n",
            "programme.yaml:1: key 'comparison_wards': should be a valid boolean",
        ),
        (
            "disclosure:\n  suppress_below: 0\n",
            "programme.yaml:2: key 'disclosure.suppress_below'"
            ": should be greater than or equal to 1 (got 0)",
        ),
        ("horizon_months: '12'\n", "key 'horizon_months': should be a valid integer (got '12')"),
        ("measures:\n  bad name: {}\n", "measure name 'bad name' must use letters, digits"),
        ("- a\n- b\n", "must be a mapping of keys to values, not a list"),
        ("model: [\n", "not valid YAML"),
        (
            "horizon_months: 6\nphase_in_months: 9\n",
            "programme.yaml:2: key 'phase_in_months': phase_in_months (9) must not exceed "
            "horizon_months (6)",
        ),
        (
            "primary:\n  effect: level\n",
            "programme.yaml:2: key 'primary.effect': should be 'rr_h', 'level_rr' or 'slope_rr'",
        ),
        (
            "primary:\n  method: meta\n",
            "programme.yaml:2: key 'primary.method': should be 'random_effects_reml_hk'",
        ),
    ],
)
def test_mistakes_name_file_line_key_and_what_is_allowed(tmp_path, text, expected):
    assert expected in _error(tmp_path, text)


def test_all_mistakes_are_listed_together(tmp_path):
    message = _error(tmp_path, "horizon_months: x\nphase_in_months: -1\nwhatever: 1\n")
    assert message.count("\n") == 2
    # each with its own line (issue 19: only the first had one)
    lines = sorted(m.split(": key")[0].split(": unknown")[0][-2:] for m in message.splitlines())
    assert lines == [":1", ":2", ":3"]


def test_an_override_for_a_trust_not_in_the_data_is_refused_with_a_suggestion(tmp_path):
    from datafiles import write_programme

    from rrp_eval.report.suite import UnusableInput, run_suite

    params_dir = _write(tmp_path / "params", "programme: Test\n", {"RXAA": "note: typo\n"})
    data = write_programme(tmp_path / "d")
    with pytest.raises(
        UnusableInput, match=r"trusts/RXAA.yaml: there is no trust RXAA .*did you mean RXA"
    ):
        run_suite(data=data, params_dir=params_dir, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    import rrp_eval as rrp

    with pytest.raises(ValueError, match="did you mean RXA"):
        rrp.load_programme(data, params_dir)


def test_trust_overrides(tmp_path):
    folder = _write(
        tmp_path / "p",
        "phase_in_months: 3\nmodel: {cov_type: hac}\n",
        {"RXT": "phase_in_months: 6\nmodel: {family: poisson}\n"},
    )
    p = load_params(folder)
    rxt, other = p.for_trust("RXT"), p.for_trust("ABC")
    assert rxt.phase_in_months == 6 and other.phase_in_months == 3
    assert rxt.model.family == "poisson" and rxt.model.cov_type == "hac"
    assert other.model.family == "quasipoisson"


def test_trust_override_mistakes_name_their_file(tmp_path):
    message = _error(tmp_path, "", {"RXT": "horizon_months: 6\n"})
    assert (
        "trusts/RXT.yaml:1: unknown key 'horizon_months'; allowed here: phase_in_months" in message
    )
    message = _error(tmp_path / "b", "", {"bad code": "{}\n"})
    assert "the file name must be a trust code" in message


def test_a_trust_phase_in_beyond_the_horizon_is_refused_with_its_file_and_line(tmp_path):
    message = _error(tmp_path, "horizon_months: 6\n", {"RXT": "note: x\nphase_in_months: 7\n"})
    assert "trusts/RXT.yaml:2: key 'phase_in_months': 7 must not exceed" in message
    assert load_params(_write(tmp_path / "ok", "", {"RXT": "phase_in_months: 12\n"}))


def test_the_primary_analysis_defaults_to_restrictive_practice_at_the_horizon(tmp_path):
    p = load_params(None).primary
    assert (p.measure, p.effect) == ("restrictive_practice", "rr_h")
    p = load_params(_write(tmp_path / "p", "primary: {measure: seclusion, method: controlled}\n"))
    assert (p.primary.measure, p.primary.effect, p.primary.method) == (
        "seclusion",
        "rr_h",
        "controlled",
    )


def test_missing_folder_or_file(tmp_path):
    with pytest.raises(ParameterError, match="no such parameters folder"):
        load_params(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="missing; the parameters folder needs a programme"):
        load_params(tmp_path / "empty")


def test_data_path_is_relative_to_the_parameters_file(tmp_path):
    p = load_params(_write(tmp_path / "p", "data: ../mydata\n"))
    assert p.data_path == (tmp_path / "p" / ".." / "mydata")


def test_measures_analysed(tmp_path):
    p = ProgrammeParams.model_validate({"measures": {"injuries": {"direction": "decrease"}}})
    cols = ["physical_restraint", "seclusion", "rapid_tranquillisation", "self_harm", "injuries"]
    assert p.analysed_measures(cols) == (
        "physical_restraint",
        "rapid_tranquillisation",
        "seclusion",
        "restrictive_practice",
        "self_harm",
        "injuries",
    )
    assert p.measure("physical_restraint").direction == "decrease"
    assert p.measure("injuries").label == "Injuries"
    assert p.measure("self_harm").balancing


def test_exclude_wards_is_set_from_yaml_and_leaves_the_wards_out_everywhere(tmp_path):
    """A YAML list (the strict tuple once refused every file); the wards are gone from the
    data every analysis and page sees, trust and programme alike."""
    from datafiles import write_programme

    import rrp_eval as rrp
    from rrp_eval.data.validate import load_programme
    from rrp_eval.prepare import without_excluded_wards

    params_dir = tmp_path / "params"
    (params_dir / "trusts").mkdir(parents=True)
    (params_dir / "programme.yaml").write_text("programme: Test\n", encoding="utf-8")
    (params_dir / "trusts" / "RXA.yaml").write_text("exclude_wards: [W2]\n", encoding="utf-8")
    params = load_params(params_dir)
    assert params.for_trust("RXA").exclude_wards == ("W2",)
    assert params.excluded_wards == {"RXA": ("W2",)}
    data = write_programme(tmp_path / "d")
    full = load_programme(data, params)
    kept = without_excluded_wards(full, params.excluded_wards)
    assert ("RXA", "W2") in set(zip(full.wards.trust_code, full.wards.ward_id, strict=True))
    for frame in (kept.wards, kept.ward_month):
        assert not ((frame.trust_code == "RXA") & (frame.ward_id == "W2")).any()
    assert len(kept.ward_month) == len(full.ward_month) - 12
    programme = rrp.load_programme(data, params_dir)  # what the notebooks see
    assert not (programme.ward_month.ward_id == "W2").any()
    trust = rrp.evaluate_trust(programme, "RXA", sensitivity=False)
    assert "W2" not in set(trust.data.wards.ward_id) | set(trust.design.participating)


def test_an_excluded_ward_that_is_not_in_the_data_is_refused(tmp_path):
    from datafiles import write_programme

    from rrp_eval.report.suite import UnusableInput, run_suite

    params_dir = tmp_path / "params"
    (params_dir / "trusts").mkdir(parents=True)
    (params_dir / "programme.yaml").write_text("programme: Test\n", encoding="utf-8")
    (params_dir / "trusts" / "RXA.yaml").write_text("exclude_wards: [W9]\n", encoding="utf-8")
    data = write_programme(tmp_path / "d")
    with pytest.raises(UnusableInput, match=r"trusts/RXA.yaml: exclude_wards: W9 not a ward"):
        run_suite(data=data, params_dir=params_dir, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    (params_dir / "trusts" / "RXA.yaml").write_text("exclude_wards: ['../x']\n", encoding="utf-8")
    with pytest.raises(ParameterError, match=r"exclude_wards: '\.\./x' must use"):
        load_params(params_dir)


def test_the_override_example_in_params_readme_is_valid(tmp_path):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "params" / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "trusts").mkdir()
    (tmp_path / "programme.yaml").write_text("programme: Test\n", encoding="utf-8")
    (tmp_path / "trusts" / "RXT.yaml").write_text(example, encoding="utf-8")
    trust = load_params(tmp_path).for_trust("RXT")
    assert trust.phase_in_months == 3 and trust.exclude_wards == ("W7", "W12")


@pytest.mark.parametrize("value", ["anonymised", "aggregate", "named"])
def test_other_trusts_is_refused_not_ignored(tmp_path, value):
    # it was accepted and never read (issue 14): a setting that does nothing must not pass
    message = _error(tmp_path, f"disclosure:\n  other_trusts: {value}\n")
    assert "programme.yaml:1" in message and "other_trusts is not a setting" in message
