"""Simulation study: bias, coverage and size of the programme's pooled estimators (issues 7, 16).

Each replicate is a simulated programme shaped like the demonstration one: 14 trusts, 4-6
wards each across nine ward types, comparison wards that never join (in 7 trusts), 48 months,
three waves and one trust whose wards join one by one; seasonality, a secular decline,
negative-binomial over-dispersion and latent AR(1) noise per ward. The measure is physical
restraint. Scenarios (issue 16) violate each method's assumptions in turn:

- ``base``: every trust's log level and slope change drawn from N(-0.223, 0.12²) and
  N(-0.008, 0.004²): the assumptions of every method hold (the study of issue 7).
- ``no_effect``: no effect anywhere (type I error).
- ``trends_null``: no effect, but participating wards' rates fall 0.8% a month faster than
  comparison wards' (acute wards falling nationally): parallel trends fail.
- ``anticipation``: wards begin to change 3 months before they join (half the level).
- ``spillover``: comparison wards in participating trusts get half the trust's effect.
- ``ramp``: the effect builds linearly over the first 6 months to the trust's level, no slope.
- ``decay``: the level fades with a half-life of 12 months (no slope).
- ``skewed``: trust log levels from a skewed distribution (mean -0.223, SD 0.2, a long tail of
  large reductions) and slopes as in ``base``.

Estimators: random-effects meta-analysis of the trusts' ITS (DerSimonian-Laird, Paule-Mandel,
REML, each with the normal and the modified Hartung-Knapp interval), the pooled GEE on
participating wards, the controlled extended TWFE Poisson model (Wooldridge 2023) and Callaway &
Sant'Anna on rates (level at month 0 and the 12-month effect only).

Each estimator is scored against its own estimand, computed from the generating effects of
the replicate:

- the meta-analysis: the mean over trusts of each trust's log effect (its level at h = 0, its
  monthly slope, its effect at h = 12);
- the GEE and the extended TWFE model: the mean over participating wards of the ward's log
  effect (both weight wards: the TWFE by cohort size, the GEE by events);
- Callaway & Sant'Anna: the ratio of the participating wards' mean expected rate with the
  effect to their mean expected rate without it, at event time 0 and 12.

Run: .venv/bin/python validation/programme_coverage.py [--programmes 100] [--jobs 2]
Writes validation/programme_coverage.csv and validation/programme_coverage.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from rrp_eval.data.synthetic import (
    AR_RHO,
    AR_SD,
    NB_ALPHA,
    PROGRAMME_LOG_LEVEL,
    PROGRAMME_LOG_SLOPE,
    SEASON_AMPLITUDE,
    SECULAR_TREND,
    WARD_SD,
    WARD_TYPE_PROFILE,
    WAVES,
)
from rrp_eval.data.validate import load_programme
from rrp_eval.evaluate.tables import its_effects_table
from rrp_eval.evaluate.trust import fit_trust_its
from rrp_eval.models.controlled import callaway_santanna, etwfe_poisson, event_time_panel
from rrp_eval.models.meta import pooled_gee, programme_effects
from rrp_eval.params import ProgrammeParams

HERE = Path(__file__).resolve().parent
MEASURE = "physical_restraint"
HORIZON = 12
MONTHS = pd.date_range("2020-01-01", periods=48, freq="MS")
SCENARIOS = (
    "base",
    "no_effect",
    "trends_null",
    "anticipation",
    "spillover",
    "ramp",
    "decay",
    "skewed",
)
TYPES = tuple(WARD_TYPE_PROFILE)
TREND_GAP = math.log(0.992)  # trends_null: participating wards fall this much more a month
RECOMMENDED = "random_effects_reml_hk"


def _effect(scenario: str, level: float, slope: float, h: np.ndarray) -> np.ndarray:
    """A ward's log effect at months ``h`` since it joined (negative before joining)."""
    if scenario in ("no_effect", "trends_null"):
        return np.zeros(len(h))
    if scenario == "ramp":
        return np.where(h >= 0, level * np.minimum(1.0, (h + 1) / 6), 0.0)
    if scenario == "decay":
        return np.where(h >= 0, level * 0.5 ** (np.maximum(h, 0) / 12), 0.0)
    out = np.where(h >= 0, level + slope * np.maximum(h, 0), 0.0)
    if scenario == "anticipation":
        out = np.where((h >= -3) & (h < 0), level / 2, out)
    return out


def simulate_programme(scenario: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One programme of ``scenario``: ``wards``, ``ward_month`` and the estimands' truths
    (log scale; see the module docstring)."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    n = len(MONTHS)
    t = np.arange(n)
    season = SEASON_AMPLITUDE * np.cos(2 * np.pi * (MONTHS.month.to_numpy() - 1) / 12)
    waves = list(WAVES.values())
    wards, frames = [], []
    trust_truth: dict[str, list] = {"level_rr": [], "slope_rr": [], "rr_h": []}
    ward_truth: dict[str, list] = {"level_rr": [], "slope_rr": [], "rr_h": []}
    cs_rates = {0: [0.0, 0.0], HORIZON: [0.0, 0.0]}  # with, without the effect
    type_pos = 0
    for k in range(14):
        code = f"T{k + 1:02d}"
        n_wards = 4 + (k % 3)
        if scenario == "skewed":
            sigma = 0.2
            level = PROGRAMME_LOG_LEVEL[0] - sigma * (rng.exponential() - 1.0)
        else:
            level = rng.normal(*PROGRAMME_LOG_LEVEL)
        slope = rng.normal(*PROGRAMME_LOG_SLOPE)
        if scenario in ("ramp", "decay"):
            slope = 0.0
        wave = waves[k % 3]
        staggered = k == 2
        h_true = np.array([0, 1, HORIZON])
        f = _effect(scenario, level, slope, h_true)
        trust_truth["level_rr"].append(f[0])
        trust_truth["slope_rr"].append(f[1] - f[0])
        trust_truth["rr_h"].append(f[2])
        for j in range(n_wards):
            ward_type = TYPES[type_pos % len(TYPES)]
            type_pos += 1
            comparison = j == n_wards - 1 and (k % 2 == 0 or k % 5 == 1)
            start = None
            if not comparison:
                start = pd.Timestamp(wave)
                if staggered:
                    start = pd.Timestamp("2021-07") + pd.DateOffset(months=3 * (j % 4))
            base_rate, beds = WARD_TYPE_PROFILE[ward_type]
            obd = np.round(beds * MONTHS.days_in_month.to_numpy() * rng.uniform(0.85, 0.98, n))
            latent = np.zeros(n)
            latent[0] = rng.normal(0, AR_SD)
            for i in range(1, n):
                latent[i] = AR_RHO * latent[i - 1] + rng.normal(0, AR_SD * math.sqrt(1 - AR_RHO**2))
            trend = math.log(SECULAR_TREND) + (
                TREND_GAP if scenario == "trends_null" and start is not None else 0.0
            )
            base = np.log(base_rate / 1000 * obd) + rng.normal(0, WARD_SD) + season + t * trend
            if start is not None:
                h = t - ((start.year - MONTHS[0].year) * 12 + start.month - 1)
                eff = _effect(scenario, level, slope, h)
                g = _effect(scenario, level, slope, np.array([0, 1, HORIZON]))
                ward_truth["level_rr"].append(g[0])
                ward_truth["slope_rr"].append(g[1] - g[0])
                ward_truth["rr_h"].append(g[2])
                for ev in cs_rates:
                    at = np.flatnonzero(h == ev)
                    if at.size:
                        r0 = math.exp(base[at[0]]) / obd[at[0]] * 1000
                        cs_rates[ev][0] += r0 * math.exp(eff[at[0]])
                        cs_rates[ev][1] += r0
            elif scenario == "spillover":
                # a comparison ward in a participating trust: half the effect from the wave
                h = t - (
                    (pd.Timestamp(wave).year - MONTHS[0].year) * 12 + pd.Timestamp(wave).month - 1
                )
                eff = _effect("base", level / 2, slope / 2, h)
            else:
                eff = np.zeros(n)
            mu = np.exp(base + latent + eff)
            y = rng.poisson(rng.gamma(1 / NB_ALPHA, NB_ALPHA * mu))
            wards.append(
                {
                    "trust_code": code,
                    "trust_name": f"Trust {code}",
                    "ward_id": f"W{j + 1}",
                    "ward_type": ward_type,
                    "start_month": "" if start is None else start.strftime("%Y-%m"),
                }
            )
            frames.append(
                pd.DataFrame(
                    {
                        "trust_code": code,
                        "ward_id": f"W{j + 1}",
                        "month": MONTHS.strftime("%Y-%m"),
                        "occupied_bed_days": obd.astype(int),
                        MEASURE: y.astype(int),
                    }
                )
            )
    truth = {
        "trusts": {e: float(np.mean(v)) for e, v in trust_truth.items()},
        "wards": {e: float(np.mean(v)) for e, v in ward_truth.items()},
        "cs": {
            "level_rr": math.log(cs_rates[0][0] / cs_rates[0][1]),
            "rr_h": math.log(cs_rates[HORIZON][0] / cs_rates[HORIZON][1]),
        },
    }
    return pd.DataFrame(wards), pd.concat(frames, ignore_index=True), truth


#: which truth each method is scored against
ESTIMAND = {"gee_pooled": "wards", "controlled": "wards", "controlled_cs": "cs"}


def replicate(task: tuple[str, int]) -> list[dict]:
    """Every estimator on one simulated programme: one row per method and effect."""
    scenario, seed = task
    wards, ward_month, truth = simulate_programme(scenario, seed)
    with tempfile.TemporaryDirectory() as tmp:
        wards.to_csv(Path(tmp) / "wards.csv", index=False)
        ward_month.to_csv(Path(tmp) / "ward_month.csv", index=False)
        data = load_programme(tmp)
    params = ProgrammeParams(horizon_months=HORIZON)
    out: list[dict] = []

    def add(method: str, effect: str, est: float, low: float, high: float) -> None:
        target = truth[ESTIMAND.get(method, "trusts")][effect]
        out.append(
            {
                "scenario": scenario,
                "seed": seed,
                "method": method,
                "effect": effect,
                "log_estimate": math.log(est) if est > 0 else math.nan,
                "log_low": math.log(low) if low > 0 else -math.inf,
                "log_high": math.log(high) if np.isfinite(high) and high > 0 else math.inf,
                "truth": target,
                "null": scenario in ("no_effect", "trends_null"),
            }
        )

    def meta() -> None:
        rows = [fit_trust_its(data, t, MEASURE, params.for_trust(t)).row() for t in data.trusts]
        for r in programme_effects(its_effects_table(rows)).itertuples():
            add(r.method, r.effect, r.estimate, r.ci_low, r.ci_high)

    def gee() -> None:
        fit = pooled_gee(data.ward_month, data.wards, MEASURE, HORIZON)
        for effect in ("level_rr", "slope_rr", "rr_h"):
            add("gee_pooled", effect, *(fit[effect][k] for k in ("estimate", "ci_low", "ci_high")))

    panel = event_time_panel(data.ward_month, data.wards, MEASURE)

    def controlled() -> None:
        ctl = etwfe_poisson(panel, MEASURE, HORIZON, event_study=False)
        for effect, e in ctl.effects.items():
            add("controlled", effect, e["estimate"], e["ci_low"], e["ci_high"])

    def cs() -> None:
        t = callaway_santanna(panel, (0, HORIZON), n_boot=199, seed=seed).set_index("event_time")
        for effect, ev in (("level_rr", 0), ("rr_h", HORIZON)):
            add(
                "controlled_cs",
                effect,
                t.loc[ev, "ratio"],
                t.loc[ev, "ratio_low"],
                t.loc[ev, "ratio_high"],
            )

    for name, step in (
        ("meta-analysis", meta),
        ("gee_pooled", gee),
        ("controlled", controlled),
        ("controlled_cs", cs),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step()
        except (ValueError, KeyError, np.linalg.LinAlgError) as err:
            out.append(
                {
                    "scenario": scenario,
                    "seed": seed,
                    "method": name,
                    "effect": "failed",
                    "error": repr(err),
                }
            )
    return out


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, method and effect: bias against the method's own estimand (log scale),
    RMSE, coverage of the estimand by the 95% interval (under a null scenario, 1 - size),
    median interval width (log scale) and failures."""
    r = records[records["effect"] != "failed"].dropna(subset=["log_estimate"])
    r = r.assign(
        error=r["log_estimate"] - r["truth"],
        covered=(r["log_low"] <= r["truth"]) & (r["truth"] <= r["log_high"]),
        width=r["log_high"] - r["log_low"],
    )
    keys = ["scenario", "method", "effect"]
    out = (
        r.groupby(keys, sort=False)
        .agg(
            programmes=("seed", "size"),
            truth=("truth", "mean"),
            bias=("error", "mean"),
            rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
            coverage=("covered", "mean"),
            median_width=("width", "median"),
        )
        .reset_index()
    )
    out["failed"] = 0
    if "error" in records:
        failed = records[records["effect"] == "failed"].groupby(["scenario", "method"]).size()
        for (sc, m), v in failed.items():
            hit = (out["scenario"] == sc) & (
                (out["method"] == m)
                | (m == "meta-analysis") & out["method"].str.startswith("random")
            )
            out.loc[hit, "failed"] = int(v)
    out["coverage_mcse"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["programmes"])
    return out


SHOWN = (
    "random_effects_reml",
    "random_effects_reml_hk",
    "random_effects_dl_hk",
    "gee_pooled",
    "controlled",
    "controlled_cs",
)


def _compact(summary: pd.DataFrame, effect: str) -> list[str]:
    """Coverage (%) and bias of the shown methods for ``effect``, a column per scenario."""
    scen = [s for s in SCENARIOS if s in set(summary["scenario"])]
    lines = [
        "| method | " + " | ".join(scen) + " |",
        "|---|" + "---:|" * len(scen),
    ]
    v = summary[summary["effect"] == effect].set_index(["method", "scenario"])
    for m in SHOWN:
        cells = []
        for sc in scen:
            if (m, sc) not in v.index:
                cells.append("")
                continue
            row = v.loc[(m, sc)]
            cells.append(f"{100 * row['coverage']:.0f} ({row['bias']:+.3f})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def _markdown(summary: pd.DataFrame, n: int, seconds: float) -> str:
    mcse = math.sqrt(0.05 * 0.95 / n)
    lines = [
        "# Pooled estimators under violated assumptions and null programmes (issue 16)",
        "",
        f"{n} simulated programmes per scenario (`validation/programme_coverage.py`, "
        f"{seconds / 60:.1f} min on 2 cores; scenarios and estimands in the script's "
        "docstring). Measure: physical restraint, 14 trusts, 48 months. Each estimator is "
        "scored against its own estimand (meta-analysis: mean of the trusts' log effects; GEE "
        "and extended TWFE: mean of the participating wards' log effects; Callaway & "
        "Sant'Anna: ratio of mean rates). Cells: coverage of the estimand by the 95% interval, "
        "% (under `no_effect` and `trends_null` that is 100 minus the size), and the bias on the "
        f"log scale. Monte Carlo SE of a 95% coverage: {100 * mcse:.1f} points.",
        "",
        f"## Rate ratio at {HORIZON} months (`rr_h`)",
        "",
        *_compact(summary, "rr_h"),
        "",
        "## Level change (`level_rr`)",
        "",
        *_compact(summary, "level_rr"),
        "",
        "## Every method, effect and scenario",
        "",
        "| scenario | method | effect | programmes | failed | truth | bias | RMSE | coverage "
        "| median width |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary.itertuples():
        lines.append(
            f"| {r.scenario} | {r.method} | {r.effect} | {r.programmes} | {r.failed} | "
            f"{r.truth:+.3f} | {r.bias:+.4f} | {r.rmse:.4f} | {r.coverage:.3f} | "
            f"{r.median_width:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programmes", type=int, default=100, help="per scenario")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    for sc in scenarios:  # fail now, not after an hour of fits
        simulate_programme(sc, 0)
    t0 = time.perf_counter()
    tasks = [(sc, seed) for sc in scenarios for seed in range(1, args.programmes + 1)]
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, part in enumerate(pool.map(replicate, tasks, chunksize=4), 1):
            rows += part
            if i % 50 == 0:
                print(f"{i}/{len(tasks)} programmes ({time.perf_counter() - t0:.0f} s)", flush=True)
    records = pd.DataFrame(rows)
    seconds = time.perf_counter() - t0
    summary = summarise(records)
    summary.to_csv(HERE / "programme_coverage.csv", index=False, float_format="%.5f")
    (HERE / "programme_coverage.md").write_text(
        _markdown(summary, args.programmes, seconds), encoding="utf-8"
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{len(tasks)} programmes in {seconds:.0f} s")


if __name__ == "__main__":
    main()
