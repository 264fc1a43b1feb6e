"""Attribution on hand-made journeys: every reference number is a hand calculation shown here.

Journeys used by the rule-based tests (one journey each):
  j1 search > social > email        converted, value 100
  j2 social > direct                converted, value 50
  j3 direct                         converted, value 10
  j4 email                          not converted
  j5 search > search > direct > social  converted, value 40
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cjlib.attribution import (
    Journeys,
    attribute,
    fit_markov,
    read_path_table,
    select_order,
    shapley_values,
)
from cjlib.attribution.heuristics import position_weights, rule_credits
from cjlib.attribution.markov import MarkovDesign
from cjlib.attribution.shapley import channel_masks, rate_credits, restricted_shapley

SEQS = [
    ["search", "social", "email"],
    ["social", "direct"],
    ["direct"],
    ["email"],
    ["search", "search", "direct", "social"],
]
CONV = [1, 1, 1, 0, 1]
VALUE = [100, 50, 10, 0, 40]


@pytest.fixture
def hand() -> Journeys:
    return Journeys.from_sequences(SEQS, CONV, value=VALUE)


def credits(j: Journeys, model: str, **kw) -> dict[str, float]:
    c, _ = rule_credits(j, [model], **kw)[model]
    return dict(zip(j.channels, c, strict=True))


def test_first_last_and_last_non_direct(hand):
    """Hand counts: first touches search (j1, j5), social (j2), direct (j3); last touches email
    (j1), direct (j2, j3), social (j5); last non-direct: j2 -> social, j3 (all direct) -> direct.
    """
    assert credits(hand, "first_touch") == {"direct": 1, "email": 0, "search": 2, "social": 1}
    assert credits(hand, "last_touch") == {"direct": 2, "email": 1, "search": 0, "social": 1}
    assert credits(hand, "last_non_direct") == {"direct": 1, "email": 1, "search": 0, "social": 2}
    _, value = rule_credits(hand, ["last_touch"])["last_touch"]
    assert dict(zip(hand.channels, value, strict=True)) == {
        "direct": 60, "email": 100, "search": 0, "social": 40,
    }  # fmt: skip


def test_linear_and_position_based(hand):
    """Linear: search 1/3 + 2/4 = 5/6, social 1/3 + 1/2 + 1/4 = 13/12, email 1/3,
    direct 1/2 + 1 + 1/4 = 7/4. U-shaped 40/20/40: j1 .4/.2/.4, j2 .5/.5, j3 1,
    j5 .4/.1/.1/.4 -> search .9, social 1.1, email .4, direct 1.6."""
    lin = credits(hand, "linear")
    assert lin == pytest.approx(
        {"direct": 7 / 4, "email": 1 / 3, "search": 5 / 6, "social": 13 / 12}
    )
    u = credits(hand, "position_based")
    assert u == pytest.approx({"direct": 1.6, "email": 0.4, "search": 0.9, "social": 1.1})
    # J-shaped 20/20/60: j1 .2/.2/.6, j2 .25/.75, j3 1, j5 .2/.1/.1/.6
    jj = credits(hand, "position_based", position="j")
    assert jj == pytest.approx({"direct": 1.85, "email": 0.6, "search": 0.5, "social": 1.05})
    inv = credits(hand, "position_based", position="inverse_j")  # 60/20/20
    assert inv == pytest.approx({"direct": 1.35, "email": 0.2, "search": 1.3, "social": 1.15})
    custom = credits(hand, "position_based", position=(0.5, 0.0, 0.5))
    assert custom["social"] == pytest.approx(0.0 + 0.5 + 0.5)


def test_time_decay_by_position_and_participation(hand):
    """Half-life 1 touch: j1 weights 1/4, 1/2, 1 (sum 7/4) -> 1/7, 2/7, 4/7; j2 1/3, 2/3;
    j5 1/8, 1/4, 1/2, 1 (sum 15/8) -> search 3/15, direct 4/15, social 8/15.
    Participation: distinct channels of converting journeys: search 2, social 3, email 1,
    direct 3 (sum 9 > 4 conversions, by design)."""
    td = credits(hand, "time_decay", half_life=1.0)
    assert td["search"] == pytest.approx(1 / 7 + 3 / 15)
    assert td["social"] == pytest.approx(2 / 7 + 1 / 3 + 8 / 15)
    assert td["email"] == pytest.approx(4 / 7)
    assert td["direct"] == pytest.approx(2 / 3 + 1 + 4 / 15)
    part = credits(hand, "participation")
    assert part == {"direct": 3, "email": 1, "search": 2, "social": 3}


def test_position_weight_errors():
    with pytest.raises(ValueError, match="position_weights must be one of"):
        position_weights("w")
    with pytest.raises(ValueError, match="summing to 1"):
        position_weights((0.5, 0.5, 0.5))


MARKOV = [["A", "B"], ["A"], ["B"], ["B"]]


def test_first_order_markov_by_hand():
    """Paths A>B (conv, 30), A (null), B (conv, 10), B (null). Moves: start->A 2, start->B 2,
    A->B 1, A->null 1, B->conv 2, B->null 1. y_B = 2/3, y_A = 1/2 * 2/3 = 1/3,
    P = 1/2 y_A + 1/2 y_B = 1/2 (the observed rate). Without A: 1/2 * 2/3 = 1/3 -> RE 1/3;
    without B: 0 -> RE 1. Shares 1/4, 3/4 of 2 conversions -> A 0.5, B 1.5; value 40 -> 10, 30."""
    j = Journeys.from_sequences(MARKOV, [1, 0, 1, 0], value=[30, 0, 10, 0])
    fit = fit_markov(j, 1)
    assert fit.conversion_probability() == pytest.approx((0.5, 10.0))
    re = fit.removal_effects().set_index("channel")
    assert re["removal_effect"].to_dict() == pytest.approx({"A": 1 / 3, "B": 1.0})
    assert re["re_share"].to_dict() == pytest.approx({"A": 0.25, "B": 0.75})
    c, v = fit.credits(j.total_conversions, j.total_value)
    assert list(c) == pytest.approx([0.5, 1.5]) and list(v) == pytest.approx([10, 30])
    m = fit.transition_matrix()
    assert m.loc["(start)", "A"] == 0.5 and m.loc["A", "(null)"] == 0.5
    assert m.loc["B", "(conversion)"] == pytest.approx(2 / 3)


def test_markov_dense_series_and_sparse_lu_solutions_agree(hand, monkeypatch):
    """The bordered-inverse shortcut (dense), the series iterated to convergence (larger
    chains) and sparse LU solves (the series' fallback) give the same removal effects."""
    import cjlib.attribution.markov as mk

    for order in (1, 2, 3):
        dense = fit_markov(hand, order).removal_effects()
        monkeypatch.setattr(mk, "_DENSE_MAX", 0)
        series = fit_markov(hand, order).removal_effects()
        monkeypatch.setattr(mk, "_SWEEPS", 0)
        lu = fit_markov(hand, order).removal_effects()
        monkeypatch.setattr(mk, "_DENSE_MAX", 300)
        monkeypatch.setattr(mk, "_SWEEPS", 10_000)
        for other in (series, lu):
            for col in ("p_without", "value_without", "removal_effect"):
                assert other[col].to_numpy() == pytest.approx(dense[col], rel=1e-10, abs=1e-12)


def test_markov_series_on_a_chain_with_loops(monkeypatch):
    """A chain that loops a lot (each touch repeats its channel ~20 times) still converges
    to the dense solution; a chain that never gets to converge falls back to LU."""
    import cjlib.attribution.markov as mk

    rng = np.random.default_rng(3)
    seqs = [[str(c)] * int(rng.integers(1, 40)) + [str(rng.integers(0, 5))]
            for c in rng.integers(0, 5, 300)]  # fmt: skip
    j = Journeys.from_sequences(seqs, list(rng.integers(0, 2, 300)))
    dense = fit_markov(j, 2).removal_effects()
    monkeypatch.setattr(mk, "_DENSE_MAX", 0)
    series = fit_markov(j, 2).removal_effects()
    monkeypatch.setattr(mk, "_SWEEPS", 3)
    lu = fit_markov(j, 2).removal_effects()
    for other in (series, lu):
        assert other["removal_effect"].to_numpy() == pytest.approx(dense["removal_effect"], 1e-9)


def test_higher_order_states_and_single_touch_paths():
    """With single-touch paths only, every order gives the first-order answer; order-2 states
    are histories such as 'A > B'."""
    j = Journeys.from_sequences([["A"], ["B"], ["A"]], [1, 0, 0])
    r1 = fit_markov(j, 1).removal_effects()["removal_effect"].to_numpy()
    r3 = fit_markov(j, 3).removal_effects()["removal_effect"].to_numpy()
    assert r1 == pytest.approx(r3) and r1 == pytest.approx([1.0, 0.0])
    design = MarkovDesign.build(Journeys.from_sequences([["A", "B", "A"]], [1]), 2)
    assert design.state_labels() == ["(start)", "A", "A > B", "B > A"]
    with pytest.raises(ValueError, match="order must be an int from 1 to 4"):
        fit_markov(j, 5)


def test_select_order_prefers_memory_when_it_exists():
    """Journeys where the step after B depends on what came before B (A>B converts, C>B does
    not): order 2 must beat order 1 on held-out journeys."""
    seqs = [["A", "B"]] * 400 + [["C", "B"]] * 400
    conv = [1] * 400 + [0] * 400
    j = Journeys.from_sequences(seqs, conv)
    table = select_order(j, orders=(1, 2), random_state=1)
    assert table.loc[table["chosen"], "order"].item() == 2
    with pytest.raises(ValueError, match="test_share must be between 0 and 1"):
        select_order(j, test_share=1.5)


def test_shapley_glove_game():
    """Textbook glove game (Osborne & Rubinstein 1994, ex. 260.1; Wikipedia 'Shapley value'):
    players 0 and 1 hold left gloves, 2 a right glove; v = 1 for a pair. phi = (1/6, 1/6, 2/3)."""
    v = np.zeros(8)
    for mask in range(8):
        v[mask] = float((mask & 0b011) > 0 and (mask & 0b100) > 0)
    assert shapley_values(v) == pytest.approx([1 / 6, 1 / 6, 2 / 3])
    # the restricted game on the full coalition is the same game
    assert restricted_shapley(v, 3)[:, -1] == pytest.approx([1 / 6, 1 / 6, 2 / 3])
    with pytest.raises(ValueError, match="2\\*\\*n entries"):
        shapley_values(np.zeros(6))


def test_shapley_games(hand):
    """Conversions game closed form (equal split over distinct channels) equals the generic exact
    Shapley of v(S) = conversions of journeys with channel set inside S; Monte Carlo of the rate
    game is close to its exact value."""
    masks, journeys, conv, value = channel_masks(hand)
    n = len(hand.channels)
    v = np.zeros(1 << n)
    for m, c in zip(masks, conv, strict=True):
        sub = np.arange(1 << n)
        v[(sub & m) == m] += c
    res = attribute(hand, models=["shapley_simple", "shapley"], n_boot=0)
    simple = res.credits.set_index("channel").query("model == 'shapley_simple'")["conversions"]
    assert simple.to_numpy() == pytest.approx(shapley_values(v))
    exact, _, _ = rate_credits(masks, journeys, conv, value, n, max_exact=12)
    approx, _, method = rate_credits(
        masks, journeys, conv, value, n, max_exact=1, n_permutations=3000,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    assert "Monte Carlo" in method and approx == pytest.approx(exact, abs=0.05)
    assert exact.sum() == pytest.approx(4.0)


def _path_table() -> pd.DataFrame:
    """A ChannelAttribution-style path table: four paths over channels a, b, c."""
    return pd.DataFrame(
        {
            "path": ["a > b", "b", "a > a > c", "c"],
            "total_conversions": [3, 1, 2, 0],
            "total_conversion_value": [30.0, 5.0, 20.0, 0.0],
            "total_null": [7, 9, 8, 10],
        }
    )


def test_attribute_on_path_table_sums_and_intervals():
    table = _path_table()
    res = attribute(table, n_boot=50, random_state=4)
    sums = res.credits.groupby("model")["conversions"].sum().drop("participation")
    assert sums.to_numpy() == pytest.approx(6.0)
    assert (res.credits["conversions_low"] <= res.credits["conversions"] + 1e-9).all()
    again = attribute(table, n_boot=50, random_state=4)
    pd.testing.assert_frame_equal(res.credits, again.credits)
    assert {"share_markov", "spread", "agree"} <= set(res.comparison.columns)
    assert set(res.versus_last_touch["verdict"]) <= {"above", "below", "no clear difference"}
    d = res.to_dict()
    assert d["summary"]["conversions"] == 6.0 and "<table" in res._repr_html_()


def test_findings_versus_last_touch_say_more_less_or_neither():
    """On this path table Markov credits a more and b less than last touch (paired intervals
    exclude zero). With no clear difference the finding says so plainly; it read "credits no
    channel clearly more (paired ... intervals of the difference exclude zero)"."""
    import dataclasses

    from cjlib.attribution import describe_attribution

    table = _path_table()
    res = attribute(table, n_boot=50, random_state=4)
    lines = [x for x in describe_attribution(res) if x.startswith("Compared with last touch")]
    assert lines[0].startswith("Compared with last touch, Markov credits more to a (+33.3 pts)")
    assert (
        " and less to b (-22.2 pts) (paired 95 % bootstrap intervals of the difference "
        in (lines[0])
    )
    none = res.versus_last_touch.assign(verdict="no clear difference")
    lines = describe_attribution(dataclasses.replace(res, versus_last_touch=none))
    vs = [x for x in lines if x.startswith("Compared with last touch")]
    assert vs and all(
        "credits no channel clearly more or less (no paired 95 % bootstrap interval of the "
        "difference excludes zero)." in x
        for x in vs
    )


def test_read_path_table_errors(tmp_path):
    with pytest.raises(ValueError, match="path table needs a conversions column"):
        read_path_table(pd.DataFrame({"path": ["a"], "x": [1]}))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_path_table(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="column_map roles must be among"):
        read_path_table(pd.DataFrame({"path": ["a"], "conversions": [1]}), column_map={"x": "y"})


def test_attribute_argument_errors(hand):
    with pytest.raises(ValueError, match="models must be among"):
        attribute(hand, models=["magic"], n_boot=0)
    with pytest.raises(ValueError, match="markov_order must be 1, 2, 3, 4 or 'auto'"):
        attribute(hand, markov_order=7)
    with pytest.raises(ValueError, match="n_boot must be 0"):
        attribute(hand, n_boot=1)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        attribute(hand, confidence=2)
    with pytest.raises(ValueError, match="half_life must be a number > 0"):
        attribute(hand, models=["time_decay"], half_life=0, n_boot=0)
    none = Journeys.from_sequences([["a"]], [0])
    with pytest.raises(ValueError, match="nothing to attribute"):
        attribute(none, n_boot=0)


def test_costs_cpa_and_roas(hand):
    """Last touch: direct 2 conversions (value 60), email 1 (100), social 1 (40).
    Spend direct 10, email 50, social 30, search 10 (total 100) -> CPA direct 5, email 50,
    social 30; ROAS email 2; cost share email 0.5 vs credit share 0.25 -> ratio 0.5."""
    costs = pd.DataFrame(
        {"channel": ["direct", "email", "social", "search", "email"],
         "spend": [10.0, 20.0, 30.0, 10.0, 30.0]}
    )  # fmt: skip
    res = attribute(hand, models=["last_touch", "linear"], n_boot=20, costs=costs)
    c = res.costs.query("model == 'last_touch'").set_index("channel")
    assert c.loc["direct", "cpa"] == pytest.approx(5.0)
    assert c.loc["email", "cpa"] == pytest.approx(50.0)
    assert c.loc["email", "roas"] == pytest.approx(2.0)
    assert c.loc["email", "credit_to_cost"] == pytest.approx(0.5)
    assert np.isnan(c.loc["search", "cpa"])  # no credit: no cost per conversion
    with pytest.raises(ValueError, match="costs need columns"):
        attribute(hand, models=["linear"], n_boot=0, costs=pd.DataFrame({"channel": ["a"]}))


def test_fast_rule_credits_match_touch_weights():
    """The per-path fast paths give what the touch-by-touch weights give (random journeys)."""
    from cjlib.attribution.heuristics import RULE_MODELS, touch_weights

    rng = np.random.default_rng(7)
    seqs = [
        list(rng.choice(["a", "b", "direct", "d"], size=rng.integers(1, 7))) for _ in range(300)
    ]
    conv = rng.integers(0, 2, 300)
    j = Journeys.from_sequences(seqs, conv, value=conv * rng.random(300) * 50)
    fast = rule_credits(j, RULE_MODELS, position="j", half_life=2.0)
    pid = j.path_ids
    for model in RULE_MODELS:
        w = touch_weights(j, model, position="j", half_life=2.0)
        slow = np.bincount(j.codes, w * j.conversions[pid], len(j.channels))
        assert fast[model][0] == pytest.approx(slow), model
        slow_v = np.bincount(j.codes, w * j.value[pid], len(j.channels))
        assert fast[model][1] == pytest.approx(slow_v), model


def test_read_path_table_reads_the_separator_from_the_header(tmp_path):
    """ChannelAttribution writes ';'; a spreadsheet export writes ','. Both give the same
    journeys (hand count: 3 + 1 conversions, 2 nulls on 'a > b')."""
    rows = {"path": ["a > b", "b"], "total_conversions": [3, 1], "total_null": [2, 0]}
    for sep in (";", ","):
        path = tmp_path / f"paths{ord(sep)}.csv"
        pd.DataFrame(rows).to_csv(path, sep=sep, index=False)
        j = read_path_table(path)
        assert j.total_conversions == 4 and j.n_paths == 2
