"""What a page shows: ``show.<page>.<section>(evaluation, rule)`` returns a Section that Jupyter
displays (headings, text, tables and figures in order). The disclosure rule is a required
argument of every section: forgetting it is a TypeError, never a leak.

Pages: :mod:`~rrp_eval.show.trust`, :mod:`~rrp_eval.show.programme`,
:mod:`~rrp_eval.show.context` (provider-level context), :mod:`~rrp_eval.show.quality` and
:mod:`~rrp_eval.show.planning` (the planning notebook).
"""

from rrp_eval.show import context, planning, programme, quality, trust
from rrp_eval.show.display import Section

__all__ = ["Section", "context", "planning", "programme", "quality", "trust"]
