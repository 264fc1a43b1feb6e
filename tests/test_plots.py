"""Charts draw what the result tables hold (no empty or unlabelled charts)."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

import cjlib as cj  # noqa: E402
from cjlib import plots  # noqa: E402


def test_furthest_stage_chart(tiny_events, engine):
    furthest = cj.furthest_stage(cj.load_events(tiny_events, engine=engine))
    ax = plots.plot_furthest_stage(furthest)
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [round(v * 100, 6) for v in furthest["reached_share"]]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(furthest["stage"])
    assert ax.get_ylabel() and ax.get_title()


def test_transition_heatmap(tiny_events, engine):
    transitions = cj.stage_transitions(cj.load_events(tiny_events, engine=engine))
    ax = plots.plot_transition_matrix(transitions)
    labels = [t.get_text() for t in ax.texts]
    assert "50.0" in labels and "25.0" in labels  # awareness -> consideration / purchase
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "(start)"


def test_whiskers_are_never_negative_and_charts_take_bounds_a_hair_inside():
    """A bound a last bit past its estimate (1 - 1e-16 for 100 %) gave matplotlib a negative
    whisker ("'yerr' must not contain negative values") and the data-check notebook failed on
    the retentioneering shop log, where every customer reaches consideration."""
    import numpy as np
    import pandas as pd

    from cjlib.plots._common import whiskers

    w = whiskers([1.0, 0.0, 0.5, 0.4], [0.9, 1e-17, 0.4, np.nan], [1 - 1e-16, 0.1, 0.7, 0.6], 100)
    assert w.shape == (2, 4) and (w >= 0).all()
    assert w[:, 2] == pytest.approx([10, 20]) and w[0, 3] == 0  # a missing bound: no whisker
    furthest = pd.DataFrame(
        {
            "stage": ["awareness", "consideration"],
            "reached": [10, 10],
            "reached_share": [1.0, 1.0],
            "reached_low": [0.72, 0.72],
            "reached_high": [1 - 1e-16, 1.0],
        }
    )
    ax = plots.plot_furthest_stage(furthest)
    assert [round(p.get_height(), 6) for p in ax.patches] == [100.0, 100.0]
