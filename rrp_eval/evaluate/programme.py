"""The programme's evaluation: the trusts' ITS pooled, the ward-panel models, aims, breakdowns.

:func:`evaluate_programme` returns a frozen :class:`ProgrammeEvaluation` that the programme
notebook shows and the batch run's tables are built from. :func:`load_programme` is the one
call a notebook makes to read, validate and prepare the data.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rrp_eval.data.synthetic import data_location
from rrp_eval.data.validate import ProgrammeData
from rrp_eval.data.validate import load_programme as read_programme
from rrp_eval.digest import files_digest
from rrp_eval.evaluate.cache import cache_folder, cached, one_thread
from rrp_eval.evaluate.tables import SPC_COLUMNS, its_effects_table
from rrp_eval.evaluate.trust import TrustEvaluation, evaluate_trust, headline_measure
from rrp_eval.models.controlled import (
    ControlledResult,
    callaway_santanna,
    etwfe_poisson,
    event_time_panel,
    fit_event_study,
)
from rrp_eval.models.meta import (
    EFFECTS,
    PROGRAMME_COLUMNS,
    PooledEffect,
    aims_table,
    breakdown,
    funnel_table,
    gee_rows,
    interval_se,
    pool_random_effects,
    programme_effects,
    ward_changes,
)
from rrp_eval.models.results import FrozenMap, ResultMixin, as_figure, recorded_warnings
from rrp_eval.params import ProgrammeParams, load_params
from rrp_eval.prepare import check_trust_files, with_derived_measures, without_excluded_wards

#: how reports name the methods of ``programme_effects``
METHOD_NAMES = {
    "random_effects_reml_hk": "random-effects meta-analysis of the trusts' interrupted time "
    "series (REML, modified Hartung-Knapp interval)",
    "random_effects_pm_hk": "random-effects meta-analysis of the trusts' interrupted time "
    "series (Paule-Mandel, modified Hartung-Knapp interval)",
    "random_effects_dl_hk": "random-effects meta-analysis of the trusts' interrupted time "
    "series (DerSimonian-Laird, modified Hartung-Knapp interval)",
    "random_effects_reml": "random-effects meta-analysis of the trusts' interrupted time "
    "series (REML, normal interval)",
    "random_effects_pm": "random-effects meta-analysis of the trusts' interrupted time "
    "series (Paule-Mandel, normal interval)",
    "random_effects_dl": "random-effects meta-analysis of the trusts' interrupted time "
    "series (DerSimonian-Laird, normal interval)",
    "controlled": "controlled analysis against comparison wards (extended two-way fixed-effects "
    "Poisson model)",
    "controlled_cs": "controlled analysis against comparison wards (Callaway & Sant'Anna)",
    "gee_pooled": "pooled model of the participating wards (GEE)",
}
ROLES = ("primary", "secondary", "exploratory")


def effect_words(effect: str, horizon: int, phase_in: int = 0) -> str:
    """How reports name a ``programme_effects`` effect."""
    if effect == "rr_h":
        return f"rate ratio {horizon} months after joining"
    if effect == "slope_rr":
        return "change in the monthly trend after joining"
    return "change in level " + (
        f"{phase_in} months after joining (the end of the phase-in)" if phase_in else "on joining"
    )


def result_role(params: ProgrammeParams, measure: str, effect: str, method: str) -> str:
    """``primary``, ``secondary`` or ``exploratory`` (the statistical analysis plan that
    ``programme.yaml``'s ``primary`` sets, docs/methods.md §4.4).

    Primary: the one pre-specified measure, effect and method. Secondary: the primary
    measure's other effects and methods, and the primary effect by the primary method for
    the other restrictive practice measures. Exploratory: everything else, including every
    balancing and negative-control measure (read for harm moved elsewhere, not as evidence
    of benefit).
    """
    p = params.primary
    if (measure, effect, method) == (p.measure, p.effect, p.method):
        return "primary"
    own = params.measure(measure)
    if own.balancing or own.negative_control:
        return "exploratory"
    if measure == p.measure or (effect, method) == (p.effect, p.method):
        return "secondary"
    return "exploratory"


@dataclass(frozen=True)
class PrimaryAnswer:
    """The pre-specified answer: ``row`` is its ``programme_effects`` row, or None with the
    ``reason`` it could not be estimated (a missing primary is reported, never replaced)."""

    measure: str
    effect: str
    method: str
    row: pd.Series | None
    reason: str = ""

    @property
    def estimated(self) -> bool:
        return self.row is not None and bool(np.isfinite(self.row["estimate"]))


#: Callaway & Sant'Anna's cluster bootstrap draws: for the table's two event times, and for
#: the event-study chart's every month (drawn on request)
CS_BOOTSTRAP, CS_CHART_BOOTSTRAP = 499, 999
#: event times of the event-study chart
EVENT_WINDOW = (-12, 24)


def load_programme(
    data: str | Path | None = None,
    params: str | Path | ProgrammeParams | None = None,
    *,
    allow_trust_errors: bool = True,
) -> ProgrammeData:
    """Read, validate and prepare a programme's data: what every evaluation starts from.

    Parameters
    ----------
    data : str or Path, optional
        Data folder or workbook; default the parameters' ``data`` (else the demonstration
        programme, generated on first use).
    params : str, Path or ProgrammeParams, optional
        A parameters folder (with ``programme.yaml``) or loaded parameters; default built-in
        defaults.
    allow_trust_errors : bool, default True
        Keep the data when every error is confined to some trusts (``report.failed_trusts``
        names them; their evaluations are refused and the programme's leave them out).

    Returns
    -------
    ProgrammeData
        Validated, with the trusts' ``exclude_wards`` removed and ``restrictive_practice``
        derived; ``params`` holds the parameters.

    Raises
    ------
    ValueError
        A data path that does not exist, or an excluded ward that is not in the data.
    DataValidationError
        When the data cannot be used.

    Examples
    --------
    >>> import rrp_eval as rrp
    >>> programme = rrp.load_programme()
    >>> programme.trusts[:3]
    ['X01', 'X02', 'X03']
    """
    if not isinstance(params, ProgrammeParams):
        params = load_params(params or None)
    path = data_location(data, params)
    if not Path(path).exists():
        raise ValueError(f"data={str(path)!r}: no such file or folder")

    def compute() -> ProgrammeData:
        programme = read_programme(path, params, allow_trust_errors=allow_trust_errors)
        check_trust_files(programme, params.trusts)
        return with_derived_measures(without_excluded_wards(programme, params.excluded_wards))

    # in a batch run every notebook starts here: the first validates, the rest read its result
    # (validating 150 trusts' data takes 5 s, which every trust's notebook paid until issue 20)
    if cache_folder() is None:
        return compute()
    key = (str(Path(path).resolve()), files_digest(Path(path)), params.digest(), allow_trust_errors)
    return cached("data", key, compute)


@dataclass(frozen=True, eq=False)
class ControlledFit(ResultMixin):
    """The controlled analyses of one measure: Wooldridge's extended TWFE Poisson model
    (``result``) and Callaway & Sant'Anna's estimator on rates (``cs``, at event times 0 and
    the horizon); ``message`` says why there is none. The event study (``event_study``,
    ``placebo``, ``cs_event_study``) is fitted when first asked for: a chart needs it, the
    tables do not."""

    measure: str
    horizon: int
    panel: pd.DataFrame
    result: ControlledResult | None
    cs: pd.DataFrame | None
    message: str = ""
    warnings: tuple[str, ...] = ()
    phase_in: int = 0

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "horizon": self.horizon,
            "phase_in": self.phase_in,
            "model": "extended TWFE Poisson (Wooldridge 2023), Callaway & Sant'Anna (2021)",
            "bootstrap": CS_BOOTSTRAP,
        }

    @functools.cached_property
    def _study(self) -> tuple[pd.DataFrame, dict[str, float]]:
        if self.result is None:
            raise ValueError(f"{self.measure}: no event study ({self.message})")
        with recorded_warnings():
            return fit_event_study(self.panel, EVENT_WINDOW)

    @property
    def event_study(self) -> pd.DataFrame:
        """``event_time, estimate, ci_low, ci_high, wards, kind``: the ratio against the
        counterfactual by month since joining (leads are placebo effects)."""
        return self._study[0]

    @property
    def placebo(self) -> dict[str, float]:
        """The leads' average ratio and the t test that it is 1."""
        return self._study[1]

    @functools.cached_property
    def cs_event_study(self) -> pd.DataFrame:
        """Callaway & Sant'Anna's ratios at every month of the event-study window."""
        return callaway_santanna(self.panel, EVENT_WINDOW, n_boot=CS_CHART_BOOTSTRAP)

    def rows(self) -> list[dict[str, Any]]:
        """The ``programme_effects`` rows: ``controlled`` (level, slope and the horizon) and
        ``controlled_cs`` (event times 0 and the horizon)."""
        if self.result is None:
            return []
        blank = {"pi_low": math.nan, "pi_high": math.nan, "i2": math.nan, "tau2": math.nan}
        rows = [
            {
                "measure": self.measure,
                "effect": effect,
                "method": "controlled",
                **{k: e[k] for k in ("estimate", "ci_low", "ci_high")},
                **blank,
                "n_trusts": self.result.n_trusts,
            }
            for effect, e in self.result.effects.items()
        ]
        cs = self.cs.set_index("event_time") if self.cs is not None else pd.DataFrame()
        for effect, ev in (("level_rr", self.phase_in), ("rr_h", self.horizon)):
            if ev in cs.index:
                r = cs.loc[ev]
                rows.append(
                    {
                        "measure": self.measure,
                        "effect": effect,
                        "method": "controlled_cs",
                        "estimate": r["ratio"],
                        "ci_low": r["ratio_low"],
                        "ci_high": r["ratio_high"],
                        **blank,
                        "n_trusts": self.result.n_trusts,
                    }
                )
        return rows

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        rows = pd.DataFrame(self.rows(), columns=PROGRAMME_COLUMNS)
        frame = rows.set_index(["method", "effect"])[["estimate", "ci_low", "ci_high"]]
        if self.result is not None:
            p = {
                ("controlled", k): e.get("p_value", math.nan)
                for k, e in self.result.effects.items()
            }
            frame["p_value"] = [p.get(i, math.nan) for i in frame.index]
        else:
            frame["p_value"] = pd.Series(dtype=float)
        return frame

    def _summary_title(self) -> str:
        if self.result is None:
            return f"{self.measure}: no controlled analysis ({self.message})"
        r = self.result
        return (
            f"{self.measure}: controlled analyses, {r.n_wards} participating wards in "
            f"{r.n_cohorts} cohorts, {r.n_comparison_wards} comparison wards, {r.n_trusts} trusts"
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The event study, Callaway & Sant'Anna's ratios as open circles (a Figure)."""
        from rrp_eval.plots import plot_event_study

        cs = self.cs_event_study.rename(columns=_CS_NAMES)
        return as_figure(plot_event_study(self.event_study, ax, sensitivity=cs, **kwargs))

    def __repr__(self) -> str:
        if self.result is None:
            return f"ControlledFit({self.measure}: {self.message})"
        e = self.result.effects["level_rr"]
        return (
            f"ControlledFit({self.measure}, level_rr {e['estimate']:.3f} "
            f"({e['ci_low']:.3f} to {e['ci_high']:.3f}), {self.result.n_trusts} trusts)"
        )


_CS_NAMES = {"ratio": "estimate", "ratio_low": "ci_low", "ratio_high": "ci_high"}


def fit_controlled(
    data: ProgrammeData, measure: str, horizon: int, phase_in: int = 0
) -> ControlledFit:
    """The controlled analyses of one measure (see :class:`ControlledFit`); with ``phase_in``
    k the level change is at month k, as in the trust ITS."""
    panel = event_time_panel(data.ward_month, data.wards, measure)
    with recorded_warnings() as caught:
        try:
            res = etwfe_poisson(panel, measure, horizon, event_study=False, phase_in=phase_in)
        except (ValueError, np.linalg.LinAlgError) as exc:
            res, message = None, str(exc)
        else:
            message = ""
            cs = callaway_santanna(panel, (phase_in, horizon), n_boot=CS_BOOTSTRAP)
    fit = ControlledFit(measure, horizon, panel, res, None, message, (*caught,), phase_in)
    return fit if res is None else replace(fit, cs=cs)


@dataclass(frozen=True, eq=False)
class PanelFits:
    """The programme-level fits on the ward panel, which need no trust's ITS: the pooled GEE
    rows and the controlled analyses of every measure."""

    gee: pd.DataFrame
    controlled: Mapping[str, ControlledFit]
    warnings: tuple[str, ...] = ()
    #: each measure's ward changes before and after joining and its aims table
    changes: Mapping[str, pd.DataFrame] = field(default_factory=lambda: FrozenMap({}))
    aims: Mapping[str, pd.DataFrame | None] = field(default_factory=lambda: FrozenMap({}))

    def rows(self) -> pd.DataFrame:
        """Their ``programme_effects`` rows."""
        controlled = [r for fit in self.controlled.values() for r in fit.rows()]
        return pd.concat(
            [self.gee, pd.DataFrame(controlled, columns=PROGRAMME_COLUMNS)], ignore_index=True
        )

    @classmethod
    def combine(cls, parts: Sequence[PanelFits]) -> PanelFits:
        """One measure's fits after another (:func:`fit_panel_measure`) as :func:`fit_panel`
        makes them."""
        gee = [p.gee for p in parts if not p.gee.empty]
        return cls(
            pd.concat(gee, ignore_index=True) if gee else pd.DataFrame(columns=PROGRAMME_COLUMNS),
            FrozenMap({m: f for p in parts for m, f in p.controlled.items()}),
            tuple(w for p in parts for w in p.warnings),
            FrozenMap({m: c for p in parts for m, c in p.changes.items()}),
            FrozenMap({m: a for p in parts for m, a in p.aims.items()}),
        )


def fit_panel(data: ProgrammeData, params: ProgrammeParams) -> PanelFits:
    """The GEE and controlled analyses of every analysed measure (none without wards), on one
    BLAS thread (:func:`~rrp_eval.evaluate.cache.one_thread`)."""
    measures = params.analysed_measures(data.measures)
    return PanelFits.combine([fit_panel_measure(data, params, m) for m in measures])


def fit_panel_measure(
    data: ProgrammeData, params: ProgrammeParams, measure: str, event_study: bool = False
) -> PanelFits:
    """:func:`fit_panel` of one measure, on one BLAS thread: the batch run makes one task of
    each, beside the trusts' (``event_study`` also fits the event study and Callaway &
    Sant'Anna's chart, which the programme page shows, so that its notebook need not)."""
    return one_thread(lambda: _fit_panel_measure(data, params, measure, event_study))


def _fit_panel_measure(
    data: ProgrammeData, params: ProgrammeParams, measure: str, event_study: bool
) -> PanelFits:
    if data.wards.empty or data.ward_month.empty:
        return PanelFits(pd.DataFrame(columns=PROGRAMME_COLUMNS), FrozenMap({}))
    h, k = params.horizon_months, params.phase_in_months
    with recorded_warnings() as caught:
        gee = gee_rows(data.ward_month, data.wards, (measure,), h, phase_in=k)
    controlled = fit_controlled(data, measure, h, k)
    if event_study and controlled.result is not None:
        _ = controlled.event_study, controlled.cs_event_study  # cached on the fit
    # the wards' before-after changes and the aims (whose simulation of chance grows with the
    # wards) are made here too, beside the trusts, rather than in the programme's notebook
    changes = ward_changes(data.ward_month, data.wards, measure)
    aims = aims_table(changes) if len(changes) else None
    return PanelFits(
        gee,
        FrozenMap({measure: controlled}),
        (*caught,),
        FrozenMap({measure: changes}),
        FrozenMap({measure: aims}),
    )


@dataclass(frozen=True, eq=False)
class ProgrammeEvaluation(ResultMixin):
    """The programme's evaluation.

    ``data`` are the analysed rows (trusts that failed validation left out; ``trust_names``
    still names them), ``trusts`` each analysed trust's :class:`TrustEvaluation` (without its
    sensitivity analyses), ``its_effects`` and ``spc_signals`` their tables, ``pooled`` the
    ``programme_effects`` table (meta-analyses, pooled GEE, controlled), ``controlled`` the
    controlled fits per measure. Aims, breakdowns and the funnel are computed on request.
    """

    params: ProgrammeParams
    data: ProgrammeData
    trust_names: Mapping[str, str]
    failed: tuple[str, ...]
    trusts: Mapping[str, TrustEvaluation]
    its_effects: pd.DataFrame
    spc_signals: pd.DataFrame
    pooled: pd.DataFrame
    controlled: Mapping[str, ControlledFit]
    warnings: tuple[str, ...] = field(default=())
    #: ward changes and aims tables made with the panel fits (:class:`PanelFits`)
    changes: Mapping[str, pd.DataFrame] = field(default_factory=lambda: FrozenMap({}))
    aim_tables: Mapping[str, pd.DataFrame | None] = field(default_factory=lambda: FrozenMap({}))

    @property
    def measures(self) -> tuple[str, ...]:
        """The analysed measures."""
        return self.params.analysed_measures(self.data.measures)

    @property
    def headline(self) -> str:
        """The measure reports lead with."""
        return headline_measure(self.params, self.data.measures)

    @property
    def has_starts(self) -> bool:
        """Whether any ward has a programme start (else the data are provider-level context)."""
        return bool(self.data.wards["start_month"].notna().any())

    def label(self, measure: str) -> str:
        """The measure's name as reports print it."""
        return self.params.measure(measure).label or measure

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "programme": self.params.programme,
            "trusts": tuple(self.trusts),
            "failed_trusts": self.failed,
            "measures": self.measures,
            "horizon_months": self.params.horizon_months,
        }

    def effect(self, measure: str, method: str, effect: str = "level_rr") -> pd.Series | None:
        """One row of ``pooled`` (None when there is none)."""
        p = self.pooled
        rows = p[(p.measure == measure) & (p.method == method) & (p.effect == effect)]
        return rows.iloc[0] if len(rows) else None

    def pool(
        self,
        measure: str | None = None,
        effect: str = "level_rr",
        method: str = "reml",
        hartung_knapp: bool = True,
    ) -> PooledEffect:
        """The trusts' ``effect`` on ``measure`` pooled again by random effects (``method``
        "dl", "pm" or "reml"): the ``pooled`` table's meta-analysis rows, as a result to
        inspect, plot (a forest plot with the trusts named) or vary."""
        measure = measure or self.headline
        its = self.its_effects
        rows = its[(its["measure"] == measure) & (its["status"] == "ok")]
        if f"{effect}_log_se" not in rows:
            raise ValueError(f"effect={effect!r}; pooled effects are {', '.join(EFFECTS)}")
        return pool_random_effects(
            np.log(rows[effect].to_numpy(float)),
            interval_se(rows[f"{effect}_low"], rows[f"{effect}_high"]),
            method,
            hartung_knapp,
            labels=list(rows["trust_code"]),
            adhoc=hartung_knapp,
        )

    @property
    def primary(self) -> PrimaryAnswer:
        """The pre-specified answer (``programme.yaml``'s ``primary``), or why there is none."""
        p = self.params.primary
        row = self.effect(p.measure, p.method, p.effect)
        reason = ""
        if row is None:
            if p.measure not in self.measures:
                reason = f"{self.label(p.measure)} is not recorded in these data"
            elif p.method.startswith("controlled"):
                fit = self.controlled.get(p.measure)
                reason = fit.message if fit is not None and fit.message else "no controlled fit"
            else:
                reason = "too few trusts with an estimate"
        return PrimaryAnswer(p.measure, p.effect, p.method, row, reason)

    def headline_effect(self, measure: str | None = None) -> pd.Series | None:
        """The pre-specified effect and method of ``measure`` (default the primary measure):
        what the reports lead with; None when it could not be estimated."""
        p = self.params.primary
        return self.effect(measure or p.measure, p.method, p.effect)

    def role(self, measure: str, effect: str, method: str) -> str:
        """:func:`result_role` under these parameters."""
        return result_role(self.params, measure, effect, method)

    @functools.cached_property
    def _ward_changes(self) -> dict[str, pd.DataFrame]:
        return {}

    def ward_changes(self, measure: str) -> pd.DataFrame:
        """Each participating ward's rate before and after joining (see ``ward_changes``),
        computed once per measure: the aims, the breakdowns and the glance all read it."""
        if measure in self.changes:
            return self.changes[measure]
        if measure not in self._ward_changes:
            wm, wards = self.data.ward_month, self.data.wards
            self._ward_changes[measure] = ward_changes(wm, wards, measure)
        return self._ward_changes[measure]

    def aims(self, measure: str) -> pd.DataFrame | None:
        """Per aim the share of wards meeting it, the share expected if nothing had changed
        and the share estimated from shrunken ward effects (``aims_table``; None when no
        ward can be judged). Computed once per measure."""
        if measure in self.aim_tables:
            return self.aim_tables[measure]
        if measure not in self._aims:
            changes = self.ward_changes(measure)
            self._aims[measure] = aims_table(changes) if len(changes) else None
        return self._aims[measure]

    @functools.cached_property
    def _aims(self) -> dict[str, pd.DataFrame | None]:
        return {}

    def breakdown(self, measure: str, by: str) -> pd.DataFrame | None:
        """Before-after rate ratios by ``ward_type``, ``cohort`` or ``region`` (None when the
        column is not recorded or no ward can be judged)."""
        if self.data.wards[by].isna().all():
            return None
        changes = self.ward_changes(measure)
        return breakdown(changes, self.data.wards, by) if len(changes) else None

    def recent_totals(self, measure: str, months: int = 12) -> pd.DataFrame:
        """Each trust's events and bed days over the latest ``months`` (months recording both)."""
        from rrp_eval.evaluate.findings import recent_totals

        return recent_totals(self.data.ward_month, measure, months)

    def funnel(self, measure: str, months: int = 12) -> tuple[pd.DataFrame, float, float] | None:
        """The funnel table, programme rate and over-dispersion φ of the latest ``months``
        (None when no trust recorded the measure then)."""
        g = self.recent_totals(measure, months)
        if g.empty or g[measure].sum() == 0:
            return None
        return funnel_table(g[measure], g["occupied_bed_days"], pd.Series(g.index))

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Every measure's pre-specified effect by the pre-specified method, with its role."""
        rows = {}
        for m in self.measures:
            h = self.headline_effect(m)
            if h is not None:
                rows[m] = {
                    "effect": h.effect,
                    "method": h.method,
                    **{k: h[k] for k in ("estimate", "ci_low", "ci_high")},
                    "role": h.role,
                }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        return frame.reindex(columns=["effect", "method", "estimate", "ci_low", "ci_high", "role"])

    def _summary_title(self) -> str:
        return f"{self.params.programme}: {len(self.trusts)} trusts analysed" + (
            f", {len(self.failed)} failed validation" if self.failed else ""
        )

    def plot(self, measure: str | None = None, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot of the trusts' level changes and the pooled estimate (a Figure)."""
        from rrp_eval.plots import plot_forest

        measure = measure or self.headline
        its = self.its_effects
        rows = its[(its["measure"] == measure) & (its["status"] == "ok")]
        t = pd.DataFrame(
            {
                "label": rows["trust_code"],
                "estimate": rows["level_rr"],
                "ci_low": rows["level_rr_low"],
                "ci_high": rows["level_rr_high"],
            }
        )
        pooled = self.effect(measure, "random_effects_reml_hk")
        return as_figure(plot_forest(t, None if pooled is None else pooled.to_dict(), ax, **kwargs))

    def __repr__(self) -> str:
        return (
            f"ProgrammeEvaluation({self.params.programme!r})\n"
            f"  {len(self.trusts)} trusts, {len(self.measures)} measures, "
            f"{len(self.pooled)} pooled effects"
        )


def evaluate_programme(
    programme: ProgrammeData,
    params: ProgrammeParams | None = None,
    *,
    trusts: Sequence[str] | Mapping[str, TrustEvaluation] | None = None,
    panel: PanelFits | None = None,
) -> ProgrammeEvaluation:
    """Evaluate the programme: every trust's ITS pooled, the ward-panel models and the aims.

    Parameters
    ----------
    programme : ProgrammeData
        The programme (:func:`load_programme`); trusts that failed validation are left out.
    params : ProgrammeParams, optional
        Default the parameters the programme was loaded with.
    trusts : sequence of str or mapping of str to TrustEvaluation, optional
        The trusts pooled (default every trust without data errors), or their evaluations
        when already made (the batch run passes them).
    panel : PanelFits, optional
        :func:`fit_panel` of the same data when already made.

    Returns
    -------
    ProgrammeEvaluation

    Examples
    --------
    >>> import rrp_eval as rrp
    >>> prog = rrp.evaluate_programme(rrp.load_programme())  # doctest: +SKIP
    >>> prog.headline_effect()["estimate"] < 1  # doctest: +SKIP
    True
    """
    params = params or programme.params or ProgrammeParams()
    failed = tuple(programme.report.failed_trusts)
    analysed = programme.without_trusts(failed)
    if trusts is None:
        codes = list(analysed.trusts)
    else:
        codes = [t for t in trusts if t not in failed]
    key = ("programme", analysed.digest(), params.digest(), codes)

    def compute() -> ProgrammeEvaluation:
        given = trusts if isinstance(trusts, Mapping) else {}
        evaluations = {
            t: replace(given[t], sensitivity=FrozenMap({}))
            if t in given
            else evaluate_trust(analysed, t, params, sensitivity=False)
            for t in codes
        }
        fits = panel if panel is not None else fit_panel(analysed, params)
        its = its_effects_table([e.its[m].row() for e in evaluations.values() for m in e.measures])
        spc = pd.DataFrame(
            [e.spc[m].row() for e in evaluations.values() for m in e.measures],
            columns=SPC_COLUMNS,
        )
        with recorded_warnings() as caught:
            pooled = pd.concat([programme_effects(its), fits.rows()], ignore_index=True)
        pooled["role"] = [
            result_role(params, *key)
            for key in zip(pooled["measure"], pooled["effect"], pooled["method"], strict=True)
        ]
        names = dict(zip(programme.wards["trust_code"], programme.wards["trust_name"], strict=True))
        return ProgrammeEvaluation(
            params=params,
            data=analysed,
            trust_names=FrozenMap(names),
            failed=failed,
            trusts=FrozenMap(evaluations),
            its_effects=its,
            spc_signals=spc,
            pooled=pooled,
            controlled=fits.controlled,
            warnings=(*fits.warnings, *caught),
            changes=fits.changes,
            aim_tables=fits.aims,
        )

    return cached("programme", key, compute)
