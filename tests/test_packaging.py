"""The repository's set-up contract: two README commands, make help, conda and pip agree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_environment_yml_adds_nothing_to_pyproject(pyproject):
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pips = [d for d in deps if isinstance(d, dict)]
    # conda provides only the interpreter and pip; every package comes from pyproject.toml
    assert sorted(re.split(r"[<>=! ]", d)[0] for d in conda) == ["pip", "python"]
    assert len(pips) == 1 and list(pips[0]) == ["pip"]
    assert pips[0]["pip"] == ['-e ".[dev]"'] or pips[0]["pip"] == ["-e .[dev]"]
    python = next(d for d in conda if d.startswith("python"))
    assert python.removeprefix("python") == pyproject["project"]["requires-python"]
    assert env["name"] == pyproject["project"]["name"]


def test_extras_and_console_script(pyproject):
    project = pyproject["project"]
    assert project["scripts"]["rrp-eval"] == "rrp_eval.cli:main"
    assert {"test", "dev"} <= set(project["optional-dependencies"])
    assert "rrp-eval[test]" in project["optional-dependencies"]["dev"]


def _readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0].split("### ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S)
    assert block, "README Quick start needs a bash block"
    return [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]


def test_readme_has_exactly_two_setup_commands_and_they_are_make_targets():
    commands = _readme_setup_commands()
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for cmd in commands:
        target = cmd.split()[1]
        rule = re.search(rf"^{target}: \$\(STAMP\)", makefile, re.M)
        assert rule, f"make {target} must depend on the install stamp so it sets up .venv"


def test_ci_runs_the_readme_test_command_with_reference_data_required():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
    assert "RRP_EVAL_REFERENCE" in ci and "RRP_EVAL_REQUIRE_REFERENCE=1" in ci
    assert "set -euo pipefail" in ci


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_the_targets():
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in ("install", "run", "test", "lint", "format", "clean"):
        assert re.search(rf"^\s+{target}\s+\S", out, re.M), f"make help does not list {target}"


def test_outputs_folder_is_ignored_except_its_keep_file():
    assert (ROOT / "outputs" / ".gitkeep").exists()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = ["outputs/demo/run.json", "outputs/.gitkeep"]
    out = subprocess.run(
        ["git", "check-ignore", *probe], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert out == ["outputs/demo/run.json"]


def test_layout():
    for name in ("notebooks", "rrp_eval", "params", "outputs", "tests", "docs", "benchmarks"):
        assert (ROOT / name).is_dir(), name
    for name in (
        "environment.yml",
        "README.md",
        "pyproject.toml",
        "Makefile",
        ".ci/run",
        "docs/methods.md",
    ):
        assert (ROOT / name).is_file(), name


def test_every_folder_of_the_package_is_listed_for_the_wheel(pyproject):
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    package = ROOT / "rrp_eval"
    folders = {
        ".".join(("rrp_eval", *p.relative_to(package).parts))
        for p in [package, *package.rglob("*")]
        if p.is_dir() and p.name != "__pycache__" and any(f.is_file() for f in p.iterdir())
    }
    assert folders | {"rrp_eval.notebooks"} == listed


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_runs_the_suite(tmp_path):
    """`pip install` of the built wheel into a fresh environment, then `rrp-eval run` outside
    the checkout: the notebooks travel in the wheel (DESIGN: shipped as package data)."""
    import site
    import sys

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("rrp_eval-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    ours = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies come from this environment (a path line, so its editable install of
    # rrp-eval, which a .pth in that folder would load, is not picked up)
    (Path(ours) / "deps.pth").write_text(
        "\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n"
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [str(python), "-c", "import rrp_eval; print(rrp_eval.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(ours), where  # the wheel's copy, not the checkout
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = subprocess.run(
        [str(venv / "bin" / "rrp-eval"), "run", "--out", "out", "--trusts", "X01", "--jobs", "1"],
        capture_output=True,
        text=True,
        cwd=work,
        env={
            **os.environ,
            "MPLBACKEND": "Agg",
            "RRP_EVAL_CACHE": str(tmp_path / "cache"),
            # nbconvert's templates are data files of the environment the dependencies are in
            "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
        },
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "out" / "trusts" / "X01.html").is_file()
    assert (work / "out" / "programme.html").is_file()
    manifest = json.loads((work / ".out.manifest.json").read_text())
    executed = {v["path"] for v in manifest["notebooks"].values()}
    assert executed and all(p.startswith(ours) for p in executed), executed
