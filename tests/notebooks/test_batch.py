"""Batch runs: incremental re-runs, timeouts, interrupted runs and crash recovery (issue 9)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rrp_eval.data.synthetic import write_demo_programme
from rrp_eval.report.incremental import OutputLocked, output_lock, recover, write_marker
from rrp_eval.report.manifest import state_path
from rrp_eval.report.suite import UnusableInput, run_suite

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "suite"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return write_demo_programme(tmp_path_factory.mktemp("demo"))


def _run(data, out, trusts, **kw):
    return run_suite(
        data=data,
        params_dir=ROOT / "params",
        out=out,
        trusts=trusts,
        jobs=2,
        notebooks=FIXTURES,
        **kw,
    )


def _status(summary):
    return {r.task.html: ("reused" if r.reused else r.status) for r in summary.results}


def test_only_notebooks_whose_inputs_changed_run_again(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    out = tmp_path / "out"
    first = _run(data, out, ["X01", "X03"])
    assert set(_status(first).values()) == {"ok"}
    page = (out / "trusts" / "X01.html").read_bytes()
    index = (out / "index.html").read_bytes()
    again = _run(data, out, ["X01", "X03"])
    assert set(_status(again).values()) == {"reused"}
    assert (out / "trusts" / "X01.html").read_bytes() == page
    assert (out / "index.html").read_bytes() == index  # rebuilt from the reused tables
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["outputs"]["tables"]["reused"] is True
    assert "input_sha256" not in manifest["outputs"]["trusts/X01.html"]  # a shared folder
    full = json.loads(state_path(out.resolve()).read_text())  # kept beside it
    assert len(full["outputs"]["trusts/X01.html"]["input_sha256"]) == 64
    # one of X01's counts changes: X01 and the programme-wide pages run, X03 is reused
    wm = pd.read_csv(data / "ward_month.csv", dtype=str, keep_default_na=False)
    row = wm.index[(wm.trust_code == "X01") & (wm.month == "2021-03")][0]
    wm.loc[row, "physical_restraint"] = str(int(wm.loc[row, "physical_restraint"]) + 7)
    wm.to_csv(data / "ward_month.csv", index=False)
    changed = _status(_run(data, out, ["X01", "X03"]))
    assert changed == {
        "data_quality.html": "ok",
        "trusts/X01.html": "ok",
        "trusts/X03.html": "reused",
        "programme.html": "ok",
    }
    assert json.loads((out / "run.json").read_text())["outputs"]["tables"]["reused"] is False
    forced = _status(_run(data, out, ["X01", "X03"], force=True))
    assert set(forced.values()) == {"ok"}


def test_a_notebook_past_its_timeout_is_stopped_and_shown_failed(demo_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    # X06 sleeps an hour unless its timeout stops it (no wall-time bound: a busy machine
    # must not fail this test, and a timeout that does not work cannot pass it)
    monkeypatch.setenv("RRP_FIXTURE_SLEEP", "3600")
    summary = _run(demo_data, out, ["X01", "X06"], timeout=8)
    result = {r.task.name: r for r in summary.results}
    assert result["X01"].status == "ok"
    assert result["X06"].status == "failed" and result["X06"].seconds < 3600
    assert result["X06"].message.startswith("timed out after 8 s")
    page = (out / "trusts" / "X06.html").read_text()
    assert "Fixture trust" in page  # the partial notebook, rendered with its error
    index = (out / "index.html").read_text()
    assert "timed out after 8 s" in index
    assert summary.exit_code == 1


def test_a_killed_run_leaves_the_previous_output_intact(demo_data, tmp_path):
    out = tmp_path / "out"
    _run(demo_data, out, ["X01"])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = _start_slow_run(demo_data, out, {"RRP_FIXTURE_SLEEP": "120"}, force=True)
    try:
        assert len(_processes_with("RRP_FIXTURE_SLEEP=120")) >= 4  # run, workers, kernels
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # nothing of the killed run lives on: not the kernel templates, not the sleeping kernel
    # (in its own session, it watches its parent and leaves when the parent goes)
    deadline = time.time() + 15
    while _processes_with("RRP_FIXTURE_SLEEP=120") and time.time() < deadline:
        time.sleep(0.5)
    assert not _processes_with("RRP_FIXTURE_SLEEP=120")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the previous run, untouched
    assert list(tmp_path.glob(".out.build-*"))  # the half-built run is beside it, not in it
    summary = _run(demo_data, out, ["X01"])  # the next run tidies up and succeeds
    assert summary.exit_code == 0 and not list(tmp_path.glob(".out.build-*"))


def test_killing_only_the_main_process_leaves_no_worker_and_no_lock(demo_data, tmp_path):
    """``kill -9`` of the run itself (not its process group): its workers, kernel templates and
    kernels end with it, and the next run is not locked out."""
    out = tmp_path / "out"
    marker = f"RRP_KILL_MAIN={tmp_path.name}"
    env = {"RRP_FIXTURE_SLEEP": "300", "RRP_KILL_MAIN": tmp_path.name}
    proc = _start_slow_run(demo_data, out, env)
    try:
        assert len(_processes_with(marker)) >= 4  # run, workers, templates, the kernel
        os.kill(proc.pid, signal.SIGKILL)  # the main process only
        proc.wait(timeout=30)
        deadline = time.time() + 15
        while _processes_with(marker) and time.time() < deadline:
            time.sleep(0.5)
        assert not _processes_with(marker)
    finally:
        for pid in _processes_with(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    summary = _run(demo_data, out, ["X01"])  # not refused: the lock died with the run
    assert summary.exit_code == 0


def _start_slow_run(demo_data, out, env, force=False):
    """A run of X01 and the slow X06 in a subprocess (its own session), returned once X01's
    page is in the build folder."""
    script = (
        "from pathlib import Path; from rrp_eval.report.suite import run_suite; "
        f"run_suite(data=Path({str(demo_data)!r}), params_dir=Path({str(ROOT / 'params')!r}), "
        f"out=Path({str(out)!r}), trusts=['X01', 'X06'], jobs=2, "
        f"notebooks=Path({str(FIXTURES)!r}), force={force})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, **env}, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        builds = list(out.parent.glob(f".{out.name}.build-*"))
        if builds and (builds[0] / "trusts" / "X01.html").exists():
            return proc
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the run never got going")


def test_a_lock_held_by_leftovers_of_a_dead_run_is_cleared(tmp_path):
    """A lock file whose recorded owner is dead, still locked by a process the dead run left
    behind, is replaced; a lock whose owner lives is respected."""
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; fh = open(sys.argv[1], 'a+'); "
            "fcntl.flock(fh, fcntl.LOCK_EX); fh.write(sys.argv[2] + ' 1\\n'); fh.flush(); "
            "print('locked', flush=True); time.sleep(300)",
            str(lock),
            dead,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with output_lock(out):  # the owner is dead: the leftover's lock does not count
            assert lock.read_text().split()[0] == str(os.getpid())
            with pytest.raises(OutputLocked):  # ours is alive: respected
                with output_lock(out):
                    pass
    finally:
        holder.kill()
        holder.wait()


def _processes_with(variable: str) -> list[int]:
    """Live processes started with ``variable`` in their environment (zombies excluded)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if variable.encode() in (proc / "environ").read_bytes().split(b"\0"):
                if " Z " not in (proc / "stat").read_text().split(")", 1)[1][:4]:
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_recovery_after_a_crash_between_the_two_renames(tmp_path):
    out = tmp_path / "out"
    old = tmp_path / ".out.old-123"
    old.mkdir()
    write_marker(old, "shared")
    (old / "index.html").write_text("previous run")
    assert "restored" in recover(out)
    assert (out / "index.html").read_text() == "previous run" and not old.exists()
    stale = [tmp_path / ".out.old-9", tmp_path / ".out.build-x"]
    for path in stale:
        path.mkdir()
        write_marker(path, "shared")
    assert "removed 2" in recover(out)
    assert not any(p.exists() for p in stale) and out.is_dir()


def test_two_runs_cannot_write_one_folder(demo_data, tmp_path):
    out = tmp_path / "out"
    with output_lock(out.resolve()):
        with pytest.raises(UnusableInput, match="another rrp-eval run is writing here"):
            _run(demo_data, out, ["X01"])


def test_notebooks_run_on_a_dask_cluster(demo_data, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        summary = _run(
            demo_data, tmp_path / "out", ["X01", "X02"], scheduler=cluster.scheduler_address
        )
    status = {r.task.html: r.status for r in summary.results}
    assert status == {
        "data_quality.html": "ok",
        "trusts/X01.html": "ok",
        "trusts/X02.html": "failed",
        "programme.html": "ok",
    }
    assert (tmp_path / "out" / "trusts" / "X01.html").is_file()
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["parameters"]["scheduler"].startswith("tcp://")


def test_a_kernel_that_dies_before_answering_is_started_once_more(demo_data, tmp_path, monkeypatch):
    import papermill

    from rrp_eval.disclosure import DisclosureRule
    from rrp_eval.report.execute import execute
    from rrp_eval.report.plan import TRUST, Task

    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    for sub in ("notebooks", "logs", "trusts"):
        (tmp_path / sub).mkdir()
    parameters = {"params_dir": str(ROOT / "params"), "data": str(demo_data), "trust_code": "X01"}
    task = Task(TRUST, "X01", "trusts/X01.html", "X01", parameters)
    page = {"programme": "Test", "disclosure": "rule", "internal": False}
    result = execute(task, FIXTURES, tmp_path, page, DisclosureRule(), None, "cold")
    assert result.status == "ok" and len(calls) == 2
    log = (tmp_path / "logs" / f"{TRUST}_X01.log").read_text()
    assert "starting the kernel again" in log
    # a second death is reported, not retried for ever
    calls.clear()
    monkeypatch.setattr(
        papermill,
        "execute_notebook",
        lambda *a, **k: (_ for _ in ()).throw(
            RuntimeError("Kernel died before replying to kernel_info")
        ),
    )
    failed = execute(task, FIXTURES, tmp_path, page, DisclosureRule(), None, "cold")
    assert failed.status == "failed" and "Kernel died" in failed.message
