"""What the recoverability audit (issue 14) adds to a shared run.

Times ``audit_outputs`` on shared output folders (best and median of ``--repeat`` runs, in this
process after a first warm-up read), with what it read, and the share of the run it adds (from
the folder's ``run.json``). Without folders it runs the demonstration programme first.

Run: .venv/bin/python benchmarks/audit.py [OUT ...] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rrp_eval.report.audit import audit_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folders = args.folders
    if not folders:
        out = Path(tempfile.mkdtemp()) / "demo"
        subprocess.run(
            [sys.executable, "-m", "rrp_eval.cli", "run", "--out", str(out), "--jobs", "2"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        folders = [out]
    print(
        f"{'folder':<28} {'files':>6} {'tables':>7} {'figures':>8} {'best s':>7} {'median s':>9}"
        f" {'run s':>6} {'share':>6} findings"
    )
    for folder in folders:
        audit_outputs(folder)  # warm: imports and the first read
        times, report = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = audit_outputs(folder)
            times.append(time.perf_counter() - t0)
        assert report is not None
        manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        run_s = float(manifest.get("timings_seconds", {}).get("total", float("nan")))
        best = min(times)
        print(
            f"{folder.name:<28} {report.files:>6} {report.tables:>7} {report.figures:>8} "
            f"{best:>7.2f} {statistics.median(times):>9.2f} {run_s:>6.0f} "
            f"{best / run_s:>6.1%} {len(report.findings)}"
        )


if __name__ == "__main__":
    main()
