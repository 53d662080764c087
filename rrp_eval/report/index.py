"""The run's front page: one row per trust (status, headline effect, Making Data Count icons)
and the programme-level pages, rendered by ``html.render_index``."""

from __future__ import annotations

import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.params import ProgrammeParams
from rrp_eval.plots import ICON_TEXT
from rrp_eval.report.execute import TaskResult
from rrp_eval.report.html import render_index
from rrp_eval.report.plan import TRUST


def _badges(spc: pd.DataFrame, params: ProgrammeParams) -> list[dict[str, str]]:
    out = []
    for row in spc.itertuples():
        icon = row.variation_icon if isinstance(row.variation_icon, str) else ""
        icon = icon or "common_cause"
        text, colour, words = ICON_TEXT[icon]
        out.append(
            {
                "text": text,
                "colour": colour,
                "title": f"{params.measure(row.measure).label}: {words}",
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
) -> str:
    """``index.html``: ``data_trusts`` has ``trust_code`` and ``trust_name``, one per trust;
    ``pooled`` (``programme_effects`` with its ``role``) gives the pre-specified answer the
    page leads with."""
    by_name = {r.task.name: r for r in results}
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
                "badges": _badges(spc[spc.trust_code == code], params),
                "level_sort": _sort_value(head, "level_rr"),
                "rr_h_sort": _sort_value(head, "rr_h"),
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
    n_ok = sum(t["status"] == "ok" for t in trusts)
    failed = [t["code"] for t in trusts if t["status"] != "ok"]
    return render_index(
        {
            "programme": params.programme,
            "internal": rule.internal,
            "disclosure": rule.statement,
            "summary": f"{n_ok} of {len(trusts)} trust evaluations complete.",
            "failed": f"Failed: {', '.join(failed)} (see each row)." if failed else "",
            "programme_rows": programme_rows,
            "trusts": trusts,
            "measure_label": params.measure(headline).label,
            "horizon": params.horizon_months,
            "primary": _primary_sentence(params, pooled),
            "primary_column": params.primary.effect if headline == params.primary.measure else "",
        }
    )
