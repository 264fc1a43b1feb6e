"""Journeys on a hand-made log: every number below is counted by hand from conftest.tiny_events.

c1: ad_impression, content_view (awareness x2 -> one step), product_view (consideration),
    ad_impression (awareness: regression), add_to_cart (consideration), purchase.
c2: first_visit (awareness), purchase (skip), repeat_purchase (retention), review (advocacy).
c3: ad_impression (awareness), mystery_event (unmapped).
"""

from __future__ import annotations

import pandas as pd
import pytest

import cjlib as cj
from cjlib.journeys import describe_journeys
from cjlib.schema import SchemaError
from cjlib.stages import seven_stage


@pytest.fixture
def events(tiny_events, engine):
    return cj.load_events(tiny_events, engine=engine)


def test_stage_sequences(events):
    seq = cj.stage_sequences(events).set_index("customer_id")
    assert seq.loc["c1", "path"] == (
        "awareness > consideration > awareness > consideration > purchase"
    )
    assert seq.loc["c1", "n_steps"] == 5 and seq.loc["c1", "regressions"] == 1
    assert seq.loc["c2", "path"] == "awareness > purchase > retention > advocacy"
    assert seq.loc["c2", "furthest_stage"] == "advocacy"
    assert seq.loc["c3", "path"] == "awareness" and seq.loc["c3", "regressions"] == 0


def test_collapse_false_keeps_repeats(events):
    seq = cj.stage_sequences(events, collapse=False).set_index("customer_id")
    assert seq.loc["c1", "n_steps"] == 6
    assert seq.loc["c1", "path"].startswith("awareness > awareness > consideration")


def test_stage_transitions_hand_counts(events):
    tr = cj.stage_transitions(events).set_index(["from_stage", "to_stage"])
    assert tr.loc[("(start)", "awareness"), "transitions"] == 3
    assert tr.loc[("awareness", "consideration"), "transitions"] == 2  # c1 twice
    assert tr.loc[("awareness", "consideration"), "customers"] == 1
    assert tr.loc[("consideration", "awareness"), "kind"] == "regression"
    assert tr.loc[("awareness", "purchase"), "kind"] == "skip"
    assert tr.loc[("awareness", "(end)"), "transitions"] == 1  # c3
    # out of awareness: 2 to consideration, 1 to purchase, 1 end -> shares 1/2, 1/4, 1/4
    assert tr.loc[("awareness", "consideration"), "share"] == pytest.approx(0.5)
    assert tr.loc[("awareness", "purchase"), "share"] == pytest.approx(0.25)
    sums = cj.stage_transitions(events).groupby("from_stage")["share"].sum()
    assert sums.to_numpy() == pytest.approx(1.0)


def test_furthest_stage_hand_counts(events):
    fs = cj.furthest_stage(events).set_index("stage")
    assert fs["customers"].to_dict() == {
        "awareness": 1,
        "consideration": 0,
        "purchase": 1,
        "retention": 0,
        "advocacy": 1,
    }
    assert fs.loc["purchase", "reached"] == 2
    assert fs.loc["purchase", "reached_share"] == pytest.approx(2 / 3)
    # Wilson 95 % for 2/3 (hand calculation with z = 1.959964): 0.2077 to 0.9385
    assert fs.loc["purchase", "reached_low"] == pytest.approx(0.2077, abs=1e-4)
    assert fs.loc["purchase", "reached_high"] == pytest.approx(0.9385, abs=1e-4)


def test_stage_paths_and_coverage(events):
    paths = cj.stage_paths(events, top=None)
    assert paths["customers"].sum() == 3
    assert paths["share"].to_numpy() == pytest.approx(1 / 3)
    cov = cj.stage_coverage(events).set_index("event")
    assert pd.isna(cov.loc["mystery_event", "stage"])
    assert cov.loc["ad_impression", "events"] == 3


def test_seven_stage_model(events):
    seq = cj.stage_sequences(events, seven_stage()).set_index("customer_id")
    assert seq.loc["c2", "furthest_stage"] == "advocacy"
    assert "retention" in seq.loc["c2", "path"]


def test_stage_column_with_aliases(engine):
    df = pd.DataFrame(
        {
            "customer_id": ["a"] * 4,
            "timestamp": pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC"),
            "event": ["e1", "e2", "e3", "e4"],
            "stage": ["Świadomość", "考虑", "conștientizare", "Zakup"],
        }
    )
    seq = cj.stage_sequences(df, engine=engine)
    assert seq.path[0] == "awareness > consideration > awareness > purchase"
    assert seq.regressions[0] == 1
    with pytest.raises(SchemaError, match=r"events\.stage: values that are not stages"):
        cj.stage_sequences(df.assign(stage=["x", "y", "z", "w"]), engine=engine)


def test_describe_journeys_states_denominators(events):
    lines = describe_journeys(
        cj.furthest_stage(events), cj.stage_transitions(events), cj.stage_paths(events)
    )
    assert lines[0].startswith(
        "66.7 % of the 3 customers with a mapped event reached consideration"
    )
    assert any("go back to an earlier stage" in line for line in lines)
    assert not any("No event maps to" in line for line in lines)  # every early stage is tracked


def test_describe_journeys_says_when_a_stage_is_not_tracked(engine):
    """No awareness event (a click-stream): every customer "reached" awareness because reached
    counts customers at or past a stage, so "0.0 % lost between awareness and consideration"
    was a measurement of nothing. Hand count: a and b view a product, a buys."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    df = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "event": ["product_view", "purchase", "product_view"],
            "timestamp": t0 + pd.to_timedelta([0, 1, 0], unit="h"),
        }
    )
    events = cj.load_events(df, engine=engine)
    lines = describe_journeys(cj.furthest_stage(events), cj.stage_transitions(events))
    assert "No event maps to awareness: customers past it are counted" in " ".join(lines)
    assert not any(line.startswith("Between awareness and") for line in lines)
    assert any("Between consideration and purchase, 50.0 % of the 2 customers" in x for x in lines)
    # a goes forward once and never back: "0.0 % ... go back: journeys are not linear" said the
    # opposite of what it measured
    assert "None of the 1 stage-to-stage moves goes back to an earlier stage." in lines
    assert not any("journeys are not linear" in line for line in lines)


def test_bad_stage_model_argument(events):
    with pytest.raises(TypeError, match="stages must be a StageModel"):
        cj.stage_sequences(events, "five_stage")


def test_stage_paths_suppresses_small_groups(events):
    assert cj.stage_paths(events, min_customers=2).empty
    with pytest.raises(ValueError, match="min_customers must be an int >= 1, got 0"):
        cj.stage_paths(events, min_customers=0)
    with pytest.raises(ValueError, match="top must be a positive int or None"):
        cj.stage_paths(events, top=0)


def test_mapped_rows_skip_the_filter_only_when_every_event_maps(events, engine):
    """tiny_events has one unmapped event (c3's mystery_event): the mapped rows leave it out.
    Without it every event maps, no filter is written, and the steps are the same."""
    from cjlib.stage_mapping import _mapped, _model

    model = _model(None)
    some = engine.to_pandas(_mapped(events, model, engine).select("event"))["event"]
    assert len(some) == 12 - 1 and "mystery_event" not in set(some)
    frame = events.to_pandas()
    complete = cj.load_events(frame[frame["event"] != "mystery_event"], engine=engine)
    every = _mapped(complete, model, engine)
    # (the only WHERE left is the repeat-purchase rule's, which selects purchases)
    unmapped_out = '"stage_index" IS NOT NULL'
    assert unmapped_out not in str(engine.con.compile(every))
    assert unmapped_out in str(engine.con.compile(_mapped(events, model, engine)))
    pd.testing.assert_frame_equal(
        cj.stage_sequences(complete).sort_values("customer_id").reset_index(drop=True),
        cj.stage_sequences(events).sort_values("customer_id").reset_index(drop=True),
    )
