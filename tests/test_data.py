"""The committed sample in data/ is exactly what `make data` regenerates, and it loads cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

from conftest import DATA, ROOT

import cjlib as cj
from cjlib.schema import DataQualityWarning

TABLES = ("events", "customers", "experiments", "surveys", "costs")


def test_make_data_reproduces_committed_files(tmp_path):
    """Same command and seed as the Makefile's `data` target -> byte-identical files."""
    makefile = (ROOT / "Makefile").read_text().splitlines()

    def var(name: str) -> str:
        return next(line.split(":=")[1].strip() for line in makefile if line.startswith(name))

    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "cjlib.synth", "--out", str(out), "--quiet"]
    cmd += ["--customers", var("SAMPLE_CUSTOMERS"), "--seed", var("SAMPLE_SEED")]
    subprocess.run(cmd, check=True, capture_output=True)
    made = sorted(p.name for p in out.iterdir())
    committed = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    assert made == committed
    for name in made:
        assert (out / name).read_bytes() == (DATA / name).read_bytes(), f"{name} differs"


def test_sample_loads_without_problems(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)  # no duplicates or dropped rows
        loaded = {t: cj.load_sample(t, engine=engine) for t in TABLES}
    for table, lt in loaded.items():
        assert lt.report.dropped == {} and lt.report.duplicates == 0, table
        assert lt.report.rows_loaded > 0
    assert loaded["customers"].report.rows_loaded == 5000


def test_sample_matches_planted_stage_rates(engine):
    """Furthest stage on the sample agrees with the truth the generator recorded."""
    truth = json.loads((DATA / "truth.json").read_text())["stage_rates"]
    furthest = cj.furthest_stage(cj.load_sample("events", engine=engine)).set_index("stage")
    reached = furthest["reached"]
    assert (
        reached["consideration"] / reached["awareness"]
        == truth["awareness_to_consideration_realised"]
    )
    assert (
        abs(
            reached["purchase"] / reached["consideration"]
            - truth["consideration_to_purchase_realised"]
        )
        < 0.01
    )
