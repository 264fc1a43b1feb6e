"""Persona charts draw from result tables, including bounds equal to the estimate."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cjlib.plots import personas as charts  # noqa: E402


def test_stage_chart_accepts_bounds_that_round_below_the_estimate():
    """Wilson's upper bound at p = 1 can come out as 0.9999999999999999: the whisker must be 0,
    not a negative length matplotlib refuses."""
    stages = pd.DataFrame(
        {
            "persona_id": [1, 1],
            "stage": ["awareness", "consideration"],
            "reached_share": [1.0, 0.5],
            "reached_low": [0.99, 0.4],
            "reached_high": [1 - 1e-16, 0.6],
        }
    )
    ax = charts.plot_persona_stages(stages)
    assert ax.get_title().startswith("How far each persona gets")


def test_size_and_rfm_charts_hide_nothing_they_should_show():
    summary = pd.DataFrame(
        {
            "persona_id": [1, 2],
            "persona": ["Older, search-led", "Younger, social-led"],
            "customers": [60, 40],
            "share": [0.6, 0.4],
            "share_low": [0.5, 0.3],
            "share_high": [0.7, 0.5],
        }
    )
    ax = charts.plot_persona_sizes(summary)
    assert len(ax.patches) == 2
    rfm = pd.DataFrame(
        {
            "segment": ["Champions", "Others"],
            "customers": [50, 3],
            "share": [0.94, 0.06],
            "revenue_share": [0.99, 0.01],
        }  # fmt: skip
    )
    ax = charts.plot_rfm_segments(rfm, min_customers=10)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Champions"], "small segment hidden"
    assert np.isfinite([p.get_width() for p in ax.patches]).all()
