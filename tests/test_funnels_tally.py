"""The funnel's counts and duration histograms taken straight from the chain's links
(cjlib.funnels.tally, used by ``funnel()`` in closed and open modes) equal those computed from the
table of one row per unit (cjlib.funnels.compute.unit_table, used by segments, drivers and
cohorts), for every option, on the bundled sample and on the real simple-shop clickstream.

The two paths share only the chain; counting by difference (units at a step minus those that
moved on) and subtracting histograms are what is checked here. The cases are chosen so that each
status (in progress, dropped, excluded, converted) and each censoring end (data end, window,
maximum gap, exclusion) occurs; the test asserts that they do.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA, SHARED

import cjlib as cj
from cjlib.funnels import tally
from cjlib.funnels.compute import chain, prepare, status_counts, unit_table
from cjlib.funnels.spec import funnel_spec
from cjlib.funnels.timing import duration_counts

SAMPLE = ["first_visit|ad_impression", "product_view", "add_to_cart", "purchase"]
CASES = {
    "closed": dict(window="14D", as_of="2026-06-20"),
    "closed_no_window": dict(window=None),
    "open": dict(mode="open", window="10D", as_of="2026-06-25"),
    "strict_open": dict(mode="open", strict=True, window="30D"),
    "gaps": dict(window="30D", min_gap={3: "1h"}, max_gap={2: "5D", 4: "2D"}, as_of="2026-06-28"),
    "exclusion": dict(window="21D", exclude=["content_view"], as_of="2026-06-15"),
    "exclusion_open_gap": dict(
        mode="open", window="21D", exclude={"compare_products": (2, 3)}, max_gap={3: "3D"}
    ),
    "journeys": dict(count="journeys", window="7D", as_of="2026-06-10"),
    "journeys_held": dict(count="journeys", hold="session_id", window="1D"),
    "period_first_in_period": dict(
        entry="first_in_period", period=("2026-03-01", "2026-07-01"), window="14D"
    ),
}


@pytest.fixture(scope="module")
def sample():
    return cj.load_events(DATA / "events.csv", engine=cj.Engine.duckdb())


def both_ways(events, spec, resolution=None):
    """(counts, histogram) from the links and from the unit table, sorted alike (``resolution``
    as :func:`cjlib.funnels.timing.bucket` takes it: None is the automatic precision)."""
    prep = prepare(events, spec)
    try:
        assert tally.applies(prep)
        a, b = tally.tables(prep, chain(prep), resolution=resolution)
        units = prep.keep(unit_table(prep))
        c = prep.engine.to_pandas(status_counts(units))
        d = prep.engine.to_pandas(duration_counts(prep, units, resolution=resolution))
    finally:
        prep.release()

    def tidy(df, keys):
        df = df.astype({"n": "int64"}).sort_values(keys).reset_index(drop=True)
        return df.astype({k: "int64" for k in keys if k != "status"})

    counts = ["entry_step", "depth", "status"]
    hist = ["step", "bucket", "event"]
    return tidy(a, counts), tidy(b, hist), tidy(c, counts), tidy(d, hist)


@pytest.mark.parametrize("case", [*CASES, "gaps@1min"])
def test_links_give_the_unit_table_counts(sample, case):
    name, _, fixed = case.partition("@")
    spec = funnel_spec(SAMPLE, **CASES[name])
    counts, hist, want_counts, want_hist = both_ways(sample, spec, 60 if fixed else None)
    assert want_counts["n"].sum() > 100  # a real funnel, not an empty one
    pd.testing.assert_frame_equal(counts, want_counts)
    pd.testing.assert_frame_equal(hist, want_hist)


def test_every_status_and_censoring_occurs_in_the_cases(sample):
    """The comparison above would be weak if the cases missed a status or a censoring path."""
    seen, censored = set(), 0
    for case in ["closed", "gaps", "exclusion", "open"]:
        counts, hist, _, _ = both_ways(sample, funnel_spec(SAMPLE, **CASES[case]))
        seen |= set(counts.loc[counts["n"] > 0, "status"])
        censored += int(hist.loc[hist["event"] == 0, "n"].sum())
        if case == "open":
            assert counts["entry_step"].nunique() >= 3
    assert seen == {"converted", "in_progress", "dropped", "excluded"}
    assert censored > 1000


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_on_the_simple_shop_clickstream(mode):
    path = SHARED / "retentioneering_simple_shop.csv"
    if not path.exists():
        pytest.skip("../shared/datasets is not present")
    events = cj.load_events(path, column_map={"user_id": "customer_id"}, engine=cj.Engine.duckdb())
    spec = funnel_spec(
        ["catalog", "product1|product2", "cart", "payment_done"],
        mode=mode,
        window="2D",
        exclude={"main": (3, 4)},
        as_of="2019-11-01",
    )
    counts, hist, want_counts, want_hist = both_ways(events, spec)
    assert want_counts["n"].sum() > 1000
    pd.testing.assert_frame_equal(counts, want_counts)
    pd.testing.assert_frame_equal(hist, want_hist)
