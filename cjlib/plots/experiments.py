"""Experiment charts: lifts with intervals, the peeking-safe readout over time, segment effects.

Each function takes a table of :class:`cjlib.experiments.ExperimentResult`, draws on ``ax`` (a
new figure when ``None``) and returns it. Nothing here computes a statistic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cjlib.plots._common import axes, whiskers

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_lifts", "plot_sequential", "plot_segment_effects"]

_ROLE_COLOURS = {"primary": "#4C72B0", "secondary": "#55A868", "guardrail": "#C44E52"}


def _forest(ax: Axes, labels: list[str], frame: pd.DataFrame, colours: list[str]) -> None:
    y = list(range(len(frame)))[::-1]
    lift = frame["lift"] * 100
    err = whiskers(frame["lift"], frame["lift_low"], frame["lift_high"], 100)
    for yi, li, lo, hi, c in zip(y, lift, err[0], err[1], colours, strict=True):
        ax.errorbar(li, yi, xerr=[[lo], [hi]], fmt="o", color=c, capsize=4, ms=6)
        ax.annotate(
            f"{li:+.1f} %",
            (li, yi),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
    ax.axvline(0, color="#333333", lw=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(frame) - 0.3)
    ax.set_xlabel("relative lift vs control (%), 95 % interval")
    ax.spines[["top", "right"]].set_visible(False)


def plot_lifts(comparisons: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Forest plot: each metric's relative lift per variant with its interval, coloured by role;
    guardrails show their non-inferiority margin as a dashed line (``margin`` column optional)."""
    ax = axes(ax, (7.5, 0.55 * len(comparisons) + 1.6))
    multi = comparisons["variant"].nunique() > 1
    labels = [
        f"{r.metric} ({r.role})" + (f" · {r.variant}" if multi else "")
        for r in comparisons.itertuples()
    ]
    colours = [_ROLE_COLOURS.get(r, "#666666") for r in comparisons["role"]]
    _forest(ax, labels, comparisons, colours)
    if "margin" in comparisons:
        margins = comparisons.loc[comparisons["role"] == "guardrail", "margin"].dropna()
        for m in set(margins):
            ax.axvline(-m * 100, color=_ROLE_COLOURS["guardrail"], ls="--", lw=1)
    ax.set_title("Lift by metric (primary blue, secondary green, guardrail red)")
    return ax


def plot_sequential(
    sequential: pd.DataFrame, *, metric: str, variant: str | None = None, ax: Axes | None = None
) -> Axes:
    """The difference over daily looks with the always-valid interval (wide band) and the naive
    fixed-horizon interval (narrow band): the analyst may stop when the wide band leaves zero."""
    t = sequential[sequential["metric"] == metric]
    if variant is not None:
        t = t[t["variant"] == variant]
    elif not t.empty:
        t = t[t["variant"] == t["variant"].iloc[0]]
    if t.empty:
        raise ValueError(
            f"metric {metric!r} has no sequential looks; metrics: "
            f"{sorted(set(sequential['metric']))}"
        )
    ax = axes(ax, (8, 3.8))
    day = pd.to_datetime(t["day"])
    ax.fill_between(
        day,
        t["always_valid_low"],
        t["always_valid_high"],
        color="#4C72B0",
        alpha=0.25,
        label="always-valid 95 % interval (peeking-safe)",
    )
    ax.fill_between(
        day,
        t["fixed_low"],
        t["fixed_high"],
        color="#DD8452",
        alpha=0.35,
        label="fixed-horizon 95 % interval (valid at one planned look only)",
    )
    ax.plot(day, t["diff"], color="#222222", lw=1.2, label="difference (variant − control)")
    ax.axhline(0, color="#333333", lw=1)
    # the first looks have enormous intervals: frame the axis on the later 90 % of looks
    later = t.iloc[len(t) // 10 :]
    lo, hi = later["always_valid_low"].min(), later["always_valid_high"].max()
    pad = 0.1 * (hi - lo)
    ax.set_ylim(float(lo - pad), float(hi + pad))
    ax.set_ylabel(f"{metric}: difference")
    ax.set_title(f"{metric}: the readout day by day ({t['variant'].iloc[0]} vs control)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_segment_effects(
    segments: pd.DataFrame, *, dimension: str, metric: str | None = None, ax: Axes | None = None
) -> Axes:
    """Forest plot of the lift within each segment of ``dimension``; filled markers are
    significant after correction (``p_adjusted`` < 0.05), hollow ones are not."""
    t = segments[segments["dimension"] == dimension]
    if metric is not None:
        t = t[t["metric"] == metric]
    if t.empty:
        raise ValueError(
            f"dimension {dimension!r} has no segment rows; dimensions: "
            f"{sorted(set(segments.get('dimension', [])))}"
        )
    ax = axes(ax, (7.5, 0.45 * len(t) + 1.6))
    labels = [
        f"{s} (n = {a + b:,})"
        for s, a, b in zip(t["segment"], t["n_control"], t["n_variant"], strict=True)
    ]
    colours = ["#4C72B0" if p < 0.05 else "#9AA9C7" for p in t["p_adjusted"]]
    _forest(ax, labels, t.reset_index(drop=True), colours)
    ax.set_title(
        f"{t['metric'].iloc[0]}: lift by {dimension} (dark = significant after correction)"
    )
    return ax
