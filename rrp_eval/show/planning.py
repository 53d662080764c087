"""The planning notebook's sections: a trust's power by follow-up and rate ratio, and the
programme's power by number of trusts (``rrp_eval.evaluate.planning``). Nothing here shows a
count or bed-day figure: powers, rate ratios, months, and the baseline's dispersion and
autocorrelation only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rrp_eval.disclosure import DisclosureRule
from rrp_eval.evaluate.planning import AIMS, TARGET_POWER, TrustPlan
from rrp_eval.show.display import figure, heading, paragraph, section, table


@section
def trust_plan(plan: TrustPlan, rule: DisclosureRule) -> None:
    """The trust's power for a 25% and a 33% fall by months of follow-up, the smallest fall
    it can detect with 80% power, and its power curve."""
    import matplotlib.pyplot as plt

    n = plan.noise
    heading(f"Power of {plan.code}'s evaluation", 2)
    paragraph(
        f"Simulated from {plan.baseline_months} baseline months of {plan.measure.replace('_', ' ')}"
        f" (Pearson dispersion {n.dispersion:.2f}, lag-1 autocorrelation {n.lag1:.2f}) with the "
        "model and parameters the evaluation uses; a fall counts as shown when the 95% interval "
        "of the rate ratio 12 months after the start lies below 1."
    )
    t = plan.table()
    shown = pd.DataFrame(
        {
            "Months after the start": t["follow_up"],
            "Power, 25% fall": t["power_rr_0_75"].map("{:.0%}".format),
            "Power, 33% fall": t["power_rr_0_67"].map("{:.0%}".format),
            "Detectable with 80% power (rate ratio)": t["mde_rr"].map(
                lambda v: f"{v:.2f}" if np.isfinite(v) else "beyond the range simulated"
            ),
        }
    )
    table(shown, caption=f"{plan.code}: power by months of follow-up")
    for aim, months in plan.months_needed.items():
        paragraph(
            f"80% power for a {1 - aim:.0%} fall: "
            + (
                f"{months} months after the start."
                if months
                else "not within the follow-ups simulated."
            )
        )
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for f, part in plan.power.groupby("follow_up"):
        part = part.sort_values("rr")
        ax.errorbar(
            part["rr"], part["power"], yerr=1.96 * part["mc_se"], marker="o", label=f"{f} months"
        )
    ax.axhline(TARGET_POWER, color="grey", linestyle="--", linewidth=1)
    for aim in AIMS:
        ax.axvline(aim, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("True rate ratio 12 months after the start (below 1: a fall)")
    ax.set_ylabel("Power")
    ax.set_ylim(0, 1)
    ax.legend(title="Follow-up", fontsize=8)
    figure(fig, f"Power curves of {plan.code}'s evaluation by months of follow-up")


@section
def programme_plan(programme: pd.DataFrame, rule: DisclosureRule, tau: float) -> None:
    """The pooled estimate's power for an average 25% fall by trusts and months."""
    heading("Power of the programme's pooled estimate", 2)
    paragraph(
        "How often the pre-specified pooled estimate would show a fall when the programme's "
        f"average is a 25% fall and trusts' true effects spread about it (SD {tau:g} on the log "
        "scale), drawing trusts like the ones planned."
    )
    wide = programme.pivot_table(index="n_trusts", columns="follow_up", values="power")
    shown = wide.map("{:.0%}".format)
    shown.columns = [f"{c} months" for c in shown.columns]
    shown.index.name = "Trusts"
    table(shown.reset_index(), caption="Programme: power by number of trusts and months")
    err = 1.96 * float(programme["mc_se"].max()) if len(programme) else math.nan
    paragraph(f"Monte Carlo error up to ±{err:.0%}.")
