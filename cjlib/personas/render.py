"""HTML for persona cards (self-contained inline CSS; renders in JupyterLab and the HTML report).

Only aggregates are shown; a persona smaller than the report's ``min_cell_size`` shows its size as
"< k" and nothing else.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

__all__ = ["cards_html"]

_CSS = (
    "<style>.cj-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));"
    "gap:14px;font-family:system-ui,sans-serif;font-size:13px;line-height:1.4}"
    ".cj-card{border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;background:#fff}"
    ".cj-card h4{margin:0 0 4px 0;font-size:15px}.cj-card .cj-size{color:#57606a;margin-bottom:6px}"
    ".cj-card h5{margin:8px 0 2px 0;font-size:12px;text-transform:uppercase;color:#57606a}"
    ".cj-card ul{margin:0;padding-left:18px}.cj-up{color:#1a7f37}.cj-down{color:#cf222e}"
    ".cj-flag{background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;padding:0 4px}</style>"
)


def _pct(x: Any) -> str:
    return "—" if pd.isna(x) else f"{100 * x:.1f} %"


def _trait_text(row: Any) -> str:
    name = row.trait if row.level is None or pd.isna(row.level) else f"{row.trait} = {row.level}"
    if row.kind == "categorical":
        index = f"index {row.index:.0f}"
        val = f"{_pct(row.persona_value)} vs {_pct(row.overall_value)} overall ({index})"
    else:
        val = f"mean {row.persona_value:,.1f} vs {row.overall_value:,.1f} overall"
    eff = f"{row.measure} = {row.effect:+.2f} [{row.effect_low:+.2f}, {row.effect_high:+.2f}]"
    return f"{escape(str(name))}: {val}; {eff}"


def _card(cards: Any, row: Any, min_cell: int) -> str:
    pid = int(row.persona_id)
    head = f"<h4>Persona {pid}: {escape(str(row.persona))}</h4>"
    if row.customers < min_cell:
        return (
            f"<div class='cj-card'>{head}<div class='cj-size'>&lt; {min_cell} customers</div></div>"
        )
    size = (
        f"{int(row.customers):,} customers, {_pct(row.share)} of all "
        f"(95 % CI {_pct(row.share_low)} to {_pct(row.share_high)})"
    )
    if "jaccard" in row._fields and not pd.isna(row.jaccard):
        flag = " <span class='cj-flag'>unstable</span>" if row.flagged else ""
        size += f"; stability (Jaccard) {row.jaccard:.2f}, {escape(str(row.stability))}{flag}"
    parts = [head, f"<div class='cj-size'>{size}</div>"]
    traits = cards.traits[cards.traits.persona_id == pid]
    sig = traits[(traits.effect_low > 0) | (traits.effect_high < 0)]
    sig = sig.assign(size=sig.effect.abs()).sort_values("size", ascending=False)
    demo = sig[sig.block == "demographics"].head(3)
    beh = sig[sig.block.isin(["behaviour", "journey"])].head(3)
    chan = traits[(traits.block == "channels")].sort_values("persona_value", ascending=False)
    items = {
        "Who": [_trait_text(r) for r in demo.itertuples()],
        "Behaviour": [_trait_text(r) for r in beh.itertuples()],
        "Preferred channels (share of touches)": [
            f"{escape(r.trait.removeprefix('channel_'))}: {_pct(r.persona_value)} "
            f"(all customers {_pct(r.overall_value)})"
            for r in chan.head(3).itertuples()
        ],
    }
    st = cards.stages[cards.stages.persona_id == pid] if len(cards.stages) else pd.DataFrame()
    if len(st):
        lines = [f"{escape(r.stage)}: {_pct(r.reached_share)} [{_pct(r.reached_low)}, "
                 f"{_pct(r.reached_high)}]" for r in st.itertuples()]  # fmt: skip
        lost = st.dropna(subset=["lost_share"])
        if len(lost):
            worst = lost.loc[lost.lost_share.idxmax()]
            i = list(st.stage).index(worst.stage)
            lines.append(f"biggest drop-off: {escape(st.stage.iloc[i - 1])} → "
                         f"{escape(worst.stage)} ({_pct(worst.lost_share)} lost)")  # fmt: skip
        items["Furthest stage reached (share of the persona)"] = lines
    att = cards.attitudes[cards.attitudes.persona_id == pid]
    if len(att) and "nps_score" in att:
        a = att.iloc[0]
        if a.respondents >= min_cell:
            text = [f"NPS {a.nps_score:+.0f} [{a.nps_low:+.0f}, {a.nps_high:+.0f}] "
                    f"({int(a.respondents):,} respondents)"]  # fmt: skip
            if "csat_mean" in a and not pd.isna(a.csat_mean):
                text.append(f"CSAT {a.csat_mean:.2f} [{a.csat_low:.2f}, {a.csat_high:.2f}]")
        else:
            text = [f"fewer than {min_cell} respondents"]
        items["Attitudes (95 % CI)"] = text
    voices = cards.voices[cards.voices.persona_id == pid] if len(cards.voices) else pd.DataFrame()
    if len(voices):
        items["What they say (respondents)"] = [
            f"{escape(str(r.field))}: “{escape(str(r.answer))}” ({int(r.respondents):,})"
            for r in voices.groupby("field").head(2).itertuples()
        ]
    over = sig[sig.effect > 0].head(3)
    under = sig[sig.effect < 0].head(3)
    items["Over-index"] = [
        f"<span class='cj-up'>▲</span> {_trait_text(r)}" for r in over.itertuples()
    ]
    items["Under-index"] = [
        f"<span class='cj-down'>▼</span> {_trait_text(r)}" for r in under.itertuples()
    ]
    for title, lines in items.items():
        if lines:
            parts.append(f"<h5>{escape(title)}</h5><ul>" + "".join(f"<li>{x}</li>" for x in lines))
            parts.append("</ul>")
    return "<div class='cj-card'>" + "".join(parts) + "</div>"


def cards_html(cards: Any) -> str:
    """All persona cards as one HTML block."""
    from cjlib.report.display import privacy

    min_cell = privacy()["min_cell_size"]
    body = "".join(_card(cards, r, min_cell) for r in cards.summary.itertuples())
    return _CSS + f"<div class='cj-cards'>{body}</div>"
