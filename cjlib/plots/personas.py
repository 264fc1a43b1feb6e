"""Persona charts: k selection, sizes, trait profiles, stability, stages reached, RFM segments.

Each function takes a result (or its table), draws, and returns the matplotlib Axes (or an array
of Axes for multi-panel charts). Nothing here computes a number the result does not hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cjlib.plots._common import axes, whiskers

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "plot_k_selection",
    "plot_persona_sizes",
    "plot_persona_profiles",
    "plot_persona_stability",
    "plot_persona_stages",
    "plot_rfm_segments",
]

_LABELS = {
    "silhouette": "silhouette (higher is better)",
    "calinski_harabasz": "Calinski–Harabasz (higher)",
    "davies_bouldin": "Davies–Bouldin (lower)",
    "bic": "BIC (lower)",
    "prediction_strength": "prediction strength (≥ threshold)",
}


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)


def plot_k_selection(selection: Any) -> np.ndarray:
    """One panel per criterion over k; the chosen k is marked in every panel."""
    import matplotlib.pyplot as plt

    table = selection.table
    crits = [c for c in _LABELS if c in table and table[c].notna().any()]
    fig, axes = plt.subplots(1, len(crits), figsize=(3.3 * len(crits), 3), dpi=110,
                             layout="constrained", squeeze=False)  # fmt: skip
    for ax, crit in zip(axes[0], crits, strict=True):
        ax.plot(table["k"], table[crit], marker="o", color="#4C72B0")
        ax.axvline(selection.chosen_k, color="#C44E52", ls="--", lw=1)
        if crit == "prediction_strength":
            ax.axhline(selection.params.get("threshold", 0.9), color="#777777", ls=":", lw=1)
            ax.set_ylim(0, 1.05)
        ax.set_title(_LABELS[crit], fontsize=9)
        ax.set_xlabel("k (personas)")
        ax.set_xticks(list(table["k"]))
        _tidy(ax)
    fig.suptitle(
        f"Choosing k: {selection.criterion.replace('_', ' ')} chose k = {selection.chosen_k} "
        "(dashed line)",
        fontsize=10,
    )
    return axes[0]


def plot_persona_sizes(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Horizontal bars: share of customers per persona with 95 % Wilson whiskers."""
    ax = axes(ax, (7, 0.55 * len(summary) + 1.2))
    y = np.arange(len(summary))[::-1]
    share = summary["share"] * 100
    err = whiskers(summary["share"], summary["share_low"], summary["share_high"], 100)
    ax.barh(y, share, xerr=err, color="#4C72B0", capsize=3, ecolor="#333333")
    labels = [f"{int(i)}. {n}" for i, n in zip(summary.persona_id, summary.persona, strict=True)]
    ax.set_yticks(y, labels, fontsize=8)
    for yi, s, n in zip(y, share, summary["customers"], strict=True):
        ax.annotate(f" {s:.1f} % ({int(n):,})", (s, yi), va="center", fontsize=8,
                    xytext=(8, 0), textcoords="offset points")  # fmt: skip
    ax.set_xlim(0, float(share.max()) * 1.35 + 1)
    ax.set_xlabel("share of customers (%)")
    ax.set_title("Persona sizes (95 % Wilson intervals)")
    _tidy(ax)
    return ax


def plot_persona_profiles(traits: pd.DataFrame, *, top: int = 14, ax: Axes | None = None) -> Axes:
    """Heatmap of effect sizes (Cohen's d or h, persona vs rest) for the most distinctive
    traits; red over-indexes, blue under-indexes."""
    import seaborn as sns

    t = traits.assign(
        label=np.where(
            traits["level"].isna(),
            traits["trait"],
            traits["trait"] + " = " + traits["level"].astype(str),
        )  # fmt: skip
    )
    t = t[~t["trait"].str.startswith("days_")]
    strength = t.groupby("label")["effect"].apply(lambda s: s.abs().max())
    keep = strength.sort_values(ascending=False).head(top).index
    matrix = (
        t[t["label"].isin(keep)]
        .pivot_table(index="label", columns="persona_id", values="effect")
        .reindex(keep)
    )
    ax = axes(ax, (1.2 * matrix.shape[1] + 4.5, 0.36 * len(matrix) + 1.6))
    lim = float(np.nanmax(np.abs(matrix.to_numpy()))) if matrix.size else 1.0
    sns.heatmap(matrix, annot=True, fmt="+.1f", cmap="RdBu_r", center=0, vmin=-lim, vmax=lim,
                cbar_kws={"label": "effect size (d or h)"}, linewidths=0.5, ax=ax)  # fmt: skip
    ax.set_xlabel("persona")
    ax.set_ylabel("")
    ax.set_title("What sets each persona apart (effect vs all other customers)")
    return ax


def plot_persona_stability(stability: Any, *, ax: Axes | None = None) -> Axes:
    """Mean bootstrap Jaccard per persona with its 2.5-97.5 % range; Hennig's 0.6/0.75/0.85."""
    p = stability.personas
    ax = axes(ax, (6, 0.5 * len(p) + 1.4))
    y = np.arange(len(p))[::-1]
    err = whiskers(p["jaccard"], p["jaccard_low"], p["jaccard_high"])
    colors = np.where(p["flagged"], "#C44E52", "#55A868")
    ax.barh(y, p["jaccard"], xerr=err, color=colors, capsize=3, ecolor="#333333")
    for x in (0.6, 0.75, 0.85):
        ax.axvline(x, color="#999999", ls=":", lw=1)
    ax.set_yticks(y, [f"persona {i}" for i in p["persona_id"]], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("mean Jaccard similarity with the best-matching bootstrap cluster")
    s = stability.summary
    ax.set_title(
        f"Stability over {s['n_boot']} bootstrap refits: ARI {s['ari_mean']:.2f} "
        f"[{s['ari_low']:.2f}, {s['ari_high']:.2f}]",
        fontsize=10,
    )
    _tidy(ax)
    return ax


def plot_persona_stages(stages: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Share of each persona reaching each stage or a later one, with Wilson whiskers."""
    ax = axes(ax, (7.5, 3.6))
    order = list(dict.fromkeys(stages["stage"]))
    x = np.arange(len(order))
    for pid, g in stages.groupby("persona_id"):
        g = g.set_index("stage").reindex(order)
        share = g["reached_share"] * 100
        err = whiskers(g["reached_share"], g["reached_low"], g["reached_high"], 100)
        ax.errorbar(x, share, yerr=err, marker="o", capsize=3, label=f"persona {pid}")
    ax.set_xticks(x, order)
    ax.set_ylim(0, 105)
    ax.set_ylabel("customers reaching the stage (%)")
    ax.set_title("How far each persona gets (furthest stage reached, 95 % Wilson intervals)")
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    return ax


def plot_rfm_segments(
    segments: pd.DataFrame, *, min_customers: int = 10, ax: Axes | None = None
) -> Axes:
    """Share of buyers and share of revenue per RFM segment; segments with fewer than
    ``min_customers`` buyers are not drawn (privacy)."""
    segments = segments[segments["customers"] >= min_customers]
    ax = axes(ax, (8, 0.45 * len(segments) + 1.4))
    y = np.arange(len(segments))[::-1]
    ax.barh(y + 0.2, segments["share"] * 100, height=0.4, color="#4C72B0", label="buyers")
    ax.barh(y - 0.2, segments["revenue_share"] * 100, height=0.4, color="#DD8452", label="revenue")
    ax.set_yticks(y, segments["segment"], fontsize=8)
    ax.set_xlabel("share (%)")
    ax.set_title("RFM segments: share of buyers and of revenue")
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    return ax
