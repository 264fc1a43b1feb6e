"""Run notebooks into a run folder: executed notebooks, HTML, results.json, index.html, run.json.

The folder is written under a hidden temporary name and renamed when complete, so it appears whole
or not at all. Parameters are checked before any kernel starts. A notebook that fails still gets its
HTML, with the error at the top and the failing cell shown; the other notebooks still run.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cjlib.report.glue import jsonable, read_glued
from cjlib.report.index import title_of, write_index
from cjlib.report.lineage import code_cell, environment, fingerprint, git_commit
from cjlib.report.params import Parameter, assign, notebook_parameters
from cjlib.report.summary import write_summary

__all__ = ["RunResult", "run_notebooks", "find_notebooks", "NOTEBOOKS"]

PROJECT = Path(__file__).resolve().parents[2]
NOTEBOOKS = PROJECT / "notebooks"
_HIDE = "cjlib-hide-input"


@dataclass(frozen=True)
class RunResult:
    """Where the run went, what failed (``{notebook: one-line reason}``) and how long each took."""

    folder: Path
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def find_notebooks(names: Sequence[str | Path] | None = None) -> list[Path]:
    """Notebook paths for names (paths, file names or stems in ``notebooks/``); default: all."""
    if not names:
        found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        if not found:
            raise FileNotFoundError(f"no notebooks in {NOTEBOOKS}")
        return found
    paths = []
    for name in names:
        candidates = [Path(name), NOTEBOOKS / str(name), NOTEBOOKS / f"{name}.ipynb"]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            known = ", ".join(p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb")))
            raise FileNotFoundError(f"notebook {str(name)!r} not found; notebooks: {known}")
        paths.append(hit)
    return paths


def _parameters_cell(declared: Mapping[str, Parameter], given: Mapping[str, Any]) -> Any:
    import nbformat

    rows = ["| parameter | value | meaning |", "|---|---|---|"]
    for name, p in declared.items():
        value = given.get(name, p.default)
        mark = " (set for this run)" if name in given else ""
        help_text = p.help.replace("|", "\\|")
        rows.append(f"| `{name}` | {code_cell(value)}{mark} | {help_text} |")
    text = "**Parameters of this run.**\n\n" + "\n".join(rows)
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": ["cjlib-parameters"]})


def _error_cell(reason: str) -> Any:
    import nbformat

    text = (
        f"<div style='border:2px solid #b00020;padding:0.6em 1em;color:#b00020'><b>This report "
        f"failed and is incomplete.</b> {reason}<br>The cell that failed is shown below with "
        "its error; the sections after it did not run.</div>"
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": ["cjlib-error"]})


def _export_html(nb: Any, target: Path, *, with_code: bool) -> None:
    """HTML without code (but with the code of a failing cell), or with all code."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code" or with_code:
            continue
        failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if not failed:
            cell.metadata.setdefault("tags", []).append(_HIDE)
    exporter = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={_HIDE}), enabled=True)
    with warnings.catch_warnings():  # glue() outputs are meant to be invisible in HTML
        warnings.filterwarnings("ignore", message=".*is not able to be represented")
        body, _ = exporter.from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def _input_files(notebook: Path, declared: Mapping[str, Parameter], given: Mapping) -> list[Path]:
    """Files the run reads: parameter values (defaults or overrides) naming existing files."""
    values = {name: p.default for name, p in declared.items()} | dict(given)
    found = []
    for value in values.values():
        if isinstance(value, str) and value:
            candidate = (notebook.resolve().parent / value).resolve()
            if candidate.is_file():
                found.append(candidate)
    return found


def _heading(nb: Any) -> str | None:
    """The notebook's title: the first ``# heading`` of its first markdown cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    last = next((line for line in reversed(text) if line.strip()), "")
    return f"{type(exc).__name__}: {last}"[:300]


def run_notebooks(
    notebooks: Sequence[str | Path] | None = None,
    *,
    out: str | Path = "reports",
    parameters: Mapping[str, Any] | None = None,
    with_code: bool = False,
    run_id: str | None = None,
    progress: bool = False,
) -> RunResult:
    """Run notebooks (default: all) with ``parameters`` into ``out/<run_id>``.

    Raises :class:`~cjlib.report.params.ParameterError` before any kernel starts when a parameter
    is unknown to every notebook or has the wrong type.
    """
    import nbformat
    import papermill as pm

    paths = find_notebooks(notebooks)
    given = dict(parameters or {})
    per_notebook = assign(paths, given)
    out = Path(out)
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    final = out / run_id
    if final.exists():
        raise FileExistsError(f"run folder {final} exists already; choose another run id")
    tmp = out / f".{run_id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"  # the project's kernelspec before a user's
    os.environ["CJLIB_BATCH"] = "1"  # cjlib progress bars print plain text in batch
    started = dt.datetime.now(dt.UTC)
    failures: dict[str, str] = {}
    seconds: dict[str, float] = {}
    results: dict[str, dict] = {}
    inputs: set[Path] = set()
    titles: dict[str, str] = {}
    try:
        bar = _progress(paths, progress)
        for nb_path in bar:
            if progress:
                bar.set_description(nb_path.stem)
            declared = notebook_parameters(nb_path)
            mine = per_notebook[nb_path]
            inputs.update(_input_files(nb_path, declared, mine))
            executed = tmp / nb_path.name
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(nb_path),
                    str(executed),
                    parameters=mine,
                    kernel_name="python3",
                    cwd=str(nb_path.resolve().parent),
                    progress_bar=progress,
                    log_output=False,
                )
            except Exception as exc:  # one failing notebook must not stop the others
                failures[nb_path.stem] = _one_line(exc)
            seconds[nb_path.stem] = round(time.perf_counter() - t0, 2)
            if not executed.exists():
                continue
            nb = nbformat.read(str(executed), as_version=4)
            results[nb_path.stem] = read_glued(nb)
            titles[nb_path.stem] = _heading(nb) or title_of(nb_path.stem)
            # papermill's own error banners are replaced by ours, which says more
            nb.cells = [
                c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])
            ]
            header = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
            nb.cells.insert(header + 1, _parameters_cell(declared, mine))
            if nb_path.stem in failures:
                nb.cells.insert(0, _error_cell(failures[nb_path.stem]))
            nbformat.write(nb, str(executed))
            _export_html(nb, tmp / f"{nb_path.stem}.html", with_code=False)
            if with_code:
                _export_html(nb, tmp / f"{nb_path.stem}.code.html", with_code=True)
            (tmp / f"{nb_path.stem}.results.json").write_text(
                json.dumps(jsonable(results[nb_path.stem]), indent=2), encoding="utf-8"
            )
        info = {
            "run_id": run_id,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "notebooks": [p.stem for p in paths],
            "titles": titles,
            "parameters": given,
            "parameters_by_notebook": {p.stem: v for p, v in per_notebook.items()},
            "failures": failures,
            "seconds": seconds,
            "git_commit": git_commit(),
            "environment": environment(),
            "inputs": [fingerprint(p) for p in sorted(inputs)],
        }
        (tmp / "run.json").write_text(json.dumps(jsonable(info), indent=2), encoding="utf-8")
        write_index(tmp, paths, results, failures, info, with_code=with_code)
        write_summary(tmp, paths, results, failures, info)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(final, failures, seconds)


def _progress(paths: Sequence[Path], enabled: bool) -> Any:
    if not enabled:
        return paths
    from tqdm.std import tqdm

    return tqdm(paths, unit="notebook", leave=True)
