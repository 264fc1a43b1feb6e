"""Results out of a notebook: ``glue(name, value)`` and reading them back from an executed one.

Values travel as a custom output mimetype (``application/vnd.cjlib.glue+json``): valid nbformat,
carried through papermill, invisible in the HTML report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["GLUE_MIME", "glue", "read_glued", "jsonable"]

GLUE_MIME = "application/vnd.cjlib.glue+json"


def jsonable(value: Any) -> Any:
    """Plain JSON for numbers, strings, lists, dicts, numpy scalars, DataFrames (records)."""
    if hasattr(value, "to_json") and hasattr(value, "columns"):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def glue(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` for the run's ``results.json`` (invisible in the HTML).

    A DataFrame goes through the same privacy rule as :func:`cjlib.report.table` (rows counting
    1 to ``min_cell_size - 1`` customers blanked and flagged ``suppressed``), unless the analyst
    allowed row-level output: the run folder is shared with the HTML."""
    from IPython.display import display

    from cjlib.report import display as shown

    if not isinstance(name, str) or not name:
        raise ValueError(f"glue name must be a non-empty string, got {name!r}")
    if hasattr(value, "columns") and not shown.privacy()["allow_row_level"]:
        blanked = shown.suppress(value)
        if "suppressed" in blanked.columns and blanked["suppressed"].any():
            before = value["suppressed"] if "suppressed" in value.columns else False
            value = blanked.assign(suppressed=blanked["suppressed"] | before)
    display({GLUE_MIME: {"name": name, "value": jsonable(value)}}, raw=True)


def read_glued(notebook: Any) -> dict[str, Any]:
    """``{name: value}`` recorded with :func:`glue` in an executed notebook (node or path)."""
    import nbformat

    if isinstance(notebook, (str, Path)):
        notebook = nbformat.read(str(notebook), as_version=4)
    found: dict[str, Any] = {}
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            payload = out.get("data", {}).get(GLUE_MIME)
            if payload:
                found[payload["name"]] = payload["value"]
    return found
