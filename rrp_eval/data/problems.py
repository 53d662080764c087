"""Problems found in input data, and the report that collects them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

ERROR, WARNING = "error", "warning"
STRUCTURAL, TRUST = "structural", "trust"


@dataclass(frozen=True)
class Problem:
    """One problem at one place: ``source:line:column: message``.

    ``scope`` is ``structural`` (the data as a whole cannot be used: files, columns, encodings,
    unsafe codes) or ``trust`` (confined to ``trust_code``'s rows: that trust fails, the others
    run). ``line`` counts from 1 with the header as line 1; ``column`` counts from 1.
    """

    severity: str
    scope: str
    rule: str
    message: str
    source: str
    line: int | None = None
    column: int | None = None
    trust_code: str | None = None

    @property
    def where(self) -> str:
        """``source:line:column`` (as far as known)."""
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"

    def located(self) -> str:
        """Where it is and which rule it breaks, with no cell value: what shared outputs may
        say of a trust that failed validation (a message can quote a small count)."""
        return f"{self.where}: {self.severity}: {self.rule}"


def _table_rank(source: str) -> int:
    """Whole-input problems first, then wards, ward_month, events (the order of SPEC §1)."""
    name = source.rsplit("[", 1)[-1].rstrip("]") if source.endswith("]") else source
    for rank, table in enumerate(("wards.", "ward_month.", "events."), start=1):
        if name.startswith(table) or name == table.rstrip("."):
            return rank
    return 0


#: the most problems listed of one kind (rule, column, file, severity and trust); the rest are
#: counted in one further problem, so a file with a million bad cells gives a readable list
MAX_REPEATS = 20


def _capped(problems: list[Problem]) -> tuple[Problem, ...]:
    def kind(p: Problem) -> tuple[Any, ...]:
        return (p.severity, p.scope, p.rule, p.source, p.column, p.trust_code)

    totals: dict[tuple[Any, ...], int] = {}
    last_line: dict[tuple[Any, ...], int | None] = {}
    for p in problems:
        totals[kind(p)] = totals.get(kind(p), 0) + 1
        last_line[kind(p)] = p.line
    seen: dict[tuple[Any, ...], int] = {}
    out = []
    for p in problems:
        k = kind(p)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] <= MAX_REPEATS:
            out.append(p)
        elif seen[k] == MAX_REPEATS + 1:
            rest = totals[k] - MAX_REPEATS
            out.append(
                Problem(
                    p.severity,
                    p.scope,
                    p.rule,
                    f"{rest:,} more like the above, up to line {last_line[k]}",
                    p.source,
                    p.line,
                    p.column,
                    p.trust_code,
                )
            )
    return tuple(out)


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found, each once, in file and line order."""

    problems: tuple[Problem, ...]

    @classmethod
    def from_problems(cls, problems: Iterable[Problem]) -> ValidationReport:
        unique = dict.fromkeys(problems)
        order = sorted(
            unique,
            key=lambda p: (
                p.severity != ERROR,
                _table_rank(p.source),
                p.source,
                p.line or 0,
                p.column or 0,
                p.message,
            ),
        )
        return cls(_capped(order))

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == WARNING)

    @property
    def structural_errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.errors if p.scope == STRUCTURAL)

    @property
    def failed_trusts(self) -> dict[str, list[Problem]]:
        """Trusts with errors confined to their rows, and those errors."""
        out: dict[str, list[Problem]] = {}
        for p in self.errors:
            if p.scope == TRUST and p.trust_code:
                out.setdefault(p.trust_code, []).append(p)
        return out

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def to_frame(self) -> pd.DataFrame:
        """One row per problem (for the data-quality report)."""
        cols = ["severity", "scope", "rule", "trust_code", "source", "line", "column", "message"]
        return pd.DataFrame([{c: getattr(p, c) for c in cols} for p in self.problems], columns=cols)

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        text = f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
        if self.structural_errors:
            text += f" ({len(self.structural_errors)} structural: the data cannot be used)"
        elif self.failed_trusts:
            text += f" (errors confined to trusts {', '.join(sorted(self.failed_trusts))})"
        return text


class DataValidationError(ValueError):
    """The input data have errors; ``report`` lists every one."""

    def __init__(self, report: ValidationReport):
        self.report = report
        lines = [str(p) for p in report.errors[:20]]
        more = len(report.errors) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        super().__init__("invalid input data: " + report.summary() + "\n" + "\n".join(lines))
