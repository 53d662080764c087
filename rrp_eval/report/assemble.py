"""Assemble the run's shared tables from the evaluations: CSV, the workbook, typed Parquet copies
and the "programme at a glance" picture (SPEC §5). Nothing here reads what a notebook wrote.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from rrp_eval.digest import digest
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.planning import Detectability
from rrp_eval.evaluate.programme import ProgrammeEvaluation
from rrp_eval.evaluate.tables import SENSITIVITY_COLUMNS, SPC_COLUMNS, its_effects_table
from rrp_eval.evaluate.trust import TrustEvaluation
from rrp_eval.params import ProgrammeParams
from rrp_eval.report.export import csv_text, write_workbook
from rrp_eval.report.manifest import write_atomic
from rrp_eval.report.plan import INTERNAL_STAMP, Task

TABLE_FILES = (
    "its_effects.csv",
    "spc_signals.csv",
    "its_sensitivity.csv",
    "programme_effects.csv",
    "aim_probabilities.csv",
    "detectability.csv",
    "changes.csv",
    "results.xlsx",
)
#: the typed copies of the tables (Parquet) kept beside the CSV files
PARQUET_TABLES = (
    "its_effects",
    "spc_signals",
    "programme_effects",
    "aim_probabilities",
    "detectability",
)
GLANCE = "programme_at_a_glance.png"
#: every file the tables step writes, relative to the output folder
OUTPUT_FILES = (
    *(f"tables/{n}" for n in TABLE_FILES),
    *(f"tables/parquet/{n}.parquet" for n in PARQUET_TABLES),
    GLANCE,
)


def run_tables(
    prog: ProgrammeEvaluation,
    evaluations: dict[str, TrustEvaluation | None],
    trusts: list[str],
    failed_trusts: dict[str, str],
    measures: list[str],
    rule: DisclosureRule,
) -> dict[str, pd.DataFrame]:
    """The run's four tables: the trusts' rows in order, a failed trust's rows saying why;
    controlled by ``rule`` (the SPC centre lines and limits)."""
    its, spc, sensitivity = trust_tables(prog, evaluations, trusts, rule)
    failed_rows = [
        {"trust_code": t, "measure": m, "status": "failed", "message": msg}
        for t, msg in failed_trusts.items()
        for m in measures
    ]
    if failed_rows:
        its = pd.concat([its, pd.DataFrame(failed_rows)], ignore_index=True)
    return {
        "its_effects": its,
        "spc_signals": spc,
        "its_sensitivity": sensitivity,
        "programme_effects": prog.pooled,
    }


def trust_tables(
    prog: ProgrammeEvaluation | None,
    evaluations: dict[str, TrustEvaluation | None],
    trusts: list[str],
    rule: DisclosureRule,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``its_effects``, ``spc_signals`` and ``its_sensitivity`` of the trusts, in order, from
    their evaluations (a trust whose evaluation broke in its worker gets the programme's own
    evaluation of it, without sensitivity analyses)."""
    parts = []
    for t in trusts:
        e = evaluations.get(t) or (prog.trusts.get(t) if prog is not None else None)
        if e is not None:
            parts.append(e.tables(rule))
    if not parts:
        return (
            its_effects_table([]),
            pd.DataFrame(columns=SPC_COLUMNS),
            pd.DataFrame(columns=SENSITIVITY_COLUMNS),
        )
    its, spc, sensitivity = (
        pd.concat([p[name] for p in parts], ignore_index=True)
        for name in ("its_effects", "spc_signals", "its_sensitivity")
    )
    return its, spc, sensitivity


def write_parquet(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Typed copies of the tables the programme notebook reads."""
    folder.mkdir(exist_ok=True)
    for name in PARQUET_TABLES:
        _numeric(tables[name]).to_parquet(folder / f"{name}.parquet", index=False)


def write_tables(
    build: Path, params: ProgrammeParams, tables: dict[str, pd.DataFrame], internal: bool = False
) -> None:
    """The CSV files and the workbook. An internal workbook's every title row says so, and an
    internal CSV's first column (``marking``) says so on every row, so that a file copied out of
    its ``-internal`` folder still carries the warning."""
    stamp = f"{INTERNAL_STAMP}. " if internal else ""
    for name, frame in tables.items():
        if internal:
            frame = frame.copy()
            frame.insert(0, "marking", INTERNAL_STAMP)
        write_atomic(build / "tables" / f"{name}.csv", csv_text(frame))
    sheets = {
        "ITS effects": ("its_effects", "each trust's ITS effects"),
        "Programme effects": ("programme_effects", "pooled and controlled effects"),
        "SPC signals": ("spc_signals", "Making Data Count signals"),
        "Sensitivity": ("its_sensitivity", "ITS sensitivity analyses"),
        "Aim probabilities": ("aim_probabilities", "probability of meeting the aim"),
        "Detectability": ("detectability", "power of each trust's evaluation for the aim"),
    }
    write_workbook(
        build / "tables" / "results.xlsx",
        {
            sheet: (tables[name], f"{stamp}{params.programme}: {caption}")
            for sheet, (name, caption) in sheets.items()
        },
    )


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding only numbers or blanks as floats (an all-blank column would
    otherwise come back from Parquet as nulls, not NaN)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].dropna()
        if values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all():
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def read_tables(build: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The reused ``its_effects``, ``spc_signals`` and ``programme_effects`` for the index,
    from their typed copies."""
    folder = build / "tables" / "parquet"
    names = ("its_effects", "spc_signals", "programme_effects")
    return tuple(pd.read_parquet(folder / f"{name}.parquet") for name in names)


def read_trust_tables(build: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reused ``aim_probabilities`` and ``detectability`` tables."""
    folder = build / "tables" / "parquet"
    return tuple(
        pd.read_parquet(folder / f"{name}.parquet")
        for name in ("aim_probabilities", "detectability")
    )


DETECTABILITY_COLUMNS = [
    "trust_code",
    "measure",
    "aim_rr",
    "power",
    "power_mc_se",
    "n_sims",
    "verdict",
    "months_before",
    "months_after",
    "baseline_dispersion",
    "baseline_lag1",
    "message",
]


def detectability_table(found: dict[str, Detectability]) -> pd.DataFrame:
    """One row per trust: the power of its evaluation to detect the aim."""
    rows = [
        {
            "trust_code": d.code,
            "measure": d.measure,
            "aim_rr": d.aim,
            "power": d.power,
            "power_mc_se": d.mc_se,
            "n_sims": d.n_sims,
            "verdict": d.verdict,
            "months_before": d.months_before,
            "months_after": d.months_after,
            "baseline_dispersion": d.dispersion,
            "baseline_lag1": d.lag1,
            "message": d.reason,
        }
        for _, d in sorted(found.items())
    ]
    return pd.DataFrame(rows, columns=DETECTABILITY_COLUMNS)


def page_digest(
    base: str,
    aims: pd.DataFrame,
    found: pd.DataFrame,
    task: Task,
    changes: pd.DataFrame | None = None,
) -> str:
    """A trust page's input digest with what it shows of the programme: its rows of the aims
    table, of detectability and of the changes since the last run, to the two decimals a page
    prints (another trust's new month moves the aims' third decimal without changing the
    page)."""

    def rows(frame: pd.DataFrame) -> list[Any]:
        if frame is None or frame.empty:
            return []
        mine = frame[frame["trust_code"].isin([task.name, "programme"])]
        return mine.round(2).astype(str).to_numpy().tolist()

    return digest(base, rows(aims), rows(found), rows(changes))


def write_glance(path: Path, prog: ProgrammeEvaluation, rule: DisclosureRule) -> None:
    """The 'programme at a glance' PNG for board papers (the same figure as the report's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rrp_eval.show.figdata import figure_data, png_with_data
    from rrp_eval.show.programme import glance_figure

    with matplotlib.rc_context({"text.parse_math": False}):  # names shown literally
        fig, _ = glance_figure(prog, rule)
        if rule.internal:  # the picture travels alone: it says what it is on its face
            fig.text(
                0.5,
                1.0,
                INTERNAL_STAMP,
                ha="center",
                va="bottom",
                fontsize=13,
                fontweight="bold",
                color="#DA291C",
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        data = figure_data(fig, 150)
    plt.close(fig)
    path.write_bytes(png_with_data(buffer.getvalue(), data))
