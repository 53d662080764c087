"""What the planning answers cost: a trust's detectability (the run's power for the aim, 100
simulated evaluations) and a trust's plan (every follow-up × rate ratio), on the demonstration
programme, one process, one BLAS thread.

Run: .venv/bin/python benchmarks/plan.py [--trusts X01,X02,X03] [--sims 100] [--plan-sims 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
from threadpoolctl import threadpool_limits

import rrp_eval as rrp
from rrp_eval.evaluate.planning import FOLLOW_UP, RR_GRID, _detectability, plan_trust
from rrp_eval.prepare import trust_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", default="")
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--plan-sims", type=int, default=50)
    args = parser.parse_args()
    programme = rrp.load_programme()
    params = programme.params
    codes = args.trusts.split(",") if args.trusts else list(programme.trusts)
    measure = params.primary.measure
    rows = []
    with threadpool_limits(limits=1):
        for code in codes:
            own = programme.only_trust(code)
            t0 = time.perf_counter()
            d = _detectability(own, code, params, measure, 0.75, args.sims)
            t1 = time.perf_counter()
            plan_trust(programme, code, params, measure, FOLLOW_UP, n_sims=args.plan_sims)
            t2 = time.perf_counter()
            cells = len(FOLLOW_UP) * len({*RR_GRID, 0.75, 0.67})
            rows.append(
                {
                    "trust": code,
                    "design": trust_design(programme, code).kind,
                    "power_25": d.power,
                    "detectability_s": t1 - t0,
                    "ms_per_fit": 1000 * (t1 - t0) / args.sims,
                    "plan_s": t2 - t1,
                    "plan_fits": cells * args.plan_sims,
                }
            )
    table = pd.DataFrame(rows)
    print(
        f"demonstration programme, {measure}: detectability {args.sims} simulations a trust; "
        f"plan {len(FOLLOW_UP)} follow-ups x {len({*RR_GRID, 0.75, 0.67})} ratios x "
        f"{args.plan_sims} simulations"
    )
    print(table.to_string(index=False, float_format="%.2f"))
    print(
        f"median detectability {statistics.median(table['detectability_s']):.1f} s a trust "
        f"(total {table['detectability_s'].sum():.0f} s of CPU for {len(table)} trusts); "
        f"median plan {statistics.median(table['plan_s']):.0f} s a trust"
    )


if __name__ == "__main__":
    main()
