"""Interrupted time-series (segmented regression) models and their results objects.

The conventions are those of SPEC §2 and ``docs/methods.md``: time is counted from the first
observed period (t = 0); h = time - start is the time since the start, so h = 0 is the first
post-intervention period; a phase-in of k periods drops 0 <= h < k from the fit; the level-change
term is 1 from h = k on and the slope-change term is (h - k) in the post period, so that the level
change is the effect at h = k.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats

from rrp_eval.models.results import ResultMixin, as_figure

logger = logging.getLogger(__name__)

FAMILIES = ("auto", "poisson", "quasipoisson", "negbin", "gaussian")
LOG_LINK_FAMILIES = ("poisson", "quasipoisson", "negbin")
COV_TYPES = ("nonrobust", "arma", "ar1", "hac", "cluster")
SERIAL_COV_TYPES = ("arma", "ar1")
DECAY_MAX = 0.95
OVERDISPERSION_P = 0.05
MIN_POINTS_PER_SEGMENT = 3

_EFFECT_COLUMNS = ["estimate", "ci_low", "ci_high", "p_value"]


class NotEstimableError(ValueError):
    """The data cannot support the requested model (too few points, nothing to fit)."""


@dataclass(frozen=True)
class ITSSpec:
    """What was fitted, recorded for reports and manifests."""

    outcome: str
    time: str
    time_kind: str
    start: Any
    exposure: str | None
    family: str
    family_reason: str
    link: str
    effect_scale: str
    harmonics: int
    season: str | None
    period: int
    phase_in: int
    slope_change: bool
    group: str | None
    unit: str | None
    unit_effects: bool
    cov_type: str
    maxlags: int | None
    hac_correction: str | None
    inference: str
    horizon: int
    formula: str
    terms: tuple[str, ...]
    n_dropped_missing: int = 0
    n_dropped_phase_in: int = 0
    trend: str = "linear"
    baseline_months: int | None = None
    robust: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The specification as plain values (for JSON manifests)."""
        out = asdict(self)
        out["start"] = str(self.start)
        out["terms"] = list(self.terms)
        return out


@dataclass(frozen=True, eq=False)
class ITSResult(ResultMixin):
    """Results of :func:`fit_its`.

    Attributes
    ----------
    params : pandas.Series
        Coefficients on the linear-predictor scale, named ``intercept``, ``pre_trend``,
        ``level_change``, ``slope_change``, ``sin1``, ``cos1``, ... and, with ``group=``,
        ``group``, ``group:pre_trend``, ``group:level_change``, ``group:slope_change``.
    cov_params : pandas.DataFrame
        Covariance of ``params`` (model-based or Newey-West, see ``spec.cov_type``).
    effects : pandas.DataFrame
        Effects with ``estimate, ci_low, ci_high, p_value``; rate ratios for log-link families,
        differences for ``gaussian``. See :func:`fit_its`.
    dispersion : float
        Dispersion of the fitted model: Pearson chi-square / residual df for ``quasipoisson`` and
        ``gaussian``; 1 for ``poisson`` and ``negbin``, whose variance the family fixes (the
        negative binomial's over-dispersion is ``alpha``).
    pearson_dispersion : float
        Pearson chi-square / residual df of the fitted model, whatever the family (a diagnostic:
        well above 1 under a Poisson model means over-dispersion).
    frame : pandas.DataFrame
        The rows fitted, in fitting order, with ``t``, ``h``, the design columns, the outcome,
        the exposure (if any) and ``fitted`` (expected outcome).
    spec : ITSSpec
        What was fitted.
    alpha : float or None
        The negative binomial's α (Var = μ + αμ²).
    rho : float or None
        The lag-1 correlation of the residuals used by ``cov_type="arma"`` or ``"ar1"``.
    serial : SerialCorrelation, IntegratedCorrelation or None
        The residual correlation (structure, parameters, how they were estimated) and the
        degrees of freedom it implies: integrated over its posterior for ``cov_type="arma"``,
        REML plug-in with Satterthwaite degrees of freedom for ``"ar1"``.
    design : pandas.DataFrame
        The design matrix, rows as in ``frame``.
    """

    params: pd.Series
    cov_params: pd.DataFrame
    effects: pd.DataFrame
    dispersion: float
    pearson_dispersion: float
    df_resid: float
    df_inference: float
    nobs: int
    n_pre: int
    n_post: int
    h_end: float
    frame: pd.DataFrame
    spec: ITSSpec
    alpha: float | None = None
    rho: float | None = None
    design: pd.DataFrame | None = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    model_result: Any = field(default=None, repr=False)
    serial: SerialCorrelation | IntegratedCorrelation | None = None

    def df_for(self, weights: np.ndarray, alpha: float = 0.05) -> float:
        """Degrees of freedom of the t reference for the contrast ``weights`` (on ``params``):
        matched to the posterior mixture for ``arma`` (see :class:`IntegratedCorrelation`),
        Satterthwaite's for ``ar1`` (see :class:`SerialCorrelation`),
        else ``df_inference``."""
        if self.serial is None:
            return self.df_inference
        return self.serial.df(np.atleast_2d(np.asarray(weights, dtype=float)), alpha)[0]

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params``."""
        return pd.Series(np.sqrt(np.diag(self.cov_params)), index=self.params.index)

    @property
    def _use_t(self) -> bool:
        return self.spec.inference == "t"

    def _quantile(self, alpha: float, df: float | np.ndarray | None = None) -> Any:
        if self._use_t:
            return stats.t.ppf(1 - alpha / 2, self.df_inference if df is None else df)
        return float(stats.norm.ppf(1 - alpha / 2))

    def _p_value(self, z: float, df: float | None = None) -> float:
        if self._use_t:
            return float(2 * stats.t.sf(abs(z), self.df_inference if df is None else df))
        return float(2 * stats.norm.sf(abs(z)))

    def _dfs(self, W: np.ndarray, alpha: float = 0.05) -> np.ndarray | None:
        """Degrees of freedom of the contrasts in the rows of ``W`` (see :meth:`df_for`; None when
        the covariance has one reference for every contrast)."""
        return None if self.serial is None else self.serial.df(W, alpha)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals for ``params`` (linear-predictor scale).

        Parameters
        ----------
        alpha : float, default 0.05
            1 - confidence level.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, indexed like ``params``.
        """
        dfs = self._dfs(np.eye(len(self.params)), alpha)
        q = self._quantile(alpha, dfs)
        se = self.bse
        return pd.DataFrame({"lower": self.params - q * se, "upper": self.params + q * se})

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per coefficient: estimate, std_err, statistic, p_value, ci_low, ci_high."""
        se = self.bse
        stat = self.params / se
        ci = self.conf_int(alpha)
        dfs = self._dfs(np.eye(len(self.params)), alpha)
        dfs = [None] * len(stat) if dfs is None else list(dfs)
        return pd.DataFrame(
            {
                "estimate": self.params,
                "std_err": se,
                "statistic": stat,
                "p_value": [self._p_value(z, d) for z, d in zip(stat, dfs, strict=True)],
                "ci_low": ci["lower"],
                "ci_high": ci["upper"],
            }
        )

    def _weight_vector(self, weights: dict[str, float]) -> np.ndarray:
        """``weights`` (by coefficient name) as a vector on ``params``."""
        names = list(self.params.index)
        w = np.zeros(len(names))
        for name, value in weights.items():
            w[names.index(name)] = value
        return w

    def _combination(self, weights: dict[str, float], alpha: float = 0.05) -> pd.Series:
        """Estimate, interval and p-value of a linear combination of ``params``."""
        w = self._weight_vector(weights)
        est = float(w @ self.params.to_numpy())
        se = float(math.sqrt(max(float(w @ self.cov_params.to_numpy() @ w), 0.0)))
        df = self.df_for(w, alpha)
        q = float(self._quantile(alpha, df))
        p = self._p_value(est / se, df) if se > 0 else float("nan")
        low, high = est - q * se, est + q * se
        if self.spec.link == "log":
            with np.errstate(over="ignore"):
                est, low, high = (float(v) for v in np.exp([est, low, high]))
        return pd.Series(
            [est, low, high, p, se, df if self._use_t else math.inf],
            index=[*_EFFECT_COLUMNS, "std_err", "df"],
            dtype=float,
        )

    def effect(self, name: str, alpha: float = 0.05) -> pd.Series:
        """One row of ``effects`` with its ``std_err`` on the linear-predictor scale."""
        combos = _effect_combinations(self.spec)
        if name not in combos:
            raise KeyError(f"{name!r} is not an effect of this model; effects: {list(combos)}")
        return self._combination(combos[name], alpha)

    def _effect_weights(self, h: float, vs_control: bool) -> dict[str, float]:
        """Weights on ``params`` giving the effect h periods after the start."""
        weights = {"level_change": 1.0}
        if self.spec.slope_change:
            weights["slope_change"] = h - self.spec.phase_in
        if self.spec.group is None:
            return weights
        interactions = {f"group:{name}": w for name, w in weights.items()}
        return interactions if vs_control else weights | interactions

    def effect_at(self, h: float, alpha: float = 0.05, vs_control: bool = False) -> pd.Series:
        """Effect of the intervention h periods after the start, with interval and p-value.

        Parameters
        ----------
        h : float
            Periods since the start (h = 0 is the first post-intervention period); the effect
            is ``level_change + slope_change * (h - phase_in)``.
        alpha : float, default 0.05
            1 - confidence level.
        vs_control : bool, default False
            With ``group=``, the treated series' effect relative to the comparison series (the
            difference in differences) rather than the treated series' own change.

        Returns
        -------
        pandas.Series
            ``estimate, ci_low, ci_high, p_value``: a rate ratio for log-link families, a
            difference for ``gaussian``; ``std_err`` on the linear-predictor scale (log); and
            ``df``, the degrees of freedom of the t reference (infinite for normal ones).
        """
        if vs_control and self.spec.group is None:
            raise ValueError("vs_control=True needs a model fitted with group=")
        return self._combination(self._effect_weights(h, vs_control), alpha)

    def rr_at(self, h: float, alpha: float = 0.05, vs_control: bool = False) -> pd.Series:
        """Rate ratio h periods after the start: exp(level_change + slope_change * (h - k))."""
        if self.spec.link != "log":
            raise ValueError(
                f"rr_at needs a log-link family; this model is {self.spec.family!r} "
                "(use effect_at for a difference)"
            )
        return self.effect_at(h, alpha, vs_control)

    @property
    def rr_end(self) -> pd.Series:
        """Rate ratio at the last post-intervention period with data (h = h_end)."""
        return self.rr_at(self.h_end)

    @property
    def rr_h(self) -> pd.Series:
        """Rate ratio at the common horizon ``spec.horizon`` (the quantity pooled across trusts)."""
        return self.rr_at(self.spec.horizon)

    def counterfactual(self) -> pd.Series:
        """Expected outcome of every fitted row had the intervention not happened.

        The level- and slope-change terms are set to 0; with ``group=``, only the treated
        series' differences (``group:level_change``, ``group:slope_change``), so that the
        treated series' counterfactual follows the comparison series' changes (Linden 2015).
        """
        return self.predictions()["counterfactual"]

    def _linear_predictor(self, X: np.ndarray, alpha: float) -> tuple[np.ndarray, ...]:
        eta = X @ self.params.to_numpy()
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, self.cov_params.to_numpy(), X), 0))
        if self.offset is not None:
            eta = eta + self.offset
        q = self._quantile(alpha, self._dfs(X, alpha))
        inv = np.exp if self.spec.link == "log" else (lambda v: v)
        with np.errstate(over="ignore"):
            return inv(eta), inv(eta - q * se), inv(eta + q * se)

    def _counterfactual_design(self) -> np.ndarray:
        names = ("level_change", "slope_change")
        drop = [f"group:{n}" for n in names] if self.spec.group is not None else list(names)
        X = self.design.copy()
        X[[d for d in drop if d in X.columns]] = 0.0
        return X.to_numpy(dtype=float)

    def predictions(self, alpha: float = 0.05) -> pd.DataFrame:
        """Fitted and counterfactual expected outcomes of every fitted row, with intervals.

        The counterfactual sets the level- and slope-change terms to 0 (with ``group=``, only
        the treated series' differences, so that it follows the comparison series' changes,
        as in Linden 2015). Intervals are Wald intervals on the linear predictor, transformed.

        Returns
        -------
        pandas.DataFrame
            ``time_value, h, unit, observed, exposure (if any), fitted, fitted_low,
            fitted_high, counterfactual, counterfactual_low, counterfactual_high``.
        """
        out = self.frame[["time_value", "h", "unit", "y"]].rename(columns={"y": "observed"})
        if "exposure" in self.frame:
            out["exposure"] = self.frame["exposure"]
        fit = self._linear_predictor(self.design.to_numpy(dtype=float), alpha)
        cf = self._linear_predictor(self._counterfactual_design(), alpha)
        for name, values in (("fitted", fit), ("counterfactual", cf)):
            out[name], out[f"{name}_low"], out[f"{name}_high"] = values
        return out

    def events_averted(
        self, h_from: float | None = None, h_to: float | None = None, alpha: float = 0.05
    ) -> pd.Series:
        """Expected events averted: Σ (counterfactual - fitted) over the post period.

        Parameters
        ----------
        h_from, h_to : float, optional
            The months since the start summed over (default the whole fitted post period of
            the treated series).

        Returns
        -------
        pandas.Series
            ``estimate, ci_low, ci_high`` (events; positive means fewer events than
            expected) and ``std_err``, by the delta method.
        """
        frame = self.frame
        treated = frame["z"] == 1 if self.spec.group is not None else pd.Series(True, frame.index)
        rows = treated & (frame["level_change"] > 0)
        if h_from is not None:
            rows &= frame["h"] >= h_from
        if h_to is not None:
            rows &= frame["h"] <= h_to
        idx = np.flatnonzero(rows.to_numpy())
        X, Xc = self.design.to_numpy(dtype=float)[idx], self._counterfactual_design()[idx]
        beta = self.params.to_numpy()
        offset = self.offset[idx] if self.offset is not None else 0.0
        if self.spec.link == "log":
            mu, mu_c = np.exp(X @ beta + offset), np.exp(Xc @ beta + offset)
            grad = (Xc * mu_c[:, None]).sum(axis=0) - (X * mu[:, None]).sum(axis=0)
        else:
            mu, mu_c = X @ beta, Xc @ beta
            grad = (Xc - X).sum(axis=0)
        est = float(np.sum(mu_c - mu))
        se = float(np.sqrt(max(grad @ self.cov_params.to_numpy() @ grad, 0.0)))
        q = float(self._quantile(alpha, self.df_for(grad, alpha)))
        return pd.Series(
            {"estimate": est, "ci_low": est - q * se, "ci_high": est + q * se, "std_err": se}
        )

    def diagnostics(self, lags: int | None = None) -> dict[str, Any]:
        """Autocorrelation diagnostics of the treated series' Pearson residuals.

        Ljung-Box and Breusch-Godfrey p-values (``lags`` default min(10, n // 5), see
        :meth:`ljung_box`), the Durbin-Watson statistic, the autocorrelation function to lag
        6, and the dispersion; NaN where the treated rows are several stacked series.
        """
        from statsmodels.stats.stattools import durbin_watson
        from statsmodels.tsa.stattools import acf

        rows = self.frame if self.spec.group is None else self.frame[self.frame["z"] == 1]
        out: dict[str, Any] = {"dispersion": self.dispersion, "rho_used": self.rho}
        if rows["unit"].nunique() != 1:
            return out | {
                "ljung_box_p": math.nan,
                "breusch_godfrey_p": math.nan,
                "durbin_watson": math.nan,
                "acf": [],
            }
        r = rows["pearson_resid"].to_numpy(dtype=float)
        n_lags = lags if lags is not None else max(1, min(10, len(r) // 5))
        lagged = np.column_stack(
            [np.concatenate([np.zeros(k), r[:-k]]) for k in range(1, n_lags + 1)]
        )
        X = np.column_stack([self.design.loc[rows.index].to_numpy(dtype=float), lagged])
        aux = sm.OLS(r, X).fit()
        lm = len(r) * aux.rsquared
        return out | {
            "ljung_box_p": self.ljung_box(n_lags),
            "breusch_godfrey_p": float(stats.chi2.sf(lm, n_lags)),
            "lags": n_lags,
            "durbin_watson": float(durbin_watson(r)),
            "acf": [float(v) for v in acf(r, nlags=min(6, len(r) - 1), fft=False)[1:]],
        }

    def influence(self) -> pd.DataFrame:
        """How much leaving out each fitted period moves the level change and the effect at
        the horizon (log-link families).

        The one-step approximation of the leave-one-out change in the coefficients,
        ``β_(i) - β = -B x̃_i r_i / (1 - h_ii)`` with ``B = (X̃'X̃)⁻¹``, ``x̃_i`` the row of
        the design weighted by ``μ'_i / √V_i``, ``r_i`` its Pearson residual and ``h_ii`` its
        leverage (Pregibon 1981; Williams 1987), so no refit is needed. Returns one row per
        fitted period: ``time_value`` (months since year 0 for monthly data), ``unit``,
        ``level_change`` and ``rr_h`` (the changes on the log scale, in standard errors of
        the estimate with the dispersion re-estimated without the period, as DFBETAS)
        and ``level_rr_without`` / ``rr_h_without`` (the ratios without that
        period). Periods with an absolute change above 1 are the influential ones.
        """
        fam = self.spec.family
        mu = self.frame["fitted"].to_numpy(float)
        Xt = _working_design(self.design.to_numpy(float), mu, fam, self.spec.link, self.alpha)
        r = self.frame["pearson_resid"].to_numpy(float)
        B = np.linalg.pinv(Xt.T @ Xt)
        lev = np.einsum("ij,jk,ik->i", Xt, B, Xt)
        keep = np.clip(1.0 - lev, 1e-8, None)
        delta = -(Xt @ B) * (r / keep)[:, None]  # rows: β_(i) - β
        # the standard error without the period (as DFBETAS, Belsley, Kuh & Welsch 1980): an
        # outlier inflates the estimated dispersion, which would hide its own influence
        scale = np.ones(len(r))
        if fam in ("quasipoisson", "gaussian") and self.df_resid > 1:
            total = float(np.sum(r**2))
            phi = total / self.df_resid
            phi_i = (total - r**2 / keep) / (self.df_resid - 1)
            floor = 1.0 if fam == "quasipoisson" else 0.0
            scale = np.sqrt(np.maximum(phi_i, floor) / max(phi, floor))
        out = pd.DataFrame(
            {"time_value": self.frame["time_value"].to_numpy(), "unit": self.frame["unit"]},
            index=self.frame.index,
        )
        effects = {"level_change": self._effect_weights(self.spec.phase_in, False)}
        if self.spec.slope_change:
            effects["rr_h"] = self._effect_weights(self.spec.horizon, False)
        for label, weights in effects.items():
            w = self._weight_vector(weights)
            est = float(w @ self.params.to_numpy())
            se = math.sqrt(max(float(w @ self.cov_params.to_numpy() @ w), 0.0))
            change = delta @ w
            out[label] = change / (se * scale) if se > 0 else np.nan
            without = est + change
            out[f"{'level_rr' if label == 'level_change' else label}_without"] = (
                np.exp(without) if self.spec.link == "log" else without
            )
        return out

    def influential(self, threshold: float = 1.0) -> pd.DataFrame:
        """The rows of :meth:`influence` whose omission moves the level change or the effect
        at the horizon by more than ``threshold`` standard errors, largest first."""
        inf = self.influence()
        cols = [c for c in ("level_change", "rr_h") if c in inf]
        size = inf[cols].abs().max(axis=1)
        order = size[size > threshold].sort_values(ascending=False).index
        return inf.loc[order]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Cautions a reader needs: short segments, an effect read beyond the data."""
        notes = []
        if min(self.n_pre, self.n_post) < 8:
            notes.append(
                f"{min(self.n_pre, self.n_post)} points in a segment: fewer than 8 gives "
                "unstable estimates"
            )
        if self.spec.slope_change and self.spec.horizon > self.h_end:
            notes.append(
                f"the effect at {self.spec.horizon} months is beyond the data (last month "
                f"{self.h_end:.0f}): an extrapolation"
            )
        return tuple(notes)

    def _summary_title(self) -> str:
        return f"ITS of {self.spec.outcome}: {self.spec.family}, {self.spec.cov_type} errors"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Observed, fitted and counterfactual series (see ``rrp_eval.plots.plot_its``)."""
        from rrp_eval.plots import plot_its

        return as_figure(plot_its(self, ax=ax, **kwargs))

    def ljung_box(self, lags: int | None = None) -> float:
        """Ljung-Box p-value for autocorrelation of the treated series' Pearson residuals.

        Parameters
        ----------
        lags : int, optional
            Number of lags tested; default min(10, n // 5) (Hyndman & Athanasopoulos, for
            residuals with seasonality already modelled), at least 1.

        Returns
        -------
        float
            The p-value; NaN when the treated rows are several stacked series (the test needs
            one series).
        """
        from statsmodels.stats.diagnostic import acorr_ljungbox

        rows = self.frame if self.spec.group is None else self.frame[self.frame["z"] == 1]
        if rows["unit"].nunique() != 1:
            return float("nan")
        resid = rows["pearson_resid"]
        n_lags = lags if lags is not None else max(1, min(10, len(resid) // 5))
        return float(acorr_ljungbox(resid, lags=[n_lags])["lb_pvalue"].iloc[0])

    def __repr__(self) -> str:
        s = self.spec
        lines = [
            f"ITSResult: {s.outcome} ~ {s.formula}",
            f"  family={s.family} ({s.family_reason}), cov_type={s.cov_type}"
            + (f", maxlags={s.maxlags}" if s.cov_type == "hac" else "")
            + f", n={self.nobs} (pre {self.n_pre}, post {self.n_post}), "
            f"dispersion={self.dispersion:.4g}",
            "  effects (" + s.effect_scale + " scale):",
        ]
        for name, row in self.effects.iterrows():
            lines.append(
                f"    {name:<26} {row.estimate:.4g} ({row.ci_low:.4g} to {row.ci_high:.4g}), "
                f"p={row.p_value:.3g}"
            )
        return "\n".join(lines)


def _month_index(col: pd.Series) -> pd.Series:
    """Months since year 0 for a datetime or monthly-period column."""
    if isinstance(col.dtype, pd.PeriodDtype):
        col = col.dt.to_timestamp()
    return col.dt.year * 12 + (col.dt.month - 1)


def _is_monthly(col: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(col) or isinstance(col.dtype, pd.PeriodDtype)


_MONTH_TEXT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-01)?$")


def _start_value(start: Any, monthly: bool, time: str) -> float:
    if monthly:
        if isinstance(start, str):
            text_ok = bool(_MONTH_TEXT.match(start.strip()))
        else:
            text_ok = isinstance(start, pd.Period | pd.Timestamp | datetime.date | np.datetime64)
        try:
            period = pd.Period(start, freq="M") if text_ok else None
        except (ValueError, TypeError):
            period = None
        if period is None or pd.isna(period):
            raise ValueError(
                f"start={start!r} is not a month; {time!r} is a monthly column, so start must be "
                "a month written YYYY-MM or YYYY-MM-01, a Timestamp or a Period"
            )
        return float(period.year * 12 + period.month - 1)
    if isinstance(start, bool) or not isinstance(start, int | float | np.integer | np.floating):
        raise ValueError(
            f"start={start!r} must be a number on the scale of {time!r} (the value of {time!r} at "
            "the first post-intervention period)"
        )
    return float(start)


def _start_column(df: pd.DataFrame, start: str, monthly: bool, time: str) -> pd.Series:
    """Each row's own start, on the scale of ``time``."""
    col = df[start]
    if col.isna().any():
        raise ValueError(
            f"start column {start!r} is blank in some rows; every stacked series needs a start "
            "(comparison series belong in group=)"
        )
    if monthly:
        if not _is_monthly(col):
            raise ValueError(f"start column {start!r} must hold months, like {time!r}")
        return _month_index(col).astype(float)
    return _numeric(df, start, "start")


def _require_columns(df: pd.DataFrame, **columns: str | None) -> None:
    for role, name in columns.items():
        if name is not None and name not in df.columns:
            raise ValueError(
                f"{role}={name!r} is not a column of the data; columns are {list(df.columns)}"
            )


def _numeric(df: pd.DataFrame, name: str, role: str) -> pd.Series:
    col = df[name]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ValueError(f"{role} column {name!r} must be numeric, not {col.dtype}")
    return col.astype(float)


def _season_values(df: pd.DataFrame, season: str | None, time: str, monthly: bool) -> pd.Series:
    if season is None:
        if not monthly:
            raise ValueError(
                "harmonics need a season: pass season='month' (month of year 1-12 or a date "
                f"column), or make {time!r} a monthly date column"
            )
        col = df[time]
    else:
        col = df[season]
    if _is_monthly(col):
        return (_month_index(col) % 12 + 1).astype(float)
    return _numeric(df, season or time, "season")


def _resolve_family(family: str) -> tuple[str, str]:
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is not supported; allowed: {', '.join(FAMILIES)}")
    return family, "requested"


def choose_family(y: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> tuple[str, str]:
    """The automatic family: Poisson, quasi-Poisson or negative binomial.

    1. Fit Poisson. If Pearson χ² on n - p df does not reject at 5% (no over-dispersion):
       Poisson.
    2. Otherwise Cameron & Trivedi's (1990) auxiliary regression of ((y - μ)² - y)/μ on a
       constant and μ: a variance growing with μ² (a positive μ coefficient, one-sided 5%)
       chooses the negative binomial (NB2, var = μ + αμ²); a variance proportional to μ
       (only the constant) chooses quasi-Poisson (var = φμ), which makes no assumption beyond
       the mean-variance proportionality.

    Returns (family, reason).
    """
    pois = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
    df = pois.df_resid
    chi2 = float(pois.pearson_chi2)
    p_disp = float(stats.chi2.sf(chi2, df)) if df > 0 else 1.0
    phi = chi2 / df if df > 0 else float("nan")
    if p_disp >= OVERDISPERSION_P:
        return (
            "poisson",
            f"auto: Poisson (Pearson χ²/df = {phi:.2f}, p = {p_disp:.2g}: no over-dispersion)",
        )
    mu = np.asarray(pois.fittedvalues, dtype=float)
    z = ((np.asarray(y, dtype=float) - mu) ** 2 - np.asarray(y, dtype=float)) / mu
    aux = sm.OLS(z, sm.add_constant(mu, has_constant="add")).fit()
    t_mu = float(aux.tvalues[1]) if len(aux.tvalues) > 1 else 0.0
    p_mu = float(stats.t.sf(t_mu, aux.df_resid))
    if p_mu < OVERDISPERSION_P:
        return "negbin", (
            f"auto: negative binomial (over-dispersed, φ = {phi:.2f}; variance grows "
            f"with the square of the mean, Cameron-Trivedi p = {p_mu:.2g})"
        )
    return "quasipoisson", (
        f"auto: quasi-Poisson (over-dispersed, φ = {phi:.2f}, p = {p_disp:.2g}; "
        f"variance proportional to the mean, Cameron-Trivedi p = {p_mu:.2g})"
    )


def _default_maxlags(n_per_unit: float) -> int:
    """Newey and West (1994) plug-in lag: floor(4 (n / 100) ^ (2/9))."""
    return max(1, math.floor(4 * (n_per_unit / 100) ** (2 / 9)))


@dataclass(frozen=True, eq=False)
class _Fit:
    """What the estimation produced, whatever the family and covariance."""

    params: pd.Series
    cov: pd.DataFrame
    mu: np.ndarray
    pearson: np.ndarray
    df_resid: float
    df_inference: float
    inference: str
    dispersion: float
    pearson_dispersion: float
    alpha: float | None
    rho: float | None
    lags: int | None
    correction: str | None
    result: Any
    serial: SerialCorrelation | IntegratedCorrelation | None = None


def _variance(fam: str, mu: np.ndarray, alpha: float | None) -> np.ndarray:
    """Variance function V(μ) (times the dispersion for quasi-Poisson and gaussian)."""
    if fam == "gaussian":
        return np.ones_like(mu)
    if fam == "negbin":
        return mu + (alpha or 0.0) * mu**2
    return mu


def _working_design(
    X: np.ndarray, mu: np.ndarray, fam: str, link: str, alpha: float | None
) -> np.ndarray:
    """The design weighted by the working weights, rows x_i μ'_i / √V_i (X̃ of docs/methods.md
    §1.4.1): the fitted model's score equations are X̃' r = 0 for the Pearson residuals r."""
    mu_prime = mu if link == "log" else np.ones_like(mu)
    return X * (mu_prime / np.sqrt(_variance(fam, mu, alpha)))[:, None]


def _ar1_rho(pearson: np.ndarray, units: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Lag-1 autocorrelation of Pearson residuals within units, and its bias-corrected value.

    The moment estimate is biased towards 0 in short series, by about -(1 + 3ρ)/n (Kendall
    1954; Marriott & Pope 1954); the correction adds that back, and the result is kept in
    [0, 0.95] (a negative autocorrelation would make model-based errors conservative).
    """
    num = den = 0.0
    lengths = []
    for u in np.unique(units):
        idx = np.flatnonzero(units == u)
        r, tt = pearson[idx], t[idx]
        r = r - r.mean()
        adjacent = np.diff(tt) == 1
        num += float(np.sum(r[1:][adjacent] * r[:-1][adjacent]))
        den += float(np.sum(r**2))
        lengths.append(len(idx))
    raw = num / den if den > 0 else 0.0
    n = float(np.mean(lengths))
    return raw, float(np.clip(raw + (1 + 3 * raw) / n, 0.0, 0.95))


class _CorrelationRecord:
    """What both residual-correlation classes report (structure, parameters, method)."""

    structure: str
    decay: float
    share: float
    dispersion: float
    method: str
    lag1: float

    def as_dict(self) -> dict[str, Any]:
        """The correlation as plain values (for manifests and tables)."""
        return {
            "structure": self.structure,
            "lag1": round(self.lag1, 4),
            "decay": round(self.decay, 4),
            "share": round(self.share, 4),
            "dispersion": round(self.dispersion, 4),
            "method": self.method,
        }


@dataclass(frozen=True, eq=False)
class SerialCorrelation(_CorrelationRecord):
    """The residual autocorrelation behind ``cov_type="ar1"`` (estimated by REML and plugged
    in), and the Satterthwaite degrees of freedom it implies. ``cov_type="arma"`` integrates
    over the correlation instead (:class:`IntegratedCorrelation`): a plug-in ARMA(1,1) or
    AR(1) understated persistent correlation in the null study (size up to 18% at 60 months).

    Within a series the working correlation of the Pearson residuals at lag k >= 1 is
    ``decay ** k`` (``share`` is 1). ``decay`` is estimated by restricted maximum likelihood
    (REML) on the weighted working residuals of the fitted model, so that the regression's own
    fit is allowed for (Cheang & Reinsel 2000); ``dispersion`` is REML's too. The degrees of freedom
    of a contrast are Satterthwaite's, 2 v² / Var(v̂), with Var(v̂) from the expected REML
    information of the dispersion and correlation parameters (Giesbrecht & Burns 1985), so
    that a correlation estimated from a short series widens the interval.
    """

    structure: str
    decay: float
    share: float
    dispersion: float
    dispersion_estimated: bool
    df_max: float
    method: str
    _A: np.ndarray = field(repr=False)
    _R: np.ndarray = field(repr=False)
    _dR: tuple[np.ndarray, ...] = field(repr=False)
    _cov_theta: np.ndarray = field(repr=False)

    @property
    def lag1(self) -> float:
        """The working correlation of neighbouring months."""
        return self.share * self.decay

    def cov(self) -> np.ndarray:
        """Covariance of the coefficients."""
        return self.dispersion * self._A.T @ self._R @ self._A

    def df(self, W: np.ndarray, alpha: float = 0.05) -> np.ndarray:
        """Satterthwaite degrees of freedom of the contrasts in the rows of ``W`` (each a
        weight vector on the coefficients), between 1 and the residual degrees of freedom
        (``alpha`` is not used: the same at every level)."""
        a = np.atleast_2d(W) @ self._A.T  # contrast weights on the working residuals
        base = np.einsum("ij,jk,ik->i", a, self._R, a)
        v = self.dispersion * base
        grads = [base] if self.dispersion_estimated else []
        grads += [self.dispersion * np.einsum("ij,jk,ik->i", a, d, a) for d in self._dR]
        G = np.column_stack(grads)
        var_v = np.einsum("ij,jk,ik->i", G, self._cov_theta, G)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(var_v > 0, 2 * v**2 / var_v, self.df_max)
        return np.clip(np.nan_to_num(df, nan=self.df_max), 1.0, self.df_max)


def _lags(units: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|t_i - t_j| within a unit, infinite across units (no correlation between series)."""
    lag = np.abs(t[:, None] - t[None, :])
    return np.where(units[:, None] == units[None, :], lag, np.inf)


def _correlation(lag: np.ndarray, decay: float, share: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        R = np.where(np.isfinite(lag), share * np.power(decay, np.minimum(lag, 1e6)), 0.0)
    np.fill_diagonal(R, 1.0)
    return R


def _correlation_derivatives(
    lag: np.ndarray, decay: float, share: float, structure: str
) -> tuple[np.ndarray, ...]:
    finite = np.isfinite(lag) & (lag > 0)
    k = np.where(finite, lag, 1.0)
    d_decay = np.where(finite, share * k * np.power(decay, k - 1), 0.0)
    if structure == "AR(1)":
        return (d_decay,)
    return d_decay, np.where(finite, np.power(decay, k), 0.0)


def _reml_criterion(r: np.ndarray, Xt: np.ndarray, R: np.ndarray) -> tuple[float, float]:
    """-2 x restricted log-likelihood (dispersion profiled out) and the REML dispersion."""
    from scipy.linalg import cho_factor, cho_solve

    n, p = Xt.shape
    try:
        c = cho_factor(R, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return math.inf, math.nan
    Ri_X = cho_solve(c, Xt, check_finite=False)
    Ri_r = cho_solve(c, r, check_finite=False)
    XRX = Xt.T @ Ri_X
    sign, logdet_xrx = np.linalg.slogdet(XRX)
    if sign <= 0:
        return math.inf, math.nan
    b = np.linalg.solve(XRX, Xt.T @ Ri_r)
    q = float(r @ Ri_r - (Xt.T @ Ri_r) @ b)
    if q <= 0:
        return math.inf, math.nan
    logdet_r = 2 * float(np.sum(np.log(np.diag(c[0]))))
    return logdet_r + logdet_xrx + (n - p) * math.log(q), q / (n - p)


def _ar1_reml_criterion(
    r: np.ndarray, Xt: np.ndarray, steps: np.ndarray, first: np.ndarray, decay: float
) -> float:
    """The REML criterion of :func:`_reml_criterion` for AR(1), without forming R.

    An AR(1) correlation ``decay ** |t_i - t_j|`` is Markov, so prewhitening each row by its
    predecessor in the same series (``e_i = (x_i - a_i x_(i-1)) / sqrt(1 - a_i²)``,
    ``a_i = decay ** (t_i - t_(i-1))``, the first row of a series unchanged) gives R⁻¹ = L'L and
    log det R = Σ log(1 - a_i²) in O(n p²) instead of a Cholesky factor of an n × n matrix.
    """
    a = np.where(first, 0.0, np.power(decay, np.where(first, 1.0, steps)))
    s = np.sqrt(1.0 - a**2)
    rw = np.empty_like(r)
    xw = np.empty_like(Xt)
    rw[0], xw[0] = r[0], Xt[0]
    rw[1:] = (r[1:] - a[1:] * r[:-1]) / s[1:]
    xw[1:] = (Xt[1:] - a[1:, None] * Xt[:-1]) / s[1:, None]
    n, p = Xt.shape
    XRX = xw.T @ xw
    sign, logdet_xrx = np.linalg.slogdet(XRX)
    if sign <= 0:
        return math.inf
    xr = xw.T @ rw
    q = float(rw @ rw - xr @ np.linalg.solve(XRX, xr))
    if q <= 0:
        return math.inf
    return float(np.sum(np.log(s[1:] ** 2))) + logdet_xrx + (n - p) * math.log(q)


def _serial_correlation(
    r: np.ndarray,
    Xt: np.ndarray,
    units: np.ndarray,
    t: np.ndarray,
    dispersion_rule: str,
) -> SerialCorrelation:
    """REML estimate of an AR(1) residual correlation (see :class:`SerialCorrelation`).

    ``r`` are the Pearson residuals and ``Xt`` the design weighted by the working weights
    (rows x_i μ'_i / √V_i), so that the fitted model's score equations make ``Xt' r = 0``;
    the rows are ordered by series and time. ``dispersion_rule``: ``"fixed"`` (Poisson,
    negative binomial: 1), ``"floor"`` (quasi-Poisson: max(1, REML estimate)) or ``"free"``
    (gaussian).
    """
    from scipy.optimize import minimize_scalar

    n, p = Xt.shape
    lag = _lags(units, t)
    upper = DECAY_MAX
    first = np.r_[True, units[1:] != units[:-1]]
    steps = np.r_[0.0, np.diff(t)]
    if np.any(steps[~first] <= 0):
        raise ValueError("the rows must be ordered by series and time within a series")

    def ar1_crit(decay: float) -> float:
        return _ar1_reml_criterion(r, Xt, steps, first, decay)

    ar1 = minimize_scalar(ar1_crit, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-4})
    decay, share = float(ar1.x), 1.0
    ar1_crit_0 = ar1_crit(0.0)
    if ar1_crit_0 <= ar1.fun:
        decay = 0.0
    structure = "AR(1)"
    R = _correlation(lag, decay, share)
    _, phi_hat = _reml_criterion(r, Xt, R)
    if dispersion_rule == "fixed":
        phi, estimated = 1.0, False
    elif dispersion_rule == "floor":
        phi, estimated = max(1.0, phi_hat), phi_hat > 1.0
    else:
        phi, estimated = phi_hat, True
    dR = _correlation_derivatives(lag, decay, share, structure)
    # Expected REML information of (dispersion, correlation parameters) for V = phi R.
    from scipy.linalg import cho_factor, cho_solve

    c = cho_factor(R, lower=True)
    Ri = cho_solve(c, np.eye(n))
    Ri_X = Ri @ Xt
    P = (Ri - Ri_X @ np.linalg.solve(Xt.T @ Ri_X, Ri_X.T)) / phi
    derivs = ([R] if estimated else []) + [phi * d for d in dR]
    PD = [P @ D for D in derivs]
    info = np.array([[0.5 * np.sum(A * B.T) for B in PD] for A in PD])
    cov_theta = np.linalg.pinv(info)
    B = np.linalg.inv(Xt.T @ Xt)
    return SerialCorrelation(
        structure=structure,
        decay=decay,
        share=share,
        dispersion=phi,
        dispersion_estimated=estimated,
        df_max=float(n - p),
        method=(
            f"{structure} working correlation of the Pearson residuals by REML "
            f"(lag-1 {share * decay:.2f}), dispersion "
            + {"fixed": "1", "floor": f"max(1, REML) = {phi:.2f}", "free": f"{phi:.3g}"}[
                dispersion_rule
            ]
            + ", Satterthwaite degrees of freedom"
        ),
        _A=Xt @ B,
        _R=R,
        _dR=dR,
        _cov_theta=cov_theta,
    )


# The posterior grid of the integrated ARMA(1,1) correlation (cov_type="arma"): midpoints of
# 12 x 10 equal cells of decay in (0, DECAY_MAX) and share in (0, 1).
_DECAY_NODES = (np.arange(12) + 0.5) / 12 * DECAY_MAX
_SHARE_NODES = (np.arange(10) + 0.5) / 10
_POSTERIOR_GRID = np.array([(d, s) for d in _DECAY_NODES for s in _SHARE_NODES])
_POSTERIOR_FLOOR = 1e-10


@dataclass(frozen=True, eq=False)
class IntegratedCorrelation(_CorrelationRecord):
    """The residual autocorrelation behind ``cov_type="arma"``, integrated over its
    uncertainty instead of plugged in.

    Within a series the working correlation of the Pearson residuals at lag k >= 1 is
    ``share * decay ** k``: a latent AR(1) rate plus independent count noise, the
    parameter-driven count model of Zeger (1988), whose counts are ARMA(1,1). A series of
    24-60 months identifies ``decay`` poorly, and a plug-in estimate (REML, with AR(1) unless
    a test prefers ARMA(1,1)) understates persistent correlation, so intervals were too narrow
    (size up to 18% in the null study). Here the correlation parameters get the reference
    prior of Berger, De Oliveira & Sansó (2001), π(ψ) ∝ |I(σ², ψ)|^½ with I the expected
    information of the restricted likelihood, and the regression coefficients a flat prior
    and the dispersion 1/σ²; their posterior is then proportional to the prior times the
    restricted likelihood with the dispersion integrated out (Harville 1974), evaluated on a
    12 × 10 grid of (decay, share). Given ψ, a contrast c'β̂ of the fitted coefficients has
    standard error √(φ̂(ψ) c'A'R(ψ)Ac) and a t reference on n - p degrees of freedom (normal
    when the family fixes the dispersion); its interval is the posterior mixture of these.
    ``decay``, ``share``, ``lag1`` and ``dispersion`` are posterior means; :meth:`df`
    returns, for each contrast, the degrees of freedom of the t whose interval, with the
    posterior-mean standard error, equals the mixture's (n - p at most: never narrower).
    """

    structure: str
    decay: float
    share: float
    dispersion: float
    dispersion_estimated: bool
    df_max: float
    method: str
    _A: np.ndarray = field(repr=False)
    _points: np.ndarray = field(repr=False)  # (decay, share) of the grid points kept
    _weights: np.ndarray = field(repr=False)
    _covs: np.ndarray = field(repr=False)  # per grid point: φ_k A' R_k A (K x p x p)
    _dfs: np.ndarray = field(repr=False)  # per grid point: t degrees of freedom (inf: normal)

    @property
    def lag1(self) -> float:
        """Posterior mean of the working correlation of neighbouring months."""
        return float(self._weights @ (self._points[:, 0] * self._points[:, 1]))

    def cov(self) -> np.ndarray:
        """Posterior mean covariance of the coefficients."""
        return np.einsum("k,kij->ij", self._weights, self._covs)

    def df(self, W: np.ndarray, alpha: float = 0.05) -> np.ndarray:
        """Matched degrees of freedom of the contrasts in the rows of ``W`` (see the class)."""
        W = np.atleast_2d(W)
        se_k = np.sqrt(np.maximum(np.einsum("mi,kij,mj->mk", W, self._covs, W), 0.0))
        se = np.sqrt(se_k**2 @ self._weights)
        target = 1 - alpha / 2
        finite = np.isfinite(self._dfs)
        nu = np.where(finite, self._dfs, 1.0)

        scale = np.where(se_k > 0, se_k, np.inf)
        log_c = np.where(
            finite,
            special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * math.pi),
            -0.5 * math.log(2 * math.pi),
        )

        def mixture(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The mixture's distribution function and density at x (one per contrast)."""
            z = x[:, None] / scale
            cdf = np.where(finite, special.stdtr(nu, z), special.ndtr(z))
            log_pdf = np.where(finite, -(nu + 1) / 2 * np.log1p(z**2 / nu), -(z**2) / 2) + log_c
            return cdf @ self._weights, (np.exp(log_pdf) / scale) @ self._weights

        # the mixture's quantile by safeguarded Newton steps, all contrasts at once; it lies
        # between the quantiles of its narrowest and widest components
        q_top = special.stdtrit(np.where(finite, nu, 1e12), target)
        lo = np.min(np.where(se_k > 0, se_k, np.inf), axis=1) * q_top.min()
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = se_k.max(axis=1) * q_top.max()
        x = np.clip(se * special.stdtrit(self.df_max, target), lo, hi)
        for _ in range(30):
            cdf, pdf = mixture(x)
            below = cdf < target
            lo, hi = np.where(below, x, lo), np.where(below, hi, x)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = x - (cdf - target) / pdf
            x = np.where((step > lo) & (step < hi), step, (lo + hi) / 2)
            if np.all(np.abs(cdf - target) < 1e-12):
                break
        lo = hi = x
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(se > 0, (lo + hi) / 2 / se, 0.0)
        # the t degrees of freedom whose quantile is q (the quantile falls as df rises)
        out = np.full(len(W), self.df_max)
        need = q > special.stdtrit(self.df_max, target)
        if np.any(need):
            a, b = np.zeros(need.sum()), np.full(need.sum(), math.log(self.df_max))
            for _ in range(40):
                mid = (a + b) / 2
                wide = special.stdtrit(np.exp(mid), target) > q[need]
                a, b = np.where(wide, mid, a), np.where(wide, b, mid)
            out[need] = np.exp((a + b) / 2)
        return np.clip(out, 1.0, self.df_max)


def _series_blocks(units: np.ndarray, t: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of each series, grouped by their times: (times, row indices U x m) per group,
    so that series observed in the same months share one correlation matrix."""
    groups: dict[tuple[float, ...], list[np.ndarray]] = {}
    for u in pd.unique(units):
        rows = np.flatnonzero(units == u)
        groups.setdefault(tuple(t[rows]), []).append(rows)
    return [(np.array(times), np.array(rows)) for times, rows in groups.items()]


def _integrated_correlation(
    r: np.ndarray,
    Xt: np.ndarray,
    units: np.ndarray,
    t: np.ndarray,
    dispersion_rule: str,
    C: np.ndarray | None = None,
) -> IntegratedCorrelation:
    """The posterior of the ARMA(1,1) working correlation (see :class:`IntegratedCorrelation`).

    ``r``, ``Xt`` and ``dispersion_rule`` as for :func:`_serial_correlation`; the coefficients'
    errors are C Xt' r (default C = (Xt'Xt)⁻¹; the robust fit's is (Xt'W Xt)⁻¹). Series are
    independent of each other, so every sum runs over the blocks of :func:`_series_blocks`.
    With Q = R⁻¹ (block diagonal), G = Q Xt, M = (Xt'Q Xt)⁻¹ and P = Q - G M G', the
    information of (σ², decay, share) has entries tr(D P E P)/2 for D, E in {R, ∂R/∂decay,
    ∂R/∂share}, each assembled from per-block traces and p x p sums.
    """
    grid = _POSTERIOR_GRID
    K = len(grid)
    n, p = Xt.shape
    d, s = grid[:, 0, None, None], grid[:, 1, None, None]
    logdet_r = np.zeros(K)
    XQX = np.zeros((K, p, p))
    XQr = np.zeros((K, p))
    rQr = np.zeros(K)
    XRX = np.zeros((K, p, p))
    tr_d = np.zeros((K, 2))  # tr(D Q)
    tr_de = np.zeros((K, 2, 2))  # tr(D Q E Q)
    F = np.zeros((K, 2, p, p))  # G' D G
    H = np.zeros((K, 2, 2, p, p))  # G' D Q E G
    for times, rows in _series_blocks(units, t):
        lag = np.abs(times[:, None] - times[None, :])
        off = lag > 0
        k = np.where(off, lag, 1.0)
        R = np.where(off, s * d**k, 0.0)
        m, U = len(times), len(rows)
        R[:, np.arange(m), np.arange(m)] = 1.0
        D = np.stack(
            [np.where(off, s * k * d ** (k - 1), 0.0), np.where(off, d**k, 0.0)], axis=1
        )  # K x 2 x m x m: ∂R/∂decay, ∂R/∂share
        Q = np.linalg.inv(R)
        logdet_r += U * np.linalg.slogdet(R)[1]
        # the series' columns side by side: m x (U p) and m x U
        Xb = Xt[rows].transpose(1, 0, 2).reshape(m, U * p)
        rb = r[rows].T

        def cross(left: np.ndarray, right: np.ndarray, U: int = U) -> np.ndarray:
            """Σ over the series of left_u' right_u for m x (U p) column blocks."""
            a = left.reshape(*left.shape[:-1], U, p).swapaxes(-2, -3)
            b = right.reshape(*right.shape[:-1], U, p).swapaxes(-2, -3)
            return (a.swapaxes(-1, -2) @ b).sum(axis=-3)

        G = Q @ Xb
        XQX += cross(Xb, G)
        Qr = Q @ rb
        XQr += (G.reshape(K, m, U, p) * rb[None, :, :, None]).sum(axis=(1, 2))
        rQr += np.einsum("mu,kmu->k", rb, Qr)
        XRX += cross(Xb, R @ Xb)
        DQ = D @ Q[:, None]
        tr_d += U * np.trace(DQ, axis1=-2, axis2=-1)
        tr_de += U * (DQ[:, :, None] * DQ[:, None].swapaxes(-1, -2)).sum(axis=(-1, -2))
        DG = D @ G[:, None]
        F += cross(G[:, None], DG)
        QDG = Q[:, None] @ DG
        H += cross(DG[:, :, None], QDG[:, None])
    sign, logdet_xqx = np.linalg.slogdet(XQX)
    M = np.linalg.inv(XQX)
    b = np.einsum("kpq,kq->kp", M, XQr)
    q = rQr - np.einsum("kp,kp->k", XQr, b)
    # information: tr(D P E P) = tr(DQEQ) - 2 tr(M G'DQEG) + tr(M G'DG M G'EG) (symmetrised)
    tDP = tr_d - np.einsum("kpq,kaqp->ka", M, F)
    MF = np.einsum("kpq,kaqr->kapr", M, F)
    tDPEP = (
        tr_de
        - np.einsum("kpq,kabqp->kab", M, H)
        - np.einsum("kpq,kbaqp->kab", M, H)
        + np.einsum("kapq,kbqp->kab", MF, MF)
    )
    info = np.zeros((K, 3, 3))
    info[:, 0, 0] = n - p
    info[:, 0, 1:] = info[:, 1:, 0] = tDP
    info[:, 1:, 1:] = tDPEP
    info_sign, logdet_info = np.linalg.slogdet(info)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_post = -0.5 * (logdet_r + logdet_xqx + (n - p) * np.log(q)) + 0.5 * logdet_info
    ok = (sign > 0) & (q > 0) & (info_sign > 0) & np.isfinite(log_post)
    if not np.any(ok):
        raise NotEstimableError("the residual correlation's posterior could not be evaluated")
    log_post = np.where(ok, log_post, -np.inf)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    kept = w > _POSTERIOR_FLOOR
    w = w[kept] / w[kept].sum()
    phi_hat = q[kept] / (n - p)
    if dispersion_rule == "fixed":
        phi, dfs, estimated = np.ones_like(phi_hat), np.full(len(w), np.inf), False
    elif dispersion_rule == "floor":
        phi = np.maximum(1.0, phi_hat)
        dfs = np.where(phi_hat > 1.0, float(n - p), np.inf)
        estimated = bool(np.any(phi_hat > 1.0))
    else:
        phi, dfs, estimated = phi_hat, np.full(len(w), float(n - p)), True
    if C is None:
        C = np.linalg.inv(Xt.T @ Xt)
    covs = phi[:, None, None] * np.einsum("qp,kqr,rs->kps", C, XRX[kept], C)
    points = grid[kept]
    decay, share = (float(v) for v in w @ points)
    rule_text = {
        "fixed": "1",
        "floor": f"max(1, REML) (posterior mean {float(w @ phi):.2f})",
        "free": f"REML (posterior mean {float(w @ phi):.3g})",
    }[dispersion_rule]
    lag1 = float(w @ (points[:, 0] * points[:, 1]))
    return IntegratedCorrelation(
        structure="ARMA(1,1)",
        decay=decay,
        share=share,
        dispersion=float(w @ phi) if estimated else float(phi[0]),
        dispersion_estimated=estimated,
        df_max=float(n - p),
        method=(
            "ARMA(1,1) working correlation of the Pearson residuals integrated over its "
            f"REML posterior with the reference prior (posterior mean lag-1 {lag1:.2f}), "
            f"dispersion {rule_text}, intervals from the posterior mixture of t distributions"
        ),
        _A=Xt @ C,
        _points=points,
        _weights=w,
        _covs=covs,
        _dfs=dfs,
    )


def _sandwich(
    X: np.ndarray,
    y: np.ndarray,
    mu: np.ndarray,
    fam: str,
    link: str,
    scale: float,
    alpha: float | None,
    units: np.ndarray,
    t: np.ndarray,
    *,
    rho: float | None = None,
    cluster: bool = False,
) -> np.ndarray:
    """Covariance of the estimating equations' solution with AR(1) or clustered errors.

    U(β) = Σ x_i c_i (y_i - μ_i), c_i = μ'_i / V_i; bread H = Σ x_i c_i μ'_i x_i'. The meat is
    Σ_ij x_i c_i Cov(y_i, y_j) c_j x_j' with Cov(y_i, y_j) = ρ^|t_i - t_j| sd_i sd_j within a
    unit (sd_i = √(φ V_i)), or, with ``cluster``, the outer products of the units' summed
    scores with the CR1 factor. With ρ = 0 the AR(1) form is the model-based covariance.
    """
    mu_prime = mu if link == "log" else np.ones_like(mu)
    V = _variance(fam, mu, alpha)
    c = mu_prime / V
    bread = np.linalg.inv((X * (c * mu_prime)[:, None]).T @ X)
    scores = X * (c * (y - mu))[:, None]
    meat = np.zeros((X.shape[1], X.shape[1]))
    groups = np.unique(units)
    for u in groups:
        idx = np.flatnonzero(units == u)
        if cluster:
            g = scores[idx].sum(axis=0)
            meat += np.outer(g, g)
        else:
            sd = np.sqrt(scale * V[idx])
            lag = np.abs(t[idx][:, None] - t[idx][None, :])
            cov = (rho or 0.0) ** lag * np.outer(sd, sd)
            xc = X[idx] * c[idx][:, None]
            meat += xc.T @ cov @ xc
    if cluster:
        n, k, g = X.shape[0], X.shape[1], len(groups)
        meat *= g / (g - 1) * (n - 1) / (n - k)
    return bread @ meat @ bread


@dataclass(frozen=True, eq=False)
class _NegBinFit:
    """A negative binomial fit: β, its covariance, α and the fitted means."""

    params: pd.Series
    cov: np.ndarray
    alpha: float
    mu: np.ndarray
    method: str


def _fit_negbin(y: np.ndarray, X: pd.DataFrame, offset: np.ndarray | None) -> _NegBinFit:
    """NB2 by maximum likelihood, with a profile-likelihood fallback.

    First statsmodels' ``NegativeBinomial`` (Newton, then BFGS). When that does not converge
    to a usable Hessian, which happens when the data are barely over-dispersed and α̂ is near
    its boundary at 0, α is found by maximising the profile log-likelihood over log α (a GLM
    fit at each α, as R's ``glm.nb`` alternates) and β and its covariance come from the GLM
    at α̂; α̂ at the lower bound means no over-dispersion, where NB2 is the Poisson model.
    """
    from scipy.optimize import minimize_scalar

    model = sm.NegativeBinomial(y, X, offset=offset, loglike_method="nb2")
    start = None
    try:
        pois = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
        start = np.append(pois.params.to_numpy(), 0.1)
    except (ValueError, np.linalg.LinAlgError):
        pass
    for method in ("newton", "bfgs"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(start_params=start, method=method, disp=0, maxiter=500)
                cov = res.cov_params()
        except (ValueError, np.linalg.LinAlgError):
            continue
        alpha = float(res.params["alpha"])
        names = list(X.columns)
        cov_b = cov.loc[names, names].to_numpy()
        if (
            res.mle_retvals.get("converged", True)
            and alpha > 1e-6
            and np.all(np.isfinite(cov_b))
            and np.all(np.diag(cov_b) > 0)
        ):
            params = res.params.drop("alpha")
            mu = np.exp(
                X.to_numpy(float) @ params.to_numpy() + (offset if offset is not None else 0)
            )
            return _NegBinFit(params, cov_b, alpha, mu, f"maximum likelihood ({method})")

    def glm(log_alpha: float) -> Any:
        fam = sm.families.NegativeBinomial(alpha=math.exp(log_alpha))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sm.GLM(y, X, family=fam, offset=offset).fit()

    best = minimize_scalar(
        lambda la: -glm(la).llf, bounds=(-12.0, 3.0), method="bounded", options={"xatol": 1e-4}
    )
    fit = glm(float(best.x))
    if not np.all(np.isfinite(fit.params)):
        raise NotEstimableError("the negative binomial model did not converge")
    alpha = math.exp(float(best.x))
    if best.x <= -11.9:
        alpha = 0.0
    return _NegBinFit(
        fit.params,
        fit.cov_params().to_numpy(),
        alpha,
        np.asarray(fit.fittedvalues, dtype=float),
        "profile likelihood",
    )


HUBER_C = 1.345


def _huber_weights(y: np.ndarray, X: pd.DataFrame, offset: np.ndarray | None) -> np.ndarray:
    """Huber weights min(1, c / |r / s|) of a Poisson-mean fit, iterated until they settle.

    ``r`` are the Pearson residuals of the weighted fit and ``s`` their scale by the median
    absolute deviation, at least 1 (a count varies at least as much as Poisson), so that only
    months far from the others, not ordinary over-dispersion, lose weight (Huber 1964; the
    weighting of Cantoni & Ronchetti 2001 without their Fisher-consistency correction, which
    matters only for counts near 0: docs/methods.md).
    """
    Xv = X.to_numpy(dtype=float)
    off = offset if offset is not None else np.zeros(len(y))
    beta = sm.GLM(y, Xv, family=sm.families.Poisson(), offset=off).fit().params
    w = np.ones(len(y))
    for _ in range(200):  # Newton steps on the weighted score, the weights updated between
        mu = np.exp(np.clip(Xv @ beta + off, -700, 700))
        r = (y - mu) / np.sqrt(mu)
        s = max(1.0, 1.4826 * float(np.median(np.abs(r - np.median(r)))))
        new = np.minimum(1.0, HUBER_C / np.maximum(np.abs(r / s), 1e-12))
        step = np.linalg.lstsq((Xv * (new * mu)[:, None]).T @ Xv, Xv.T @ (new * (y - mu)), None)[0]
        beta = beta + step
        settled = np.max(np.abs(new - w)) < 1e-4 and np.max(np.abs(step)) < 1e-8
        w = new
        if settled:
            break
    return w


def _estimate(
    fam: str,
    y: pd.Series,
    X: pd.DataFrame,
    offset: np.ndarray | None,
    units: np.ndarray,
    t: np.ndarray,
    cov_type: str,
    maxlags: int | None,
    n_periods: float,
    robust: bool = False,
) -> _Fit:
    """Fit the model and its covariance (see :func:`fit_its` and docs/methods.md)."""
    link = "identity" if fam == "gaussian" else "log"
    yv, Xv = y.to_numpy(dtype=float), X.to_numpy(dtype=float)
    alpha = rho = lags = correction = None
    weights = _huber_weights(yv, X, offset) if robust else None
    if fam == "negbin":
        if cov_type == "hac":
            raise ValueError("cov_type='hac' is not available for family='negbin'; use 'ar1'")
        result = _fit_negbin(yv, X, offset)
        params, alpha, mu, cov = result.params, result.alpha, result.mu, result.cov
        scale = 1.0
        df_resid = float(len(yv) - len(params) - 1)
        inference, df_inf = "normal", df_resid
    else:
        sm_family = sm.families.Gaussian() if fam == "gaussian" else sm.families.Poisson()
        model = sm.GLM(y, X, family=sm_family, offset=offset, var_weights=weights)
        glm_scale: float | str = 1.0 if fam == "poisson" else "X2"
        first = None
        if fam == "quasipoisson":
            # φ = max(1, Pearson χ²/df): a count's variance is at least its mean, and a φ
            # below 1 from a short series is noise that would narrow the intervals.
            first = model.fit(scale=1.0)
            glm_scale = max(1.0, float(first.pearson_chi2) / float(first.df_resid))
        if first is not None and cov_type in SERIAL_COV_TYPES:
            # the scale changes only the GLM's covariance, which the serial model replaces
            result = first
            inference = "t"
        elif cov_type == "hac":
            lags = maxlags if maxlags is not None else _default_maxlags(n_periods)
            result = model.fit(
                scale=glm_scale,
                cov_type="hac-panel",
                cov_kwds={"groups": units, "maxlags": lags, "use_correction": "hac"},
            )
            inference, correction = "normal", "n/(n-k)"
        elif cov_type == "cluster":
            result = model.fit(
                scale=glm_scale, cov_type="cluster", cov_kwds={"groups": units}, use_t=True
            )
            inference, correction = "t", "CR1 G/(G-1) (N-1)/(N-K)"
        else:
            use_t = fam == "gaussian" or cov_type in SERIAL_COV_TYPES
            result = model.fit(scale=glm_scale, use_t=use_t)
            inference = "t" if use_t else "normal"
        params = result.params
        mu = np.asarray(result.fittedvalues, dtype=float)
        cov = result.cov_params().to_numpy()
        scale = float(result.scale)
        df_resid = float(result.df_resid)
        df_inf = float(getattr(result, "df_resid_inference", None) or df_resid)
    if not np.all(np.isfinite(params)):
        raise NotEstimableError("the model did not converge to finite coefficients")
    pearson = (yv - mu) / np.sqrt(_variance(fam, mu, alpha))
    pearson_disp = float(np.sum(pearson**2) / df_resid) if df_resid > 0 else float("nan")
    dispersion = 1.0 if fam in ("poisson", "negbin") else pearson_disp
    if fam == "quasipoisson":
        dispersion = max(1.0, pearson_disp)
    if fam == "negbin" and cov_type in ("ar1", "cluster"):
        scale = 1.0
    serial = None
    if cov_type in SERIAL_COV_TYPES:
        Xt = _working_design(Xv, mu, fam, link, alpha)
        rule = {"poisson": "fixed", "negbin": "fixed", "quasipoisson": "floor"}.get(fam, "free")
        psi = pearson if weights is None else pearson * weights
        # the weighted fit solves Xt' ψ = 0 with ψ = w r (bounded): the correlation and
        # dispersion are those of ψ, and β̂ - β ≈ (Xt' W Xt)⁻¹ Xt' ψ
        C = None if weights is None else np.linalg.inv((Xt * weights[:, None]).T @ Xt)
        if cov_type == "arma":
            serial = _integrated_correlation(psi, Xt, units, t, rule, C)
        else:
            serial = _serial_correlation(psi, Xt, units, t, rule)
            if C is not None:
                serial = dataclasses.replace(serial, _A=Xt @ C)
        cov = serial.cov()
        rho = serial.lag1
        correction = serial.method
        dispersion = serial.dispersion if fam in ("quasipoisson", "gaussian") else dispersion
        inference, df_inf = "t", df_resid
    elif cov_type == "cluster" and fam == "negbin":
        cov = _sandwich(Xv, yv, mu, fam, link, scale, alpha, units, t, cluster=True)
        correction = "CR1 G/(G-1) (N-1)/(N-K)"
        inference, df_inf = "t", float(len(np.unique(units)) - 1)
    names = list(X.columns)
    return _Fit(
        params=pd.Series(np.asarray(params, dtype=float), index=names),
        cov=pd.DataFrame(cov, index=names, columns=names),
        mu=mu,
        pearson=pearson,
        df_resid=df_resid,
        df_inference=df_inf,
        inference=inference,
        dispersion=dispersion,
        pearson_dispersion=pearson_disp,
        alpha=alpha,
        rho=rho,
        lags=lags,
        correction=correction,
        result=result,
        serial=serial,
    )


def fit_its(
    df: pd.DataFrame,
    outcome: str,
    time: str,
    start: Any,
    *,
    exposure: str | None = None,
    family: str = "auto",
    harmonics: int | None = None,
    season: str | None = None,
    period: int = 12,
    phase_in: int = 0,
    slope_change: bool = True,
    group: str | None = None,
    unit: str | None = None,
    unit_effects: bool = False,
    cov_type: str = "nonrobust",
    maxlags: int | None = None,
    horizon: int = 12,
    trend: str = "linear",
    baseline_months: int | None = None,
    robust: bool = False,
) -> ITSResult:
    """Fit a segmented regression for an interrupted time series.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per period (and per unit for stacked series). Rows with a missing outcome or
        exposure are dropped (blank means "not recorded") and counted in ``spec``.
    outcome : str
        Column with the outcome: a count for log-link families, any number for ``gaussian``.
    time : str
        Numeric column (t = 0 at the first observed period) or a monthly column (datetime or
        ``Period[M]``), counted in months.
    start : number, month or column name
        Value of ``time`` at the first post-intervention period (h = 0); a month (``"2021-04"``,
        Timestamp or Period) when ``time`` is monthly. The name of a column gives each row its
        own start (stacked series whose units join at different times).
    exposure : str, optional
        Column whose log is the offset (occupied bed days, population); must be > 0 where the
        outcome is recorded. Log-link families only.
    family : {"auto", "poisson", "quasipoisson", "negbin", "gaussian"}, default "auto"
        ``quasipoisson`` uses the dispersion φ = max(1, Pearson chi-square / df) (with
        ``cov_type="arma"``/``"ar1"``, max(1, REML estimate)); ``negbin`` is NB2 with α
        estimated; ``auto`` is not quasi-Poisson: it chooses Poisson, quasi-Poisson or negative
        binomial by the over-dispersion tests of :func:`choose_family` (the choice and why are
        in ``spec.family_reason``), a pretest whose selection the intervals do not allow for.
        The trust evaluations default to ``quasipoisson`` (docs/methods.md §1.4).
    harmonics : int, optional
        Number of sine/cosine pairs of ``season`` over ``period``. ``None`` chooses 2 pairs for
        series of 24 or more periods when a season is available (``season`` given or ``time``
        monthly), else 0.
    season : str, optional
        Column with the position in the seasonal cycle (month of year 1-12) or a date column.
        Defaults to the month of ``time`` when ``time`` is monthly.
    period : int, default 12
        Length of the seasonal cycle.
    phase_in : int, default 0
        Periods after the start (0 <= h < phase_in) dropped from the fit.
    slope_change : bool, default True
        Include the slope-change term (h - phase_in) in the post period.
    group : str, optional
        Column equal to 1 for the treated series and 0 for comparison series (controlled ITS,
        Linden 2015): adds ``group`` and its interactions with every segment term.
    unit : str, optional
        Column naming each stacked series; Newey-West errors are computed within units and
        cluster-robust errors cluster by unit.
    unit_effects : bool, default False
        Add a fixed effect per unit (``unit[<name>]``, the first unit as reference): the
        stacked ward model of SPEC §2.
    cov_type : {"nonrobust", "arma", "ar1", "hac", "cluster"}, default "nonrobust"
        Model-based standard errors; errors allowing for correlation between months within a
        series: ``"arma"`` (the trust default) ARMA(1,1) working correlation of the residuals
        integrated over its posterior (REML likelihood, reference prior), the interval of each
        effect being the posterior mixture of t intervals, reported as the t on matched degrees
        of freedom (see :class:`IntegratedCorrelation`); ``"ar1"`` AR(1) estimated by REML and
        plugged in, with Satterthwaite degrees of freedom per effect (see
        :class:`SerialCorrelation`; ``rho`` and ``serial`` record either); Newey-West (Bartlett
        kernel, n/(n-k) small-sample correction, computed within units); or cluster-robust by
        unit (CR1 correction, t quantiles on G - 1 degrees of freedom).
    maxlags : int, optional
        Newey-West lag; default floor(4 (n/100)^(2/9)) with n the periods per unit.
    horizon : int, default 12
        Common horizon H for ``rr_h``.
    trend : {"linear", "quadratic"}, default "linear"
        The secular trend: linear in time, or with a squared term ``pre_trend_sq`` ((t/12)²)
        that the counterfactual continues (a sensitivity analysis for a curved trend).
    baseline_months : int, optional
        Keep only the last ``baseline_months`` periods before the start (a sensitivity
        analysis: a trend fitted to the recent baseline only).
    robust : bool, default False
        Huber-weighted quasi-likelihood (Poisson and quasi-Poisson only): months whose Pearson
        residual, in units of a robust (MAD) scale of at least 1, exceeds 1.345 are
        down-weighted by 1.345 / |residual| until the weights settle; the correlation,
        dispersion and intervals are those of the weighted fit (a sensitivity analysis for
        outlying months; docs/methods.md).

    Returns
    -------
    ITSResult

    Raises
    ------
    ValueError
        On a missing or mistyped column, an impossible value or option.
    NotEstimableError
        When a segment has fewer than 3 points, the outcome is all zero, or there are no more
        rows than coefficients.

    Notes
    -----
    Model, conventions and references: ``docs/methods.md`` (Lopez Bernal et al. 2017; Wagner et
    al. 2002; Linden 2015). ``effects`` holds ``level_change`` (ratio or difference at h =
    phase_in) and ``slope_change`` (per period); with ``group=``, ``level_change`` and
    ``slope_change`` are the treated series' own changes, ``*_vs_control`` their differences from
    the comparison series and ``*_control`` the comparison series' changes.

    Examples
    --------
    A series of 36 months whose rate falls by a quarter at month 18 (Lopez Bernal et al.'s
    Sicily data give 0.8851, as ``tests/reference`` checks):

    >>> import numpy as np, pandas as pd
    >>> t = np.arange(36)
    >>> df = pd.DataFrame({"t": t, "events": np.round(200 * 0.75 ** (t >= 18)), "obd": 1e4})
    >>> res = fit_its(df, outcome="events", time="t", start=18, exposure="obd",
    ...               family="poisson", harmonics=0)
    >>> round(float(res.effects.loc["level_change", "estimate"]), 2)
    0.75
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, not {type(df).__name__}")
    _require_columns(
        df, outcome=outcome, time=time, exposure=exposure, season=season, group=group, unit=unit
    )
    fam, family_reason = _resolve_family(family)
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r} is not supported; allowed: {', '.join(COV_TYPES)}")
    if maxlags is not None and (not isinstance(maxlags, int) or maxlags < 0):
        raise ValueError(f"maxlags={maxlags!r} must be a whole number >= 0")
    if not isinstance(phase_in, int) or phase_in < 0:
        raise ValueError(f"phase_in={phase_in!r} must be a whole number of periods >= 0")
    if not isinstance(period, int) or period < 2:
        raise ValueError(f"period={period!r} must be a whole number >= 2")
    if exposure is not None and fam == "gaussian":
        raise ValueError(
            "exposure is an offset for log-link families; with family='gaussian' model a rate "
            "as the outcome instead"
        )
    link = "identity" if fam == "gaussian" else "log"

    monthly = _is_monthly(df[time])
    y = _numeric(df, outcome, "outcome")
    keep = y.notna()
    if exposure is not None:
        e = _numeric(df, exposure, "exposure")
        keep &= e.notna()
    timeval = _month_index(df[time]).astype(float) if monthly else _numeric(df, time, "time")
    if timeval.isna().any():
        raise ValueError(f"time column {time!r} has missing values")
    if isinstance(start, str) and start in df.columns:
        start_v = _start_column(df, start, monthly, time)
    else:
        start_v = _start_value(start, monthly, time)
    if (unit_effects or cov_type == "cluster") and unit is None:
        raise ValueError(f"{'unit_effects' if unit_effects else 'cov_type=cluster'} needs unit=")

    n_missing = int((~keep).sum())
    data = pd.DataFrame(index=df.index)
    data["time_value"] = timeval
    data["t"] = timeval - timeval.min()
    data["h"] = timeval - start_v
    data["y"] = y
    if exposure is not None:
        data["exposure"] = e
    if group is not None:
        z = _numeric(df, group, "group")
        if not set(z.dropna().unique()) <= {0.0, 1.0} or z.isna().any():
            raise ValueError(
                f"group column {group!r} must hold only 0 (comparison) and 1 (treated)"
            )
        if z.nunique() < 2:
            raise ValueError(
                f"group column {group!r} must have both treated (1) and comparison (0) rows"
            )
        data["z"] = z
    data["unit"] = (
        df[unit].astype(str) if unit is not None else (data["z"] if group is not None else 0)
    )
    data = data[keep]
    if trend not in ("linear", "quadratic"):
        raise ValueError(f"trend={trend!r} is not supported; allowed: linear, quadratic")
    if baseline_months is not None:
        if not isinstance(baseline_months, int) or baseline_months < MIN_POINTS_PER_SEGMENT:
            raise ValueError(
                f"baseline_months={baseline_months!r} must be a whole number >= "
                f"{MIN_POINTS_PER_SEGMENT}"
            )
        data = data[data["h"] >= -baseline_months]
        data = data.assign(t=data["time_value"] - data["time_value"].min())
    in_phase_in = (data["h"] >= 0) & (data["h"] < phase_in)
    n_phase = int(in_phase_in.sum())
    data = data[~in_phase_in]

    if exposure is not None and (data["exposure"] <= 0).any():
        bad = data.index[data["exposure"] <= 0][:5].tolist()
        raise ValueError(
            f"exposure {exposure!r} must be > 0 where {outcome!r} is recorded (rows {bad}); "
            "drop closed periods or leave their outcome blank"
        )
    if link == "log" and (data["y"] < 0).any():
        raise ValueError(f"outcome {outcome!r} must be >= 0 for family {fam!r}")
    dup = data.duplicated(["unit", "time_value"])
    if dup.any():
        raise ValueError(
            f"{int(dup.sum())} rows repeat a value of {time!r} within a series; pass unit= to "
            "name each stacked series"
        )

    treated = data["z"] == 1 if group is not None else pd.Series(True, index=data.index)
    post = data["h"] >= phase_in
    for label, mask in (("treated", treated), ("comparison", ~treated)):
        if not mask.any():
            continue
        n_pre_g, n_post_g = int((mask & ~post).sum()), int((mask & post).sum())
        if min(n_pre_g, n_post_g) < MIN_POINTS_PER_SEGMENT:
            who = f" in the {label} series" if group is not None else ""
            raise NotEstimableError(
                f"{n_pre_g} pre-intervention and {n_post_g} post-intervention points{who}; "
                f"at least {MIN_POINTS_PER_SEGMENT} are needed in each segment (Cochrane EPOC)"
            )
    if link == "log" and (data["y"] == 0).all():
        raise NotEstimableError(f"{outcome!r} is zero in every period: there is nothing to model")
    if link == "log":
        for label, seg in (("before", treated & ~post), ("after", treated & post)):
            if data.loc[seg, "y"].sum() == 0:
                raise NotEstimableError(
                    f"no {outcome!r} events {label} the start: a rate ratio cannot be estimated"
                )

    n_periods = data.groupby("unit")["t"].size().mean()
    if harmonics is None:
        season_known = season is not None or monthly
        harmonics = 2 if season_known and n_periods >= 24 else 0
    if not isinstance(harmonics, int) or harmonics < 0 or harmonics > period // 2:
        raise ValueError(f"harmonics={harmonics!r} must be a whole number from 0 to {period // 2}")

    # the columns as arrays, made into one frame (column-by-column inserts are slow)
    tv, hv, postv = data["t"].to_numpy(float), data["h"].to_numpy(float), post.to_numpy()
    cols: dict[str, np.ndarray] = {"intercept": np.ones(len(data)), "pre_trend": tv}
    if trend == "quadratic":
        cols["pre_trend_sq"] = (tv / 12.0) ** 2
    cols["level_change"] = postv.astype(float)
    if slope_change:
        cols["slope_change"] = (hv - phase_in) * postv
    if harmonics:
        s = _season_values(df.loc[data.index], season, time, monthly).to_numpy(float)
        for j in range(1, harmonics + 1):
            cols[f"sin{j}"] = np.sin(2 * np.pi * j * s / period)
            cols[f"cos{j}"] = np.cos(2 * np.pi * j * s / period)
    segment_terms = [c for c in ("pre_trend", "level_change", "slope_change") if c in cols]
    if group is not None:
        zv = data["z"].to_numpy(float)
        cols["group"] = zv
        for c in segment_terms:
            cols[f"group:{c}"] = zv * cols[c]
    if unit_effects:
        uv = data["unit"].to_numpy()
        for u in pd.unique(data["unit"])[1:]:
            cols[f"unit[{u}]"] = (uv == u).astype(float)
    X = pd.DataFrame(cols, index=data.index)
    if len(X) <= X.shape[1]:
        raise NotEstimableError(f"{len(X)} points for {X.shape[1]} coefficients: too few to fit")

    order = np.lexsort((data["t"].to_numpy(), pd.factorize(data["unit"])[0]))
    X, data = X.iloc[order], data.iloc[order]

    offset = np.log(data["exposure"]).to_numpy() if exposure is not None else None
    if fam == "auto":
        fam, family_reason = choose_family(data["y"].to_numpy(float), X.to_numpy(float), offset)
    if robust and fam not in ("poisson", "quasipoisson"):
        raise ValueError(f"robust=True is for the Poisson and quasi-Poisson families, not {fam!r}")
    units = pd.factorize(data["unit"])[0]
    fit = _estimate(
        fam,
        data["y"],
        X,
        offset,
        units,
        data["time_value"].to_numpy(float),
        cov_type,
        maxlags,
        n_periods,
        robust,
    )
    frame = pd.concat([data, X.drop(columns=["intercept"])], axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    frame["fitted"] = fit.mu
    frame["pearson_resid"] = fit.pearson

    formula = " + ".join(X.columns.drop("intercept"))
    if exposure is not None:
        formula += f" + offset(log({exposure}))"
    spec = ITSSpec(
        outcome=outcome,
        time=time,
        time_kind="monthly" if monthly else "numeric",
        start=start,
        exposure=exposure,
        family=fam,
        family_reason=family_reason,
        link=link,
        effect_scale="ratio" if link == "log" else "difference",
        harmonics=harmonics,
        season=season if harmonics else None,
        period=period,
        phase_in=phase_in,
        slope_change=slope_change,
        group=group,
        unit=unit,
        unit_effects=unit_effects,
        cov_type=cov_type,
        maxlags=fit.lags,
        hac_correction=fit.correction,
        inference=fit.inference,
        horizon=horizon,
        formula=formula,
        terms=tuple(X.columns),
        n_dropped_missing=n_missing,
        n_dropped_phase_in=n_phase,
        trend=trend,
        baseline_months=baseline_months,
        robust=robust,
    )
    res = ITSResult(
        params=fit.params,
        cov_params=fit.cov,
        effects=pd.DataFrame(columns=_EFFECT_COLUMNS, dtype=float),
        dispersion=fit.dispersion,
        pearson_dispersion=fit.pearson_dispersion,
        df_resid=fit.df_resid,
        df_inference=fit.df_inference,
        nobs=len(fit.mu),
        n_pre=int((treated & ~post).sum()),
        n_post=int((treated & post).sum()),
        h_end=float(data.loc[treated & post, "h"].max()),
        frame=frame,
        spec=spec,
        alpha=fit.alpha,
        rho=fit.rho,
        design=X,
        offset=offset,
        model_result=fit.result,
        serial=fit.serial,
    )
    object.__setattr__(res, "effects", _effects_table(res))
    return res


def _effect_combinations(spec: ITSSpec) -> dict[str, dict[str, float]]:
    """Weights on ``params`` of each row of the effects table (see :func:`fit_its`)."""
    terms = ["level_change"] + (["slope_change"] if spec.slope_change else [])
    if spec.group is None:
        return {t: {t: 1.0} for t in terms}
    combos = {t: {t: 1.0, f"group:{t}": 1.0} for t in terms}
    combos |= {f"{t}_vs_control": {f"group:{t}": 1.0} for t in terms}
    combos |= {f"{t}_control": {t: 1.0} for t in terms}
    return combos


def _effects_table(res: ITSResult) -> pd.DataFrame:
    """The effects on their natural scale."""
    rows = {name: res.effect(name) for name in _effect_combinations(res.spec)}
    return pd.DataFrame(rows).T[_EFFECT_COLUMNS]
