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
