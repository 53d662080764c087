"""Unit tests for rrp_eval.cli (the current main job and exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from rrp_eval.cli import main
from rrp_eval.tables import ITS_EFFECTS_COLUMNS


def test_run_writes_effects_truth_and_manifest(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["run", "--out", str(out), "--seed", "7"]) == 0
    table = pd.read_csv(out / "tables" / "its_effects.csv")
    assert list(table.columns) == ITS_EFFECTS_COLUMNS
    assert (table["status"] == "ok").all() and len(table) == 3
    truth = {t["trust_code"]: t for t in json.loads((out / "truth.json").read_text())}
    assert set(truth) == set(table["trust_code"])
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["parameters"]["seed"] == 7
    printed = capsys.readouterr().out
    assert "DEMO-A" in printed and "true 0.70" in printed


def test_run_is_reproducible_from_its_seed(tmp_path):
    for name in ("a", "b"):
        assert main(["run", "--out", str(tmp_path / name), "--seed", "3"]) == 0
    a = (tmp_path / "a" / "tables" / "its_effects.csv").read_bytes()
    assert a == (tmp_path / "b" / "tables" / "its_effects.csv").read_bytes()


def test_the_strong_simulated_effect_is_detected(tmp_path):
    main(["run", "--out", str(tmp_path), "--seed", "2024"])
    table = pd.read_csv(tmp_path / "tables" / "its_effects.csv").set_index("trust_code")
    assert table.loc["DEMO-A", "level_rr_high"] < 1


def test_unwritable_output_exits_2_without_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = subprocess.run(
        [sys.executable, "-m", "rrp_eval.cli", "run", "--out", str(blocker / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("rrp-eval run: error:")


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "rrp-eval"
    run = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("rrp-eval ")


def _cli(*args, cwd=None):
    script = Path(sys.executable).parent / "rrp-eval"
    return subprocess.run([str(script), *args], capture_output=True, text=True, cwd=cwd)


def test_demo_data_then_validate_exits_0(tmp_path):
    run = _cli("demo-data", str(tmp_path / "demo"), "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "demo" / "truth.json").read_text())["seed"] == 5
    run = _cli("validate", str(tmp_path / "demo"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 errors" in run.stdout and "14 trusts" in run.stdout


def test_validate_lists_every_error_and_exits_2(tmp_path):
    from datafiles import WARD_MONTH, replace_line, write_programme

    wm = replace_line(WARD_MONTH, 2, "RXA,W1,2021-01,551,abc,1,-1,1")
    folder = write_programme(tmp_path / "d", ward_month=wm)
    run = _cli("validate", str(folder))
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("ward_month.csv:2:5: error: physical_restraint: 'abc'")
    assert lines[1].startswith("ward_month.csv:2:7: error: seclusion: '-1' is negative")
    assert lines[-1].endswith("2 errors, 0 warnings (errors confined to trusts RXA)")


def test_validate_with_bad_parameters_exits_2(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "programme.yaml").write_text("horizon: 12\n")
    run = _cli("validate", str(tmp_path), "--params", str(params))
    assert run.returncode == 2
    assert "unknown key 'horizon'" in run.stderr and "Traceback" not in run.stderr
