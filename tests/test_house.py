"""House rules from DESIGN.md, enforced: lint, notebook template, module size, no stray output."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PARAM_LINE = re.compile(
    r"^[a-z_][a-z0-9_]*: [A-Za-z_][\w\[\], ]* = .+  # \S.*$"
)  # papermill reads no "|"


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "cjlib", "tests", "notebooks", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_check_clean():
    result = _ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean():
    result = _ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_stay_small():
    for path in (ROOT / "cjlib").rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 420, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"
    assert not (ROOT / "cjlib" / "utils.py").exists()


def test_analysis_modules_do_not_plot():
    for path in (ROOT / "cjlib").rglob("*.py"):
        if "plots" in path.parts or "report" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from) (matplotlib|plotly|seaborn)", text, re.M), path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_template(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    assert re.match(r"^\d\d_[a-z_]+$", path.stem), "notebooks are named NN_<analysis>"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    header = "".join(cells[0]["source"])
    for word in ("Question", "Inputs", "Outputs", "How to run"):
        assert word in header, f"header lacks {word!r}"
    params = cells[1]
    assert params["cell_type"] == "code" and "parameters" in params["metadata"].get("tags", [])
    lines = "".join(params["source"]).splitlines()
    for line in lines:
        assert PARAM_LINE.match(line), f"parameter line not 'name: type = literal  # help': {line}"
        ast.literal_eval(line.split("=", 1)[1].split("  #", 1)[0].strip())
    from cjlib.report import notebook_parameters

    assert len(notebook_parameters(path)) == len(lines), "papermill must read every parameter"
    for cell in cells:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "strip outputs"
            assert not re.search(r"^\s*(def|class)\s", src, re.M), "no def/class in notebooks"
            assert "pip install" not in src
    titles = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert any(t.startswith("## Findings") for t in titles)
    assert "## Methodology" in titles[-1] or any("## Methodology" in t for t in titles[-2:])


def test_example_parameter_files_name_real_parameters():
    for path in sorted((ROOT / "notebooks" / "params").glob("*.yaml")):
        import yaml

        params = yaml.safe_load(path.read_text())
        stem = path.stem if (ROOT / "notebooks" / f"{path.stem}.ipynb").exists() else None
        targets = [ROOT / "notebooks" / f"{stem}.ipynb"] if stem else NOTEBOOKS
        declared: set[str] = set()
        for nb_path in targets:  # the runner gives each notebook the parameters it declares
            cell = json.loads(nb_path.read_text())["cells"][1]
            declared |= {line.split(":", 1)[0] for line in "".join(cell["source"]).splitlines()}
        assert set(params) <= declared, f"{path.name}: unknown {sorted(set(params) - declared)}"


def test_every_report_table_reaches_the_html():
    """``report.table`` returns a styled table that Jupyter shows only as a cell's last
    expression; elsewhere (inside an ``if``, before other statements) it must be wrapped in
    ``display``. Five tables (RFM, segment funnels, NPS/CSAT by group, wave tests, comment
    terms) were computed and never shown before this test."""
    lost = []
    for path in NOTEBOOKS:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse("".join(cell["source"]))
            last = tree.body[-1] if tree.body else None
            for node in ast.walk(tree):
                call = node.value if isinstance(node, ast.Expr) else None
                func = call.func if isinstance(call, ast.Call) else None
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "table"
                    and getattr(func.value, "id", "") == "report"
                    and node is not last
                ):
                    lost.append(f"{path.name} cell {i} line {node.lineno}")
    assert not lost, f"report.table results never displayed: {lost}"
