"""Simulation check: bias and 95% coverage of each trust's ITS level change (issue 7 follow-up).

The programme-level study (``programme_coverage.py``) found the meta-analysis of trusts' ITS
overstating the reduction by about 2%. This script looks one level down: for every trust of
``demo_programme(seed, fixed_roles=False)`` it fits the trust ITS for physical restraint with
the default rule, with the rule before the composition check (summed whenever the wards share
a start) and with every summed design forced to the stacked ward design, and compares the log
level change with that trust's true one. The two trusts whose ward composition changes (X07:
a ward reporting only from 2020-07; X04: a ward cut from 20 to 8 beds in 2021-04) are shown
apart.

Run: .venv/bin/python validation/trust_its_bias.py [--programmes 60] [--jobs 2]
Prints the table quoted in docs/methods.md §1.7.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

import rrp_eval.evaluate.trust as evaluation
from rrp_eval.data.synthetic import demo_programme
from rrp_eval.data.validate import load_programme
from rrp_eval.params import ProgrammeParams

MEASURE = "physical_restraint"
QUIRKS = ("X04", "X07")
_default_design = evaluation.trust_design


def _always_stacked(data, trust_code, exclude=()):
    design = _default_design(data, trust_code, exclude)
    return dataclasses.replace(design, kind="stacked") if design.kind == "summed" else design


def _composition_ignored(data, trust_code, exclude=()):
    """The rule before: summed whenever the participating wards share a start."""
    design = _default_design(data, trust_code, exclude)
    if design.composition and len(design.starts) == 1:
        return dataclasses.replace(design, kind="summed")
    return design


def replicate(seed: int) -> list[dict]:
    warnings.simplefilter("ignore")
    prog = demo_programme(seed, fixed_roles=False)
    with tempfile.TemporaryDirectory() as tmp:
        prog.write(tmp)
        data = load_programme(tmp)
    params = ProgrammeParams(horizon_months=12)
    out = []
    rules = (
        ("default", _default_design),
        ("composition ignored", _composition_ignored),
        ("always stacked", _always_stacked),
    )
    for rule, design in rules:
        evaluation.trust_design = design
        try:
            for trust in data.trusts:
                true = math.log(prog.truth["trusts"][trust]["measures"][MEASURE]["level_rr"])
                m = evaluation.fit_trust_its(data, trust, MEASURE, params.for_trust(trust))
                r = m.row()
                if r["status"] != "ok":
                    continue
                out.append(
                    {
                        "seed": seed,
                        "rule": rule,
                        "trust": trust,
                        "design": r["design"],
                        "error": math.log(r["level_rr"]) - true,
                        "covered": r["level_rr_low"] <= math.exp(true) <= r["level_rr_high"],
                    }
                )
        finally:
            evaluation.trust_design = _default_design
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programmes", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        seeds = range(3000, 3000 + args.programmes)
        d = pd.DataFrame([r for rows in pool.map(replicate, seeds) for r in rows])
    d["trusts"] = d["trust"].map(lambda t: t if t in QUIRKS else "the other 12")
    table = d.groupby(["rule", "trusts"]).agg(
        fits=("error", "size"),
        bias=("error", "mean"),
        bias_se=("error", "sem"),
        coverage=("covered", "mean"),
    )
    overall = d.groupby("rule").agg(
        fits=("error", "size"),
        bias=("error", "mean"),
        bias_se=("error", "sem"),
        coverage=("covered", "mean"),
    )
    print(f"{args.programmes} programmes, log level change of each trust's ITS, {MEASURE}")
    print(table.round(3).to_string())
    print(overall.round(3).to_string())
    designs = d[d["rule"] == "default"].groupby("trust")["design"].agg(lambda s: s.mode()[0])
    print(designs.to_string())


if __name__ == "__main__":
    main()
