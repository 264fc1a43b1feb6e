"""An order table as analysts bring it: the CDNOW master transactions (23,570 customers,
69,659 orders, 1997-01 to 1998-06; ../shared/datasets, skipped when absent) loaded as purchase
events with ``constants``. The expectations are computed here with pandas from the raw file."""

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
