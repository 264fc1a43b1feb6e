"""Every notebook runs through the same runner analysts use, in the project's own kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from cjlib.report import run_notebooks

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    folder, failures = run_notebooks(NOTEBOOKS, out=out, run_id="test")
    return folder, failures


def test_all_notebooks_run(run_folder):
    folder, failures = run_folder
    assert failures == {}
    for nb in NOTEBOOKS:
        assert (folder / f"{nb.stem}.html").stat().st_size > 10_000
        assert (folder / f"{nb.stem}.ipynb").exists()
    run = json.loads((folder / "run.json").read_text())
    assert run["failures"] == {} and run["inputs"], "inputs are fingerprinted"
    assert all(len(i["sha256"]) == 64 for i in run["inputs"])
    assert (folder / "index.html").exists()
    assert not list(folder.parent.glob(".*partial")), "no half-written run folder left"


def test_kernel_is_the_projects_interpreter(run_folder):
    """The kernel that ran the notebook is this environment's Python, not a stale user kernel."""
    folder, _ = run_folder
    results = json.loads((folder / "00_data_check.results.json").read_text())
    assert Path(results["environment"]["executable"]) == Path(sys.executable)


def test_data_check_results_and_html(run_folder):
    folder, _ = run_folder
    results = json.loads((folder / "00_data_check.results.json").read_text())
    assert results["headline"].endswith(")."), results["headline"]
    furthest = {row["stage"]: row for row in results["furthest_stage"]}
    assert furthest["awareness"]["reached_share"] == 1.0
    assert 0.5 < furthest["consideration"]["reached_share"] < 0.75
    html = (folder / "00_data_check.html").read_text()
    assert "import cjlib" not in html, "the report hides code"
    assert "Stage transitions" in html and "<img" in html
    assert "application/vnd.cjlib.glue+json" not in html


def test_a_failing_notebook_still_gets_its_html(tmp_path):
    folder, failures = run_notebooks(NOTEBOOKS[:1], out=tmp_path, run_id="bad",
                                     parameters={"stage_model": "six_stage"})  # fmt: skip
    assert list(failures) == [NOTEBOOKS[0].stem]
    assert "stage model preset must be one of" in failures[NOTEBOOKS[0].stem]
    html = (folder / f"{NOTEBOOKS[0].stem}.html").read_text()
    assert "six_stage" in html
