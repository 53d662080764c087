"""What the planning answers cost: a trust's detectability (the run's power for the aim, up
to 100 simulated evaluations, 25 at a time until the verdict is settled) and a trust's plan
(every follow-up × rate ratio), on the demonstration programme, one process, one BLAS thread.
``--compare`` also makes all 100 simulations for each trust and prints both verdicts;
``--plan-sims 0`` skips the plans.

Run: .venv/bin/python benchmarks/plan.py [--trusts X01,X02,X03] [--sims 100] [--plan-sims 50]
[--compare]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import pandas as pd
from threadpoolctl import threadpool_limits

import rrp_eval as rrp
from rrp_eval.evaluate.planning import (
    FOLLOW_UP,
    RR_GRID,
    _detectability,
    _seed,
    plan_frame,
    plan_trust,
    power_cell,
)
from rrp_eval.prepare import trust_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", default="")
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--plan-sims", type=int, default=50)
    parser.add_argument("--compare", action="store_true")
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
            if args.plan_sims:
                plan_trust(programme, code, params, measure, FOLLOW_UP, n_sims=args.plan_sims)
            t2 = time.perf_counter()
            cells = len(FOLLOW_UP) * len({*RR_GRID, 0.75, 0.67})
            row = {
                "trust": code,
                "design": trust_design(programme, code).kind,
                "power_25": d.power,
                "sims": d.n_sims,
                "verdict": d.verdict,
                "detectability_s": t1 - t0,
                "ms_per_fit": 1000 * (t1 - t0) / max(d.n_sims, 1),
                "plan_s": t2 - t1,
                "plan_fits": cells * args.plan_sims,
            }
            if args.compare and d.n_sims:
                frame = plan_frame(own, code, measure, params)
                own_params = params.for_trust(code)
                full = power_cell(frame, own_params, 0.75, args.sims, _seed(code, measure, 0.75))
                row["power_all"] = full.power
                row["verdict_all"] = dataclasses.replace(d, power=full.power).verdict
            rows.append(row)
    table = pd.DataFrame(rows)
    print(
        f"demonstration programme, {measure}: detectability up to {args.sims} simulations a trust; "
        f"plan {len(FOLLOW_UP)} follow-ups x {len({*RR_GRID, 0.75, 0.67})} ratios x "
        f"{args.plan_sims} simulations"
    )
    print(table.to_string(index=False, float_format="%.2f"))
    print(
        f"simulations made: {table['sims'].sum()} of {args.sims * len(table)}; "
        f"median detectability {statistics.median(table['detectability_s']):.1f} s a trust "
        f"(total {table['detectability_s'].sum():.0f} s of CPU for {len(table)} trusts); "
        f"median plan {statistics.median(table['plan_s']):.0f} s a trust"
    )


if __name__ == "__main__":
    main()
