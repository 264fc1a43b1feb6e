"""Reports: what a notebook shows and records, and the runner that turns notebooks into reports.

In a notebook: :func:`setup` (privacy, sharp charts, offline plotly), :func:`table`,
:func:`show_markdown`, :func:`show_plotly`, :func:`glue` (results for ``results.json``),
:func:`lineage` (the appendix). From the shell: ``cj run`` / ``cj list`` (:mod:`cjlib.report.cli`).
"""

from __future__ import annotations

from cjlib.report.display import (
    privacy,
    privacy_note,
    set_privacy,
    setup,
    show_markdown,
    show_plotly,
    suppress,
    table,
)
from cjlib.report.glue import GLUE_MIME, glue, read_glued
from cjlib.report.lineage import environment, fingerprint, lineage
from cjlib.report.params import ParameterError, notebook_parameters
from cjlib.report.runner import RunResult, run_notebooks
from cjlib.report.summary import opportunities

__all__ = [
    "GLUE_MIME",
    "ParameterError",
    "RunResult",
    "environment",
    "fingerprint",
    "glue",
    "lineage",
    "notebook_parameters",
    "opportunities",
    "privacy",
    "privacy_note",
    "read_glued",
    "run_notebooks",
    "set_privacy",
    "setup",
    "show_markdown",
    "show_plotly",
    "suppress",
    "table",
]
