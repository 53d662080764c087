"""An analyst's moves in a kernel (issue 17): open the trust evaluation, inspect an ITS,
refit it with another phase-in and plot it; every number on the page is an object to use."""

from __future__ import annotations

import json

import nbformat
import papermill as pm

CELLS = [
    "import rrp_eval as rrp\n"
    "programme = rrp.load_programme()\n"
    'trust = rrp.evaluate_trust(programme, "X01", sensitivity=False)\n'
    "trust",
    'trust.its["seclusion"].summary()',
    'refit = trust.refit("seclusion", phase_in=3)\nrefit',
    "fig = refit.plot()\n"
    "import json\n"
    "print(json.dumps({\n"
    '    "phase_in": refit.result.spec.phase_in,\n'
    '    "was": trust.its["seclusion"].result.spec.phase_in,\n'
    '    "figure": type(fig).__name__,\n'
    '    "rule": rrp.DisclosureRule.from_params(programme.params.disclosure).internal,\n'
    "}))",
    "from rrp_eval import show\n"
    "rule = rrp.DisclosureRule.from_params(programme.params.disclosure)\n"
    "show.trust.its_summary(trust, rule)",
]


def test_an_analyst_inspects_refits_and_plots_in_a_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    path, out = tmp_path / "analyst.ipynb", tmp_path / "analyst.out.ipynb"
    nbformat.write(nb, path)
    pm.execute_notebook(str(path), str(out), kernel_name="python3", progress_bar=False)
    cells = nbformat.read(out, as_version=4).cells
    first = cells[0].outputs[0]["data"]["text/plain"]
    assert first.startswith("TrustEvaluation(X01") and len(first.splitlines()) <= 6
    summary = cells[1].outputs[0]["data"]
    assert "<table" in summary["text/html"] and "level_change" in summary["text/plain"]
    assert cells[2].outputs[0]["data"]["text/plain"].startswith("MeasureITS(X01, seclusion, ok")
    printed = next(o for o in cells[3].outputs if o.get("name") == "stdout")["text"]
    moves = json.loads(printed.strip().splitlines()[-1])
    assert moves == {"phase_in": 3, "was": 0, "figure": "Figure", "rule": False}
    shown = [o for o in cells[4].outputs if "text/html" in o.get("data", {})]
    assert shown and "Interrupted time series" in shown[0]["data"]["text/html"]
