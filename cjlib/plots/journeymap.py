"""The journey-map figure: stages across; rows for customer actions, touchpoints and channels,
reach and conversion to the next stage, time in stage, the emotion track (mean CSAT per stage
with its interval, drawn as a line) and the top pain points. Draws a ``JourneyMap``; computes
nothing."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from cjlib.units import duration_text

__all__ = ["plot_journey_map", "plot_pain_points"]

_ROW_LABELS = (
    "Customer actions\n(top events, customers)",
    "Touchpoints and\nchannels (customers)",
    "Reach and\nconversion",
    "Time in stage\n(median)",
)
_KIND_COLOURS = {
    "drop-off": "#C44E52",
    "low satisfaction": "#DD8452",
    "slow stage": "#8172B3",
    "complained-about touchpoint": "#937860",
}


def _wrap(text: str, width: int, lines: int) -> str:
    parts = [p.strip() for p in str(text).split(", ") if p.strip()] if text else []
    if not parts:
        return "—"
    out = [textwrap.shorten(p, width, placeholder="…") for p in parts[:lines]]
    return "\n".join(out)


def plot_journey_map(jm: Any, *, title: str | None = None, width: float = 12.0):
    """The map as one matplotlib Figure (returned); ``jm``: a ``cjlib.journeymap.JourneyMap``."""
    import matplotlib.pyplot as plt

    s = jm.stages.reset_index(drop=True)
    n = len(s)
    fig = plt.figure(figsize=(width, 9.2), dpi=110, layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[4.3, 2.3, 1.7])
    text_ax, emo, pain_ax = (fig.add_subplot(grid[i]) for i in range(3))
    chars = max(14, int(width * 12 / n))
    # -- text rows ------------------------------------------------------------------------------
    text_ax.set_xlim(-0.5, n - 0.5)
    text_ax.set_ylim(len(_ROW_LABELS) - 0.5, -1.0)
    text_ax.axis("off")
    for j, r in s.iterrows():
        text_ax.text(
            j,
            -0.75,
            r.stage.capitalize(),
            ha="center",
            va="center",
            fontsize=11.5,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "round,pad=0.45", "fc": "#4C72B0", "ec": "none"},
        )
        conv = (
            f"→ {r.conversion_next:.0%} go on\n({r.conversion_next_low:.0%}–"
            f"{r.conversion_next_high:.0%})"
            if not np.isnan(r.conversion_next)
            else "(no events in\nthis stage)"
            if not getattr(r, "has_events", True)
            else "(last stage)"
            if j == n - 1
            else "(no events in the\nnext stage)"
        )
        cells = [
            _wrap(r.actions, chars, 3),
            _wrap(r.channels, chars, 3),
            f"{r.reached:,} reached ({r.reached_share:.0%})\n{conv}",
            duration_text(r.median_dwell_hours),
        ]
        for i, cell in enumerate(cells):
            text_ax.text(j, i, cell, ha="center", va="center", fontsize=8.6, linespacing=1.3)
    for i, label in enumerate(_ROW_LABELS):
        text_ax.text(
            -0.5,
            i,
            label,
            ha="right",
            va="center",
            fontsize=8.8,
            color="#333333",
            fontweight="bold",
        )
        if i:
            text_ax.axhline(i - 0.5, color="#dddddd", lw=0.8)
    # -- emotion track ----------------------------------------------------------------------------
    x = np.arange(n)
    y = s["csat_mean"].to_numpy(dtype=float)
    lo, hi = s["csat_mean_low"].to_numpy(dtype=float), s["csat_mean_high"].to_numpy(dtype=float)
    ok = ~np.isnan(y)
    emo.fill_between(x[ok], lo[ok], hi[ok], color="#55A868", alpha=0.18, lw=0)
    emo.plot(x[ok], y[ok], "-o", color="#2E7D4F", lw=2.2, ms=7, zorder=3)
    for j in x[ok]:
        nps = s.loc[j, "nps"]
        label = f"CSAT {y[j]:.2f}" + ("" if np.isnan(nps) else f"\nNPS {nps:+.0f}")
        emo.annotate(
            label,
            (j, y[j]),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            va="bottom",
            fontsize=8.3,
        )
    emo.set_xlim(-0.5, n - 0.5)
    top = np.nanmax(hi) if ok.any() else 5
    bottom = np.nanmin(lo) if ok.any() else 1
    emo.set_ylim(max(1, bottom - 0.25), min(5.4, top + 0.45))
    emo.set_xticks(x, [st.capitalize() for st in s["stage"]], fontsize=9)
    emo.set_ylabel("mean CSAT (1–5)", fontsize=9)
    emo.set_title(
        "Emotion track: mean satisfaction per stage, 95 % interval shaded", fontsize=9.5, loc="left"
    )
    emo.grid(axis="y", color="#eeeeee")
    emo.spines[["top", "right"]].set_visible(False)
    if not ok.any():
        emo.text(0.5, 0.5, "no survey answers", transform=emo.transAxes, ha="center")
    # -- pain points ------------------------------------------------------------------------------
    pain_ax.set_xlim(-0.5, n - 0.5)
    pain_ax.set_ylim(1, 0)
    pain_ax.axis("off")
    pain_ax.text(
        -0.5,
        0.5,
        "Top pain points\n(rank: customers)",
        ha="right",
        va="center",
        fontsize=8.8,
        fontweight="bold",
        color="#333333",
    )
    p = jm.pain_points
    top_pain = int(jm.parameters.get("top_pain", 2))
    for j, stage in enumerate(s["stage"]):
        items = p[p["stage"] == stage].head(top_pain)
        for k, (_, r) in enumerate(items.iterrows()):
            label = textwrap.fill(f"#{r['rank']} {r.kind}: {r.what} ({int(r.customers):,})", chars)
            pain_ax.text(
                j,
                0.08 + 0.46 * k,
                label,
                ha="center",
                va="top",
                fontsize=8.2,
                color="white",
                linespacing=1.2,
                bbox={
                    "boxstyle": "round,pad=0.35",
                    "fc": _KIND_COLOURS.get(r.kind, "#666666"),
                    "ec": "none",
                },
            )
    who = f" — {jm.segment}" if jm.segment else ""
    fig.suptitle(
        title or f"Customer journey map{who}", fontsize=13, fontweight="bold", x=0.02, ha="left"
    )
    return fig


def plot_pain_points(jm: Any, *, top: int = 10, ax: Any = None):
    """Horizontal bars: customers affected by the ``top`` pain points, coloured by kind."""
    import matplotlib.pyplot as plt

    p = jm.pain_points.head(top).iloc[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.42 * len(p) + 1.2), dpi=110, layout="constrained")
    labels = [f"#{r['rank']} {r.what}" for _, r in p.iterrows()]
    colours = [_KIND_COLOURS.get(k, "#666666") for k in p["kind"]]
    ax.barh(labels, p["customers"], color=colours)
    for i, v in enumerate(p["customers"]):
        ax.text(v, i, f" {int(v):,}", va="center", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _KIND_COLOURS.values()]
    ax.legend(handles, list(_KIND_COLOURS), fontsize=8, loc="lower right", frameon=False)
    ax.set_xlabel("customers affected (drop-offs: lost; other kinds: excess over the rest)")
    ax.set_title("Pain points ranked by customers affected", fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return ax
