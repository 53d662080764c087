"""Calibration (reliability) study of the probability of meeting the aim (issue 18).

``rrp_eval.models.hierarchical.aim_probabilities`` gives, per trust, the posterior probability
that the trust's true 12-month rate ratio is at or below 0.75 (``p_rr_le_0_75``), and the same
for the programme's mean μ. A report reads "probability 0.83 that this trust cut restrictive
practice by at least a quarter". This study asks: among trusts given probability ≈ p, is the
share whose TRUE effect meets the aim ≈ p, and where is it not?

Each simulated programme has k trusts (k = 5, 8, 14, 30). Each trust's standard error s_i
(log scale) is drawn log-uniform in a profile a user can see in the ITS table:

- ``small``: 0.08-0.18 (median about 0.12: large trusts, frequent events);
- ``mixed``: 0.08-0.5 (median about 0.2);
- ``large``: 0.18-0.5 (median about 0.3: small trusts, rare events).

Its estimate is y_i = θ_i + c·s_i·ε_i (ε standard normal) and the model is told s_i. The true
log rate ratios θ_i come from several processes, most of them NOT the model's:

- ``normal``: θ_i ~ N(μ, τ²), the model's own (c = 1): the reference;
- ``t3``: θ_i = μ + τ·t₃/√3, heavy tails with the same SD;
- ``mixture``: responders at log 0.65 and non-responders at log 1.0 (a Bernoulli share per
  trust), plus N(0, 0.03²) jitter;
- ``null``: every θ_i = 0 (no trust improved);
- ``se×0.7`` / ``se×1.3``: normal θ_i, but the estimates scatter with SD 0.7·s_i (the trust
  ITS is conservative: its null study found 95% intervals excluding the truth 1-3% of the
  time) or 1.3·s_i (anticonservative) while the model is told s_i.

Programmes come in two kinds:

- a population of programmes (``pop_*``): μ ~ U(log 0.6, log 1.0) and τ ~ U(0, 0.3) drawn
  per programme (for the mixture, the responders' share ~ U(0.3, 0.9)). Averaged over such a
  population a Bayesian probability should be calibrated, whatever the true μ;
- fixed programmes: the mean near the aim (``near_*``: μ = log 0.78, τ = 0.15, 40% of its
  trusts meet the aim), clearly beyond it (``beyond``: μ = log 0.6, τ = 0.15), a fixed 60/40
  responder mixture (mean log ratio 0.6·log 0.65, a ratio of 0.77), and the null.

The truth scored is θ_i ≤ log 0.75 for a trust and, for the programme's probability, the
generating mean (μ; the mixture's mean; 0 for the null) ≤ log 0.75; the mean of the k trusts'
θ_i is recorded too. Cells are indexed by what a user can see: k, the SE profile, the
programme's own probability for μ (``.programme["p_rr_le_0_75"]``: < 0.2, 0.2-0.8, ≥ 0.8) and
the posterior median of τ (``.tau``: < 0.1, 0.1-0.2, ≥ 0.2).

Per cell and index: a reliability table (predicted-probability bins 0-0.1, 0.1-0.3, 0.3-0.5,
0.5-0.7, 0.7-0.9, 0.9-1.0: mean predicted, observed share, count, Monte Carlo SE), the Brier
score, the expected calibration error (count-weighted mean |observed - predicted| over the
bins) and the share of trusts given p ≥ 0.8 with the share of those that met the aim. Trusts
of one programme share its μ̂ and τ̂, so their outcomes are correlated: the Monte Carlo SE
of an observed share is a cluster (by programme) SE of a ratio estimator; the binomial SE is
in the CSV for comparison. As a baseline the "no borrowing" probability Φ((log 0.75 - y_i)/s_i)
(each trust alone, flat prior) is scored on the same trusts.

The model is a grid over τ, and ``aim_probabilities`` takes about 0.15 s a call; the study uses
an equivalent vectorised over programmes (``hierarchical_probabilities``, the same grid and
formulas) and checks, before it starts, that it agrees with ``aim_probabilities`` to 1e-6 on
programmes of every setting (so the study validates the shipped code).

Run: .venv/bin/python validation/aim_calibration.py [--quick] [--programmes 4000] [--jobs 2]
Writes validation/aim_calibration.csv and validation/aim_calibration.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from rrp_eval.models.hierarchical import GRID_POINTS, TOP_FACTOR, aim_probabilities

HERE = Path(__file__).resolve().parent
SEED = 20240618
AIM = math.log(0.75)
KEY = "p_rr_le_0_75"
KS = (5, 8, 14, 30)
SE_PROFILES = {"small": (0.08, 0.18), "mixed": (0.08, 0.5), "large": (0.18, 0.5)}
POP_MU = (math.log(0.6), math.log(1.0))
POP_TAU = (0.0, 0.3)
POP_RESPONDERS = (0.3, 0.9)
RESPONDER, NON_RESPONDER, JITTER = math.log(0.65), math.log(1.0), 0.03
EDGES = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
BIN_LABELS = tuple(f"{a:.1f}-{b:.1f}" for a, b in itertools.pairwise(EDGES))
P_MU_BANDS = ((0.0, 0.2, "p_mu<0.2"), (0.2, 0.8, "p_mu 0.2-0.8"), (0.8, 1.01, "p_mu>=0.8"))
TAU_BANDS = ((0.0, 0.1, "tau<0.1"), (0.1, 0.2, "tau 0.1-0.2"), (0.2, math.inf, "tau>=0.2"))
HIGH = 0.8  # "reassurance": a trust or programme given at least this probability
METHOD_LABEL = {
    "hierarchical": "model",
    "tau_known": "τ known",
    "oracle_mu_tau_known": "μ, τ known",
    "no_borrowing": "no borrowing",
}


@dataclass(frozen=True)
class Setting:
    """How the true effects and the estimates of one kind of programme are generated."""

    name: str
    generator: str  # normal | t3 | mixture | null
    population: bool  # μ, τ (or the responders' share) drawn per programme
    mu: float = math.nan
    tau: float = math.nan
    se_factor: float = 1.0  # the estimates scatter with SD se_factor·s_i; the model is told s_i
    responders: float = 0.6  # a fixed mixture's share of responders

    @property
    def misspecified(self) -> bool:
        return self.generator != "normal" or self.se_factor != 1.0


NEAR = math.log(0.78)
SETTINGS = (
    Setting("pop_normal", "normal", True),
    Setting("pop_t3", "t3", True),
    Setting("pop_mixture", "mixture", True),
    Setting("pop_se0.7", "normal", True, se_factor=0.7),
    Setting("pop_se1.3", "normal", True, se_factor=1.3),
    Setting("near_normal", "normal", False, NEAR, 0.15),
    Setting("near_t3", "t3", False, NEAR, 0.15),
    Setting("near_se0.7", "normal", False, NEAR, 0.15, se_factor=0.7),
    Setting("near_se1.3", "normal", False, NEAR, 0.15, se_factor=1.3),
    Setting("beyond_normal", "normal", False, math.log(0.6), 0.15),
    Setting("mixture_60_40", "mixture", False),
    Setting("null", "null", False, 0.0, 0.0),
)
BY_NAME = {s.name: s for s in SETTINGS}


def simulate(
    setting: Setting, k: int, se_profile: str, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``n`` programmes of ``k`` trusts: estimates ``y`` and the SEs the model is told ``s``
    (n × k), the true log ratios ``theta`` (n × k), the generating mean ``mu_true`` and the
    generating ``tau_true`` (n; τ is nan for the t3 and mixture generators)."""
    lo, hi = SE_PROFILES[se_profile]
    s = np.exp(rng.uniform(math.log(lo), math.log(hi), (n, k)))
    if setting.population:
        mu = rng.uniform(*POP_MU, n)
        tau = rng.uniform(*POP_TAU, n)
        share = rng.uniform(*POP_RESPONDERS, n)
    else:
        mu = np.full(n, setting.mu)
        tau = np.full(n, setting.tau)
        share = np.full(n, setting.responders)
    z = rng.standard_normal((n, k))
    if setting.generator == "normal":
        theta = mu[:, None] + tau[:, None] * z
    elif setting.generator == "t3":
        theta = mu[:, None] + tau[:, None] * rng.standard_t(3, (n, k)) / math.sqrt(3)
    elif setting.generator == "mixture":
        responds = rng.random((n, k)) < share[:, None]
        theta = np.where(responds, RESPONDER, NON_RESPONDER) + JITTER * z
        mu = share * RESPONDER + (1 - share) * NON_RESPONDER
    elif setting.generator == "null":
        theta = np.zeros((n, k))
        mu = np.zeros(n)
    else:
        raise ValueError(f"unknown generator {setting.generator!r}")
    if setting.generator in ("t3", "mixture"):
        tau = np.full(n, math.nan)
    y = theta + setting.se_factor * s * rng.standard_normal((n, k))
    return {"y": y, "s": s, "theta": theta, "mu_true": mu, "tau_true": tau}


def hierarchical_probabilities(
    y: np.ndarray,
    s: np.ndarray,
    cut: float = AIM,
    points: int = GRID_POINTS,
    top_factor: float = TOP_FACTOR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aim_probabilities`` vectorised over programmes (rows of ``y`` and ``s``, n × k, every
    entry finite, uniform prior on τ): each trust's P(θ_i ≤ cut), the programme's P(μ ≤ cut)
    and the posterior median of τ, on the same τ grid with the same formulas (BDA3 5.17-5.21).
    ``top_factor`` (``TOP_FACTOR`` in the shipped code) only serves the check of the grid's cut-off.
    """
    y = np.atleast_2d(np.asarray(y, float))
    v = np.atleast_2d(np.asarray(s, float)) ** 2
    n, k = y.shape
    top = top_factor * np.maximum(
        np.maximum(np.std(y, axis=1, ddof=1), np.sqrt(v.max(axis=1))),
        0.05,
    )
    frac = np.linspace(0.0, 1.0, points)
    p = np.empty((n, k))
    p_mu = np.empty(n)
    tau_hat = np.empty(n)
    step = max(1, 2_000_000 // (points * k))  # keeps each (rows, grid, trusts) array ~16 MB
    for a in range(0, n, step):
        b = min(n, a + step)
        yy, vv = y[a:b, None, :], v[a:b, None, :]
        taus = top[a:b, None] * frac[None, :]
        t2 = taus[:, :, None] ** 2
        w = 1.0 / (vv + t2)
        v_mu = 1.0 / w.sum(axis=2)
        mu = (w * yy).sum(axis=2) * v_mu
        log_post = (
            0.5 * np.log(v_mu)
            + 0.5 * np.log(w).sum(axis=2)
            - 0.5 * (w * (yy - mu[:, :, None]) ** 2).sum(axis=2)
        )
        shrink = t2 * w  # t2 / (t2 + v): the weight on the trust's own estimate
        mean = (1 - shrink) * mu[:, :, None] + shrink * yy
        var = shrink * vv + (1 - shrink) ** 2 * v_mu[:, :, None]
        weights = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        p[a:b] = np.einsum("rg,rgk->rk", weights, ndtr((cut - mean) / np.sqrt(var)))
        p_mu[a:b] = (weights * ndtr((cut - mu) / np.sqrt(v_mu))).sum(axis=1)
        median_at = (np.cumsum(weights, axis=1) < 0.5).sum(axis=1)
        tau_hat[a:b] = taus[np.arange(b - a), median_at]
    return p, p_mu, tau_hat


def no_borrowing(y: np.ndarray, s: np.ndarray, cut: float = AIM) -> np.ndarray:
    """Each trust on its own (flat prior on θ_i): Φ((cut - y_i)/s_i)."""
    return ndtr((cut - np.asarray(y)) / np.asarray(s))


def given_tau(
    y: np.ndarray, s: np.ndarray, tau: np.ndarray, mu: np.ndarray | None = None, cut: float = AIM
) -> np.ndarray:
    """Each trust's P(θ_i ≤ cut) from the same model with τ known (one value per programme)
    and μ flat (``mu`` None), or with μ known too (the oracle: exactly calibrated in a cell
    whose θ_i really are N(μ, τ²) and whose SEs are right). Shows where over-confidence comes
    from; not part of the shipped model."""
    v = np.asarray(s, float) ** 2
    t2 = np.asarray(tau, float)[:, None] ** 2
    w = 1.0 / (v + t2)
    shrink = t2 * w
    if mu is None:
        v_mu = 1.0 / w.sum(axis=1, keepdims=True)
        centre = (w * y).sum(axis=1, keepdims=True) * v_mu
        var = shrink * v + (1 - shrink) ** 2 * v_mu
    else:
        centre = np.asarray(mu, float)[:, None]
        var = shrink * v
    mean = (1 - shrink) * centre + shrink * y
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (cut - mean) / np.sqrt(var), np.where(mean <= cut, np.inf, -np.inf))
    return ndtr(z)


def check_against_shipped(per_setting: int = 2, seed: int = SEED) -> float:
    """The largest difference between ``hierarchical_probabilities`` and ``aim_probabilities``
    (trusts' and programme's probabilities) on ``per_setting`` programmes of every setting at
    each k; raises AssertionError beyond 1e-6 or if the τ medians differ."""
    worst = 0.0
    for i, setting in enumerate(SETTINGS):
        for k in KS:
            rng = np.random.default_rng([seed, 99, i, k])
            profile = tuple(SE_PROFILES)[(i + k) % len(SE_PROFILES)]
            sim = simulate(setting, k, profile, per_setting, rng)
            p, p_mu, tau = hierarchical_probabilities(sim["y"], sim["s"])
            for r in range(per_setting):
                ref = aim_probabilities(sim["y"][r], sim["s"][r])
                worst = max(
                    worst,
                    float(np.max(np.abs(ref.trusts[KEY].to_numpy() - p[r]))),
                    abs(ref.programme[KEY] - p_mu[r]),
                )
                assert abs(ref.tau - tau[r]) < 1e-9, (setting.name, k, ref.tau, tau[r])
    assert worst < 1e-6, f"the vectorised model differs from aim_probabilities by {worst:.2e}"
    return worst


def grid_cutoff(ks=(3, 4, 5, 8), n: int = 500, seed: int = SEED) -> pd.DataFrame:
    """How much the shipped τ grid's upper end (``TOP_FACTOR`` × max(SD of the estimates,
    largest SE))
    changes the probabilities: the same uniform prior on a grid ten times as long (and ten
    times the points, the same spacing), on ``pop_normal`` programmes with mixed SEs. With a
    uniform prior the posterior of τ falls off only like τ^(1-k), so for few trusts the
    cut-off acts as part of the prior."""
    rows = []
    for k in ks:
        sim = simulate(BY_NAME["pop_normal"], k, "mixed", n, np.random.default_rng([seed, 7, k]))
        p4, pm4, _ = hierarchical_probabilities(sim["y"], sim["s"])
        p40, pm40, _ = hierarchical_probabilities(
            sim["y"], sim["s"], points=10 * GRID_POINTS - 9, top_factor=10 * TOP_FACTOR
        )
        rows.append(
            {
                "k": k,
                "trust_max": float(np.abs(p4 - p40).max()),
                "trust_mean": float(np.abs(p4 - p40).mean()),
                "programme_max": float(np.abs(pm4 - pm40).max()),
            }
        )
    return pd.DataFrame(rows)


def _bins(p: np.ndarray, edges: tuple[float, ...] = EDGES) -> np.ndarray:
    """The bin of each probability (0-based; 1.0 falls in the last bin)."""
    return np.clip(np.searchsorted(np.asarray(edges), p, side="right") - 1, 0, len(edges) - 2)


def _cluster_se(hit: np.ndarray, cluster: np.ndarray, n_clusters: int) -> float:
    """Monte Carlo SE of the share ``hit.mean()`` when the rows are clustered (a ratio
    estimator: sqrt(J/(J-1)·Σ_j (h_j - r·n_j)²) / Σ n_j over the J clusters)."""
    if hit.size == 0 or n_clusters < 2:
        return math.nan
    r = hit.mean()
    h = np.bincount(cluster, weights=hit, minlength=n_clusters)
    m = np.bincount(cluster, minlength=n_clusters)
    return float(math.sqrt(n_clusters / (n_clusters - 1) * np.sum((h - r * m) ** 2)) / hit.size)


def reliability(
    p: np.ndarray,
    hit: np.ndarray,
    cluster: np.ndarray | None = None,
    edges: tuple[float, ...] = EDGES,
) -> pd.DataFrame:
    """Per bin of predicted probability: ``n``, ``mean_pred``, ``observed`` (share with the
    event), ``mcse`` (by ``cluster``: trusts of one programme are correlated; each row its own
    cluster when None) and ``mcse_binomial``."""
    p = np.asarray(p, float).ravel()
    hit = np.asarray(hit, float).ravel()
    cluster = np.arange(p.size) if cluster is None else np.asarray(cluster).ravel()
    _, cluster = np.unique(cluster, return_inverse=True)
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    b = _bins(p, edges)
    rows = []
    for j in range(len(edges) - 1):
        sel = b == j
        n = int(sel.sum())
        obs = float(hit[sel].mean()) if n else math.nan
        rows.append(
            {
                "bin": f"{edges[j]:.1f}-{edges[j + 1]:.1f}",
                "n": n,
                "mean_pred": float(p[sel].mean()) if n else math.nan,
                "observed": obs,
                "mcse": _cluster_se(hit[sel], cluster[sel], n_clusters) if n else math.nan,
                "mcse_binomial": math.sqrt(obs * (1 - obs) / n) if n else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _overall(p: np.ndarray, hit: np.ndarray, cluster: np.ndarray, table: pd.DataFrame) -> dict:
    """The summary row of a group: calibration in the large, Brier score, expected calibration
    error and what happens to trusts (or programmes) given p ≥ 0.8."""
    p, hit, cluster = p.ravel(), hit.ravel().astype(float), cluster.ravel()
    _, cl = np.unique(cluster, return_inverse=True)
    high = p >= HIGH
    filled = table[table["n"] > 0]
    any_high = np.bincount(cl, weights=high.astype(float)) > 0
    return {
        "bin": "all",
        "n": int(p.size),
        "mean_pred": float(p.mean()),
        "observed": float(hit.mean()),
        "mcse": _cluster_se(hit, cl, int(cl.max()) + 1),
        "mcse_binomial": math.sqrt(hit.mean() * (1 - hit.mean()) / p.size),
        "brier": float(np.mean((p - hit) ** 2)),
        "ece": float(np.sum(filled["n"] * (filled["observed"] - filled["mean_pred"]).abs()))
        / p.size,
        "share_ge_0_8": float(high.mean()),
        "pred_given_ge_0_8": float(p[high].mean()) if high.any() else math.nan,
        "met_given_ge_0_8": float(hit[high].mean()) if high.any() else math.nan,
        "mcse_met_given_ge_0_8": _cluster_se(hit[high], cl[high], int(cl.max()) + 1)
        if high.sum() > 1
        else math.nan,
        "programmes_any_ge_0_8": float(any_high.mean()),
    }


def _band(values: np.ndarray, bands) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    for lo, hi, label in bands:
        out[(values >= lo) & (values < hi)] = label
    return out


def run_cell(task: tuple[str, int, str, int, int]) -> list[dict]:
    """Every row of one cell (setting, k, SE profile): trust-level reliability of the
    hierarchical and the no-borrowing probabilities, overall and by the programme's
    probability band and τ̂ band; programme-level reliability of P(μ ≤ log 0.75)."""
    name, k, profile, n, seed = task
    setting = BY_NAME[name]
    rng = np.random.default_rng(
        [seed, SETTINGS.index(setting), k, tuple(SE_PROFILES).index(profile)]
    )
    sim = simulate(setting, k, profile, n, rng)
    p, p_mu, tau_hat = hierarchical_probabilities(sim["y"], sim["s"])
    p_nb = no_borrowing(sim["y"], sim["s"])
    hit = sim["theta"] <= AIM
    prog = np.repeat(np.arange(n), k).reshape(n, k)
    mu_band = _band(p_mu, P_MU_BANDS)
    tau_band = _band(tau_hat, TAU_BANDS)
    base = {
        "setting": name,
        "population": setting.population,
        "generator": setting.generator,
        "se_factor": setting.se_factor,
        "mu": setting.mu,
        "tau": setting.tau,
        "k": k,
        "se_profile": profile,
        "programmes_in_cell": n,
    }
    rows: list[dict] = []

    def add(level: str, method: str, index: str, pp, hh, cc, extra=None) -> None:
        table = reliability(pp, hh, cc)
        over = _overall(pp, hh, cc, table)
        programmes = len(np.unique(cc))
        head = {**base, "level": level, "method": method, "index": index, "programmes": programmes}
        for r in table.to_dict("records"):
            rows.append({**head, **r})
        rows.append({**head, **over, **(extra or {})})

    by_tau = [(label, tau_band == label) for *_, label in TAU_BANDS]
    indices = [
        ("all", np.ones(n, bool)),
        *((label, mu_band == label) for *_, label in P_MU_BANDS),
        *by_tau,
    ]
    for index, keep in indices:
        if not keep.any():
            continue
        add("trust", "hierarchical", index, p[keep], hit[keep], prog[keep])
        if index == "all":
            add("trust", "no_borrowing", index, p_nb[keep], hit[keep], prog[keep])
    if setting.generator in ("normal", "null"):  # where the true τ (and μ) are defined
        tau_true = np.nan_to_num(sim["tau_true"])
        p_tau = given_tau(sim["y"], sim["s"], tau_true)
        p_oracle = given_tau(sim["y"], sim["s"], tau_true, sim["mu_true"])
        add("trust", "tau_known", "all", p_tau, hit, prog)
        add("trust", "oracle_mu_tau_known", "all", p_oracle, hit, prog)
    mean_hit = sim["theta"].mean(axis=1) <= AIM
    for index, keep in [("all", np.ones(n, bool)), *by_tau]:
        if keep.sum() < 2:
            continue
        add(
            "programme",
            "hierarchical",
            index,
            p_mu[keep],
            sim["mu_true"][keep] <= AIM,
            np.arange(n)[keep],
            {"observed_trust_mean": float(mean_hit[keep].mean())},
        )
    # the share of programmes in each band of the programme's probability (what a user sees)
    for *_, label in P_MU_BANDS:
        rows.append(
            {
                **base,
                "level": "programme",
                "method": "hierarchical",
                "index": label,
                "bin": "share_of_programmes",
                "programmes": int((mu_band == label).sum()),
                "observed": float((mu_band == label).mean()),
            }
        )
    return rows


def tasks(programmes: int, quick: bool, seed: int = SEED) -> list[tuple[str, int, str, int, int]]:
    ks = (5, 14) if quick else KS
    profiles = ("mixed",) if quick else tuple(SE_PROFILES)
    out = [(s.name, k, pr, programmes, seed) for s in SETTINGS for k in ks for pr in profiles]
    return sorted(out, key=lambda t: -t[1])  # the big cells first


# ------------------------------------------------------------------ the report


def _f(v: float, digits: int = 2) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _select(table: pd.DataFrame, **keys) -> pd.DataFrame:
    sel = np.ones(len(table), bool)
    for col, val in keys.items():
        sel &= (table[col] == val).to_numpy()
    return table[sel]


def _reliability_lines(table: pd.DataFrame, rows: list[tuple[str, dict]]) -> list[str]:
    """A reliability table: a row per (label, selection), a column per bin, cells "observed
    (mean predicted)" with the largest Monte Carlo SE of the row and the Brier score."""
    lines = [
        "| cell | " + " | ".join(BIN_LABELS) + " | max MC SE | n trusts | Brier |",
        "|---|" + "---:|" * (len(BIN_LABELS) + 3),
    ]
    for label, keys in rows:
        sub = _select(table, **keys)
        if sub.empty:
            continue
        cells = []
        for b in BIN_LABELS:
            r = sub[sub["bin"] == b]
            if r.empty or r["n"].iloc[0] < 20:
                cells.append("·" if r.empty or r["n"].iloc[0] == 0 else f"({int(r['n'].iloc[0])})")
                continue
            r = r.iloc[0]
            cells.append(f"{_f(r['observed'])} ({_f(r['mean_pred'])})")
        binned = sub[sub["bin"].isin(BIN_LABELS) & (sub["n"] >= 20)]
        allrow = sub[sub["bin"] == "all"].iloc[0]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {_f(binned['mcse'].max(), 3)} | {int(allrow['n'])} | {_f(allrow['brier'], 3)} |"
        )
    return lines


def _met(row, se: bool = False) -> str:
    """ "met (mean p)" of the trusts given p ≥ 0.8, with its cluster SE if ``se``."""
    if not np.isfinite(row["met_given_ge_0_8"]):
        return "–"
    mcse = f" ± {_f(row['mcse_met_given_ge_0_8'], 3)}" if se else ""
    return f"{_f(row['met_given_ge_0_8'])}{mcse} ({_f(row['pred_given_ge_0_8'])})"


def _summary_lines(table: pd.DataFrame, settings, ks, profiles) -> list[str]:
    lines = [
        "| setting | k | SEs | Brier | Brier, no borrowing | ECE | ECE, no borrowing "
        "| given ≥ 0.8 | of those, met (mean p) | met, no borrowing (mean p) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in settings:
        for k in ks:
            for pr in profiles:
                keys = {"setting": name, "k": k, "se_profile": pr, "level": "trust"}
                keys["index"], keys["bin"] = "all", "all"
                h = _select(table, method="hierarchical", **keys)
                nb = _select(table, method="no_borrowing", **keys)
                if h.empty:
                    continue
                h, nb = h.iloc[0], nb.iloc[0]
                lines.append(
                    f"| {name} | {k} | {pr} | {_f(h['brier'], 3)} | {_f(nb['brier'], 3)} | "
                    f"{_f(h['ece'], 3)} | {_f(nb['ece'], 3)} | {_f(100 * h['share_ge_0_8'], 0)}% "
                    f"| {_met(h, True)} | {_met(nb)} |"
                )
    return lines


def _null_lines(table: pd.DataFrame, ks, profiles) -> list[str]:
    lines = [
        "| k | SEs | trusts given ≥ 0.8 | no borrowing | programmes with a trust given ≥ 0.8 "
        "| no borrowing | mean trust p | programmes given p(μ) ≥ 0.8 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ks:
        for pr in profiles:
            keys = {"setting": "null", "k": k, "se_profile": pr, "index": "all", "bin": "all"}
            h = _select(table, level="trust", method="hierarchical", **keys)
            if h.empty:
                continue
            h = h.iloc[0]
            nb = _select(table, level="trust", method="no_borrowing", **keys).iloc[0]
            pg = _select(table, level="programme", **keys).iloc[0]
            lines.append(
                f"| {k} | {pr} | {_f(100 * h['share_ge_0_8'], 2)}% | "
                f"{_f(100 * nb['share_ge_0_8'], 2)}% | {_f(100 * h['programmes_any_ge_0_8'], 1)}% "
                f"| {_f(100 * nb['programmes_any_ge_0_8'], 1)}% | {_f(h['mean_pred'], 3)} | "
                f"{_f(100 * pg['share_ge_0_8'], 2)}% |"
            )
    return lines


def _programme_lines(table: pd.DataFrame, settings, ks, profile: str) -> list[str]:
    lines = [
        "| setting | k | " + " | ".join(BIN_LABELS) + " | Brier | given ≥ 0.8 | of those, met |",
        "|---|---:|" + "---:|" * (len(BIN_LABELS) + 3),
    ]
    for name in settings:
        for k in ks:
            keys = {"setting": name, "k": k, "se_profile": profile, "level": "programme"}
            sub = _select(table, index="all", **keys)
            if sub.empty:
                continue
            cells = []
            for b in BIN_LABELS:
                r = sub[sub["bin"] == b].iloc[0]
                cells.append(
                    "·"
                    if r["n"] == 0
                    else (
                        f"({int(r['n'])})"
                        if r["n"] < 20
                        else f"{_f(r['observed'])} ({_f(r['mean_pred'])})"
                    )
                )
            a = sub[sub["bin"] == "all"].iloc[0]
            lines.append(
                f"| {name} | {k} | "
                + " | ".join(cells)
                + f" | {_f(a['brier'], 3)} | {_f(100 * a['share_ge_0_8'], 1)}% | "
                f"{_f(a['met_given_ge_0_8'])} |"
            )
    return lines


def _band_share_lines(table: pd.DataFrame, settings, k: int, profile: str) -> list[str]:
    labels = [label for *_, label in P_MU_BANDS]
    lines = [
        "| setting | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for name in settings:
        keys = {"setting": name, "k": k, "se_profile": profile, "bin": "share_of_programmes"}
        sub = _select(table, **keys)
        if sub.empty:
            continue
        cells = [_f(100 * _select(sub, index=lab)["observed"].iloc[0], 0) + "%" for lab in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _markdown(table: pd.DataFrame, meta: dict) -> str:
    ks = sorted(set(table["k"]))
    profiles = [p for p in SE_PROFILES if p in set(table["se_profile"])]
    k0 = 14 if 14 in ks else ks[-1]
    pr0 = "mixed"
    names = [s.name for s in SETTINGS]
    t = table
    lines = [
        "# Is the probability of meeting the aim calibrated? (issue 18)",
        "",
        f"Generated by `validation/aim_calibration.py`{' --quick' if meta['quick'] else ''} in "
        f"{meta['seconds']:.0f} s on {meta['jobs']} cores: {meta['programmes']} simulated "
        f"programmes per cell, {len(ks)} values of k × {len(profiles)} SE profiles × "
        f"{len(SETTINGS)} settings ({meta['trusts']:,} trusts in all); design in the script's "
        "docstring, every number in `aim_calibration.csv`. The probability studied is "
        "`p_rr_le_0_75` of `aim_probabilities` (the trust's true 12-month rate ratio ≤ 0.75), "
        "and the programme's `p_rr_le_0_75` for μ. The study uses a vectorised copy of the "
        "model, checked against `aim_probabilities` before the run on "
        f"{meta['checked']} programmes of every setting and k: largest difference "
        f"{meta['check_diff']:.1e} (required < 1e-6; the τ medians identical).",
        "",
        "Reading the tables: each cell is *observed share of trusts whose true ratio is ≤ 0.75 "
        "(mean predicted probability)* for the trusts whose probability fell in the bin; a "
        "calibrated probability has the two equal. Bins with fewer than 20 trusts show the "
        "count in brackets. Monte Carlo SEs are by programme clusters (the trusts of one "
        "programme share its μ̂ and τ̂, so they are correlated; the cluster SE is "
        f"{meta['se_ratio'][0]:.1f}-{meta['se_ratio'][1]:.1f} times the binomial one here). "
        "ECE: expected calibration error, the count-weighted mean "
        "|observed − predicted| over the six bins. *No borrowing*: Φ((log 0.75 − y_i)/s_i), "
        "each trust on its own.",
        "",
        "Settings: `pop_*` draw μ ~ U(log 0.6, log 1.0) and τ ~ U(0, 0.3) afresh for each "
        "programme (a population of programmes); `near_*` fix μ = log 0.78, τ = 0.15 (a "
        "programme whose mean is just short of the aim: 40% of its trusts meet it); "
        "`beyond_normal` μ = log 0.6, τ = 0.15 (93% meet it); `mixture_60_40` 60% responders "
        "at 0.65, 40% at 1.0 (mean ratio 0.77); `null` no trust improved. `t3`: heavy-tailed "
        "trust effects; `mixture`: responders and non-responders; `se0.7` / `se1.3`: the "
        "estimates scatter 0.7 / 1.3 times as much as the SEs the model is told. SE profiles: "
        "log-uniform on 0.08-0.18 (`small`, median ≈ 0.12), 0.08-0.5 (`mixed`, ≈ 0.2), "
        "0.18-0.5 (`large`, ≈ 0.3).",
        "",
        f"## 1. Trust probabilities, reliability by setting (k = {k0}, mixed SEs)",
        "",
        *_reliability_lines(
            t,
            [
                (
                    f"{name}{' (no borrowing)' if m == 'no_borrowing' else ''}",
                    {
                        "setting": name,
                        "k": k0,
                        "se_profile": pr0,
                        "level": "trust",
                        "method": m,
                        "index": "all",
                    },
                )
                for name in names
                if name != "null"
                for m in ("hierarchical", "no_borrowing")
                if m == "hierarchical" or name in ("pop_normal", "near_normal")
            ],
        ),
        "",
        "## 2. Reference population and the fixed programme near the aim, by k and SE profile",
        "",
        *_reliability_lines(
            t,
            [
                (
                    f"{name}, k = {k}, {pr}",
                    {
                        "setting": name,
                        "k": k,
                        "se_profile": pr,
                        "level": "trust",
                        "method": "hierarchical",
                        "index": "all",
                    },
                )
                for name in ("pop_normal", "near_normal")
                for k in ks
                for pr in profiles
            ],
        ),
        "",
        "## 3. Where the over-confidence comes from: τ known, and μ and τ known",
        "",
        "The same trusts scored with the model's probability, the model with the true τ "
        "given (μ still estimated, flat prior), the oracle with the true μ and τ given "
        "(exactly calibrated when the θ_i are normal and the SEs right) and no borrowing. "
        "Mixed SEs.",
        "",
        *_reliability_lines(
            t,
            [
                (
                    f"{name}, k = {k}, {METHOD_LABEL[m]}",
                    {
                        "setting": name,
                        "k": k,
                        "se_profile": pr0,
                        "level": "trust",
                        "method": m,
                        "index": "all",
                    },
                )
                for name in ("pop_normal", "near_normal", "beyond_normal")
                for k in ks
                for m in METHOD_LABEL
            ],
        ),
        "",
        "## 4. Indexed by what a user sees: the programme's own probability p(μ ≤ log 0.75)",
        "",
        f"Trust probabilities (k = {k0}, mixed SEs) split by the band of the programme's "
        "probability for μ. Share of programmes in each band:",
        "",
        *_band_share_lines(t, names, k0, pr0),
        "",
        *_reliability_lines(
            t,
            [
                (
                    f"{name}, {index}",
                    {
                        "setting": name,
                        "k": k0,
                        "se_profile": pr0,
                        "level": "trust",
                        "method": "hierarchical",
                        "index": index,
                    },
                )
                for name in (
                    "pop_normal",
                    "pop_t3",
                    "pop_mixture",
                    "near_normal",
                    "mixture_60_40",
                    "beyond_normal",
                )
                for *_, index in P_MU_BANDS
            ],
        ),
        "",
        "## 5. Indexed by the posterior median of τ (`.tau`)",
        "",
        *_reliability_lines(
            t,
            [
                (
                    f"{name}, k = {k}, {index}",
                    {
                        "setting": name,
                        "k": k,
                        "se_profile": pr0,
                        "level": "trust",
                        "method": "hierarchical",
                        "index": index,
                    },
                )
                for name in ("pop_normal", "near_normal")
                for k in sorted({ks[0], k0})
                for *_, index in TAU_BANDS
            ],
        ),
        "",
        "## 6. Summary of every trust-level cell",
        "",
        "Brier score and ECE of the hierarchical and the no-borrowing probabilities; the share "
        "of trusts given p ≥ 0.8, the share of those whose true ratio met the aim (± cluster "
        "Monte Carlo SE) and their mean probability in brackets.",
        "",
        *_summary_lines(t, names, ks, profiles),
        "",
        "## 7. The null programme: false reassurance",
        "",
        "No trust improved (every true ratio 1.0), so no trust meets the aim and every "
        "probability of meeting it should be low.",
        "",
        *_null_lines(t, ks, profiles),
        "",
        "## 8. The programme's probability p(μ ≤ log 0.75)",
        "",
        "Per programme: observed share of programmes whose generating mean met the aim (mean "
        "predicted) in each bin of the programme's probability; one programme, one outcome, so "
        "the Monte Carlo SE is binomial. In a fixed setting the truth is the same for every "
        "programme (near: μ = log 0.78 does not meet the aim; beyond: it does; null: it does "
        "not), so the column that matters is the share given ≥ 0.8.",
        "",
        *_programme_lines(t, names, ks, pr0),
        "",
    ]
    lines += [
        "## 9. What a probability in each bin meant, across the cells",
        "",
        "Range over k and SE profile of the observed share of trusts meeting the aim, among "
        "trusts whose probability fell in the bin (bins with ≥ 100 trusts).",
        "",
        *_range_lines(t),
        "",
        "## 10. Side check: the upper end of the τ grid",
        "",
        f"`aim_probabilities` integrates τ over [0, {TOP_FACTOR:g} × max(SD of the estimates, "
        "largest SE)] and refuses fewer than 5 trusts (`MIN_TRUSTS`; the first version ran "
        "to 4 × and accepted 3, which this check showed moved probabilities by up to 0.07). "
        "The same uniform prior on a grid ten times as long (same spacing), `pop_normal` "
        "programmes with mixed SEs, 500 per k; absolute change in the probabilities:",
        "",
        "| k | trusts: largest | trusts: mean | programme: largest |",
        "|---:|---:|---:|---:|",
        *(
            f"| {r.k} | {r.trust_max:.4f} | {r.trust_mean:.4f} | {r.programme_max:.4f} |"
            for r in meta["cutoff"].itertuples()
        ),
        "",
        *_conclusion(t, meta),
    ]
    return "\n".join(lines) + "\n"


#: groups of settings for the range table and the conclusion
GROUPS = {
    "population, normal (the reference)": ("pop_normal",),
    "population, heavy tails or SEs × 0.7": ("pop_t3", "pop_se0.7"),
    "population, SEs × 1.3": ("pop_se1.3",),
    "population, responder mixture": ("pop_mixture",),
    "near the aim, normal": ("near_normal",),
    "near the aim, heavy tails or SEs × 1.3": ("near_t3", "near_se1.3"),
    "near the aim, SEs × 0.7": ("near_se0.7",),
    "beyond the aim (μ = log 0.6)": ("beyond_normal",),
    "60/40 responder mixture": ("mixture_60_40",),
}


def _bin_rows(table: pd.DataFrame, settings, method: str = "hierarchical") -> pd.DataFrame:
    sel = (
        (table["level"] == "trust")
        & (table["method"] == method)
        & (table["index"] == "all")
        & table["setting"].isin(settings)
        & table["bin"].isin(BIN_LABELS)
        & (table["n"] >= 100)
    )
    return table[sel]


def _range_lines(table: pd.DataFrame) -> list[str]:
    lines = [
        "| settings | " + " | ".join(BIN_LABELS) + " |",
        "|---|" + "---:|" * len(BIN_LABELS),
    ]
    for label, settings in GROUPS.items():
        sub = _bin_rows(table, settings)
        cells = []
        for b in BIN_LABELS:
            o = sub.loc[sub["bin"] == b, "observed"]
            cells.append(f"{o.min():.2f}-{o.max():.2f}" if len(o) else "·")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _one(table: pd.DataFrame, **keys) -> pd.Series:
    sub = _select(table, **keys)
    return sub.iloc[0] if len(sub) else pd.Series(dtype=float)


def _conclusion(t: pd.DataFrame, meta: dict) -> list[str]:
    """The conclusion, its numbers read from the table (the words from the full run)."""
    k0, pr0 = (14, "mixed") if 14 in set(t["k"]) else (int(t["k"].max()), "mixed")

    def gap(settings) -> float:
        sub = _bin_rows(t, settings)
        return float((sub["observed"] - sub["mean_pred"]).abs().max())

    def span(settings, b="0.9-1.0") -> tuple[float, float]:
        o = _bin_rows(t, settings).query("bin == @b")["observed"]
        return float(o.min()), float(o.max())

    def row(setting: str, b: str, index: str = "all", method: str = "hierarchical", **kw):
        keys = {"k": k0, "se_profile": pr0, **kw}
        return _one(t, setting=setting, level="trust", method=method, index=index, bin=b, **keys)

    def obs(setting: str, b: str, index: str = "all") -> str:
        r = row(setting, b, index)
        return f"{r['observed']:.2f} (predicted {r['mean_pred']:.2f})" if len(r) else "n/a"

    near_top, near_79, near_low = (
        span(["near_normal"], b) for b in ("0.9-1.0", "0.7-0.9", "0.0-0.1")
    )
    mis_top = span(["near_t3", "near_se1.3"])
    cons_pop = gap(["pop_se0.7"])
    cons_top = span(["near_se0.7"])
    null = _select(t, setting="null", level="trust", index="all", bin="all")
    nb_null = null[null["method"] == "no_borrowing"]
    hi_null = null[null["method"] == "hierarchical"]
    progs = _select(t, level="programme", index="all", bin="all")
    prog_near = progs[progs["setting"].isin(["near_normal", "near_t3", "near_se1.3"])]
    prog_null = progs[progs["setting"] == "null"]
    share_high = _select(
        t, setting="near_normal", k=k0, se_profile=pr0, index="p_mu>=0.8", bin="share_of_programmes"
    )["observed"]
    brier = {
        (name, m): row(name, "all", method=m)["brier"]
        for name in ("pop_normal", "near_normal")
        for m in ("hierarchical", "no_borrowing")
    }
    cut = meta["cutoff"].set_index("k")
    quick = " (a quick run: the numbers are noisy)" if meta["quick"] else ""
    return [
        f"## Conclusion{quick}",
        "",
        "- **Averaged over a population of programmes, the trust probabilities can be read at "
        "face value.** With normal trust effects and right SEs every bin of every k and SE "
        f"profile is within {gap(['pop_normal']):.2f} of its prediction (heavy-tailed effects "
        f"{gap(['pop_t3']):.2f}, conservative SEs {cons_pop:.2f}); the largest gaps are with 5 "
        "trusts and large SEs, over-confident at the top. Estimates that scatter 1.3 times "
        f"their reported SEs push the gap to {gap(['pop_se1.3']):.2f}. The programme's own "
        "probability is calibrated in the same sense (section 8), except for responder "
        "mixtures with few trusts.",
        "- **For one programme whose mean sits near the aim they are over-confident at the "
        f"extremes.** At μ = log 0.78, τ = 0.15, trusts given 0.9-1.0 met the aim "
        f"{near_top[0]:.2f}-{near_top[1]:.2f} of the time and those given 0.7-0.9 "
        f"{near_79[0]:.2f}-{near_79[1]:.2f} (predicted about 0.95 and 0.79); those given under "
        f"0.1 met it {near_low[0]:.2f}-{near_low[1]:.2f} of the time (predicted about 0.04). "
        "The worst is with large SEs, where a trust's probability mostly repeats the "
        "programme's estimate; with small SEs it is close to calibrated. Giving the model the "
        "true τ barely helps; giving it the true μ as well makes it calibrated (section 3): "
        "the error is the programme's μ̂, shared by all its trusts, so the trusts' "
        "probabilities are right or wrong together. With heavy-tailed effects or estimates "
        "scattering 1.3 times their SEs, trusts given 0.9-1.0 near the aim met it only "
        f"{mis_top[0]:.2f}-{mis_top[1]:.2f} of the time; with conservative SEs (as our trust "
        f"ITS's appear to be) {cons_top[0]:.2f}-{cons_top[1]:.2f}.",
        "- **What a user sees does not say which case applies.** In the population, the "
        "trusts of programmes given p(μ) ≥ 0.8 are calibrated; in the near-aim programme, the "
        f"{100 * share_high.iloc[0]:.0f}% of runs that give p(μ) ≥ 0.8 (k = {k0}) put trusts "
        f"given 0.7-0.9 at {obs('near_normal', '0.7-0.9', 'p_mu>=0.8')} and those given "
        f"0.9-1.0 at {obs('near_normal', '0.9-1.0', 'p_mu>=0.8')}, and the runs with "
        "p(μ) < 0.2 understate their trusts (0.3-0.5: "
        f"{obs('near_normal', '0.3-0.5', 'p_mu<0.2')}) (section 4): trust probabilities lean "
        "too far the way the programme's estimate errs. A small τ̂ (< 0.1) near the aim "
        "makes it worse (section 5). The programme's probability behaves like a one-sided "
        "test: when μ just misses the aim it is ≥ 0.8 in "
        f"{100 * prog_near['share_ge_0_8'].min():.0f}-{100 * prog_near['share_ge_0_8'].max():.0f}"
        "% of programmes, and in at most "
        f"{100 * prog_null['share_ge_0_8'].max():.2f}% of null programmes.",
        "- **Fixed elsewhere, or misspecified the other way, they are too pessimistic.** In a "
        "clearly successful programme (μ = log 0.6) trusts given 0.1-0.3 met the aim "
        f"{obs('beyond_normal', '0.1-0.3')}; with responders and non-responders, trusts "
        f"given 0.3-0.5 met it {obs('mixture_60_40', '0.3-0.5')}: a responder is pulled "
        "towards a programme mean that falls short of the aim.",
        "- **Borrowing is what keeps a null programme from looking successful.** With no "
        f"effect anywhere, at most {100 * hi_null['share_ge_0_8'].max():.2f}% of trusts (and "
        f"{100 * hi_null['programmes_any_ge_0_8'].max():.1f}% of programmes) got p ≥ 0.8; "
        "each trust on its own (no borrowing) gave "
        f"{100 * nb_null['share_ge_0_8'].min():.1f}-{100 * nb_null['share_ge_0_8'].max():.1f}% "
        "of trusts p ≥ 0.8 and up to "
        f"{100 * nb_null['programmes_any_ge_0_8'].max():.0f}% of programmes at least one such "
        f"trust. Brier score (k = {k0}, mixed SEs): population "
        f"{brier['pop_normal', 'hierarchical']:.3f} against "
        f"{brier['pop_normal', 'no_borrowing']:.3f} without borrowing; near the aim "
        f"{brier['near_normal', 'hierarchical']:.3f} against "
        f"{brier['near_normal', 'no_borrowing']:.3f}.",
        "- **The τ grid.** Its upper end changes the probabilities by at most "
        f"{cut.loc[5, 'trust_max']:.3f} at k = 5 (so not this study), but by up to "
        f"{cut.loc[3, 'trust_max']:.2f} for a trust and {cut.loc[3, 'programme_max']:.2f} for "
        "the programme at k = 3, which `aim_probabilities` accepts: there the cut-off is part "
        "of the prior, not a numerical detail (section 10).",
        "",
        "**What a report should say.** Read a trust's probability together with the "
        "programme's, and say that they share it, e.g. \"Taking all 14 trusts together, the "
        "probability that Trust X cut restrictive practice by at least a quarter is 0.8 (for "
        "the programme as a whole: 0.6). The trusts' probabilities lean on the programme's "
        "overall result and would all move with it; the wider Trust X's own interval, the "
        'more of this figure comes from the programme." Give one decimal, or words: ≥ 0.9 '
        '"very likely" (not "almost certain": near the aim such trusts met it as rarely '
        f"as {near_top[0]:.2f}, or {mis_top[0]:.2f} with heavy tails or SEs too small), "
        '0.7-0.9 "likely", 0.3-0.7 "uncertain", 0.1-0.3 '
        '"unlikely", < 0.1 "very unlikely". Do not add the trusts\' probabilities up into '
        "a count of trusts that met the aim without saying that they are right or wrong "
        "together, and when the programme's own probability is high (≥ 0.8) or low (< 0.2), "
        "say that the trusts' probabilities lean the same way because of it. Never report "
        "the no-borrowing probability on its own.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programmes", type=int, default=None, help="per cell (4000; quick 300)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="k = 5, 14, mixed SEs, 300 each")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    n = args.programmes or (300 if args.quick else 4000)
    t0 = time.perf_counter()
    per_setting = 2
    diff = check_against_shipped(per_setting, args.seed)
    print(f"vectorised model agrees with aim_probabilities: max |diff| {diff:.1e}", flush=True)
    todo = tasks(n, args.quick, args.seed)
    rows: list[dict] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, part in enumerate(pool.map(run_cell, todo), 1):
            rows += part
            if i % 12 == 0:
                print(f"{i}/{len(todo)} cells ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    order = {
        "setting": [x.name for x in SETTINGS],
        "se_profile": list(SE_PROFILES),
    }
    table = table.sort_values(
        ["setting", "k", "se_profile"],
        key=lambda c: c.map({v: i for i, v in enumerate(order[c.name])}) if c.name in order else c,
        kind="stable",
    ).reset_index(drop=True)
    for col in ("n", "programmes"):
        table[col] = table[col].astype("Int64")
    cutoff = grid_cutoff(seed=args.seed)
    seconds = time.perf_counter() - t0
    binned = table[table["bin"].isin(BIN_LABELS) & (table["n"] >= 100)]
    ratio = binned["mcse"] / binned["mcse_binomial"]
    table.to_csv(HERE / "aim_calibration.csv", index=False, float_format="%.4f")
    meta = {
        "quick": args.quick,
        "seconds": seconds,
        "jobs": args.jobs,
        "programmes": n,
        "trusts": sum(t[1] * t[3] for t in todo),
        "checked": per_setting,
        "check_diff": diff,
        "cutoff": cutoff,
        "se_ratio": (float(ratio.min()), float(ratio.max())),
    }
    (HERE / "aim_calibration.md").write_text(_markdown(table, meta), encoding="utf-8")
    print(f"{len(todo)} cells, {meta['trusts']:,} trusts in {seconds:.0f} s")


if __name__ == "__main__":
    main()
