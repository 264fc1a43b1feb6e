"""The executive summary of a run: one page from the notebooks' ``results.json``.

Each study's headline (``glue("headline", ...)``) with a link to its report, and the three biggest
opportunities across studies. A study proposes opportunities with ``glue("opportunities",
[{"title": ..., "evidence": ..., "customers": n}, ...])``; they are ranked by the number of
customers affected, the one unit every study can state.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cjlib.report.index import STYLE, title_of

__all__ = ["opportunities", "write_summary"]


def opportunities(results: Mapping[str, Mapping[str, Any]], *, top: int = 3) -> list[dict]:
    """The ``top`` opportunities of all studies, largest number of customers affected first."""
    found = []
    for study, values in results.items():
        for item in values.get("opportunities") or []:
            if not isinstance(item, Mapping) or "title" not in item:
                continue
            customers = item.get("customers")
            found.append(
                {
                    "study": study,
                    "title": str(item["title"]),
                    "evidence": str(item.get("evidence", "")),
                    "customers": int(customers) if customers is not None else 0,
                }
            )
    found.sort(key=lambda o: (-o["customers"], o["study"], o["title"]))
    return found[:top]


def write_summary(
    folder: Path,
    paths: Sequence[Path],
    results: Mapping[str, dict],
    failures: Mapping[str, str],
    info: Mapping[str, Any],
) -> None:
    """Write ``folder/summary.html``."""
    esc = html.escape
    titles = info.get("titles", {})

    def label(stem: str) -> str:
        return titles.get(stem) or title_of(stem)

    studies = []
    for p in paths:
        headline = results.get(p.stem, {}).get("headline") or "(no headline recorded)"
        if p.stem in failures:
            headline = f"Report failed: {failures[p.stem]}"
        studies.append(
            f"<li><a href='{esc(p.stem)}.html'><b>{esc(label(p.stem))}</b></a>: "
            f"{esc(str(headline))}</li>"
        )
    best = opportunities(results)
    if best:
        items = "".join(
            f"<li><b>{esc(o['title'])}</b> ({o['customers']:,} customers; from "
            f"<a href='{esc(o['study'])}.html'>{esc(label(o['study']))}</a>)<br>"
            f"<span class='meta'>{esc(o['evidence'])}</span></li>"
            for o in best
        )
        opp = f"<ol>{items}</ol>"
    else:
        opp = "<p>No study in this run proposed an opportunity.</p>"
    incomplete = (
        (
            f"<p class='failed'>{len(failures)} of {len(paths)} studies failed; their "
            "findings are missing from this page.</p>"
        )
        if failures
        else ""
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Executive summary — run {esc(str(info.get("run_id", "")))}</title><style>{STYLE}</style>
</head><body><h1>Executive summary</h1>
<p class="meta">Run <code>{esc(str(info.get("run_id", "")))}</code>. All figures are aggregates;
each study's report states its denominators, intervals and methods.</p>{incomplete}
<h2>The three biggest opportunities</h2>{opp}
<h2>What each study found</h2><ul>{"".join(studies)}</ul>
<p class="meta"><a href="index.html">All reports and files</a></p></body></html>"""
    (folder / "summary.html").write_text(page, encoding="utf-8")
