"""notebooks/03_ab_test.ipynb through the runner, with the persona file and the example YAML."""

from __future__ import annotations

import json

import yaml
from conftest import ROOT

from cjlib.report import read_glued, run_notebooks

NOTEBOOK = ROOT / "notebooks" / "03_ab_test.ipynb"


def test_ab_notebook_with_personas_recovers_the_planted_lift(tmp_path):
    """The example parameters (persona file, bootstrap, scope 'all') on the sample: the report
    ships the treatment, its conversion interval holds the planted lift (data/truth.json), the
    persona segments are there, and no customer id reaches the HTML."""
    params = yaml.safe_load((ROOT / "notebooks" / "params" / "03_ab_test.yaml").read_text())
    result = run_notebooks([NOTEBOOK], out=tmp_path, run_id="ab", parameters=params)
    assert result.failures == {}
    glued = read_glued(result.folder / "03_ab_test.ipynb")
    truth = json.loads((ROOT / "data" / "truth.json").read_text())["experiment"]
    assert glued["decision"] == "ship"
    assert glued["headline"].startswith("Decision: ship.")
    conv = next(r for r in glued["comparisons"] if r["metric"] == "conversion")
    assert conv["lift_low"] < truth["relative_lift_conversion"] < conv["lift_high"]
    assert conv["boot_lift_low"] < truth["relative_lift_conversion"] < conv["boot_lift_high"]
    assert {r["dimension"] for r in glued["segments"]} >= {"persona", "device"}
    assert all(c["status"] == "pass" for c in glued["checks"])
    html = (result.folder / "03_ab_test.html").read_text()
    assert "Decision: ship" in html and "Sample-ratio" not in html
    assert "C0001" not in html and "import cjlib" not in html
