"""Numbers written as text: the loaders' ``decimal`` option (European exports, ``12,50``)."""

from __future__ import annotations

import pandas as pd
import pytest

import cjlib as cj
from cjlib.schema import SchemaError

EU_EVENTS = (
    "customer_id;timestamp;event;revenue;basket_share\n"
    "c1;2024-03-01 10:00:00;purchase;12,50;0,5\n"
    "c2;2024-03-02 11:00:00;visit;;\n"
    "c1;2024-03-05 09:30:00;purchase;1.234,75;1\n"
    "c3;2024-03-05 09:30:00;purchase;1 000;-0,25\n"
)


def test_decimal_commas_and_grouped_thousands(tmp_path, engine):
    """A semicolon-separated export with decimal commas (as Excel writes CSV in a German or
    French locale): revenue 12,50 -> 12.5, 1.234,75 -> 1234.75 (points group thousands),
    1 000 -> 1000 (a space groups them); a property column of such numbers becomes float64."""
    path = tmp_path / "events.csv"
    path.write_text(EU_EVENTS, encoding="utf-8")
    got = cj.load_events(path, engine=engine, decimal=",").to_pandas()
    got = got.sort_values(["timestamp", "customer_id"]).reset_index(drop=True)
    assert got["revenue"].tolist()[0] == 12.5
    assert got["revenue"].tolist()[2:] == [1234.75, 1000.0]
    assert pd.isna(got["revenue"][1])
    assert got["basket_share"].dtype == "float64"
    assert got["basket_share"].tolist()[2:] == [1.0, -0.25]  # c1 then c3 at 09:30
    assert got["basket_share"][0] == 0.5


def test_decimal_comma_refuses_point_decimals(tmp_path, engine):
    """With decimal=',' a point only groups thousands (1.234,75): 12.5 is refused, with its row,
    rather than read as 125; nothing is left behind in the engine."""
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id;timestamp;event;revenue\nc1;2024-03-01 10:00:00;purchase;12.5\n"
        "c2;2024-03-01 11:00:00;purchase;3,5\n",
        encoding="utf-8",
    )
    before = set(engine.con.list_tables())
    with pytest.raises(
        SchemaError, match=r"events\.revenue: values that are not numbers \(1 row\)"
    ) as e:
        cj.load_events(path, engine=engine, decimal=",")
    assert "12.5" in str(e.value) and "decimal=" in str(e.value)
    assert set(engine.con.list_tables()) == before
    # the default reads it, and refuses the decimal comma instead
    with pytest.raises(SchemaError, match=r"\(1 row\)") as e:
        cj.load_events(path, engine=engine)
    assert "3,5" in str(e.value)


def test_decimal_comma_in_other_tables(tmp_path, engine):
    """The option applies to every contract table: an experiment's covariate and a survey's
    scores."""
    ex = tmp_path / "experiments.csv"
    ex.write_text(
        "customer_id;experiment;variant;pre_spend\nc1;e;control;10,5\nc2;e;new;2.000,25\n",
        encoding="utf-8",
    )
    got = cj.load_experiments(ex, engine=engine, decimal=",").to_pandas()
    assert sorted(got["pre_spend"]) == [10.5, 2000.25]


def test_decimal_must_be_point_or_comma(tmp_path, engine):
    path = tmp_path / "events.csv"
    path.write_text(EU_EVENTS, encoding="utf-8")
    with pytest.raises(ValueError, match=r"decimal must be one of \['\.', ','\], got ';'"):
        cj.load_events(path, engine=engine, decimal=";")


def test_semicolon_csv_with_quotes_reads_the_same_on_spark(tmp_path, engine, spark_engine):
    """Spark reads CSV with commas and backslash escapes unless told; the loader gives it the
    header's separator, RFC 4180 doubled quotes and quoted line breaks, so a European export
    with a survey-style comment loads as on DuckDB."""
    path = tmp_path / "events.csv"
    rows = EU_EVENTS.strip().split("\n")
    rows = [rows[0] + ";note", rows[1] + ';"said ""hi""\nand left"'] + [r + ";" for r in rows[2:]]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    frames = [
        cj.load_events(path, engine=e, decimal=",").to_pandas().sort_values("timestamp")
        for e in (engine, spark_engine)
    ]
    duck, spark = (f.reset_index(drop=True) for f in frames)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False)
    assert duck["note"][0] == 'said "hi"\nand left'
    assert duck["revenue"].tolist()[0] == 12.5


@pytest.mark.parametrize("which", ["duckdb", "spark"])
def test_zones_on_day_first_and_month_first_timestamps(which, request):
    """A zone after a non-ISO date is read and the value moved to UTC (it was unreadable):
    13/03/2024 09:05 +02:00 is 07:05 UTC; 03/13/2024 9:05 PM -05:00 is 02:05 UTC the next day
    (21:05 + 5 h); +05:30 and UTC too. A zone given with timestamp_format's layout also
    works, and a column mixing zoned and unzoned values is still refused."""
    eng = request.getfixturevalue("engine" if which == "duckdb" else "spark_engine")

    def load(values, **kw):
        df = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": values, "event": "x"})
        got = cj.load_events(df, engine=eng, **kw).to_pandas().sort_values("customer_id")
        return [str(t) for t in got["timestamp"]]

    assert load(["13/03/2024 09:05 +02:00", "14.03.2024 09:05:00 +05:30"]) == [
        "2024-03-13 07:05:00+00:00",
        "2024-03-14 03:35:00+00:00",
    ]
    assert load(["03/13/2024 9:05 PM -05:00", "03/14/2024 1:05 AM UTC"]) == [
        "2024-03-14 02:05:00+00:00",
        "2024-03-14 01:05:00+00:00",
    ]
    fmt = {"timestamp_format": "%d/%m/%Y %H:%M"}
    assert load(["13/03/2024 09:05 +0200", "14/03/2024 10:00 Z"], **fmt) == [
        "2024-03-13 07:05:00+00:00",
        "2024-03-14 10:00:00+00:00",
    ]
    with pytest.raises(SchemaError, match=r"mixes time-zone-naive and time-zone-aware"):
        load(["13/03/2024 09:05", "14/03/2024 10:00 +02:00"])
