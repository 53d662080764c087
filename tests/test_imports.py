"""Every module imports cleanly and without side effects (no module can rot unnoticed)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import rrp_eval

MODULES = sorted(m.name for m in pkgutil.walk_packages(rrp_eval.__path__, prefix="rrp_eval."))


def test_the_package_has_its_core_modules():
    assert {"rrp_eval.models.its", "rrp_eval.cli", "rrp_eval.evaluate.tables"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


@pytest.mark.slow
def test_import_has_no_side_effects(tmp_path):
    """Importing the package writes nothing, prints nothing and draws nothing."""
    code = "import rrp_eval, sys; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_version_is_exposed():
    from importlib.metadata import version

    assert rrp_eval.__version__ == version("rrp-eval")
