"""Execute a run's tasks: evaluate each trust in a worker, run its notebook with papermill (warm
kernels), render the page and check it against the disclosure rule; the worker pool or Dask.

Only this package knows that papermill and nbconvert exist.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.disclosure import DisclosureRule, audit_tables
from rrp_eval.evaluate.cache import CACHE_ENV
from rrp_eval.evaluate.planning import Detectability, detectability
from rrp_eval.evaluate.programme import PanelFits, fit_panel_measure
from rrp_eval.evaluate.trust import TrustEvaluation, evaluate_trust
from rrp_eval.params import ProgrammeParams
from rrp_eval.report.html import html_tables, render_notebook
from rrp_eval.report.incremental import die_with_parent, release_inherited
from rrp_eval.report.manifest import scrub_paths, write_atomic
from rrp_eval.report.plan import INTERNAL_STAMP, Task, UnusableInput, inside

logger = logging.getLogger(__name__)

#: errors that mean the output cannot be written (not that the data are bad)
UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class OutputUnwritable(OSError):
    """The outputs could not be written (a full disk, a quota, no permission): the build was
    removed and the previous reports are untouched (exit 3)."""


def is_unwritable(exc: BaseException) -> bool:
    """True for an error that means the outputs cannot be written (not bad data)."""
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS


def unwritable_message(out_dir: Path, reason: str) -> str:
    return (
        f"{out_dir}: the reports could not be written ({reason}); nothing was replaced, and "
        "the previous reports there (if any) are untouched"
    )


@dataclass
class TaskResult:
    task: Task
    status: str
    message: str = ""
    seconds: float = 0.0
    reused: bool = False
    peak_mib: dict[str, float] = field(default_factory=dict)
    kernel: str = ""  # "warm", "cold" or "cold: why the template could not be used"
    unwritable: bool = False  # its files could not be written (a full disk): the run stops
    #: a trust task's evaluation, made in the worker before its notebook (which reads it from
    #: the run's evaluation cache): the run's tables are built from it
    evaluation: TrustEvaluation | None = None
    #: a trust's power to detect the aim, made beside its evaluation
    detectability: Detectability | None = None


def _evaluate(
    programme: ProgrammeData, code: str, params: ProgrammeParams
) -> TrustEvaluation | None:
    """A trust's evaluation (None, logged, if it breaks: its notebook then fails with the
    error and its table rows say so)."""
    try:
        return evaluate_trust(programme, code, params)
    except Exception:
        logger.exception("%s: the evaluation failed", code)
        return None


def evaluate_and_execute(
    task: Task, programme: ProgrammeData, params: ProgrammeParams, *run: Any
) -> TaskResult:
    """A trust task in a worker: evaluate the trust (cached under the run's evaluation cache,
    where its notebook's ``evaluate_trust`` finds it), then execute and render the notebook."""
    start = time.perf_counter()
    evaluation = _evaluate(programme, task.name, params)
    result = execute(task, *run)
    result.evaluation = evaluation
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class PanelResult:
    """A programme-level fit made as a task beside the trusts' (one measure's GEE and
    controlled analyses, :func:`~rrp_eval.evaluate.programme.fit_panel_measure`)."""

    measure: str
    fits: PanelFits
    seconds: float


def fit_panel_task(
    programme: ProgrammeData, params: ProgrammeParams, measure: str, event_study: bool
) -> PanelResult:
    """One measure's panel fits in a worker (an error is raised in the run, as before)."""
    start = time.perf_counter()
    fits = fit_panel_measure(programme, params, measure, event_study)
    return PanelResult(measure, fits, time.perf_counter() - start)


def use_cache(folder: str | None) -> None:
    """Name the run's evaluation cache in this worker's environment when it was started
    without it (a Dask worker that was running before the run) and the folder is on this
    machine, so that its evaluations and its kernels share the run's cache; a remote worker
    that cannot see the folder computes what it needs (slower, the same results)."""
    if folder and not os.environ.get(CACHE_ENV) and os.path.isdir(folder):
        os.environ[CACHE_ENV] = folder


def evaluate_only(
    task: Task, programme: ProgrammeData, params: ProgrammeParams, cache: str | None = None
) -> TaskResult:
    """A trust's evaluation and the power of its evaluation to detect the aim (both cached
    under the run's evaluation cache, where its notebook finds them), before any trust's
    notebook runs: the pages show the probability of meeting the aim, which needs every
    trust's evaluation."""
    use_cache(cache)
    start = time.perf_counter()
    evaluation = _evaluate(programme, task.name, params)
    found = None
    if evaluation is not None:
        try:
            found = detectability(programme, task.name, params)
        except Exception:  # the page says it is not known; the evaluation stands
            logger.exception("%s: the detectability simulation failed", task.name)
    return TaskResult(
        task,
        "ok",
        "",
        time.perf_counter() - start,
        True,
        evaluation=evaluation,
        detectability=found,
    )


def execute(
    task: Task,
    notebooks: Path,
    out_dir: Path,
    page: dict[str, Any],
    rule: DisclosureRule,
    timeout: float | None = None,
    kernels: str = "cold",
    cache: str | None = None,
) -> TaskResult:
    """Run one notebook (in a worker process) and render its HTML, even after an error.

    With ``timeout``, every cell gets the time left before the notebook's deadline (nbclient's
    ``timeout_func``), so the cell running at the deadline is interrupted; the time taken, not
    the saved notebook's metadata (papermill records no timeout there), says it timed out.
    With ``kernels="warm"`` the kernel is a fork of this worker's template (``warm``).
    """
    import papermill as pm

    from rrp_eval.report import warm

    use_cache(cache)  # before any kernel (or kernel template) of this worker starts
    start = time.perf_counter()
    extra: dict[str, Any] = {}
    if timeout is not None:
        deadline = start + timeout
        extra["timeout_func"] = lambda cell: max(1, math.ceil(deadline - time.perf_counter()))
    extra["kernel_manager_class"] = (
        warm.WarmKernelManager if kernels == "warm" else warm.KillingKernelManager
    )
    launches = len(warm.LAUNCHES)
    executed = inside(out_dir, f"notebooks/{task.stage}_{task.name}.ipynb")
    status, message, unwritable = "ok", "", False
    # the kernel inherits this process's stderr: its start-up chatter goes to a log, not the user
    log = inside(out_dir, f"logs/{task.stage}_{task.name}.log")
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    saved_stderr = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        for attempt in range(1 + START_RETRIES):
            try:
                pm.execute_notebook(
                    str(notebooks / f"{task.stage}.ipynb"),
                    str(executed),
                    parameters=task.parameters,
                    kernel_name="python3",
                    progress_bar=False,
                    cwd=str(notebooks),
                    # every output is in once the last cell is idle; a graceful shutdown
                    # sometimes stalls for seconds (ipykernel waits, then SIGTERM)
                    shutdown_kernel="immediate",
                    **extra,
                )
                break
            except RuntimeError as exc:  # no cell has run yet: start a new kernel once more
                if attempt == START_RETRIES or not _kernel_did_not_start(exc):
                    raise
                os.write(2, f"rrp-eval: {exc}; starting the kernel again\n".encode())  # the log
    except pm.PapermillExecutionError as exc:
        status, message = "failed", f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # a kernel that dies or will not start: keep the others going
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        unwritable = is_unwritable(exc)
    finally:  # the worker's own stderr back (a Dask worker logs there)
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    if status == "failed" and timeout is not None and time.perf_counter() - start >= timeout:
        status, message = "failed", f"timed out after {timeout:g} s ({message.splitlines()[0]})"
    try:
        if executed.exists() and not rule.internal:  # the page is rendered from the shared copy
            _mark_executed(executed, internal=False)
        status, message = _render(task, executed, out_dir, page, rule, status, message)
        if executed.exists() and rule.internal:
            _mark_executed(executed, internal=True)
    except (OSError, ValueError) as exc:  # a notebook cut short by a full disk, say
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        unwritable = unwritable or is_unwritable(exc) or _disk_full(out_dir)
        if unwritable and not isinstance(exc, OSError):
            reason = os.strerror(errno.ENOSPC)
        status, message = "failed", f"the page could not be written: {reason}"
    import resource

    kernel, kernel_mib, template_mib = warm.launched_since(launches)
    peak = {  # ru_maxrss is in KiB on Linux: the worker so far, and the largest kernel reaped
        "worker": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "kernel": kernel_mib or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    if template_mib:
        peak["template"] = template_mib
    return TaskResult(
        task,
        status,
        message.splitlines()[0] if message else "",
        time.perf_counter() - start,
        peak_mib={k: round(v, 1) for k, v in peak.items()},
        kernel=kernel,
        unwritable=unwritable,
    )


def _mark_executed(executed: Path, internal: bool) -> None:
    """Rewrite an executed notebook for where it goes: an internal one gets a first cell that
    says it is not for sharing (it is read without the report's banner); a shared one records
    its parameters and papermill's paths with folder names only (absolute paths name people's
    folders and machines), keeps of an error its type and message but not the traceback (whose
    frames name install paths and may quote the data), and drops warnings written to stderr
    (which name install paths too; the run's log keeps them)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    if internal:
        cell = nbformat.v4.new_markdown_cell(
            f"**{INTERNAL_STAMP}.** Written by `rrp-eval run --internal`: the outputs below "
            "show counts and rates without disclosure control. Keep it inside the trust."
        )
        cell.metadata["tags"] = ["rrp-eval-internal"]
        nb.cells.insert(0, cell)
    else:
        from papermill.translators import translate_parameters

        meta = nb.metadata.get("papermill", {})
        parameters = scrub_paths(dict(meta.get("parameters", {})))
        for cell in nb.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                cell.source = translate_parameters("python3", "python", parameters, "Parameters")
        meta["parameters"] = parameters
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [_shareable_output(o) for o in cell.outputs if not _stderr(o)]
        for key in ("input_path", "output_path"):
            if meta.get(key):
                meta[key] = Path(meta[key]).name
    text = nbformat.writes(nb)
    write_atomic(executed, text if text.endswith("\n") else text + "\n")


def _stderr(output: Any) -> bool:
    return output.get("output_type") == "stream" and output.get("name") == "stderr"


def _shareable_output(output: Any) -> Any:
    """An error output reduced to its type and message (first line, at most 300 characters)."""
    if output.get("output_type") == "error":
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".splitlines()[0]
        output["traceback"] = [text[:300]]
    return output


def _disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Less than ``margin`` bytes free where ``folder`` is."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _render(
    task: Task,
    executed: Path,
    out_dir: Path,
    page: dict[str, Any],
    rule: DisclosureRule,
    status: str,
    message: str,
) -> tuple[str, str]:
    """Render the executed notebook (if any) to its page; a page that fails the disclosure
    check is replaced by a notice. Returns the task's status and message."""
    if executed.exists():
        html = render_notebook(
            executed,
            title=task.title,
            **page,
            index_href="../index.html" if "/" in task.html else "index.html",
        )
        findings = audit_tables(html_tables(html), rule)
        if findings:  # never publish a page that fails the disclosure check
            status = "failed"
            message = f"disclosure check: {len(findings)} finding(s); run --internal to see them"
            html = render_notebook(
                _withheld(findings),
                title=task.title,
                **page,
                index_href="../index.html" if "/" in task.html else "index.html",
            )
        write_atomic(inside(out_dir, task.html), html)
    return status, message


START_RETRIES = 1  # a kernel that dies before it answers (e.g. a port taken meanwhile)


def _kernel_did_not_start(exc: BaseException) -> bool:
    """jupyter_client's errors for a kernel that never answered, before any cell ran."""
    text = str(exc)
    return "before replying to kernel_info" in text or "didn't respond in" in text


def _withheld(findings: list[str]) -> Any:
    """A page in place of one that failed the disclosure check (the findings name no value)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            "## Report withheld\n\nThis report showed numbers that the disclosure rule does not "
            f"allow to be shared ({len(findings)} finding(s)); it has been withheld. Run with "
            "`--internal` to see it inside the trust, and report the problem."
        )
    )
    return nb


@contextlib.contextmanager
def evaluation_cache() -> Iterator[Path]:
    """A private folder for the run's evaluations, named in ``RRP_EVAL_EVALUATIONS`` for the
    workers, their kernel templates and kernels (set before any of them starts, so a forked
    kernel's environment is the template's); removed, and the variable restored, at the end."""
    folder = Path(tempfile.mkdtemp(prefix="rrp-eval-evaluations-"))
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def executor(workers: int, scheduler: str | None, warm: bool = False) -> Iterator[Any]:
    """``submit(fn, *args) -> future``: local worker processes (each starting its kernel
    template at once when ``warm``), or a Dask cluster."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError as exc:
            raise UnusableInput(
                "--scheduler needs Dask distributed: pip install 'rrp-eval[dask]'"
            ) from exc
        client = Client(scheduler)
        try:
            yield lambda fn, *args: client.submit(fn, *args, pure=False)
        finally:
            client.close()
    else:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=_start_worker, initargs=(os.getpid(), warm)
        ) as pool:
            yield pool.submit


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """One BLAS/OpenMP thread in this process (and, through the environment, in the kernels it
    starts). The run already keeps every core busy with one worker each; BLAS threads on top
    spin against each other on the small matrices the fits use, which measured 40-70% slower
    evaluations with three processes on two cores (benchmarks/bench_run.py)."""
    from threadpoolctl import threadpool_limits

    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(limits=1)


def _start_worker(parent: int, warm: bool) -> None:
    """A local worker process: it drops the output lock it inherited with the fork, ends when
    the run's process ends (even after ``kill -9``), and starts its kernel template."""
    release_inherited()
    die_with_parent(parent)
    one_blas_thread()
    if warm:
        from rrp_eval.report.warm import start_template

        start_template()


def completed(futures: list[Any]) -> Iterator[TaskResult | PanelResult]:
    if futures and type(futures[0]).__module__.startswith("distributed"):
        from distributed import as_completed as dask_completed

        for future in dask_completed(futures):
            yield future.result()
    else:
        for future in as_completed(futures):
            yield future.result()
