"""Reference tests skip locally without the data but can never be skipped in CI."""

from __future__ import annotations

import os
import subprocess
import sys

import conftest
import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"RRP_EVAL_REQUIRE_REFERENCE": "1"}, True),
        ({"CI": "false"}, False),
        ({"RRP_EVAL_REQUIRE_REFERENCE": "0"}, False),
    ],
)
def test_reference_required(monkeypatch, env, required):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("RRP_EVAL_REQUIRE_REFERENCE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert conftest.reference_required() is required


def test_reference_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RRP_EVAL_REFERENCE", str(tmp_path))
    assert conftest.reference_dir() == tmp_path
    monkeypatch.delenv("RRP_EVAL_REFERENCE")
    assert conftest.reference_dir() == conftest.ROOT.parent / "shared" / "reference"


@pytest.mark.parametrize("in_ci", [False, True])
def test_missing_reference_fails_in_ci_and_skips_locally(tmp_path, in_ci):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "RRP_EVAL_REQUIRE_REFERENCE")}
    env["RRP_EVAL_REFERENCE"] = str(tmp_path / "absent")
    if in_ci:
        env["RRP_EVAL_REQUIRE_REFERENCE"] = "1"
    target = conftest.ROOT / "tests" / "reference" / "test_linden_2015.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=conftest.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if in_ci:
        assert run.returncode == 1, run.stdout
        assert "required in CI" in run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert "skipped" in run.stdout and "reference data not found" in run.stdout + run.stderr
