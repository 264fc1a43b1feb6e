"""The methodology and lineage appendix: inputs with fingerprints, methods, parameters, versions."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cjlib.report.display import privacy_note

__all__ = ["environment", "fingerprint", "git_commit", "lineage", "STAGE_METHOD"]

STAGE_METHOD = (
    "Each event is mapped to a stage by exact name first (case-insensitive, spaces and hyphens "
    "read as underscores), then by regular expression; a `stage` column, when present, wins. "
    "In the presets a customer's purchases after their first count as retention (repeat "
    "purchases). "
    "Consecutive events in the same stage form one step; a step to an earlier stage is a "
    "regression, to a later stage other than the next one a skip."
)
_PACKAGES = (
    "cjlib",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "ibis-framework",
    "duckdb",
    "pyspark",
    "papermill",
    "plotly",
)


def code_cell(value: object) -> str:
    """``repr(value)`` as code for a Markdown table cell; a ``|`` would end the cell, and in a
    code span its escape would show, so such values are written as escaped plain text."""
    text = repr(value)
    return text.replace("|", "\\|") if "|" in text else f"`{text}`"


def environment() -> dict[str, Any]:
    """The interpreter and package versions this process runs on (recorded in every report)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "executable": sys.executable, "packages": versions}


def fingerprint(path: str | Path) -> dict[str, Any]:
    """Size and SHA-256 of a file (``None`` fields for folders and missing paths)."""
    path = Path(path)
    if not path.is_file():
        return {"path": str(path), "bytes": None, "sha256": None}
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def git_commit(folder: str | Path | None = None) -> str | None:
    """The git commit of ``folder`` (default: the project), or ``None`` outside a repository."""
    folder = Path(folder or Path(__file__).resolve().parents[2])
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def lineage(
    tables: Sequence[Any] = (),
    *,
    stages: Any = None,
    engine: Any = None,
    parameters: Mapping[str, Any] | None = None,
    methods: Sequence[str] = (),
    seeds: Mapping[str, int] | None = None,
) -> str:
    """Markdown for the appendix.

    ``tables`` are LoadedTables (their load reports and file fingerprints are listed) or file
    paths read another way (a path table: listed with their fingerprint); ``methods``
    are paragraphs defining what the analysis computed (tests, windows, corrections, denominators);
    ``seeds`` the random states used.
    """
    lines = [
        "### Inputs",
        "",
        "| table | source | rows read | rows used | dropped | SHA-256 (first 12) |",
        "|---|---|---:|---:|---|---|",
    ]
    for t in tables:
        if isinstance(t, (str, Path)):
            digest = fingerprint(str(t))["sha256"]
            lines.append(f"| file | `{t}` | — | — | — | {digest[:12] if digest else '—'} |")
            continue
        r = t.report
        dropped = "; ".join(f"{n:,} {why}" for why, n in r.dropped.items()) or "none"
        digest = fingerprint(r.source)["sha256"]
        lines.append(
            f"| {r.table} | `{r.source}` | {r.rows_read:,} | {r.rows_loaded:,} | "
            f"{dropped} | {digest[:12] if digest else '—'} |"
        )
    lines += ["", "### Methods", ""]
    if stages is not None:
        lines.append(
            f"- Stage model `{stages.name}`: " + " → ".join(stages.stages) + ". " + STAGE_METHOD
        )
    lines += [f"- {m}" for m in methods]
    lines.append("- Intervals on shares are 95 % Wilson score intervals unless stated otherwise.")
    lines.append(f"- {privacy_note()}")
    if seeds:
        lines.append("- Random states: " + ", ".join(f"{k} = {v}" for k, v in seeds.items()) + ".")
    if parameters:
        lines += ["", "### Parameters", "", "| name | value |", "|---|---|"]
        lines += [f"| {k} | {code_cell(v)} |" for k, v in parameters.items()]
    env = environment()
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    commit = git_commit()
    lines += [
        "",
        "### Environment",
        "",
        f"Engine: {getattr(engine, 'name', 'duckdb')}. Python {env['python']} "
        f"(`{env['executable']}`); {versions}."
        + (f" Code at git commit `{commit[:12]}`." if commit else ""),
    ]
    return "\n".join(lines)
