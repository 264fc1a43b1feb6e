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
from cjlib.plots.funnels import (
    plot_cohort_trend,
    plot_drivers,
    plot_funnel,
    plot_segment_gaps,
    plot_stage_losses,
    plot_stage_sankey,
    plot_time_to_convert,
)
from cjlib.plots.journeymap import plot_journey_map, plot_pain_points
from cjlib.plots.journeys import plot_furthest_stage, plot_transition_matrix
from cjlib.plots.personas import (
    plot_k_selection,
    plot_persona_profiles,
    plot_persona_sizes,
    plot_persona_stability,
    plot_persona_stages,
    plot_rfm_segments,
)

__all__ = [
    "plot_cohort_trend",
    "plot_cost_vs_credit",
    "plot_credit_comparison",
    "plot_drivers",
    "plot_funnel",
    "plot_furthest_stage",
    "plot_journey_map",
    "plot_k_selection",
    "plot_lifts",
    "plot_pain_points",
    "plot_path_sankey",
    "plot_persona_profiles",
    "plot_persona_sizes",
    "plot_persona_stability",
    "plot_persona_stages",
    "plot_rfm_segments",
    "plot_segment_effects",
    "plot_segment_gaps",
    "plot_sequential",
    "plot_stage_losses",
    "plot_stage_sankey",
    "plot_time_to_convert",
    "plot_transition_heatmap",
    "plot_transition_matrix",
]
