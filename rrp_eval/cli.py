"""Command line: ``rrp-eval``, a thin layer over package functions."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rrp_eval._version import __version__
from rrp_eval.data.synthetic import DEMO_SEED
from rrp_eval.evaluate.planning import DEFAULT_TAU, FOLLOW_UP, PLAN_SIMS


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrp-eval",
        description="Evaluate programmes that reduce restrictive practice (SPC, ITS, pooling).",
    )
    parser.add_argument("--version", action="version", version=f"rrp-eval {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="the main job: every notebook, HTML reports, tables and manifest",
        description="Validate the data, evaluate every trust and the programme with the "
        "notebooks (papermill, in parallel) and write self-contained HTML, tables and run.json. "
        "Without --data it runs the demonstration programme.",
    )
    run.add_argument("--data", type=Path, default=None, help="data folder or .xlsx workbook")
    run.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="DIR",
        help="parameters folder (default: ./params if it has programme.yaml)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: outputs/<data folder name>, outputs/demo); it must be "
        "new, empty or written by an earlier run, and must not hold or lie inside the data or "
        "parameters",
    )
    run.add_argument("--trusts", default=None, help="comma-separated trust codes to evaluate")
    run.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    run.add_argument(
        "--internal",
        action="store_true",
        help="no disclosure control; every page marked internal: not for sharing; written to "
        "<out>-internal",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run every notebook again, even those whose inputs are unchanged since the last run",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a notebook that runs longer and mark it failed (default: no limit)",
    )
    run.add_argument(
        "--kernels",
        choices=("warm", "cold"),
        default="warm",
        help="warm (default): fork each notebook's kernel from a per-worker process that has "
        "imported the libraries once (Linux); cold: start every kernel from scratch",
    )
    run.add_argument(
        "--pdf",
        action="store_true",
        help="also print every page to A4 PDF in <out>/pdf/ for board papers (needs Chromium, "
        "Chrome or Edge; RRP_EVAL_BROWSER names one)",
    )
    run.add_argument(
        "--since",
        type=Path,
        default=None,
        metavar="PREVIOUS_OUT",
        help="the earlier run's output folder to report changes against (default: the folder "
        "this run replaces); written to tables/changes.csv and a 'since the last run' section",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the notebooks on this Dask distributed scheduler (e.g. tcp://host:8786)",
    )

    plan = sub.add_parser(
        "plan",
        help="power: can a trust's data (or stated figures) show a 25% or 33% fall, and after "
        "how many months; and the programme's power by number of trusts",
        description="Simulate each trust's evaluation from its baseline (the months before its "
        "start, or all its months if it has not started) with the model and parameters the "
        "evaluation uses, and report the power to detect a 25% and a 33% fall, the minimum "
        "detectable rate ratio at 80% power and the follow-up months needed; then the power "
        "of the pre-specified pooled estimate by number of trusts. With --rate and --bed-days, "
        "plan from stated figures instead of data.",
    )
    plan.add_argument("--data", type=Path, default=None, help="data folder or workbook")
    plan.add_argument("--params", type=Path, default=None, help="parameters folder")
    plan.add_argument("--trusts", default=None, help="comma-separated trust codes to plan")
    plan.add_argument("--measure", default=None, help="measure (default: the pre-specified one)")
    plan.add_argument(
        "--follow-up",
        default=",".join(str(f) for f in FOLLOW_UP),
        metavar="MONTHS",
        help="comma-separated months after the start to plan for (default %(default)s)",
    )
    plan.add_argument(
        "--sims", type=int, default=PLAN_SIMS, help="simulations per cell (%(default)s)"
    )
    plan.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    plan.add_argument(
        "--tau",
        type=float,
        default=DEFAULT_TAU,
        help="between-trust SD of the true log rate ratios for the programme's power (%(default)s)",
    )
    plan.add_argument("--out", type=Path, default=None, help="write the tables to this CSV file")
    plan.add_argument(
        "--rate", type=float, default=None, help="stated: events per 1,000 occupied bed days"
    )
    plan.add_argument(
        "--bed-days", type=float, default=None, help="stated: occupied bed days a month"
    )
    plan.add_argument(
        "--months-before", type=int, default=24, help="stated: baseline months (%(default)s)"
    )
    plan.add_argument(
        "--dispersion",
        type=float,
        default=1.5,
        help="stated: Pearson dispersion of the monthly counts (%(default)s)",
    )
    plan.add_argument(
        "--autocorrelation",
        type=float,
        default=0.2,
        help="stated: lag-1 autocorrelation of the monthly counts (%(default)s)",
    )

    demo = sub.add_parser(
        "demo-data",
        help="write the synthetic demonstration programme (+ truth.json)",
        description="Write wards.csv, ward_month.csv, events.csv and truth.json of the "
        "demonstration programme to OUT_DIR; the same seed gives the same bytes.",
    )
    demo.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    demo.add_argument("--seed", type=int, default=DEMO_SEED, help="seed (%(default)s)")

    validate = sub.add_parser(
        "validate",
        help="check input data: exit 0 if usable (warnings printed), 2 if not",
        description="Check a folder of CSV/Parquet files or an .xlsx workbook against the data "
        "contract and list every problem once as file:line:column: message.",
    )
    validate.add_argument("data", type=Path, metavar="DATA")
    validate.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="DIR",
        help="parameters folder (programme.yaml), for extra measures and warning thresholds",
    )
    audit = sub.add_parser(
        "audit",
        help="check a shared output folder: exit 0 if nothing in it gives back a small count",
        description="Read everything in a shared output folder (pages, figures, notebooks, "
        "tables, run.json) and list any count of 1-4, suppressed value, internal stamp, path or "
        "traceback a recipient could recover (docs/methods.md 3.2). Every shared run does this "
        "itself; use it on a folder that was edited or copied by hand. Exit 1 on a finding.",
    )
    audit.add_argument("folder", type=Path, metavar="OUT")
    mhsds = sub.add_parser(
        "mhsds",
        help="convert NHS Digital MHSDS restrictive-intervention CSVs to the data format",
        description="Read MHSDS monthly statistics files (either published layout, or headerless "
        "period/provider/measure/value extracts; folders are searched for .csv at any depth) "
        "and write "
        "wards.csv, ward_month.csv and events.csv (one ALL ward per provider) to --out.",
    )
    mhsds.add_argument("files", type=Path, nargs="+", metavar="FILES")
    mhsds.add_argument("--out", type=Path, required=True, metavar="DATA", help="folder to write")
    mhsds.add_argument(
        "--ods-map",
        type=Path,
        default=None,
        metavar="CSV",
        help="provider names to ODS codes: a CSV with columns name, code (and optional region)",
    )
    return parser


def _cmd_mhsds(args: argparse.Namespace) -> int:
    from rrp_eval.data.mhsds import MHSDSError, convert_mhsds

    try:
        result = convert_mhsds(args.files, args.ods_map)
    except MHSDSError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"rrp-eval mhsds: {len(exc.problems)} problem(s); nothing was written", file=sys.stderr
        )
        return 2
    for warning in result.warnings:
        print(f"warning: {warning}")
    out = result.write(args.out)
    wm = result.ward_month
    print(
        f"Wrote {len(result.wards)} providers, {wm['month'].nunique()} months "
        f"({wm['month'].min()} to {wm['month'].max()}) and {len(result.events)} events from "
        f"{len(result.files)} files to {out}"
    )
    return 0


def _default_params(given: Path | None) -> Path | None:
    if given is not None:
        return given
    local = Path("params")
    return local if (local / "programme.yaml").is_file() else None


def _cmd_run(args: argparse.Namespace) -> int:
    from rrp_eval.report.suite import EXIT_UNWRITABLE, OutputUnwritable, UnusableInput, run_suite

    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: must be at least 1")
    trusts = [t.strip() for t in args.trusts.split(",") if t.strip()] if args.trusts else None
    if args.pdf:
        from rrp_eval.report.pdf import find_browser

        if find_browser() is None:  # before an hour's run, not after it
            print(
                "rrp-eval run: --pdf needs Chromium, Chrome or Edge to print the pages: install "
                "one (Debian or Ubuntu: apt-get install chromium) or name it in "
                "RRP_EVAL_BROWSER; nothing was run",
                file=sys.stderr,
            )
            return 2
    try:
        summary = run_suite(
            data=args.data,
            params_dir=_default_params(args.params),
            out=args.out,
            trusts=trusts,
            jobs=args.jobs,
            internal=args.internal,
            force=args.force,
            timeout=args.timeout,
            progress=True,
            scheduler=args.scheduler,
            kernels=args.kernels,
            since=args.since,
        )
    except UnusableInput as exc:
        if exc.report is not None:
            for problem in exc.report.errors:
                print(problem, file=sys.stderr)
        print(f"rrp-eval run: {exc}; nothing was written", file=sys.stderr)
        return 2
    except OutputUnwritable as exc:
        print(f"rrp-eval run: error: {exc.strerror}", file=sys.stderr)
        return EXIT_UNWRITABLE
    for trust, message in summary.failed_trusts.items():
        print(f"  failed trusts/{trust}.html (not run): {message}")
    n_bad = sum(r.status != "ok" for r in summary.results) + len(summary.failed_trusts)
    n_reused = sum(r.reused for r in summary.results)
    audit = summary.audit
    if audit is not None:
        withheld = audit.files_with_findings
        print(
            f"Disclosure audit: {audit.files} files, {audit.tables} tables and {audit.figures} "
            f"figures read in {audit.seconds:.1f} s; "
            + (f"{len(withheld)} withheld: {', '.join(withheld)}" if withheld else "no findings")
        )
    print(
        f"{len(summary.results)} notebooks ({n_reused} reused) in {summary.seconds:.0f} s, "
        f"{n_bad} failed; open {summary.out / 'index.html'}"
    )
    if args.pdf:
        from rrp_eval.report.pdf import PdfUnavailable, write_pdfs

        try:
            pdfs = write_pdfs(summary.out, jobs=args.jobs or 2)
        except PdfUnavailable as exc:
            print(f"rrp-eval run: PDFs not written: {exc}", file=sys.stderr)
            return max(summary.exit_code, 1)
        print(f"{len(pdfs)} pages printed to A4 PDF in {summary.out / 'pdf'}")
    return summary.exit_code


def _cmd_audit(args: argparse.Namespace) -> int:
    from rrp_eval.report.audit import audit_outputs

    if not args.folder.is_dir():
        raise ValueError(f"{args.folder}: not a folder")
    report = audit_outputs(args.folder)
    for finding in report.findings:
        print(finding)
    print(
        f"{args.folder}: {report.files} files, {report.tables} tables and {report.figures} "
        f"figures read in {report.seconds:.1f} s; "
        + (
            f"{len(report.findings)} finding(s) in {', '.join(report.files_with_findings)}"
            if report.findings
            else "no findings"
        )
    )
    return 0 if report.ok else 1


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from rrp_eval.data.synthetic import write_demo_programme

    out = write_demo_programme(args.out_dir, seed=args.seed)
    print(f"Wrote the demonstration programme (seed {args.seed}) to {out}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from rrp_eval.evaluate import planning

    try:
        follow_up = [int(f) for f in str(args.follow_up).split(",") if f.strip()]
    except ValueError:
        print(
            f"rrp-eval plan: --follow-up {args.follow_up}: use whole months, e.g. 12,24",
            file=sys.stderr,
        )
        return 2
    if not follow_up or min(follow_up) < 1 or args.sims < 10:
        print(
            "rrp-eval plan: --follow-up months must be positive and --sims at least 10",
            file=sys.stderr,
        )
        return 2
    if (args.rate is None) != (args.bed_days is None):
        print("rrp-eval plan: a stated plan needs both --rate and --bed-days", file=sys.stderr)
        return 2
    if args.rate is not None:
        from rrp_eval.params import ProgrammeParams

        frames = {
            f: planning.stated_frame(
                args.rate,
                args.bed_days,
                args.months_before,
                f,
                args.dispersion,
                args.autocorrelation,
            )
            for f in follow_up
        }
        plans = [
            planning.plan_frames(frames, ProgrammeParams().for_trust("stated"), n_sims=args.sims)
        ]
    else:
        plans = planning.plan_programme(
            args.data,
            _default_params(args.params),
            trusts=args.trusts.split(",") if args.trusts else None,
            measure=args.measure,
            follow_up=follow_up,
            n_sims=args.sims,
            jobs=args.jobs,
            progress=True,
        )
    tables = planning.plan_tables(plans, tau=args.tau)
    print(planning.plan_text(plans, tables, tau=args.tau))
    if args.out is not None:
        import pandas as pd

        from rrp_eval.report.export import csv_text
        from rrp_eval.report.manifest import write_atomic

        write_atomic(args.out, csv_text(pd.concat(tables.values(), ignore_index=True)))
        print(f"written {args.out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from rrp_eval.data.load import load_raw
    from rrp_eval.data.validate import validate_programme
    from rrp_eval.params import load_params

    params = load_params(args.params)
    data, report = validate_programme(load_raw(args.data), params)
    for problem in report.problems:
        print(problem)
    if data is not None:
        print(
            f"{args.data}: {len(data.trusts)} trusts, {len(data.wards)} wards, "
            f"{len(data.ward_month)} ward-months; measures: {', '.join(data.measures)}"
        )
    print(f"{args.data}: {report.summary()}")
    return 0 if report.ok else 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rrp-eval``; returns the exit code (SPEC §4)."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    commands = {
        "run": _cmd_run,
        "demo-data": _cmd_demo_data,
        "validate": _cmd_validate,
        "plan": _cmd_plan,
        "mhsds": _cmd_mhsds,
        "audit": _cmd_audit,
    }
    try:
        return commands[args.command](args)
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"rrp-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
