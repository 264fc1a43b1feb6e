"""Loaders: every source kind, column maps, and the bad-input list of the foundation issue.

Each bad input must raise a SchemaError naming the table, the column, the count and the first
offending rows, leave the input file byte-identical, and leave no table behind in the engine.
"""

from __future__ import annotations

import hashlib
import warnings

import duckdb
import pandas as pd
import pytest

import cjlib as cj
from cjlib.schema import DataQualityWarning, SchemaError


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_clean_failure(engine, path, call, match):
    """The call raises SchemaError matching ``match``; file untouched; no engine table left."""
    before_tables = set(engine.con.list_tables())
    before = _digest(path)
    with pytest.raises(SchemaError, match=match) as info:
        call()
    assert _digest(path) == before
    assert set(engine.con.list_tables()) == before_tables
    return info.value


def test_load_csv_canonical_types(tiny_events, write_csv, engine):
    path = write_csv(tiny_events)
    before = _digest(path)
    events = cj.load_events(path, engine=engine)
    df = events.to_pandas()
    assert _digest(path) == before
    assert len(events) == len(tiny_events) == events.report.rows_read
    assert str(df["timestamp"].dtype).startswith("datetime64") and "UTC" in str(
        df["timestamp"].dtype
    )
    assert df["revenue"].dtype == "float64"
    assert df.loc[df.event == "purchase", "revenue"].sum() == pytest.approx(55.5)
    assert df["timestamp"].min() == pd.Timestamp("2026-01-01 09:00", tz="UTC")


def test_offsets_converted_to_utc(engine):
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "event": ["x", "x"],
            "timestamp": ["2026-03-01T10:00:00+02:00", "2026-03-01T10:00:00Z"],
        }
    )
    out = cj.load_events(df, engine=engine).to_pandas().sort_values("customer_id")
    assert list(out["timestamp"]) == [
        pd.Timestamp("2026-03-01 08:00", tz="UTC"),
        pd.Timestamp("2026-03-01 10:00", tz="UTC"),
    ]


def test_parquet_duckdb_pandas_and_ibis_sources_agree(tiny_events, tmp_path, engine):
    frame = tiny_events.assign(timestamp=pd.to_datetime(tiny_events.timestamp, utc=True))
    frame.to_parquet(tmp_path / "ev.parquet")
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE events AS SELECT * FROM frame")
    loaded = [
        cj.load_events(tmp_path / "ev.parquet", engine=engine),
        cj.load_events(tmp_path / "shop.duckdb", source_table="events", engine=engine),
        cj.load_events(frame, engine=engine),
        cj.load_events(engine.read(frame), engine=engine),
    ]
    frames = [
        t.to_pandas().sort_values(["customer_id", "timestamp"]).reset_index(drop=True)
        for t in loaded
    ]
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other)
    with pytest.raises(ValueError, match="pass table=<name>"):
        cj.load_events(tmp_path / "shop.duckdb", engine=engine)
    with pytest.raises(ValueError, match="table 'evnts' not found"):
        cj.load_events(tmp_path / "shop.duckdb", source_table="evnts", engine=engine)


def test_pandas_input_is_not_modified(tiny_events, engine):
    copy = tiny_events.copy()
    cj.load_events(tiny_events, engine=engine)
    pd.testing.assert_frame_equal(copy, tiny_events)


def test_column_map_vendor_export(engine):
    """A GA4-style export: microsecond epoch timestamps, vendor column names."""
    ga4 = pd.DataFrame(
        {
            "user_pseudo_id": ["u1", "u1", "u2"],
            "event_timestamp": [1767261600000000, 1767348000000000, 1767261600000000],
            "event_name": ["first_visit", "purchase", "view_item"],
            "traffic_source_medium": ["organic", None, "cpc"],
        }
    )
    events = cj.load_events(ga4, column_map="ga4", engine=engine)
    df = events.to_pandas().sort_values(["customer_id", "timestamp"])
    assert list(df.columns[:4]) == ["customer_id", "timestamp", "event", "channel"]
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    amp = pd.DataFrame(
        {
            "user_id": ["a"],
            "event_time": ["2026-01-01 10:00:00.123000"],
            "event_type": ["Order Completed"],
        }
    )
    assert (
        cj.load_events(amp, column_map="amplitude", engine=engine).to_pandas().event[0]
        == "Order Completed"
    )
    seg = pd.DataFrame(
        {
            "userId": ["u9"],
            "timestamp": ["2026-01-01T10:00:00.000Z"],
            "event": ["Product Viewed"],
            "context_campaign_medium": ["email"],
            "properties_revenue": [None],
        }
    )
    out = cj.load_events(seg, column_map="segment", engine=engine).to_pandas()
    assert (out.customer_id[0], out.channel[0]) == ("u9", "email")


def test_missing_required_column_did_you_mean(tiny_events, write_csv, engine):
    path = write_csv(tiny_events.rename(columns={"timestamp": "timestmp"}))
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine),
        r"events\.timestamp: required column is missing; "
        r"did you mean 'timestmp'\?",
    )
    assert (err.table, err.column) == ("events", "timestamp")


def test_column_map_naming_absent_column(tiny_events, write_csv, engine):
    path = write_csv(tiny_events)
    _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, column_map={"evnt": "event"}, engine=engine),
        r"events\.evnt: column_map names a column the source lacks; "
        r"did you mean 'event'",
    )


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_epoch_numbers_in_a_csv_are_timestamps(write_csv, which, request):
    """GA4's event_timestamp exported to CSV (microseconds since 1970) and Unix seconds or
    milliseconds read as text, and every row was "a timestamp that cannot be read". The unit
    follows from the size (as for numeric columns): 1767261600 s = 1767261600000 ms =
    1767261600000000 us = 2026-01-01 10:00 UTC. Eight-digit dates are dates (YYYYMMDD), not
    seconds."""
    from cjlib.engine import Engine
    from cjlib.schema import SchemaError

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    want = pd.Timestamp("2026-01-01 10:00", tz="UTC")
    for scale in (1, 1000, 1_000_000):
        df = pd.DataFrame(
            {
                "user_pseudo_id": ["u1", "u2"],
                "event_timestamp": [1767261600 * scale, (1767261600 + 60) * scale],
                "event_name": ["first_visit", "purchase"],
            }
        )
        path = write_csv(df, f"ga4_{scale}.csv")
        got = cj.load_events(path, column_map="ga4", engine=engine).to_pandas()
        got = got.sort_values("customer_id")["timestamp"].tolist()
        assert got == [want, want + pd.Timedelta(minutes=1)], scale
    dates = pd.DataFrame({"customer_id": ["a"], "timestamp": ["20260101"], "event": ["x"]})
    got = cj.load_events(write_csv(dates, "dates.csv"), engine=engine).to_pandas()
    assert got["timestamp"].tolist() == [pd.Timestamp("2026-01-01", tz="UTC")]
    with pytest.raises(SchemaError, match="timestamps that cannot be read"):
        bad = dates.assign(timestamp=["20261301"])  # no 13th month
        cj.load_events(write_csv(bad, "bad_dates.csv"), engine=engine)


def test_unparseable_timestamps(tiny_events, write_csv, engine):
    bad = tiny_events.copy()
    bad.loc[[3, 7], "timestamp"] = ["yesterday", "2026-13-45 10:00:00"]
    path = write_csv(bad)
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine),
        r"events\.timestamp: timestamps that cannot be read \(2 rows\)",
    )
    assert err.count == 2
    assert "yesterday" in str(err) and "first offending rows" in str(err)


def test_mixed_naive_and_aware_timestamps(tiny_events, write_csv, engine):
    bad = tiny_events.copy()
    bad.loc[[0, 1, 2], "timestamp"] = [
        "2026-01-01 09:00:00",
        "2026-01-01 09:05:00",
        "2026-01-02 10:00:00",
    ]
    path = write_csv(bad)
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine),
        r"events\.timestamp: mixes time-zone-naive and time-zone-aware",
    )
    assert err.count == 3
    assert "2026-01-01 09:00:00" in str(err)


def test_mixed_timestamps_in_a_pandas_object_column(engine):
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "event": ["x", "y"],
            "timestamp": [
                pd.Timestamp("2026-01-01"),
                pd.Timestamp("2026-01-01", tz="Europe/Warsaw"),
            ],
        }
    )
    with pytest.raises(SchemaError, match=r"events\.timestamp: mixes time-zone-naive.*\(1 row\)"):
        cj.load_events(df, engine=engine)


def test_duplicates_reported_kept_or_dropped_on_request(tiny_events, write_csv, engine):
    doubled = pd.concat([tiny_events, tiny_events.iloc[[0, 5]]], ignore_index=True)
    path = write_csv(doubled)
    with pytest.warns(DataQualityWarning, match=r"events: 2 exact duplicate rows"):
        kept = cj.load_events(path, engine=engine)
    assert kept.report.duplicates == 2 and len(kept) == len(doubled)
    dropped = cj.load_events(path, engine=engine, duplicates="drop")
    assert len(dropped) == len(tiny_events) and dropped.report.dropped == {"exact duplicates": 2}
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine, duplicates="error"),
        r"events\.customer_id, timestamp, .*exact duplicate rows \(2 rows\)",
    )
    assert "copies" in str(err)


def test_duplicates_are_exact_rows_not_hash_collisions(engine):
    """Duplicates are found through a combined hash of the columns (XOR of column hashes), then
    confirmed on the values: rows whose values are swapped between two text columns share that
    hash but are not duplicates; a row present three times is 2 duplicates, not 3."""
    base = {"timestamp": ["2026-01-01T00:00:00Z"] * 5, "event": ["visit"] * 5}
    df = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "c", "c"], "channel": ["b", "a", "x", "x", "x"], **base}
    )
    with pytest.warns(DataQualityWarning, match=r"events: 2 exact duplicate rows"):
        loaded = cj.load_events(df, engine=engine)
    assert loaded.report.duplicates == 2
    swapped = df.iloc[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        assert cj.load_events(swapped, engine=engine).report.duplicates == 0


def test_negative_revenue(tiny_events, write_csv, engine):
    bad = tiny_events.copy()
    bad.loc[5, "revenue"] = -40.0
    path = write_csv(bad)
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine),
        r"events\.revenue: values out of range \(allowed: >= 0\) \(1 row\)",
    )
    assert "-40" in str(err)


def test_revenue_that_is_not_a_number(tiny_events, write_csv, engine):
    bad = tiny_events.copy().astype({"revenue": object})
    bad.loc[5, "revenue"] = "12,50"  # a decimal comma, as a European export writes it
    path = write_csv(bad)
    err = _assert_clean_failure(
        engine,
        path,
        lambda: cj.load_events(path, engine=engine),
        r"events\.revenue: values that are not numbers \(1 row\)",
    )
    # the hint fits the problem (it said "refunds belong in their own event type")
    assert "decimal=" in str(err) and "refunds" not in str(err)


# fmt: off
@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("nps", [3, 11, -1, 7], r"surveys\.nps: values out of range \(allowed: >= 0 and <= 10 "
                                r"\(whole numbers\)\) \(2 rows\)"),
        ("nps", [3, 7.5, 9, 7], r"surveys\.nps: .* \(1 row\)"),
        ("csat", [0, 6, 3, 5], r"surveys\.csat: values out of range \(allowed: >= 1 and <= 5 "
                               r"\(whole numbers\)\) \(2 rows\)"),
    ],
)
# fmt: on
def test_survey_scores_out_of_range(column, values, match, write_csv, engine):
    surveys = pd.DataFrame({"customer_id": list("abcd"), "timestamp": ["2026-01-01"] * 4,
                            column: values})
    path = write_csv(surveys)
    _assert_clean_failure(engine, path, lambda: cj.load_surveys(path, engine=engine), match)


def test_empty_after_filters(tiny_events, write_csv, engine):
    path = write_csv(tiny_events)
    _assert_clean_failure(engine, path,
                          lambda: cj.load_events(path, engine=engine, start="2027-01-01"),
                          r"events: no rows left \(read 12; start=2027-01-01")
    _assert_clean_failure(engine, path,
                          lambda: cj.load_events(path, engine=engine, filters={"channel": "tv"}),
                          r"events: no rows left \(read 12; start=None, end=None, "
                          r"filters=\{'channel': 'tv'\}\)")
    # emptied by rows without keys: the message says so; a row lacking two keys counts once
    blank = tiny_events.head(2).assign(customer_id=None)
    blank.loc[0, "event"] = None
    path = write_csv(blank, "blank.csv")
    _assert_clean_failure(engine, path, lambda: cj.load_events(path, engine=engine),
                          r"events: no rows left \(read 2; 2 rows without customer_id; start")
    path = write_csv(pd.concat([blank, tiny_events]), "some.csv")
    loaded = cj.load_events(path, engine=engine)
    assert loaded.report.dropped == {"rows without customer_id": 2}  # not + 1 without event
    assert loaded.report.rows_read - loaded.report.rows_loaded == 2


def test_infinite_revenue_is_refused(tiny_events, write_csv, engine):
    """'inf' parses as a float but is no amount: out of range, like a negative revenue."""
    bad = tiny_events.copy().astype({"revenue": object})
    bad.loc[5, "revenue"] = "inf"
    path = write_csv(bad)
    _assert_clean_failure(engine, path, lambda: cj.load_events(path, engine=engine),
                          r"events\.revenue: values out of range \(allowed: >= 0\) \(1 row\)")


def test_filters_and_window(tiny_events, engine):
    events = cj.load_events(tiny_events, engine=engine, start="2026-01-02", end="2026-02-01",
                            filters={"customer_id": ["c1", "c2"]})
    df = events.to_pandas()
    assert set(df.customer_id) == {"c1", "c2"} and len(df) == 5
    with pytest.raises(SchemaError, match=r"events\.chanel: filters names an unknown column; "
                                          r"did you mean 'channel'"):
        cj.load_events(tiny_events, engine=engine, filters={"chanel": "x"})


def test_rows_without_keys_are_dropped_and_reported(tiny_events, engine):
    bad = tiny_events.copy()
    bad.loc[0, "customer_id"] = None
    bad.loc[1, "event"] = ""
    events = cj.load_events(bad, engine=engine)
    assert len(events) == len(bad) - 2
    assert events.report.dropped == {"rows without customer_id": 1, "rows without event": 1}


def test_other_tables(engine):
    costs = cj.load_costs(pd.DataFrame({"channel": ["search"], "spend": ["12.50"]}), engine=engine)
    assert costs.to_pandas().spend[0] == 12.5
    with pytest.raises(SchemaError, match=r"costs\.spend: values out of range"):
        cj.load_costs(pd.DataFrame({"channel": ["search"], "spend": [-1.0]}), engine=engine)
    exp = cj.load_experiments(pd.DataFrame({"customer_id": [1, 2], "experiment": ["e", "e"],
                                            "variant": ["a", "b"]}), engine=engine)
    assert list(exp.to_pandas().customer_id) == ["1", "2"]  # ids are text, joinable across tables
    with pytest.raises(SchemaError, match=r"customers\.customer_id: required column is missing"):
        cj.load_customers(pd.DataFrame({"customer": [1]}), engine=engine)


def test_bad_parameters(tiny_events, engine, tmp_path):
    expected = r"duplicates must be one of \['report', 'drop', 'error', 'ignore'\], got 'keep'"
    with pytest.raises(ValueError, match=expected):
        cj.load_events(tiny_events, engine=engine, duplicates="keep")
    with pytest.raises(ValueError, match="table must be one of"):
        cj.load_table("orders", tiny_events, engine=engine)
    with pytest.raises(ValueError, match="column_map preset must be one of"):
        cj.load_events(tiny_events, engine=engine, column_map="mixpanel")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cj.load_events(tmp_path / "nope.csv", engine=engine)
    with pytest.raises(ValueError, match="unknown file type"):
        (tmp_path / "x.xlsx").write_text("x")
        cj.load_events(tmp_path / "x.xlsx", engine=engine)


def test_numeric_property_columns_become_numbers(write_csv, engine):
    """CSV text: a covariate of whole numbers -> int64, decimals -> float64, ids and text stay."""
    df = pd.DataFrame({"customer_id": ["1", "2", "3"], "experiment": ["e"] * 3,
                       "variant": ["a", "b", "a"], "pre_sessions": [3, None, 5],
                       "pre_spend": [1.5, 2.0, None], "order_id": ["007", "010", "011"],
                       "segment": ["x", "1", "2"]})
    loaded = cj.load_experiments(write_csv(df), engine=engine)
    schema = loaded.expr.schema()
    assert schema["pre_sessions"].is_integer() and schema["pre_spend"].is_floating()
    assert schema["order_id"].is_string() and schema["segment"].is_string()
    exp = loaded.to_pandas()
    assert exp["pre_sessions"].sum() == 8
    assert exp["pre_spend"].dtype == "float64" and exp["pre_spend"].sum() == 3.5
    assert list(exp["order_id"]) == ["007", "010", "011"]
    assert list(exp["segment"]) == ["x", "1", "2"]


def test_text_after_the_first_rows_keeps_a_property_column_text(write_csv, engine):
    """The first 10,000 rows are checked first (a text value there settles it); a column numeric
    there but with text later must still stay text (the full scan decides)."""
    n = 10_050
    df = pd.DataFrame({"customer_id": [str(i) for i in range(n)], "experiment": ["e"] * n,
                       "variant": ["a", "b"] * (n // 2), "late_text": ["1"] * (n - 1) + ["x"],
                       "all_numbers": ["2"] * n})  # fmt: skip
    schema = cj.load_experiments(write_csv(df), engine=engine).expr.schema()
    assert schema["late_text"].is_string() and schema["all_numbers"].is_integer()


def test_keep_false_is_a_view_over_the_source_with_the_same_rows(tiny_events, write_csv, engine):
    """keep=False (logs larger than memory): no table is kept in the engine, the rows and types
    equal those of the kept load, and the report says duplicates were not checked when asked."""
    doubled = pd.concat([tiny_events, tiny_events.iloc[[0]]], ignore_index=True)
    path = write_csv(doubled)
    with pytest.warns(DataQualityWarning):
        kept = cj.load_events(path, engine=engine)
    before = {t for t in engine.con.list_tables() if t.startswith("cjlib_")}
    lazy = cj.load_events(path, engine=engine, keep=False, duplicates="ignore")
    assert {t for t in engine.con.list_tables() if t.startswith("cjlib_")} == before
    assert lazy.report.duplicates is None and "not checked" in lazy.report.notes[0]
    assert lazy.columns == kept.columns and lazy.expr.timestamp.type().timezone == "UTC"
    order = ["customer_id", "timestamp", "event"]
    pd.testing.assert_frame_equal(
        lazy.to_pandas().sort_values(order, ignore_index=True),
        kept.to_pandas().sort_values(order, ignore_index=True),
    )
    dropped = cj.load_events(path, engine=engine, keep=False, duplicates="drop")
    assert len(dropped) == len(tiny_events) == len(dropped.to_pandas())
    assert len(cj.load_events(path, engine=engine, keep=False, start="2026-01-02")) < len(doubled)


def test_a_period_load_keeps_only_its_rows_and_still_reports_missing_keys(tiny_events, engine):
    """With start/end the rows are filtered before anything is kept (one kept table), and rows
    without a customer are counted over the whole input, as without a period."""
    df = tiny_events.copy()
    df.loc[0, "customer_id"] = None  # c1's first event, 2026-01-01
    before = {t for t in engine.con.list_tables() if t.startswith("cjlib_")}
    loaded = cj.load_events(df, engine=engine, start="2026-01-02")
    after = {t for t in engine.con.list_tables() if t.startswith("cjlib_")}
    assert len(after - before) == 1
    assert loaded.report.dropped == {"rows without customer_id": 1}
    ts = pd.to_datetime(tiny_events["timestamp"], utc=True)
    assert len(loaded) == int((ts >= pd.Timestamp("2026-01-02", tz="UTC")).sum())


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_day_first_month_first_and_named_dates(write_csv, which, request):
    """Exports from spreadsheets and European or US tools write dates as 13/03/2024, 13.03.2024,
    03/13/2024 9:05 PM or Mar 13, 2024; they were all "timestamps that cannot be read". The
    expected values are the calendar readings of the strings (13 March 2024, UTC)."""
    from cjlib.engine import Engine

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    cases = {  # name: (text in the file, the instant it means)
        "day_first": (["01/03/2024 12:00", "13/03/2024 09:05:30"],
                      ["2024-03-01 12:00", "2024-03-13 09:05:30"]),
        "dotted": (["1.3.2024", "13.03.2024 21:05"], ["2024-03-01", "2024-03-13 21:05"]),
        "month_first": (["3/1/2024 9:05 AM", "03/13/2024 9:05 PM"],
                        ["2024-03-01 09:05", "2024-03-13 21:05"]),
        "named": (["Mar 1, 2024", "13-Mar-2024 08:00"], ["2024-03-01", "2024-03-13 08:00"]),
        # two-digit years: 69-99 are 19xx and 00-68 20xx on both engines (POSIX strptime)
        "two_digit_years": (["13/03/99 10:00", "01/03/68"], ["1999-03-13 10:00", "2068-03-01"]),
        "named_two_digit": (["13-Mar-99", "01-Mar-24 08:00"], ["1999-03-13", "2024-03-01 08:00"]),
        # GA4's event_date and CDNOW write dates as YYYYMMDD
        "yyyymmdd": (["20240301", "20240313 09:05"], ["2024-03-01", "2024-03-13 09:05"]),
        "mixed_with_iso": (["2024-03-01T12:00:00", "13/03/2024 09:05"],
                           ["2024-03-01 12:00", "2024-03-13 09:05"]),
    }  # fmt: skip
    for name, (text, want) in cases.items():
        df = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": text, "event": ["x", "y"]})
        got = cj.load_events(write_csv(df, f"{name}.csv"), engine=engine).to_pandas()
        got = got.sort_values("customer_id")["timestamp"].tolist()
        assert got == [pd.Timestamp(w, tz="UTC") for w in want], name
    # as numbers: 20240313 is a date, not 20,240,313 seconds (August 1970); 1.7e9 is seconds
    seconds = ["2023-11-14 22:13:20", "2023-11-14 22:14:20"]
    for numbers, want in (([20240301, 20240313], ["2024-03-01", "2024-03-13"]),
                          ([1700000000, 1700000060], seconds)):
        df = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": numbers, "event": ["x", "y"]})
        got = cj.load_events(df, engine=engine).to_pandas().sort_values("customer_id")
        assert got["timestamp"].tolist() == [pd.Timestamp(w, tz="UTC") for w in want]  # fmt: skip


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_ambiguous_dates_need_a_format(write_csv, which, request):
    """No day above 12 anywhere: 01/03/2024 is 1 March or 3 January. The loader refuses to guess
    and names both formats; timestamp_format settles it either way. The whole column decides,
    not its first rows: a log sorted by time whose first 1,200 rows fall on the 1st of a month
    is still read day-first when a later row is the 13th."""
    from cjlib.engine import Engine
    from cjlib.schema import SchemaError

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    df = pd.DataFrame(
        {"customer_id": ["a", "b"], "timestamp": ["01/03/2024 12:00", "02/03/2024 08:30"],
         "event": ["x", "y"]}
    )  # fmt: skip
    path = write_csv(df, "ambiguous.csv")
    refused = (
        r"events\.timestamp: dates such as '01/03/2024 12:00' read both day-first and "
        r"month-first.*%d/%m/%Y %H:%M.*%m/%d/%Y %H:%M"
    )
    with pytest.raises(SchemaError, match=refused):
        cj.load_events(path, engine=engine)
    readings = (("%d/%m/%Y %H:%M", "2024-03-01 12:00"), ("%m/%d/%Y %H:%M", "2024-01-03 12:00"))
    for fmt, want in readings:
        got = cj.load_events(path, engine=engine, timestamp_format=fmt).to_pandas()
        assert got.loc[got.customer_id == "a", "timestamp"].iloc[0] == pd.Timestamp(want, tz="UTC")
    with pytest.raises(SchemaError, match=r"cannot be read \(2 rows\).*timestamp_format"):
        cj.load_events(path, engine=engine, timestamp_format="%d/%m/%Y")  # the time is missing
    with pytest.raises(ValueError, match=r"timestamp_format '%Q'"):
        cj.load_events(path, engine=engine, timestamp_format="%Q")
    if which == "duckdb":  # the sorted log (Spark: same code path, slower to build)
        text = ["01/03/2024 10:00"] * 1200 + ["13/03/2024 10:00"]
        sorted_log = pd.DataFrame({"customer_id": "a", "timestamp": text, "event": "x"})
        got = cj.load_events(write_csv(sorted_log, "sorted.csv"), engine=engine,
                             duplicates="ignore").to_pandas()  # fmt: skip
        assert got["timestamp"].min() == pd.Timestamp("2024-03-01 10:00", tz="UTC")
        assert got["timestamp"].max() == pd.Timestamp("2024-03-13 10:00", tz="UTC")


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_whole_number_ids_written_as_floats_match_across_tables(write_csv, which, request):
    """UCI's Online Retail export writes 'Customer ID' as 13085.0 (a float column: some rows have
    none); the customers table says 13085. The '.0' is dropped and reported, so the tables join;
    leading zeros and real fractions are left alone."""
    from cjlib.engine import Engine

    engine = Engine.duckdb() if which == "duckdb" else request.getfixturevalue("spark_engine")
    events = pd.DataFrame({"Customer ID": ["13085.0", "13085.0", "00123", "1.5", ""],
                           "InvoiceDate": ["12/1/2009 7:45", "12/13/2009 17:06", "12/1/2009 8:00",
                                           "12/2/2009 9:00", "12/2/2009 9:30"]})  # fmt: skip
    loaded = cj.load_events(
        write_csv(events, "retail.csv"),
        column_map={"Customer ID": "customer_id", "InvoiceDate": "timestamp"},
        constants={"event": "purchase"},
        engine=engine,
    )
    got = loaded.to_pandas().sort_values("timestamp")
    assert got["customer_id"].tolist() == ["13085", "00123", "1.5", "13085"]
    assert got["timestamp"].iloc[-1] == pd.Timestamp("2009-12-13 17:06", tz="UTC")  # month first
    assert "customer_id: 2 ids such as '13085.0'" in loaded.report.notes[0]
    assert loaded.report.dropped == {"rows without customer_id": 1}
    customers = cj.load_customers(pd.DataFrame({"customer_id": ["13085"], "region": ["UK"]}),
                                  engine=engine)  # fmt: skip
    joined = loaded.expr.join(customers.expr, "customer_id")
    assert engine.to_pandas(joined.count()) == 2
    # a float column in pandas: whole numbers lose the '.0', fractions stay (GA4's
    # user_pseudo_id); they were cut to integers, merging 1026454.4271 and 1026454.9 with 1026454
    day = pd.Timestamp("2026-01-01", tz="UTC")
    floats = pd.DataFrame({"customer_id": [13085.0, 1026454.4271, 1026454.9, 1026454.0, None],
                           "timestamp": day, "event": "x"})  # fmt: skip
    ids = cj.load_events(floats, engine=engine, duplicates="ignore").to_pandas()["customer_id"]
    assert sorted(ids) == ["1026454", "1026454.4271", "1026454.9", "13085"]


def test_constants_fill_missing_columns(write_csv, engine):
    """An order table (customer_id, order_date, revenue: the R package rfm's layout) has no event
    column; constants={'event': 'purchase'} makes it a log of purchases. A constant for a column
    the source (or its map) already has is refused."""
    from cjlib.schema import SchemaError

    orders = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "order_date": ["2024-01-01", "2024-02-01", "2024-01-05"],
         "revenue": [10, 20, 5]}
    )  # fmt: skip
    path = write_csv(orders, "orders.csv")
    mapping = {"order_date": "timestamp"}
    with pytest.raises(SchemaError, match=r"events\.event: required column is missing"):
        cj.load_events(path, column_map=mapping, engine=engine)
    got = cj.load_events(path, column_map=mapping, constants={"event": "purchase"}, engine=engine)
    frame = got.to_pandas()
    assert frame["event"].tolist() == ["purchase"] * 3 and frame["revenue"].sum() == 35
    with pytest.raises(SchemaError, match=r"events\.revenue: constants names a column the source"):
        cj.load_events(path, column_map=mapping, constants={"event": "x", "revenue": 1},
                       engine=engine)  # fmt: skip
    ga4 = pd.DataFrame({"user_pseudo_id": ["u"], "event_timestamp": [1], "event_name": ["x"]})
    with pytest.raises(SchemaError, match=r"events\.event: constants names a column the source"):
        cj.load_events(ga4, column_map="ga4", constants={"event": "purchase"}, engine=engine)
    with pytest.raises(SchemaError, match=r"events\.timestamp: constants names a column"):
        cj.load_events(path, column_map=mapping, constants={"event": "x", "timestamp": "2024"},
                       engine=engine)  # fmt: skip
