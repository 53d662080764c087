"""Rates, trust series and ward panels from the validated tables (SPEC §2).

A trust's monthly count for a measure is the sum over its participating wards (those with a
``start_month``) that recorded the measure that month, with the same wards' occupied bed days as
the denominator; the share of the trust's bed days included is reported. Comparison wards are
never part of the treated series.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrp_eval.data.validate import ProgrammeData
from rrp_eval.schema import DERIVED_MEASURES

PER = 1000.0


def rate_per_1000(count: pd.Series | np.ndarray, bed_days: pd.Series | np.ndarray) -> np.ndarray:
    """Rate per 1,000 occupied bed days; NaN where bed days are missing or zero."""
    count = np.asarray(count, dtype=float)
    bed_days = np.asarray(bed_days, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bed_days > 0, count / bed_days * PER, np.nan)


def months_since(month: pd.Series, start: pd.Series | pd.Timestamp) -> pd.Series:
    """Whole months from ``start`` to ``month`` (0 in the start month; NaN where no start)."""
    if not isinstance(start, pd.Series):  # one month (NaT: the minimum of no months)
        if pd.isna(start):
            return pd.Series(np.nan, index=month.index)
        return (month.dt.year - start.year) * 12 + (month.dt.month - start.month)
    return (month.dt.year - start.dt.year) * 12 + (month.dt.month - start.dt.month)


def check_trust_files(data: ProgrammeData, codes: Iterable[str]) -> None:
    """Refuse a ``trusts/<code>.yaml`` whose trust is not in the data (a misspelt file name
    would silently not apply), suggesting the nearest codes.

    Raises
    ------
    ValueError
        Naming the file and the trusts it could have meant.
    """
    import difflib

    known = set(data.wards["trust_code"]) | set(data.report.failed_trusts)
    for code in codes:
        if code in known:
            continue
        near = difflib.get_close_matches(code, sorted(known), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise ValueError(
            f"trusts/{code}.yaml: there is no trust {code} in wards.csv, so these overrides "
            f"would not apply{hint} (rename the file to the trust's code, or delete it)"
        )


def without_excluded_wards(
    data: ProgrammeData, excluded: dict[str, tuple[str, ...]]
) -> ProgrammeData:
    """``data`` without the wards the trusts' ``exclude_wards`` name (every analysis, trust
    and programme, then leaves them out).

    Raises
    ------
    ValueError
        Naming the trust's parameters file, for a ward that is not in the data.
    """
    known = set(zip(data.wards["trust_code"], data.wards["ward_id"], strict=True))
    for trust, wards in excluded.items():
        unknown = [w for w in wards if (trust, w) not in known]
        if unknown and trust in set(data.wards["trust_code"]):
            raise ValueError(
                f"trusts/{trust}.yaml: exclude_wards: {', '.join(unknown)} not a ward of {trust} "
                "in wards.csv"
            )
    return data.without_wards(excluded)


def with_derived_measures(data: ProgrammeData) -> ProgrammeData:
    """Add ``restrictive_practice`` (the sum of its parts, blank if any part is blank)."""
    wm = data.ward_month.copy()
    measures = list(data.measures)
    for name, parts in DERIVED_MEASURES.items():
        if name in wm or not all(p in wm for p in parts):
            continue
        wm[name] = wm[list(parts)].sum(axis=1, min_count=len(parts))
        wm.loc[wm[list(parts)].isna().any(axis=1), name] = np.nan
        measures.append(name)
    return dataclasses.replace(data, ward_month=wm, measures=tuple(measures))


def trust_wards(
    data: ProgrammeData, trust_code: str, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The trust's wards (all of them), without any excluded by the parameters."""
    wards = data.wards[data.wards["trust_code"] == trust_code]
    return wards[~wards["ward_id"].isin(exclude)].reset_index(drop=True)


@dataclass(frozen=True)
class TrustDesign:
    """How a trust's ITS is set up: ``summed``, ``stacked`` or ``none`` (no participating ward)."""

    kind: str
    starts: tuple[pd.Timestamp, ...]
    participating: tuple[str, ...]
    comparison: tuple[str, ...]
    #: why a trust whose wards share a start is stacked: its wards change over the series
    composition: str = ""

    @property
    def description(self) -> str:
        n = len(self.participating)
        if self.kind == "none":
            return "no participating ward (no start month): descriptive analyses only"
        if self.kind == "summed":
            return (
                f"the {n} participating ward{'s' * (n != 1)} share a start "
                f"({self.starts[0]:%B %Y}): one series, summed over wards"
            )
        if len(self.starts) == 1:
            return (
                f"the {n} participating wards share a start ({self.starts[0]:%B %Y}) but the "
                f"wards in the series change ({self.composition}): stacked ward series with "
                "ward fixed effects, so that a ward entering, leaving or changing size cannot "
                "look like a change in the rate, and each ward's autocorrelation allowed for"
            )
        first, last = min(self.starts), max(self.starts)
        return (
            f"the {n} participating wards start in different months ({first:%b %Y} to "
            f"{last:%b %Y}): stacked ward series, each aligned on its own start, with ward "
            "fixed effects and each ward's autocorrelation allowed for"
        )


def trust_design(
    data: ProgrammeData, trust_code: str, exclude: tuple[str, ...] = ()
) -> TrustDesign:
    """Summed series when the participating wards share a start and are the same wards of the
    same size throughout; stacked ward series (ward fixed effects) when they start in different
    months or the wards in the series change (see :func:`composition_change`)."""
    wards = trust_wards(data, trust_code, exclude)
    part = wards[wards["start_month"].notna()]
    comp = tuple(wards.loc[wards["start_month"].isna(), "ward_id"])
    starts = tuple(sorted(pd.unique(part["start_month"])))
    change = composition_change(data, trust_code, tuple(part["ward_id"]))
    if part.empty:
        kind = "none"
    else:
        kind = "summed" if len(starts) == 1 and not change else "stacked"
    return TrustDesign(
        kind, tuple(pd.Timestamp(s) for s in starts), tuple(part["ward_id"]), comp, change
    )


COMPOSITION_EVENTS = ("reporting_onset", "reconfiguration")


def composition_change(data: ProgrammeData, trust_code: str, ward_ids: tuple[str, ...]) -> str:
    """Why a series summed over these wards would not compare like with like over time (blank
    if it would): a ward missing from some months the others report (a late start of
    reporting, a gap), or a reporting onset or reconfiguration recorded for one of them.

    Wards differ in their rates, so when one enters, leaves or changes size the summed rate
    steps although no ward's rate changed; in simulation this made the summed ITS overstate a
    trust's reduction by 0.11-0.16 on the log scale (docs/methods.md §1.7).
    """
    if len(ward_ids) < 2:
        return ""
    wm = data.ward_month
    rows = wm[
        (wm["trust_code"] == trust_code)
        & wm["ward_id"].isin(ward_ids)
        & (wm["occupied_bed_days"] > 0)
    ]
    span = rows["month"].nunique()
    months = rows.groupby("ward_id")["month"].nunique()
    short = sorted(months.index[months < span])
    if short:
        return f"{', '.join(short)} not reported in every month"
    ev = data.events
    if ev.empty:
        return ""
    ev = ev[
        (ev["trust_code"] == trust_code)
        & ev["ward_id"].isin(ward_ids)
        & ev["type"].isin(COMPOSITION_EVENTS)
    ]
    if ev.empty:
        return ""
    first = ev.sort_values("month").iloc[0]
    when = pd.Timestamp(first["month"])
    return f"{first['ward_id']}: {str(first['type']).replace('_', ' ')} {when:%b %Y}"


def measure_gaps(
    data: ProgrammeData, trust_code: str, ward_ids: tuple[str, ...], measure: str
) -> str:
    """Wards among ``ward_ids`` that recorded ``measure`` in some months but left it blank in
    others while they had occupied bed days (blank if none), e.g. ``"W2 (2021-03 to 2021-05)"``.

    Summed over wards, such a gap changes which wards the trust's series counts, so the summed
    rate moves though no ward's rate did (issue 15); a ward that never records the measure
    leaves the sum consistently and is not a gap.
    """
    wm = data.ward_month
    if measure not in wm:
        return ""
    rows = wm[
        (wm["trust_code"] == trust_code)
        & wm["ward_id"].isin(ward_ids)
        & (wm["occupied_bed_days"] > 0)
    ]
    out = []
    for ward, g in rows.groupby("ward_id", sort=True):
        blank = g[measure].isna()
        if blank.any() and not blank.all():
            months = g.loc[blank, "month"].sort_values()
            span = f"{months.iloc[0]:%Y-%m}" + (
                f" to {months.iloc[-1]:%Y-%m}" if len(months) > 1 else ""
            )
            out.append(f"{ward} ({len(months)} month{'s' * (len(months) > 1)}, {span})")
    return "; ".join(out)


def ward_series(
    data: ProgrammeData,
    trust_code: str,
    measure: str,
    *,
    participating_only: bool = True,
    exclude: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per ward-month with the measure recorded and bed days > 0.

    Columns: ``ward_id, ward_type, start_month, month, count, occupied_bed_days,
    rate_per_1000_obd``.
    """
    wards = trust_wards(data, trust_code, exclude)
    if participating_only:
        wards = wards[wards["start_month"].notna()]
    wm = data.ward_month
    rows = wm[(wm["trust_code"] == trust_code) & wm["ward_id"].isin(wards["ward_id"])]
    rows = rows[rows[measure].notna() & (rows["occupied_bed_days"] > 0)]
    out = rows[["ward_id", "month", measure, "occupied_bed_days"]].rename(
        columns={measure: "count"}
    )
    out = out.merge(wards[["ward_id", "ward_type", "start_month"]], on="ward_id", how="left")
    out["rate_per_1000_obd"] = rate_per_1000(out["count"], out["occupied_bed_days"])
    cols = [
        "ward_id",
        "ward_type",
        "start_month",
        "month",
        "count",
        "occupied_bed_days",
        "rate_per_1000_obd",
    ]
    return out[cols].sort_values(["ward_id", "month"]).reset_index(drop=True)


def trust_series(
    data: ProgrammeData,
    trust_code: str,
    measure: str,
    *,
    participating_only: bool = True,
    exclude: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The trust's monthly series for a measure, summed over wards (SPEC §2).

    Parameters
    ----------
    data : ProgrammeData
    trust_code, measure : str
    participating_only : bool, default True
        Sum over participating wards only (the treated series); False sums every ward (the
        descriptive series of a trust with no participating ward).
    exclude : tuple of str
        Wards left out by the parameters.

    Returns
    -------
    pandas.DataFrame
        ``month, count, occupied_bed_days, rate_per_1000_obd, n_wards, bed_day_share``, where
        ``bed_day_share`` is the included wards' share of all the trust's bed days that month.
    """
    wards = ward_series(
        data, trust_code, measure, participating_only=participating_only, exclude=exclude
    )
    summed = wards.groupby("month").agg(
        count=("count", "sum"),
        occupied_bed_days=("occupied_bed_days", "sum"),
        n_wards=("ward_id", "nunique"),
    )
    wm = data.ward_month
    all_bd = wm[wm["trust_code"] == trust_code].groupby("month")["occupied_bed_days"].sum()
    summed["bed_day_share"] = summed["occupied_bed_days"] / all_bd.reindex(summed.index)
    summed["rate_per_1000_obd"] = rate_per_1000(summed["count"], summed["occupied_bed_days"])
    cols = ["count", "occupied_bed_days", "rate_per_1000_obd", "n_wards", "bed_day_share"]
    return summed.reset_index()[["month", *cols]]


def programme_series(data: ProgrammeData, measure: str) -> pd.DataFrame:
    """Monthly totals over every trust's participating and comparison wards, for context."""
    wm = data.ward_month
    ok = wm[wm[measure].notna() & (wm["occupied_bed_days"] > 0)]
    part = ok.merge(data.wards[["trust_code", "ward_id", "start_month"]])
    part["group"] = np.where(part["start_month"].notna(), "participating", "comparison")
    out = part.groupby(["group", "month"]).agg(
        count=(measure, "sum"), occupied_bed_days=("occupied_bed_days", "sum")
    )
    out["rate_per_1000_obd"] = rate_per_1000(out["count"], out["occupied_bed_days"])
    return out.reset_index()
