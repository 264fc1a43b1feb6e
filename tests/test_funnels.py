"""Funnel definition and engine: every mode and option against hand-computed expectations.

The toy log (hours after 2026-01-01 00:00 UTC; the data end at hour 100 unless told):

    a: A@0  B@1  C@2            converts in every mode
    b: A@0  C@1  B@2            closed: stops after B (C came before B); any order: converts
    c: B@0  C@1                 never does A: only the open and any-order funnels see c
    d: A@0  X@1  B@2  C@3       X is the exclusion event in the exclusion tests
    e: A@0  B@0  C@0            all at the same second (ties count as in order)
    f: A@0  B@50 C@51           B falls outside a 48 h window
    g: A@100                    enters one hour... at the data end: in progress with a 48 h window

Every expected number below is counted by hand from this table.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cjlib.funnels import funnel, funnel_spec

T0 = pd.Timestamp("2026-01-01", tz="UTC")
ROWS = [
    ("a", 0, "A"), ("a", 1, "B"), ("a", 2, "C"),
    ("b", 0, "A"), ("b", 1, "C"), ("b", 2, "B"),
    ("c", 0, "B"), ("c", 1, "C"),
    ("d", 0, "A"), ("d", 1, "X"), ("d", 2, "B"), ("d", 3, "C"),
    ("e", 0, "A"), ("e", 0, "B"), ("e", 0, "C"),
    ("f", 0, "A"), ("f", 50, "B"), ("f", 51, "C"),
    ("g", 100, "A"),
]  # fmt: skip
STEPS = ["A", "B", "C"]


def frame(rows, extra=None):
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event", *(extra or [])])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("hours"), unit="h")
    return df


@pytest.fixture
def toy():
    return frame(ROWS)


def col(result, name):
    return list(result.steps[name])


def test_closed_funnel_with_window_and_in_progress(toy, engine):
    """Entrants a,b,d,e,f,g = 6. Step 2: a,b,d,e reach B; f dropped (B after 48 h); g in
    progress (entered at hour 100 = data end, window open): 4 / (6 - 1) = 0.8. Step 3: a,d,e;
    b dropped: 3 / 4; from start 3 / (6 - 1) = 0.6."""
    f = funnel(toy, STEPS, window="48h", engine=engine)
    assert f.entered == 6
    assert col(f, "customers") == [6, 4, 3]
    assert col(f, "in_progress") == [0, 1, 0]
    assert col(f, "dropped") == [0, 1, 1]
    assert col(f, "conversion") == pytest.approx([1.0, 0.8, 0.75])
    assert col(f, "conversion_from_start") == pytest.approx([1.0, 0.8, 0.6])
    assert col(f, "denominator") == [6, 5, 4]
    assert f.as_of == T0 + pd.Timedelta(hours=100)
    low, high = f.steps.loc[1, ["conversion_low", "conversion_high"]]
    assert low == pytest.approx(0.3755, abs=1e-4) and high == pytest.approx(0.9638, abs=1e-4)
    assert f.weakest_step == 3


def test_no_window_means_nobody_in_progress(toy, engine):
    """Without a window f reaches B at hour 50 and C at 51; g is dropped (not in progress)."""
    f = funnel(toy, STEPS, window=None, engine=engine)
    assert col(f, "customers") == [6, 5, 4]
    assert col(f, "in_progress") == [0, 0, 0]
    assert col(f, "dropped") == [0, 1, 1]


def test_as_of_moves_the_data_end(toy, engine):
    """With the data ending at hour 200, g's 48 h window has closed: dropped, not in progress."""
    f = funnel(toy, STEPS, window="48h", as_of=T0 + pd.Timedelta(hours=200), engine=engine)
    assert col(f, "in_progress") == [0, 0, 0]
    assert col(f, "conversion") == pytest.approx([1.0, 4 / 6, 0.75])


def test_exclusion_event_ends_the_journey(toy, engine):
    """d does X between A and B: excluded at step 2. Step 2: a,b,e = 3 / (6 - 1); step 3: a,e of
    a,b,e = 2 / 3."""
    f = funnel(toy, STEPS, window="48h", exclude=["X"], engine=engine)
    assert col(f, "customers") == [6, 3, 2]
    assert col(f, "excluded") == [0, 1, 0]
    assert col(f, "conversion") == pytest.approx([1.0, 0.6, 2 / 3])
    only_late = funnel(toy, STEPS, window="48h", exclude={"X": (2, 3)}, engine=engine)
    assert col(only_late, "customers") == [6, 4, 3], "X between steps 2 and 3 only: d unaffected"


def test_open_funnel_lets_customers_enter_later(toy, engine):
    """c enters at step 2 (B@0) and reaches C. Step 2: 5 customers (4 continued + c entered);
    conversion 4 / (6 - 1). Step 3: a,d,e,c = 4 of the 5 at step 2; from start 4 / (7 - 1)."""
    f = funnel(toy, STEPS, mode="open", window="48h", engine=engine)
    assert f.entered == 7
    assert col(f, "customers") == [6, 5, 4]
    assert col(f, "entered_here") == [6, 1, 0]
    assert col(f, "continued") == [6, 4, 4]
    assert col(f, "conversion")[1:] == pytest.approx([0.8, 0.8])
    assert col(f, "conversion_from_start")[2] == pytest.approx(4 / 6)


def test_any_order(toy, engine):
    """Entry at the first funnel event; 7 entrants. Step 1 (A within 48 h): all but c, 6 / 7.
    Step 2 (A and B): a,b,d,e of 6, g in progress: 4 / 5. Step 3: all four also did C."""
    f = funnel(toy, STEPS, mode="any_order", window="48h", engine=engine)
    assert f.entered == 7
    assert col(f, "customers") == [6, 4, 4]
    assert col(f, "conversion") == pytest.approx([6 / 7, 0.8, 1.0])


def test_strict_order(toy, engine):
    """B must be the very next event after A: a and e (ties ordered by event name: A, B, C);
    b (C next), d (X next), f (B outside the window) dropped; g in progress: 2 / 5."""
    f = funnel(toy, STEPS, strict=True, window="48h", engine=engine)
    assert col(f, "customers") == [6, 2, 2]
    assert col(f, "dropped") == [0, 3, 0]
    assert col(f, "conversion")[1] == pytest.approx(0.4)


def test_minimum_and_maximum_gaps(toy, engine):
    """min 90 min before B: b (2 h) and d (2 h) qualify; a (1 h) and e (0) do not.
    max 30 min from B to C: only e (0 min); a and d took 1 h."""
    f = funnel(toy, STEPS, window="48h", min_gap={2: "90min"}, engine=engine)
    assert col(f, "customers") == [6, 2, 1]
    g = funnel(toy, STEPS, window="48h", max_gap=[None, "30min"], engine=engine)
    assert col(g, "customers") == [6, 4, 1]
    assert col(g, "dropped")[2] == 3


def test_ties_when_steps_overlap(engine):
    """Steps A then A|B can be the same event: the second must be strictly later. h: two A at
    the same second (one step only); i: A then A an hour later; j: A then B at the same second."""
    rows = [("h", 0, "A"), ("h", 0, "A"), ("i", 0, "A"), ("i", 1, "A"), ("j", 0, "A"),
            ("j", 0, "B")]  # fmt: skip
    f = funnel(frame(rows), ["A", "A|B"], window=None, engine=engine)
    assert col(f, "customers") == [3, 1]


def test_hold_constant_key(engine):
    """k: A@0 (s1), B@1 C@2 A@3 B@4 (s2). Held by session the s1 attempt stops at A and the s2
    attempt (A@3, B@4) reaches B: furthest attempt = 2 steps. Not held: A, B, C = 3 steps."""
    rows = [("k", 0, "A", "s1"), ("k", 1, "B", "s2"), ("k", 2, "C", "s2"), ("k", 3, "A", "s2"),
            ("k", 4, "B", "s2")]  # fmt: skip
    df = frame(rows, ["session_id"])
    held = funnel(df, STEPS, window=None, hold="session_id", engine=engine)
    assert col(held, "customers") == [1, 1, 0]
    assert col(funnel(df, STEPS, window=None, engine=engine), "customers") == [1, 1, 1]


def test_journeys_count_re_entries(engine):
    """m: A@0 B@1 A@2 B@3 C@4 A@10. Journeys start at each A and run to the next A: (0,2) reaches
    B (C@4 is in the next journey), (2,10) converts, (10,-) stays at A."""
    rows = [("m", 0, "A"), ("m", 1, "B"), ("m", 2, "A"), ("m", 3, "B"), ("m", 4, "C"),
            ("m", 10, "A")]  # fmt: skip
    f = funnel(frame(rows), STEPS, window=None, count="journeys", engine=engine)
    assert col(f, "customers") == [3, 2, 1]
    unique = funnel(frame(rows), STEPS, window=None, engine=engine)
    assert col(unique, "customers") == [1, 1, 1]
    # with a 7-day window and the data end at hour 10, the journey (0, 2) that stopped at B has
    # dropped, not in progress: the entry at hour 2 ended it (found by the oracle test);
    # (10, -) is in progress towards B
    f = funnel(frame(rows), STEPS, window="7D", count="journeys", engine=engine)
    assert col(f, "in_progress") == [0, 1, 0] and col(f, "dropped") == [0, 0, 1]
    assert col(f, "customers") == [3, 2, 1] and f.entered == 3


def test_entry_first_ever_or_first_in_period(engine):
    """n: A on 1 Jan, A and B on 1 Feb. Period from 15 Jan: n's first ever A is before the period
    (not counted); the first A inside the period counts and reaches B."""
    rows = [("n", 0, "A"), ("n", 31 * 24, "A"), ("n", 31 * 24 + 1, "B")]
    period = ("2026-01-15", None)
    first = funnel(frame(rows), ["A", "B"], window=None, period=period, engine=engine)
    assert first.entered == 0 and col(first, "customers") == [0, 0]
    inside = funnel(frame(rows), ["A", "B"], window=None, period=period,
                    entry="first_in_period", engine=engine)  # fmt: skip
    assert col(inside, "customers") == [1, 1]


def test_stage_steps(tiny_events, engine):
    """conftest's tiny log: c1, c2, c3 reach awareness; c1 reaches consideration and purchase,
    c2 skips consideration (no consideration step after awareness)."""
    import cjlib as cj

    steps = ["stage:awareness", "stage:consideration", "stage:purchase"]
    events = cj.load_events(tiny_events, engine=engine)
    f = funnel(events, steps, stages=cj.five_stage(), window=None)
    assert col(f, "customers") == [3, 1, 1]
    assert col(f, "label") == ["awareness", "consideration", "purchase"]


def test_time_to_convert_and_kaplan_meier(toy, engine):
    """A->B durations: a 1 h, b 2 h, d 2 h, e 0 h (events); f censored at 48 h (window end);
    g censored at 0 h (data end). Converters' median 1.5 h (of 0,1,2,2 the 2nd = 1 h with the
    lower-quantile rule). KM at 2 h: 1 - (5/6)(3/4)(1/3)... see below."""
    f = funnel(toy, STEPS, window="48h", engine=engine)
    t = f.timing.set_index("step")
    assert t.loc[2, "converters"] == 4 and t.loc[2, "censored"] == 2
    assert t.loc[2, "median_hours"] == pytest.approx(1.0)
    km = f.km[f.km.step == 2].set_index("hours")
    # at risk: 6 at 0 h (1 event e; g censored at 0 after the event), then 4 at 1 h (a), 3 at 2 h
    # (b, d): S = (5/6)(3/4)(1/3) = 0.2083, converted = 0.7917
    assert km.loc[0.0, "converted"] == pytest.approx(1 / 6)
    assert km.loc[2.0, "converted"] == pytest.approx(1 - (5 / 6) * (3 / 4) * (1 / 3))
    assert (km["converted_low"] <= km["converted"]).all()
    assert t.loc[2, "km_median_hours"] == pytest.approx(2.0)


def test_time_to_convert_keeps_seconds_under_an_hour_and_minutes_above(engine):
    """A->B after 30 s, 90.5 s and 2 h 30 min 45 s. The automatic precision floors to the
    second under an hour and to the minute above: 30 s, 90 s, 9,000 s; with resolution="1min"
    every duration is floored to the minute: 0, 60 and 9,000 s (a click-stream's seconds were
    all 0.0 hours on the simple-shop log with the old one-minute default). Quantiles take the
    lower value: p25 = 30 s, median = 90 s, p90 = 9,000 s."""
    secs = [0, 0, 0, 30, 90.5, 9045]
    df = pd.DataFrame({"customer_id": list("xyzxyz"), "event": list("AAABBB")})
    df["timestamp"] = T0 + pd.to_timedelta(secs, unit="s")
    f = funnel(df, ["A", "B"], window="1D", as_of=T0 + pd.Timedelta(days=3), engine=engine)
    t = f.timing.set_index("step").loc[2]
    assert [t.p25_hours * 3600, t.median_hours * 3600, t.p90_hours * 3600] == pytest.approx(
        [30, 90, 9000]
    )
    km = f.km[f.km.step == 2]
    assert list(km["hours"] * 3600) == pytest.approx([30, 90, 9000])
    f = funnel(df, ["A", "B"], window="1D", resolution="1min", engine=engine)
    t = f.timing.set_index("step").loc[2]
    assert [t.p25_hours * 3600, t.median_hours * 3600, t.p90_hours * 3600] == pytest.approx(
        [0, 60, 9000]
    )


def test_result_shape(toy, engine):
    f = funnel(toy, STEPS, window="48h", engine=engine)
    d = f.to_dict()
    assert d["spec"]["steps"] == STEPS and d["spec"]["window_seconds"] == 48 * 3600
    assert len(d["steps"]) == 3 and "conversion_low" in d["steps"][0]
    assert "Funnel" in f._repr_html_()
    assert f.to_frame().shape[0] == 3
    again = funnel(toy, f.spec, engine=engine)
    pd.testing.assert_frame_equal(again.steps, f.steps)


def test_repeated_step_is_the_next_occurrence(engine):
    """purchase -> purchase -> purchase: the second and third orders (an order table's repeat
    funnel). Hand count, 30-day window from the first order: a orders on days 0, 4 and 31 (third
    outside the window); b twice at the same instant (not a later order); c on days 0 and 60.
    Only a reaches the 2nd order; nobody the 3rd. Without a window a and c reach the 2nd."""
    rows = [("a", "2024-01-01", "purchase"), ("a", "2024-01-05", "purchase"),
            ("a", "2024-02-01", "purchase"), ("b", "2024-01-02", "purchase"),
            ("b", "2024-01-02", "purchase"), ("c", "2024-01-03", "purchase"),
            ("c", "2024-03-03", "purchase")]  # fmt: skip
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    f = funnel(df, ["purchase"] * 3, window="30D", as_of="2024-12-31", engine=engine)
    assert f.steps["label"].tolist() == ["purchase", "purchase (2nd)", "purchase (3rd)"]
    assert f.steps["customers"].tolist() == [3, 1, 0]
    assert f.steps["dropped"].tolist() == [0, 2, 1]
    f = funnel(df, ["purchase", "purchase"], window=None, as_of="2024-12-31", engine=engine)
    assert f.steps["customers"].tolist() == [3, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(steps=["A"]), "steps must be a list of at least 2 steps"),
        (dict(steps=["A", "A"], mode="any_order"), "steps must be distinct in mode='any_order'"),
        (dict(steps=["A", "B"], mode="funnel"), r"mode must be one of \['closed', 'open'"),
        (dict(steps=["A", "B"], mode="opne"), "did you mean 'open'"),
        (dict(steps=["A", "B"], window="soon"), "window must be a duration"),
        (dict(steps=["A", "B"], min_gap=[1, 2]), "one gap per step after the first"),
        (dict(steps=["A", "B"], min_gap={3: "1h"}), r"keys are step numbers 2\.\.2"),
        (dict(steps=["A", "B"], min_gap="2h", max_gap="1h"), "is larger than max_gap"),
        (dict(steps=["A", "B"], mode="any_order", strict=True), "takes no strict order"),
        (dict(steps=["A", "B"], count="journeys", mode="open"), "count='journeys' needs"),
        (dict(steps=["A", "B"], exclude={"X": (2, 2)}), "must satisfy 1 <= from < to <= 2"),
        (dict(steps=["A", "B"], period=("2026-02-01", "2026-01-01")), "start must be before"),
        (dict(steps=["stage:awareness", "B"]), "names a stage but no stage model"),
        (dict(steps=["A", "B"], entry="last"), "entry must be one of"),
    ],
)
def test_definition_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        funnel_spec(**kwargs)


def test_errors_that_need_the_data(toy, engine):
    with pytest.raises(ValueError, match="steps: event 'Bb' does not occur.*did you mean 'B'"):
        funnel(toy, ["A", "Bb"], engine=engine)
    with pytest.raises(ValueError, match="hold: column 'session_id' is not in the events"):
        funnel(toy, STEPS, hold="session_id", engine=engine)
    with pytest.raises(ValueError, match="resolution must be 'auto' or a positive duration"):
        funnel(toy, STEPS, resolution=0, engine=engine)
