"""The run's front page: one row per trust (status, headline effect, Making Data Count icons)
and the programme-level pages, rendered by ``html.render_index``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate import findings
from rrp_eval.models.hierarchical import probability_words
from rrp_eval.params import ProgrammeParams
from rrp_eval.report.changes import changes_markdown
from rrp_eval.report.execute import TaskResult
from rrp_eval.report.html import render_index
from rrp_eval.report.plan import TRUST
from rrp_eval.show.display import markdown_html

#: a Making Data Count signal in words and its badge class (colour is never the only cue)
SIGNALS = (
    ("concern", "Concern", "badge-concern"),
    ("improvement", "Improvement", "badge-improvement"),
    ("neutral", "Neutral change", "badge-neutral"),
)


def _signals(spc: pd.DataFrame, params: ProgrammeParams) -> list[dict[str, str]]:
    """The latest month's Making Data Count signals of one trust, grouped and named in text:
    ``Concern: Seclusion and Self-harm incidents``; common cause counted."""
    icons = spc["variation_icon"].fillna("").astype(str)
    out = []
    for prefix, word, css in SIGNALS:
        names = [
            str(params.measure(m).label)
            for m, icon in zip(spc["measure"], icons, strict=True)
            if icon.startswith(prefix)
        ]
        if names:
            out.append({"word": word, "css": css, "text": findings.join_words(names)})
    common = int(((icons == "") | (icons == "common_cause")).sum())
    if common:
        out.append(
            {
                "word": "Common cause",
                "css": "badge-common",
                "text": f"{common} measure{'s' * (common != 1)}",
            }
        )
    return out


def _ci(row: pd.Series, name: str) -> str:
    if pd.isna(row[name]):
        return ""
    return f"{row[name]:.2f} ({row[f'{name}_low']:.2f} to {row[f'{name}_high']:.2f})"


def _sort_value(head: pd.Series | None, name: str) -> str:
    """A cell's sort key for the index table (blank sorts last)."""
    if head is None or pd.isna(head[name]):
        return ""
    return f"{float(head[name]):.6f}"


def _aim_cells(aims: pd.DataFrame | None, measure: str) -> dict[str, dict[str, str]]:
    """Each trust's (and the programme's) probability of the aim, as the index shows it."""
    if aims is None or aims.empty:
        return {}
    rows = aims[aims["measure"] == measure]
    return {
        str(r.trust_code): {
            "aim": probability_words(r.p_rr_le_0_75),
            "aim_sort": f"{r.p_rr_le_0_75:.6f}",
        }
        for r in rows.itertuples(index=False)
    }


def _power_cells(found: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """Each trust's power for the aim, with the Monte Carlo error, as the index shows it."""
    if found is None or found.empty:
        return {}
    out = {}
    for r in found.itertuples(index=False):
        if pd.isna(r.power):
            out[str(r.trust_code)] = {"power": "not known", "power_sort": ""}
        else:
            out[str(r.trust_code)] = {
                "power": f"{r.power:.0%} (±{1.96 * r.power_mc_se:.0%})",
                "power_sort": f"{r.power:.6f}",
            }
    return out


def _primary_sentence(params: ProgrammeParams, pooled: pd.DataFrame | None) -> str:
    """The pre-specified answer in one sentence, from its ``programme_effects`` row."""
    from rrp_eval.evaluate.programme import PrimaryAnswer
    from rrp_eval.show.text import primary_text

    p = params.primary
    rows = pd.DataFrame() if pooled is None or "role" not in pooled else pooled
    if len(rows):
        rows = rows[(rows["role"] == "primary") & rows["estimate"].notna()]
    row = rows.iloc[0] if len(rows) else None
    answer = PrimaryAnswer(p.measure, p.effect, p.method, row, "see the programme evaluation")
    label = params.measure(p.measure).label or p.measure
    return primary_text(answer, label, params.horizon_months, params.phase_in_months)


def index_page(
    params: ProgrammeParams,
    data_trusts: pd.DataFrame,
    its: pd.DataFrame,
    spc: pd.DataFrame,
    results: list[TaskResult],
    failed_trusts: dict[str, str],
    rule: DisclosureRule,
    headline: str,
    pooled: pd.DataFrame | None = None,
    ward_month: pd.DataFrame | None = None,
    aims: pd.DataFrame | None = None,
    found: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    since: str = "",
) -> str:
    """``index.html``: ``data_trusts`` has ``trust_code`` and ``trust_name``, one per trust;
    ``pooled`` (``programme_effects`` with its ``role``) gives the pre-specified answer the
    page leads with; ``ward_month`` (the programme's data) lets the page flag trusts above the
    funnel limit and measures a trust hardly records."""
    by_name = {r.task.name: r for r in results}
    p = params.primary
    direction = params.measure(p.measure).direction
    funnel, recorded = {}, pd.DataFrame()
    if ward_month is not None:
        funnel = findings.funnel_positions(ward_month, p.measure, rule=rule)
        recorded = findings.completeness(ward_month, list(its["measure"].unique()))
    aim_of = _aim_cells(aims, headline)
    power_of = _power_cells(found)
    trusts = []
    for code, name in data_trusts.itertuples(index=False):
        result = by_name.get(code)
        if code in failed_trusts:
            status, message = "failed", failed_trusts[code]
        elif result is None:
            continue
        else:
            status, message = result.status, result.message
        rows = its[(its.trust_code == code) & (its.measure == headline)]
        head = rows.iloc[0] if len(rows) else None
        own = its[(its.trust_code == code) & (its.measure == p.measure)]
        v = findings.verdict(own.iloc[0] if len(own) else None, p.effect, direction)
        flags = findings.attention(
            code, params, its[its.trust_code == code], spc[spc.trust_code == code], funnel, recorded
        )
        trusts.append(
            {
                "code": code,
                "name": name,
                "status": status,
                "status_text": {"ok": "complete", "failed": "failed"}.get(status, status),
                "message": message,
                "href": f"trusts/{code}.html" if result is not None else "",
                "design": head["design"] if head is not None else "",
                "level": _ci(head, "level_rr") if head is not None else "",
                "rr_h": _ci(head, "rr_h") if head is not None else "",
                "verdict": v.word if status == "ok" or v.word != "not estimated" else "",
                "verdict_detail": v.percent,
                "flags": [f.short for f in flags],
                "signals": _signals(spc[spc.trust_code == code], params),
                "level_sort": _sort_value(head, "level_rr"),
                "rr_h_sort": _sort_value(head, "rr_h"),
                **aim_of.get(code, {"aim": "", "aim_sort": ""}),
                **power_of.get(code, {"power": "", "power_sort": ""}),
                "concerns": int(
                    spc.loc[spc.trust_code == code, "variation_icon"]
                    .fillna("")
                    .astype(str)
                    .str.startswith("concern")
                    .sum()
                ),
            }
        )
    programme_rows = [
        {
            "name": r.task.title,
            "href": r.task.html,
            "status": r.status,
            "status_text": "complete" if r.status == "ok" else "failed",
            "message": r.message,
        }
        for r in results
        if r.task.stage != TRUST
    ]
    # no start dates anywhere (provider-level figures): no effect columns, no verdicts
    effects = its[["level_rr", "rr_h"]].to_numpy(float) if len(its) else np.empty((0, 2))
    descriptive = (
        len(its) > 0 and not np.isfinite(effects).any() and (its["design"] == "none").all()
    )
    n_ok = sum(t["status"] == "ok" for t in trusts)
    failed = [t["code"] for t in trusts if t["status"] != "ok"]
    return render_index(
        {
            "programme": params.programme,
            "internal": rule.internal,
            "disclosure": rule.statement,
            "summary": f"{n_ok} of {len(trusts)} "
            + ("provider reports" if descriptive else "trust evaluations")
            + " complete.",
            "failed": f"Failed: {', '.join(failed)} (see each row)." if failed else "",
            "programme_rows": programme_rows,
            "trusts": trusts,
            "measure_label": params.measure(headline).label,
            "horizon": params.horizon_months,
            "primary": _primary_sentence(params, pooled),
            "aim_label": str(params.measure(p.measure).label).lower(),
            "programme_aim": aim_of.get("programme", {}).get("aim", ""),
            # "since the last run" when there was one (its text escaped by mistune)
            "since_html": (
                markdown_html(changes_markdown(changes, None, since))
                if since and changes is not None and len(changes)
                else ""
            ),
            "primary_column": params.primary.effect if headline == params.primary.measure else "",
            "primary_label": str(params.measure(p.measure).label).lower(),
            "descriptive": descriptive,
            "unit": "provider" if descriptive else "trust",
            "units_title": "Providers" if descriptive else "Trusts",
            "primary_when": (
                f"{params.horizon_months} months after joining"
                if p.effect == "rr_h"
                else "the change on joining"
            ),
        }
    )
