"""Command line: ``rrp-eval``, a thin layer over package functions."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import rrp_eval
from rrp_eval.data.synthetic import DEMO_SEED

DEFAULT_OUT = Path("outputs") / "demo"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrp-eval",
        description="Evaluate programmes that reduce restrictive practice (SPC, ITS, pooling).",
    )
    parser.add_argument("--version", action="version", version=f"rrp-eval {rrp_eval.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="the main job (now: the ITS core on simulated trusts with known effects)",
        description="Fit the interrupted time-series model to simulated trusts with known "
        "effects and write OUT/tables/its_effects.csv, OUT/truth.json and OUT/run.json.",
    )
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (%(default)s)")
    run.add_argument("--seed", type=int, default=2024, help="simulation seed (%(default)s)")

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
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from rrp_eval.report.demo_its import run_demo_its

    table = run_demo_its(args.out, seed=args.seed)
    print(f"ITS on {len(table)} simulated trusts (estimate, 95% CI; truth):")
    for row in table.itertuples():
        print(
            f"  {row.trust_code} {row.measure}: level RR {row.level_rr:.3f} "
            f"({row.level_rr_low:.3f}-{row.level_rr_high:.3f}; true {row.true_level_rr:.2f}), "
            f"slope RR {row.slope_rr:.4f} ({row.slope_rr_low:.4f}-{row.slope_rr_high:.4f}; "
            f"true {row.true_slope_rr:.2f})"
        )
    print(f"Wrote {args.out / 'tables' / 'its_effects.csv'} and {args.out / 'run.json'}")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from rrp_eval.data.synthetic import write_demo_programme

    out = write_demo_programme(args.out_dir, seed=args.seed)
    print(f"Wrote the demonstration programme (seed {args.seed}) to {out}")
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
    commands = {"run": _cmd_run, "demo-data": _cmd_demo_data, "validate": _cmd_validate}
    try:
        return commands[args.command](args)
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"rrp-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
