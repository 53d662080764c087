"""Pure statistics: control charts, interrupted time series, controlled panel models and
meta-analysis. Results follow one protocol (``rrp_eval.models.results``)."""
