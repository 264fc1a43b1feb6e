"""Order tables as analysts bring them (../shared/datasets, skipped when absent), loaded as
purchase events with ``constants``: the CDNOW master transactions (23,570 customers, 69,659
orders, 1997-01 to 1998-06), checked against pandas counts from the raw file, and the R package
rfm's own orders, checked against that package's documented RFM thresholds."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import SHARED

import cjlib as cj
from cjlib.funnels import funnel

CDNOW = SHARED / "cdnow_master_transactions.csv"
pytestmark = pytest.mark.skipif(not CDNOW.exists(), reason="../shared/datasets is absent")


@pytest.fixture(scope="module")
def orders():
    return cj.load_events(
        CDNOW,
        column_map={"date": "timestamp", "dollar_value": "revenue"},
        constants={"event": "purchase"},
        duplicates="ignore",
    )


def test_repeat_buyers_reach_retention(orders):
    """Retention = a purchase after the customer's first one (StageModel.repeats). Independent
    count: customers with orders on 2+ distinct dates (11,516 of 23,570); ids keep their leading
    zeros ("00001")."""
    raw = pd.read_csv(CDNOW, dtype={"customer_id": str})
    days = raw.groupby("customer_id")["date"].nunique()
    reached = cj.furthest_stage(orders).set_index("stage")["reached"]
    assert reached["purchase"] == len(days) == 23_570
    assert reached["retention"] == int((days >= 2).sum())


def test_second_order_funnel_matches_pandas(orders):
    """[purchase, purchase] with a 90-day window: the second order on a later day within 90 days
    of the first (dates only, so 'later' = a later date). as_of after the data end, so nobody is
    in progress."""
    raw = pd.read_csv(CDNOW, dtype={"customer_id": str}, parse_dates=["date"])
    first = raw.groupby("customer_id")["date"].min().rename("first")
    j = raw.join(first, on="customer_id")
    later = j[(j["date"] > j["first"]) & (j["date"] <= j["first"] + pd.Timedelta(days=90))]
    f = funnel(orders, ["purchase", "purchase"], window="90D", as_of="1999-01-01")
    assert f.steps["customers"].tolist() == [len(first), later["customer_id"].nunique()]
    assert f.steps["in_progress"].sum() == 0


RFM_ORDERS = SHARED / "rfm_data_orders.csv"


@pytest.mark.skipif(not RFM_ORDERS.exists(), reason="../shared/datasets is absent")
def test_rfm_thresholds_match_the_r_package():
    """The R package rfm's own data (rfm_data_orders, analysis date 2006-12-31). Its
    documentation's custom-threshold example for rfm_table_order passes recency_bins =
    c(115, 181, 297, 482), frequency_bins = c(4, 5, 6, 8), monetary_bins = c(256, 382, 506, 666):
    the default thresholds for this data (quintiles + 1), rounded. cjlib's default scoring must
    give the same thresholds, and its scores must follow them (value < threshold -> lower)."""
    import numpy as np

    from cjlib.personas import rfm_segments

    events = cj.load_events(
        RFM_ORDERS, column_map={"order_date": "timestamp"}, constants={"event": "purchase"}
    )
    res = rfm_segments(events, as_of="2006-12-31")
    t = res.params["thresholds"]
    assert np.round(t["recency_days"]).tolist() == [115, 181, 297, 482]
    assert np.round(t["frequency"]).tolist() == [4, 5, 6, 8]
    assert np.round(t["monetary"]).tolist() == [256, 382, 506, 666]
    c = res.customers
    assert len(c) == 995 and c["frequency"].sum() == 4906
    assert (c.loc[c["frequency"] < 4, "f_score"] == 1).all()
    assert (c.loc[c["frequency"] >= 8, "f_score"] == 5).all()
    assert (c.loc[c["recency_days"] < t["recency_days"][0], "r_score"] == 5).all()
