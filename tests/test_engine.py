"""Engine: DuckDB by default, the same expressions on local Spark with identical results.

The parity test loads the bundled sample (data/events.csv, made by cjlib.synth) on both engines
and compares the stage-sequence, path, transition and furthest-stage reductions exactly.
"""

from __future__ import annotations

import warnings

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


def test_read_rejects_unknown_sources(engine, tmp_path):
    with pytest.raises(TypeError, match="source must be a path"):
        engine.read(42)
    # an empty notebook parameter (experiments_path: "") read the working folder as Parquet and
    # failed deep in DuckDB ("No files found that match the pattern")
    with pytest.raises(ValueError, match="source is an empty path"):
        engine.read("")
    with pytest.raises(FileNotFoundError, match="is a folder with no \\*.parquet files"):
        engine.read(tmp_path)


def test_existing_spark_session_is_reused(spark_engine, tiny_events):
    """Engine.spark(session) wraps a session the user already has (and sets UTC on it)."""
    session = spark_engine.con._session
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already UTC: nothing to say
        wrapped = Engine.spark(session)
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    session.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    with pytest.warns(UserWarning, match=r"from 'Europe/Berlin' to 'UTC'"):
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


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_read_floors_nanosecond_timestamps_to_microseconds(which, request):
    """A DataFrame whose timestamps carry nanoseconds (built from float hours, say) could not be
    read at all: Arrow refuses to drop them ("Casting from timestamp[ns] to timestamp[us, tz=UTC]
    would lose data"). Reading floors them to the engines' microsecond and leaves the frame as it
    was; whole-microsecond frames are passed as they are."""
    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    base = pd.Timestamp("2026-01-01", tz="UTC")
    df = pd.DataFrame({"k": [1, 2, 3], "ts": base + pd.to_timedelta([1, 1_999, -1], unit="ns")})
    before = df.copy()
    out = engine.to_pandas(engine.read(df).order_by("k"))
    want = [base, base + pd.Timedelta(microseconds=1), base - pd.Timedelta(microseconds=1)]
    assert list(out["ts"]) == want
    pd.testing.assert_frame_equal(df, before)
    from cjlib.sources import _to_microseconds

    whole = pd.DataFrame({"ts": [base]})
    assert _to_microseconds(whole) is whole


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_shift_adds_whole_seconds_like_pandas(which, request):
    """Engine.shift(ts, s) equals pandas' ts + Timedelta(seconds=s) to the microsecond (also
    across the year end and before 1970), keeps nulls and the column's own type."""
    import ibis

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    ts = pd.to_datetime(
        ["2025-12-31 23:59:59.250001", "1969-12-31 23:00:00.000000", None], utc=True
    ).as_unit("us")
    t = ibis.memtable(pd.DataFrame({"ts": ts}))
    expr = t.mutate(week=engine.shift(t.ts, 7 * 86400), back=engine.shift(t.ts, -1.5))
    assert expr.week.type() == t.ts.type()
    out = engine.to_pandas(expr).sort_values("ts", na_position="last")
    want = pd.Series(ts).sort_values(na_position="last")
    assert list(out["week"].iloc[:2]) == list(want.iloc[:2] + pd.Timedelta(days=7))
    assert list(out["back"].iloc[:2]) == list(want.iloc[:2] - pd.Timedelta(seconds=1.5))
    assert out["week"].isna().sum() == 1


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_count_distinct_is_nunique_per_group(which, request):
    """Engine.count_distinct(col) per group equals pandas' nunique (nulls left out, 0 for a
    group with only nulls), for text (DuckDB's list_distinct) and numbers (Ibis's unique)."""
    import ibis

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    frame = pd.DataFrame({
        "g": ["a", "a", "a", "a", "b", "b", "c"],
        "text": ["x", "y", "x", None, None, None, "x"],
        "number": [1.0, 2.0, 2.0, None, 5.0, 5.0, None],
    })  # fmt: skip
    t = ibis.memtable(frame)
    expr = t.group_by("g").aggregate(
        text=engine.count_distinct(t.text), number=engine.count_distinct(t.number)
    )
    out = engine.to_pandas(expr).set_index("g").sort_index()
    want = frame.groupby("g")[["text", "number"]].nunique()
    assert out["text"].tolist() == want["text"].tolist() == [2, 0, 1]
    assert out["number"].tolist() == want["number"].tolist() == [2, 1, 0]


def _column_types(engine: Engine, table) -> dict[str, str]:
    name = table.get_name().split(".")[-1]
    rows = engine.con.raw_sql(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
        parameters=[name],
    ).fetchall()
    return dict(rows)


def test_categorize_stores_few_level_text_as_enum_and_keeps_values():
    """Text columns with at most max_levels distinct values become DuckDB ENUMs (others, and
    non-text columns, stay as they are); values, nulls and the Ibis schema are unchanged, odd
    column names are quoted, and later materialize() calls keep the ENUM."""
    import ibis

    engine = Engine.duckdb()
    df = pd.DataFrame(
        {
            "event": ["view", "buy", None, "view"],
            'odd "name"': ["a", "b", "a", "a"],
            "many": ["1", "2", "3", "4"],
            "n": [1, 2, 3, 4],
        }
    )
    kept = engine.materialize(ibis.memtable(df))
    schema = kept.schema()
    converted = engine.categorize(kept, list(df.columns), max_levels=3)
    assert converted == ["event", 'odd "name"']
    types = _column_types(engine, kept)
    assert types["event"].startswith("ENUM") and types['odd "name"'].startswith("ENUM")
    assert types["many"] == "VARCHAR" and types["n"] == "BIGINT"
    assert kept.schema() == schema
    pd.testing.assert_frame_equal(
        engine.to_pandas(kept).sort_values("n", ignore_index=True), df, check_dtype=False
    )
    again = engine.materialize(kept.filter(kept.n > 1))
    assert _column_types(engine, again)["event"].startswith("ENUM")
    assert engine.categorize(again, ["many"], max_levels=2) == []  # 3 levels left


def test_materialize_writes_categories_with_the_table():
    """materialize(categories=...) stores few-level text columns as categories as categorize()
    would (not text with more than 1,000 levels, nor numbers), with the same values and nulls,
    quoting odd names, and leaves no type behind."""
    import ibis

    engine = Engine.duckdb()
    n = 1_200
    df = pd.DataFrame({"event": (["view", "buy", None] * n)[:n],
                       'odd "name"': ["a", "b"] * (n // 2),
                       "many": [f"id{i}" for i in range(n)], "n": range(n)})  # fmt: skip
    before = {r[0] for r in engine.con.raw_sql("SELECT type_name FROM duckdb_types()").fetchall()}
    kept = engine.materialize(ibis.memtable(df), categories=["event", 'odd "name"', "many", "n"])
    types = _column_types(engine, kept)
    assert types["event"].startswith("ENUM") and types['odd "name"'].startswith("ENUM")
    assert types["many"] == "VARCHAR" and types["n"] == "BIGINT"
    pd.testing.assert_frame_equal(
        engine.to_pandas(kept).sort_values("n", ignore_index=True), df, check_dtype=False
    )
    after = {r[0] for r in engine.con.raw_sql("SELECT type_name FROM duckdb_types()").fetchall()}
    assert after == before


def test_loaded_events_store_event_names_as_categories_on_duckdb(tiny_events):
    """load_events keeps event and channel as ENUMs on DuckDB, never the customer ids; the
    loaded values are those of the input."""
    engine = Engine.duckdb()
    events = cj.load_events(tiny_events, engine=engine)
    types = _column_types(engine, events.expr)
    assert types["event"].startswith("ENUM") and types["channel"].startswith("ENUM")
    assert types["customer_id"] == "VARCHAR"
    got = events.to_pandas().sort_values(["customer_id", "timestamp"], ignore_index=True)
    assert list(got["event"]) == list(
        tiny_events.sort_values(["customer_id", "timestamp"])["event"]
    )
