"""Funnel charts: funnel bars, time to convert (Kaplan-Meier), cohort trend, segment and driver
forest plots, stage losses against industry references, and the stage-path Sankey (plotly).

Each function takes a result from :mod:`cjlib.funnels`, draws and returns the Axes (or a plotly
Figure). Nothing here computes a number the result does not already hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from cjlib.plots._common import axes, whiskers
from cjlib.units import TIME_TICKS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "plot_funnel",
    "plot_time_to_convert",
    "plot_cohort_trend",
    "plot_segment_gaps",
    "plot_drivers",
    "plot_stage_losses",
    "plot_stage_sankey",
]

BLUE, GREY, RED = "#4C72B0", "#9A9A9A", "#C44E52"


def plot_funnel(result: Any, *, ax: Axes | None = None) -> Axes:
    """Bars: share of entrants reaching each step (conversion from start, Wilson whiskers); a
    hatched segment on top shows units still in progress towards the step (not counted as lost).
    Labels give the count and the conversion from the previous step."""
    s = result.steps
    ax = axes(ax, (max(6.0, 1.6 * len(s) + 2), 4.0))
    x = list(range(len(s)))
    share = s["conversion_from_start"] * 100
    err = whiskers(s["conversion_from_start"], s["conversion_from_start_low"],
                   s["conversion_from_start_high"], 100)  # fmt: skip
    ax.bar(x, share, color=BLUE, yerr=err, capsize=4, ecolor="#333333", label="reached the step")
    waiting = s["in_progress"].cumsum() / max(result.entered, 1) * 100
    ax.bar(x, waiting, bottom=share, color="white", edgecolor=GREY, hatch="///",
           label="in progress (may still reach it)")  # fmt: skip
    for i, row in s.iterrows():
        text = f"{row.customers:,}"
        if row.step > 1 and pd.notna(row.conversion):
            text += f"\n{100 * row.conversion:.1f} % of previous"
        ax.annotate(text, (i, share[i] + waiting[i]), textcoords="offset points", xytext=(0, 8),
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_xticks(x, [str(v) for v in s["label"]], rotation=15 if len(s) > 4 else 0)
    ax.set_ylabel("% of entrants (in-progress excluded)")
    ax.set_ylim(0, 125)
    ax.set_title(f"Funnel ({result.spec.mode}): reached each step, 95 % Wilson intervals")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_time_to_convert(result: Any, *, ax: Axes | None = None, log: bool = True) -> Axes:
    """Kaplan-Meier curves of cumulative conversion to each step against the time since the
    previous step (in-progress units censored), with 95 % bands. On the log scale (default)
    times under a second are drawn at one second and the ticks read 1 s, 1 min, 1 h, 1 d..."""
    km = result.km
    ax = axes(ax, (7.5, 4.0))
    for _, g in km.groupby("step"):
        hours = g["hours"].clip(lower=1 / 3600) if log else g["hours"]
        line = ax.step(hours, g["converted"] * 100, where="post", label=g["label"].iloc[0])
        ax.fill_between(hours, g["converted_low"] * 100, g["converted_high"] * 100, step="post",
                        alpha=0.15, color=line[0].get_color())  # fmt: skip
    if log:
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ticks = [(h, t) for h, t in TIME_TICKS if lo <= h <= hi]
        if len(ticks) >= 2:
            ax.set_xticks([h for h, _ in ticks], [t for _, t in ticks])
            ax.minorticks_off()
    ax.set_xlabel("time since the previous step" + (" (log scale)" if log else " (hours)"))
    ax.set_ylabel("converted (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Time to the next step (Kaplan-Meier, in-progress censored)")
    ax.legend(title="to step", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_cohort_trend(trend: Any, *, ax: Axes | None = None) -> Axes:
    """Whole-funnel conversion per entry cohort with Wilson intervals; incomplete cohorts (some
    entrants could still convert) drawn hollow and grey; suppressed (small) cohorts left out."""
    t = trend.table[~trend.table["suppressed"]]
    ax = axes(ax, (8.0, 3.8))
    for incomplete, g in t.groupby("incomplete"):
        y = g["conversion"] * 100
        err = whiskers(y, g["conversion_low"] * 100, g["conversion_high"] * 100)
        ax.errorbar(g["cohort"], y, yerr=err, fmt="o", capsize=3,
                    color=GREY if incomplete else BLUE, mfc="white" if incomplete else BLUE,
                    label="incomplete cohort" if incomplete else "complete cohort")  # fmt: skip
    ax.plot(t["cohort"], t["conversion"] * 100, color=BLUE, alpha=0.4, lw=1)
    ax.set_ylabel("converted (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Conversion by entry {trend.cohort} (95 % Wilson intervals)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _forest(ax: Axes, labels: list[str], diff, low, high, sig, xlabel: str) -> Axes:
    y = list(range(len(labels)))[::-1]
    for yi, d, lo, hi, s in zip(y, diff, low, high, sig, strict=True):
        color = RED if s else GREY
        ax.plot([lo * 100, hi * 100], [yi, yi], color=color, lw=2)
        ax.plot([d * 100], [yi], "o", color=color)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_segment_gaps(segments: Any, *, step: int = 0, ax: Axes | None = None) -> Axes:
    """Forest plot: each segment's conversion minus the rest's (percentage points, Newcombe
    interval) at ``step`` (0 = whole funnel); red where the adjusted p-value is below alpha."""
    t = segments.table[(segments.table["step"] == step) & ~segments.table["suppressed"]]
    t = t.sort_values("difference", ascending=False)
    ax = axes(ax, (7.0, 0.45 * len(t) + 1.6))
    label = t["label"].iloc[0] if len(t) else ""
    names = [str(v) for v in t[segments.by]]
    xlabel = "conversion vs the rest (percentage points)"
    _forest(ax, names, t["difference"], t["difference_low"], t["difference_high"],
            t["significant"], xlabel)  # fmt: skip
    ax.set_title(f"Segments by {segments.by}: {label} ({segments.adjust}-adjusted; red = real gap)")
    return ax


def plot_drivers(drivers: Any, *, top: int = 12, ax: Axes | None = None) -> Axes:
    """Forest plot: share among dropped minus share among converted, percentage points."""
    t = drivers.table.head(top).iloc[::-1]
    ax = axes(ax, (7.5, 0.42 * len(t) + 1.6))
    labels = [f"{f}: {v}" for f, v in zip(t["feature"], t["value"], strict=True)][::-1]
    _forest(ax, labels, t["difference"][::-1], t["difference_low"][::-1],
            t["difference_high"][::-1], (t["p_adjusted"] < drivers.alpha)[::-1],
            "share among dropped - among converted (percentage points)")  # fmt: skip
    ax.set_title(f"Drop-off drivers before '{drivers.label}' (red = adjusted p < {drivers.alpha})")
    return ax


def plot_stage_losses(view: Any, *, ax: Axes | None = None) -> Axes:
    """Share lost between consecutive stages (closed stage funnel, Wilson whiskers) with the
    industry figures our sources quote as labelled reference marks (not truth)."""
    s = view.funnel.steps[view.funnel.steps["step"] > 1]
    ax = axes(ax, (7.5, 3.8))
    x = list(range(len(s)))
    lost = s["drop_off"] * 100
    err = whiskers(lost, (1 - s["conversion_high"]) * 100, (1 - s["conversion_low"]) * 100)
    ax.bar(x, lost, color=BLUE, yerr=err, capsize=4, ecolor="#333333", label="lost here (ours)")
    names = list(s["label"])
    for _, ref in view.references.iterrows():
        if ref.to_stage in names:
            i = names.index(ref.to_stage)
            ax.plot([i - 0.4, i + 0.4], [ref.lost_share * 100] * 2, color=RED, lw=2, ls="--")
            ax.annotate(
                f"industry ~{ref.lost_share * 100:.0f} %",
                (i + 0.4, ref.lost_share * 100),
                fontsize=8,
                color=RED,
                va="bottom",
                ha="right",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )  # the box keeps the label readable over a bar
    prev = list(view.funnel.steps["label"])[:-1]
    ax.set_xticks(x, [f"{a} →\n{b}" for a, b in zip(prev, names, strict=True)], fontsize=8)
    ax.set_ylabel("lost between stages (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Where customers are lost between stages (dashed: industry reference marks)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_stage_sankey(links: pd.DataFrame, *, title: str | None = None) -> Any:
    """Plotly Sankey of stage paths from ``StageView.links`` (positions 1., 2., ...)."""
    import plotly.graph_objects as go

    nodes = list(dict.fromkeys([*links["source"], *links["target"]]))
    nodes.sort(key=lambda n: (int(n.split(".", 1)[0]), n))
    index = {n: i for i, n in enumerate(nodes)}
    fig = go.Figure(
        go.Sankey(
            node={"label": nodes, "pad": 14, "thickness": 14},
            link={
                "source": [index[s] for s in links["source"]],
                "target": [index[t] for t in links["target"]],
                "value": list(links["customers"]),
            },
        )
    )
    fig.update_layout(title=title or "Most common stage paths (first steps; (end) = stopped)",
                      height=460, margin={"l": 10, "r": 10, "t": 50, "b": 10})  # fmt: skip
    return fig
