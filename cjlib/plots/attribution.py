"""Attribution charts: credit by model with intervals, cost share vs credit share, path Sankey.

Each function takes a result table from :mod:`cjlib.attribution` and draws; nothing is computed
here beyond placing the numbers the table holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cjlib.plots._common import axes, whiskers

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "plot_credit_comparison",
    "plot_cost_vs_credit",
    "plot_path_sankey",
    "plot_transition_heatmap",
]

_PALETTE = [
    "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3",
    "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD",
]  # fmt: skip


def plot_credit_comparison(
    credits: pd.DataFrame,
    *,
    models: list[str] | None = None,
    value: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Share of conversions (or value) credited to each channel by each model, with the
    bootstrap interval as a whisker. ``credits`` is ``AttributionResult.credits``; participation
    is left out (its share is a reach, not a split)."""
    col = "value_share" if value else "share"
    df = credits[credits["model"] != "participation"]
    models = models or list(dict.fromkeys(df["model"]))
    channels = sorted(df["channel"].unique())
    ax = axes(ax, (9, 0.55 * len(channels) * max(1, len(models) / 4) + 2))
    step = 0.8 / max(len(models), 1)
    for k, m in enumerate(models):
        rows = df[df["model"] == m].set_index("channel").reindex(channels)
        y = [i - 0.4 + step * (k + 0.5) for i in range(len(channels))]
        x = rows[col] * 100
        err = None
        if f"{col}_low" in rows:
            err = whiskers(rows[col], rows[f"{col}_low"], rows[f"{col}_high"], 100)
        ax.errorbar(x, y, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                    color=_PALETTE[k % len(_PALETTE)], label=m.replace("_", " "))  # fmt: skip
    ax.set_yticks(range(len(channels)), channels)
    ax.invert_yaxis()
    ax.set_xlabel(f"share of attributed {'value' if value else 'conversions'} (%)")
    ax.set_xlim(left=min(0, ax.get_xlim()[0]))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False, ncols=2)
    ax.set_title("Channel credit by model (95 % bootstrap intervals)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_cost_vs_credit(costs: pd.DataFrame, *, model: str = "markov", ax: Axes | None = None):
    """Bars per channel: share of spend next to share of credited conversions under ``model``
    (with its interval). ``costs`` is ``AttributionResult.costs``."""
    df = costs[costs["model"] == model].sort_values("cost_share", ascending=False)
    if df.empty:
        raise ValueError(f"model {model!r} is not in the cost table: {sorted(set(costs.model))}")
    ax = axes(ax, (9, 0.5 * len(df) + 1.8))
    y = range(len(df))
    ax.barh([i - 0.2 for i in y], df["cost_share"] * 100, height=0.4, color="#8C8C8C",
            label="share of spend")  # fmt: skip
    err = None
    if "share_low" in df:
        err = whiskers(df["share"], df["share_low"], df["share_high"], 100)
    ax.barh([i + 0.2 for i in y], df["share"] * 100, height=0.4, color="#4C72B0", xerr=err,
            capsize=2, label=f"share of conversions ({model.replace('_', ' ')})")  # fmt: skip
    ax.set_yticks(list(y), df["channel"])
    ax.invert_yaxis()
    ax.set_xlabel("%")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("What each channel costs vs what it is credited with")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_path_sankey(flows: pd.DataFrame, *, title: str = "Channel paths"):
    """Plotly Sankey of :func:`cjlib.attribution.path_flows` (show with
    ``cjlib.report.show_plotly``). Links into ``conversion`` are green, into ``no conversion``
    grey."""
    import plotly.graph_objects as go

    nodes = list(dict.fromkeys([*flows["source"], *flows["target"]]))
    index = {n: i for i, n in enumerate(nodes)}
    colour = {"conversion": "rgba(85,168,104,0.55)", "no conversion": "rgba(140,140,140,0.45)"}
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={"label": nodes, "pad": 12, "thickness": 14},
            link={
                "source": [index[s] for s in flows["source"]],
                "target": [index[t] for t in flows["target"]],
                "value": flows["journeys"].tolist(),
                "color": [colour.get(t, "rgba(76,114,176,0.30)") for t in flows["target"]],
            },
        )
    )
    fig.update_layout(title=title, height=560, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def plot_transition_heatmap(matrix: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Heatmap of a Markov transition matrix (``MarkovFit.transition_matrix()``), in percent:
    rows are the current state, columns the next step (absorbing states last)."""
    import seaborn as sns

    ax = axes(ax, (0.85 * len(matrix.columns) + 2.5, 0.45 * len(matrix) + 1.6))
    sns.heatmap(matrix * 100, annot=True, fmt=".0f", cmap="Blues", vmin=0, vmax=100,
                cbar_kws={"label": "% of moves out"}, linewidths=0.5, linecolor="white",
                annot_kws={"fontsize": 7}, ax=ax)  # fmt: skip
    ax.set_xlabel("next step")
    ax.set_ylabel("from")
    ax.set_title("Markov transitions (first order, % of moves out of each state)")
    ax.tick_params(axis="x", rotation=35)
    ax.tick_params(axis="y", rotation=0)
    return ax
