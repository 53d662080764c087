"""Controlled programme analysis: participating wards against wards that never joined.

Three estimators on the ward panel, all with calendar-month fixed effects so that a secular
trend and seasonality common to every ward are taken out:

- ``etwfe_poisson``: Wooldridge's (2023) extended two-way fixed-effects Poisson model, with
  cohort-specific treatment effects (a level and a slope per cohort for the headline effects;
  one effect per cohort and event time for the event study), ward and month fixed effects,
  the log bed-day offset and standard errors clustered by trust.
- ``callaway_santanna``: Callaway & Sant'Anna's (2021) group-time average treatment effects on
  monthly rates per 1,000 occupied bed days, never-joined wards as the comparison, aggregated
  by event time, with a cluster (trust) bootstrap; a sensitivity analysis on the additive scale.
- ``twfe_naive``: the static two-way fixed-effects model with one "after joining" indicator,
  kept only to show (tests, docs/methods.md) why it must not be used under staggered adoption.

References: Wooldridge JM (2023) Simple approaches to nonlinear difference-in-differences with
panel data. Econometrics Journal 26:C31-C66. Callaway B, Sant'Anna PHC (2021)
Difference-in-differences with multiple time periods. Journal of Econometrics 225:200-230.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from rrp_eval.models import fe
from rrp_eval.models.results import ResultMixin, as_figure, ratio_frame
from rrp_eval.prepare import months_since

CS_SEED = 20210  # the cluster bootstrap's seed: the same data give the same intervals
PANEL_COLUMNS = [
    "trust_code",
    "ward_id",
    "ward",
    "cohort",
    "month",
    "t",
    "event_time",
    "count",
    "occupied_bed_days",
]


def event_time_panel(ward_month: pd.DataFrame, wards: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The ward panel aligned on months since each ward joined, calendar time kept.

    Returns
    -------
    pandas.DataFrame
        One row per ward-month with the measure recorded and bed days > 0: ``trust_code,
        ward_id, ward`` (``trust/ward``), ``cohort`` (the ward's start month; NaT for a
        comparison ward), ``month``, ``t`` (months since the panel's first month),
        ``event_time`` (months since the ward's start, 0 = the month it joined; NaN for a
        comparison ward), ``count``, ``occupied_bed_days``.
    """
    keys = wards[["trust_code", "ward_id", "start_month"]]
    d = ward_month.merge(keys, on=["trust_code", "ward_id"])
    d = d[d[measure].notna() & (d["occupied_bed_days"] > 0)]
    out = pd.DataFrame(
        {
            "trust_code": d["trust_code"],
            "ward_id": d["ward_id"],
            "ward": d["trust_code"] + "/" + d["ward_id"],
            "cohort": d["start_month"],
            "month": d["month"],
            "t": months_since(d["month"], d["month"].min()),
            "event_time": months_since(d["month"], d["start_month"]),
            "count": d[measure].astype(float),
            "occupied_bed_days": d["occupied_bed_days"].astype(float),
        }
    )
    return out.sort_values(["ward", "month"]).reset_index(drop=True)


def event_time_rates(panel: pd.DataFrame, window: tuple[int, int] = (-12, 24)) -> pd.DataFrame:
    """Participating wards' pooled rate per 1,000 bed days at each month since joining.

    Descriptive: the rate at event time ``e`` mixes cohorts observed in different calendar
    months, so it carries the secular trend with it.
    """
    p = panel[panel["event_time"].between(*window)]
    out = p.groupby("event_time").agg(
        count=("count", "sum"),
        occupied_bed_days=("occupied_bed_days", "sum"),
        wards=("ward", "nunique"),
    )
    out["rate_per_1000_obd"] = out["count"] / out["occupied_bed_days"] * 1000
    out.index = out.index.astype(int)
    return out.reset_index()


# --- the fixed-effects Poisson machinery --------------------------------------------------


def _drop_separated(y: np.ndarray, keys: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Observations left out because a fixed effect or treatment cell has no events.

    A ward, month or cell whose events sum to zero has its Poisson coefficient at minus
    infinity; its observations are fitted exactly (mean 0) and tell nothing about the rest
    (the likelihood's limit), so they leave the fit, as in fixest's ``fepois``. Returns
    ``keep`` and ``zero_cell``: observations of an all-zero treatment cell (their fitted mean
    is 0, their counterfactual still computable) are kept for the aggregation.
    """
    keep = np.ones(len(y), dtype=bool)
    zero_cell = np.zeros(len(y), dtype=bool)
    changed = True
    while changed:
        changed = False
        for name, key in keys.items():
            valid = keep & (key >= 0)
            if not valid.any():
                continue
            totals = np.bincount(key[valid], weights=y[valid], minlength=key.max() + 1)
            counts = np.bincount(key[valid], minlength=key.max() + 1)
            empty = (counts > 0) & (totals == 0)
            if not empty.any():
                continue
            hit = valid & empty[np.where(key >= 0, key, 0)]
            keep &= ~hit
            if name == "cell":
                zero_cell |= hit
            changed = True
    return keep, zero_cell


@dataclass
class _PoissonFE:
    """A Poisson fit with ward and month fixed effects and treatment columns.

    ``params`` follow ``columns``: the treatment columns, the months (the first left out as the
    reference), then the wards. ``X`` (sparse) holds every row of the panel, fitted or not.
    Covariances are the cluster (trust) sandwich with statsmodels' small-sample correction
    G/(G-1) (N-1)/(N-K), K counting every fixed effect, as the dense GLM it replaces had them.
    """

    params: np.ndarray
    X: sparse.csr_matrix
    offset: np.ndarray
    treat_cols: list[str]
    columns: list[str]
    n_clusters: int
    used: np.ndarray
    zero_cell: np.ndarray
    hessian: fe.BlockHessian
    scores: np.ndarray  # columns x clusters: each trust's score at the estimate
    correction: float

    def mu(self) -> np.ndarray:
        return np.exp(self.X @ self.params + self.offset)

    def cov_of(self, L: np.ndarray) -> np.ndarray:
        """The clustered covariance of ``L @ params`` (``L``: combinations x columns)."""
        return fe.sandwich(self.hessian, self.scores, L, self.correction)

    def var(self, vec: np.ndarray) -> float:
        """The clustered variance of ``vec @ params``."""
        return float(self.cov_of(vec)[0, 0])


def _onehot_columns(key: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, int]:
    """Column numbers (-1 off support) of the one-hot dummies of ``key``'s supported levels."""
    index = np.cumsum(support) - 1
    return np.where(support[key], index[key], -1), int(support.sum())


def _fit_poisson_fe(
    panel: pd.DataFrame,
    treat: pd.DataFrame | tuple[sparse.spmatrix, list[str]],
    cells: np.ndarray | None = None,
) -> _PoissonFE:
    """Poisson quasi-likelihood with ward and month fixed effects, clustered by trust.

    The estimator of a GLM with a dummy per ward and month (statsmodels, as the suite fitted
    it before issue 20: the same digits), with the wards absorbed (:mod:`rrp_eval.models.fe`)
    so that time and memory grow with the ward-months. ``treat`` is a frame of treatment
    columns or a sparse matrix with its column names.
    """
    if isinstance(treat, pd.DataFrame):
        names = list(treat.columns)
        t_mat = sparse.csr_matrix(treat.to_numpy(float))
    else:
        t_mat, names = sparse.csr_matrix(treat[0]), list(treat[1])
    y = panel["count"].to_numpy(float)
    ward_key, ward_names = pd.factorize(panel["ward"], sort=True)
    month_key, month_names = pd.factorize(panel["month"], sort=True)
    keys = {"ward": ward_key, "month": month_key}
    if cells is not None:
        keys["cell"] = cells
    fit_rows, zero_cell = _drop_separated(y, keys)
    if not y[fit_rows].any():  # e.g. mechanical restraint, recorded as 0 everywhere
        raise ValueError("no events in any ward-month: the model is not estimable")
    # columns with support among the fitted rows; the first month is the reference
    t_support = np.asarray(abs(t_mat[fit_rows]).sum(axis=0)).ravel() > 0
    m_support = np.bincount(month_key[fit_rows], minlength=len(month_names)) > 0
    w_support = np.bincount(ward_key[fit_rows], minlength=len(ward_names)) > 0
    if m_support.sum() < 2 or not t_support.any():
        raise ValueError("too few months or no treated ward-months with events to model")
    m_support[np.flatnonzero(m_support)[0]] = False
    t_mat = t_mat[:, np.flatnonzero(t_support)]
    treat_cols = [n for n, s in zip(names, t_support, strict=True) if s]
    month_col, n_months = _onehot_columns(month_key, m_support)
    ward_col, n_wards = _onehot_columns(ward_key, w_support)
    a_all = sparse.hstack([t_mat, fe.onehot(month_col, n_months)], format="csr")
    columns = [
        *treat_cols,
        *(f"m_{m:%Y-%m}" for m, s in zip(month_names, m_support, strict=True) if s),
        *(f"ward_{w}" for w, s in zip(ward_names, w_support, strict=True) if s),
    ]
    offset = np.log(panel["occupied_bed_days"].to_numpy(float))
    yf = y[fit_rows]
    fit = fe.fit_poisson(yf, offset[fit_rows], a_all[fit_rows], ward_col[fit_rows], n_wards)
    groups, _ = pd.factorize(panel["trust_code"].to_numpy()[fit_rows])
    g = int(groups.max()) + 1
    n_fit, k = len(yf), len(columns)
    return _PoissonFE(
        params=fit.beta,
        X=sparse.hstack([a_all, fe.onehot(ward_col, n_wards)], format="csr"),
        offset=offset,
        treat_cols=treat_cols,
        columns=columns,
        n_clusters=g,
        used=fit_rows,
        zero_cell=zero_cell & ~fit_rows,
        hessian=fit.hessian,
        scores=fe.cluster_scores(fit.design, yf - fit.mu, groups),
        # statsmodels' small-sample correction, every fixed effect counted in K
        correction=g / (g - 1) * (n_fit - 1) / (n_fit - k),
    )


def _interval(est: float, se: float, df: int, alpha: float = 0.05) -> dict[str, float]:
    q = stats.t.ppf(1 - alpha / 2, df)
    p = 2 * stats.t.sf(abs(est / se), df) if se > 0 else math.nan
    return {
        "estimate": math.exp(est),
        "ci_low": math.exp(est - q * se),
        "ci_high": math.exp(est + q * se),
        "p_value": float(p),
        "log_se": se,
    }


# --- Wooldridge's extended TWFE --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ControlledResult(ResultMixin):
    """The controlled analysis of one measure.

    Attributes
    ----------
    effects : dict
        ``level_rr``, ``slope_rr`` and ``rr_h``, each ``estimate, ci_low, ci_high, p_value,
        log_se``: the cohort-size-weighted average of the cohorts' level changes, slope
        changes and their combination at ``horizon`` months (ratio scale, against the
        counterfactual given by the comparison and not-yet-joined wards).
    event_study : pandas.DataFrame
        ``event_time, estimate, ci_low, ci_high, wards, kind`` (``lead`` before joining,
        ``lag`` after): the ratio of the participating wards' expected events to their
        expected events had they not joined, at each month since joining; leads are placebo
        effects (about 1 if trends were parallel before joining). Month -1 is the reference.
    placebo : dict
        The leads' average ratio (``estimate``) and the t test that it is 1 (``p_value``):
        evidence against parallel trends before joining when small.
    """

    measure: str
    effects: dict[str, dict]
    event_study: pd.DataFrame | None
    placebo: dict[str, float]
    n_trusts: int
    n_wards: int
    n_comparison_wards: int
    n_cohorts: int
    horizon: int
    dropped_observations: int
    cohort_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: tuple[str, ...] = ()

    @property
    def spec(self) -> dict[str, Any]:
        """The model and its set-up."""
        return {
            "model": "extended two-way fixed-effects Poisson (Wooldridge 2023)",
            "measure": self.measure,
            "horizon": self.horizon,
            "cov_type": "cluster (trust)",
            "cohorts": self.n_cohorts,
        }

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """``level_rr``, ``slope_rr`` and ``rr_h``: estimate, ci_low, ci_high, p_value."""
        return ratio_frame(self.effects, alpha)

    def _summary_title(self) -> str:
        return (
            f"{self.measure}: controlled analysis, {self.n_wards} participating wards in "
            f"{self.n_cohorts} cohorts against {self.n_comparison_wards} comparison wards"
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The event study (a Figure); fitted with ``event_study=True`` only."""
        from rrp_eval.plots import plot_event_study

        if self.event_study is None:
            raise ValueError("no event study: fit with event_study=True")
        return as_figure(plot_event_study(self.event_study, ax, **kwargs))

    def __repr__(self) -> str:
        e = self.effects["level_rr"]
        return (
            f"ControlledResult({self.measure}, level_rr {e['estimate']:.3f} "
            f"({e['ci_low']:.3f} to {e['ci_high']:.3f}), {self.n_trusts} trusts, "
            f"{self.n_cohorts} cohorts)"
        )


def without_phase_in(panel: pd.DataFrame, phase_in: int) -> pd.DataFrame:
    """The panel without each participating ward's first ``phase_in`` months after joining
    (0 <= event time < phase_in), as the trust ITS leaves them out."""
    if phase_in < 0:
        raise ValueError(f"phase_in={phase_in!r} must be >= 0")
    if phase_in == 0:
        return panel
    return panel[~panel["event_time"].between(0, phase_in - 1)].reset_index(drop=True)


def _cohort_columns(
    panel: pd.DataFrame, phase_in: int = 0
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """Per cohort: ``level_<g>`` (1 after joining) and ``slope_<g>`` (months since the end of
    the phase-in), so that the level is the change at event time ``phase_in`` as in the ITS."""
    cohorts = sorted(panel["cohort"].dropna().unique())
    cols = {}
    e = panel["event_time"].to_numpy(float)
    post = np.nan_to_num(e, nan=-1) >= 0
    for g in cohorts:
        tag = pd.Timestamp(g).strftime("%Y-%m")
        ing = (panel["cohort"] == g).to_numpy() & post
        cols[f"level_{tag}"] = ing.astype(float)
        cols[f"slope_{tag}"] = np.where(ing, e - phase_in, 0.0)
    return pd.DataFrame(cols, index=panel.index), [pd.Timestamp(g) for g in cohorts]


def etwfe_poisson(
    panel: pd.DataFrame,
    measure: str = "",
    horizon: int = 12,
    window: tuple[int, int] = (-12, 24),
    alpha: float = 0.05,
    event_study: bool = True,
    phase_in: int = 0,
) -> ControlledResult:
    """Wooldridge's extended two-way fixed-effects Poisson analysis of the ward panel.

    Headline model: log E[y_it] = log(bed days_it) + a_i + l_t + sum_g 1{G_i = g} 1{t >= g}
    (c_g + d_g (t - g)), with ward effects a_i, calendar-month effects l_t (secular trend and
    seasonality common to all wards, identified from comparison and not-yet-joined wards),
    and a level change c_g and slope change d_g per cohort g (wards joining in the same
    month). The programme's effects are cohort-size-weighted averages of the c_g and d_g.
    Event study (when ``event_study``): the same fixed effects with one coefficient per
    cohort and month since joining up to ``window[1]`` (every month before joining in the
    reference; later months left out), aggregated across cohorts on the ratio scale; and, as
    a placebo, a fit of the months before joining alone with one coefficient per cohort and
    month from ``window[0]`` to -2, against month -1 and the months before the window.

    Standard errors are clustered by trust (statsmodels' cluster-robust sandwich with its
    small-sample correction) and intervals use t on trusts - 1 df.

    With ``phase_in`` k, each participating ward's months 0 to k - 1 after joining leave the
    headline fit and the slope counts from month k, so ``level_rr`` is the change at month k,
    as in the trust ITS (the event study keeps every month).

    Raises
    ------
    ValueError
        With no comparison ward, no participating ward, or fewer than 3 trusts.
    """
    if panel.empty or panel["cohort"].isna().all():
        raise ValueError("no participating ward with data")
    if panel["cohort"].notna().all():
        raise ValueError("no comparison ward: a controlled analysis needs wards that never joined")
    if panel["trust_code"].nunique() < 3:
        raise ValueError("fewer than 3 trusts: clustered standard errors need more")
    full = panel
    panel = without_phase_in(panel, phase_in)
    treat, cohorts = _cohort_columns(panel, phase_in)
    fit = _fit_poisson_fe(panel, treat)
    df = fit.n_clusters - 1
    treated = panel[panel["cohort"].notna()]
    sizes = treated.groupby("cohort")["ward"].nunique()
    rows, weights = [], {}
    identified = dict(zip(fit.columns, fit.hessian.identified(), strict=True))
    for g in cohorts:
        tag = g.strftime("%Y-%m")
        # a cohort without both columns (no events after joining, or no months after the
        # first) or one no comparison identifies has no effect to average
        if identified.get(f"level_{tag}", False) and identified.get(f"slope_{tag}", False):
            weights[tag] = float(sizes[g])
    if not weights:
        raise ValueError("no cohort's change is identified by the comparison wards")
    total = sum(weights.values())
    combos = {
        "level_rr": (1.0, 0.0),
        "slope_rr": (0.0, 1.0),
        "rr_h": (1.0, float(horizon - phase_in)),
    }
    L = np.zeros((len(combos), len(fit.columns)))
    for row, (lw, sw) in zip(L, combos.values(), strict=True):
        for tag, w in weights.items():
            row[fit.columns.index(f"level_{tag}")] += lw * w / total
            row[fit.columns.index(f"slope_{tag}")] += sw * w / total
    cov = fit.cov_of(L)
    effects = {
        name: _interval(float(L[i] @ fit.params), float(math.sqrt(cov[i, i])), df, alpha)
        for i, name in enumerate(combos)
    }
    for tag, w in weights.items():
        i, j = fit.columns.index(f"level_{tag}"), fit.columns.index(f"slope_{tag}")
        rows.append(
            {
                "cohort": tag,
                "wards": int(w),
                "level_rr": math.exp(fit.params[i]),
                "slope_rr": math.exp(fit.params[j]),
            }
        )
    study, placebo = fit_event_study(full, window, alpha) if event_study else (None, {})
    return ControlledResult(
        measure=measure,
        effects=effects,
        event_study=study,
        placebo=placebo,
        n_trusts=fit.n_clusters,
        n_wards=int(treated["ward"].nunique()),
        n_comparison_wards=int(panel.loc[panel["cohort"].isna(), "ward"].nunique()),
        n_cohorts=len(weights),
        horizon=horizon,
        dropped_observations=int((~fit.used).sum()),
        cohort_effects=pd.DataFrame(rows),
    )


def fit_event_study(
    panel: pd.DataFrame, window: tuple[int, int] = (-12, 24), alpha: float = 0.05
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Event-time ratios (lags from the post-joining cells, leads from a placebo fit) and the
    placebo test, as :func:`etwfe_poisson` makes them with ``event_study=True``."""
    e = panel["event_time"]
    # lags: Wooldridge's model with one effect per cohort and month since joining, every
    # pre-joining month (and not-yet-joined ward) in the reference; months past the window out
    lags = panel[e.isna() | (e <= window[1])].reset_index(drop=True)
    lag_rows, _ = _cells_to_event_time(lags, range(0, window[1] + 1), alpha)
    # leads: before joining only; one effect per cohort and month in [window[0], -2], against
    # month -1 and the months before the window (a placebo: about 1 if trends were parallel)
    leads = panel[e.isna() | (e < 0)].reset_index(drop=True)
    lead_rows, placebo = _cells_to_event_time(leads, range(window[0], -1), alpha)
    ref = _es_row(-1, 1.0, 1.0, 1.0, int(panel.loc[e == -1, "ward"].nunique()))
    rows = [*lead_rows, ref, *lag_rows]
    return pd.DataFrame(rows), placebo


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def _cells_to_event_time(
    p: pd.DataFrame, events: range, alpha: float
) -> tuple[list[dict], dict[str, float]]:
    """Fit cohort x event-time cells for ``events`` and aggregate them by event time.

    The aggregate at event time e is the ratio of the fitted to the counterfactual expected
    events over the participating ward-months at e (Wooldridge 2023, section 6), by the delta
    method on the clustered covariance. Also returns the average of these log ratios with its
    t test (the placebo test when the cells are leads).
    """
    e = p["event_time"].to_numpy(float)
    in_cell = np.isin(np.nan_to_num(e, nan=-9999), np.asarray(list(events)))
    tag = (
        p["cohort"].dt.strftime("%Y-%m").fillna("")
        + ":"
        + p["event_time"].fillna(0).astype(int).astype(str)
    )
    codes, names = pd.factorize(tag.where(in_cell))
    cell = codes >= 0
    treat = sparse.csr_matrix(
        (np.ones(cell.sum()), (np.flatnonzero(cell), codes[cell])), shape=(len(p), len(names))
    )
    fit = _fit_poisson_fe(p, (treat, [f"cell_{n}" for n in names]), cells=codes)
    df = fit.n_clusters - 1
    q = stats.t.ppf(1 - alpha / 2, df)
    beta = fit.params
    col_index = {c: i for i, c in enumerate(fit.columns)}
    cell_col = np.full(len(p), -1)
    for k, n in enumerate(names):
        if f"cell_{n}" in col_index:
            cell_col[codes == k] = col_index[f"cell_{n}"]
    has = cell_col >= 0
    eta = fit.X @ beta + fit.offset
    eta0 = eta - np.where(has, beta[np.maximum(cell_col, 0)], 0.0)
    mu0 = np.exp(eta0)
    mu = np.where(fit.zero_cell, 0.0, np.exp(eta))
    n_cols = len(fit.columns)
    identified = fit.hessian.identified()
    found, grads, logs = [], [], []
    # a cell no comparison identifies (in its calendar month no ward outside the cell had an
    # event: its coefficient runs off with the month's) has a ratio set by where the solver
    # stopped, not by the data: its ward-months leave the aggregate
    unidentified = has & ~identified[np.maximum(cell_col, 0)]
    for ev in events:
        at = in_cell & (np.nan_to_num(e, nan=-9999) == ev) & (fit.used | fit.zero_cell)
        if not at.any():
            continue
        if (at & ~unidentified).any():
            at &= ~unidentified
        else:
            wards = int(p.loc[at, "ward"].nunique())
            found.append(_es_row(ev, math.nan, math.nan, math.nan, wards))
            continue
        wards = int(p.loc[at, "ward"].nunique())
        s1, s0 = float(mu[at].sum()), float(mu0[at].sum())
        if s1 <= 0 or s0 <= 0:
            found.append(_es_row(ev, 0.0 if s0 > 0 else math.nan, math.nan, math.nan, wards))
            continue
        # d/d(beta) of log(s1 / s0); the counterfactual's design has the cell columns zeroed
        x_at = fit.X[at]
        cf = at & has
        grad = (x_at.T @ mu[at]) / s1 - (
            x_at.T @ mu0[at] - np.bincount(cell_col[cf], weights=mu0[cf], minlength=n_cols)
        ) / s0
        grads.append(grad)
        logs.append(math.log(s1 / s0))
        found.append((ev, wards, len(logs) - 1))
    cov = fit.cov_of(np.array(grads)) if grads else np.zeros((0, 0))
    rows = []
    for item in found:
        if isinstance(item, dict):
            rows.append(item)
            continue
        ev, wards, i = item
        est, se = logs[i], float(math.sqrt(max(cov[i, i], 0.0)))
        rows.append(
            _es_row(ev, math.exp(est), _safe_exp(est - q * se), _safe_exp(est + q * se), wards)
        )
    average = {"estimate": math.nan, "p_value": math.nan}
    if logs:
        est = float(np.mean(logs))
        se = float(math.sqrt(max(cov.mean(), 0.0)))  # the mean gradient's variance
        average = {
            "estimate": math.exp(est),
            "p_value": float(2 * stats.t.sf(abs(est) / se, df)) if se > 0 else math.nan,
        }
    return rows, average


def _es_row(ev: int, est: float, low: float, high: float, wards: int) -> dict:
    return {
        "event_time": ev,
        "estimate": est,
        "ci_low": low,
        "ci_high": high,
        "wards": int(wards),
        "kind": "lead" if ev < 0 else "lag",
    }


def twfe_naive(panel: pd.DataFrame) -> dict[str, float]:
    """The static TWFE Poisson model (ward and month effects, one indicator after joining).

    Under staggered adoption with effects that change over time it compares late joiners with
    wards that joined earlier and are still changing, so it is biased (and can take the wrong
    sign): never a headline estimate; see docs/methods.md.
    """
    e = panel["event_time"].to_numpy(float)
    treat = pd.DataFrame({"post": (np.nan_to_num(e, nan=-1) >= 0).astype(float)}, index=panel.index)
    fit = _fit_poisson_fe(panel, treat)
    vec = np.zeros(len(fit.columns))
    vec[fit.columns.index("post")] = 1.0
    return _interval(float(vec @ fit.params), math.sqrt(fit.var(vec)), fit.n_clusters - 1)


# --- Callaway & Sant'Anna on rates ----------------------------------------------------------


def callaway_santanna(
    panel: pd.DataFrame,
    window: tuple[int, int] = (-12, 24),
    n_boot: int = 999,
    seed: int = CS_SEED,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Group-time average treatment effects on monthly rates, aggregated by event time.

    For cohort g and month t, ATT(g, t) is the mean change in rate per 1,000 bed days from
    month g - 1 to t among the cohort's wards minus the same among never-joined wards
    (unconditional parallel trends, no covariates; a long difference from g - 1 for leads too,
    so the event study's reference is month -1 as in ``etwfe_poisson``). Event-time effects
    average the cohorts' ATT(g, g + e) weighted by their numbers of wards with data; each is
    also shown as a ratio, the participating wards' mean rate over that rate less the effect.
    Intervals are bootstrap percentiles resampling trusts (clusters) with replacement.

    Returns
    -------
    pandas.DataFrame
        ``event_time, att, att_low, att_high, ratio, ratio_low, ratio_high, wards``.
    """
    rate = panel.assign(rate=panel["count"] / panel["occupied_bed_days"] * 1000)
    Y = rate.pivot_table(index="ward", columns="month", values="rate", aggfunc="first")
    months = list(Y.columns)
    pos = {m: i for i, m in enumerate(months)}
    info = panel.groupby("ward")[["trust_code", "cohort"]].first().loc[Y.index]
    Yv = Y.to_numpy(float)
    trusts, trust_idx = np.unique(info["trust_code"].to_numpy(), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(trusts), size=(n_boot, len(trusts)))
    mult = np.zeros((n_boot + 1, len(trusts)))
    mult[0] = 1.0
    for b in range(n_boot):
        mult[b + 1] = np.bincount(draws[b], minlength=len(trusts))
    W = mult[:, trust_idx]  # (B + 1) x wards: the point estimate then the bootstrap weights
    never = info["cohort"].isna().to_numpy()
    num = {}
    for g in sorted(info["cohort"].dropna().unique()):
        g = pd.Timestamp(g)
        base = g - pd.DateOffset(months=1)
        if base not in pos:
            continue
        D = Yv - Yv[:, [pos[base]]]
        ok = ~np.isnan(D)
        Dz = np.where(ok, D, 0.0)
        Yz = np.where(ok, Yv, 0.0)
        mine = (info["cohort"] == g).to_numpy()
        for m in months:
            ev = (m.year - g.year) * 12 + (m.month - g.month)  # months since joining
            if not window[0] <= ev <= window[1] or ev == -1:
                continue
            j = pos[m]
            tr, co = mine & ok[:, j], never & ok[:, j]
            if not tr.any() or not co.any():
                continue
            wt, wc = W * tr, W * co
            with np.errstate(invalid="ignore", divide="ignore"):
                att = wt @ Dz[:, j] / wt.sum(1) - wc @ Dz[:, j] / wc.sum(1)
                level = wt @ Yz[:, j] / wt.sum(1)
            n = wt.sum(1)
            acc = num.setdefault(int(ev), [0.0, 0.0, 0.0, 0])
            acc[0] = acc[0] + att * n
            acc[1] = acc[1] + level * n
            acc[2] = acc[2] + n
            acc[3] += int(tr.sum())
    rows = []
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    for ev in sorted(num):
        s_att, s_level, n, wards = num[ev]
        with np.errstate(invalid="ignore", divide="ignore"):
            att = s_att / n
            level = s_level / n
            ratio = np.where(level - att > 0, level / (level - att), np.nan)
        rows.append(
            {
                "event_time": ev,
                "att": float(att[0]),
                "att_low": float(np.nanpercentile(att[1:], lo)),
                "att_high": float(np.nanpercentile(att[1:], hi)),
                "ratio": float(ratio[0]),
                "ratio_low": float(np.nanpercentile(ratio[1:], lo)),
                "ratio_high": float(np.nanpercentile(ratio[1:], hi)),
                "wards": wards,
            }
        )
    ref = {"event_time": -1, "att": 0.0, "att_low": 0.0, "att_high": 0.0}
    ref.update(ratio=1.0, ratio_low=1.0, ratio_high=1.0, wards=0)
    out = pd.DataFrame([*rows, ref]).sort_values("event_time").reset_index(drop=True)
    return out
