"""DuckDB and local Spark give identical funnel tables for the same definitions (the sample in
data/, made by cjlib.synth). One Spark session for the module; kept to a few cases (slow start)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA

import cjlib as cj
from cjlib.engine import Engine
from cjlib.funnels import funnel

CASES = {
    "closed_stages_window_exclusion_gaps": dict(
        steps=["stage:awareness", "product_view|compare_products", "purchase"],
        window="14D",
        exclude=["content_view"],
        max_gap={3: "3D"},
        entry="first_in_period",
        period=("2026-02-01", "2026-10-01"),
    ),
    "open_strict_held_by_session": dict(
        steps=["product_view", "add_to_cart", "begin_checkout"],
        mode="open",
        strict=True,
        hold="session_id",
    ),
    # a step that can be an earlier step's event again (not the previous one's): its time is
    # carried through the chain, null for units that entered later (open mode)
    "open_repeat_after_another_step": dict(
        steps=["product_view", "add_to_cart", "product_view|compare_products", "purchase"],
        mode="open",
        window="30D",
    ),
}


@pytest.fixture(scope="module")
def engines(spark_engine):
    path = DATA / "events.csv"
    return cj.load_events(path, engine=Engine.duckdb()), cj.load_events(path, engine=spark_engine)


@pytest.mark.parametrize("case", list(CASES))
def test_funnel_parity(engines, case):
    duck, spark = engines
    options = dict(CASES[case])
    steps = options.pop("steps")
    a = funnel(duck, steps, stages=cj.five_stage(), **options)
    b = funnel(spark, steps, stages=cj.five_stage(), **options)
    assert a.entered > 100 and a.steps["customers"].iloc[-1] > 10
    pd.testing.assert_frame_equal(a.steps, b.steps, check_dtype=False)
    pd.testing.assert_frame_equal(a.timing, b.timing, check_dtype=False)
    assert a.as_of == b.as_of
