"""Segment breakdowns: hand-computed rates and tests, suppression, and the segment sources."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA
from test_funnels import ROWS, STEPS, frame

import cjlib as cj
from cjlib.funnels import funnel
from cjlib.funnels.inference import newcombe_interval, two_proportion_test
from cjlib.funnels.segments import (
    attribute_segments,
    first_channel_segments,
    funnel_segments,
    persona_segments,
    variant_segments,
)

SEGMENTS = pd.DataFrame({"customer_id": list("abdefg"), "tier": ["x"] * 3 + ["y"] * 3})


def test_segment_rates_and_test_by_hand(engine):
    """Closed, 48 h window (test_funnels' toy log). x = a,b,d: B 3/3, C 2/3, whole 2/3.
    y = e,f,g: B 1/(3 - g in progress) = 1/2, C 1/1, whole 1/2. x vs rest at step 2: 3/3 vs 1/2,
    R prop.test(c(3, 1), c(3, 2), correct = FALSE): X-squared = 1.875, p = 0.1709."""
    r = funnel_segments(frame(ROWS), STEPS, SEGMENTS, window="48h", min_size=3, engine=engine)
    t = r.table.set_index(["segment", "step"])
    assert t.loc[("x", 2), ["converted", "denominator"]].tolist() == [3, 3]
    assert t.loc[("y", 2), ["converted", "denominator"]].tolist() == [1, 2]
    assert t.loc[("x", 0), "conversion"] == pytest.approx(2 / 3)
    assert t.loc[("y", 0), "conversion"] == pytest.approx(1 / 2)
    assert t.loc[("x", 2), "p_value"] == pytest.approx(0.1709, abs=1e-4)
    assert t.loc[("x", 2), "difference"] == pytest.approx(0.5)
    assert (t["p_adjusted"] >= t["p_value"]).all() and not t["significant"].any()
    assert list(r.sizes["entrants"]) == [3, 3]
    whole = funnel(frame(ROWS), STEPS, window="48h", engine=engine)
    assert (
        t.loc[("x", 2), "converted"] + t.loc[("y", 2), "converted"]
        == whole.steps.loc[1, "continued"]
    )


def test_small_segments_are_suppressed(engine):
    r = funnel_segments(frame(ROWS), STEPS, SEGMENTS, window="48h", min_size=4, engine=engine)
    assert r.table["suppressed"].all()
    assert r.table["conversion"].isna().all() and r.table["p_value"].isna().all()
    assert r.sizes["entrants"].isna().all()


def test_two_proportion_helpers():
    """Newcombe (1998) Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339."""
    low, high = newcombe_interval(56, 70, 48, 80)
    assert float(low) == pytest.approx(0.0524, abs=1e-4)
    assert float(high) == pytest.approx(0.3339, abs=1e-4)
    assert float(two_proportion_test(3, 3, 1, 2)) == pytest.approx(0.1709, abs=1e-4)


def test_segment_sources(tiny_events, engine):
    events = cj.load_events(tiny_events, engine=engine)
    first = engine.to_pandas(first_channel_segments(events)).set_index("customer_id")["segment"]
    assert first.to_dict() == {"c1": "display", "c2": "direct", "c3": "display"}
    customers = cj.load_customers(DATA / "customers.csv", engine=engine)
    region = engine.to_pandas(attribute_segments(customers, "region"))
    assert set(region["segment"]) == {"north", "south", "east", "west", "central"}
    experiments = cj.load_experiments(DATA / "experiments.csv", engine=engine)
    variants = engine.to_pandas(variant_segments(experiments))
    assert set(variants["segment"]) == {"control", "treatment"}
    personas = engine.to_pandas(persona_segments(DATA / "customer_persona.csv", engine=engine))
    assert len(personas) == 5000 and personas["segment"].nunique() == 4


def test_segment_errors(tiny_events, engine):
    events = cj.load_events(tiny_events, engine=engine)
    customers = cj.load_customers(DATA / "customers.csv", engine=engine)
    with pytest.raises(ValueError, match="column: 'regoin' is not in the customers table"):
        attribute_segments(customers, "regoin")
    experiments = cj.load_experiments(DATA / "experiments.csv", engine=engine)
    with pytest.raises(ValueError, match=r"experiment must be one of \['checkout_redesign'\]"):
        variant_segments(experiments, experiment="other")
    with pytest.raises(ValueError, match="persona file must have columns customer_id and persona"):
        persona_segments(pd.DataFrame({"customer_id": ["c1"], "label": ["p"]}), engine=engine)
    steps = ["ad_impression", "purchase"]
    twice = pd.DataFrame({"customer_id": ["c1", "c1"], "s": ["a", "b"]})
    with pytest.raises(ValueError, match="1 customers appear more than once"):
        funnel_segments(events, steps, twice)
    one = pd.DataFrame({"customer_id": ["c1"], "s": ["a"]})
    with pytest.raises(ValueError, match=r"adjust must be one of \['holm', 'bh', 'none'\]"):
        funnel_segments(events, steps, one, adjust_method="bonferroni")
    with pytest.raises(ValueError, match="min_size must be an int >= 1"):
        funnel_segments(events, steps, one, min_size=0)


def test_customers_without_a_segment(engine):
    """g has no segment: kept as '(none)' by default, left out with missing='drop'."""
    partial = SEGMENTS[SEGMENTS.customer_id != "g"]
    kept = funnel_segments(frame(ROWS), STEPS, partial, window="48h", min_size=1, engine=engine)
    assert set(kept.sizes["segment"]) == {"x", "y", "(none)"}
    dropped = funnel_segments(frame(ROWS), STEPS, partial, window="48h", min_size=1,
                              missing="drop", engine=engine)  # fmt: skip
    assert list(dropped.sizes["entrants"]) == [3, 2]
    with pytest.raises(ValueError, match="missing must be 'keep' or 'drop', got 'none'"):
        funnel_segments(frame(ROWS), STEPS, partial, missing="none", engine=engine)
