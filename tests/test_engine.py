"""Engine: DuckDB by default, the same expressions on local Spark with identical results.

The parity test loads the bundled sample (data/events.csv, made by cjlib.synth) on both engines
and compares the stage-sequence, path, transition and furthest-stage reductions exactly.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA

import cjlib as cj
from cjlib.engine import Engine, connect, get_engine, set_engine, use_engine


@pytest.fixture(scope="module")
def sample_events_path():
    path = DATA / "events.csv"
    assert path.exists(), "data/events.csv is part of the repository (make data)"
    return path


def _both(spark_engine, path, **kwargs):
    duck = cj.load_events(path, engine=Engine.duckdb(), **kwargs)
    spark = cj.load_events(path, engine=spark_engine, **kwargs)
    return duck, spark


def test_loader_parity(spark_engine, sample_events_path):
    duck, spark = _both(spark_engine, sample_events_path)
    assert duck.report.rows_loaded == spark.report.rows_loaded
    assert duck.report.duplicates == spark.report.duplicates
    key = ["customer_id", "timestamp", "event"]
    a = duck.to_pandas().sort_values(key).reset_index(drop=True)
    b = spark.to_pandas().sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_series_equal(a["customer_id"], b["customer_id"], check_dtype=False)
    assert (a["timestamp"].dt.tz_convert("UTC") == b["timestamp"].dt.tz_convert("UTC")).all()
    assert a["revenue"].sum() == pytest.approx(b["revenue"].sum())


@pytest.mark.parametrize("reduction", ["stage_sequences", "stage_transitions", "furthest_stage",
                                       "stage_paths"])  # fmt: skip
def test_reduction_parity(spark_engine, sample_events_path, reduction):
    """Identical results from DuckDB and local Spark for the same expressions."""
    duck, spark = _both(spark_engine, sample_events_path)
    fn = getattr(cj, reduction)
    a, b = fn(duck), fn(spark)
    assert len(a) > 3
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_stage_sequences_on_spark_match_a_hand_example(spark_engine, tiny_events):
    seq = cj.stage_sequences(tiny_events, engine=spark_engine).set_index("customer_id")
    assert seq.loc["c1", "regressions"] == 1
    assert seq.loc["c2", "path"] == "awareness > purchase > retention > advocacy"


def test_default_engine_and_switching():
    default = get_engine()
    assert default.name == "duckdb" and get_engine() is default
    other = Engine.duckdb()
    with use_engine(other):
        assert get_engine() is other
    assert get_engine() is default
    with pytest.raises(TypeError, match="engine must be a cjlib Engine"):
        set_engine("duckdb")
    with pytest.raises(ValueError, match=r"engine must be one of \['duckdb', 'spark'\], got 'pg'"):
        connect("pg")


def test_read_rejects_unknown_sources(engine):
    with pytest.raises(TypeError, match="source must be a path"):
        engine.read(42)


def test_existing_spark_session_is_reused(spark_engine, tiny_events):
    """Engine.spark(session) wraps a session the user already has (and sets UTC on it)."""
    session = spark_engine.con._session
    wrapped = Engine.spark(session)
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    furthest = cj.furthest_stage(tiny_events, engine=wrapped)
    assert furthest["customers"].sum() == 3


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_epoch_microseconds_round_trip(which, request):
    """Engine.epoch_us agrees with pandas' own epoch nanoseconds // 1000 (microsecond-exact, also
    before 1970), keeps nulls, and from_epoch_us inverts it, on both engines."""
    import ibis

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    ts = pd.to_datetime(
        ["2026-01-01 00:00:01.500001", "1969-12-31 23:59:59.999999", None], utc=True
    )
    t = ibis.memtable(pd.DataFrame({"ts": ts}))
    expr = t.mutate(us=engine.epoch_us(t.ts), secs=engine.epoch_seconds(t.ts))
    expr = expr.mutate(back=engine.from_epoch_us(expr.us + 1))
    out = engine.to_pandas(expr.order_by(expr.ts))
    want = [t_.value // 1000 for t_ in ts[:2]]
    assert sorted(out["us"].dropna().astype("int64")) == sorted(want)
    assert out["us"].isna().sum() == 1 and out["back"].isna().sum() == 1
    got = out.dropna(subset=["us"])
    assert (got["back"] - got["ts"] == pd.Timedelta(microseconds=1)).all()
    assert got["secs"].to_numpy() == pytest.approx(got["us"].to_numpy() / 1e6)
