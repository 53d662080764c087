"""Warm kernels (issue 9): a kernel forked from the worker's template must be a clean process
that looks to the notebook exactly like a kernel started the usual way."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from rrp_eval.report import warm

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kernels are forked on Linux only")

PROBE = """
import json, os, signal, subprocess, sys
import matplotlib, matplotlib.pyplot as plt, numpy as np, pandas as pd
import rrp_eval.show as rrp_nb
from ipykernel.kernelapp import IPKernelApp
probe = {
    "backend": matplotlib.get_backend(),
    "session_leader": os.getsid(0) == os.getpid() == os.getpgid(0),
    "jpy_parent_pid_is_parent": os.environ.get("JPY_PARENT_PID") == str(os.getppid()),
    "parent_watched": IPKernelApp.instance().parent_handle == os.getppid(),
    "cwd": os.getcwd(),
    "argv": [os.path.basename(sys.argv[0]), *sys.argv[1:2]],
    "path": sys.path[:3],
    "signals": {
        name: str(signal.getsignal(getattr(signal, name)))
        for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE", "SIGHUP", "SIGUSR1")
    },
    "blocked": sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, []))),
    "child_exit_code": subprocess.run([sys.executable, "-c", "raise SystemExit(3)"]).returncode,
    "stdin_is_tty": os.isatty(0),
    "main": sys.modules["__main__"].__name__,
    "variable": "leaked" in globals(),
    "module_attribute": hasattr(rrp_nb, "LEAKED"),
    "module_imported": "xml.dom.minidom" in sys.modules,
    "rc_linewidth": plt.rcParams["lines.linewidth"],
    "pandas_max_rows": pd.get_option("display.max_rows"),
    "figures": plt.get_fignums(),
    "environment": os.environ.get("RRP_LEAKED"),
    "random": float(np.random.random()),
}
print(json.dumps(probe))
"""

LEAK = """
import os, sys, xml.dom.minidom
import matplotlib.pyplot as plt, numpy as np, pandas as pd
import rrp_eval.show as rrp_nb
leaked = 1
rrp_nb.LEAKED = 1
plt.rcParams["lines.linewidth"] = 9.0
pd.set_option("display.max_rows", 3)
os.environ["RRP_LEAKED"] = "1"
np.random.seed(0)
sys.path.append("/leaked")
fig = plt.figure()
plt.plot([1, 2, 3])
"""


def _notebook(folder: Path, name: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _execute(path: Path, kernels: str) -> nbformat.NotebookNode:
    extra = {"kernel_manager_class": warm.WarmKernelManager} if kernels == "warm" else {}
    out = path.with_name(f"{path.stem}-{kernels}-{os.urandom(4).hex()}.ipynb")
    mark = len(warm.LAUNCHES)
    pm.execute_notebook(
        str(path),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(path.parent),
        **extra,
    )
    kind = warm.launched_since(mark)[0]
    assert kind == ("warm" if kernels == "warm" else "cold"), kind
    return nbformat.read(out, as_version=4)


def _probe(path: Path, kernels: str) -> dict:
    nb = _execute(path, kernels)
    return json.loads(nb.cells[0].outputs[0]["text"])


@pytest.fixture
def fresh_template(monkeypatch):
    """A template started inside this test (it copies the environment, which pytest changes
    between tests), with matplotlib's backend left to ipykernel as on an evaluator's machine
    (CI sets MPLBACKEND=Agg)."""
    monkeypatch.delenv("MPLBACKEND", raising=False)
    warm.stop_template()
    yield warm.start_template  # called in the test: pytest's environment differs in set-up
    warm.stop_template()


@pytest.fixture
def nohup():
    """SIGHUP ignored in this process, as under ``nohup rrp-eval run``."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGHUP, before)


def test_a_forked_kernel_inherits_what_its_launcher_ignores(tmp_path, fresh_template, nohup):
    fresh_template()
    probe = _notebook(tmp_path, "probe", PROBE)
    cold, forked = _probe(probe, "cold"), _probe(probe, "warm")
    assert cold["signals"]["SIGHUP"] == str(signal.SIG_IGN)  # what exec leaves
    assert forked["signals"] == cold["signals"]


@pytest.mark.parametrize("backend", [None, "Agg"])
def test_a_forked_kernel_looks_like_a_normal_launch(tmp_path, fresh_template, monkeypatch, backend):
    if backend:
        monkeypatch.setenv("MPLBACKEND", backend)
    fresh_template()
    probe = _notebook(tmp_path, "probe", PROBE)
    cold = _probe(probe, "cold")
    forked = _probe(probe, "warm")
    assert cold.pop("random") != forked.pop("random")
    assert forked == cold
    assert forked["backend"] == (backend or warm.INLINE_BACKEND)
    assert forked["session_leader"] and forked["jpy_parent_pid_is_parent"]
    assert forked["parent_watched"]  # else ipykernel prints its console banner to stdout
    assert forked["child_exit_code"] == 3  # SIGCHLD is not left ignored
    assert forked["cwd"] == str(tmp_path)


def test_every_notebook_gets_a_clean_process(tmp_path, fresh_template):
    fresh_template()
    leak = _notebook(tmp_path, "leak", LEAK)
    probe = _notebook(tmp_path, "probe", PROBE)
    _execute(leak, "warm")
    first = _probe(probe, "warm")
    second = _probe(probe, "warm")
    for state in (first, second):
        assert state["variable"] is False
        assert state["module_attribute"] is False
        assert state["module_imported"] is False
        assert state["rc_linewidth"] == 1.5
        assert state["pandas_max_rows"] == 60
        assert state["figures"] == []
        assert state["environment"] is None
        assert "/leaked" not in state["path"]
    # numpy's global state is reseeded in every kernel (a fork would copy the template's)
    assert first["random"] != second["random"]


def test_figures_and_outputs_are_the_same_as_from_a_cold_kernel(tmp_path, fresh_template):
    fresh_template()
    code = (
        "import matplotlib.pyplot as plt, pandas as pd\n"
        "fig, ax = plt.subplots(figsize=(3, 2))\n"
        "ax.plot([1, 3, 2])\n"
        "pd.DataFrame({'a': [1, 2]})"
    )
    path = _notebook(tmp_path, "figure", code)
    outputs = {k: _execute(path, k).cells[0].outputs for k in ("cold", "warm")}
    kinds = {k: [(o.output_type, sorted(o.get("data", {}))) for o in v] for k, v in outputs.items()}
    assert kinds["warm"] == kinds["cold"]
    assert ("display_data", ["image/png", "text/plain"]) in kinds["warm"]  # shown inline
    for cold, forked in zip(outputs["cold"], outputs["warm"], strict=True):
        assert forked.get("data") == cold.get("data")


def test_a_launch_unlike_the_template_starts_the_usual_way(fresh_template):
    fresh_template()
    owner = warm.template()
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "x.json"]
    assert owner.refusal(cmd, env) is None
    assert owner.refusal(cmd, env | {"JPY_PARENT_PID": "1", "JPY_SESSION_NAME": "x"}) is None
    assert "environment differs" in owner.refusal(cmd, env | {"RRP_EVAL_NOT_IN_THE_TEMPLATE": "1"})
    assert "ipykernel_launcher" in owner.refusal([sys.executable, "-m", "other"], env)
    assert "not" in owner.refusal(["/usr/bin/python9", *cmd[1:]], env)


def test_without_a_template_the_kernel_starts_cold_and_says_why(tmp_path, monkeypatch):
    warm.stop_template()
    monkeypatch.setattr(warm, "can_fork", lambda: False)
    path = _notebook(tmp_path, "plain", "1 + 1")
    mark = len(warm.LAUNCHES)
    pm.execute_notebook(
        str(path),
        str(tmp_path / "out.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=warm.WarmKernelManager,
    )
    kind = warm.launched_since(mark)[0]
    assert kind.startswith("cold: kernels are forked on Linux only")
    warm.stop_template()


def test_the_template_goes_when_its_worker_does(fresh_template):
    fresh_template()
    owner = warm.template()
    owner._ready()
    pid = owner.process.pid
    warm.stop_template()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("manager", [warm.KillingKernelManager, warm.WarmKernelManager])
def test_an_immediate_shutdown_kills_without_an_interrupt(manager):
    """jupyter_client interrupts before it kills; a kernel caught winding down by that SIGINT
    wrote a threading.py traceback into the notebook's log, which the audit withheld. An
    interrupt asked for while the kernel runs still reaches it."""
    import asyncio

    async def signals() -> tuple[list[int], list[int]]:
        km = manager(kernel_name="python3")
        await km.start_kernel()
        sent: list[int] = []
        real = km.provisioner.send_signal

        async def record(signum: int) -> None:
            sent.append(signum)
            await real(signum)

        km.provisioner.send_signal = record
        await km.interrupt_kernel()
        running = list(sent)
        sent.clear()
        await km.shutdown_kernel(now=True)
        return running, sent

    running, shutdown = asyncio.run(signals())
    assert running == [signal.SIGINT]
    assert signal.SIGINT not in shutdown and signal.SIGKILL in shutdown, shutdown
    warm.stop_template()


def test_a_worker_gone_with_a_reply_unread_ends_the_template_quietly():
    """A worker that exits with the template's message still unread (a run stopping on an
    error) resets the connection; the template ends without a traceback on the user's
    terminal (seen in CI's full-disk test)."""
    import select
    import socket
    import subprocess

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = subprocess.Popen(
        [sys.executable, "-c", f"from rrp_eval.report.warm import serve; serve({theirs.fileno()})"],
        pass_fds=[theirs.fileno()],
        stderr=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    try:
        assert select.select([ours], [], [], warm.READY_SECONDS)[0], "the template never started"
        ours.close()  # its "ready" unread
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
