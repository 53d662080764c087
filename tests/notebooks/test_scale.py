"""The scale benchmark's smallest programme (14 trusts, about 200 wards) run end to end on a Dask
``LocalCluster`` with more workers than the machine's cores, unchanged (issue 20), and its
tables checked against the same fits made one by one."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("scale", ROOT / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scale_benchmark_runs_on_a_local_dask_cluster_and_its_tables_equal_direct_fits(
    tmp_path,
):
    distributed = pytest.importorskip("distributed")
    import rrp_eval as rrp
    from rrp_eval.evaluate.programme import fit_panel_measure
    from rrp_eval.evaluate.trust import evaluate_trust

    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        figures = _benchmark().one(14, 2, cluster.scheduler_address, keep=tmp_path)
    assert figures["failed"] == [] and figures["exit_code"] == 0
    assert figures["wards"] > 150 and figures["ward_months"] > 9000
    assert figures["panel_fits_sum_s"] > 0  # the panel fits ran as tasks and were timed

    programme = rrp.load_programme(tmp_path / "data", ROOT / "params")
    params = programme.params
    table = pd.read_csv(tmp_path / "out" / "tables" / "programme_effects.csv")
    for measure in ("restrictive_practice", "seclusion"):
        direct = fit_panel_measure(programme, params, measure).rows()
        got = table[(table["measure"] == measure) & table["method"].isin(direct["method"])]
        merged = got.merge(direct, on=["measure", "effect", "method"], suffixes=("", "_direct"))
        assert len(merged) == len(direct) > 0
        for col in ("estimate", "ci_low", "ci_high"):
            np.testing.assert_allclose(merged[col], merged[f"{col}_direct"], rtol=1e-5)
    its = pd.read_csv(tmp_path / "out" / "tables" / "its_effects.csv")
    m = "restrictive_practice"
    for code in sorted(its["trust_code"].unique())[:2]:
        row = evaluate_trust(programme, code, params).its[m].row()
        got = its[(its["trust_code"] == code) & (its["measure"] == m)].iloc[0]
        assert got["status"] == row["status"]
        for col in ("level_rr", "level_rr_low", "rr_h", "rr_h_high"):
            if isinstance(row[col], float) and math.isfinite(row[col]):
                assert got[col] == pytest.approx(row[col], rel=1e-5)
