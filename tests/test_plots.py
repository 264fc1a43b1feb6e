"""Charts draw what the result tables hold (no empty or unlabelled charts)."""

from __future__ import annotations

import matplotlib

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
