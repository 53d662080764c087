"""Self-contained HTML: executed notebooks through our own nbconvert template, and the index.

No page loads anything from another address: reports have no script (the index has one small
inline script to sort its table), CSS inline, figures embedded
as data URIs, code hidden.
"""

from __future__ import annotations

import datetime
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    import nbformat

from rrp_eval._version import __version__

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSS = (TEMPLATES / "rrp" / "style.css").read_text(encoding="utf-8")


def _today() -> str:
    return datetime.date.today().isoformat()


def render_notebook(
    notebook: str | Path | nbformat.NotebookNode,
    *,
    title: str,
    programme: str,
    disclosure: str,
    internal: bool,
    index_href: str = "index.html",
) -> str:
    """An executed notebook as a self-contained HTML page (code hidden).

    Parameters
    ----------
    notebook : path or NotebookNode
    title, programme : str
        Page title and the header's programme name.
    disclosure : str
        The disclosure rule in force, for the footer.
    internal : bool
        Mark the page "internal: not for sharing".
    index_href : str
        Link back to the index page.
    """
    import nbformat  # here, not at the top: a run that reuses every page never needs it
    from nbconvert import HTMLExporter

    nb = (
        nbformat.read(str(notebook), as_version=4)
        if not isinstance(notebook, nbformat.NotebookNode)
        else notebook
    )
    # a cell tagged notebook-only (the notebook's own introduction above the page's title)
    # is for the analyst in JupyterLab: the page opens with its title
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if "notebook-only" not in c.get("metadata", {}).get("tags", [])]
    exporter = HTMLExporter(
        template_name="rrp",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )
    resources: dict[str, Any] = {
        "rrp": {
            "title": title,
            "programme": programme,
            "disclosure": disclosure,
            "internal": internal,
            "index_href": index_href,
            "methods_href": index_href.rsplit("index.html", 1)[0] + "methods.html",
            "css": CSS,
            "version": __version__,
            "date": _today(),
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    # nbconvert's heading anchors are links with no text (axe: link-name); the ids stay
    return re.sub(r'<a class="anchor-link" href="[^"]*"></a>', "", body)


def render_index(context: dict[str, Any]) -> str:
    """The index page from ``templates/index_page.html.j2``; every value is escaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = env.get_template("index_page.html.j2")
    return page.render(
        css=jinja2.utils.markupsafe.Markup(CSS),
        version=__version__,
        date=_today(),
        **context,
    )


def render_methods(params: Any, internal: bool = False) -> str:
    """``methods.html``: what each method does, the verdicts and a glossary, for readers of the
    shared reports (who cannot open the repository's ``docs/methods.md``)."""
    from rrp_eval.evaluate.programme import METHOD_NAMES, effect_words
    from rrp_eval.show.glossary import GLOSSARY, entries

    p = params.primary
    label = str(params.measure(p.measure).label).lower()
    words = (
        f"{label}, {effect_words(p.effect, params.horizon_months, params.phase_in_months)}, "
        f"by {METHOD_NAMES.get(p.method, p.method)}"
    )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("methods_page.html.j2").render(
        css=jinja2.utils.markupsafe.Markup(CSS),
        version=__version__,
        date=_today(),
        programme=params.programme,
        primary_words=words,
        horizon=params.horizon_months,
        glossary=entries(list(GLOSSARY), params.horizon_months),
        internal=internal,
    )


_REQUEST_ATTRS = re.compile(
    r"""<(?P<tag>[a-zA-Z]+)[^>]*?\s(?P<attr>src|srcset|href|data|poster|action)\s*=\s*["']?(?P<url>[^"'\s>]+)""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])(?P<url>[^"')\s]+)""", re.IGNORECASE)


_NETWORK_JS = re.compile(
    r"fetch\s*\(|XMLHttpRequest|\bimport\s*\(|WebSocket|EventSource|sendBeacon|"
    r"https?:|//[a-z0-9.-]+\.[a-z]",
    re.I,
)


def _is_remote(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE))


class _Tables(HTMLParser):
    """The cells of every table in a page, by caption."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._cell: str | None = None
        self._rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self._rows, self._caption = [], ""
        elif tag == "caption":
            self._caption = ""
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            caption = (self._caption or "").strip()
            key, k = caption, 2
            while key in self.tables:  # two tables with one caption keep both
                key, k = f"{caption} ({k})", k + 1
            self.tables[key] = self._rows

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data
        elif self._caption is not None and not self._rows:
            self._caption += data


def html_tables(page: str) -> dict[str, list[list[str]]]:
    """Every table in an HTML page as rows of cell texts (header row first), by caption."""
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def external_requests(page: str) -> list[str]:
    """What in an HTML page would make a browser fetch something from another address.

    A script loaded from a file (``<script src>``, even a local one) or an inline script that
    could reach the network (``fetch``, ``XMLHttpRequest``, ``import``, ``WebSocket``,
    ``EventSource``, ``sendBeacon`` or a URL); absolute or protocol-relative URLs in ``src``,
    ``srcset``, ``data``, ``poster``, ``action``, a ``<link href>``, CSS ``url()`` and
    ``@import``. Plain ``<a href>`` links are not requests and are allowed, and so is the
    index's inline sorting script.
    """
    found = []
    for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", page, re.I | re.S):
        attrs, body = m.group(1), m.group(2)
        if re.search(r"\bsrc\s*=", attrs, re.I) or _NETWORK_JS.search(body):
            found.append(f"<script> at offset {m.start()}")
    for m in _REQUEST_ATTRS.finditer(page):
        tag, attr, url = m.group("tag").lower(), m.group("attr").lower(), m.group("url")
        if tag == "a" and attr == "href":
            continue
        if _is_remote(url):
            found.append(f"<{tag} {attr}={url}>")
    found += [
        f"css url({m.group('url')})" for m in _CSS_URL.finditer(page) if _is_remote(m.group("url"))
    ]
    return found
