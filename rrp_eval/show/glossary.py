"""The glossary: every technical term the reports use, in plain words. The methods page lists
it all; each report ends with the entries for the terms it uses."""

from __future__ import annotations

#: id (the anchor ``g-<id>`` on methods.html) -> (term, definition)
GLOSSARY: dict[str, tuple[str, str]] = {
    "rate-ratio": (
        "Rate ratio",
        (
            "The rate after joining divided by the rate expected without the programme. 0.80 "
            "means 20% lower; 1 means no change; 1.20 means 20% higher."
        ),
    ),
    "confidence-interval": (
        "95% confidence interval (CI)",
        (
            "The range of values compatible with the data; an interval that includes 1 cannot "
            "rule out no change."
        ),
    ),
    "power": (
        "Power for the aim",
        (
            "How often an evaluation with this trust's data would show a real fall of a "
            "quarter, found by simulating the evaluation many times from the trust's months "
            "before it joined. Below 80% the data may not show the aim even if it was met."
        ),
    ),
    "aim-probability": (
        "Probability of meeting the aim",
        (
            "How likely it is that the true change {horizon} months after joining is a fall of "
            "at least a quarter, reading the trust's estimate together with every trust's: "
            "an estimate from little data is pulled towards the programme's average. A trust's "
            "probability moves with the programme's."
        ),
    ),
    "prediction-interval": (
        "Prediction interval",
        (
            "Where a new trust like these could expect its own rate ratio to fall: wider than the"
            " confidence interval of the average."
        ),
    ),
    "counterfactual": (
        "Counterfactual",
        (
            "What the model expects would have happened without the programme: the earlier trend "
            "and season carried forward."
        ),
    ),
    "its": (
        "Interrupted time series (ITS)",
        (
            "A model of a monthly series before and after a start date that estimates the change "
            "at the start (level change) and in the trend after it (slope change)."
        ),
    ),
    "level-change": (
        "Level change",
        ("The rate ratio at the start (or at the end of the phase-in)."),
    ),
    "slope-change": (
        "Slope change",
        (
            "How much the rate ratio changes each month after the start, relative to the "
            "counterfactual."
        ),
    ),
    "horizon": (
        "Effect at {horizon} months",
        ("The rate ratio {horizon} months after joining, combining the level and slope changes."),
    ),
    "phase-in": (
        "Phase-in",
        ("Months just after joining left out of the model while the change beds in."),
    ),
    "events-averted": (
        "Episodes averted",
        (
            "The expected episodes without the programme minus those observed over the months "
            "after the start; a negative number means extra episodes."
        ),
    ),
    "overdispersion": (
        "Over-dispersion (φ)",
        (
            "Months varying more than chance alone would make them; φ is how many times more. "
            "Quasi-Poisson and negative binomial models allow for it."
        ),
    ),
    "autocorrelation": (
        "Autocorrelation, AR(1), ARMA",
        (
            "Neighbouring months being more alike than chance; AR(1) and ARMA(1,1) are the "
            "patterns the model allows for."
        ),
    ),
    "stacked": (
        "Stacked and summed designs",
        (
            "Summed: one series of a trust's wards that joined together. Stacked: each ward's own"
            " series, lined up on its own start, modelled together; its month counts are ward-"
            "months."
        ),
    ),
    "comparison": (
        "Comparison ward",
        (
            "A ward that never joined; it is not part of its trust's series and is used only by "
            "the controlled models."
        ),
    ),
    "u-chart": (
        "u chart, u′ chart",
        (
            "Control charts of a rate. Laney's u′ chart widens the limits when the months vary "
            "more than chance alone (usual with large denominators)."
        ),
    ),
    "special-cause": (
        "Special cause, common cause",
        (
            "A special cause is a point or pattern unlikely by chance against the baseline "
            "(improvement or concern by direction); common cause is the usual month-to-month "
            "variation."
        ),
    ),
    "false-alarm": (
        "False-alarm rate",
        (
            "The share of charts like this one that would show a special cause after the start "
            "even if nothing had changed, simulated from the chart's own baseline."
        ),
    ),
    "meta-analysis": (
        "Random-effects meta-analysis, REML, τ², I²",
        (
            "Combines the trusts' estimates allowing their true effects to differ; REML estimates"
            " τ², the variance of the true effects; I² is the share of the spread between trusts "
            "due to real differences rather than chance."
        ),
    ),
    "hartung-knapp": (
        "Hartung–Knapp (modified)",
        (
            "A wider, more honest interval for a meta-analysis of few trusts, never narrower than"
            " the usual one."
        ),
    ),
    "twfe": (
        "Extended two-way fixed effects (TWFE)",
        (
            "A model of every ward-month with a term for each ward and each month, comparing "
            "participating wards with those not (yet) joined."
        ),
    ),
    "gee": (
        "GEE",
        (
            "Generalised estimating equations: a population-average model of the ward panel with "
            "intervals robust to wards' own correlation."
        ),
    ),
    "cs": (
        "Callaway and Sant'Anna",
        (
            "A method that compares each wave of joining wards only with wards not yet treated, "
            "avoiding comparisons that bias two-way fixed-effects models when effects grow over "
            "time."
        ),
    ),
    "funnel": (
        "Funnel plot",
        (
            "Each trust's rate against its bed days, with limits that narrow for larger trusts; a"
            " trust outside the 99.8% limit differs from the programme by more than chance and "
            "the usual spread explain."
        ),
    ),
    "balancing": (
        "Balancing measure",
        (
            "A measure the programme should not worsen (such as self-harm or assaults on staff), "
            "watched for unintended consequences."
        ),
    ),
    "negative-control": (
        "Negative control",
        (
            "A measure the programme should not change; a clear fall in it at the start points to"
            " something other than the programme."
        ),
    ),
    "placebo": (
        "Placebo check",
        (
            "The model refitted with false start dates in the baseline, to see how often a change"
            " as large as the real one appears by chance."
        ),
    ),
    "primary": (
        "Pre-specified, primary, secondary, exploratory",
        (
            "The primary answer (one measure, one effect, one method) was fixed before the "
            "results; secondary and exploratory estimates are context, not separate findings."
        ),
    ),
    "shrinkage": (
        "Shrunken (empirical Bayes) estimates",
        (
            "Ward or trust estimates pulled towards the average in proportion to their noise, so "
            "that small wards' chance extremes are not read as real."
        ),
    ),
}

#: the entries each kind of report ends with
PAGE_TERMS = {
    "trust": (
        "rate-ratio",
        "confidence-interval",
        "power",
        "aim-probability",
        "counterfactual",
        "its",
        "level-change",
        "slope-change",
        "horizon",
        "phase-in",
        "events-averted",
        "overdispersion",
        "autocorrelation",
        "stacked",
        "comparison",
        "u-chart",
        "special-cause",
        "false-alarm",
        "funnel",
        "balancing",
        "negative-control",
        "placebo",
        "primary",
    ),
    "provider": ("u-chart", "special-cause", "overdispersion", "funnel"),
    "programme": (
        "rate-ratio",
        "confidence-interval",
        "prediction-interval",
        "counterfactual",
        "its",
        "level-change",
        "horizon",
        "stacked",
        "comparison",
        "meta-analysis",
        "hartung-knapp",
        "twfe",
        "gee",
        "cs",
        "funnel",
        "special-cause",
        "balancing",
        "primary",
        "shrinkage",
    ),
}


def entries(keys: tuple[str, ...] | list[str], horizon: int = 12) -> list[tuple[str, str, str]]:
    """(id, term, definition) of each key, the horizon filled in."""
    return [
        (k, GLOSSARY[k][0].format(horizon=horizon), GLOSSARY[k][1].format(horizon=horizon))
        for k in keys
    ]
