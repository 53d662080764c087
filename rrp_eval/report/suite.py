"""The main job (SPEC §4-5): plan the run, execute every notebook in worker processes while the
programme-level fits run here, assemble the tables, write the index and the manifest, and swap
the finished build into place.

The steps live in ``plan``, ``execute``, ``assemble`` and ``index``; this module orders them and
owns the output folder (its lock, the build beside it, the swap).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from rrp_eval.evaluate.aims import LIKELY, aims_table, publish, publish_changes
from rrp_eval.evaluate.planning import Detectability
from rrp_eval.evaluate.programme import PanelFits, evaluate_programme
from rrp_eval.evaluate.trust import TrustEvaluation, headline_measure
from rrp_eval.models.controlled import CS_SEED
from rrp_eval.report.assemble import (
    OUTPUT_FILES,
    detectability_table,
    page_digest,
    read_tables,
    read_trust_tables,
    run_tables,
    trust_tables,
    write_glance,
    write_parquet,
    write_tables,
)
from rrp_eval.report.audit import AuditReport, audit_outputs
from rrp_eval.report.changes import (
    CHANGE_COLUMNS,
    RunSnapshot,
    changes_between,
    changes_markdown,
    month_digests,
    snapshot_from_folder,
    state_entries,
)
from rrp_eval.report.execute import (
    OutputUnwritable,
    PanelResult,
    TaskResult,
    completed,
    evaluate_only,
    evaluation_cache,
    execute,
    executor,
    fit_panel_task,
    is_unwritable,
    unwritable_message,
)
from rrp_eval.report.export import csv_text
from rrp_eval.report.html import render_methods
from rrp_eval.report.incremental import (
    OutputLocked,
    OutputRefused,
    check_output_folder,
    copy_into,
    output_lock,
    previous_outputs,
    recover,
    reusable,
    write_marker,
)
from rrp_eval.report.index import index_page
from rrp_eval.report.manifest import (
    manifest_text,
    shareable,
    state_path,
    write_atomic,
    write_manifest,
)
from rrp_eval.report.plan import (
    CONTEXT,
    NOTEBOOKS,
    PROGRAMME,
    TRUST,
    RunOptions,
    RunPlan,
    Task,
    UnusableInput,
    load_inputs,
    output_folder,
    plan_run,
)

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_TRUSTS_FAILED, EXIT_UNUSABLE, EXIT_UNWRITABLE = 0, 1, 2, 3

__all__ = [
    "EXIT_OK",
    "EXIT_TRUSTS_FAILED",
    "EXIT_UNUSABLE",
    "EXIT_UNWRITABLE",
    "OutputUnwritable",
    "RunSummary",
    "UnusableInput",
    "run_suite",
]


@dataclass
class RunSummary:
    """What a run did; ``exit_code`` follows SPEC §4."""

    out: Path
    results: list[TaskResult] = field(default_factory=list)
    failed_trusts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    audit: AuditReport | None = None
    panel_seconds: dict[str, float] = field(default_factory=dict)  # each measure's panel fits

    @property
    def exit_code(self) -> int:
        failed = self.failed_trusts or any(r.status != "ok" for r in self.results)
        withheld = self.audit is not None and not self.audit.ok
        return EXIT_TRUSTS_FAILED if failed or withheld else EXIT_OK


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
    since: str | Path | None = None,
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
    since : str or Path, optional
        An earlier run's output folder: what changed since it goes to ``tables/changes.csv``
        and a "since the last run" section of the index and each trust's page; default the
        output folder this run replaces (nothing when there is no earlier run).

    Returns
    -------
    RunSummary

    Raises
    ------
    UnusableInput
        Structural data errors or bad parameters, before anything is written.
    """
    t0 = time.perf_counter()
    inputs = load_inputs(data, params_dir, trusts)
    if since is not None and not (Path(since) / "run.json").is_file():
        raise UnusableInput(f"--since {since}: no run there (no run.json)")
    options = RunOptions(
        jobs, force, timeout, progress, scheduler, kernels, Path(since) if since else None
    )
    out_dir = output_folder(out, "demo" if inputs.demo else inputs.data_path.stem, internal)
    protected = {"data": inputs.data_path}
    if inputs.params.source:
        protected["parameters"] = Path(inputs.params.source).parent
    try:
        check_output_folder(out_dir, "internal" if internal else "shared", protected)
    except OutputRefused as exc:
        raise UnusableInput(str(exc)) from exc
    out_dir = out_dir.resolve()
    try:
        with output_lock(out_dir):
            plan = plan_run(inputs, out_dir, trusts, internal, notebooks, options)
            return _run_locked(plan, t0)
    except OutputLocked as exc:
        raise UnusableInput(str(exc)) from exc
    except OSError as exc:
        if not is_unwritable(exc) or isinstance(exc, OutputUnwritable):
            raise
        where = f"{exc.strerror} at {exc.filename}" if exc.filename else exc.strerror
        raise OutputUnwritable(exc.errno, unwritable_message(out_dir, where)) from exc


def _run_locked(plan: RunPlan, t0: float) -> RunSummary:
    """The run, with the output folder locked: build beside it, then swap the build in."""
    out_dir = plan.out_dir
    recovered = recover(out_dir)
    if recovered:
        logger.warning("%s: %s", out_dir, recovered)
    previous = {} if plan.options.force else previous_outputs(out_dir)
    before = snapshot_from_folder(plan.options.since or out_dir)  # read before the swap
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    run_id = uuid.uuid4().hex
    write_marker(build, "internal" if plan.internal else "shared", run_id)
    for sub in ("notebooks", "trusts", "tables", "logs"):
        (build / sub).mkdir()
    build.chmod(0o755)
    summary = RunSummary(out=out_dir, failed_trusts=dict(plan.failed_trusts))
    try:
        reused, to_run = _reuse(plan, previous, build)
        tables_reused = reusable(
            previous, "tables", plan.tables_digest, [out_dir / f for f in OUTPUT_FILES]
        )
        tasks = len(to_run) + sum(t.stage == TRUST for t in plan.tasks)
        workers = max(1, min(plan.options.jobs or os.cpu_count() or 1, max(tasks, 1)))
        run = _Execution(plan, build, summary, workers, before)
        its, spc, pooled = run.all(to_run, reused, tables_reused, previous)
        full = [r for r in summary.results if r.unwritable]
        if full:  # never swap in a half-written run
            raise OutputUnwritable(
                errno.ENOSPC,
                unwritable_message(out_dir, f"{full[0].task.html}: {full[0].message}"),
            )
        _report_kernels(summary.results, plan.options.kernels)
        summary.results += reused
        summary.results.sort(key=lambda r: (r.task.stage, r.task.name))
        write_atomic(
            build / "index.html",
            _index(
                plan,
                its,
                spc,
                pooled,
                summary,
                run.aims,
                run.found,
                run.changes,
                run.before.label if run.before else "",
            ),
        )
        write_atomic(build / "methods.html", render_methods(plan.params, plan.rule.internal))
        summary.seconds = time.perf_counter() - t0
        pending = _write_manifests(plan, build, summary, run_id, workers, tables_reused, run)
        _audit(plan, build, summary)
        try:
            _swap_into_place(build, out_dir)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        try:
            os.replace(pending, state_path(out_dir))
        except OSError as exc:  # the reports are in place; the next run reuses nothing
            state = state_path(out_dir)
            logger.warning("%s: the run's manifest could not be kept (%s)", state, exc.strerror)
            pending.unlink(missing_ok=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return summary


def _audit(plan: RunPlan, build: Path, summary: RunSummary) -> None:
    """Every shared run ends with the recoverability audit of what it is about to publish: a
    file with a finding is withheld (deleted from the build), the findings go to the console
    with their values and to run.json without them, and the run exits 1."""
    if plan.internal:
        return
    report = audit_outputs(build, plan.rule)
    summary.audit = report
    for finding in report.findings:
        logger.error("disclosure audit withheld %s", finding)
    for name in report.files_with_findings:
        if name != "run.json":
            (build / name).unlink(missing_ok=True)
    manifest_path = build / "run.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if "run.json" in report.files_with_findings:  # keep only what says what the run was
        manifest = {k: manifest[k] for k in ("command", "created_utc", "run_id") if k in manifest}
    manifest["disclosure_audit"] = report.public()
    write_atomic(manifest_path, manifest_text(manifest))


def _reuse(
    plan: RunPlan, previous: dict[str, Any], build: Path
) -> tuple[list[TaskResult], list[Task]]:
    """Copy into the build the pages that have not changed since the last run; the rest run.
    Trust pages are decided later (:meth:`_Execution.all`): they show the programme's aims."""
    reused: list[TaskResult] = []
    to_run: list[Task] = []
    for task in plan.tasks:
        if task.stage == TRUST:
            continue
        files = [plan.out_dir / p for p in task.files]
        if reusable(previous, task.html, plan.digests[task.html], files):
            copy_into([(plan.out_dir / p, build / p) for p in task.files])
            reused.append(TaskResult(task, "ok", "", 0.0, reused=True))
        else:
            to_run.append(task)
    if plan.options.progress and reused:
        print(
            f"  {len(reused)} notebook(s) unchanged since the last run: reused "
            "(--force to run them again)",
            file=sys.stderr,
        )
    return reused, to_run


class _Execution:
    """The notebooks and the programme-level panel fits (one task per measure) on the workers
    or the Dask cluster; the programme's evaluation and tables here, from their results."""

    def __init__(
        self,
        plan: RunPlan,
        build: Path,
        summary: RunSummary,
        workers: int,
        before: RunSnapshot | None = None,
    ):
        self.plan, self.build, self.summary, self.workers = plan, build, summary, workers
        self.before = before
        self.changes: pd.DataFrame | None = None
        self.evaluations: dict[str, TrustEvaluation | None] = {}
        self.detectability: dict[str, Detectability] = {}
        self.aims = self.found = pd.DataFrame()
        self.tables_seconds = 0.0
        self.bar: Any = None

    def all(
        self,
        to_run: list[Task],
        reused: list[TaskResult],
        tables_reused: bool,
        previous: dict[str, Any],
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Run every task and build (or reuse) the tables; ``its_effects``, ``spc_signals`` and
        ``programme_effects`` for the index. Trust pages are decided here (appended to
        ``reused`` or run): they show the programme's aims table, known only once every trust
        is evaluated."""
        plan, build = self.plan, self.build
        import nbconvert  # noqa: F401  (imported once here, so that the forked workers share it)
        import papermill  # noqa: F401

        # the programme-level panel fits: one task per measure, beside the trusts'
        measures = plan.params.analysed_measures(plan.analysed.measures)
        panel_measures = [] if tables_reused else list(measures)
        trust_tasks = [t for t in plan.tasks if t.stage == TRUST]
        self.bar = _progress_bar(
            len(to_run) + len(trust_tasks) + len(panel_measures), plan.options.progress
        )
        # first every trust's evaluation (and the power of its evaluation), in the workers, beside
        # the panel fits; then the aims table from all of them; then the trusts' notebooks,
        # which read their evaluation and the aims table from the run's cache; the
        # programme-level page last, as it shows the programme's evaluation
        last = [t for t in to_run if t.stage in (PROGRAMME, CONTEXT)]
        others = [t for t in to_run if t not in last]
        run = (plan.notebooks, build, plan.page, plan.rule, plan.options.timeout)
        run += (plan.options.kernels,)
        analysed, params = plan.analysed, plan.params
        warm = plan.options.kernels == "warm"
        # local workers keep the cores busy: what this process computes meanwhile (the
        # programme's evaluation, the tables) uses one BLAS thread too (execute.one_blas_thread)
        blas = contextlib.nullcontext() if plan.options.scheduler else threadpool_limits(limits=1)
        with (
            blas,
            evaluation_cache() as cache,
            executor(self.workers, plan.options.scheduler, warm) as submit,
        ):
            run += (str(cache),)  # for Dask workers started without the variable
            panel_futures = [
                submit(fit_panel_task, analysed, params, m, True) for m in panel_measures
            ]
            futures = [submit(execute, t, *run) for t in others]
            t_tables = time.perf_counter()
            if tables_reused:
                copy_into([(plan.out_dir / f, build / f) for f in OUTPUT_FILES])
                its, spc, pooled = read_tables(build)
                aims, found = read_trust_tables(build)
            else:
                self._finished(
                    [
                        submit(evaluate_only, t, analysed.only_trust(t.name), params, str(cache))
                        for t in trust_tasks
                    ]
                    + panel_futures
                )
                ok = [t for t in plan.ok_trusts if self.evaluations.get(t) is not None]
                aims = aims_table({t: self.evaluations[t] for t in ok}, params)
                found = detectability_table(self.detectability)
                its, spc, _ = trust_tables(None, self.evaluations, plan.ok_trusts, plan.rule)
            publish(aims)
            self.changes = self._changes(its, spc, aims)
            trust_futures = []
            for task in trust_tasks:
                plan.digests[task.html] = page_digest(
                    plan.digests[task.html], aims, found, task, self.changes
                )
                files = [plan.out_dir / p for p in task.files]
                if reusable(previous, task.html, plan.digests[task.html], files):
                    copy_into([(plan.out_dir / p, build / p) for p in task.files])
                    reused.append(TaskResult(task, "ok", "", 0.0, reused=True))
                    self.bar.update(1)
                else:
                    trust_futures.append(submit(execute, task, *run))
            if not tables_reused:
                panel = PanelFits.combine([f.result().fits for f in panel_futures])
                prog = evaluate_programme(
                    analysed,
                    params,
                    trusts={t: self.evaluations[t] for t in ok},
                    panel=panel,
                )
                measures = params.analysed_measures(plan.inputs.programme.measures)
                tables = run_tables(
                    prog, self.evaluations, plan.ok_trusts, plan.failed_trusts, measures, plan.rule
                )
                tables["aim_probabilities"], tables["detectability"] = aims, found
                tables["changes"] = self.changes
                write_parquet(build / "tables" / "parquet", tables)
                futures += [submit(execute, t, *run) for t in last]
                # while the notebooks run
                write_tables(build, params, tables, plan.internal)
                write_glance(build / "programme_at_a_glance.png", prog, plan.rule)
                its, spc = tables["its_effects"], tables["spc_signals"]
                pooled = tables["programme_effects"]
            else:
                futures += [submit(execute, t, *run) for t in last]
                write_atomic(build / "tables" / "changes.csv", csv_text(self.changes))
            self.tables_seconds = time.perf_counter() - t_tables
            self._finished(trust_futures + futures)
        self.bar.close()
        self.aims, self.found = aims, found
        return its, spc, pooled

    def _changes(self, its: pd.DataFrame, spc: pd.DataFrame, aims: pd.DataFrame) -> pd.DataFrame:
        """What changed since the earlier run (empty when there is none), left in the run's
        cache for the trusts' pages."""
        plan = self.plan
        programme = plan.inputs.programme
        after = RunSnapshot(
            its_effects=its,
            spc_signals=spc,
            aims=aims,
            findings=plan.inputs.report.to_frame(),
            months={
                t: m for t, m in month_digests(programme.ward_month).items() if t in plan.selected
            },
        )
        if self.before is None:
            changes = pd.DataFrame(columns=CHANGE_COLUMNS)
        else:
            params = plan.params
            measures = sorted(set(its["measure"]) | set(spc["measure"])) if len(its) else []
            keep = set(plan.selected) | {"programme"}

            def mine(frame: pd.DataFrame) -> pd.DataFrame:
                if "trust_code" not in frame:
                    return frame
                return frame[frame["trust_code"].astype(str).isin(keep)]

            before = dataclasses.replace(  # the trusts of this run only (--trusts)
                self.before,
                its_effects=mine(self.before.its_effects),
                spc_signals=mine(self.before.spc_signals),
                aims=mine(self.before.aims),
                months={t: m for t, m in self.before.months.items() if t in keep},
            )
            changes = changes_between(
                before,
                after,
                LIKELY,
                directions={m: params.measure(m).direction for m in measures},
                labels={m: str(params.measure(m).label) for m in measures},
            )
        if self.before is not None:
            since = self.before.label
            # a section only where something changed: a rerun on the same data leaves every
            # page as it was (and reusable)
            publish_changes(
                {
                    t: changes_markdown(changes, t, since)
                    for t in plan.ok_trusts
                    if (changes["trust_code"] == t).any()
                }
            )
        return changes

    def _finished(self, futures: list[Any]) -> None:
        for result in completed(futures):
            if isinstance(result, PanelResult):
                self.summary.panel_seconds[result.measure] = result.seconds
                _report_panel_line(self.bar, result)
                continue
            if result.task.stage == TRUST and result.reused:
                self.evaluations[result.task.name] = result.evaluation
                if result.detectability is not None:
                    self.detectability[result.task.name] = result.detectability
                result.evaluation = result.detectability = None  # kept once, here
            if not (result.reused and result.task.stage == TRUST):
                self.summary.results.append(result)
                _report_line(self.bar, result)


def _index(
    plan: RunPlan,
    its: pd.DataFrame,
    spc: pd.DataFrame,
    pooled: pd.DataFrame,
    summary: RunSummary,
    aims: pd.DataFrame | None = None,
    found: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    since: str = "",
) -> str:
    """``index.html``: the selected trusts, and any failed trust that wards.csv does not list."""
    wards = plan.inputs.programme.wards
    trusts = wards[["trust_code", "trust_name"]].drop_duplicates("trust_code")
    trusts = trusts[trusts.trust_code.isin(plan.selected)]
    unknown = [t for t in summary.failed_trusts if t not in set(trusts.trust_code)]
    if unknown:
        extra = pd.DataFrame({"trust_code": unknown, "trust_name": "(not in wards.csv)"})
        trusts = pd.concat([trusts, extra], ignore_index=True)
    return index_page(
        plan.params,
        trusts,
        its,
        spc,
        summary.results,
        summary.failed_trusts,
        plan.rule,
        headline_measure(plan.params, plan.inputs.programme.measures),
        pooled,
        plan.inputs.programme.without_trusts(summary.failed_trusts).ward_month,
        aims,
        found,
        changes,
        since,
    )


def _write_manifests(
    plan: RunPlan,
    build: Path,
    summary: RunSummary,
    run_id: str,
    workers: int,
    tables_reused: bool,
    run: _Execution,
) -> Path:
    """``run.json`` in the build (a shared one without hashes or absolute paths) and the full
    manifest beside the output folder, under a name that is renamed into place after the swap
    (written before it, so a full disk stops the run here; it names the run, so a stale one is
    never trusted). Returns the pending full manifest."""
    options = plan.options
    manifest_path = write_manifest(
        build,
        command="run",
        inputs=plan.inputs.files,
        parameters={
            "programme": plan.params.model_dump(mode="json"),
            "data": str(plan.inputs.data_path),
            "trusts": plan.selected,
            "internal": plan.internal,
            "jobs": workers,
            "timeout": options.timeout,
            "scheduler": options.scheduler,
            "force": options.force,
            "kernels": options.kernels,
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
                    "input_sha256": plan.digests[r.task.html],
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
                "input_sha256": plan.tables_digest,
            },
        },
        notebooks={
            stage: plan.notebooks / f"{stage}.ipynb"
            for stage in sorted({t.stage for t in plan.tasks})
        },
        reproduce=plan.reproduce,
        seeds={"callaway_santanna_bootstrap": CS_SEED},
        timings={
            "total": summary.seconds,
            "tables": run.tables_seconds,
            **{f"{r.task.stage}_{r.task.name}": r.seconds for r in summary.results},
            **{f"panel_{m}": v for m, v in summary.panel_seconds.items()},
        },
    )
    full = json.loads(manifest_path.read_text(encoding="utf-8")) | {"run_id": run_id}
    if plan.internal:
        write_atomic(manifest_path, manifest_text(full))
    else:  # the shared folder gets no hashes and no absolute paths
        write_atomic(manifest_path, manifest_text(shareable(full)))
    state = state_path(plan.out_dir)
    pending = state.with_name(f"{state.name}.{run_id}")
    # the private state only: what the next run's "since the last run" compares with (digests
    # of each trust-month's data, the validation findings' keys), never in the shared folder
    programme = plan.inputs.programme
    private = full | state_entries(programme.ward_month, plan.inputs.report.to_frame())
    write_atomic(pending, manifest_text(private))
    return pending


def _swap_into_place(build: Path, out: Path) -> None:
    """Replace ``out`` by ``build`` with two renames; the old run is removed last."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        unit="task",
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


def _report_panel_line(bar: Any, r: PanelResult) -> None:
    from tqdm.auto import tqdm

    bar.update(1)
    if bar.lines:
        tqdm.write(f"  ok     panel fits: {r.measure} ({r.seconds:.1f} s)", file=sys.stderr)


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
