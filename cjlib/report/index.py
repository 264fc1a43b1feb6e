"""The run's ``index.html``: one line per notebook with its headline, status and links."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_index", "STYLE", "title_of"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45em .6em;
border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f6f8}
.failed{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}
.meta{color:#555;font-size:.92em}code{background:#f4f6f8;padding:0 .25em}
"""


def title_of(stem: str) -> str:
    """'04_stage_dropoff' -> 'Stage dropoff'."""
    words = stem.split("_", 1)[-1].replace("_", " ")
    return words[:1].upper() + words[1:]


def write_index(
    folder: Path,
    paths: Sequence[Path],
    results: Mapping[str, dict],
    failures: Mapping[str, str],
    info: Mapping[str, Any],
    *,
    with_code: bool = False,
) -> None:
    """Write ``folder/index.html``."""
    esc = html.escape
    titles = info.get("titles", {})

    def label(stem: str) -> str:
        return titles.get(stem) or title_of(stem)

    rows = []
    for p in paths:
        stem = p.stem
        headline = results.get(stem, {}).get("headline", "")
        if stem in failures:
            status = f"<span class='failed'>failed</span><br><small>{esc(failures[stem])}</small>"
        else:
            status = "<span class='ok'>ok</span>"
        links = [f"<a href='{esc(stem)}.html'>report</a>"]
        if with_code:
            links.append(f"<a href='{esc(stem)}.code.html'>with code</a>")
        links += [
            f"<a href='{esc(stem)}.results.json'>results</a>",
            f"<a href='{esc(stem)}.ipynb'>notebook</a>",
        ]
        seconds = info.get("seconds", {}).get(stem)
        rows.append(
            f"<tr><td><b>{esc(label(stem))}</b><br><small>{esc(stem)}</small></td>"
            f"<td>{esc(str(headline))}</td><td>{status}</td>"
            f"<td>{' · '.join(links)}</td><td>{seconds if seconds is not None else ''} s"
            "</td></tr>"
        )
    params = (
        "".join(
            f"<li><code>{esc(k)}</code> = <code>{esc(repr(v))}</code></li>"
            for k, v in info.get("parameters", {}).items()
        )
        or "<li>defaults</li>"
    )
    commit = info.get("git_commit") or "unknown"

    def when(key: str) -> str:
        return esc(str(info.get(key, "")).replace("T", " ").replace("+00:00", ""))

    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>cjlib reports — run {esc(str(info.get("run_id", "")))}</title><style>{STYLE}</style></head>
<body><h1>Customer-journey reports</h1>
<p class="meta">Run <code>{esc(str(info.get("run_id", "")))}</code>, started
{esc(str(info.get("started", "")))} UTC, finished {esc(str(info.get("finished", "")))} UTC; code at
git commit <code>{esc(commit[:12])}</code>. {len(paths) - len(failures)} of {len(paths)} reports
complete.</p>
<p><a href="summary.html"><b>Executive summary</b></a>: the headline of each study and the three
biggest opportunities.</p>
<table><tr><th>study</th><th>headline</th><th>status</th><th>files</th><th>time</th></tr>
{"".join(rows)}</table>
<h2>Parameters set for this run</h2><ul>{params}</ul>
<p class="meta">Inputs, package versions and parameters per notebook are in
<a href="run.json">run.json</a>.</p></body></html>"""
    (folder / "index.html").write_text(page, encoding="utf-8")
