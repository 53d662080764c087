"""PDFs for board papers: every page of a finished run printed to A4 by a headless Chromium
browser (``rrp-eval run --pdf``), with the reports' own print stylesheet.

Chromium (or Chrome or Edge) is the dependency chosen for a fresh machine: it is one package
on every platform (Debian: ``apt-get install chromium``), it renders the pages exactly as the
browser a reader opens them in, and the accessibility checks already use it. Python-only
converters (WeasyPrint, xhtml2pdf) need system libraries of their own and lay out tables and
print CSS differently from the browsers the pages are read in.

The PDFs are written after the disclosure audit, from the audited pages: they hold nothing
the shared HTML does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: browsers tried in turn (``RRP_EVAL_BROWSER`` names one explicitly)
BROWSERS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "msedge",
)
PDF_DIR = "pdf"
PAGE_SECONDS = 180


class PdfUnavailable(RuntimeError):
    """No browser to print with, or a page that would not print."""


def find_browser() -> str | None:
    """The browser ``--pdf`` prints with: ``RRP_EVAL_BROWSER`` or the first of ``BROWSERS``
    on the PATH."""
    named = os.environ.get("RRP_EVAL_BROWSER")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def print_page(browser: str, page: Path, pdf: Path) -> None:
    """One page to an A4 PDF (no browser header or footer: the page has its own)."""
    with tempfile.TemporaryDirectory(prefix="rrp-eval-browser-") as profile:
        cmd = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.resolve().as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(2, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=PAGE_SECONDS, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfUnavailable(f"{page.name}: the browser took over {PAGE_SECONDS} s") from exc
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise PdfUnavailable(f"{page.name}: the browser could not print it ({last[:200]})")


def write_pdfs(out_dir: Path, jobs: int = 2) -> list[Path]:
    """Print every HTML page of a finished run into ``out_dir/pdf/`` (``trusts/X01.html`` to
    ``pdf/trusts_X01.pdf``); returns the PDFs written.

    Raises
    ------
    PdfUnavailable
        No browser was found (the message says how to install one), or a page failed.
    """
    browser = find_browser()
    if browser is None:
        raise PdfUnavailable(
            "--pdf needs Chromium, Chrome or Edge to print the pages: install one (Debian or "
            "Ubuntu: apt-get install chromium) or name it in RRP_EVAL_BROWSER"
        )
    pages = sorted(p for p in out_dir.rglob("*.html") if PDF_DIR not in p.parts)
    target = out_dir / PDF_DIR
    target.mkdir(exist_ok=True)
    jobs_ = [
        (p, target / (p.relative_to(out_dir).with_suffix("").as_posix().replace("/", "_") + ".pdf"))
        for p in pages
    ]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(lambda job: print_page(browser, *job), jobs_))
    return [pdf for _, pdf in jobs_]
