"""Notebook runner, HTML export, run folders, ``glue()`` and the lineage appendix.

``python -m cjlib.report run [NOTEBOOK ...] [--out DIR] [-p key=value ...] [--with-code]`` runs
notebooks with papermill in the project's own kernel and writes a run folder::

    reports/<run id>/
        <name>.ipynb            executed notebook
        <name>.html             report without code (and <name>.code.html with --with-code)
        <name>.results.json     values the notebook recorded with glue()
        index.html              links with one-line headlines
        run.json                parameters, versions, input fingerprints, failures

The folder is written under a temporary name and renamed when complete, so it appears whole or not
at all. A notebook that fails still gets its HTML; the others still run; the command exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GLUE_MIME",
    "glue",
    "show_markdown",
    "read_glued",
    "environment",
    "lineage",
    "run_notebooks",
    "main",
]

GLUE_MIME = "application/vnd.cjlib.glue+json"
PROJECT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT / "notebooks"


def _jsonable(value: Any) -> Any:
    """Plain JSON for numbers, strings, lists, dicts, numpy scalars, DataFrames (records)."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def glue(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` for results.json (invisible in the HTML report)."""
    from IPython.display import display

    display({GLUE_MIME: {"name": str(name), "value": _jsonable(value)}}, raw=True)


def show_markdown(text: str) -> None:
    """Display generated Markdown (findings, appendix) as rendered text in the report."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(
    df: Any,
    *,
    percent: Sequence[str] = (),
    decimals: Mapping[str, int] | None = None,
    caption: str | None = None,
) -> Any:
    """A report-ready view of a result table: no index, thousands separators, percentages.

    ``percent`` columns hold shares (0-1) shown as ``12.3 %``; other numbers get separators,
    integers without decimals, floats with ``decimals[column]`` places (default 2). Text is left
    aligned. Returns a pandas ``Styler`` (the numbers in ``df`` are unchanged).
    """
    import pandas as pd

    decimals = dict(decimals or {})
    formats: dict[str, Any] = {}
    for col in df.columns:
        if col in percent:
            formats[col] = "{:.1%}"
        elif pd.api.types.is_integer_dtype(df[col]):
            formats[col] = "{:,}"
        elif pd.api.types.is_float_dtype(df[col]):
            formats[col] = "{:,.{}f}".replace("{}", str(decimals.get(col, 2)))
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    styler = df.style.format(formats, na_rep="—").hide(axis="index")
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    return styler.set_caption(caption) if caption else styler


def show_plotly(fig: Any) -> None:
    """Display a plotly figure so it renders in JupyterLab and, offline, in the exported HTML.

    The ``notebook`` renderer inlines plotly.js into the notebook once (about 5 MB), so the HTML
    report needs no network; ``plotly_mimetype`` keeps it interactive in JupyterLab.
    """
    fig.show(renderer="plotly_mimetype+notebook")


def read_glued(notebook: Any) -> dict[str, Any]:
    """``{name: value}`` recorded with :func:`glue` in an executed notebook (node or path)."""
    import nbformat

    nb = (
        nbformat.read(str(notebook), as_version=4)
        if isinstance(notebook, (str, Path))
        else notebook
    )
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            payload = out.get("data", {}).get(GLUE_MIME)
            if payload:
                found[payload["name"]] = payload["value"]
    return found


def environment() -> dict[str, Any]:
    """The interpreter and package versions this kernel runs on (recorded in every report)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("cjlib", "pandas", "numpy", "ibis-framework", "duckdb", "pyspark", "papermill"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "executable": sys.executable, "packages": versions}


def lineage(
    tables: Sequence[Any] = (),
    *,
    stages: Any = None,
    engine: Any = None,
    parameters: Mapping[str, Any] | None = None,
) -> str:
    """Markdown for the methodology and lineage appendix: inputs, engine, stage model, versions."""
    lines = [
        "### Inputs",
        "",
        "| table | source | rows read | rows used | dropped |",
        "|---|---|---:|---:|---|",
    ]
    for t in tables:
        r = t.report
        dropped = "; ".join(f"{n:,} {why}" for why, n in r.dropped.items()) or "none"
        lines.append(
            f"| {r.table} | `{r.source}` | {r.rows_read:,} | {r.rows_loaded:,} | {dropped} |"
        )
    if stages is not None:
        lines += [
            "",
            f"### Stage model: `{stages.name}`",
            "",
            "Stages in order: " + " → ".join(stages.stages) + ". Each event is mapped by exact "
            "name first (case-insensitive, spaces and hyphens read as underscores), then by "
            "regular expression; a `stage` column, when present, wins. Consecutive events in "
            "the same stage form one step; a step to an earlier stage is a regression, to a "
            "later stage but not the next one a skip.",
        ]
    if parameters:
        lines += ["", "### Parameters", "", "| name | value |", "|---|---|"]
        lines += [f"| {k} | `{v!r}` |" for k, v in parameters.items()]
    env = environment()
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    lines += [
        "",
        "### Environment",
        "",
        f"Engine: {getattr(engine, 'name', 'duckdb')}. Python {env['python']} "
        f"(`{env['executable']}`); {versions}. Intervals on shares are Wilson score "
        "intervals at 95 %.",
    ]
    return "\n".join(lines)


# -- running -----------------------------------------------------------------------------------
def _fingerprint(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _input_files(notebook: Path, overrides: Mapping[str, Any]) -> list[Path]:
    """Files a run reads: parameter values (defaults or overrides) naming existing files."""
    import ast

    import papermill as pm

    values = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            values[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            continue
    values.update(overrides)
    found = []
    for value in values.values():
        if isinstance(value, str) and value:
            candidate = (notebook.resolve().parent / value).resolve()
            if candidate.is_file():
                found.append(candidate)
    return found


def _export_html(nb_path: Path, target: Path, *, with_code: bool) -> None:
    import warnings

    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=not with_code, exclude_input_prompt=True, exclude_output_prompt=True
    )
    with warnings.catch_warnings():  # glue() outputs are meant to be invisible in HTML
        warnings.filterwarnings("ignore", message=".*is not able to be represented")
        body, _ = exporter.from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    target.write_text(body, encoding="utf-8")


def run_notebooks(
    notebooks: Sequence[str | Path] | None = None,
    *,
    out: str | Path = "reports",
    parameters: Mapping[str, Any] | None = None,
    with_code: bool = False,
    run_id: str | None = None,
) -> tuple[Path, dict[str, str]]:
    """Run notebooks into a new run folder; return ``(folder, {notebook: error})``."""
    import papermill as pm

    paths = [Path(n) for n in notebooks] if notebooks else sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks to run in {NOTEBOOKS}")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"notebook {str(p)!r} does not exist")
    out = Path(out)
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    final = out / run_id
    if final.exists():
        raise FileExistsError(f"run folder {final} exists already")
    tmp = out / f".{run_id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"  # the project's kernelspec before a user's
    failures: dict[str, str] = {}
    results: dict[str, dict] = {}
    try:
        for nb in paths:
            executed = tmp / nb.name
            try:
                pm.execute_notebook(
                    str(nb),
                    str(executed),
                    parameters=dict(parameters or {}),
                    kernel_name="python3",
                    cwd=str(nb.resolve().parent),
                    progress_bar=False,
                )
            except Exception as exc:  # a failing notebook must not stop the others
                failures[nb.stem] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"
            if executed.exists():
                _export_html(executed, tmp / f"{nb.stem}.html", with_code=False)
                if with_code:
                    _export_html(executed, tmp / f"{nb.stem}.code.html", with_code=True)
                results[nb.stem] = read_glued(executed)
                (tmp / f"{nb.stem}.results.json").write_text(
                    json.dumps(results[nb.stem], indent=2), encoding="utf-8"
                )
        _write_index(tmp, paths, results, failures)
        inputs = sorted({str(p) for nb in paths for p in _input_files(nb, parameters or {})})
        run_info = {
            "run_id": run_id,
            "notebooks": [p.stem for p in paths],
            "parameters": dict(parameters or {}),
            "failures": failures,
            "python": sys.version.split()[0],
            "inputs": [_fingerprint(Path(p)) for p in inputs],
        }
        (tmp / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, failures


def _write_index(
    folder: Path, paths: Sequence[Path], results: Mapping[str, dict], failures: Mapping[str, str]
) -> None:
    items = []
    for p in paths:
        headline = results.get(p.stem, {}).get("headline", "")
        status = f" <b>failed</b>: {html.escape(failures[p.stem])}" if p.stem in failures else ""
        items.append(
            f'<li><a href="{p.stem}.html">{html.escape(p.stem)}</a> '
            f"{html.escape(str(headline))}{status}</li>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>cjlib reports</title>"
        "<h1>cjlib reports</h1><ul>" + "".join(items) + "</ul>"
    )
    (folder / "index.html").write_text(page, encoding="utf-8")


def _parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"-p expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = yaml.safe_load(value)
    return params


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cjlib.report")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run notebooks and write a run folder")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: all)")
    run.add_argument("--out", default="reports", help="folder for run folders")
    run.add_argument("-f", "--file", help="YAML file of parameters")
    run.add_argument("-p", "--param", action="append", default=[], help="key=value (YAML value)")
    run.add_argument("--with-code", action="store_true", help="also write HTML with code")
    args = parser.parse_args(argv)
    params: dict[str, Any] = {}
    if args.file:
        import yaml

        params.update(yaml.safe_load(Path(args.file).read_text(encoding="utf-8")) or {})
    params.update(_parse_params(args.param))
    folder, failures = run_notebooks(
        args.notebooks or None, out=args.out, parameters=params, with_code=args.with_code
    )
    print(f"run folder: {folder}")
    for name, why in failures.items():
        print(f"FAILED {name}: {why}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
