"""Batch benchmark (issue 9), one run each on the demonstration programme:

(a) the usual way: papermill's command line then nbconvert's, one notebook after another;
(b) ``rrp-eval run --jobs 2`` from scratch (``--force``), warm kernels (the default), and the
    same with ``--kernels cold`` for comparison;
(c) the floor: papermill's API running an imports-only notebook once per notebook in 2 processes;
(d) ``rrp-eval run --jobs 2`` again with nothing changed.

W is the notebooks' own cell time (papermill's per-cell durations summed over every notebook of
(b), and of (b') for the cold ratio: a cold kernel's first cell also pays the imports).
Targets: (b) - W/2 within 1.3x of (c) cold, below (c) warm; (b) at least 2x faster than (a);
(d) under 5% of (b); peak memory per worker under 500 MiB.

Run: .venv/bin/python benchmarks/batch.py [--trusts X01,X02,...] [--skip-usual]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTEBOOKS = ROOT / "notebooks"


def _timed(cmd: list[str], **kw) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.perf_counter() - t0


def _cell_time(executed: Path) -> float:
    nb = nbformat.read(executed, as_version=4)
    return sum(
        float(c.metadata.get("papermill", {}).get("duration") or 0.0)
        for c in nb.cells
        if c.cell_type == "code"
    )


def _floor_one(path: str) -> None:
    import papermill as pm

    out = Path(path).with_name(f"out-{os.getpid()}-{time.perf_counter_ns()}.ipynb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # kernel start-up chatter, as rrp-eval sends it to logs/
    os.close(devnull)
    for attempt in range(2):  # as rrp-eval does, one more start for a kernel that died at once
        try:
            pm.execute_notebook(path, str(out), kernel_name="python3", progress_bar=False)
            return
        except RuntimeError:
            if attempt:
                raise


def _imports_only(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import rrp_eval as rrp\nfrom rrp_eval import show"))
    path = folder / "imports_only.ipynb"
    nbformat.write(nb, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", default=None, help="comma-separated (default: all)")
    parser.add_argument("--skip-usual", action="store_true", help="leave out (a), the slowest")
    args = parser.parse_args()
    from rrp_eval.data.synthetic import demo_data_path

    data = demo_data_path()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "b"
        run = [str(BIN / "rrp-eval"), "run", "--data", str(data), "--params", str(ROOT / "params")]
        run += ["--out", str(out), "--jobs", "2"]
        if args.trusts:
            run += ["--trusts", args.trusts]
        b_cold = _timed([*run, "--force", "--kernels", "cold"])
        w_cold = sum(_cell_time(p) for p in (out / "notebooks").glob("*.ipynb"))
        b = _timed([*run, "--force"])
        manifest = json.loads((out / "run.json").read_text())
        kernels = sorted({v.get("kernel", "") for v in manifest["outputs"].values()} - {""})
        executed = sorted((out / "notebooks").glob("*.ipynb"))
        w = sum(_cell_time(p) for p in executed)
        n = len(executed)
        d = _timed(run)
        peaks = [v.get("peak_mib", {}) for v in manifest["outputs"].values() if "peak_mib" in v]
        worker_peak = max((p.get("worker", 0) for p in peaks), default=float("nan"))
        kernel_peak = max((p.get("kernel", 0) for p in peaks), default=float("nan"))
        template_peak = max((p.get("template", 0) for p in peaks), default=0)
        # (c) the floor
        floor_nb = _imports_only(tmp)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_floor_one, [str(floor_nb)] * n))
        c = time.perf_counter() - t0
        # (a) the usual way
        a = float("nan")
        if not args.skip_usual:
            usual = tmp / "a"
            usual.mkdir()
            t0 = time.perf_counter()
            for path in executed:
                stage, _, name = path.stem.partition("_evaluation_")
                if not name:
                    stage, name = path.stem.rsplit("_", 1)
                else:
                    stage = f"{stage}_evaluation"
                params = ["-p", "data", str(data), "-p", "params_dir", str(ROOT / "params")]
                if stage.startswith("20"):
                    params += ["-p", "trust_code", name]
                target = usual / path.name
                papermill = [str(BIN / "papermill"), str(NOTEBOOKS / f"{stage}.ipynb")]
                subprocess.run(
                    [*papermill, str(target), *params, "--cwd", str(NOTEBOOKS)],
                    check=True,
                    capture_output=True,
                )
                subprocess.run(
                    [str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(target)],
                    check=True,
                    capture_output=True,
                )
            a = time.perf_counter() - t0
    rows = [
        ("notebooks", f"{n}"),
        ("W, cell time summed, warm / cold kernels (s)", f"{w:.1f} / {w_cold:.1f}"),
        ("(a) usual way, sequential CLI (s)", f"{a:.1f}"),
        ("(b) rrp-eval run --jobs 2 (s)", f"{b:.1f}"),
        ("    kernels", ", ".join(kernels)),
        ("(b') the same with --kernels cold (s)", f"{b_cold:.1f}"),
        ("(c) floor: imports-only x n, 2 processes (s)", f"{c:.1f}"),
        ("(d) unchanged re-run (s)", f"{d:.1f}"),
        (
            "peak RSS: worker / largest kernel / template (MiB)",
            f"{worker_peak:.0f} / {kernel_peak:.0f} / {template_peak:.0f}",
        ),
        ("", ""),
        ("(b) - W/2 vs (c): ratio [target < 1 with warm kernels]", f"{(b - w / 2) / c:.2f}"),
        ("(b') - W/2 vs (c): ratio [target <= 1.3]", f"{(b_cold - w_cold / 2) / c:.2f}"),
        ("(a) / (b) [target >= 2]", f"{a / b:.2f}"),
        ("(a) / (b') [target >= 2]", f"{a / b_cold:.2f}"),
        ("(d) / (b) [target < 0.05]", f"{d / b:.3f}"),
        ("worker peak [target < 500 MiB]", f"{worker_peak:.0f} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
