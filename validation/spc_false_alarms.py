"""How often a Making Data Count chart signals after the start when nothing changed (issue 16).

For stable series of monthly counts (a constant rate, Poisson or gamma-Poisson with dispersion
φ: variance φ × mean) with constant bed days, the share of charts that show at least one
special cause among the months after a frozen baseline, for the u chart and Laney's u′ chart
built as the trust reports build them (centre line and σ_z from the baseline). Each cell is
10,000 simulated charts (`rrp_eval.models.spc.false_alarm_rate`, whose vectorised rules are
tested against the chart functions' own labels).

Run: ``python validation/spc_false_alarms.py``; writes ``spc_false_alarms.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rrp_eval.models.spc import false_alarm_rate

HERE = Path(__file__).resolve().parent


def main() -> None:
    t0 = time.perf_counter()
    lines = [
        "# False alarms of the Making Data Count rules on stable series",
        "",
        "Share (%) of charts with at least one special cause after the frozen baseline when "
        "the rate never changed (`validation/spc_false_alarms.py`; 10,000 charts a cell, Monte "
        "Carlo SE at most 0.5 points). Events per month at the baseline rate; φ the "
        "over-dispersion of the counts (1 = Poisson).",
        "",
        "| baseline + after (months) | events / month | φ | u chart | u′ chart |",
        "|---|---:|---:|---:|---:|",
    ]
    for base, post in ((12, 12), (24, 24), (24, 36)):
        for mu in (5, 20, 150):
            for phi in (1.0, 1.5, 3.0):
                e = np.full(base + post, 1000.0)
                cells = [
                    false_alarm_rate(mu / 1000, e, base, phi, laney, n_sim=10_000)
                    for laney in (False, True)
                ]
                lines.append(
                    f"| {base} + {post} | {mu} | {phi:g} | {100 * cells[0]:.0f} | "
                    f"{100 * cells[1]:.0f} |"
                )
    lines += ["", f"{time.perf_counter() - t0:.0f} s.", ""]
    text = "\n".join(lines)
    (HERE / "spc_false_alarms.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
