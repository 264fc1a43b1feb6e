"""Guards for the funnel's query plan (cjlib.funnels.compute / chain / timing): the shortcuts
taken for speed must give exactly what the definition says. Every expected number is counted by
hand from the rows written in each test."""

from __future__ import annotations

import pandas as pd
import pytest

from cjlib.funnels import funnel

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def events(rows):
    """``(customer, seconds after T0, event)`` rows as an event table."""
    df = pd.DataFrame(rows, columns=["customer_id", "seconds", "event"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("seconds"), unit="s")
    return df


def test_sub_second_durations_are_not_rounded(engine):
    """a: A at 0.6 s, B at 60.4 s: 59.8 s, floored to minute 0 with resolution="1min" (rounding
    the epoch seconds to whole numbers would give 60 s, minute 1). b: A at 0 s, B at 120.9 s:
    minute 2. The converters' median (lower-quantile rule, of 0 and 2 minutes) is 0 h, p75 is
    2 min. With the default (to the second under an hour): 59 s and 120 s."""
    rows = [("a", 0.6, "A"), ("a", 60.4, "B"), ("b", 0.0, "A"), ("b", 120.9, "B")]
    f = funnel(events(rows), ["A", "B"], window=None, resolution="1min", engine=engine)
    t = f.timing.set_index("step")
    assert t.loc[2, "converters"] == 2
    assert t.loc[2, "median_hours"] == 0.0
    assert t.loc[2, "p75_hours"] == pytest.approx(2 / 60)
    t = funnel(events(rows), ["A", "B"], window=None, engine=engine).timing.set_index("step")
    assert t.loc[2, "median_hours"] * 3600 == pytest.approx(59)
    assert t.loc[2, "p75_hours"] * 3600 == pytest.approx(120)


def test_data_end_counts_events_outside_the_funnel(engine):
    """The default data end is the last event of any name (here Z at 10 h), so a with A at 0 h
    and a 12 h window is still in progress; with a 6 h window it has dropped."""
    rows = [("a", 0, "A"), ("b", 0, "A"), ("b", 3600, "B"), ("c", 36000, "Z")]
    f = funnel(events(rows), ["A", "B"], window="12h", engine=engine)
    assert f.as_of == T0 + pd.Timedelta(hours=10)
    assert list(f.steps["in_progress"]) == [0, 1]
    g = funnel(events(rows), ["A", "B"], window="6h", engine=engine)
    assert list(g.steps["in_progress"]) == [0, 0] and list(g.steps["dropped"]) == [0, 1]


def test_window_end_is_inclusive_to_the_microsecond(engine):
    """B exactly at the window end (entry + 1 h) counts; 1 microsecond later does not. With the
    data end at 1 h after entry the window has closed at the data end (not in progress); one
    microsecond before it, the unit is still in progress."""
    rows = [("a", 0.0, "A"), ("a", 3600.0, "B"), ("b", 0.0, "A"), ("b", 3600.000001, "B")]
    f = funnel(events(rows), ["A", "B"], window="1h", engine=engine)
    assert list(f.steps["customers"]) == [2, 1]
    end = T0 + pd.Timedelta(hours=1)
    rows2 = [("a", 0.0, "A"), ("z", 0.0, "B")]
    at = funnel(events(rows2), ["A", "B"], window="1h", as_of=end, engine=engine)
    before = funnel(
        events(rows2), ["A", "B"], window="1h", as_of=end - pd.Timedelta(microseconds=1),
        engine=engine,
    )  # fmt: skip
    assert list(at.steps["in_progress"]) == [0, 0] and list(at.steps["dropped"]) == [0, 1]
    assert list(before.steps["in_progress"]) == [0, 1]


def test_open_mode_entrants_join_the_chain_at_their_step(engine):
    """Open mode: a enters at A (0 s) and goes on to B (10 s) and C (20 s); c enters at B
    (0 s) and does C at 5 s; d enters at C. Reached: A 1, B 2 (a, c), C 3; c's C counts from
    its own entry."""
    rows = [("a", 0, "A"), ("a", 10, "B"), ("a", 20, "C"), ("c", 0, "B"), ("c", 5, "C"),
            ("d", 0, "C")]  # fmt: skip
    f = funnel(events(rows), ["A", "B", "C"], mode="open", window=None, engine=engine)
    assert list(f.steps["customers"]) == [1, 2, 3]
    assert list(f.steps["entered_here"]) == [1, 1, 1]
