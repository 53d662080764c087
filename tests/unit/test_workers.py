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
