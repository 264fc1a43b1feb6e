"""Charts for cjlib results: ``plot_<thing>(result, *, ax=None, ...)``. Plotting only.

One module per analysis; every function takes a result table (or result object), draws, and
returns the matplotlib Axes (or a plotly Figure for interactive charts). Nothing here computes a
number that a result does not already hold.
"""

from __future__ import annotations

from cjlib.plots.attribution import (
    plot_cost_vs_credit,
    plot_credit_comparison,
    plot_path_sankey,
    plot_transition_heatmap,
)
from cjlib.plots.experiments import plot_lifts, plot_segment_effects, plot_sequential
from cjlib.plots.journeymap import plot_journey_map, plot_pain_points
from cjlib.plots.journeys import plot_furthest_stage, plot_transition_matrix

__all__ = [
    "plot_cost_vs_credit",
    "plot_credit_comparison",
    "plot_furthest_stage",
    "plot_journey_map",
    "plot_lifts",
    "plot_pain_points",
    "plot_path_sankey",
    "plot_segment_effects",
    "plot_sequential",
    "plot_transition_heatmap",
    "plot_transition_matrix",
]
