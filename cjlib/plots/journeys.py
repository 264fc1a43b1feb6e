"""Journey charts: furthest stage reached, stage transition matrix.

Each function takes a result table, draws on ``ax`` (a new figure when ``None``) and returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cjlib.plots._common import axes, whiskers

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_furthest_stage", "plot_transition_matrix"]


def plot_furthest_stage(furthest: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars: share of customers who reached each stage or later, with interval whiskers.

    ``furthest`` is :func:`cjlib.journeys.furthest_stage`'s table.
    """
    ax = axes(ax, (7, 3.6))
    x = range(len(furthest))
    share = furthest["reached_share"] * 100
    f = furthest
    err = whiskers(f["reached_share"], f["reached_low"], f["reached_high"], 100)
    ax.bar(x, share, color="#4C72B0", yerr=err, capsize=4, ecolor="#333333")
    for i, (s, n) in enumerate(zip(share, furthest["reached"], strict=True)):
        ax.annotate(
            f"{s:.1f} %\n({n:,})",
            (i, s),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(list(x), furthest["stage"], rotation=0)
    ax.set_ylabel("customers reaching the stage (%)")
    ax.set_ylim(0, 118)
    ax.set_title("How far customers get (furthest stage reached, 95 % Wilson intervals)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_transition_matrix(transitions: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Heatmap of ``share`` from each stage (rows) to the next step (columns), in percent.

    ``transitions`` is :func:`cjlib.journeys.stage_transitions`'s table. Cells below the diagonal
    are regressions.
    """
    import seaborn as sns

    from cjlib.journeys import END, START

    order = list(dict.fromkeys(transitions["from_stage"]))
    cols = [s for s in order if s != START] + [END]
    matrix = (
        transitions.pivot_table(
            index="from_stage", columns="to_stage", values="share", aggfunc="sum"
        ).reindex(index=order, columns=cols)
        * 100
    )
    ax = axes(ax, (1.3 * len(cols) + 2, 0.7 * len(order) + 1.5))
    sns.heatmap(
        matrix,
        annot=True,
        fmt=".1f",
        cmap="Blues",
        cbar_kws={"label": "% of moves out"},
        linewidths=0.5,
        linecolor="white",
        ax=ax,
        vmin=0,
        vmax=100,
    )
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.set_title("Stage transitions (% of moves out of each stage)")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    return ax
