"""The protocol every model and evaluation result follows (DESIGN.md, "Results objects").

A result is a frozen dataclass with ``spec`` (what was fitted and how), ``summary_frame(alpha)``
(tidy: ``estimate, ci_low, ci_high, p_value`` where those apply), ``summary()`` (text, and
``_repr_html_`` for JupyterLab), ``plot(ax=None)`` returning a Figure, a repr of a few lines and
``warnings``: what fitting caught, recorded rather than silenced.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Summary:
    """A result's summary: a title, its tidy frame and notes (its warnings among them).

    ``str()`` gives plain text; JupyterLab shows ``_repr_html_`` (escaped: names come from data).
    """

    title: str
    frame: pd.DataFrame
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        body = self.frame.to_string(float_format=lambda v: f"{v:.4g}") if len(self.frame) else ""
        notes = "".join(f"\nNote: {n}" for n in self.notes)
        return f"{self.title}\n{body}{notes}".rstrip()

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        table = self.frame.to_html(border=0, float_format=lambda v: f"{v:.4g}", escape=True)
        notes = "".join(f"<p>Note: {html.escape(n)}</p>" for n in self.notes)
        return f"<p><strong>{html.escape(self.title)}</strong></p>{table}{notes}"


class ResultMixin:
    """``summary()`` and ``_repr_html_`` from a result's ``summary_frame`` and ``warnings``."""

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def _summary_title(self) -> str:
        return type(self).__name__

    def summary(self, alpha: float = 0.05) -> Summary:
        """The result in a few lines: title, tidy frame and notes."""
        return Summary(
            self._summary_title(), self.summary_frame(alpha), tuple(getattr(self, "warnings", ()))
        )

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """Catch the warnings of a fit and hand back their messages (in order, without repeats), so
    that a result can keep them in ``warnings`` instead of silencing them."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in messages:
            messages.append(text)


def with_warnings(fit: Callable[[], T]) -> tuple[T, tuple[str, ...]]:
    """``fit()`` and the warnings it raised."""
    with recorded_warnings() as messages:
        value = fit()
    return value, tuple(messages)


def ratio_frame(effects: dict[str, dict[str, Any]], alpha: float = 0.05) -> pd.DataFrame:
    """A tidy frame (``estimate, ci_low, ci_high, p_value``) from named effect dicts."""
    del alpha  # the intervals were computed at the result's own level
    rows = {
        name: {k: e.get(k, float("nan")) for k in ("estimate", "ci_low", "ci_high", "p_value")}
        for name, e in effects.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index", dtype=float)


class FrozenMap(Mapping[str, T]):
    """A read-only mapping (unlike ``MappingProxyType``, it pickles: evaluations are cached)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, T] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> T:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getstate__(self) -> dict[str, T]:
        return self._data

    def __setstate__(self, state: dict[str, T]) -> None:
        self._data = state

    def __repr__(self) -> str:
        return f"FrozenMap({list(self._data)})"


def as_figure(drawn: Any) -> Any:
    """The Figure of what a plotting function returned (an Axes or a Figure)."""
    figure = getattr(drawn, "figure", None)
    return figure if figure is not None else drawn
