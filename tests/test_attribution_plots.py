"""Attribution charts draw what the result tables hold."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from cjlib.attribution import attribute
from cjlib.plots.attribution import plot_cost_vs_credit, plot_credit_comparison, plot_path_sankey

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def result():
    table = pd.DataFrame(
        {
            "path": ["a > b", "b", "a > c > b", "c"],
            "conversions": [30, 10, 20, 0],
            "value": [300.0, 50.0, 200.0, 0.0],
            "nulls": [70, 90, 80, 100],
        }
    )
    costs = pd.DataFrame({"channel": ["a", "b", "c"], "spend": [100.0, 50.0, 25.0]})
    return attribute(table, n_boot=30, costs=costs)


def test_credit_comparison_draws_every_model(result):
    ax = plot_credit_comparison(result.credits)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "markov" in labels and "participation" not in labels
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]


def test_cost_vs_credit_and_sankey(result):
    ax = plot_cost_vs_credit(result.costs, model="markov")
    assert len(ax.patches) == 6  # 3 spend bars + 3 credit bars
    with pytest.raises(ValueError, match="model 'x' is not in the cost table"):
        plot_cost_vs_credit(result.costs, model="x")
    fig = plot_path_sankey(result.path_flows(min_journeys=1))
    assert "conversion" in fig.data[0].node.label
