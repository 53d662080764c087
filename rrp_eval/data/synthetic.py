"""Synthetic series with known truth, for the demonstration run and simulation tests.

The generating model is documented in ``docs/methods.md`` ("Synthetic series").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rrp_eval.data.load import write_csv_tables
from rrp_eval.params import ProgrammeParams


def simulate_series(
    *,
    n_months: int = 48,
    start_index: int = 24,
    level_rr: float = 0.75,
    slope_rr: float = 1.0,
    pre_trend_rr: float = 1.0,
    rate_per_1000: float = 30.0,
    bed_days: float = 600.0,
    seasonal_amplitude: float = 0.0,
    nb_alpha: float = 0.0,
    ar1_rho: float = 0.0,
    ar1_sd: float = 0.0,
    first_month: str = "2020-01",
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Simulate one monthly count series with a known interruption.

    Parameters
    ----------
    n_months : int, default 48
        Length of the series.
    start_index : int, default 24
        0-based position of the first post-intervention month (h = 0).
    level_rr, slope_rr, pre_trend_rr : float
        True rate ratios: level change at h = 0, further change per month after the start, and
        the secular change per month.
    rate_per_1000 : float, default 30
        Rate per 1,000 occupied bed days in the first month, before seasonality and noise.
    bed_days : float, default 600
        Mean occupied bed days per month (drawn uniformly within +/- 10%).
    seasonal_amplitude : float, default 0
        Amplitude on the log scale of a 12-month sine wave peaking in April.
    nb_alpha : float, default 0
        Negative-binomial (NB2) over-dispersion: Var = mu + alpha mu^2; 0 gives Poisson counts.
    ar1_rho, ar1_sd : float, default 0
        Latent AR(1) noise on the log rate: lag-1 correlation and marginal standard deviation.
    first_month : str, default "2020-01"
        First month of the series.
    seed : int or numpy.random.Generator, default 0
        Seed; the same seed gives the same series.

    Returns
    -------
    pandas.DataFrame
        ``month`` (first of the month), ``h`` (months since the start), ``occupied_bed_days``,
        ``count`` and ``expected`` (the mean count given the latent noise).
    """
    if not 0 < start_index < n_months:
        raise ValueError(
            f"start_index={start_index} must lie inside the series (1..{n_months - 1})"
        )
    if not -1 < ar1_rho < 1:
        raise ValueError(f"ar1_rho={ar1_rho} must lie strictly between -1 and 1")
    if nb_alpha < 0 or ar1_sd < 0:
        raise ValueError("nb_alpha and ar1_sd must be >= 0")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    months = pd.date_range(first_month, periods=n_months, freq="MS")
    t = np.arange(n_months)
    h = t - start_index
    post = h >= 0
    obd = np.round(rng.uniform(0.9, 1.1, n_months) * bed_days)
    latent = np.zeros(n_months)
    if ar1_sd > 0:
        innovation_sd = ar1_sd * math.sqrt(1 - ar1_rho**2)
        latent[0] = rng.normal(0, ar1_sd)
        for i in range(1, n_months):
            latent[i] = ar1_rho * latent[i - 1] + rng.normal(0, innovation_sd)
    log_mu = (
        np.log(rate_per_1000 / 1000 * obd)
        + t * math.log(pre_trend_rr)
        + post * (math.log(level_rr) + h * math.log(slope_rr))
        + seasonal_amplitude * np.sin(2 * np.pi * (months.month.to_numpy() - 1) / 12)
        + latent
    )
    mu = np.exp(log_mu)
    lam = rng.gamma(1 / nb_alpha, nb_alpha * mu) if nb_alpha > 0 else mu
    return pd.DataFrame(
        {
            "month": months,
            "h": h,
            "occupied_bed_days": obd,
            "count": rng.poisson(lam),
            "expected": mu,
        }
    )


# --- The demonstration programme -------------------------------------------------------------

DEMO_SEED = 2024
DEMO_FIRST_MONTH = "2020-01"
DEMO_MONTHS = 48
WAVES = {"Wave 1": "2021-07", "Wave 2": "2022-01", "Wave 3": "2022-07"}
REGIONS = (
    "North East and Yorkshire",
    "North West",
    "Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
)

# Baseline physical restraint per 1,000 occupied bed days and beds, by ward type (orders of
# magnitude from MHSDS and the NCCMH collaborative; LD/autism and PICU highest).
WARD_TYPE_PROFILE = {
    "adult_acute": (25.0, 20),
    "older_adult": (15.0, 18),
    "picu": (120.0, 10),
    "camhs": (80.0, 12),
    "ld_autism": (150.0, 8),
    "forensic": (20.0, 15),
    "rehab": (5.0, 16),
    "eating_disorder": (30.0, 14),
    "perinatal": (3.0, 8),
}
# Other measures as multiples of the physical-restraint rate (prone as a share of it).
MEASURE_RATIOS = {
    "rapid_tranquillisation": 0.25,
    "seclusion": 0.20,
    "segregation": 0.01,
    "mechanical_restraint": 0.005,
    "violence_incidents": 1.6,
    "assaults_on_staff": 0.6,
    "self_harm": 0.5,
}
PRONE_SHARE = 0.15
PEOPLE_SHARE = 0.4
# How strongly each measure responds to a trust's programme effect (multiplier on the log scale):
# prone restraint most (statutory focus), seclusion not at all (the unaffected measure), the
# balancing measures not at all.
EFFECT_WEIGHT = {
    "physical_restraint": 1.0,
    "prone_restraint": 1.5,
    "rapid_tranquillisation": 0.8,
    "seclusion": 0.0,
    "segregation": 0.5,
    "mechanical_restraint": 0.5,
    "people_restrained": 1.0,
    "violence_incidents": 0.0,
    "assaults_on_staff": 0.0,
    "self_harm": 0.0,
}
DEMO_MEASURES = tuple(EFFECT_WEIGHT)
PROGRAMME_LOG_LEVEL = (math.log(0.80), 0.12)  # mean and SD of trust log level effects
PROGRAMME_LOG_SLOPE = (-0.008, 0.004)  # mean and SD of trust log slope effects per month
SECULAR_TREND = 0.997  # rate ratio per month on every ward, participating or not
NB_ALPHA, AR_RHO, AR_SD, SEASON_AMPLITUDE, WARD_SD = 0.08, 0.4, 0.12, 0.08, 0.3

_TRUST_NAMES = (
    "Northmoor",
    "Eastfield",
    "Riverside",
    "Westhaven",
    "Southdown",
    "Kingsbridge",
    "Ashworth",
    "Fenland",
    "Harbourside",
    "Millbrook",
    "Oakridge",
    "Pennine",
    "Thameside",
    "Wolds",
)
_WARD_NAMES = (
    "Birch",
    "Cedar",
    "Elm",
    "Hazel",
    "Juniper",
    "Larch",
    "Maple",
    "Oak",
    "Rowan",
    "Willow",
    "Aspen",
    "Holly",
    "Linden",
    "Poplar",
    "Yew",
    "Alder",
)
_TYPE_CYCLE = (
    "adult_acute",
    "adult_acute",
    "picu",
    "older_adult",
    "ld_autism",
    "camhs",
    "forensic",
    "rehab",
    "eating_disorder",
    "perinatal",
    "adult_acute",
    "older_adult",
)


@dataclass(frozen=True)
class DemoProgramme:
    """The demonstration programme's tables and its truth."""

    wards: pd.DataFrame
    ward_month: pd.DataFrame
    events: pd.DataFrame
    truth: dict

    def write(self, out_dir: str | Path) -> Path:
        """Write ``wards.csv``, ``ward_month.csv``, ``events.csv`` (when there are events: the
        optional file with a header and no rows is refused) and ``truth.json``."""
        names = ("wards", "ward_month", "events") if len(self.events) else ("wards", "ward_month")
        out = write_csv_tables(out_dir, {name: getattr(self, name) for name in names})
        (out / "truth.json").write_text(
            json.dumps(self.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return out


def _trust_plan(rng: np.random.Generator, fixed_roles: bool = True) -> list[dict]:
    """Fourteen trusts: codes, names, regions, waves, their wards and their true effects."""
    plan = []
    wave_names = list(WAVES)
    type_pos = 0
    for k, stem in enumerate(_TRUST_NAMES):
        code = f"X{k + 1:02d}"
        wave = wave_names[k % 3]
        n_wards = 4 + (k % 3)
        wards = []
        for j in range(n_wards):
            ward_type = _TYPE_CYCLE[type_pos % len(_TYPE_CYCLE)]
            type_pos += 1
            comparison = (j == n_wards - 1 and k % 2 == 0) or (j == n_wards - 1 and k % 5 == 1)
            wards.append({"ward_id": f"W{j + 1}", "ward_type": ward_type, "comparison": comparison})
        level = rng.normal(*PROGRAMME_LOG_LEVEL)
        slope = rng.normal(*PROGRAMME_LOG_SLOPE)
        role = "reduction"
        if fixed_roles and code == "X06":
            level, slope, role = 0.0, 0.0, "no_change"
        elif fixed_roles and code == "X11":
            level, slope, role = math.log(1.20), 0.0, "worsens"
        plan.append(
            {
                "code": code,
                "name": f"{stem} Mental Health NHS Foundation Trust",
                "region": REGIONS[k % len(REGIONS)],
                "wave": wave,
                "wards": wards,
                "log_level": level,
                "log_slope": slope,
                "role": role,
            }
        )
    # one trust whose wards join in different months (staggered within the trust)
    staggered = plan[2]
    staggered["staggered_starts"] = ["2021-07", "2021-10", "2022-01", "2022-04"]
    staggered["wave"] = "Wave 1"  # the trust joined with the first wave, its wards one by one
    return plan


def _ward_start(trust: dict, j: int) -> str | None:
    ward = trust["wards"][j]
    if ward["comparison"]:
        return None
    starts = trust.get("staggered_starts")
    return starts[j % len(starts)] if starts else WAVES[trust["wave"]]


def demo_programme(seed: int = DEMO_SEED, *, fixed_roles: bool = True) -> DemoProgramme:
    """Generate the demonstration programme (deterministic from ``seed``).

    Fourteen fictional trusts (codes X01-X14) in seven regions with 4-6 wards each across nine
    ward types, 48 months (2020-01 to 2023-12), three waves, one trust whose wards join in
    different months, comparison wards that never join, seasonality, over-dispersion,
    autocorrelation, balancing measures and real-world quirks recorded in ``events``. The
    generating model is in docs/methods.md ("The demonstration programme").

    Parameters
    ----------
    seed : int, default 2024
    fixed_roles : bool, default True
        False draws every trust's effects from the programme's distribution (no trust held
        at no change or made to worsen): the simulated programmes of the validation study.

    Returns
    -------
    DemoProgramme
        Tables in the SPEC §1 format and ``truth`` (per trust and measure the true level and
        slope rate ratios; for the programme the mean and SD of the trust log effects).
    """
    rng = np.random.default_rng(seed)
    plan = _trust_plan(rng, fixed_roles)
    months = pd.date_range(DEMO_FIRST_MONTH, periods=DEMO_MONTHS, freq="MS")
    t = np.arange(DEMO_MONTHS)
    season = SEASON_AMPLITUDE * np.cos(2 * np.pi * (months.month.to_numpy() - 1) / 12)
    ward_rows, month_frames = [], []
    truth_trusts: dict[str, dict] = {}
    names = iter(_WARD_NAMES * 10)
    for trust in plan:
        measures_truth = {
            m: {
                "level_rr": round(math.exp(EFFECT_WEIGHT[m] * trust["log_level"]), 6),
                "slope_rr": round(math.exp(EFFECT_WEIGHT[m] * trust["log_slope"]), 6),
            }
            for m in DEMO_MEASURES
        }
        rp_num = np.zeros(2)
        rp_den = np.zeros(2)
        for j, ward in enumerate(trust["wards"]):
            start = _ward_start(trust, j)
            base_rate, beds = WARD_TYPE_PROFILE[ward["ward_type"]]
            ward_rows.append(
                {
                    "trust_code": trust["code"],
                    "trust_name": trust["name"],
                    "ward_id": ward["ward_id"],
                    "ward_name": f"{next(names)} Ward",
                    "ward_type": ward["ward_type"],
                    "start_month": start or "",
                    "cohort": trust["wave"] if start else "",
                    "region": trust["region"],
                    "beds": beds,
                }
            )
            bed_series = np.full(DEMO_MONTHS, float(beds))
            if trust["code"] == "X04" and ward["ward_id"] == "W2":
                bed_series[t >= 15] = round(beds * 0.4)  # reconfiguration, 2021-04
            occupancy = rng.uniform(0.85, 0.98, DEMO_MONTHS)
            obd = np.round(bed_series * months.days_in_month.to_numpy() * occupancy)
            latent = np.zeros(DEMO_MONTHS)
            latent[0] = rng.normal(0, AR_SD)
            for i in range(1, DEMO_MONTHS):
                latent[i] = AR_RHO * latent[i - 1] + rng.normal(0, AR_SD * math.sqrt(1 - AR_RHO**2))
            ward_effect = rng.normal(0, WARD_SD)
            if start:
                h = t - ((pd.Period(start, "M") - pd.Period(DEMO_FIRST_MONTH, "M")).n)
                post = h >= 0
            else:
                h, post = t * 0, np.zeros(DEMO_MONTHS, dtype=bool)
            base_log = (
                np.log(base_rate / 1000 * obd)
                + ward_effect
                + season
                + latent
                + t * math.log(SECULAR_TREND)
            )

            def effect(m: str, h=h, post=post, trust=trust) -> np.ndarray:
                w = EFFECT_WEIGHT[m]
                return post * w * (trust["log_level"] + trust["log_slope"] * h)

            def draw(mu: np.ndarray) -> np.ndarray:
                return rng.poisson(rng.gamma(1 / NB_ALPHA, NB_ALPHA * mu))

            counts = {"physical_restraint": draw(np.exp(base_log + effect("physical_restraint")))}
            q = PRONE_SHARE * np.exp(effect("prone_restraint") - effect("physical_restraint"))
            counts["prone_restraint"] = rng.binomial(counts["physical_restraint"], q)
            # distinct people: a share of episodes, fewer where a few patients are restrained often
            typical = base_rate / 1000 * float(obd.mean())
            share = min(PEOPLE_SHARE, 1.3 * beds / typical)
            counts["people_restrained"] = rng.binomial(counts["physical_restraint"], share)
            for m, ratio in MEASURE_RATIOS.items():
                counts[m] = draw(np.exp(base_log + math.log(ratio) + effect(m)))
            if start:
                for which, hh in enumerate((0, 12)):
                    at = np.flatnonzero(h == hh)
                    if at.size == 0:
                        continue
                    for m, ratio in (
                        ("physical_restraint", 1.0),
                        ("seclusion", MEASURE_RATIOS["seclusion"]),
                        ("rapid_tranquillisation", MEASURE_RATIOS["rapid_tranquillisation"]),
                    ):
                        mu0 = float(np.exp(base_log[at[0]] - latent[at[0]]) * ratio)
                        rp_den[which] += mu0
                        rp_num[which] += mu0 * float(np.exp(effect(m)[at[0]]))
            frame = pd.DataFrame(
                {
                    "trust_code": trust["code"],
                    "ward_id": ward["ward_id"],
                    "month": months.strftime("%Y-%m"),
                    "occupied_bed_days": obd.astype(int),
                }
            )
            for m in DEMO_MEASURES:
                frame[m] = counts[m].astype(int)
            month_frames.append(frame)
        level_rp = rp_num[0] / rp_den[0]
        slope_rp = (rp_num[1] / rp_den[1] / level_rp) ** (1 / 12) if rp_den[1] > 0 else 1.0
        measures_truth["restrictive_practice"] = {
            "level_rr": round(level_rp, 6),
            "slope_rr": round(slope_rp, 6),
            "note": "implied by its parts' expected counts at h = 0 and h = 12 (a sum of "
            "measures with different effects is not exactly log-linear)",
        }
        truth_trusts[trust["code"]] = {
            "role": trust["role"],
            "wave": trust["wave"],
            "staggered": "staggered_starts" in trust,
            "measures": measures_truth,
        }
    wards = pd.DataFrame(ward_rows)
    ward_month = pd.concat(month_frames, ignore_index=True)
    ward_month = _apply_quirks(ward_month)
    events = pd.DataFrame(
        [
            {
                "trust_code": "X07",
                "ward_id": "W3",
                "month": "2020-07",
                "type": "reporting_onset",
                "note": "Ward began submitting restrictive practice data",
            },
            {
                "trust_code": "X04",
                "ward_id": "W2",
                "month": "2021-04",
                "type": "reconfiguration",
                "note": "Ward reduced from 20 to 8 beds",
            },
            {
                "trust_code": "X10",
                "ward_id": "ALL",
                "month": "2022-10",
                "type": "system_change",
                "note": "New incident reporting system",
            },
        ]
    )
    levels = [p["log_level"] for p in plan if p["role"] == "reduction"]
    slopes = [p["log_slope"] for p in plan if p["role"] == "reduction"]
    truth = {
        "seed": seed,
        "months": [months[0].strftime("%Y-%m"), months[-1].strftime("%Y-%m")],
        "secular_trend_rr_per_month": SECULAR_TREND,
        "unaffected_measures": [m for m, w in EFFECT_WEIGHT.items() if w == 0],
        "trusts": truth_trusts,
        "programme": {
            "generating": {
                "log_level_mean": PROGRAMME_LOG_LEVEL[0],
                "log_level_sd": PROGRAMME_LOG_LEVEL[1],
                "log_slope_mean": PROGRAMME_LOG_SLOPE[0],
                "log_slope_sd": PROGRAMME_LOG_SLOPE[1],
                "applies_to": "trusts with role 'reduction', physical_restraint; "
                "other measures scale the log effect by their weight",
                "measure_weights": EFFECT_WEIGHT,
            },
            "realised_all_trusts": {
                "log_level_mean": float(np.mean([p["log_level"] for p in plan])),
                "log_level_sd": float(np.std([p["log_level"] for p in plan], ddof=1)),
                "log_slope_mean": float(np.mean([p["log_slope"] for p in plan])),
                "log_slope_sd": float(np.std([p["log_slope"] for p in plan], ddof=1)),
            },
            "realised_reduction_trusts": {
                "log_level_mean": float(np.mean(levels)),
                "log_level_sd": float(np.std(levels, ddof=1)),
                "log_slope_mean": float(np.mean(slopes)),
                "log_slope_sd": float(np.std(slopes, ddof=1)),
            },
        },
    }
    return DemoProgramme(wards, ward_month, events, _round_floats(truth))


def _apply_quirks(ward_month: pd.DataFrame) -> pd.DataFrame:
    """Late reporting, a missing month, and a measure one trust does not record."""
    late = (
        (ward_month.trust_code == "X07")
        & (ward_month.ward_id == "W3")
        & (ward_month.month < "2020-07")
    )
    missing = (
        (ward_month.trust_code == "X02")
        & (ward_month.ward_id == "W1")
        & (ward_month.month == "2022-03")
    )
    out = ward_month[~late & ~missing].copy()
    out["mechanical_restraint"] = out["mechanical_restraint"].astype("Int64")
    out.loc[out.trust_code == "X05", "mechanical_restraint"] = pd.NA
    return out.reset_index(drop=True)


def _round_floats(value):
    """Round floats to 6 significant decimals so that truth.json is stable to print."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round_floats(v) for v in value]
    return value


def scaled_programme(n_trusts: int, copies: int = 3, seed: int = DEMO_SEED) -> DemoProgramme:
    """A larger programme for scale benchmarks: ``n_trusts`` trusts of about ``5 * copies``
    wards each (three copies: about 15, as a national programme's mental health trusts have),
    48 months, built from demonstration programmes drawn with other seeds.

    Trust ``k`` of set ``s`` is made of the ``k``-th trusts of ``copies`` demonstration
    programmes (effects drawn, no fixed roles), its wards renamed ``W1a``, ``W1b``, ...; codes
    are ``S01X01``, ``S01X02``, .... Truth is not kept (each copy has its own effects).
    """
    if n_trusts < 1 or copies < 1:
        raise ValueError("n_trusts and copies must be at least 1")
    per_set = len(_TRUST_NAMES)
    sets = math.ceil(n_trusts / per_set)
    wards, ward_month, events = [], [], []
    for s_ in range(sets):
        keep = [f"X{k + 1:02d}" for k in range(min(per_set, n_trusts - s_ * per_set))]
        for c in range(copies):
            demo = demo_programme(seed + 1000 * (s_ + 1) + c, fixed_roles=False)
            suffix = "abcdefghijklmnopqrstuvwxyz"[c % 26] + ("" if c < 26 else str(c // 26))
            for name, frame in (
                ("wards", demo.wards),
                ("ward_month", demo.ward_month),
                ("events", demo.events),
            ):
                f = frame[frame["trust_code"].isin(keep)].copy()
                f["trust_code"] = f"S{s_ + 1:02d}" + f["trust_code"]
                f["ward_id"] = np.where(f["ward_id"] == "ALL", "ALL", f["ward_id"] + suffix)
                if name == "wards":
                    f["trust_name"] = f["trust_name"] + f" ({s_ + 1})"
                    wards.append(f)
                elif name == "ward_month":
                    ward_month.append(f)
                elif c == 0:  # a trust's events once
                    events.append(f)
    return DemoProgramme(
        wards=pd.concat(wards, ignore_index=True),
        ward_month=pd.concat(ward_month, ignore_index=True),
        events=pd.concat(events, ignore_index=True),
        truth={"scaled": {"n_trusts": n_trusts, "copies": copies, "seed": seed}},
    )


def write_demo_programme(out_dir: str | Path, seed: int = DEMO_SEED) -> Path:
    """Generate the demonstration programme and write it to ``out_dir`` (see SPEC §4)."""
    return demo_programme(seed).write(out_dir)


def demo_data_path(seed: int = DEMO_SEED) -> Path:
    """The demonstration programme's folder, generated on first use.

    It lives in ``$RRP_EVAL_CACHE`` (default ``~/.cache/rrp-eval``), in a folder named by a hash
    of this generator's source and the seed (so a changed generator never serves stale data),
    written to a temporary folder and renamed into place so that parallel workers never see
    half a programme.
    """
    root = Path(os.environ.get("RRP_EVAL_CACHE") or Path.home() / ".cache" / "rrp-eval")
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    target = root / f"demo-{source}-seed{seed}"
    if (target / "ward_month.csv").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=root))
    try:
        write_demo_programme(tmp, seed)
        os.replace(tmp, target)
    except OSError:
        if not (target / "ward_month.csv").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def data_location(data: str | Path | None, params: ProgrammeParams) -> Path:
    """The data a run or notebook reads: ``data`` when given, else the parameters' ``data``,
    else the demonstration programme (generated on first use by :func:`demo_data_path`)."""
    if data:
        return Path(data)
    return params.data_path or demo_data_path()
