"""Touch journeys built in the engine, paths and per-segment attribution (hand-counted)."""

from __future__ import annotations

import pandas as pd
import pytest

import cjlib as cj
from cjlib.attribution import attribute_segments, path_flows, top_paths, touch_journeys


def _frame(j) -> dict[str, tuple[float, float, float]]:
    df = j.to_frame()
    return {r.path: (r.conversions, r.nulls, r.value) for r in df.itertuples()}


def test_journeys_from_tiny_events(tiny_events, engine):
    """conftest.tiny_events: c1 touches display, social, search, video, email then buys (40);
    c2 direct then buys (15.5; repeat_purchase is not the conversion event); c3 display only."""
    j = touch_journeys(cj.load_events(tiny_events, engine=engine))
    assert _frame(j) == {
        "display > social > search > video > email": (1, 0, 40.0),
        "direct": (1, 0, 15.5),
        "display": (0, 1, 0.0),
    }
    assert j.unattributed == {"conversions": 0.0, "value": 0.0}


def test_lookback_window_drops_old_touches(tiny_events, engine):
    """Lookback 2 days: c1 buys 01-04 10:10, so search (01-02 10:00, 2 days 10 min before) and
    older touches drop: 'video > email'. c2's only touch is 4 days old: its conversion is not
    attributed (counted, value 15.5)."""
    j = touch_journeys(cj.load_events(tiny_events, engine=engine), lookback_days=2)
    assert _frame(j) == {"video > email": (1, 0, 40.0), "display": (0, 1, 0.0)}
    assert j.unattributed == {"conversions": 1.0, "value": 15.5}


def events(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "event", "channel", "revenue"])


def test_journeys_reset_after_conversion_and_collapse(engine):
    """x: search, buy, email, email, buy, social -> 'search' (conv), 'email > email' (conv),
    'social' (no conversion). With collapse_repeats the middle journey is 'email'."""
    df = events(
        [
            ("x", "2026-01-01T00:00:00Z", "ad_impression", "search", None),
            ("x", "2026-01-02T00:00:00Z", "purchase", None, 10.0),
            ("x", "2026-01-03T00:00:00Z", "ad_impression", "email", None),
            ("x", "2026-01-03T01:00:00Z", "product_view", "email", None),
            ("x", "2026-01-04T00:00:00Z", "purchase", None, 20.0),
            ("x", "2026-01-05T00:00:00Z", "ad_impression", "social", None),
        ]
    )
    loaded = cj.load_events(df, engine=engine)
    assert _frame(touch_journeys(loaded)) == {
        "search": (1, 0, 10.0),
        "email > email": (1, 0, 20.0),
        "social": (0, 1, 0.0),
    }
    assert "email" in _frame(touch_journeys(loaded, collapse_repeats=True))


def test_time_decay_uses_touch_times(engine):
    """Touches 7 days and 0 days before the purchase, half-life 7 days: weights 1/2 and 1,
    so credit 1/3 to search and 2/3 to email (value 90 -> 30 and 60)."""
    df = events(
        [
            ("y", "2026-03-01T00:00:00Z", "ad_impression", "search", None),
            ("y", "2026-03-08T00:00:00Z", "product_view", "email", None),
            ("y", "2026-03-08T00:00:00Z", "purchase", None, 90.0),
        ]
    )
    res = cj.attribution.attribute(
        cj.load_events(df, engine=engine), models=["time_decay"], n_boot=0, half_life=7
    )
    got = res.credits.set_index("channel")
    assert got.loc["search", "conversions"] == pytest.approx(1 / 3)
    assert got.loc["email", "value"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="differs from the half_life"):
        from cjlib.attribution.heuristics import rule_credits

        rule_credits(res.journeys, ["time_decay"], half_life=3)


def test_event_errors(tiny_events, engine):
    loaded = cj.load_events(tiny_events, engine=engine)
    with pytest.raises(ValueError, match="conversion_event 'order' does not occur"):
        touch_journeys(loaded, conversion_event="order")
    with pytest.raises(ValueError, match="lookback_days must be a number > 0"):
        touch_journeys(loaded, lookback_days=0)
    with pytest.raises(ValueError, match=r"events need columns \['channel'\]"):
        touch_journeys(tiny_events.drop(columns="channel"), engine=engine)


def test_top_paths_and_flows(tiny_events, engine):
    """Three journeys: the converting paths each have 1 journey and rate 1/1; Wilson 95 % for
    1/1 is (0.2065, 1) (Wilson 1927 with z = 1.96: low = 1 / (1 + z^2))."""
    j = touch_journeys(cj.load_events(tiny_events, engine=engine))
    top = top_paths(j, min_journeys=1)
    assert list(top["conversions"]) == [1, 1]
    assert top["conversion_rate_low"].iloc[0] == pytest.approx(1 / (1 + 1.959964**2), abs=1e-4)
    assert top_paths(j, min_journeys=2).empty  # privacy: no path with 2+ journeys
    flows = path_flows(j, min_journeys=1, max_steps=2)
    assert set(flows["target"]) >= {"conversion", "no conversion", "more touches"}
    with pytest.raises(ValueError, match="kind must be 'converting' or 'non_converting'"):
        top_paths(j, kind="other")


def test_sample_journeys_persona_segments(engine):
    """Every persona of the sample gets credits; credits per segment sum to its conversions."""
    from conftest import DATA

    ev = cj.load_events(DATA / "events.csv", engine=engine)
    seg = attribute_segments(
        ev, DATA / "customer_persona.csv", models=["linear", "markov"], n_boot=0, engine=engine
    )
    assert seg.sizes["shown"].all() and len(seg.sizes) == 4
    sums = seg.credits.groupby(["segment", "model"])["conversions"].sum().unstack()
    conv = seg.sizes.set_index("segment")["conversions"]
    assert sums["markov"].to_numpy() == pytest.approx(conv.reindex(sums.index).to_numpy())
    with pytest.raises(ValueError, match="segment_column must be one of"):
        attribute_segments(ev, DATA / "customer_persona.csv", segment_column="x", engine=engine)
