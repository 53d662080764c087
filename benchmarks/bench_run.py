"""Wall time of the whole run on the demonstration programme, per stage, and report sizes.

Run: .venv/bin/python benchmarks/bench_run.py [--jobs N] [--trusts X01,X02]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rrp_eval.report.suite import run_suite

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--trusts", default=None)
    args = parser.parse_args()
    trusts = args.trusts.split(",") if args.trusts else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        summary = run_suite(params_dir=ROOT / "params", out=out, trusts=trusts, jobs=args.jobs)
        wall = time.perf_counter() - t0
        manifest = json.loads((out / "run.json").read_text())
        per_trust = [r.seconds for r in summary.results if r.task.stage.startswith("20")]
        sizes = {p.relative_to(out): p.stat().st_size for p in out.rglob("*.html")}
        trust_sizes = [v for k, v in sizes.items() if str(k).startswith("trusts/")]
        print(
            f"run on the demonstration programme: {len(summary.results)} notebooks, "
            f"jobs={manifest['parameters']['jobs']}, exit code {summary.exit_code}"
        )
        print(f"  wall time             {wall:7.1f} s")
        print(f"  tables (main process) {manifest['timings_seconds']['tables']:7.1f} s")
        print(
            f"  trust notebook        {statistics.median(per_trust):7.1f} s median "
            f"({min(per_trust):.1f}-{max(per_trust):.1f}), execution + HTML"
        )
        for name in ("index.html", "programme.html", "data_quality.html"):
            print(f"  {name:<21} {sizes[Path(name)] / 1024:7.0f} KB")
        print(f"  trust report          {statistics.median(trust_sizes) / 1024:7.0f} KB median")


if __name__ == "__main__":
    main()
