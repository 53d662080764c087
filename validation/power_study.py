"""Does the stated power of a trust's evaluation match the power it really has? (issue 18)

``rrp_eval.evaluate.planning`` tells a trust the power of its interrupted-time-series
evaluation to detect a fall to a rate ratio ``rr`` (the aim: 0.75), by simulation from the
trust's baseline: the baseline rate, the Pearson dispersion φ and lag-1 autocorrelation ρ of
the baseline's residuals (``estimate_noise``) fix a latent AR(1) Poisson-lognormal generator; a
step fall to ``rr`` is applied from the start and each simulated series is fitted with the
evaluation's own model (``fit_trust_its``, default ``ProgrammeParams``); a fall is detected
when the 95% interval of ``rr_h`` (the rate ratio 12 months after the start) lies below 1.

This study checks that statement on data the planning was not built from. A *cell* is a
data-generating process (DGP) × a design × a true rate ratio:

- designs: a summed trust series with about 1,400 occupied bed days a month (each month's bed
  days drawn uniformly within ±5%), about 5, 20 or 100 events a month, and 12/12, 24/24 or
  36/24 months before/after the start;
- DGPs (every latent process has mean-preserving log-normal multipliers, as the planning's):
  ``reference`` the planning's own generator (``planning.simulate_counts`` with a latent AR(1)
  of decay 0.8 and count-scale lag-1 autocorrelation 0.2: φ ≈ 1.33); the others are generated
  here and depart from it in one way each: ``negbin`` gamma-Poisson noise (α = 0.05 at 100 events a
  month: φ = 6; 0.1 at 5 or 20) and no autocorrelation; ``trend`` the reference noise with a
  real secular fall of 5% a year continuing through the follow-up (the model fits a pre-trend;
  the planning simulates a flat rate); ``season`` the reference noise with a ±15% sinusoid over
  the year (the evaluation model fits two harmonics once the series has 24 months; the
  planning's noise estimate does not remove the season); ``ramp`` the reference noise with an
  effect that builds linearly over 6 months to ``rr`` instead of a step (rr_h is still ``rr``);
  ``outlier`` the reference noise with one month anywhere in the series × 3;
- ``rr`` = 0.75 (power) and, for the reference and the misspecified noises, ``rr`` = 1 (null:
  the rejection rate is the share of one-sided false "improved" findings).

For each cell:

1. *observed* (true) power: ``--fresh`` (200) fresh trusts, each a full series (baseline and
   follow-up, with the fall) from the DGP, each fitted by the evaluation exactly as the
   planning fits its simulations (``planning._detects`` on ``planning.series_frame`` of the
   full series); the share detected, with binomial Monte Carlo SE;
2. *stated* power: ``--baselines`` (16) independent trusts from the same DGP, of which only the
   baseline months are given to the planning (``series_frame(baseline, start, follow_up=after)``
   then ``power_cell(frame, ProgrammeParams().for_trust("series"), rr, n=--plan-sims (50))``):
   the power a user would be told. More baselines with fewer simulations each than a page's 100
   give a more precise mean for the same cost (the spread across baselines, not the Monte
   Carlo error of one plan, dominates); the reported ``sd between baselines`` has the plan's
   own binomial Monte Carlo variance (p(1-p)/(n-1) per baseline) removed, so it is the spread a
   user's stated power has because the user has one baseline, over and above the ± the page
   already prints. The same baselines are used at rr = 0.75 and rr = 1.
3. difference stated − observed, with MC SE sqrt(s²/B + p(1-p)/N) (s the sd of the stated
   powers across the B baselines, p the observed power; p and the stated powers are floored at
   (x+1)/(n+2) in the variances so a cell of zeros still has an SE); verdict: agrees within MC
   error when |difference| ≤ 2 SE, else over-states or under-states.

Each row also gives what a user sees (the mean φ and ρ the planning reported, and their true
count-scale values in the DGP), the share of baselines whose stated power is in the same band
as the observed power (≥ 80%, 50-80%, < 50%: the page's likely / possible / unlikely), and the
mean log rr_h and standard error of the fresh fits and of the planning's simulated fits.

Nothing is tuned: the planning runs with its defaults. One process (the BLAS threads are set
to 1); the full study (22 cells, about 22,000 fits) took 16 minutes of CPU (19 minutes on a
2-core machine shared with a benchmark), ``--quick`` (4 cells, small samples) about 1 minute.

Run: .venv/bin/python validation/power_study.py [--quick] [--fresh 200] [--baselines 16]
Writes validation/power_study.csv and validation/power_study.md (``--quick`` only prints;
``--markdown-only`` rewrites the .md from the .csv). The .md's ``## Conclusion`` section is
written by hand after reading the tables and is kept when the tables are rewritten.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import optimize  # noqa: E402

from rrp_eval.evaluate.planning import (  # noqa: E402
    Noise,
    PlanFrame,
    _detects,
    power_cell,
    series_frame,
    simulate_counts,
)
from rrp_eval.params import ProgrammeParams  # noqa: E402

HERE = Path(__file__).resolve().parent
BED_DAYS = 1400.0
AIM = 0.75
REF_RHO, REF_DECAY = 0.2, 0.8
TREND_PER_YEAR = math.log(0.95)
SEASON = 0.15
RAMP_MONTHS = 6
OUTLIER = 3.0
OWN = ProgrammeParams().for_trust("series")
#: the heading of the report's hand-written conclusion, kept when the tables are rewritten
CONCLUSION = "## Conclusion"


@dataclass(frozen=True)
class Design:
    events: float
    before: int
    after: int

    @property
    def label(self) -> str:
        return f"{self.events:g}/month, {self.before}/{self.after}"


@dataclass(frozen=True)
class DGP:
    """A data-generating process: latent AR(1) log-rate noise with count-scale lag-1
    autocorrelation ``rho`` and decay ``decay`` (or dispersion ``phi`` when given), optional
    negative-binomial noise instead, a secular trend (log per year), a seasonal amplitude, a
    ramp of the effect, and one outlying month. ``reference`` generates with the planning's
    own ``simulate_counts``."""

    name: str
    rho: float = REF_RHO
    decay: float = REF_DECAY
    phi: float | None = None
    nb_alpha: tuple[tuple[float, float], ...] = ()  # (events a month, α): no latent process
    trend: float = 0.0
    season: float = 0.0
    ramp: int = 0
    outlier: float = 1.0
    reference: bool = False

    def alpha(self, events: float) -> float:
        return float(dict(self.nb_alpha).get(events, 0.0))


def latent_sigma2(rho: float, mean: float, decay: float) -> float:
    """Stationary variance σ² of a latent AR(1) log rate (decay ``decay``, multipliers with
    mean 1) that gives Poisson counts of mean ``mean`` the count-scale lag-1 autocorrelation
    ``rho``: m(e^{σ²d} − 1) / (1 + m(e^{σ²} − 1)) = ρ (the planning's moments)."""
    if rho <= 0:
        return 0.0

    def gap(s2: float) -> float:
        return mean * math.expm1(s2 * decay) / (1 + mean * math.expm1(s2)) - rho

    top = optimize.minimize_scalar(lambda v: -gap(v), bounds=(1e-9, 5.0), method="bounded")
    if gap(top.x) < 0:
        raise ValueError(f"lag-1 autocorrelation {rho} is out of reach at {mean}/month")
    return float(optimize.brentq(gap, 1e-9, top.x))


def true_noise(dgp: DGP, mean: float) -> Noise:
    """The DGP's noise in the planning's terms (count-scale φ and ρ, latent σ² and decay)."""
    a = dgp.alpha(mean)
    if a > 0:
        return Noise(1 + a * mean, 0.0, 0.0, 0.0, mean)
    if dgp.phi is not None:
        s2 = math.log1p((dgp.phi - 1) / mean)
    else:
        s2 = latent_sigma2(dgp.rho, mean, dgp.decay)
    phi = 1 + mean * math.expm1(s2)
    rho = mean * math.expm1(s2 * dgp.decay) / phi if s2 > 0 else 0.0
    return Noise(phi, rho, s2, dgp.decay if s2 > 0 else 0.0, mean)


@dataclass(frozen=True)
class Cell:
    dgp: DGP
    design: Design
    rr: float

    @property
    def key(self) -> str:
        d = self.design
        return f"{self.dgp.name}|{d.events:g}|{d.before}|{d.after}|{self.rr:g}"


def _months(design: Design) -> pd.DatetimeIndex:
    return pd.date_range("2021-01", periods=design.before + design.after, freq="MS")


def simulate_trust(
    dgp: DGP, design: Design, rr: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.Timestamp, PlanFrame | None]:
    """One trust's full monthly series (``month``, ``count``, ``occupied_bed_days``; baseline
    and follow-up with the fall to ``rr``) and its start month; for the reference DGP also the
    frame it was generated from (the planning's generator on the trust's design)."""
    months = _months(design)
    n, k = len(months), design.before
    start = months[k]
    obd = np.round(BED_DAYS * rng.uniform(0.95, 1.05, n))
    rate = design.events / BED_DAYS
    noise = true_noise(dgp, design.events)
    df = pd.DataFrame({"month": months, "count": 0.0, "occupied_bed_days": obd})
    if dgp.reference:
        frame = series_frame(df, start)
        frame = replace(frame, rates={"all": rate}, noise=noise)
        df["count"] = simulate_counts(frame, rr, 1, rng)[0]
        return df, start, frame
    t = np.arange(n)
    h = t - k
    x = np.zeros(n)
    if noise.sigma2 > 0:
        sd, d = math.sqrt(noise.sigma2), noise.decay
        x[0] = rng.normal(0, sd)
        for i in range(1, n):
            x[i] = d * x[i - 1] + rng.normal(0, sd * math.sqrt(1 - d * d))
        x -= noise.sigma2 / 2
    log_mu = np.log(rate * obd) + dgp.trend * (t - k) / 12 + x
    if dgp.season:
        log_mu += dgp.season * np.sin(2 * np.pi * (months.month.to_numpy() - 1) / 12)
    if dgp.ramp:
        effect = math.log(rr) * np.clip((h + 1) / dgp.ramp, 0, 1)
    else:
        effect = np.where(h >= 0, math.log(rr), 0.0)
    lam = np.exp(log_mu + effect)
    a = dgp.alpha(design.events)
    if a > 0:
        lam = rng.gamma(1 / a, a * lam)
    if dgp.outlier != 1.0:
        lam[rng.integers(n)] *= dgp.outlier
    df["count"] = rng.poisson(lam).astype(float)
    return df, start, None


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def observed_power(
    dgp: DGP, design: Design, rr: float, n: int, rng: np.random.Generator
) -> dict[str, float]:
    """The rejection rate of the evaluation on ``n`` fresh full trusts from the DGP."""
    hits, est, se = [], [], []
    for _ in range(n):
        df, start, frame = simulate_trust(dgp, design, rr, rng)
        if frame is None:
            frame = series_frame(df, start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d, e, s = _detects(frame, df["count"].to_numpy(float), OWN)
        hits.append(d)
        est.append(e)
        se.append(s)
    est_a, se_a = np.array(est), np.array(se)
    return {
        "observed": float(np.mean(hits)),
        "observed_n": n,
        "observed_detected": int(np.sum(hits)),
        "fresh_estimable": float(np.mean(np.isfinite(est_a))),
        "fresh_mean_log_rr": _nanmean(est_a),
        "fresh_mean_se": _nanmean(se_a),
    }


def plan_baselines(
    dgp: DGP, design: Design, b: int, seed: int
) -> list[tuple[pd.DataFrame, pd.Timestamp]]:
    """``b`` baselines a user could hold: the months before the start of independent trusts
    (the same for every rr of a DGP and design: seeded by them)."""
    rng = np.random.default_rng(_seed(seed, "baselines", dgp.name, design.label))
    out = []
    for _ in range(b):
        df, start, _ = simulate_trust(dgp, design, AIM, rng)
        out.append((df.iloc[: design.before].copy(), start))
    return out


def stated_powers(
    baselines: list[tuple[pd.DataFrame, pd.Timestamp]],
    design: Design,
    rr: float,
    n: int,
    seed: int,
    plan_noise: Noise | None = None,
) -> pd.DataFrame:
    """The power the planning states from each baseline (one row per baseline: power, the φ and
    ρ it reported, and its simulations' mean log rr_h and SE). ``plan_noise`` replaces the
    planning's noise estimate (to show that the check can fail)."""
    rows = []
    for i, (base, start) in enumerate(baselines):
        frame = series_frame(base, start, follow_up=design.after)
        reported = frame.noise
        if plan_noise is not None:
            frame = replace(frame, noise=plan_noise)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cell = power_cell(frame, OWN, rr, n, seed + i)
        rows.append(
            {
                "power": cell.power,
                "phi": reported.dispersion,
                "rho": reported.lag1,
                "log_rr": _nanmean(cell.estimates),
                "se": _nanmean(cell.ses),
            }
        )
    return pd.DataFrame(rows)


def band(p: float) -> str:
    return "likely" if p >= 0.8 else "possible" if p >= 0.5 else "unlikely"


def compare(stated: np.ndarray, n_plan: int, detected: int, n_obs: int) -> dict[str, float | str]:
    """Stated (one power per baseline, ``n_plan`` simulations each) against observed
    (``detected`` of ``n_obs`` fresh trusts): difference, its Monte Carlo SE and the verdict."""
    stated = np.asarray(stated, float)
    b = len(stated)
    p = detected / n_obs
    p_floor = (detected + 1) / (n_obs + 2)
    p_var = max(p * (1 - p), p_floor * (1 - p_floor) if p in (0.0, 1.0) else 0.0) / n_obs
    s2 = float(np.var(stated, ddof=1)) if b > 1 else 0.0
    q = (stated.mean() * n_plan * b + 1) / (n_plan * b + 2)
    s_var = max(s2 / b, q * (1 - q) / (n_plan * b))
    diff = float(stated.mean() - p)
    se = math.sqrt(p_var + s_var)
    verdict = (
        "agrees within MC error"
        if abs(diff) <= 2 * se
        else "over-states"
        if diff > 0
        else "under-states"
    )
    mc_within = float(np.mean(stated * (1 - stated) / max(n_plan - 1, 1)))
    return {
        "stated_mean": float(stated.mean()),
        "stated_sd": math.sqrt(s2),
        "stated_sd_between": math.sqrt(max(s2 - mc_within, 0.0)),
        "stated_min": float(stated.min()),
        "stated_max": float(stated.max()),
        "diff": diff,
        "diff_se": se,
        "verdict": verdict,
        "band_agreement": float(np.mean([band(s) == band(p) for s in stated])),
    }


def _seed(base: int, *parts: object) -> np.random.SeedSequence:
    key = zlib.crc32("|".join(map(str, parts)).encode())
    return np.random.SeedSequence([base, key])


def run_cell(
    cell: Cell,
    n_fresh: int,
    n_baselines: int,
    n_plan: int,
    seed: int,
    baselines: list | None = None,
) -> dict:
    """One row of the study: observed and stated power of ``cell`` and their comparison."""
    t0, c0 = time.perf_counter(), time.process_time()
    d = cell.design
    if baselines is None:
        baselines = plan_baselines(cell.dgp, d, n_baselines, seed)
    plan_seed = int(_seed(seed, "plan", cell.dgp.name, d.label).generate_state(1)[0] >> 1)
    stated = stated_powers(baselines, d, cell.rr, n_plan, plan_seed)
    obs = observed_power(
        cell.dgp, d, cell.rr, n_fresh, np.random.default_rng(_seed(seed, "fresh", cell.key))
    )
    noise = true_noise(cell.dgp, d.events)
    row = {
        "dgp": cell.dgp.name,
        "events": d.events,
        "before": d.before,
        "after": d.after,
        "rr": cell.rr,
        "true_phi": noise.dispersion,
        "true_rho": noise.lag1,
        "phi_hat_mean": float(stated["phi"].mean()),
        "phi_hat_sd": float(stated["phi"].std()),
        "rho_hat_mean": float(stated["rho"].mean()),
        "rho_hat_sd": float(stated["rho"].std()),
        "rho_hat_zero": float(np.mean(stated["rho"] == 0)),
        **obs,
        "observed_se": math.sqrt(obs["observed"] * (1 - obs["observed"]) / n_fresh),
        "n_baselines": len(baselines),
        "n_plan": n_plan,
        **compare(stated["power"].to_numpy(), n_plan, obs["observed_detected"], n_fresh),
        "plan_mean_log_rr": float(stated["log_rr"].mean()),
        "plan_mean_se": float(stated["se"].mean()),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
    }
    return row


REFERENCE = DGP("reference", reference=True)
NEGBIN = DGP("negbin", rho=0.0, nb_alpha=((5, 0.1), (20, 0.1), (100, 0.05)))
TREND = DGP("trend", trend=TREND_PER_YEAR)
SEASONAL = DGP("season", season=SEASON)
RAMP = DGP("ramp", ramp=RAMP_MONTHS)
OUTLIER_DGP = DGP("outlier", outlier=OUTLIER)
MISSPECIFIED = (NEGBIN, TREND, SEASONAL, RAMP, OUTLIER_DGP)
#: the misspecified DGPs' own generator with nothing added (only for --only): it tells an
#: effect of the generator from one of the season, trend or ramp added to it
PLAIN = DGP("plain")
BY_NAME = {g.name: g for g in (REFERENCE, PLAIN, *MISSPECIFIED)}


def cells(quick: bool = False) -> list[Cell]:
    """The reference DGP over the design grid; each misspecified DGP at 100 events a month
    with 24/24 and 36/24 months (where the power is neither ~0 nor ~1: at 20 events a month
    the evaluation's power is near 0 in every design); null cells (rr = 1) of every DGP but the
    ramp (its null is the reference's) at 100 events a month, 24/24."""
    ref_designs = [
        Design(5, 36, 24),
        Design(20, 12, 12),
        Design(20, 24, 24),
        Design(20, 36, 24),
        Design(100, 12, 12),
        Design(100, 24, 24),
        Design(100, 36, 24),
    ]
    mis_designs = [Design(100, 24, 24), Design(100, 36, 24)]
    null_design = Design(100, 24, 24)
    if quick:
        d = Design(100, 24, 24)
        return [
            Cell(REFERENCE, d, AIM),
            Cell(REFERENCE, d, 1.0),
            Cell(SEASONAL, d, AIM),
            Cell(NEGBIN, d, AIM),
        ]
    out = [Cell(REFERENCE, d, AIM) for d in ref_designs]
    out += [Cell(g, d, AIM) for g in MISSPECIFIED for d in mis_designs]
    out += [Cell(g, null_design, 1.0) for g in (REFERENCE, *MISSPECIFIED) if g is not RAMP]
    return out


def _pct(v: float) -> str:
    return "" if v != v else f"{100 * v:.0f}"


def _row(r: pd.Series) -> str:
    return (
        f"| {r.dgp} | {r.events:g} | {r.before}/{r.after} | {r.phi_hat_mean:.2f} "
        f"({r.true_phi:.2f}) | {r.rho_hat_mean:.2f} ({r.true_rho:.2f}) | "
        f"{_pct(r.observed)} | {_pct(r.stated_mean)} | {_pct(r.stated_sd_between)} "
        f"[{_pct(r.stated_min)}-{_pct(r.stated_max)}] | "
        f"{100 * r['diff']:+.0f} ± {200 * r.diff_se:.0f} | {r.verdict} | "
        f"{_pct(r.band_agreement)} |"
    )


HEADER = [
    "| DGP | events/month | months before/after | φ reported (true) | ρ reported (true) | "
    "observed % | stated % (mean) | sd between baselines [min-max] | stated − observed "
    "± 2 MC SE | verdict | same band % |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def markdown(table: pd.DataFrame, args: argparse.Namespace, conclusion: str = "") -> str:
    eff, null = table[table.rr != 1], table[table.rr == 1]
    wall, cpu = table["seconds"].sum() / 60, table["cpu_seconds"].sum() / 60
    lines = [
        "# Stated against observed power of a trust's evaluation (issue 18)",
        "",
        f"Generated by `validation/power_study.py` in {wall:.1f} minutes ({cpu:.1f} minutes of "
        "CPU; one process, one BLAS thread, on a 2-core machine shared with a benchmark): "
        f"per cell, {args.fresh} fresh trusts from the data-generating process (DGP) fitted by "
        f"the evaluation (the observed rejection rate), and {args.baselines} independent "
        f"baselines from the same DGP, each given to the planning "
        f"(`series_frame(baseline, start, follow_up=after)` then `power_cell`, "
        f"{args.plan_sims} simulations: the stated power). The module docstring describes the "
        "DGPs and designs; `power_study.csv` has every column (Monte Carlo SEs, the fits' "
        "mean log rr_h and SE, the share of baselines whose ρ was clipped to 0, the run time "
        "of each cell).",
        "",
        "Columns: φ and ρ reported are the means over the baselines of the dispersion and lag-1 "
        "autocorrelation the planning estimated (the DGP's true count-scale values in brackets; "
        "for `season`, `trend` and `outlier` the true values are those of the noise alone); "
        "sd between baselines is the spread of the stated power that comes from the user "
        "holding one baseline (the plan's own binomial MC variance removed; min and max are "
        "raw); the difference is mean stated − observed in points with ± 2 Monte Carlo SEs "
        "(both sides); *same band* is the share of baselines whose stated power falls in the "
        "same band as the observed power (≥ 80% likely, 50-80% possible, < 50% unlikely: the "
        "words on a trust's page).",
        "",
        "## Power to detect a fall to rr = 0.75 (rr_h: 95% interval below 1)",
        "",
        *HEADER,
        *(_row(r) for _, r in eff.iterrows()),
        "",
    ]
    if len(null):
        lines += [
            "## Null cells (rr = 1): stated and observed rejection rate (one-sided, nominal 2.5%)",
            "",
            *HEADER,
            *(_row(r) for _, r in null.iterrows()),
            "",
        ]
    lines += ["## Estimates behind the power (log rr_h; truth log 0.75 = −0.288 or 0)", ""]
    lines += [
        "| DGP | events/month | months before/after | rr | fresh: mean log rr_h | "
        "fresh: mean SE | fresh estimable % | plan sims: mean log rr_h | plan sims: mean SE | "
        "ρ clipped to 0 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.dgp} | {r.events:g} | {r.before}/{r.after} | {r.rr:g} | "
            f"{r.fresh_mean_log_rr:.3f} | {r.fresh_mean_se:.3f} | {_pct(r.fresh_estimable)} | "
            f"{r.plan_mean_log_rr:.3f} | {r.plan_mean_se:.3f} | {_pct(r.rho_hat_zero)} |"
        )
    lines.append("")
    if conclusion:
        lines += [conclusion.strip(), ""]
    return "\n".join(lines)


def _conclusion(path: Path) -> str:
    """The hand-written ``## Conclusion`` section of an existing report (kept on a rewrite)."""
    if not path.exists():
        return ""
    text = path.read_text()
    i = text.find(CONCLUSION)
    return text[i:] if i >= 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=200, help="fresh trusts per cell")
    parser.add_argument("--baselines", type=int, default=16, help="baselines per cell")
    parser.add_argument("--plan-sims", type=int, default=50, help="planning simulations")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--quick", action="store_true", help="4 cells, small samples; prints only")
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the existing .csv"
    )
    parser.add_argument(
        "--only",
        default="",
        help="DGPs by name (e.g. plain,season) at --design, rr 0.75: prints their rows only",
    )
    parser.add_argument("--design", default="100/36/24", help="events/before/after for --only")
    args = parser.parse_args()
    if args.only:
        events, before, after = (float(x) for x in args.design.split("/"))
        design = Design(events, int(before), int(after))
        for name in args.only.split(","):
            r = run_cell(
                Cell(BY_NAME[name], design, AIM),
                args.fresh,
                args.baselines,
                args.plan_sims,
                args.seed,
            )
            print(
                f"{name} {args.design}: observed {r['observed']:.3f} of {args.fresh}, stated "
                f"{r['stated_mean']:.3f} from {args.baselines} baselines "
                f"(sd {r['stated_sd']:.3f}); "
                f"difference {r['diff']:+.3f} ± {2 * r['diff_se']:.3f} ({r['verdict']}); "
                f"φ reported {r['phi_hat_mean']:.2f} ({r['true_phi']:.2f}), ρ reported "
                f"{r['rho_hat_mean']:.3f} ({r['true_rho']:.2f}), ρ at 0 in "
                f"{r['rho_hat_zero']:.0%}; [{r['seconds']:.0f} s]",
                flush=True,
            )
        return
    md = HERE / "power_study.md"
    if args.markdown_only:
        table = pd.read_csv(HERE / "power_study.csv")
        args.fresh = int(table["observed_n"].iloc[0])
        args.baselines = int(table["n_baselines"].iloc[0])
        args.plan_sims = int(table["n_plan"].iloc[0])
        md.write_text(markdown(table, args, _conclusion(md)))
        return
    if args.quick:
        args.fresh, args.baselines, args.plan_sims = 60, 6, 30
    t0 = time.perf_counter()
    todo = cells(args.quick)
    rows, cache = [], {}
    for i, cell in enumerate(todo, 1):
        key = (cell.dgp.name, cell.design)
        if key not in cache:
            cache[key] = plan_baselines(cell.dgp, cell.design, args.baselines, args.seed)
        rows.append(
            run_cell(cell, args.fresh, args.baselines, args.plan_sims, args.seed, cache[key])
        )
        r = rows[-1]
        print(
            f"{i}/{len(todo)} {cell.key}: observed {r['observed']:.3f}, stated "
            f"{r['stated_mean']:.3f} ({r['verdict']}) [{time.perf_counter() - t0:.0f} s]",
            flush=True,
        )
    table = pd.DataFrame(rows)
    text = markdown(table, args, "" if args.quick else _conclusion(md))
    if not args.quick:  # a quick run only prints (it must not overwrite the study's tables)
        table.to_csv(HERE / "power_study.csv", index=False, float_format="%.4f")
        md.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
