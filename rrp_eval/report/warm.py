"""Warm kernels: each worker keeps a *template* process that has imported the analysis
libraries and ipykernel once, and forks one fresh kernel per notebook from it.

A normal kernel start (``python -m ipykernel_launcher -f CONNECTION``) spends about 2 s
importing numpy, pandas, statsmodels, matplotlib, seaborn, IPython and this package before
the first cell runs; a fork of a process that has already imported them starts in
milliseconds and shares those pages copy-on-write. Each notebook still gets its own process,
forked from the same pristine template, so nothing one notebook does can reach another.

The forked kernel is made to look like a normal launch (jupyter_client's ``launch_kernel``):

- ipykernel's ``parent_handle`` (read from ``JPY_PARENT_PID`` when ipykernel is imported,
  which was in the template) set as a normal launch has it, so it watches its parent and
  does not print the ``ipython kernel`` console banner;
- its own session (``setsid``), so an interrupt reaches the kernel's whole process group;
- signal dispositions and mask as a fresh Python process has them (the template ignores
  SIGINT; a kernel that inherited that, or an ignored SIGCHLD, would behave differently);
- the environment, working folder, ``sys.argv`` and ``sys.path`` of the launch command, and
  ``JPY_PARENT_PID`` naming its real parent (the template), which ipykernel watches;
- stdin from /dev/null and stdout/stderr the worker's own (passed over the socket), so the
  kernel's start-up chatter lands in the notebook's log as before;
- numpy's global random state reseeded from the OS (a fork copies it: every kernel would
  otherwise draw the same "random" numbers);
- the inline figure backend is chosen (``MPLBACKEND``) before matplotlib is imported but not
  imported in the template: it hooks itself into the IPython shell when imported, and there
  is no shell in the template.

Only Linux forks (``sys.platform == "linux"``): elsewhere, or when the launch command or
environment differ from the template's, or the template will not start, the kernel starts the
usual way and the reason is recorded (``TaskResult.kernel``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: what a notebook of this suite imports, loaded once in the template
PRELOAD = (
    "numpy",
    "pandas",
    "scipy.stats",
    "statsmodels.api",
    "statsmodels.formula.api",
    "matplotlib.pyplot",
    "seaborn",
    "pyarrow.parquet",
    "rrp_eval.show",
    "IPython.display",
    "ipykernel.kernelapp",
)
#: set per launch by jupyter_client; any other difference means the template is not this kernel
PER_LAUNCH = frozenset({"JPY_PARENT_PID", "JPY_SESSION_NAME", "PYTHONEXECUTABLE"})
READY_SECONDS = 120.0  # the template's imports on a busy machine
REPLY_SECONDS = 30.0


def can_fork() -> bool:
    """Forked kernels are for Linux (where fork is the system's own way to start a process
    and file descriptors can be passed over a socket)."""
    return sys.platform == "linux" and hasattr(socket, "send_fds")


class TemplateError(RuntimeError):
    """The template cannot fork this kernel; start it the usual way."""


# --- inside the template process --------------------------------------------------------


def serve(fd: int, parent: int | None = None) -> None:
    """The template's main loop: import, then fork a kernel per request until the worker goes
    (its socket closes, or it dies: ``parent`` is the worker's process id)."""
    if parent is not None:
        from rrp_eval.report.incremental import die_with_parent

        die_with_parent(parent)
    env = dict(os.environ)  # as the worker launched us: what a kernel must also be given
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does before it imports anything
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)  # read once, when matplotlib loads
    for name in PRELOAD:
        importlib.import_module(name)
    if "matplotlib_inline" in sys.modules:  # pragma: no cover - a library changed underneath us
        raise SystemExit("the inline backend was imported in the template")
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    if parent is not None:  # from now on there may be kernels to stop on the way out
        signal.signal(signal.SIGTERM, _leave)
        # exit handlers (matplotlib's among them) run last-registered first: this one, first,
        # lets a SIGTERM during them end the process without a traceback
        atexit.register(signal.signal, signal.SIGTERM, signal.SIG_DFL)
    sock = socket.socket(fileno=fd)
    _send(sock, {"ready": True, "pid": os.getpid(), "env": env, "executable": sys.executable})
    children: dict[int, dict[str, Any]] = {}
    try:
        while True:
            _reap(children)
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
            except ConnectionError:  # the worker was killed (a run stopping on an error)
                break
            if not msg:  # the worker has gone
                break
            request = json.loads(msg)
            if request["op"] == "fork":
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _become_kernel(request, fds, sock)  # never returns
                for f in fds:
                    os.close(f)
                children[pid] = {"returncode": None, "maxrss_kib": 0}
                _send(sock, {"pid": pid})
            elif request["op"] == "poll":
                _reap(children)
                _send(sock, children.get(request["pid"], {"returncode": 0, "maxrss_kib": 0}))
    finally:
        for pid, state in children.items():  # kernels left running when the worker went
            if state["returncode"] is None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        # nothing left to stop: a SIGTERM from here on (the worker dying as the run ends)
        # ends the process quietly, not with a traceback from an exit handler on the user's
        # terminal
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _leave(signum: int, frame: Any) -> None:
    if sys.is_finalizing():  # exit handlers are running: end now, quietly
        os._exit(128 + signum)
    raise SystemExit(128 + signum)


def _reap(children: dict[int, dict[str, Any]]) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children[pid] = {
            "returncode": os.waitstatus_to_exitcode(status),
            "maxrss_kib": usage.ru_maxrss,
        }


def _become_kernel(request: dict[str, Any], fds: list[int], sock: socket.socket) -> None:
    """In the forked child: become what ``python -m ipykernel_launcher -f ...`` would be."""
    code = 1
    try:
        sock.close()
        os.setsid()
        for target, f in enumerate(fds):
            os.dup2(f, target)
        for f in fds:
            if f > 2:
                os.close(f)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        # what exec leaves: handlers back to default, but a signal the launching worker
        # ignores stays ignored (SIGHUP under nohup; SIGINT in a background job)
        ignored = set(request.get("ignored", ()))
        interrupt = signal.SIG_IGN if "SIGINT" in ignored else signal.default_int_handler
        signal.signal(signal.SIGINT, interrupt)
        for name in INHERITED_SIGNALS:
            action = signal.SIG_IGN if name in ignored else signal.SIG_DFL
            signal.signal(getattr(signal, name), action)
        for name in ("SIGPIPE", "SIGXFSZ"):  # as the interpreter sets them at start-up
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        import ipykernel_launcher
        import numpy as np

        # a fork copies the template's legacy global state, which np.random.* calls use
        np.random.seed()  # noqa: NPY002
        sys.argv = [ipykernel_launcher.__file__, *request["argv"][3:]]
        from ipykernel import kernelapp

        # read from the environment when kernelapp was imported, in the template, without it
        kernelapp.IPKernelApp.launch_instance(parent_handle=os.getppid())
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


INHERITED_SIGNALS = ("SIGTERM", "SIGCHLD", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _ignored_signals() -> list[str]:
    """The signals this (launching) process ignores: a kernel it started with exec would
    inherit them ignored."""
    return [
        name
        for name in ("SIGINT", *INHERITED_SIGNALS)
        if signal.getsignal(getattr(signal, name)) == signal.SIG_IGN
    ]


def _send(sock: socket.socket, obj: Any) -> None:
    sock.sendall(json.dumps(obj).encode())


# --- in the worker process --------------------------------------------------------------


class Template:
    """The worker's handle on its template process."""

    def __init__(self) -> None:
        if not can_fork():
            raise TemplateError(f"kernels are forked on Linux only (this is {sys.platform})")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lock = threading.Lock()
        self.sock = ours
        self.info: dict[str, Any] | None = None
        worker = os.getpid()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from rrp_eval.report.warm import serve; serve({theirs.fileno()}, {worker})",
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        theirs.close()
        self.maxrss_kib: dict[int, int] = {}

    def _ready(self) -> dict[str, Any]:
        if self.info is None:
            self.sock.settimeout(READY_SECONDS)
            try:
                self.info = self._recv()
            except (OSError, ValueError) as exc:
                self.close()
                raise TemplateError(f"the kernel template did not start ({exc})") from exc
        return self.info

    def _recv(self) -> dict[str, Any]:
        data = self.sock.recv(1 << 20)
        if not data:
            raise TemplateError(
                f"the kernel template exited (code {self.process.poll()}); see the worker's "
                "error output"
            )
        return json.loads(data)

    def refusal(self, cmd: list[str], env: dict[str, str]) -> str | None:
        """Why this launch cannot be a fork of the template (None when it can)."""
        info = self._ready()
        if len(cmd) < 3 or cmd[1:3] != ["-m", "ipykernel_launcher"]:
            return f"the kernel is not started by ipykernel_launcher ({' '.join(cmd[:3])})"
        if os.path.realpath(cmd[0]) != os.path.realpath(info["executable"]):
            return f"the kernel runs {cmd[0]}, not {info['executable']}"
        ours = {k: v for k, v in info["env"].items() if k not in PER_LAUNCH}
        theirs = {k: v for k, v in env.items() if k not in PER_LAUNCH}
        differ = sorted({k for k, _ in set(ours.items()) ^ set(theirs.items())})
        if differ:
            return f"the kernel's environment differs from the template's ({', '.join(differ[:5])})"
        return None

    def fork(self, cmd: list[str], env: dict[str, str], cwd: str) -> int:
        self._ready()
        with self.lock, open(os.devnull, "rb") as devnull:
            self.sock.settimeout(REPLY_SECONDS)
            request = {
                "op": "fork",
                "argv": cmd,
                "env": env,
                "cwd": cwd,
                "ignored": _ignored_signals(),
            }
            socket.send_fds(self.sock, [json.dumps(request).encode()], [devnull.fileno(), 1, 2])
            return int(self._recv()["pid"])

    def poll(self, pid: int) -> int | None:
        with self.lock:
            self.sock.settimeout(REPLY_SECONDS)
            _send(self.sock, {"op": "poll", "pid": pid})
            state = self._recv()
        if state["returncode"] is not None:
            self.maxrss_kib[pid] = state["maxrss_kib"]
        return state["returncode"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def peak_kib(self) -> int:
        """The template's own peak resident memory, from /proc (it is not reaped until the
        worker ends)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


_template: Template | None = None
_template_error: str | None = None


def start_template() -> None:
    """Start this worker's template (a ``ProcessPoolExecutor`` initializer); it imports in
    the background while the worker gets on with other work."""
    global _template, _template_error
    if _template is not None or _template_error is not None:
        return
    try:
        _template = Template()
    except (TemplateError, OSError) as exc:
        _template_error = str(exc)


@atexit.register
def stop_template() -> None:
    """Stop this worker's template (at exit; tests start a fresh one)."""
    global _template, _template_error
    if _template is not None:
        _template.close()
    _template, _template_error = None, None


def template() -> Template:
    start_template()
    if _template is None:
        raise TemplateError(_template_error or "no kernel template")
    return _template


class _Forked:
    """Just enough of ``subprocess.Popen`` for jupyter_client's local provisioner."""

    stdin = stdout = stderr = None

    def __init__(self, owner: Template, pid: int) -> None:
        self.owner, self.pid, self.returncode = owner, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.owner.poll(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        return int(self.returncode or 0)

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


#: one record per kernel this worker launched: {"pid": ..., "kernel": "warm" | "cold: why"}
LAUNCHES: list[dict[str, Any]] = []


class ForkingProvisioner(LocalProvisioner):
    """A local provisioner whose kernels are forks of the worker's template."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        refused: str | None = None
        try:
            owner = template()
            refused = owner.refusal(cmd, env)
            if refused is None:
                pid = owner.fork(cmd, env, cwd)
        except (TemplateError, OSError, ValueError) as exc:
            refused = str(exc)
        if refused is not None:
            info = await super().launch_kernel(cmd, **kwargs)
            LAUNCHES.append({"pid": self.pid, "kernel": f"cold: {refused}"})
            return info
        self.process = _Forked(owner, pid)
        self.pid = self.pgid = pid  # the kernel leads its own session
        self.cwd = cwd
        LAUNCHES.append({"pid": pid, "kernel": "warm"})
        return self.connection_info


class KillingKernelManager(AsyncKernelManager):
    """A kernel manager whose immediate shutdown kills the kernel without interrupting it first.

    jupyter_client sends SIGINT before the SIGKILL of ``shutdown_kernel(now=True)`` (to cancel
    running code, which the kill does anyway). A kernel caught by that SIGINT while its
    threads wind down prints a ``KeyboardInterrupt`` traceback from ``threading.py`` into the
    notebook's log, and the disclosure audit then (rightly) withholds the log and fails the
    run: about one CI run in three. Interrupts asked for while the kernel runs are kept.
    """

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # set by shutdown_kernel just before it interrupts, then kills
            return
        await super()._async_interrupt_kernel()


class WarmKernelManager(KillingKernelManager):
    """The kernel manager handed to papermill (``kernel_manager_class``)."""

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkingProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )
        return await super()._async_pre_start_kernel(**kw)


def launched_since(mark: int) -> tuple[str, float, float]:
    """For the kernels launched since ``len(LAUNCHES) == mark``: ("warm" or "cold: why", the
    largest forked kernel's peak resident MiB (0 if none), the template's peak MiB)."""
    records = LAUNCHES[mark:]
    if not records:
        return "cold", 0.0, 0.0
    kind = next((r["kernel"] for r in records if r["kernel"] != "warm"), "warm")
    owner = _template
    if owner is None:
        return kind, 0.0, 0.0
    peaks = []
    for r in records:
        if r["kernel"] == "warm":
            with contextlib.suppress(OSError, ValueError, TemplateError):
                owner.poll(r["pid"])
            peaks.append(owner.maxrss_kib.get(r["pid"], 0))
    return kind, max(peaks, default=0) / 1024, owner.peak_kib() / 1024
