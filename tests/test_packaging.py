"""Packaging: environment.yml mirrors pyproject.toml, import stays light, CI runs make test."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import yaml
from conftest import ROOT


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("spark", "dev"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) - {"-e ."} == wanted, "environment.yml pip list drifted from pyproject.toml"
    assert "-e ." in pip
    assert "python=3.11" in env["dependencies"]


def test_fragile_majors_are_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("ibis-framework", "duckdb", "sqlglot", "papermill", "plotly"):
        spec = next(d for d in deps if d.startswith(name))
        assert "<" in spec, f"{name} needs an upper bound: {spec}"


def test_import_is_light():
    """`import cjlib` must not load the engine, scipy or scikit-learn, and stays under 0.5 s."""
    code = (
        "import sys, time; t = time.perf_counter(); import cjlib; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('ibis', 'duckdb', 'pyspark', 'scipy', 'sklearn', 'matplotlib', "
        "'pandas') if m in sys.modules]; print(dt, heavy)"
    )
    times = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split(" ", 1)
        times.append(float(out[0]))
        assert out[1].strip() == "[]", f"import cjlib loaded {out[1]}"
    assert min(times) < 0.5, f"import cjlib took {min(times):.2f} s"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make report" in readme and "make test" in readme
    head = readme[: readme.index("make test") + 20]
    assert len(head) < 2500, "the README must lead with the two commands"
