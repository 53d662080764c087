"""Every chart of the suite (the only module that draws). Charts take results objects.

Making Data Count colours, darkened for WCAG 2.2 AA (chart graphics >= 3:1 against white,
icon letters >= 4.5:1 on their disc): common cause #768692 (points and limits; #4c6272 behind
an icon letter), improvement #0072c6, concern #a84f00, neutral #490092, target #de1b1b. Colour
is never the only cue: special-cause points also differ in shape (improvement a diamond,
concern a square, common cause a small circle) and the legend names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from rrp_eval.models.its import ITSResult
    from rrp_eval.models.spc import ControlChartResult, SPCResult

from rrp_eval.models.spc import RunChartResult

COMMON, IMPROVEMENT, CONCERN, NEUTRAL, TARGET = (
    "#768692",
    "#0072c6",
    "#a84f00",
    "#490092",
    "#de1b1b",
)
COMMON_ICON = "#4c6272"  # behind white text: >= 4.5:1
NHS_BLUE, NHS_DARK = "#005eb8", "#231f20"
POINT_COLOURS = {
    "common_cause": COMMON,
    "special_cause_improvement": IMPROVEMENT,
    "special_cause_concern": CONCERN,
    "special_cause_neutral_high": NEUTRAL,
    "special_cause_neutral_low": NEUTRAL,
}
#: marker, size and legend words of each kind of point (shape as well as colour)
POINT_STYLES = {
    "common_cause": ("o", 16, "common cause"),
    "special_cause_improvement": ("D", 30, "special cause: improvement"),
    "special_cause_concern": ("s", 30, "special cause: concern"),
    "special_cause_neutral_high": ("^", 30, "special cause: neutral (higher)"),
    "special_cause_neutral_low": ("v", 30, "special cause: neutral (lower)"),
}
ICON_TEXT = {
    "common_cause": ("~", COMMON_ICON, "common cause variation"),
    "improvement_high": ("H", IMPROVEMENT, "special cause: improvement (higher)"),
    "improvement_low": ("L", IMPROVEMENT, "special cause: improvement (lower)"),
    "concern_high": ("H", CONCERN, "special cause: concern (higher)"),
    "concern_low": ("L", CONCERN, "special cause: concern (lower)"),
    "neutral_high": ("H", NEUTRAL, "special cause: neutral (higher)"),
    "neutral_low": ("L", NEUTRAL, "special cause: neutral (lower)"),
    "consistent_pass": ("P", IMPROVEMENT, "will consistently meet the target"),
    "consistent_fail": ("F", CONCERN, "will consistently miss the target"),
    "inconsistent": ("?", COMMON_ICON, "may or may not meet the target"),
}


def _style(ax: Any, title: str | None, ylabel: str | None) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e8edee", linewidth=0.8)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left", fontsize=11, color=NHS_DARK, fontweight="bold")
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)


def _month_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))


def _icon(ax: Any, x: float, name: str | None) -> None:
    if not name:
        return
    text, colour, _ = ICON_TEXT[name]
    ax.text(
        x,
        1.02,
        text,
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=9,
        fontweight="bold",
        color="white",
        bbox={"boxstyle": "circle,pad=0.35", "facecolor": colour, "edgecolor": "none"},
    )


def icon_description(name: str | None) -> str:
    """The words for an icon (for alt text and tables)."""
    return ICON_TEXT[name][2] if name else "no target"


def plot_spc(
    res: SPCResult | ControlChartResult,
    ax: Any = None,
    *,
    shown: pd.Series | np.ndarray | None = None,
    title: str | None = None,
    ylabel: str | None = "rate per 1,000 occupied bed days",
    events: pd.DataFrame | None = None,
    start: pd.Timestamp | None = None,
) -> Any:
    """An XmR, u, u′, p or I chart in Making Data Count style.

    Parameters
    ----------
    res : SPCResult or ControlChartResult
    ax : matplotlib Axes, optional
    shown : array, optional
        The values that may be shown (NaN where disclosure control suppresses a point); the
        limits are drawn from ``res`` either way. Suppressed points leave a labelled gap.
    title, ylabel : str, optional
    events : DataFrame, optional
        ``month, type, note`` rows annotated as vertical lines.
    start : Timestamp, optional
        The programme start, drawn as a dashed line.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    f = res.frame
    centre, low, high = ("mean", "lpl", "upl") if "mean" in f else ("centre", "lcl", "ucl")
    x = f["date"] if "date" in f else pd.Series(np.arange(len(f)))
    y = f["value"] if shown is None else pd.Series(np.asarray(shown, dtype=float), index=f.index)
    groups = f.groupby("rebase_group") if "rebase_group" in f else [(0, f)]
    step = "mid" if centre == "centre" else None
    for _, g in groups:
        gx = x.loc[g.index]
        ax.plot(gx, g[centre], color=NHS_DARK, linewidth=1, gid="centre")
        for col, role in ((low, "lower_limit"), (high, "upper_limit")):
            ax.plot(
                gx,
                g[col],
                color=COMMON,
                linewidth=1,
                linestyle="--",
                drawstyle="steps-mid" if step else "default",
                gid=role,
            )
        ax.plot(gx, y.loc[g.index], color=COMMON, linewidth=1.2, zorder=2, gid="rate")
    ok = y.notna()
    kinds = f["point_type"].where(f["point_type"].isin(list(POINT_STYLES)), "common_cause")
    special = False
    for kind, (marker, size, words) in POINT_STYLES.items():
        these = ok & (kinds == kind)
        if not these.any():
            continue
        special = special or kind != "common_cause"
        ax.scatter(
            x[these],
            y[these],
            color=POINT_COLOURS[kind],
            marker=marker,
            s=size,
            zorder=3,
            edgecolors="none",
            gid="rate",
            label=words,
        )
    if "excluded" in f and (f["excluded"] & ok).any():
        ex = f["excluded"].astype(bool) & ok
        ax.scatter(
            x[ex],
            y[ex],
            marker="x",
            s=40,
            color=NHS_DARK,
            linewidths=1.2,
            zorder=4,
            gid="excluded",
            label="left out of the limits",
        )
        special = True
    if special:  # the shapes named: colour is not the only cue
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(0.0, -0.2),
            fontsize=7,
            frameon=False,
            ncol=4,
            handletextpad=0.3,
            columnspacing=1.2,
        )
    hidden = int((~ok).sum())
    if hidden:
        ax.text(
            0.0,
            -0.36 if special else -0.28,
            f"{hidden} point{'s' * (hidden > 1)} not shown (small numbers)",
            transform=ax.transAxes,
            fontsize=7,
            color="#425563",
        )
    target = getattr(res, "target", None)
    if target is not None:
        ax.axhline(target, color=TARGET, linewidth=1.2, linestyle=":")
    if start is not None:
        ax.axvline(start, color=NHS_BLUE, linewidth=1, linestyle="--")
    if events is not None and len(events):
        for ev in events.itertuples():
            ax.axvline(ev.month, color="#768692", linewidth=0.8, linestyle=":")
            ax.text(
                ev.month,
                0.98,
                f" {ev.type.replace('_', ' ')}",
                rotation=90,
                va="top",
                fontsize=6,
                color="#425563",
                transform=ax.get_xaxis_transform(),
            )
    _icon(ax, 0.93, res.variation_icon)
    _icon(ax, 0.99, getattr(res, "assurance_icon", None))
    chart = getattr(res, "chart", None)
    if chart and chart != "i":
        ax.text(
            1.0,
            -0.28,
            f"{chart} chart",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="#425563",
        )
    _style(ax, title, ylabel)
    if "date" in f:
        _month_axis(ax)
    if (f[low] >= 0).all():
        ax.set_ylim(bottom=0)
    return ax


def plot_run_chart(
    res: RunChartResult, ax: Any = None, *, title: str | None = None, ylabel: str | None = None
) -> Any:
    """A run chart: points, median, and whether Anhøj's rules signal."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    f = res.frame
    x = f["date"] if "date" in f else pd.Series(np.arange(len(f)))
    ax.plot(
        x,
        f["value"],
        color=COMMON,
        linewidth=1.2,
        marker="o",
        markersize=3,
        markerfacecolor=NHS_BLUE,
        markeredgecolor=NHS_BLUE,
        gid="value",
    )
    ax.plot(x, f["median"], color=NHS_DARK, linewidth=1, gid="median")
    r = res.runs
    verdict = "non-random variation" if r.signal else "random variation"
    ax.text(
        0.0,
        -0.34,
        f"{verdict}: longest run {r.longest_run} (max {r.longest_run_max}), "
        f"crossings {r.n_crossings} (min {r.n_crossings_min})",
        transform=ax.transAxes,
        fontsize=7,
        color=CONCERN if r.signal else "#425563",
    )
    _style(ax, title, ylabel)
    if "date" in f:
        _month_axis(ax)
    return ax


def plot_small_multiples(
    panels: list[tuple[str, Any, np.ndarray | None]],
    *,
    ncols: int = 2,
    ylabel: str | None = None,
    keys: list[str] | None = None,
) -> Any:
    """One small chart per (title, result, shown values) panel, sharing nothing but style;
    ``keys`` name what each panel shows (``trust/scope/measure``, see
    :mod:`rrp_eval.show.figdata`)."""
    n = len(panels)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax, (title, res, shown) in zip(axes.flat, panels, strict=False):
        if isinstance(res, RunChartResult):
            plot_run_chart(res, ax, title=title, ylabel=ylabel)
        else:
            plot_spc(res, ax, shown=shown, title=title, ylabel=ylabel)
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
    for ax, key in zip(axes.flat, keys or [], strict=False):
        ax.set_gid(key)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_its(
    res: ITSResult,
    ax: Any = None,
    *,
    shown: pd.DataFrame | None = None,
    title: str | None = None,
    per: float = 1000.0,
    ylabel: str = "rate per 1,000 occupied bed days",
) -> Any:
    """Observed rate, fitted model and counterfactual (no programme) by month.

    Stacked series are summed over wards month by month: the observed, fitted and
    counterfactual counts over the wards' bed days.

    Parameters
    ----------
    res : ITSResult
        A log-link model with an exposure.
    shown : DataFrame, optional
        ``month, rate`` of the observed points that may be shown (disclosure control); by
        default every observed point.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    pred = res.predictions()
    frame = res.frame.assign(
        counterfactual=pred["counterfactual"],
        cf_low=pred["counterfactual_low"],
        cf_high=pred["counterfactual_high"],
    )
    by_time = frame.groupby("time_value").agg(
        y=("y", "sum"),
        fitted=("fitted", "sum"),
        cf=("counterfactual", "sum"),
        cf_low=("cf_low", "sum"),
        cf_high=("cf_high", "sum"),
        exposure=("exposure", "sum"),
        h=("h", "min"),
    )
    monthly = res.spec.time_kind == "monthly"
    months = (
        pd.to_datetime([f"{int(v // 12)}-{int(v % 12) + 1:02d}-01" for v in by_time.index])
        if monthly
        else pd.Index(by_time.index)
    )
    rate = by_time["y"] / by_time["exposure"] * per
    if shown is not None:
        rate = pd.Series(
            shown.set_index("month")["rate"].reindex(months).to_numpy(), index=by_time.index
        )
    fitted = by_time["fitted"] / by_time["exposure"] * per
    cf = by_time["cf"] / by_time["exposure"] * per
    post = frame.groupby("time_value")["level_change"].max() > 0
    ax.scatter(months, rate, s=16, color=COMMON, zorder=3, label="observed", gid="rate")
    ax.plot(months, fitted, color=NHS_BLUE, linewidth=1.8, label="model", gid="fitted")
    ax.plot(
        months[post.to_numpy()],
        cf[post],
        color=CONCERN,
        linewidth=1.5,
        linestyle="--",
        label="counterfactual (no programme)",
        gid="counterfactual",
    )
    if res.spec.unit is None:
        band = post.to_numpy()
        ax.fill_between(
            months[band],
            (by_time["cf_low"] / by_time["exposure"] * per)[band],
            (by_time["cf_high"] / by_time["exposure"] * per)[band],
            color=CONCERN,
            alpha=0.12,
            linewidth=0,
            label="95% interval",
        )
        first_post = months[post.to_numpy()][0] if post.any() else None
        if first_post is not None:
            ax.axvline(first_post, color=NHS_DARK, linewidth=0.8, linestyle=":")
            if res.spec.phase_in and monthly:
                start = first_post - pd.DateOffset(months=res.spec.phase_in)
                ax.axvspan(start, first_post, color="#e8edee", zorder=0, label="phase-in")
    hidden = int(rate.isna().sum())
    if hidden:
        ax.text(
            0.0,
            -0.28,
            f"{hidden} month{'s' * (hidden > 1)} not shown (small numbers)",
            transform=ax.transAxes,
            fontsize=7,
            color="#425563",
        )
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    _style(ax, title, ylabel)
    if monthly:
        _month_axis(ax)
    ax.set_ylim(bottom=0)
    return ax


def plot_forest(
    table: pd.DataFrame,
    pooled: dict | None = None,
    ax: Any = None,
    *,
    title: str | None = None,
    xlabel: str = "rate ratio",
) -> Any:
    """Forest plot: one row per trust (``label, estimate, ci_low, ci_high``) and the pooled
    estimate with its prediction interval, on a log axis."""
    n = len(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.32 * (n + 3) + 0.8))
    ys = np.arange(n, 0, -1) + 1
    ax.errorbar(
        table["estimate"],
        ys,
        xerr=[table["estimate"] - table["ci_low"], table["ci_high"] - table["estimate"]],
        fmt="s",
        color=NHS_BLUE,
        ecolor=NHS_BLUE,
        markersize=5,
        capsize=0,
    )
    labels = list(table["label"])
    ticks = list(ys)
    if pooled is not None and np.isfinite(pooled.get("estimate", np.nan)):
        ax.plot([pooled["ci_low"], pooled["ci_high"]], [0.6, 0.6], color=NHS_DARK, linewidth=4)
        if np.isfinite(pooled.get("pi_low", np.nan)):
            ax.plot([pooled["pi_low"], pooled["pi_high"]], [0.6, 0.6], color=NHS_DARK, linewidth=1)
        ax.plot(pooled["estimate"], 0.6, "D", color="white", markeredgecolor=NHS_DARK)
        labels.append("Random-effects pooled\n(95% CI; prediction interval)")
        ticks.append(0.6)
    ax.axvline(1, color=COMMON, linewidth=1)
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    candidates = [0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10]
    ax.set_xticks([c for c in candidates if low <= c <= high])
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel, fontsize=9)
    _style(ax, title, None)
    ax.grid(False)
    return ax


def plot_completeness(table: pd.DataFrame, ax: Any = None, *, title: str | None = None) -> Any:
    """Heat map of the share of ward-months recorded, trusts by measure (0-100%)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.3 * len(table) + 1.5))
    im = ax.imshow(table.to_numpy(dtype=float) * 100, aspect="auto", cmap="Blues", vmin=0, vmax=100)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set_xticks(
        range(len(table.columns)),
        [c.replace("_", " ") for c in table.columns],
        rotation=35,
        ha="right",
        fontsize=8,
    )
    for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(
            j,
            i,
            f"{v * 100:.0f}",
            ha="center",
            va="center",
            fontsize=6,
            color="white" if v > 0.6 else NHS_DARK,
        )
    plt.colorbar(im, ax=ax, label="% of ward-months recorded", shrink=0.8)
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax


def plot_funnel(
    table: pd.DataFrame,
    rate: float,
    phi: float,
    limits_fn: Any,
    ax: Any = None,
    *,
    title: str | None = None,
    per_label: str = "per 1,000 occupied bed days",
) -> Any:
    """Funnel plot: each unit's rate against its exposure, with 95% and 99.8% limits."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    e = np.geomspace(max(table["exposure"].min() * 0.5, 1.0), table["exposure"].max() * 1.5, 200)
    limits = limits_fn(rate, e, phi)
    for name, style in (("95%", "--"), ("99.8%", ":")):
        low, high = limits[name]
        ax.plot(e, high, color=NHS_DARK, linestyle=style, linewidth=1, label=f"{name} limits")
        ax.plot(e, low, color=NHS_DARK, linestyle=style, linewidth=1)
    ax.axhline(rate, color=NHS_BLUE, linewidth=1.2, label="programme rate")
    colours = table["position"].map(
        lambda p: (
            CONCERN if p.startswith("above") else IMPROVEMENT if p.startswith("below") else COMMON
        )
    )
    ax.scatter(table["exposure"], table["rate_per_1000_obd"], c=colours, s=30, zorder=3, gid="rate")
    ax.set_gid("funnel")
    # label every unit when there are few; otherwise only those outside the 95% limits
    labelled = table if len(table) <= 20 else table[table["position"] != "within"]
    for row in labelled.itertuples():
        ax.annotate(
            str(row.label),
            (row.exposure, row.rate_per_1000_obd),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("occupied bed days", fontsize=9)
    note = f" (limits widened for over-dispersion, φ = {phi:.1f})" if phi > 1 else ""
    ax.legend(fontsize=7, frameon=False, title=note.strip() or None, title_fontsize=7)
    _style(ax, title, per_label)
    ax.set_ylim(bottom=0)
    return ax


def plot_glance(
    facts: list[tuple[str, str]], headline: tuple[str, str], series: pd.DataFrame, *, title: str
) -> Any:
    """One-page 'programme at a glance': key figures, the headline effect and sparklines.

    ``facts``: (value, label) pairs; ``headline``: (big text, explanation); ``series``:
    ``month, group, rate`` of the programme's participating and comparison wards.
    """
    import textwrap

    fig = plt.figure(figsize=(10, 5.6))
    fig.patch.set_facecolor("white")
    fig.text(0.03, 0.93, title, fontsize=16, fontweight="bold", color=NHS_DARK)
    n = len(facts)
    for i, (value, label) in enumerate(facts):
        x = 0.03 + i * (0.94 / n)
        fig.text(x, 0.80, value, fontsize=20, fontweight="bold", color=NHS_BLUE)
        fig.text(
            x, 0.775, "\n".join(textwrap.wrap(label, 24)), fontsize=9, color="#425563", va="top"
        )
    fig.text(0.03, 0.60, headline[0], fontsize=24, fontweight="bold", color=NHS_DARK)
    fig.text(
        0.03,
        0.585,
        "\n".join(textwrap.wrap(headline[1], 120)),
        fontsize=10,
        color="#425563",
        va="top",
    )
    ax = fig.add_axes((0.06, 0.10, 0.9, 0.36))
    plot_glance_series(series, ax)
    return fig


def plot_glance_series(series: pd.DataFrame, ax: Any) -> Any:
    """The programme's monthly rate, participating and comparison wards (``month, group,
    rate``): solid and dashed as well as blue and grey."""
    for group, colour, style in (("participating", NHS_BLUE, "-"), ("comparison", COMMON, "--")):
        g = series[series["group"] == group]
        if len(g):
            ax.plot(
                g["month"],
                g["rate"],
                color=colour,
                linewidth=2,
                linestyle=style,
                label=f"{group} wards",
                gid="rate",
            )
    if ax.get_lines():  # nothing to label when no ward has data (every trust failed, say)
        ax.legend(fontsize=8, frameon=False, loc="upper right")
    _style(ax, "Restrictive practice per 1,000 occupied bed days, every trust", None)
    _month_axis(ax)
    ax.set_ylim(bottom=0)
    return ax


def plot_caterpillar(
    table: pd.DataFrame, overall: float, ax: Any = None, *, title: str | None = None
) -> Any:
    """Units' rates with 95% intervals, sorted, against the overall rate (``label, rate,
    ci_low, ci_high``)."""
    t = table.sort_values("rate").reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.3 * len(t) + 1.2))
    y = np.arange(len(t))
    colours = np.where(
        t["ci_low"] > overall, CONCERN, np.where(t["ci_high"] < overall, IMPROVEMENT, COMMON)
    )
    ax.hlines(y, t["ci_low"], t["ci_high"], colors=colours, linewidth=2, gid="interval")
    ax.scatter(t["rate"], y, color=NHS_DARK, s=14, zorder=3, gid="rate")
    ax.set_gid("caterpillar")
    ax.axvline(overall, color=NHS_BLUE, linewidth=1.2)
    ax.set_yticks(y, t["label"], fontsize=8)
    _style(ax, title, None)
    ax.set_xlabel("rate per 1,000 occupied bed days (95% interval)", fontsize=9)
    ax.grid(axis="x", color="#e8edee")
    return ax


def plot_event_study(
    study: pd.DataFrame,
    ax: Any = None,
    *,
    sensitivity: pd.DataFrame | None = None,
    title: str | None = None,
) -> Any:
    """Event-study chart: rate ratios by month since joining (``event_time, estimate, ci_low,
    ci_high``) on a log axis, months before joining in grey, month -1 the reference; an
    optional second estimator (same columns) drawn as open circles beside them."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    s = study[np.isfinite(study["estimate"]) & (study["estimate"] > 0)]
    for kind, colour, label in (
        ("lead", COMMON, "before joining (placebo)"),
        ("lag", NHS_BLUE, "after joining"),
    ):
        part = s[s["kind"] == kind]
        ax.errorbar(
            part["event_time"],
            part["estimate"],
            yerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
            fmt="o",
            color=colour,
            ecolor=colour,
            markersize=4,
            capsize=0,
            label=label,
        )
    if sensitivity is not None and len(sensitivity):
        v = sensitivity[np.isfinite(sensitivity["estimate"]) & (sensitivity["estimate"] > 0)]
        ax.plot(
            v["event_time"] + 0.3,
            v["estimate"],
            "o",
            markerfacecolor="white",
            markeredgecolor=NHS_DARK,
            markersize=4,
            label="Callaway & Sant'Anna (rates)",
        )
    ax.axhline(1, color=NHS_DARK, linewidth=0.8)
    ax.axvline(-0.5, color=NHS_DARK, linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    low, high = ax.get_ylim()
    ax.set_yticks([c for c in (0.25, 0.5, 0.7, 1, 1.4, 2, 4) if low <= c <= high])
    _style(ax, title, "rate ratio (95% CI)")
    ax.set_xlabel("months since the ward joined", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return ax


def plot_event_time_rates(rates: pd.DataFrame, ax: Any = None, *, title: str | None = None) -> Any:
    """Participating wards' pooled rate by month since joining (``event_time,
    rate_per_1000_obd``), the joining month marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.0))
    ax.plot(
        rates["event_time"],
        rates["rate_per_1000_obd"],
        "-o",
        color=NHS_BLUE,
        markersize=3,
        gid="rate",
    )
    ax.axvline(-0.5, color=NHS_DARK, linewidth=0.8, linestyle="--")
    ax.set_ylim(bottom=0)
    _style(ax, title, "rate per 1,000 occupied bed days")
    ax.set_xlabel("months since the ward joined", fontsize=9)
    return ax
