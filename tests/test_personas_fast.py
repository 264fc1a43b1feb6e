"""The persona pipeline's fast paths against hand-computed values: the narrow journey window
(unmapped events between mapped ones, tied timestamps), features through Arrow, the row-blocked
matrix, the per-persona sufficient statistics of the trait effects, and cards without a join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cjlib as cj
from cjlib.io import load_customers, load_events
from cjlib.personas import customer_features, prepare_features
from cjlib.personas.cards import trait_effects
from cjlib.personas.prepare import _ROWS


@pytest.fixture
def gappy_events(engine):
    """x: first_visit (a) 09:00, mystery 09:30, at 10:00 product_view (c) and first_visit (a)
    tied, mystery 11:00, purchase (p) 12:00, first_visit (a) 13:00. Ties are ordered by stage,
    so the mapped sequence is a a c p a; the unmapped events sit between mapped ones.
    y: only unmapped events."""
    rows = [
        ("x", "2026-03-01T09:00:00Z", "first_visit", "search", None, "s1"),
        ("x", "2026-03-01T09:30:00Z", "mystery_event", None, None, "s1"),
        ("x", "2026-03-01T10:00:00Z", "product_view", "email", None, "s2"),
        ("x", "2026-03-01T10:00:00Z", "first_visit", "search", None, "s2"),
        ("x", "2026-03-01T11:00:00Z", "mystery_event", None, None, "s2"),
        ("x", "2026-03-01T12:00:00Z", "purchase", None, 30.0, "s1"),
        ("x", "2026-03-01T13:00:00Z", "first_visit", "search", None, "s3"),
        ("y", "2026-03-02T08:00:00Z", "mystery_event", "search", None, "s9"),
        ("y", "2026-03-02T09:00:00Z", "mystery_event", None, None, "s9"),
    ]
    cols = ["customer_id", "timestamp", "event", "channel", "revenue", "session_id"]
    return load_events(pd.DataFrame(rows, columns=cols), engine=engine)


def test_journey_counts_steps_across_unmapped_events_and_ties(gappy_events, engine):
    """x: a a c p a -> steps a, c, p, a = 4, one regression (p -> a), furthest purchase; 7
    events in 3 distinct sessions (s1 comes back), 4 touches of which 3 search; first
    consideration 1 h after first awareness, purchase 2 h after that. y has no mapped event:
    no stage, 0 steps, 0 regressions, but its events, sessions and touches count."""
    f = customer_features(gappy_events, engine=engine).frame.set_index("customer_id")
    x, y = f.loc["x"], f.loc["y"]
    assert (x.events, x.sessions, x.touches, x.frequency, x.monetary) == (7, 3, 4, 1, 30.0)
    assert x.channel_search == pytest.approx(3 / 4) and x.channel_email == pytest.approx(1 / 4)
    assert (x.furthest_stage, x.stage_steps, x.regressions) == ("purchase", 4, 1)
    assert x.days_awareness_to_consideration == pytest.approx(1 / 24)
    assert x.days_consideration_to_purchase == pytest.approx(2 / 24)
    assert (y.events, y.sessions, y.touches, y.stage_steps, y.regressions) == (2, 1, 1, 0, 0)
    assert pd.isna(y.furthest_stage) and np.isnan(y.furthest_stage_index)
    seq = cj.stage_sequences(gappy_events, engine=engine).set_index("customer_id")
    assert (seq.loc["x", "n_steps"], seq.loc["x", "regressions"]) == (4, 1)


def test_text_columns_come_back_as_categoricals(gappy_events, engine):
    """Demographic text arrives as a pandas categorical with missing gaps and only the levels
    of customers with events (z has none: its level east is left out); ids as text."""
    customers = load_customers(
        pd.DataFrame({"customer_id": ["x", "y", "z"], "region": ["north", None, "east"],
                      "age": [40, None, 30]}),
        engine=engine,
    )  # fmt: skip
    frame = customer_features(gappy_events, customers=customers, engine=engine).frame
    assert isinstance(frame["region"].dtype, pd.CategoricalDtype)
    assert frame["region"].tolist() == ["north", np.nan]
    assert list(frame["region"].cat.categories) == ["north"]
    assert frame["customer_id"].tolist() == ["x", "y"]
    assert frame["age"].iloc[0] == 40.0 and np.isnan(frame["age"].iloc[1])


def test_matrix_is_filled_the_same_across_row_blocks():
    """More rows than one block: every entry is (x - mean) / sd times the block factor, one-hot
    entries 1/sqrt(2) times theirs, and transform() of the same customers gives the same
    matrix; each balanced block's total variance is its weight; rows() and subset() give the
    same rows without the whole matrix."""
    from cjlib.personas.features import FeatureTable

    rng = np.random.default_rng(1)
    n = 2 * _ROWS + 17
    frame = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "sessions": rng.normal(5.0, 2.0, n),
        "region": rng.choice(["north", "south", "east"], n).astype(object),
    })  # fmt: skip
    table = FeatureTable(frame, {"sessions": "behaviour", "region": "demographics"}, ("region",))
    p = prepare_features(table, weights={"behaviour": 1.0, "demographics": 2.0}, log_skewed=False)
    x = frame["sessions"].to_numpy()
    f_beh, f_dem = p.spec["block_factor"]["behaviour"], p.spec["block_factor"]["demographics"]
    np.testing.assert_allclose(p.matrix[:, 0], (x - x.mean()) / x.std() * f_beh, rtol=1e-12)
    assert p.columns[1:] == ("region=east", "region=north", "region=south")
    east = (frame["region"] == "east").to_numpy()
    np.testing.assert_allclose(p.matrix[:, 1], east / np.sqrt(2) * f_dem, rtol=1e-12)
    np.testing.assert_array_equal(p.transform(table), p.matrix)
    assert p.matrix[:, 0].var() == pytest.approx(1.0)
    assert p.matrix[:, 1:].var(axis=0).sum() == pytest.approx(2.0)
    # some customers' rows, written alone (as fits on samples and chunked assignment do) or
    # taken from the whole matrix, are the same numbers
    fresh = prepare_features(table, weights={"behaviour": 1.0, "demographics": 2.0},
                             log_skewed=False)  # fmt: skip
    some = np.array([n - 1, 3, _ROWS + 5, 0])
    np.testing.assert_array_equal(fresh.rows(some), p.matrix[some])
    np.testing.assert_array_equal(fresh.rows(slice(_ROWS - 2, _ROWS + 9)),
                                  p.matrix[_ROWS - 2 : _ROWS + 9])  # fmt: skip
    assert "matrix" not in fresh.__dict__  # nothing above wrote the whole matrix
    np.testing.assert_array_equal(fresh.subset(some).matrix, p.matrix[some])
    np.testing.assert_array_equal(p.subset(some).matrix, p.matrix[some])
    assert list(fresh.subset(some).customer_id) == [f"c{i}" for i in some]


def test_trait_effects_three_personas_and_gaps():
    """Numeric x, persona 1 = {1, 2, 3}, rest = {4, 5, 6, 10, 12} (a gap left out): means 2 and
    7.4, squared deviations 2 and 47.2, pooled SD sqrt(49.2 / 6), d = -5.4 / sqrt(8.2).
    Categorical g (gap in persona 1): persona 1 has a, b; the rest a, b, b; level a:
    p1 = 1/2, p2 = 1/3, overall 2/5, h = 2 asin(sqrt(1/2)) - 2 asin(sqrt(1/3)), index 125."""
    frame = pd.DataFrame({
        "x": [1.0, 2, 3, 4, 5, np.nan, 6, 10, 12],
        "g": ["a", "b", None, "a", "b", "b", None, None, None],
    })  # fmt: skip
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    t = trait_effects(frame, labels, categorical=("g",))
    row = t[(t.persona_id == 1) & (t.trait == "x")].iloc[0]
    assert (row.persona_value, row.rest_value, row.customers) == (2.0, pytest.approx(7.4), 3)
    assert row.effect == pytest.approx(-5.4 / np.sqrt(8.2))
    assert row.overall_value == pytest.approx(43 / 8)
    se = np.sqrt(8 / 15 + row.effect**2 / 16)
    assert row.effect_high - row.effect == pytest.approx(1.959963984540054 * se)
    p3 = t[(t.persona_id == 3) & (t.trait == "x")].iloc[0]
    assert (p3.persona_value, p3.rest_value) == (11.0, pytest.approx(21 / 6))
    a = t[(t.persona_id == 1) & (t.trait == "g") & (t.level == "a")].iloc[0]
    assert (a.persona_value, a.rest_value, a.overall_value) == pytest.approx((0.5, 1 / 3, 0.4))
    h = 2 * np.arcsin(np.sqrt(0.5)) - 2 * np.arcsin(np.sqrt(1 / 3))
    assert a.effect == pytest.approx(h) and a["index"] == pytest.approx(125.0)
    assert a.effect_high - a.effect == pytest.approx(1.959963984540054 * np.sqrt(1 / 2 + 1 / 3))
    # persona 3 has no known g: no categorical row for it
    assert t[(t.persona_id == 3) & (t.trait == "g")].empty


def test_cards_same_with_assignment_in_any_order(gappy_events, engine):
    """The cards join the assignment on customer_id; the same customers in the feature table's
    order (no join) or shuffled, with an extra unknown customer (joined) give the same cards."""
    from cjlib.personas import persona_cards
    from cjlib.personas.cards import _same_customers

    f = customer_features(gappy_events, engine=engine)
    ordered = pd.DataFrame({"customer_id": ["x", "y"], "persona_id": [1, 2]})
    shuffled = pd.DataFrame({"customer_id": ["zz", "y", "x"], "persona_id": [1, 2, 1]})
    assert _same_customers(f.frame, ordered) and not _same_customers(f.frame, shuffled)
    as_objects = ordered.assign(customer_id=np.array(["x", "y"], dtype=object))
    chunked = pd.concat([f.frame.iloc[:1], f.frame.iloc[1:]], ignore_index=True)
    assert _same_customers(chunked, as_objects)
    assert not _same_customers(f.frame, ordered.assign(customer_id=[1, 2]))
    a = persona_cards(f, ordered, min_cell_size=1)
    b = persona_cards(f, shuffled, min_cell_size=1)
    pd.testing.assert_frame_equal(a.traits, b.traits)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    assert a.summary["customers"].tolist() == [1, 1]


def test_customers_listed_twice_give_one_row(gappy_events, engine):
    """A customers table that lists x twice (age on one row, region on the other) still gives
    one feature row per customer, with the known value of each column (the query is run again
    with one row per customer when an id comes back twice)."""
    df = pd.DataFrame({"customer_id": ["x", "x", "y"], "age": [40.0, None, 22.0],
                       "region": [None, "north", "south"]})  # fmt: skip
    customers = load_customers(df, engine=engine)
    frame = customer_features(gappy_events, customers=customers, engine=engine).frame
    assert frame["customer_id"].tolist() == ["x", "y"]
    assert frame["age"].tolist() == [40.0, 22.0]
    assert frame["region"].tolist() == ["north", "south"]


def test_journey_block_query_aligns_with_the_other_blocks(gappy_events, engine):
    """The journey block (its own query, run while the other blocks are converted) lands on the
    right customers: y has no mapped event (0 steps and regressions), the customers table lists
    a third customer without events (left out) and a column named like a journey column
    (renamed customer_regressions); the partial table has every other block and no journey
    column, with the same values."""
    from cjlib.personas.features import _start

    df = pd.DataFrame({"customer_id": ["y", "x", "z"], "age": [22.0, 40.0, 31.0],
                       "regressions": [1.0, 2.0, 3.0]})  # fmt: skip
    customers = load_customers(df, engine=engine)
    build = _start(gappy_events, customers=customers, engine=engine)
    partial = build.partial()  # the journey query is running meanwhile
    full = build.table()
    assert full.frame["customer_id"].tolist() == ["x", "y"]
    assert full.frame["customer_regressions"].tolist() == [2.0, 1.0]
    assert full.frame["age"].tolist() == [40.0, 22.0]
    assert full.frame["regressions"].tolist() == [1, 0]
    assert full.frame["stage_steps"].tolist() == [4, 0]
    assert full.blocks["customer_regressions"] == "demographics"
    assert not {c for c, b in partial.blocks.items() if b == "journey"}
    assert "furthest_stage" not in partial.frame and "stage_steps" not in partial.frame
    pd.testing.assert_frame_equal(partial.frame, full.frame[list(partial.frame.columns)])
    pd.testing.assert_frame_equal(
        customer_features(gappy_events, customers=customers, engine=engine).frame, full.frame
    )


def test_silhouette_hand_computed():
    """Points 0 and 1 in one cluster, 5 alone: s(0) = (5 - 1) / 5 = 0.8, s(1) = (4 - 1) / 4 =
    0.75, a point alone in its cluster scores 0 -> mean 1.55 / 3 (Rousseeuw 1987)."""
    from cjlib.personas.selection import _silhouette

    x = np.array([0.0, 1.0, 5.0])
    dist = np.abs(x[:, None] - x[None, :])
    assert _silhouette(dist, np.array([0, 0, 1])) == pytest.approx(1.55 / 3)
    assert np.isnan(_silhouette(dist, np.array([0, 0, 0])))


def test_drop_rows_leaves_out_customers_with_gaps_and_prepares_the_rest_alone():
    """missing='drop_rows': customers with a gap in any used feature get no row; the others
    are prepared exactly as a table of only them would be (same centres, scales, levels: no
    '(missing)' level, no indicator column); the report says who was left out."""
    from cjlib.personas.features import FeatureTable

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "sessions": rng.normal(5.0, 2.0, n),
        "age": rng.normal(40.0, 9.0, n),
        "region": rng.choice(["north", "south", "east"], n).astype(object),
    })  # fmt: skip
    frame.loc[[3, 50, 51], "age"] = np.nan
    frame.loc[[7, 50], "region"] = None
    blocks = {"sessions": "behaviour", "age": "demographics", "region": "demographics"}
    kw = dict(weights={"behaviour": 1.0, "demographics": 1.0}, log_skewed=False)
    p = prepare_features(FeatureTable(frame, blocks, ("region",)), missing="drop_rows", **kw)
    gone = {"c003", "c007", "c050", "c051"}
    assert len(p) == n - 4 and not gone & set(p.customer_id)
    rest = frame[~frame["customer_id"].isin(gone)].reset_index(drop=True)
    alone = prepare_features(FeatureTable(rest, blocks, ("region",)), missing="error", **kw)
    assert p.columns == alone.columns == ("sessions", "age", "region=east", "region=north",
                                          "region=south")  # fmt: skip
    np.testing.assert_array_equal(p.customer_id, alone.customer_id)
    np.testing.assert_allclose(p.matrix, alone.matrix, rtol=1e-12)
    report = p.missing.set_index("feature")
    assert report.loc["age", "missing"] == 3 and report.loc["region", "missing"] == 2
    assert set(report.loc[["age", "region"], "action"]) == {"customers left out"}
    with pytest.raises(ValueError, match="missing='drop_rows' leaves no customer"):
        everyone = frame.copy()  # every customer lacks either age or region
        everyone.loc[everyone.index % 2 == 0, "age"] = np.nan
        everyone.loc[everyone.index % 2 == 1, "region"] = None
        prepare_features(
            FeatureTable(everyone, blocks, ("region",)), missing="drop_rows", max_missing=1.0, **kw
        )
