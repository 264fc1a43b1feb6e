"""The studies give the same numbers on DuckDB and local Spark: journey map (map table, stage
metrics, pain points, slow steps), the A/B readout, persona features and RFM segments, and the
funnel stage view with its dwell times.

Every test runs the public function once per engine on the bundled sample (data/, made by
cjlib.synth, seed 42), loaded once per engine for the module, and compares the results: ids,
counts and text exactly, floats to a relative 1e-9 (sums may run in another order on Spark).
Rows are sorted first (Spark returns them in any order); a ranked table keeps its rank column,
so the ranking itself is compared. Each test also checks that the code path it guards ran on
data that can tell the engines apart (non-empty, several groups), so a parity test cannot pass
on two empty tables. These studies compute durations with ``Engine.epoch_us`` /
``epoch_seconds`` (``unix_micros`` on Spark), which no other parity test reaches.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA

import cjlib as cj
from cjlib import funnels, journeymap
from cjlib.engine import Engine
from cjlib.experiments import analyze, metrics_from_roles
from cjlib.experiments.metrics import customer_outcomes
from cjlib.personas import BLOCKS, customer_features, rfm_segments

pytest.importorskip("pyspark", reason="the spark extra is installed by `make test`")

ENGINES = ("duckdb", "spark")
PERSONA = DATA / "customer_persona.csv"


@pytest.fixture(scope="module")
def engines(spark_engine):
    return {"duckdb": Engine.duckdb(), "spark": spark_engine}


@pytest.fixture(scope="module")
def sample(engines):
    """``sample(table)``: that sample table loaded on each engine, once for the module (and only
    when a test asks for it)."""
    loaders = {
        "events": cj.load_events,
        "surveys": cj.load_surveys,
        "customers": cj.load_customers,
        "experiments": cj.load_experiments,
    }
    kept: dict[str, dict] = {}

    def get(table: str) -> dict:
        if table not in kept:
            path = DATA / f"{table}.csv"
            # duplicates="ignore": the same table (duplicates are kept either way) without the
            # duplicate check, a grouping of every row the loader's own parity test covers
            kept[table] = {
                n: loaders[table](path, engine=e, duplicates="ignore") for n, e in engines.items()
            }
        return kept[table]

    yield get
    for per_engine in kept.values():  # free the Spark cache for the rest of the session
        for loaded in per_engine.values():
            loaded.engine.release(loaded.expr)


def run_both(sample, fn, *tables, kw_tables=None, **kwargs) -> tuple:
    """``fn`` on the DuckDB tables, then on the Spark ones: positional ``tables`` and keyword
    ``kw_tables`` ({argument: table}) name sample tables; ``kwargs`` pass through."""
    out = []
    for name in ENGINES:
        named = {k: sample(t)[name] for k, t in (kw_tables or {}).items()}
        out.append(fn(*(sample(t)[name] for t in tables), **named, **kwargs))
    return tuple(out)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns and rows, whatever the row order: non-float columns (ids, counts, labels,
    ranks) exactly, float columns to rtol 1e-9. Rows are sorted on the non-float columns."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    floats = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
    exact = [c for c in a.columns if c not in floats]
    if exact:
        a = a.sort_values(exact, kind="mergesort", na_position="first")
        b = b.sort_values(exact, kind="mergesort", na_position="first")
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    pd.testing.assert_frame_equal(a[exact], b[exact], check_dtype=False)
    pd.testing.assert_frame_equal(
        a[floats], b[floats], check_dtype=False, check_exact=False, rtol=1e-9
    )


# -- journey map --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def maps(sample):
    return run_both(sample, journeymap.journey_map, "events", "surveys")


def test_journey_map_table_parity(maps):
    """The map a reader sees (rows x stages, formatted text) is the same text on both engines."""
    duck, spark = maps
    # one row per journeymap.ROWS entry; a label column and one column per five_stage() stage
    assert duck.table.shape == (len(journeymap.ROWS), 1 + len(cj.five_stage().stages))
    assert (duck.table != "—").sum().sum() > 30  # most cells filled on the sample
    pd.testing.assert_frame_equal(duck.table, spark.table)
    assert_same(duck.stages, spark.stages)
    # epoch_us durations ran: every stage but the last (advocacy has no next stage) has a dwell
    assert duck.stages["median_dwell_hours"].notna().sum() == len(cj.five_stage().stages) - 1
    assert_same(duck.furthest, spark.furthest)


def test_journey_map_stage_metrics_parity(maps):
    """Stage success metrics, including time to second purchase (whole days from epoch_us) and
    NPS from the surveys: every metric available on the sample, same values on both engines."""
    duck, spark = maps
    m = duck.metrics.set_index("metric")
    assert m["available"].all() and len(m) > 20
    assert m.loc["time to second purchase (median)", "denominator"] > 1000
    assert_same(duck.metrics, spark.metrics)


def test_journey_map_pain_points_parity(maps):
    """The ranked pain points (rank, kind, customers, evidence text) are identical, and all four
    kinds occur on the sample, so each is compared."""
    duck, spark = maps
    kinds = set(duck.pain_points["kind"])
    assert kinds == {"drop-off", "slow stage", "low satisfaction", "complained-about touchpoint"}
    assert_same(duck.pain_points, spark.pain_points)
    assert duck.opportunities() == spark.opportunities()


def test_slow_steps_parity(sample):
    """Dwell per stage step in hours (epoch_us), the all-steps median threshold and the customers
    above it."""
    duck, spark = run_both(sample, journeymap.slow_steps, "events", stages=cj.five_stage())
    assert len(duck) == len(cj.five_stage().stages) - 1  # a step into advocacy never closes
    assert duck["slow_customers"].gt(0).all()
    assert duck["threshold_hours"].iloc[0] > 0
    assert_same(duck, spark)


# -- A/B readout ---------------------------------------------------------------------------------
AB = dict(
    metrics=metrics_from_roles("conversion", ["first_order_value"], ["sessions"]),
    covariate="pre_period_sessions",
    window_days=14,
)


def test_customer_outcomes_parity(sample):
    """Per-customer outcomes of the sample experiment within 14 days of assignment (the window
    is a difference of epoch_seconds): the same customers, variants and values."""
    frames = []
    for name in ENGINES:
        expr, eng = customer_outcomes(
            sample("experiments")[name],
            sample("events")[name],
            AB["metrics"],
            covariate=AB["covariate"],
            window_days=AB["window_days"],
        )
        frames.append(eng.to_pandas(expr))
    duck, spark = frames
    assert len(duck) == sample("experiments")["duckdb"].report.rows_loaded  # one row a customer
    assert duck["variant"].nunique() == 2
    assert 0 < duck["conversion__num"].mean() < 1
    assert_same(duck, spark)


def test_analyze_parity(sample):
    """The readout of the sample experiment (conversion primary, CUPED, 14-day window; segments
    by device, persona and week of assignment; Mann-Whitney and a seeded bootstrap): the same
    comparisons, estimates, checks, sequential looks, segments and decision on both engines."""
    duck, spark = run_both(
        sample,
        analyze,
        "experiments",
        "events",
        kw_tables={"customers": "customers"},
        persona=PERSONA,
        segments=["device", "persona", "week"],
        tests=("mann_whitney", "bootstrap"),
        n_boot=200,
        **AB,
    )
    conv = duck.comparisons.set_index("metric").loc["conversion"]
    assigned = sample("experiments")["duckdb"].report.rows_loaded  # one row a customer
    assert conv["n_control"] + conv["n_variant"] == assigned
    assert conv["p_value"] < 0.01  # the lift planted by cjlib.synth (data/truth.json) is found
    assert duck.segments["dimension"].nunique() == 3 and len(duck.sequential) > 100
    assert duck.comparisons[["p_mann_whitney", "boot_lift_low"]].notna().any().all()
    for table in ("comparisons", "estimates", "stats", "checks", "srm", "exposure", "balance",
                  "bayesian", "sequential", "power", "segments", "simpson"):  # fmt: skip
        assert_same(getattr(duck, table), getattr(spark, table))
    assert (duck.decision, duck.reasons) == (spark.decision, spark.reasons)


# -- personas ------------------------------------------------------------------------------------
def assert_same_features(duck, spark) -> None:
    assert (duck.blocks, duck.categorical) == (spark.blocks, spark.categorical)
    assert {**duck.params, "engine": "-"} == {**spark.params, "engine": "-"}
    assert_same(duck.frame, spark.frame)


def test_customer_features_parity(sample):
    """All five blocks (behaviour, channels, journey, demographics, attitudes) for every
    customer; recency, tenure and days between stages come from epoch_seconds."""
    duck, spark = run_both(
        sample,
        customer_features,
        "events",
        kw_tables={"customers": "customers", "surveys": "surveys"},
    )
    events = sample("events")["duckdb"]  # one row per customer with an event
    assert len(duck) == events.engine.to_pandas(events.expr.customer_id.nunique())
    assert set(duck.blocks.values()) == set(BLOCKS)
    assert duck.frame["days_awareness_to_consideration"].notna().sum() > 1000
    assert duck.frame["nps"].notna().sum() > 1000
    assert_same_features(duck, spark)


def test_customer_features_without_session_id_parity(sample):
    """Without a session_id column, sessions are days with an event: whole days of epoch_us."""
    duck, spark = (
        customer_features(sample("events")[n].expr.drop("session_id"),
                          engine=sample("events")[n].engine)
        for n in ENGINES
    )  # fmt: skip
    sessions = duck.frame["sessions"]
    assert sessions.max() > 1 and (sessions <= duck.frame["events"]).all()
    assert_same_features(duck, spark)


def test_sessions_count_distinct_ids_and_skip_gaps_on_both_engines(engines):
    """sessions = distinct non-missing session ids per customer (as COUNT(DISTINCT)): u has
    s1, s2, s1 and a gap -> 2; v has only gaps -> 0; w has s1 -> 1 (the same id as u's: ids
    count per customer)."""
    rows = [("u", "s1"), ("u", "s2"), ("u", "s1"), ("u", None), ("v", None), ("v", None),
            ("w", "s1")]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["customer_id", "session_id"])
    frame["timestamp"] = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(
        range(len(rows)), unit="h"
    )
    frame["event"] = "first_visit"
    for name in ENGINES:
        events = cj.load_events(frame, engine=engines[name])
        got = customer_features(events, engine=engines[name]).frame.set_index("customer_id")
        assert got["sessions"].to_dict() == {"u": 2, "v": 0, "w": 1}, name


def test_customer_features_survey_text_parity(sample):
    """The attitudes block with a text answer column: the sample surveys' touchpoint as 'goal'
    (a customer's most frequent answer; customers with two different answers have a tie)."""
    duck, spark = (
        customer_features(
            sample("events")[n],
            surveys=sample("surveys")[n].expr.mutate(goal=sample("surveys")[n].expr.touchpoint),
            engine=sample("events")[n].engine,
        )
        for n in ENGINES
    )
    assert duck.frame["goal"].notna().sum() > 1000 and "goal" in duck.categorical
    assert_same_features(duck, spark)


def test_rfm_segments_parity(sample):
    """Recency (whole days from epoch_seconds), frequency, monetary, scores and segments."""
    duck, spark = run_both(sample, rfm_segments, "events")
    assert len(duck.customers) > 2000 and len(duck.segments) > 5
    assert duck.params == {**spark.params, "engine": duck.params["engine"]}
    assert_same(duck.customers, spark.customers)
    assert_same(duck.segments, spark.segments)


# -- funnel stage view ---------------------------------------------------------------------------
def test_stage_view_parity(sample):
    """The stage section of the drop-off study: stage funnel, furthest stage, transitions, paths,
    Sankey links, industry references and dwell times (floored durations from epoch_us)."""
    duck, spark = run_both(sample, funnels.stage_view, "events")
    closed = duck.dwell.iloc[:-1]  # advocacy, the last stage, has open steps only
    assert closed["steps"].gt(1000).all() and closed["median_hours"].notna().all()
    for table in ("dwell", "furthest", "transitions", "paths", "links", "references"):
        assert_same(getattr(duck, table), getattr(spark, table))
    assert_same(duck.funnel.steps, spark.funnel.steps)
    assert_same(duck.funnel.timing, spark.funnel.timing)


# -- tables loaded from pandas -----------------------------------------------------------------
def test_dwell_times_from_a_dataframe_parity(engines, tiny_events):
    """The same study on a table loaded from a pandas DataFrame (conftest's tiny_events)."""
    duck, spark = (
        funnels.dwell_times(cj.load_events(tiny_events, engine=engines[n])) for n in ENGINES
    )
    assert duck["steps"].sum() > 0
    assert_same(duck, spark)
