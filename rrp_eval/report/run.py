"""The main job: validate, compute the tables, execute every notebook with papermill in worker
processes, render self-contained HTML, write the index and the manifest (SPEC §4-5).

Only this package knows that papermill and nbconvert exist.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rrp_eval.data.load import load_raw
from rrp_eval.data.problems import ValidationReport
from rrp_eval.data.synthetic import data_location
from rrp_eval.data.validate import validate_programme
from rrp_eval.disclosure import DisclosureRule, audit_tables
from rrp_eval.evaluate.cache import CACHE_ENV
from rrp_eval.evaluate.programme import (
    ProgrammeEvaluation,
    evaluate_programme,
    fit_panel,
)
from rrp_eval.evaluate.tables import SENSITIVITY_COLUMNS, SPC_COLUMNS, its_effects_table
from rrp_eval.evaluate.trust import TrustEvaluation, evaluate_trust, headline_measure
from rrp_eval.models.controlled import CS_SEED
from rrp_eval.params import PROGRAMME_FILE, TRUSTS_FOLDER, ProgrammeParams, load_params
from rrp_eval.plots import ICON_TEXT
from rrp_eval.prepare import with_derived_measures, without_excluded_wards
from rrp_eval.report.export import csv_text, write_workbook
from rrp_eval.report.html import html_tables, render_index, render_notebook
from rrp_eval.report.incremental import (
    OutputLocked,
    OutputRefused,
    check_output_folder,
    copy_into,
    die_with_parent,
    digest,
    frame_digest,
    output_lock,
    package_digest,
    previous_outputs,
    recover,
    release_inherited,
    reusable,
    write_marker,
)
from rrp_eval.report.manifest import (
    manifest_text,
    scrub_paths,
    sha256_file,
    shareable,
    state_path,
    write_atomic,
    write_manifest,
)

logger = logging.getLogger(__name__)

DATA_QUALITY, TRUST, PROGRAMME = "10_data_quality", "20_trust_evaluation", "30_programme_evaluation"
CONTEXT = "40_provider_context"  # the programme page when no ward has a start month


def _notebooks_folder() -> Path:
    """The notebooks: shipped in the package (a wheel install), else at the top of the source
    checkout (where evaluators open them; an editable install)."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "notebooks"
    if (shipped / f"{TRUST}.ipynb").is_file():
        return shipped
    return package.parent / "notebooks"


NOTEBOOKS = _notebooks_folder()
#: the typed copies of the tables (Parquet) kept beside the CSV files
PARQUET_TABLES = ("its_effects", "spc_signals", "programme_effects")
EXIT_OK, EXIT_TRUSTS_FAILED, EXIT_UNUSABLE, EXIT_UNWRITABLE = 0, 1, 2, 3
#: errors that mean the output cannot be written (not that the data are bad)
UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class OutputUnwritable(OSError):
    """The outputs could not be written (a full disk, a quota, no permission): the build was
    removed and the previous reports are untouched (exit 3)."""


def _unwritable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS


def _unwritable_message(out_dir: Path, reason: str) -> str:
    return (
        f"{out_dir}: the reports could not be written ({reason}); nothing was replaced, and "
        "the previous reports there (if any) are untouched"
    )


class UnusableInput(ValueError):
    """Input data or parameters that cannot be used: nothing is written (exit 2)."""

    def __init__(self, message: str, report: ValidationReport | None = None):
        super().__init__(message)
        self.report = report


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, refusing any path that would leave ``folder`` (a code such as
    ``../x`` is already refused by validation; this is the second lock)."""
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UnusableInput(f"{relative!r} would write outside the output folder")
    return target


@dataclass(frozen=True)
class Task:
    """One notebook to execute and render."""

    stage: str
    name: str
    html: str
    title: str
    parameters: dict[str, Any]


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


def _evaluate(programme: Any, code: str, params: ProgrammeParams) -> TrustEvaluation | None:
    """A trust's evaluation (None, logged, if it breaks: its notebook then fails with the
    error and its table rows say so)."""
    try:
        return evaluate_trust(programme, code, params)
    except Exception:
        logger.exception("%s: the evaluation failed", code)
        return None


def _evaluate_and_execute(
    task: Task, programme: Any, params: ProgrammeParams, *run: Any
) -> TaskResult:
    """A trust task in a worker: evaluate the trust (cached under the run's evaluation cache,
    where its notebook's ``evaluate_trust`` finds it), then execute and render the notebook."""
    start = time.perf_counter()
    evaluation = _evaluate(programme, task.name, params)
    result = _execute(task, *run)
    result.evaluation = evaluation
    result.seconds = time.perf_counter() - start
    return result


def _evaluate_only(task: Task, programme: Any, params: ProgrammeParams) -> TaskResult:
    """A reused trust page whose tables must be rebuilt: its evaluation only."""
    start = time.perf_counter()
    evaluation = _evaluate(programme, task.name, params)
    return TaskResult(task, "ok", "", time.perf_counter() - start, True, evaluation=evaluation)


@dataclass
class RunSummary:
    """What a run did; ``exit_code`` follows SPEC §4."""

    out: Path
    results: list[TaskResult] = field(default_factory=list)
    failed_trusts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        failed = self.failed_trusts or any(r.status != "ok" for r in self.results)
        return EXIT_TRUSTS_FAILED if failed else EXIT_OK


def _execute(
    task: Task,
    notebooks: Path,
    out_dir: Path,
    page: dict[str, Any],
    rule: DisclosureRule,
    timeout: float | None = None,
    kernels: str = "cold",
) -> TaskResult:
    """Run one notebook (in a worker process) and render its HTML, even after an error.

    With ``timeout``, every cell gets the time left before the notebook's deadline (nbclient's
    ``timeout_func``), so the cell running at the deadline is interrupted; the time taken, not
    the saved notebook's metadata (papermill records no timeout there), says it timed out.
    With ``kernels="warm"`` the kernel is a fork of this worker's template (``warm``).
    """
    import papermill as pm

    from rrp_eval.report import warm

    start = time.perf_counter()
    extra: dict[str, Any] = {}
    if timeout is not None:
        deadline = start + timeout
        extra["timeout_func"] = lambda cell: max(1, math.ceil(deadline - time.perf_counter()))
    if kernels == "warm":
        extra["kernel_manager_class"] = warm.WarmKernelManager
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
        unwritable = _unwritable(exc)
    finally:  # the worker's own stderr back (a Dask worker logs there)
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    if status == "failed" and timeout is not None and time.perf_counter() - start >= timeout:
        status, message = "failed", f"timed out after {timeout:g} s ({message.splitlines()[0]})"
    try:
        status, message = _render(task, executed, out_dir, page, rule, status, message)
        if executed.exists():
            _mark_executed(executed, rule.internal)
    except (OSError, ValueError) as exc:  # a notebook cut short by a full disk, say
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        unwritable = unwritable or _unwritable(exc) or _disk_full(out_dir)
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
    folders and machines)."""
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
        for key in ("input_path", "output_path"):
            if meta.get(key):
                meta[key] = Path(meta[key]).name
    text = nbformat.writes(nb)
    write_atomic(executed, text if text.endswith("\n") else text + "\n")


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


def _reproduce(
    data: Path, params: ProgrammeParams, out: Path, trusts: list[str] | None, internal: bool
) -> str:
    """The command line that reproduces this run (shell-quoted)."""
    import shlex

    args = ["rrp-eval", "run", "--data", str(data.resolve()), "--out", str(out)]
    if params.source:
        args += ["--params", str(Path(params.source).parent.resolve())]
    if trusts:
        args += ["--trusts", ",".join(trusts)]
    if internal:
        args.append("--internal")
    return shlex.join(args)


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


def _badges(spc: pd.DataFrame, params: ProgrammeParams) -> list[dict[str, str]]:
    out = []
    for row in spc.itertuples():
        icon = row.variation_icon if isinstance(row.variation_icon, str) else ""
        icon = icon or "common_cause"
        text, colour, words = ICON_TEXT[icon]
        out.append(
            {
                "text": text,
                "colour": colour,
                "title": f"{params.measure(row.measure).label}: {words}",
            }
        )
    return out


def _ci(row: pd.Series, name: str) -> str:
    if pd.isna(row[name]):
        return ""
    return f"{row[name]:.2f} ({row[f'{name}_low']:.2f} to {row[f'{name}_high']:.2f})"


def _sort_value(head: pd.Series | None, name: str) -> str:
    """A cell's sort key for the index table (blank sorts last)."""
    if head is None or pd.isna(head[name]):
        return ""
    return f"{float(head[name]):.6f}"


def _index_context(
    params: ProgrammeParams,
    data_trusts: pd.DataFrame,
    its: pd.DataFrame,
    spc: pd.DataFrame,
    summary: RunSummary,
    rule: DisclosureRule,
    headline: str,
) -> dict[str, Any]:
    by_name = {r.task.name: r for r in summary.results}
    trusts = []
    for code, name in data_trusts.itertuples(index=False):
        result = by_name.get(code)
        if code in summary.failed_trusts:
            status, message = "failed", summary.failed_trusts[code]
        elif result is None:
            continue
        else:
            status, message = result.status, result.message
        rows = its[(its.trust_code == code) & (its.measure == headline)]
        head = rows.iloc[0] if len(rows) else None
        trusts.append(
            {
                "code": code,
                "name": name,
                "status": status,
                "status_text": {"ok": "complete", "failed": "failed"}.get(status, status),
                "message": message,
                "href": f"trusts/{code}.html" if result is not None else "",
                "design": head["design"] if head is not None else "",
                "level": _ci(head, "level_rr") if head is not None else "",
                "rr_h": _ci(head, "rr_h") if head is not None else "",
                "badges": _badges(spc[spc.trust_code == code], params),
                "level_sort": _sort_value(head, "level_rr"),
                "rr_h_sort": _sort_value(head, "rr_h"),
                "concerns": int(
                    spc.loc[spc.trust_code == code, "variation_icon"]
                    .fillna("")
                    .astype(str)
                    .str.startswith("concern")
                    .sum()
                ),
            }
        )
    programme_rows = [
        {
            "name": r.task.title,
            "href": r.task.html,
            "status": r.status,
            "status_text": "complete" if r.status == "ok" else "failed",
            "message": r.message,
        }
        for r in summary.results
        if r.task.stage != TRUST
    ]
    n_ok = sum(t["status"] == "ok" for t in trusts)
    failed = [t["code"] for t in trusts if t["status"] != "ok"]
    return {
        "programme": params.programme,
        "internal": rule.internal,
        "disclosure": rule.statement,
        "summary": f"{n_ok} of {len(trusts)} trust evaluations complete.",
        "failed": f"Failed: {', '.join(failed)} (see each row)." if failed else "",
        "programme_rows": programme_rows,
        "trusts": trusts,
        "measure_label": params.measure(headline).label,
        "horizon": params.horizon_months,
    }


def _write_glance(path: Path, prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The 'programme at a glance' PNG for board papers (the same figure as the report's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rrp_eval.show.programme import glance_figure

    with matplotlib.rc_context({"text.parse_math": False}):  # names shown literally
        fig, _ = glance_figure(prog, rule)
        if rule.internal:  # the picture travels alone: it says what it is on its face
            fig.text(
                0.5,
                1.0,
                INTERNAL_STAMP,
                ha="center",
                va="bottom",
                fontsize=13,
                fontweight="bold",
                color="#DA291C",
            )
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _swap_into_place(build: Path, out: Path) -> None:
    """Replace ``out`` by ``build`` with two renames; the old run is removed last."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


def _input_files(params: ProgrammeParams, files: tuple[Path, ...]) -> dict[str, Path]:
    inputs = {f"data/{p.name}": p for p in files}
    if params.source:
        source = Path(params.source)
        inputs[f"params/{PROGRAMME_FILE}"] = source
        trusts = source.parent / TRUSTS_FOLDER
        if trusts.is_dir():
            for p in sorted(trusts.glob("*.y*ml")):
                inputs[f"params/{TRUSTS_FOLDER}/{p.name}"] = p
    return inputs


def run_suite(
    *,
    data: str | Path | None = None,
    params_dir: str | Path | None = None,
    out: str | Path | None = None,
    trusts: list[str] | None = None,
    jobs: int | None = None,
    internal: bool = False,
    notebooks: Path = NOTEBOOKS,
    force: bool = False,
    timeout: float | None = None,
    progress: bool = False,
    scheduler: str | None = None,
    kernels: str = "warm",
) -> RunSummary:
    """Run the whole evaluation.

    Parameters
    ----------
    data : str or Path, optional
        Data folder or workbook; default the parameters' ``data`` (the demonstration programme).
    params_dir : str or Path, optional
        Parameters folder; default built-in defaults.
    out : str or Path, optional
        Output folder; default ``outputs/<data folder name>`` (``outputs/demo``).
    trusts : list of str, optional
        Evaluate these trusts only.
    jobs : int, optional
        Worker processes; default the number of CPUs.
    internal : bool, default False
        Render without disclosure control, every page marked "internal: not for sharing".
    notebooks : Path
        Folder of the notebooks to execute.
    force : bool, default False
        Execute every notebook and recompute the tables even when their inputs are unchanged.
    timeout : float, optional
        Seconds a notebook may run before it is stopped and marked failed (its partial
        notebook is rendered); default no limit.
    progress : bool, default False
        A progress bar (tqdm, on stderr) and one line per notebook as it finishes.
    scheduler : str, optional
        Address of a Dask distributed scheduler to run the notebooks on instead of local
        worker processes (``pip install "rrp-eval[dask]"``).
    kernels : {"warm", "cold"}, default "warm"
        "warm" forks each notebook's kernel from a per-worker template process that has
        imported the libraries once (Linux; elsewhere, or if the template cannot be used, the
        kernel starts the usual way and run.json says why); "cold" always starts a new
        ``python -m ipykernel_launcher``.

    Returns
    -------
    RunSummary

    Raises
    ------
    UnusableInput
        Structural data errors or bad parameters, before anything is written.
    """
    t0 = time.perf_counter()
    params = load_params(params_dir)
    data_path = data_location(data, params)
    demo = not data and params.data is None
    raw = load_raw(data_path)
    programme, report = validate_programme(raw, params)
    if programme is None:
        raise UnusableInput(f"{data_path}: the data cannot be used ({report.summary()})", report)
    try:
        programme = without_excluded_wards(programme, params.excluded_wards)
    except ValueError as exc:
        raise UnusableInput(str(exc)) from exc
    programme = with_derived_measures(programme)
    all_trusts = programme.trusts
    if trusts:
        unknown = [t for t in trusts if t not in all_trusts]
        if unknown:
            raise UnusableInput(
                f"--trusts: {', '.join(unknown)} not in the data; trusts are "
                f"{', '.join(all_trusts)}"
            )
    if kernels not in ("warm", "cold"):
        raise UnusableInput(f"--kernels {kernels}: use warm or cold")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UnusableInput(f"--timeout {timeout}: must be a positive number of seconds")
    selected = trusts or all_trusts
    out_dir = output_folder(out, "demo" if demo else data_path.stem, internal)
    protected = {"data": data_path}
    if params.source:
        protected["parameters"] = Path(params.source).parent
    try:
        check_output_folder(out_dir, "internal" if internal else "shared", protected)
    except OutputRefused as exc:
        raise UnusableInput(str(exc)) from exc
    out_dir = out_dir.resolve()
    try:
        with output_lock(out_dir):
            return _run_locked(
                t0=t0,
                params=params,
                programme=programme,
                report=report,
                data_path=data_path,
                selected=selected,
                trusts=trusts,
                out_dir=out_dir,
                jobs=jobs,
                internal=internal,
                notebooks=notebooks,
                force=force,
                timeout=timeout,
                progress=progress,
                scheduler=scheduler,
                kernels=kernels,
            )
    except OutputLocked as exc:
        raise UnusableInput(str(exc)) from exc
    except OSError as exc:
        if not _unwritable(exc) or isinstance(exc, OutputUnwritable):
            raise
        where = f"{exc.strerror} at {exc.filename}" if exc.filename else exc.strerror
        raise OutputUnwritable(exc.errno, _unwritable_message(out_dir, where)) from exc


INTERNAL_SUFFIX = "-internal"
INTERNAL_STAMP = "INTERNAL: NOT FOR SHARING (small numbers are not suppressed)"


def output_folder(out: str | Path | None, default_name: str, internal: bool) -> Path:
    """The run's output folder: ``out`` or ``outputs/<default_name>``; an internal run's
    folder name ends in ``-internal`` (added when missing), so that internal reports never
    land where shared ones are expected."""
    folder = Path(out) if out else Path("outputs") / default_name
    if internal and not folder.name.endswith(INTERNAL_SUFFIX):
        folder = folder.with_name(folder.name + INTERNAL_SUFFIX)
    return folder


def _run_locked(
    *,
    t0: float,
    params: ProgrammeParams,
    programme: Any,
    report: ValidationReport,
    data_path: Path,
    selected: list[str],
    trusts: list[str] | None,
    out_dir: Path,
    jobs: int | None,
    internal: bool,
    notebooks: Path,
    force: bool,
    timeout: float | None,
    progress: bool,
    scheduler: str | None,
    kernels: str,
) -> RunSummary:
    recovered = recover(out_dir)
    if recovered:
        logger.warning("%s: %s", out_dir, recovered)
    previous = {} if force else previous_outputs(out_dir)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    run_id = uuid.uuid4().hex
    write_marker(build, "internal" if internal else "shared", run_id)
    for sub in ("notebooks", "trusts", "tables", "logs"):
        (build / sub).mkdir()
    build.chmod(0o755)
    summary = RunSummary(out=out_dir)
    failed = report.failed_trusts
    # a whole run also fails the trusts that have rows but are not in wards.csv
    reported = selected if trusts else [*selected, *(t for t in failed if t not in selected)]
    summary.failed_trusts = {
        t: f"data errors: {failed[t][0] if internal else failed[t][0].located()}"
        + (f" (and {len(failed[t]) - 1} more)" if len(failed[t]) > 1 else "")
        + ("" if internal else "; the data-quality report and rrp-eval validate list them")
        for t in reported
        if t in failed
    }
    rule = DisclosureRule.from_params(params.disclosure, internal=internal)
    page = {"programme": params.programme, "disclosure": rule.statement, "internal": internal}
    common = {
        "params_dir": str(Path(params.source).parent) if params.source else "",
        "data": str(data_path.resolve()),
        "internal": internal,
    }
    tasks = [Task(DATA_QUALITY, "programme", "data_quality.html", "Data quality", common)]
    names = dict(zip(programme.wards.trust_code, programme.wards.trust_name, strict=False))
    tasks += [
        Task(TRUST, t, f"trusts/{t}.html", f"{names[t]} ({t})", common | {"trust_code": t})
        for t in selected
        if t not in summary.failed_trusts
    ]
    if programme.wards["start_month"].notna().any():
        pooled = common | ({"trusts": list(selected)} if trusts else {})
        tasks.append(Task(PROGRAMME, "programme", "programme.html", "Programme evaluation", pooled))
    else:
        tasks.append(Task(CONTEXT, "programme", "programme.html", "Provider-level context", common))
    ok_trusts = [t for t in selected if t not in summary.failed_trusts]
    # the programme-level fits never see the rows of a trust that failed validation
    analysed = programme.without_trusts(failed)
    digests = {t.html: _task_digest(t, programme, params, notebooks) for t in tasks}
    tables_digest = digest(
        "tables",
        package_digest(),
        frame_digest(*_frames(programme)),
        _params_json(params),
        ok_trusts,
        rule.statement,  # the rule shapes the glance figure and the workbook's titles
        internal,
    )
    try:
        # reuse what has not changed since the last run
        reused: list[TaskResult] = []
        to_run: list[Task] = []
        for task in tasks:
            pair = _task_files(task)
            if reusable(previous, task.html, digests[task.html], [out_dir / p for p in pair]):
                copy_into([(out_dir / p, build / p) for p in pair])
                reused.append(TaskResult(task, "ok", "", 0.0, reused=True))
            else:
                to_run.append(task)
        table_files = [f"tables/{n}" for n in TABLE_FILES] + [
            f"tables/parquet/{n}.parquet" for n in PARQUET_TABLES
        ]
        table_files.append("programme_at_a_glance.png")
        tables_reused = reusable(
            previous, "tables", tables_digest, [out_dir / f for f in table_files]
        )
        workers = max(1, min(jobs or os.cpu_count() or 1, max(len(to_run), 1)))
        if to_run:  # imported once here, so that the forked workers share them
            import nbconvert  # noqa: F401
            import papermill  # noqa: F401
        if progress and reused:
            print(
                f"  {len(reused)} notebook(s) unchanged since the last run: reused "
                "(--force to run them again)",
                file=sys.stderr,
            )
        bar = _progress_bar(len(to_run), progress)
        parquet = build / "tables" / "parquet"
        # the trust tasks first: each worker evaluates its trust (the tables are built from
        # the evaluations) and then runs the notebook, which reads the evaluation from the
        # run's cache; the programme-level page last, as it shows the programme's evaluation
        trust_tasks = [t for t in to_run if t.stage == TRUST]
        last = [t for t in to_run if t.stage in (PROGRAMME, CONTEXT)]
        others = [t for t in to_run if t not in trust_tasks and t not in last]
        run = (notebooks, build, page, rule, timeout, kernels)
        evaluations: dict[str, TrustEvaluation | None] = {}

        def finished(futures: list[Any]) -> None:
            for result in _as_completed(futures):
                if result.task.stage == TRUST:
                    evaluations[result.task.name] = result.evaluation
                    result.evaluation = None  # kept once, here
                if not (result.reused and result.task.stage == TRUST):
                    summary.results.append(result)
                    _report_line(bar, result)

        with (
            _evaluation_cache(),
            _executor(workers, scheduler, warm=kernels == "warm") as submit,
        ):
            own = {t.name: analysed.only_trust(t.name) for t in trust_tasks}
            trust_futures = [
                submit(_evaluate_and_execute, t, own[t.name], params, *run) for t in trust_tasks
            ]
            futures = [submit(_execute, t, *run) for t in others]
            t_tables = time.perf_counter()
            if tables_reused:
                copy_into([(out_dir / f, build / f) for f in table_files])
                its, spc = _read_tables(build)
                finished(trust_futures)
            else:
                # the evaluations of reused trust pages are made again (their pages are not)
                trust_futures += [
                    submit(_evaluate_only, r.task, analysed.only_trust(r.task.name), params)
                    for r in reused
                    if r.task.stage == TRUST
                ]
                panel = fit_panel(analysed, params)  # while the trusts run
                finished(trust_futures)
                prog = evaluate_programme(
                    analysed,
                    params,
                    trusts={t: e for t in ok_trusts if (e := evaluations.get(t)) is not None},
                    panel=panel,
                )
                its, spc, sensitivity = _trust_tables(prog, evaluations, ok_trusts)
                pooled = prog.pooled
                for t, msg in summary.failed_trusts.items():
                    failed_rows = [
                        {"trust_code": t, "measure": m, "status": "failed", "message": msg}
                        for m in params.analysed_measures(programme.measures)
                    ]
                    its = pd.concat([its, pd.DataFrame(failed_rows)], ignore_index=True)
                tables = {
                    "its_effects": its,
                    "spc_signals": spc,
                    "its_sensitivity": sensitivity,
                    "programme_effects": pooled,
                }
                _write_parquet(parquet, tables)
            futures += [submit(_execute, t, *run) for t in last]
            if not tables_reused:  # while the programme notebook runs
                _write_tables(build, params, tables, internal)
                _write_glance(build / "programme_at_a_glance.png", prog, rule)
            tables_seconds = time.perf_counter() - t_tables
            finished(futures)
        bar.close()
        full = [r for r in summary.results if r.unwritable]
        if full:  # never swap in a half-written run
            raise OutputUnwritable(
                errno.ENOSPC,
                _unwritable_message(out_dir, f"{full[0].task.html}: {full[0].message}"),
            )
        _report_kernels(summary.results, kernels)
        summary.results += reused
        summary.results.sort(key=lambda r: (r.task.stage, r.task.name))
        trusts_frame = programme.wards[["trust_code", "trust_name"]].drop_duplicates("trust_code")
        trusts_frame = trusts_frame[trusts_frame.trust_code.isin(selected)]
        unknown = [t for t in summary.failed_trusts if t not in set(trusts_frame.trust_code)]
        if unknown:  # rows for trusts that wards.csv does not list
            trusts_frame = pd.concat(
                [
                    trusts_frame,
                    pd.DataFrame({"trust_code": unknown, "trust_name": "(not in wards.csv)"}),
                ],
                ignore_index=True,
            )
        index = render_index(
            _index_context(
                params,
                trusts_frame,
                its,
                spc,
                summary,
                rule,
                headline_measure(params, programme.measures),
            )
        )
        write_atomic(build / "index.html", index)
        summary.seconds = time.perf_counter() - t0
        manifest_path = write_manifest(
            build,
            command="run",
            inputs=_input_files(params, programme.files),
            parameters={
                "programme": params.model_dump(mode="json"),
                "data": str(data_path),
                "trusts": selected,
                "internal": internal,
                "jobs": workers,
                "timeout": timeout,
                "scheduler": scheduler,
                "force": force,
                "kernels": kernels,
            },
            outputs={
                **{
                    r.task.html: {
                        "status": r.status,
                        "message": r.message,
                        "seconds": round(r.seconds, 2),
                        "reused": r.reused,
                        "peak_mib": r.peak_mib,
                        "kernel": r.kernel,
                        "input_sha256": digests[r.task.html],
                    }
                    for r in summary.results
                },
                **{
                    f"trusts/{t}.html": {"status": "failed", "message": m}
                    for t, m in summary.failed_trusts.items()
                },
                "tables": {
                    "status": "ok",
                    "reused": tables_reused,
                    "input_sha256": tables_digest,
                },
            },
            notebooks={
                stage: notebooks / f"{stage}.ipynb" for stage in sorted({t.stage for t in tasks})
            },
            reproduce=_reproduce(data_path, params, out_dir, trusts, internal),
            seeds={"callaway_santanna_bootstrap": CS_SEED},
            timings={
                "total": summary.seconds,
                "tables": tables_seconds,
                **{f"{r.task.stage}_{r.task.name}": r.seconds for r in summary.results},
            },
        )
        full = json.loads(manifest_path.read_text(encoding="utf-8")) | {"run_id": run_id}
        if internal:
            write_atomic(manifest_path, manifest_text(full))
        else:  # the shared folder gets no hashes and no absolute paths
            write_atomic(manifest_path, manifest_text(shareable(full)))
        # the full manifest is written before the swap (a full disk stops the run here) and
        # renamed into place after it; it names the run, so a stale one is never trusted
        state = state_path(out_dir)
        pending = state.with_name(f"{state.name}.{run_id}")
        write_atomic(pending, manifest_text(full))
        try:
            _swap_into_place(build, out_dir)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        try:
            os.replace(pending, state)
        except OSError as exc:  # the reports are in place; the next run reuses nothing
            logger.warning("%s: the run's manifest could not be kept (%s)", state, exc.strerror)
            pending.unlink(missing_ok=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return summary


TABLE_FILES = (
    "its_effects.csv",
    "spc_signals.csv",
    "its_sensitivity.csv",
    "programme_effects.csv",
    "results.xlsx",
)


def _frames(programme: Any) -> tuple[pd.DataFrame, ...]:
    return (programme.wards, programme.ward_month, programme.events)


def _params_json(params: ProgrammeParams) -> Any:
    return {
        "programme": params.model_dump(mode="json"),
        "trusts": {t: params.for_trust(t).model_dump(mode="json") for t in sorted(params.trusts)},
    }


def _task_files(task: Task) -> list[str]:
    files = [task.html, f"notebooks/{task.stage}_{task.name}.ipynb"]
    return files


def _task_digest(task: Task, programme: Any, params: ProgrammeParams, notebooks: Path) -> str:
    """The hash of everything a notebook's output depends on."""
    nb_hash = sha256_file(notebooks / f"{task.stage}.ipynb")
    if task.stage == TRUST:
        code = task.name
        wards, wm, ev = _frames(programme)
        data_hash = frame_digest(
            wards[wards.trust_code == code],
            wm[wm.trust_code == code],
            ev[ev.trust_code == code],
        )
        own = params.for_trust(code).model_dump(mode="json")
    else:
        data_hash = frame_digest(*_frames(programme))
        own = _params_json(params)
        if task.stage == DATA_QUALITY:
            data_hash += digest([str(p) for p in programme.report.problems])
    parameters = task.parameters
    return digest(
        task.stage,
        parameters,
        task.title,
        nb_hash,
        package_digest(),
        params.model_dump(mode="json"),
        own,
        data_hash,
    )


def _trust_tables(
    prog: ProgrammeEvaluation, evaluations: dict[str, TrustEvaluation | None], trusts: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``its_effects``, ``spc_signals`` and ``its_sensitivity`` of the trusts, in order, from
    their evaluations (a trust whose evaluation broke in its worker gets the programme's own
    evaluation of it, without sensitivity analyses)."""
    parts = []
    for t in trusts:
        e = evaluations.get(t) or prog.trusts.get(t)
        if e is not None:
            parts.append(e.tables())
    if not parts:
        return (
            its_effects_table([]),
            pd.DataFrame(columns=SPC_COLUMNS),
            pd.DataFrame(columns=SENSITIVITY_COLUMNS),
        )
    its, spc, sensitivity = (
        pd.concat([p[name] for p in parts], ignore_index=True)
        for name in ("its_effects", "spc_signals", "its_sensitivity")
    )
    return its, spc, sensitivity


def _write_parquet(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Typed copies of the tables the programme notebook reads."""
    folder.mkdir(exist_ok=True)
    for name in PARQUET_TABLES:
        _numeric(tables[name]).to_parquet(folder / f"{name}.parquet", index=False)


def _write_tables(
    build: Path, params: ProgrammeParams, tables: dict[str, pd.DataFrame], internal: bool = False
) -> None:
    """The CSV files and the workbook (an internal workbook's every title row says so)."""
    stamp = f"{INTERNAL_STAMP}. " if internal else ""
    for name, frame in tables.items():
        write_atomic(build / "tables" / f"{name}.csv", csv_text(frame))
    sheets = {
        "ITS effects": ("its_effects", "each trust's ITS effects"),
        "Programme effects": ("programme_effects", "pooled and controlled effects"),
        "SPC signals": ("spc_signals", "Making Data Count signals"),
        "Sensitivity": ("its_sensitivity", "ITS sensitivity analyses"),
    }
    write_workbook(
        build / "tables" / "results.xlsx",
        {
            sheet: (tables[name], f"{stamp}{params.programme}: {caption}")
            for sheet, (name, caption) in sheets.items()
        },
    )


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding only numbers or blanks as floats (an all-blank column would
    otherwise come back from Parquet as nulls, not NaN)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].dropna()
        if values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all():
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def _read_tables(build: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reused ``its_effects`` and ``spc_signals`` for the index, from their typed copies."""
    folder = build / "tables" / "parquet"
    return (
        pd.read_parquet(folder / "its_effects.parquet"),
        pd.read_parquet(folder / "spc_signals.parquet"),
    )


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        unit="notebook",
        desc="rrp-eval",
        disable=not (enabled and sys.stderr.isatty()) or total == 0,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    bar.lines = enabled  # one line per notebook even when there is no terminal for the bar
    return bar


def _report_line(bar: Any, r: TaskResult) -> None:
    from tqdm.auto import tqdm

    bar.update(1)
    if bar.lines:
        note = f": {r.message}" if r.message else ""
        tqdm.write(f"  {r.status:<6} {r.task.html} ({r.seconds:.1f} s){note}", file=sys.stderr)


def _report_kernels(results: list[TaskResult], kernels: str) -> None:
    """One log line when warm kernels were asked for and some kernel started cold."""
    cold = [r.kernel for r in results if r.kernel.startswith("cold:")]
    if kernels == "warm" and cold:
        logger.warning(
            "warm kernels unavailable for %d of %d notebooks (%s); they started the usual way",
            len(cold),
            len(results),
            cold[0].removeprefix("cold: "),
        )


@contextlib.contextmanager
def _evaluation_cache() -> Iterator[Path]:
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
def _executor(workers: int, scheduler: str | None, warm: bool = False) -> Iterator[Any]:
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


def _start_worker(parent: int, warm: bool) -> None:
    """A local worker process: it drops the output lock it inherited with the fork, ends when
    the run's process ends (even after ``kill -9``), and starts its kernel template."""
    release_inherited()
    die_with_parent(parent)
    if warm:
        from rrp_eval.report.warm import start_template

        start_template()


def _as_completed(futures: list[Any]) -> Iterator[TaskResult]:
    if futures and type(futures[0]).__module__.startswith("distributed"):
        from distributed import as_completed as dask_completed

        for future in dask_completed(futures):
            yield future.result()
    else:
        for future in as_completed(futures):
            yield future.result()
