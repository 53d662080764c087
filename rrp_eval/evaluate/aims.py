"""The probability that each trust, and the programme, met the aim: the hierarchical model of
:mod:`rrp_eval.models.hierarchical` on the trusts' ITS estimates of ``rr_h``, for every analysed
measure whose improvement is a decrease.

In a batch run the run computes the table once, from every trust's evaluation, and leaves it in
the run's private evaluation cache (:func:`publish`), where each trust's notebook finds it; a
notebook opened by hand evaluates the programme's trusts itself (:func:`programme_aims`).
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.evaluate.cache import cache_folder, cached, store
from rrp_eval.models.hierarchical import AIM_THRESHOLDS, MIN_TRUSTS, aim_probabilities
from rrp_eval.params import ProgrammeParams

logger = logging.getLogger(__name__)

AIM_COLUMNS = [
    "trust_code",
    "measure",
    "estimate",
    "shrunken",
    "shrunken_low",
    "shrunken_high",
    *AIM_THRESHOLDS,
    "n_trusts",
    "tau",
]
PROGRAMME_ROW = "programme"
RUN_FILE = "aims-of-this-run.pickle"
CHANGES_FILE = "changes-of-this-run.pickle"
#: a probability at or above this is reported as "likely" (and a crossing of it as a change)
LIKELY = 0.8


def aims_table(
    evaluations: Mapping[str, object], params: ProgrammeParams, measures: list[str] | None = None
) -> pd.DataFrame:
    """One row per trust and measure (and a ``programme`` row per measure): the posterior
    probability of each aim, from the trusts' ``rr_h`` estimates and standard errors. Measures
    with fewer than ``MIN_TRUSTS`` (5) trusts estimated, or whose improvement is not a
    decrease, have no rows."""
    rows: list[dict[str, object]] = []
    present: list[str] = []
    for e in evaluations.values():
        if e is not None:
            present += [m for m in e.its if m not in present]  # type: ignore[attr-defined]
    for measure in measures or present:
        if params.measure(measure).direction != "decrease":
            continue
        codes, y, se = [], [], []
        for code, e in evaluations.items():
            m = None if e is None else e.its.get(measure)  # type: ignore[attr-defined]
            if m is None or m.status != "ok":
                continue
            row = m.row()
            est, s = float(row.get("rr_h", np.nan)), float(row.get("rr_h_log_se", np.nan))
            if np.isfinite(est) and est > 0 and np.isfinite(s) and s > 0:
                codes.append(code)
                y.append(math.log(est))
                se.append(s)
        if len(codes) < MIN_TRUSTS:
            continue
        fit = aim_probabilities(y, se, codes)
        t = fit.trusts.rename(columns={"label": "trust_code"})
        t["measure"], t["n_trusts"], t["tau"] = measure, len(codes), fit.tau
        rows += t.to_dict("records")
        p = fit.programme
        rows.append(
            {
                "trust_code": PROGRAMME_ROW,
                "measure": measure,
                "estimate": p["estimate"],
                "shrunken": p["estimate"],
                "shrunken_low": p["ci_low"],
                "shrunken_high": p["ci_high"],
                **{k: p[k] for k in AIM_THRESHOLDS},
                "n_trusts": len(codes),
                "tau": fit.tau,
            }
        )
    return pd.DataFrame(rows, columns=AIM_COLUMNS)


def publish(table: pd.DataFrame) -> None:
    """Leave the run's table in its private evaluation cache for the trusts' notebooks."""
    folder = cache_folder()
    if folder is not None:
        store(folder / RUN_FILE, table)


def programme_aims(programme: ProgrammeData, params: ProgrammeParams | None = None) -> pd.DataFrame:
    """The aims table of the programme: the run's (in a batch run), else computed from every
    trust without data errors (their evaluations without sensitivity analyses; cached in a
    run)."""
    folder = cache_folder()
    if folder is not None and (folder / RUN_FILE).is_file():
        try:
            with open(folder / RUN_FILE, "rb") as fh:
                return pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            logger.warning("%s: unreadable (%s); computing the aims again", RUN_FILE, exc)
    from rrp_eval.evaluate.trust import evaluate_trust

    params = params or programme.params or ProgrammeParams()
    failed = programme.report.failed_trusts
    codes = [t for t in programme.trusts if t not in failed]

    def compute() -> pd.DataFrame:
        evaluations = {t: evaluate_trust(programme, t, params, sensitivity=False) for t in codes}
        return aims_table(evaluations, params)

    return cached("aims", (programme.digest(), params.digest(), codes), compute)


def trust_aims(table: pd.DataFrame, code: str, measure: str) -> dict[str, float] | None:
    """The row of ``code`` (or ``programme``) and ``measure``, or None."""
    if table is None or table.empty:
        return None
    hit = table[(table["trust_code"] == code) & (table["measure"] == measure)]
    return None if hit.empty else hit.iloc[0].to_dict()


def publish_changes(pages: dict[str, str]) -> None:
    """Leave each trust's "since the last run" text (Markdown) for the trusts' pages."""
    folder = cache_folder()
    if folder is not None:
        store(folder / CHANGES_FILE, pages)


def run_changes() -> dict[str, str] | None:
    """Each trust's "since the last run" text in a batch run with an earlier run to compare
    with (else None: a notebook opened by hand has none)."""
    folder = cache_folder()
    if folder is None or not (folder / CHANGES_FILE).is_file():
        return None
    try:
        with open(folder / CHANGES_FILE, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
