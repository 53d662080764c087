"""The examples in the public docstrings run (DESIGN.md: docstrings true, examples that run)."""

from __future__ import annotations

import doctest

import pytest

import rrp_eval.evaluate.programme
import rrp_eval.evaluate.quality
import rrp_eval.evaluate.trust
import rrp_eval.models.its
import rrp_eval.models.meta

MODULES = [
    rrp_eval.models.its,
    rrp_eval.models.meta,
    rrp_eval.evaluate.trust,
    rrp_eval.evaluate.programme,
    rrp_eval.evaluate.quality,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no example"
    assert result.failed == 0
