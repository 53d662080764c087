"""Unit tests for rrp_eval.cli (the current main job and exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_unwritable_output_exits_2_without_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = subprocess.run(
        [sys.executable, "-m", "rrp_eval.cli", "demo-data", str(blocker / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("rrp-eval demo-data: error:")


@pytest.mark.slow
def test_run_rejects_unknown_trusts_and_bad_jobs(tmp_path):
    from datafiles import write_programme

    data = write_programme(tmp_path / "d")
    run = _cli("run", "--data", str(data), "--trusts", "RXA,NOPE", "--out", str(tmp_path / "o"))
    assert (
        run.returncode == 2 and "--trusts: NOPE not in the data; trusts are RXA, RXB" in run.stderr
    )
    run = _cli("run", "--data", str(data), "--jobs", "0", "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "--jobs 0: must be at least 1" in run.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_console_script_is_installed():
    script = Path(sys.executable).parent / "rrp-eval"
    run = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("rrp-eval ")


def _cli(*args, cwd=None, env=None):
    import os

    script = Path(sys.executable).parent / "rrp-eval"
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, cwd=cwd, env=environ
    )


@pytest.mark.slow
def test_demo_data_then_validate_exits_0(tmp_path):
    run = _cli("demo-data", str(tmp_path / "demo"), "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "demo" / "truth.json").read_text())["seed"] == 5
    run = _cli("validate", str(tmp_path / "demo"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 errors" in run.stdout and "14 trusts" in run.stdout


@pytest.mark.slow
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


@pytest.mark.slow
def test_validate_with_bad_parameters_exits_2(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "programme.yaml").write_text("horizon: 12\n")
    run = _cli("validate", str(tmp_path), "--params", str(params))
    assert run.returncode == 2
    assert "unknown key 'horizon'" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_run_pdf_without_a_browser_stops_before_running(tmp_path):
    """--pdf checks for a browser first: no hour-long run that then cannot print."""
    from datafiles import write_programme

    data = write_programme(tmp_path / "d")
    env = {"RRP_EVAL_BROWSER": str(tmp_path / "no-such-browser")}
    run = _cli("run", "--data", str(data), "--pdf", "--out", str(tmp_path / "o"), env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--pdf needs Chromium, Chrome or Edge" in run.stderr and "nothing was run" in run.stderr
    assert not (tmp_path / "o").exists()
