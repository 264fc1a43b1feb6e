"""Trends, drivers, the stage view, findings and the funnel charts.

Hand-computed cases use test_funnels' toy log (closed A -> B -> C, 48 h window, data end at
hour 100): a, b, d, e enter on 1 Jan (week of 29 Dec 2025), f too, g on 5 Jan (next week).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import DATA  # noqa: E402
from test_funnels import ROWS, STEPS, frame  # noqa: E402

import cjlib as cj  # noqa: E402
from cjlib import funnels  # noqa: E402
from cjlib.funnels.trends import trend_test  # noqa: E402
from cjlib.plots import funnels as fplots  # noqa: E402


def test_cohorts_by_hand(engine):
    """Week of 2025-12-29: a,b,d,e,f entered; a,d,e converted of 5. Week of 2026-01-05: g, in
    progress. Both cohorts are incomplete: a customer entering on the cohort's last day (4 Jan)
    would still be inside a 48 h window at the data end (5 Jan 04:00). With the default
    min_size 10 both cohorts are suppressed."""
    t = funnels.funnel_trends(frame(ROWS), STEPS, window="48h", min_size=1, engine=engine)
    rows = t.table.set_index(t.table["cohort"].dt.strftime("%Y-%m-%d"))
    assert rows.loc["2025-12-29", ["entrants", "converted", "denominator"]].tolist() == [5, 3, 5]
    assert rows["incomplete"].all() and pd.isna(t.p_value)
    assert rows.loc["2026-01-05", "in_progress"] == 1
    small = funnels.funnel_trends(frame(ROWS), STEPS, window="48h", engine=engine)
    assert small.table["suppressed"].all() and small.table["conversion"].isna().all()


def test_trend_test_matches_r():
    """prop.trend.test(c(15, 10, 5), c(30, 30, 30)) by hand: pooled p = 1/3, scores 0, 1, 2,
    Sxx = sum n (s - 1)^2 = 60, slope = sum (x - n p)(s - 1) / Sxx = -10 / 60 = -1/6,
    X-squared = slope^2 Sxx / (p (1 - p)) = 7.5 on 1 df, p = 0.006170 (R's formula: weighted
    regression sum of squares of x/n on the scores, divided by p (1 - p))."""
    slope, p = trend_test([15, 10, 5], [30, 30, 30])
    assert slope == pytest.approx(-1 / 6)
    assert p == pytest.approx(0.006170, abs=1e-6)
    # two cohorts: R's prop.trend.test(c(15, 5), c(30, 30)) = prop.test without correction,
    # X-squared = (1/2 - 1/6)^2 / (1/3 * 2/3 * (1/30 + 1/30)) = 7.5 again; slope = -1/3
    slope, p = trend_test([15, 5], [30, 30])
    assert slope == pytest.approx(-1 / 3) and p == pytest.approx(0.006170, abs=1e-6)
    assert np.isnan(trend_test([15], [30])[1])


def test_cohort_trend_scores_by_calendar_week(engine):
    """Entries in the weeks of 1 and 15 January 2024, none in the week between: the two cohorts
    are two weeks apart, so the slope per cohort (week) is half the difference of the rates:
    (8/10 - 2/10) / 2 = 0.3 (scored 0, 1 it was 0.6); the p-value of two groups does not depend
    on the scores: R prop.test(c(2, 8), c(10, 10), correct = FALSE), by hand X-squared =
    0.6^2 / (0.5 * 0.5 * 2 / 10) = 7.2 on 1 df, p = 0.007290."""
    t0 = pd.Timestamp("2024-01-01 09:00", tz="UTC")  # a Monday
    rows = []
    for week, buyers in ((0, 2), (2, 8)):
        for i in range(10):
            cid, start = f"w{week}c{i}", t0 + pd.Timedelta(weeks=week)
            rows.append((cid, start, "a"))
            if i < buyers:
                rows.append((cid, start + pd.Timedelta(hours=1), "b"))
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event"])
    res = funnels.funnel_trends(df, ["a", "b"], window="1D", min_size=1, engine=engine,
                                as_of="2024-03-01")  # fmt: skip
    assert list(res.table["converted"]) == [2, 8]
    assert res.slope == pytest.approx(0.3)
    assert res.p_value == pytest.approx(0.007290, abs=1e-6)


def test_drivers_by_hand(engine):
    """Step 3 (C) of the toy funnel: a, d, e went on, b dropped (f dropped at step 2, g in
    progress). Events done up to reaching B, other than A's steps B and C: d did X (1 of 3
    converted), nobody who dropped did."""
    d = funnels.dropoff_drivers(frame(ROWS), STEPS, step=3, window="48h", min_size=1,
                                engine=engine)  # fmt: skip
    assert (d.n_dropped, d.n_converted) == (1, 3)
    x = d.table.set_index(["feature", "value"]).loc[("event", "X")]
    assert (x.dropped_with, x.converted_with) == (0, 1)
    assert x.difference == pytest.approx(-1 / 3)
    with pytest.raises(ValueError, match="step must be an int from 2 to 3, got 1"):
        funnels.dropoff_drivers(frame(ROWS), STEPS, step=1, engine=engine)


@pytest.fixture(scope="module")
def sample():
    eng = cj.Engine.duckdb()
    events = cj.load_events(DATA / "events.csv", engine=eng)
    customers = cj.load_customers(DATA / "customers.csv", engine=eng)
    return events, customers


def test_stage_view_on_the_sample(sample):
    events, _ = sample
    view = funnels.stage_view(events, cj.five_stage())
    refs = view.references.set_index("to_stage")
    assert refs.loc["consideration", "lost_share"] == 0.38
    assert refs.loc["consideration", "our_low"] < 0.38 < refs.loc["consideration", "our_high"]
    reached = view.furthest.set_index("stage")["reached"]
    assert (
        view.funnel.steps.set_index("label").loc["consideration", "customers"]
        == reached["consideration"]
    ), "closed stage funnel without window = customers reaching consideration after awareness"
    assert (view.links["customers"] >= 10).all() and view.links["source"].str.startswith("1.").any()
    assert view.dwell.set_index("stage").loc["consideration", "median_hours"] < 1
    assert 0 < view.regression_share() < 0.5


def test_stage_view_starts_at_the_first_stage_the_data_record(engine):
    """A click-stream with no awareness event (the simple-shop log: catalog, products, cart,
    payment): a closed stage funnel entered at awareness was empty and so was its chart. Hand
    count: a, b, c view products (consideration); a and b pay (purchase); a reviews (advocacy):
    consideration 3 -> purchase 2 -> retention 0 -> advocacy 0 (a's review comes after a
    retention stage it never reached)."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [("a", 0, "product_view"), ("a", 1, "purchase"), ("a", 2, "review_submitted"),
            ("b", 0, "product_view"), ("b", 3, "purchase"), ("c", 0, "product_view")]  # fmt: skip
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event"])
    df["timestamp"] = t0 + pd.to_timedelta(df.pop("hours"), unit="h")
    view = funnels.stage_view(df, cj.five_stage(), min_customers=1, engine=engine)
    assert view.skipped == ("awareness",)
    steps = view.funnel.steps
    assert list(steps["label"]) == ["consideration", "purchase", "retention", "advocacy"]
    assert list(steps["customers"]) == [3, 2, 0, 0]
    refs = view.references.set_index("to_stage")
    assert np.isnan(refs.loc["consideration", "our_lost_share"])
    assert refs.loc["purchase", "our_lost_share"] == pytest.approx(1 / 3)
    ax = fplots.plot_stage_losses(view)
    heights = [p.get_height() for p in ax.patches]  # nobody at retention: no rate, no bar
    assert heights[:2] == pytest.approx([100 / 3, 100.0]) and np.isnan(heights[2])
    assert view.to_dict()["skipped"] == ["awareness"]


def test_stage_view_ends_at_the_last_stage_the_data_record(engine):
    """An order log maps to consideration and purchase only: a stage funnel through retention
    and advocacy showed a 100 % loss into stages nobody records (the simple-shop report's last
    bar). Hand count: a, b view; a buys: consideration 2 -> purchase 1, and nothing after."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [("a", 0, "product_view"), ("a", 1, "purchase"), ("b", 0, "product_view")]
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event"])
    df["timestamp"] = t0 + pd.to_timedelta(df.pop("hours"), unit="h")
    view = funnels.stage_view(df, cj.five_stage(), min_customers=1, engine=engine)
    assert view.skipped == ("awareness",) and view.trailing == ("retention", "advocacy")
    assert list(view.funnel.steps["label"]) == ["consideration", "purchase"]
    assert list(view.funnel.steps["customers"]) == [2, 1]
    assert view.to_dict()["trailing"] == ["retention", "advocacy"]
    # one recorded stage only: still a two-stage funnel (into the next stage)
    only = funnels.stage_view(df[df.event == "product_view"], cj.five_stage(), engine=engine)
    assert list(only.funnel.steps["label"]) == ["consideration", "purchase"]


def test_dwell_times_to_the_second_under_an_hour(engine):
    """Consideration lasts 45 s for a and 2 h 0 min 30 s for b (then purchase): to the second
    under an hour, to the minute above, so 45 s and 7,200 s (minute precision made 45 s 0)."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    df = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "event": ["product_view", "purchase"] * 2,
            "timestamp": t0 + pd.to_timedelta([0, 45, 0, 7230], unit="s"),
        }
    )
    dwell = funnels.dwell_times(df, cj.five_stage(), engine=engine).set_index("stage")
    c = dwell.loc["consideration"]
    assert c.steps == 2 and c.p25_hours * 3600 == pytest.approx(45)
    assert c.p75_hours * 3600 == pytest.approx(7200)


def test_findings_and_charts(sample):
    events, customers = sample
    steps = ["product_view", "add_to_cart|begin_checkout", "purchase"]
    spec = funnels.funnel_spec(steps, window="7D")
    result = funnels.funnel(events, spec)
    seg = funnels.funnel_segments(events, spec, funnels.first_channel_segments(events),
                                  by="first_channel")  # fmt: skip
    trend = funnels.funnel_trends(events, spec, cohort="month")
    drivers = funnels.dropoff_drivers(events, spec, customers=customers, attributes=["device"])
    view = funnels.stage_view(events)
    lines = funnels.describe_funnel(result, segments=seg, trend=trend, drivers=drivers, view=view)
    assert lines[0].startswith("The biggest leak is between 'product_view' and 'add_to_cart or")
    assert any("Real gaps by first_channel" in line for line in lines)
    assert any("industry figure" in line for line in lines)
    ax = fplots.plot_funnel(result)
    heights = [round(p.get_height(), 6) for p in ax.patches[: len(result.steps)]]
    assert heights == [round(v * 100, 6) for v in result.steps["conversion_from_start"]]
    assert fplots.plot_time_to_convert(result).get_lines()
    assert fplots.plot_cohort_trend(trend).get_title().startswith("Conversion by entry month")
    assert len(fplots.plot_segment_gaps(seg).get_yticklabels()) == (seg.table["step"] == 0).sum()
    assert fplots.plot_drivers(drivers).get_title()
    assert fplots.plot_stage_losses(view).get_title()
    fig = fplots.plot_stage_sankey(view.links)
    assert sum(fig.data[0].link.value) == view.links["customers"].sum()
    assert isinstance(result.to_dict()["steps"], list) and seg.to_dict()["table"]
    assert pd.api.types.is_float_dtype(trend.table["conversion"])


def test_opportunities_for_the_run_summary(sample):
    """The biggest leak counts the customers who dropped at the weakest step; a segment gap is
    proposed only when it is real (adjusted p < alpha) and the segment converts worse."""
    events, _ = sample
    spec = funnels.funnel_spec(["product_view", "add_to_cart", "purchase"], window="7D")
    result = funnels.funnel(events, spec)
    seg = funnels.funnel_segments(events, spec, funnels.first_channel_segments(events),
                                  by="first_channel")  # fmt: skip
    found = funnels.opportunities(result, segments=seg, top=10)
    leak = found[[o["title"].startswith("Lose fewer") for o in found].index(True)]
    weakest = result.steps.set_index("step").loc[result.weakest_step]
    assert leak["customers"] == weakest["dropped"] > 0
    assert "'product_view' and 'add_to_cart'" in leak["title"]
    whole = seg.table[seg.table["step"] == 0]
    worse = whole[(whole["p_adjusted"] < seg.alpha) & (whole["difference"] < 0)]
    gaps = [o for o in found if o["title"].startswith("Close the funnel gap")]
    assert len(gaps) == len(worse) >= 1
    assert [o["customers"] for o in found] == sorted((o["customers"] for o in found), reverse=True)
    assert len(funnels.opportunities(result, segments=seg, top=1)) == 1
