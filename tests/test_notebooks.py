"""Every notebook runs through the same runner analysts use, in the project's own kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from cjlib.report import run_notebooks

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = run_notebooks(NOTEBOOKS, out=out, run_id="test")
    return result.folder, result.failures


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


def test_no_customer_identifiers_in_any_html(run_folder):
    """Reports hold aggregates only: no sample customer id (C0001...C5000) appears in the HTML."""
    import re

    folder, _ = run_folder
    for page in folder.glob("*.html"):
        found = re.findall(r"\bC\d{4}\b", page.read_text())
        assert not found, f"{page.name} shows customer ids {found[:3]}"


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
    result = run_notebooks(
        NOTEBOOKS[:1], out=tmp_path, run_id="bad", parameters={"stage_model": "six_stage"}
    )
    folder, failures = result.folder, result.failures  # fmt: skip
    assert list(failures) == [NOTEBOOKS[0].stem]
    assert "stage model preset must be one of" in failures[NOTEBOOKS[0].stem]
    html = (folder / f"{NOTEBOOKS[0].stem}.html").read_text()
    assert "six_stage" in html


def test_ga4_example_parameters_on_a_ga4_shaped_export(tmp_path):
    """notebooks/params/ga4_export.yaml works on the sample rewritten as a GA4 export."""
    import pandas as pd

    from cjlib.report import read_glued

    events = pd.read_csv(ROOT / "data" / "events.csv")
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    ga4 = pd.DataFrame(
        {
            "user_pseudo_id": events["customer_id"],
            "event_timestamp": (stamps - pd.Timestamp("1970-01-01", tz="UTC"))
            // pd.Timedelta("1us"),
            "event_name": events["event"],
            "traffic_source_medium": events["channel"],
            "ecommerce_purchase_revenue": events["revenue"],
        }
    )
    path = tmp_path / "ga4.parquet"
    ga4.to_parquet(path)
    params = yaml.safe_load((ROOT / "notebooks" / "params" / "ga4_export.yaml").read_text())
    params["events_path"] = str(path)
    result = run_notebooks(NOTEBOOKS[:1], out=tmp_path / "r", run_id="ga4", parameters=params)
    folder, failures = result.folder, result.failures
    assert failures == {}
    results = read_glued(folder / f"{NOTEBOOKS[0].stem}.ipynb")
    assert results["rows_loaded"][0]["rows_loaded"] == len(events)
    reached = {r["stage"]: r["reached"] for r in results["furthest_stage"]}
    assert reached["awareness"] == events["customer_id"].nunique()
    run = json.loads((folder / "run.json").read_text())
    assert [i["path"] for i in run["inputs"]] == [str(path)], "the file actually read is listed"


CA_PATHS = ROOT.parent / "shared" / "datasets" / "channelattribution_Data.csv"


@pytest.mark.skipif(not CA_PATHS.exists(), reason="../shared/datasets is absent")
def test_attribution_notebook_on_a_path_table(tmp_path):
    """The attribution notebook on ChannelAttribution's demo path table (paths_path instead of
    events): its journeys are the file's totals (19,785 conversions, 88,387 journeys = the sums
    of total_conversions and of total_conversions + total_null), and the report lists the file."""
    from cjlib.report import read_glued

    nb = next(n for n in NOTEBOOKS if n.stem == "02_attribution")
    params = {"paths_path": str(CA_PATHS), "costs_path": "", "n_boot": 20}
    result = run_notebooks([nb], out=tmp_path / "r", run_id="paths", parameters=params)
    assert result.failures == {}
    glued = read_glued(result.folder / f"{nb.stem}.ipynb")
    assert glued["journeys"]["conversions"] == 19_785
    assert glued["journeys"]["journeys"] == 88_387
    html = (result.folder / f"{nb.stem}.html").read_text()
    assert "channelattribution_Data.csv" in html and "credits" in html
