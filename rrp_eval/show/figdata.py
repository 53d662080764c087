"""The data behind a figure, at the precision a reader can take from its pixels.

Every PNG the suite writes carries, in a PNG text chunk (``rrp-eval:data``), what each of its
axes draws: the axes' key (``trust/scope/measure``, set where the chart is made) and title, and
for each line, point set or segment set its role (the artist's gid, set in :mod:`rrp_eval.plots`),
label and values. Values are rounded to a quarter of a pixel (in data units; in log units on a
log axis), so the chunk holds no more than a careful reader measures from the picture, and the
disclosure audit (:mod:`rrp_eval.report.audit`) reads every figure of a shared run from it
instead of remembering what each chart shows. Dates on a time axis are written as ``YYYY-MM``.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np

FIGURE_DATA_KEY = "rrp-eval:data"
PIXEL_FRACTION = 0.25  # values are kept to a quarter of a pixel


def _resolution(lo: float, hi: float, pixels: float, log: bool) -> float:
    span = (math.log10(hi) - math.log10(lo)) if log else (hi - lo)
    return abs(span) / max(pixels, 1.0) * PIXEL_FRACTION


def _quantise(values: np.ndarray, res: float, log: bool) -> list[float | None]:
    values = np.asarray(values, dtype=float)
    out: list[float | None] = []
    for v in values:
        if not np.isfinite(v) or (log and v <= 0):
            out.append(None)
        elif log:
            out.append(float(f"{10 ** (round(math.log10(v) / res) * res):.6g}"))
        else:
            out.append(float(f"{round(v / res) * res:.6g}") if res > 0 else float(f"{v:.6g}"))
    return out


def _x_values(ax: Any, x: np.ndarray, res: float, log: bool) -> list[Any]:
    """x as months when the axis shows dates, else quantised numbers."""
    import matplotlib.dates as mdates

    converter = ax.xaxis.get_converter()
    is_date = (
        converter is not None
        and "date" in type(converter).__module__ + type(converter).__name__.lower()
    )
    if is_date:
        out: list[Any] = []
        for v in np.asarray(x, dtype=float):
            out.append(mdates.num2date(v).strftime("%Y-%m") if np.isfinite(v) else None)
        return out
    return _quantise(x, res, log)


def _numeric(values: Any) -> np.ndarray:
    import matplotlib.dates as mdates

    arr = np.asarray(values)
    if arr.dtype.kind in "Mm" or (arr.dtype == object and len(arr) and hasattr(arr[0], "year")):
        return np.asarray(mdates.date2num(arr), dtype=float)
    return np.asarray(arr, dtype=float)


def figure_data(fig: Any, dpi: float | None = None) -> dict[str, Any]:
    """What every axes of ``fig`` draws (see the module docstring), for a picture saved at
    ``dpi`` (default the figure's); call after saving it (limits and layout are final)."""
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.text import Text

    scale = (dpi or fig.dpi) / fig.dpi
    axes = []
    for ax in fig.get_axes():
        if not ax.get_visible():
            continue
        bbox = ax.get_window_extent()
        xlog, ylog = ax.get_xscale() == "log", ax.get_yscale() == "log"
        xres = _resolution(*ax.get_xlim(), bbox.width * scale, xlog)
        yres = _resolution(*ax.get_ylim(), bbox.height * scale, ylog)
        series = []
        for line in ax.get_lines():
            x, y = line.get_data(orig=True)
            if np.ndim(x) == 0 or len(x) == 0:
                continue
            try:
                xs, ys = _numeric(x), _numeric(y)
            except (TypeError, ValueError):
                continue
            series.append(
                {
                    "role": line.get_gid(),
                    "kind": "line",
                    "label": str(line.get_label()),
                    "x": _x_values(ax, xs, xres, xlog),
                    "y": _quantise(ys, yres, ylog),
                }
            )
        for coll in ax.collections:
            if isinstance(coll, PathCollection):
                offsets = np.asarray(coll.get_offsets(), dtype=float)
                if not len(offsets):
                    continue
                series.append(
                    {
                        "role": coll.get_gid(),
                        "kind": "points",
                        "label": str(coll.get_label()),
                        "x": _x_values(ax, offsets[:, 0], xres, xlog),
                        "y": _quantise(offsets[:, 1], yres, ylog),
                    }
                )
            elif isinstance(coll, LineCollection):
                segs = [np.asarray(s, dtype=float) for s in coll.get_segments() if len(s) >= 2]
                if not segs:
                    continue
                series.append(
                    {
                        "role": coll.get_gid(),
                        "kind": "segments",
                        "label": str(coll.get_label()),
                        "x0": _quantise([s[0, 0] for s in segs], xres, xlog),
                        "x1": _quantise([s[-1, 0] for s in segs], xres, xlog),
                        "y0": _quantise([s[0, 1] for s in segs], yres, ylog),
                        "y1": _quantise([s[-1, 1] for s in segs], yres, ylog),
                    }
                )
        texts = [t.get_text() for t in ax.texts if isinstance(t, Text) and t.get_text()]
        axes.append(
            {
                "key": ax.get_gid(),
                "title": ax.get_title(loc="left") or ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "xscale": ax.get_xscale(),
                "yscale": ax.get_yscale(),
                "xres": xres,
                "yres": yres,
                "series": series,
                "texts": texts,
            }
        )
    texts = [t.get_text() for t in fig.texts if t.get_text()]
    return {"version": 1, "dpi": dpi or fig.dpi, "axes": axes, "texts": texts}


def png_info(data: dict[str, Any]) -> Any:
    """A PIL ``PngInfo`` holding ``data`` in the ``rrp-eval:data`` chunk (compressed)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(FIGURE_DATA_KEY, json.dumps(data, separators=(",", ":")), zip=True)
    return info


def png_with_data(png: bytes, data: dict[str, Any]) -> bytes:
    """``png`` with ``data`` in its ``rrp-eval:data`` text chunk."""
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="PNG", pnginfo=png_info(data), optimize=True)
    return out.getvalue()


def read_figure_data(png: bytes) -> dict[str, Any] | None:
    """The figure data a PNG carries, or None (a PNG the suite did not draw). The chunk is
    written before the pixels, so they are decoded only when it is not found there."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(png))
        raw = image.info.get(FIGURE_DATA_KEY)
        if raw is None:
            image.load()  # a chunk after the pixels
            raw = (getattr(image, "text", {}) or {}).get(FIGURE_DATA_KEY)
    except Exception:  # not a PNG we can read: nothing to report from it
        return None
    return json.loads(raw) if raw else None
