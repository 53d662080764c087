"""Attacks on shared figures (issue 14): what a reader who knows the published rule can recover
by combining rates, bed days, centre lines and limits. Each test fails on the rule before the
rate step (whole-number rates, exact centre lines and limits, exact glance series)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rrp_eval.disclosure import DisclosureRule

RULE = DisclosureRule()


def _published_bed_days(bd: np.ndarray) -> np.ndarray:
    return np.array([float(RULE.count(b).replace(",", "")) for b in bd])


def _candidates(rate: float, bd_pub: float, rule: DisclosureRule, step: float) -> range:
    """The counts a reader finds consistent with a rate shown to ``step`` over bed days shown
    rounded to ``rule.round_to``."""
    half = rule.round_to / 2
    low = max(rate - step / 2, 0) * max(bd_pub - half, 0) / 1000
    high = (rate + step / 2) * (bd_pub + half) / 1000
    return range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1)


def test_a_shared_rate_pins_its_count_no_finer_than_the_rounding():
    rng = np.random.default_rng(14)
    bd = rng.integers(100, 20_000, 5_000).astype(float)
    count = pd.Series(rng.integers(5, 400, 5_000).astype(float))
    rate = count / bd * 1000
    shown = RULE.rates(rate, count, pd.Series(bd))
    bd_pub = _published_bed_days(bd)
    steps = RULE.rate_step(bd_pub)  # what a reader computes from the published bed days
    widths = []
    for r, b, s, k in zip(shown, bd_pub, steps, count, strict=True):
        found = _candidates(r, b, RULE, s)
        assert k in found  # the reader's reasoning is sound
        widths.append(len(found))
    assert min(widths) >= RULE.round_to


def test_a_suppressed_part_is_not_recovered_from_the_total_and_the_other_parts():
    """Issue 14: restrictive practice = physical + rapid tranquillisation + seclusion on a
    ward of ~700 bed days a month; seclusion (1-4) is suppressed, the others are shown. With
    whole-number rates the reader recovered seclusion in 30 of 30 months."""
    rng = np.random.default_rng(3)
    months = 30
    bd = rng.integers(650, 750, months).astype(float)
    phys, rt = rng.integers(10, 25, months), rng.integers(6, 12, months)
    secl = rng.integers(1, 5, months)
    total = phys + rt + secl
    bd_pub = _published_bed_days(bd)

    def recovered(rule: DisclosureRule, step_of) -> int:
        shown = {
            name: rule.rates(pd.Series(c / bd * 1000), pd.Series(c.astype(float)), pd.Series(bd))
            for name, c in (("total", total), ("phys", phys), ("rt", rt))
        }
        pinned = 0
        for i in range(months):
            step = step_of(bd_pub[i])
            c = {n: _candidates(shown[n][i], bd_pub[i], rule, step) for n in shown}
            low = c["total"].start - (c["phys"].stop - 1) - (c["rt"].stop - 1)
            high = (c["total"].stop - 1) - c["phys"].start - c["rt"].start
            possible = [k for k in range(1, 5) if low <= k <= high]
            assert secl[i] in possible
            pinned += len(possible) == 1
        return pinned

    class WholeNumbers(DisclosureRule):  # the rule before the rate step
        def round_rate(self, rate, bed_days, minimum=None):
            return rate.round(self.rate_decimals)

    assert recovered(WholeNumbers(), lambda b: 1.0) >= 25
    assert recovered(RULE, lambda b: float(RULE.rate_step(b))) == 0


def test_rate_step_follows_the_published_bed_days():
    assert list(RULE.rate_step([600.0, 1000.0, 2000.0, 5000.0, 60000.0])) == [10, 5, 5, 1, 1]
    assert RULE.rate_step(60000.0, minimum=0.1) == pytest.approx(0.1)
    assert np.isnan(RULE.rate_step(0.0))
    assert DisclosureRule(internal=True).round_rate(23.456, 600.0) == 23.456


def _spc(baseline_events: list[int], bd: float = 900.0):
    import rrp_eval as rrp
    from rrp_eval.evaluate.trust import MeasureSPC

    counts = np.array([*baseline_events, 6, 7, 5, 8, 9, 6, 7, 5, 6, 8, 7, 9], dtype=float)
    n = len(counts)
    beds = np.full(n, bd) + np.arange(n) * 7
    months = pd.date_range("2021-01-01", periods=n, freq="MS")
    series = pd.DataFrame(
        {
            "month": months,
            "count": counts,
            "occupied_bed_days": beds,
            "rate_per_1000_obd": counts / beds * 1000,
        }
    )
    res = rrp.u_chart(counts, beds, multiply=1000, freeze=len(baseline_events), dates=months)
    return MeasureSPC("T1", "seclusion", "participating wards", series, res)


def test_an_spc_row_with_under_five_baseline_events_is_withheld():
    spc = _spc([0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0])  # 3 events in 12 baseline months
    exact = spc.row()
    assert exact["mean"] == pytest.approx(3 / spc.baseline["occupied_bed_days"].sum() * 1000)
    shared = spc.row(RULE)
    assert all(math.isnan(shared[k]) for k in ("mean", "lpl", "upl"))
    assert shared["variation_icon"] == exact["variation_icon"]  # the signal is not a count
    assert spc.row(DisclosureRule(internal=True))["mean"] == exact["mean"]


def test_spc_centre_and_limits_pin_neither_the_baseline_count_nor_a_months_bed_days():
    """Issue 14: centre × bed days gave exact baseline counts, and a u chart's limits give
    each month's bed days (n = 9·centre/(UCL − centre)² per 1,000)."""
    spc = _spc([3, 2, 4, 3, 2, 5, 3, 4, 2, 3, 4, 3])
    shared = spc.controlled(RULE).result.frame
    base_bd = _published_bed_days(spc.baseline["occupied_bed_days"].to_numpy()).sum()
    step = float(RULE.rate_step(base_bd))
    centre = shared["centre"].iloc[0]
    found = _candidates(centre, base_bd, DisclosureRule(round_to=5 * 12), step)
    assert int(spc.baseline["count"].sum()) in found and len(found) >= RULE.round_to
    # exact limits give every month's bed days to within a bed day
    exact = spc.result.frame
    n_exact = 9 * exact["centre"] / (exact["ucl"] - exact["centre"]) ** 2 * 1000
    assert (abs(n_exact - spc.series["occupied_bed_days"]) < 1).all()
    bd_pub = _published_bed_days(spc.series["occupied_bed_days"].to_numpy())
    for i in range(len(shared)):
        s_c = step
        s_u = float(RULE.rate_step(bd_pub[i]))
        c, u = shared["centre"].iloc[i], shared["ucl"].iloc[i]
        lows, highs = (c - s_c / 2, u + s_u / 2), (c + s_c / 2, u - s_u / 2)
        n_low = 9 * lows[0] / (lows[1] - lows[0]) ** 2 * 1000
        gap = highs[1] - highs[0]
        n_high = math.inf if gap <= 0 else 9 * highs[0] / gap**2 * 1000
        assert n_low <= spc.series["occupied_bed_days"].iloc[i] <= n_high
        assert n_high - n_low >= RULE.round_to


def _small_comparison_ward(tmp_path):
    """Trust A's comparison ward W2 (~250 bed days a month) has 1-4 events every month."""
    import rrp_eval as rrp
    from tests.datafiles import write_programme

    rows = [
        "trust_code,ward_id,month,occupied_bed_days,physical_restraint,prone_restraint,"
        "seclusion,rapid_tranquillisation"
    ]
    for trust, ward, bd in (("RXA", "W1", 550), ("RXA", "W2", 250), ("RXB", "001", 500)):
        for m in range(1, 25):
            month = f"{2021 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}"
            phys = 1 + m % 4 if ward == "W2" else 10 + m % 3
            rows.append(f"{trust},{ward},{month},{bd + m},{phys},{m % 2},{m % 4},{m % 3}")
    data = write_programme(tmp_path, ward_month="\n".join(rows) + "\n")
    return rrp.load_programme(data)


def test_the_glance_figure_does_not_draw_a_small_wards_exact_rates(tmp_path):
    """Issue 14: all 30 monthly counts of one small comparison ward were read back from the
    glance PNG's pixels."""
    import matplotlib.pyplot as plt

    import rrp_eval as rrp
    from rrp_eval.show.programme import glance_figure

    programme = _small_comparison_ward(tmp_path)
    prog = rrp.evaluate_programme(programme)
    for rule, drawn in ((RULE, False), (DisclosureRule(internal=True), True)):
        fig, _ = glance_figure(prog, rule, "physical_restraint")
        lines = {ln.get_label(): ln.get_ydata() for ax in fig.axes for ln in ax.get_lines()}
        comparison = np.asarray(lines["comparison wards"], dtype=float)
        assert bool(np.isfinite(comparison).any()) == drawn  # every month has 1-4 events
        assert np.isfinite(np.asarray(lines["participating wards"], dtype=float)).all()
        plt.close(fig)


def test_funnel_and_caterpillar_leave_out_a_trust_with_one_to_four_events(tmp_path):
    """An exact Poisson interval's width (or a funnel point at bed days and rate) gives the
    count: a trust with 1-4 events in the months plotted is left out of both, and says so."""
    import matplotlib.pyplot as plt

    import rrp_eval as rrp
    from rrp_eval import show

    prog = rrp.evaluate_programme(_small_comparison_ward(tmp_path))
    # prone restraint: m % 2 per ward-month; over 12 months RXB has 6, RXA 12: cut RXB to 3
    wm = prog.data.ward_month
    recent = wm["month"] > wm["month"].max() - pd.DateOffset(months=12)
    keep = ~(recent & (wm.trust_code == "RXB") & (wm["month"].dt.month > 6))
    wm.loc[~keep, "prone_restraint"] = 0
    assert prog.recent_totals("prone_restraint").loc["RXB", "prone_restraint"] == 3
    shared = show.programme.funnel(prog, RULE, "prone_restraint")
    internal = show.programme.funnel(prog, DisclosureRule(internal=True), "prone_restraint")
    alts = {id(s): " ".join(p.alt for p in s.parts) for s in (shared, internal)}
    assert "Caterpillar plot of 1 trusts'" in alts[id(shared)] and "not shown" in shared.text
    assert "Caterpillar plot of 2 trusts'" in alts[id(internal)]
    assert "not shown" not in internal.text
    for section in (shared, internal):
        caterpillar = section.figures[-1]
        labels = [t.get_text() for ax in caterpillar.axes for t in ax.get_yticklabels()]
        assert ("RXB" in labels) is (section is internal)
    plt.close("all")


def test_a_glance_with_no_series_draws_no_empty_legend():
    """Every trust failed: no line to label, and no matplotlib warning on the user's screen."""
    import warnings

    import matplotlib.pyplot as plt

    from rrp_eval.plots import plot_glance

    empty = pd.DataFrame(columns=["month", "group", "rate"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_glance([("0", "trusts")], ("No pooled estimate", "none"), empty, title="t")
    assert fig.axes[0].get_legend() is None
    plt.close(fig)
