"""Journey map: stage success metrics by hand on a toy log, pain points, the map, and the planted
worst drop-off of the sample topping the ranking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

from cjlib import journeymap
from cjlib.io import load_events
from cjlib.stages import five_stage


def _metric(m: pd.DataFrame, name: str) -> pd.Series:
    return m.set_index("metric").loc[name]


def test_stage_metrics_by_hand(tiny_events):
    """tiny_events (tests/conftest.py), five-stage model:
    c1 awareness -> consideration -> purchase (40.0); c2 awareness -> purchase (15.5) -> repeat
    (20.0, 31 days later) -> review; c3 awareness only. The data end 2026-02-06 12:00.
    reach 3; click-through 2/3 (c1, c2 reached consideration or later); conversion 2/2; orders 3,
    revenue 75.5, AOV 25.1667; repeat 1/2; time to second order 31 days; churn (30 days: cutoff
    2026-01-07 12:00): both buyers' first orders are older, c1's last event (01-04) is before it
    -> 1/2; reviews 1/2, referrals 0/2; engagement: c1 6 events, c2 4 -> mean 5, sd sqrt 2,
    t(.975, 1) = 12.706 -> 5 +/- 12.706."""
    m = journeymap.stage_metrics(load_events(tiny_events), stages=five_stage(), churn_days=30)
    assert _metric(m, "reach")["value"] == 3
    assert _metric(m, "new customers")["value"] == 1
    ct = _metric(m, "click-through from awareness")
    assert ct["value"] == pytest.approx(2 / 3) and ct["denominator"] == 3
    assert _metric(m, "conversion rate")["value"] == 1
    assert _metric(m, "orders")["value"] == 3
    assert _metric(m, "revenue")["value"] == pytest.approx(75.5)
    assert _metric(m, "average order value")["value"] == pytest.approx(75.5 / 3)
    assert _metric(m, "repeat-purchase rate")["value"] == 0.5
    assert _metric(m, "time to second purchase (median)")["value"] == 31
    churn = _metric(m, "churn (30 days without activity)")
    assert churn["value"] == 0.5 and churn["denominator"] == 2
    assert _metric(m, "review rate")["value"] == 0.5
    assert _metric(m, "referral rate")["value"] == 0
    eng = _metric(m, "engagement (events per customer)")
    assert eng["value"] == 5 and eng["high"] == pytest.approx(5 + 12.7062, abs=1e-3)
    assert _metric(m, "reach by channel: display")["value"] == pytest.approx(2 / 3)
    assert _metric(m, "reach by channel: video")["value"] == pytest.approx(1 / 3)
    na = m[~m["available"]].set_index("metric")
    assert "session_id" in na.loc["return visits", "note"]
    assert "no survey table" in na.loc["NPS", "note"]


def test_metrics_without_revenue_say_not_available(tiny_events):
    events = load_events(tiny_events.drop(columns=["revenue"]))
    m = journeymap.stage_metrics(events, stages=five_stage())
    na = m[~m["available"]].set_index("metric")
    assert {"revenue", "average order value"} <= set(na.index)
    assert _metric(m, "orders")["value"] == 2, "purchase-stage events when there is no revenue"
    with pytest.raises(ValueError, match="churn_days must be an int >= 1"):
        journeymap.stage_metrics(events, stages=five_stage(), churn_days=0)


def test_median_interval_order_statistics():
    """n = 10 values 1..10: median 5.5; the 95 % distribution-free interval is (x(2), x(9)) =
    (2, 9), coverage 0.9786 (Conover 1999, table A3 / the binomial with p = 1/2)."""
    med, lo, hi = journeymap.median_interval(np.arange(1, 11), np.ones(10))
    assert (med, lo, hi) == (5.5, 2, 9)


def test_pain_points_by_hand():
    """Reached 100 -> 60 -> 50: drop-offs 40 (40 %) and 10 (1/6); the first ranks first."""
    furthest = pd.DataFrame({"stage": ["a", "b", "c"], "reached": [100, 60, 50]})
    p = journeymap.pain_points(furthest)
    assert list(p["customers"]) == [40, 10] and list(p["rank"]) == [1, 2]
    assert p.loc[0, "share"] == pytest.approx(0.4)
    assert "40 of the 100 customers who reached a never reached b" in p.loc[0, "evidence"]
    # nobody lost between two stages (every customer of the simple-shop log reached awareness and
    # consideration) or nobody there: not a pain point, not "0 customers" in the findings; and a
    # stage no customer has an event in (an order table has no advocacy event) measures nothing:
    # "100 % lost" into it was the journey map's second pain point on the CDNOW orders
    furthest = pd.DataFrame({"stage": ["a", "b", "c", "d"], "reached": [80, 80, 50, 0]})
    p = journeymap.pain_points(furthest)
    assert list(p["what"]) == ["b → c"] and list(p["customers"]) == [30]


def test_order_table_journey_map_names_stages_without_events(engine):
    """An order table (three customers, purchases only; a and b order again): repeat purchases
    are retention, so purchase -> retention loses 1 of 3; nobody has an advocacy event, which
    the findings say instead of ranking "100 % lost" into it."""
    import cjlib as cj

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    df = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "event": "purchase",
                       "timestamp": t0 + pd.to_timedelta([0, 30, 0, 5, 0], unit="D")})  # fmt: skip
    jm = journeymap.journey_map(cj.load_events(df, engine=engine))
    assert list(jm.pain_points["what"]) == ["purchase → retention"]
    assert list(jm.pain_points["customers"]) == [1]
    lines = journeymap.describe_journey_map(jm)
    assert "No event in the data is in awareness, consideration, advocacy" not in " ".join(lines)
    assert any(x.startswith("No event in the data is in advocacy, so the drop-off") for x in lines)
    conv = jm.stages.set_index("stage")["conversion_next"]
    assert conv["purchase"] == pytest.approx(2 / 3) and np.isnan(conv["retention"])  # not 0 %
    # awareness and consideration have no events: "reached" counts customers past them, and
    # "100 % go on" from them measured nothing
    assert conv[["awareness", "consideration"]].isna().all()
    assert jm.stages["has_events"].tolist() == [False, False, True, True, False]


@pytest.fixture(scope="module")
def sample_map():
    import cjlib as cj

    events = cj.load_events(DATA / "events.csv")
    surveys = cj.load_surveys(DATA / "surveys.csv")
    return journeymap.journey_map(events, surveys), events, surveys


def test_planted_worst_drop_off_tops_the_ranking(sample_map):
    """truth.json: P(consideration | awareness) = 0.62 and P(purchase | consideration) = 0.71,
    so awareness -> consideration is the planted worst drop-off (38 % of everyone lost)."""
    jm, _, _ = sample_map
    truth = json.loads((DATA / "truth.json").read_text())["stage_rates"]
    top = jm.pain_points.iloc[0]
    assert top.kind == "drop-off" and top.what == "awareness → consideration"
    assert top.share == pytest.approx(1 - truth["awareness_to_consideration_realised"], abs=0.01)
    kinds = set(jm.pain_points["kind"])
    assert {"drop-off", "low satisfaction", "complained-about touchpoint"} <= kinds
    low = jm.pain_points[jm.pain_points["kind"] == "low satisfaction"]
    assert "purchase" in set(low["stage"]), "the planted unhappy stage is flagged"


def test_map_table_opportunities_and_figure(sample_map):
    jm, _, _ = sample_map
    assert list(jm.table["row"]) == list(journeymap.ROWS)
    assert list(jm.table.columns[1:]) == list(five_stage().stages)
    assert jm.stages.loc[0, "conversion_next"] == pytest.approx(0.62, abs=0.01)
    st = jm.stages.set_index("stage")
    assert st["csat_mean"].idxmin() == "purchase"
    ops = jm.opportunities(3)
    assert len(ops) == 3 and all({"title", "evidence", "customers"} == set(o) for o in ops)
    assert ops[0]["customers"] == 1900
    assert json.dumps(jm.to_dict())
    lines = journeymap.describe_journey_map(jm)
    assert lines[0].startswith("The biggest pain point is the drop-off awareness → consideration")
    import matplotlib

    matplotlib.use("Agg")
    from cjlib.plots.journeymap import plot_journey_map, plot_pain_points

    fig = plot_journey_map(jm)
    assert len(fig.axes) == 3
    assert plot_pain_points(jm).patches


def test_persona_map_and_errors(sample_map):
    _, events, surveys = sample_map
    persona = DATA / "customer_persona.csv"
    jm = journeymap.journey_map(events, surveys, persona=persona, segment="Loyal enthusiasts")
    assert jm.segment == "Loyal enthusiasts"
    assert (
        jm.furthest["customers"].sum()
        == pd.read_csv(persona)["persona"].eq("Loyal enthusiasts").sum()
    )
    assert jm.opportunities(1)[0]["title"].endswith("(Loyal enthusiasts)")
    with pytest.raises(ValueError, match="segment must be one of the personas"):
        journeymap.journey_map(events, surveys, persona=persona, segment="Nobody")
    with pytest.raises(ValueError, match="persona .* is needed"):
        journeymap.journey_map(events, surveys, segment="Deal seekers")
