"""Command line: ``rrp-eval``, a thin layer over package functions."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import rrp_eval

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rrp-eval``; returns the exit code (SPEC §4)."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    commands = {"run": _cmd_run}
    try:
        return commands[args.command](args)
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"rrp-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
