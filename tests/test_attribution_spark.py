"""Attribution runs unchanged on Spark: the same credits and removal effects as on DuckDB."""

from __future__ import annotations

import pandas as pd
from conftest import DATA

import cjlib as cj
from cjlib.engine import Engine


def test_attribution_parity(spark_engine):
    path = DATA / "events.csv"
    duck = cj.attribute(cj.load_events(path, engine=Engine.duckdb()), n_boot=20, random_state=1)
    spark = cj.attribute(cj.load_events(path, engine=spark_engine), n_boot=20, random_state=1)
    assert len(duck.credits) > 20
    pd.testing.assert_frame_equal(
        duck.credits.reset_index(drop=True), spark.credits.reset_index(drop=True), check_dtype=False
    )
    pd.testing.assert_frame_equal(duck.removal_effects, spark.removal_effects, check_dtype=False)
