"""Local workers use one BLAS thread each (the run already keeps every core busy)."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_info

from rrp_eval.report.execute import BLAS_THREAD_VARIABLES, executor


def _blas_threads() -> tuple[list[int], dict[str, str | None]]:
    threads = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return threads, {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}


def test_a_worker_runs_blas_on_one_thread():
    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # BLAS loaded before the fork, as in a run
    with executor(1, None) as submit:
        threads, env = submit(_blas_threads).result()
    assert threads and set(threads) == {1}
    assert set(env.values()) == {"1"}  # kernels the worker starts inherit the limit


def test_fits_give_the_same_digits_whatever_the_thread_count():
    """The GEE's robust intervals moved in the fifth significant digit between one and two
    OpenBLAS threads; the evaluations run on one, so the caller's setting does not matter."""
    import tempfile
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from rrp_eval.data.synthetic import write_demo_programme
    from rrp_eval.data.validate import load_programme
    from rrp_eval.evaluate.programme import fit_panel
    from rrp_eval.params import ProgrammeParams
    from rrp_eval.prepare import with_derived_measures
    from rrp_eval.report.export import csv_text

    data = with_derived_measures(load_programme(write_demo_programme(Path(tempfile.mkdtemp()))))
    params = ProgrammeParams()
    seen = set()
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            seen.add(csv_text(fit_panel(data, params).rows()))
    assert len(seen) == 1
