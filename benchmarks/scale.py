"""Scale benchmark (issue 20): synthetic programmes of 14, 50 and 150 trusts (about 15 wards a
trust, 48 months; ``rrp_eval.data.synthetic.scaled_programme``) run end to end with
``--jobs 2``; prints per programme the wall time, CPU time and peak memory of the run and of
its stages as the run records them, and the cost per ward-month.

Each programme runs in its own child process, so that peak resident memory (``ru_maxrss``) is
that programme's: the main process (validation, the panel fits, the index, the audit) and the
largest worker or kernel.

Run: .venv/bin/python benchmarks/scale.py [--trusts 14,50,150] [--jobs 2] [--scheduler ADDRESS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(n_trusts: int, jobs: int, scheduler: str | None, keep: Path | None = None) -> dict:
    """Run one programme in this process and return its figures (the data and the outputs are
    left in ``keep``, as ``data`` and ``out``, when it is given; in a temporary folder else)."""
    from rrp_eval.data.synthetic import scaled_programme
    from rrp_eval.data.validate import load_programme
    from rrp_eval.report.suite import run_suite

    folder = contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory()
    with folder as tmp:
        data = scaled_programme(n_trusts).write(Path(tmp) / "data")
        t0, c0 = time.perf_counter(), time.process_time()
        programme = load_programme(data)
        validate = (time.perf_counter() - t0, time.process_time() - c0)
        wards, ward_months = len(programme.wards), len(programme.ward_month)
        del programme
        t0 = time.perf_counter()
        summary = run_suite(data=data, out=Path(tmp) / "out", jobs=jobs, scheduler=scheduler)
        wall = time.perf_counter() - t0
        manifest = json.loads((Path(tmp) / "out" / "run.json").read_text())
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    timings = manifest["timings_seconds"]
    trust_nb = [v for k, v in timings.items() if k.startswith("20_")]
    return {
        "trusts": n_trusts,
        "wards": wards,
        "ward_months": ward_months,
        "exit_code": summary.exit_code,
        "failed": [f"{r.task.html}: {r.message}" for r in summary.results if r.status != "ok"]
        + [f"trusts/{t}.html: {m}" for t, m in summary.failed_trusts.items()]
        + (
            [f"audit: {', '.join(summary.audit.files_with_findings)}"]
            if summary.audit is not None and summary.audit.files_with_findings
            else []
        ),
        "wall_s": wall,
        "cpu_main_s": self_.ru_utime + self_.ru_stime,
        "cpu_children_s": children.ru_utime + children.ru_stime,
        "peak_main_mib": self_.ru_maxrss / 1024,
        "peak_child_mib": children.ru_maxrss / 1024,
        # kernels are the workers' grandchildren: the run records each one's peak
        "peak_kernel_mib": max(
            (o.get("peak_mib", {}).get("kernel", 0.0) for o in manifest["outputs"].values()),
            default=0.0,
        ),
        "validate_s": validate[0],
        "trust_notebooks_sum_s": sum(trust_nb),
        "trust_notebook_max_s": max(trust_nb, default=0.0),
        "panel_fits_sum_s": sum(v for k, v in timings.items() if k.startswith("panel_")),
        "panel_fit_max_s": max(
            (v for k, v in timings.items() if k.startswith("panel_")), default=0.0
        ),
        "tables_s": timings.get("tables", float("nan")),
        "programme_notebook_s": timings.get("30_programme_evaluation_programme", float("nan")),
        "audit_s": summary.audit.seconds if summary.audit is not None else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", default="14,50,150")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.jobs, args.scheduler)))
        return
    rows = []
    for n in (int(x) for x in args.trusts.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--jobs", str(args.jobs)]
        if args.scheduler:
            cmd += ["--scheduler", args.scheduler]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{n} trusts: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"{r['trusts']:>4} trusts {r['wards']:>5} wards {r['ward_months']:>7} ward-months: "
            f"wall {r['wall_s']:7.1f} s, CPU main {r['cpu_main_s']:7.1f} s + workers "
            f"{r['cpu_children_s']:7.1f} s, peak main {r['peak_main_mib']:6.0f} MiB, largest "
            f"child {r['peak_child_mib']:6.0f} MiB, largest kernel {r['peak_kernel_mib']:6.0f} "
            f"MiB, exit {r['exit_code']}",
            flush=True,
        )
        print(
            f"      validate {r['validate_s']:.1f} s; trust notebooks "
            f"{r['trust_notebooks_sum_s']:.0f}"
            f" s summed (longest {r['trust_notebook_max_s']:.1f} s); panel fits "
            f"{r['panel_fits_sum_s']:.1f} s summed (longest {r['panel_fit_max_s']:.1f} s); "
            "tables written at "
            f"{r['tables_s']:.0f} s; programme notebook {r['programme_notebook_s']:.0f} s; audit "
            f"{r['audit_s']:.1f} s; {1e3 * r['wall_s'] / r['ward_months']:.1f} ms per ward-month",
            flush=True,
        )
        for line in r["failed"]:
            print(f"      failed: {line}", flush=True)


if __name__ == "__main__":
    main()
