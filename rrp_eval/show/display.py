"""Sections of a page: headings, text, tables and figures in order, displayed by Jupyter.

Every ``show`` function returns a :class:`Section`; a notebook cell's value is displayed with
the same outputs the reports are rendered from. This is the only module that imports IPython.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

FIGURE_DPI = 200  # print resolution (WCAG/board packs); shown at half size on screen
SCREEN_DPI = 100

_CURRENT: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("section", default=None)


@dataclass(frozen=True)
class Part:
    """One output: escaped HTML (``kind`` heading, paragraph or table, with the ``frame`` a
    table shows) or a figure with its alt text."""

    kind: str
    html: str = ""
    frame: pd.DataFrame | None = None
    figure: Any = None
    alt: str = ""
    png: str = ""


@dataclass(frozen=True, eq=False)
class Section:
    """What one ``show`` call returns: its parts in order. Jupyter displays them; ``tables``
    and ``figures`` hand them to an analyst (a Figure can be restyled and saved again)."""

    parts: tuple[Part, ...]

    @property
    def tables(self) -> list[pd.DataFrame]:
        return [p.frame for p in self.parts if p.frame is not None]

    @property
    def figures(self) -> list[Any]:
        return [p.figure for p in self.parts if p.figure is not None]

    @property
    def text(self) -> str:
        """The headings and paragraphs as plain text."""
        return "\n".join(
            html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"</(li|h2|dd)>", "\n", p.html))).strip()
            for p in self.parts
            if p.kind in ("heading", "paragraph", "box")
        )

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        for p in self.parts:
            if p.kind == "figure":
                display(
                    {"image/png": p.png, "text/plain": p.alt},
                    raw=True,
                    metadata={"image/png": {"alt": p.alt, "width": _screen_width(p.png)}},
                )
            else:
                display(HTML(p.html))

    def __repr__(self) -> str:
        kinds = ", ".join(p.kind for p in self.parts)
        return f"Section({kinds})"


def section(fn: Callable[..., None]) -> Callable[..., Section]:
    """Make a function that adds parts (with :func:`heading`, :func:`paragraph`, :func:`table`,
    :func:`figure`) return them as a :class:`Section`; figures show text literally (no
    matplotlib math text, so a name such as ``$\\frac$ ward`` from the data cannot break one)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Section:
        import matplotlib

        parts: list[Part] = []
        token = _CURRENT.set(parts)
        try:
            with matplotlib.rc_context({"text.parse_math": False}):
                fn(*args, **kwargs)
        finally:
            _CURRENT.reset(token)
        return Section(tuple(parts))

    return wrapper


def _add(part: Part) -> None:
    parts = _CURRENT.get()
    if parts is None:
        raise RuntimeError("outputs are added inside a show function (see rrp_eval.show.display)")
    parts.append(part)


def heading(text: str, level: int = 2, css_class: str = "") -> None:
    """A heading; the text is escaped (``css_class``: e.g. ``rrp-appendix``, which starts a
    printed page)."""
    attrs = f' class="{html.escape(css_class)}"' if css_class else ""
    _add(Part("heading", f"<h{level}{attrs}>{html.escape(text)}</h{level}>"))


def paragraph(text: str) -> None:
    """A paragraph of escaped text."""
    _add(Part("paragraph", f"<p>{html.escape(text)}</p>"))


def markdown_html(text: str) -> str:
    """Markdown as HTML, any HTML in it escaped (mistune, which nbconvert already brings)."""
    import mistune

    return str(mistune.create_markdown(escape=True)(text))


def markdown(text: str) -> None:
    """A block of Markdown (lists, emphasis), any HTML in it escaped."""
    _add(Part("paragraph", markdown_html(text)))


def box(title: str, items: list[tuple[str, str]], anchor: str = "key-findings") -> None:
    """A key-findings box: a heading and a list of (lead, sentence) items, escaped; the lead
    is set in bold (``"Answer"``, ``"Needs attention"``...)."""
    rows = "".join(
        f"<li><strong>{html.escape(lead)}{'' if lead.endswith('?') else ':'}</strong> "
        f"{html.escape(text)}</li>"
        for lead, text in items
    )
    _add(
        Part(
            "box",
            f'<section class="rrp-key" aria-labelledby="{anchor}"><h2 id="{anchor}">'
            f"{html.escape(title)}</h2><ul>{rows}</ul></section>",
        )
    )


def definitions(title: str, items: list[tuple[str, str, str]], more_href: str = "") -> None:
    """A glossary: a heading and a definition list of (anchor id, term, definition), escaped;
    ``more_href`` links the full list."""
    rows = "".join(
        f'<dt id="g-{html.escape(k)}">{html.escape(term)}</dt><dd>{html.escape(text)}</dd>'
        for k, term, text in items
    )
    more = (
        f'<p>Every term, and how the results were made: <a href="{html.escape(more_href)}">'
        "methods and glossary</a>.</p>"
        if more_href
        else ""
    )
    _add(
        Part(
            "box",
            f'<section class="rrp-page-glossary" aria-labelledby="glossary"><h2 id="glossary">'
            f'{html.escape(title)}</h2><dl class="rrp-glossary">{rows}</dl>{more}</section>',
        )
    )


def table(frame: pd.DataFrame, caption: str | None = None) -> None:
    """A table with escaped values: column headers (``scope="col"``), the first column as row
    headers (``scope="row"``: a screen reader names each cell by its row), inside a container
    that scrolls sideways on a narrow screen instead of the page (WCAG 1.4.10 reflow)."""
    _add(Part("table", table_html(frame, caption), frame=frame))


def table_html(frame: pd.DataFrame, caption: str | None = None) -> str:
    """The HTML of :func:`table`."""
    body = frame.to_html(index=False, border=0, classes="rrp-table", escape=True, na_rep="")
    body = body.replace("<th>", '<th scope="col">')
    # the first cell of each body row heads its row
    body = re.sub(r"(<tr>\s*)<td>(.*?)</td>", r'\1<th scope="row">\2</th>', body, flags=re.S)
    label = ""
    if caption:
        end = body.index(">", body.index("<table")) + 1
        body = f"{body[:end]}<caption>{html.escape(caption)}</caption>{body[end:]}"
        label = f' aria-label="{html.escape(caption)}"'
    return f'<div class="rrp-table-wrap" role="region" tabindex="0"{label}>{body}</div>'


def figure(fig: Any, alt: str) -> None:
    """A figure with alt text (the report template puts it on the <img>), drawn now; closed in
    pyplot so that Jupyter shows it once, where the section puts it."""
    import matplotlib.pyplot as plt

    png = png_base64(fig)
    plt.close(fig)
    _add(Part("figure", figure=fig, alt=alt, png=png))


def _screen_width(png: str) -> int:
    """The CSS width of a figure drawn at ``FIGURE_DPI``: its size at ``SCREEN_DPI``."""
    import struct

    width = struct.unpack(">I", base64.b64decode(png[:32])[16:20])[0]  # the PNG's IHDR
    return round(width * SCREEN_DPI / FIGURE_DPI)


def png_base64(fig: Any) -> str:
    """The figure as a base64 PNG of 64 colours (flat chart colours and anti-aliasing keep, and
    a page is a third the size), carrying the data it draws (:mod:`rrp_eval.show.figdata`)."""
    from PIL import Image

    from rrp_eval.show.figdata import figure_data, png_info

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    data = figure_data(fig, FIGURE_DPI)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    small = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
        small, format="PNG", pnginfo=png_info(data)
    )
    return base64.b64encode(small.getvalue()).decode("ascii")
