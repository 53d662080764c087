"""Median time of one ITS fit on a 48-month series, per family and option.

Run: .venv/bin/python benchmarks/bench_its.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd

from rrp_eval.data.synthetic import simulate_series
from rrp_eval.models.its import fit_its

CASES = {
    "poisson": {"family": "poisson", "harmonics": 0},
    "quasipoisson": {"family": "quasipoisson", "harmonics": 0},
    "negbin": {"family": "negbin", "harmonics": 0},
    "gaussian (rate)": {"family": "gaussian", "outcome": "rate", "exposure": None, "harmonics": 0},
    "auto + 2 harmonics, model-based": {"family": "auto"},
    "auto + 2 harmonics + Newey-West": {"family": "auto", "cov_type": "hac"},
    "auto + 2 harmonics + AR(1) (trust default)": {"family": "auto", "cov_type": "ar1"},
    "negbin + 2 harmonics + AR(1)": {"family": "negbin", "cov_type": "ar1"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    df = simulate_series(seed=1, nb_alpha=0.05, seasonal_amplitude=0.1)
    df["rate"] = df["count"] / df["occupied_bed_days"] * 1000
    base = {
        "outcome": "count",
        "time": "month",
        "start": "2022-01",
        "exposure": "occupied_bed_days",
    }
    rows = []
    for name, kwargs in CASES.items():
        opts = base | kwargs
        fit_its(df, **opts)  # warm-up: imports and caches
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fit_its(df, **opts)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "case": name,
                "median_ms": 1000 * statistics.median(times),
                "p90_ms": 1000 * sorted(times)[int(0.9 * len(times))],
            }
        )
    print(f"fit_its on a 48-month series, {args.repeat} repeats per case")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.1f"))


if __name__ == "__main__":
    main()
