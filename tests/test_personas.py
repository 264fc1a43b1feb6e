"""Persona features (hand-computed), preparation, Gower distance, RFM and cards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cjlib.io import load_customers, load_events, load_surveys
from cjlib.personas import (
    customer_features,
    fit_clusters,
    persona_cards,
    prepare_features,
    read_assignment,
    rfm_segments,
)
from cjlib.personas.cards import trait_effects
from cjlib.personas.gower import GowerSpace, gower_matrix, k_medoids
from cjlib.personas.rfm import rfm_package_scores, rfm_scores
from cjlib.personas.selection import _jaccard_best, _pair_share

DAY = 86_400.0


@pytest.fixture
def small_events(tiny_events, engine):
    """conftest's three customers plus a session id per event."""
    sessions = ["s1", "s1", "s2", "s3", "s4", "s4", "t1", "t2", "t3", "t4", "u1", "u1"]
    return load_events(tiny_events.assign(session_id=sessions), engine=engine)


@pytest.fixture
def small_customers(engine):
    df = pd.DataFrame(
        {"customer_id": ["c1", "c2", "c3"], "age": [30, 50, 41], "region": ["north", "south", None]}
    )
    return load_customers(df, engine=engine)


@pytest.fixture
def small_surveys(engine):
    df = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2"],
            "timestamp": ["2026-01-05T00:00:00Z"] * 3,
            "nps": [10.0, 6.0, 9.0],
            "csat": [5.0, 3.0, 4.0],
            "comment": ["good", "bad", "good"],
        }
    )
    return load_surveys(df, engine=engine)


def test_features_hand_computed(small_events, small_customers, small_surveys, engine):
    """Every number below is counted by hand from conftest.tiny_events (as_of = the last event,
    2026-02-06T12:00Z):

    c1: first 2026-01-01T09:00, last 2026-01-04T10:10 -> recency 33 d 1 h 50 min; one purchase
    of 40 -> frequency 1, monetary 40; 6 events, 4 sessions; 5 touches (display,
    social, search, video, email: 1/5 each); stages a, a, c, a, c, p -> steps a c a c p: furthest
    purchase (2), 5 steps, 1 regression; first awareness 01-01 09:00, first consideration 01-02
    10:00 (1 d 1 h), first purchase 01-04 10:10 (2 d 0 h 10 min later).
    c2: first visit 01-01 12:00, purchases 15.5 and 20 (repeat) -> frequency 2, monetary 35.5,
    AOV 17.75; stages a p r adv -> furthest advocacy (4); consideration never reached, so both
    gaps around it are missing. c3: mystery_event maps to no stage; furthest awareness.
    Survey: c1 answered 10 and 6 -> NPS mean 8, CSAT mean 4; c3 never answered -> missing.
    """
    f = customer_features(
        small_events, customers=small_customers, surveys=small_surveys, engine=engine
    )
    df = f.frame.set_index("customer_id")
    assert list(df.index) == ["c1", "c2", "c3"]
    c1, c2, c3 = df.loc["c1"], df.loc["c2"], df.loc["c3"]
    assert c1.recency_days == pytest.approx(33 + (1 * 3600 + 50 * 60) / DAY)
    assert c1.tenure_days == pytest.approx(36 + 3 / 24)
    assert (c1.frequency, c1.monetary, c1.avg_order_value) == (1, 40.0, 40.0)
    assert (c1.events, c1.sessions, c1.touches) == (6, 4, 5)
    assert c1.events_per_session == pytest.approx(1.5)
    assert c1.channel_display == pytest.approx(0.2) and c1.channel_email == pytest.approx(0.2)
    assert (c1.furthest_stage, c1.furthest_stage_index, c1.stage_steps, c1.regressions) == (
        "purchase", 2.0, 5, 1,
    )  # fmt: skip
    assert c1.days_awareness_to_consideration == pytest.approx(1 + 1 / 24)
    assert c1.days_consideration_to_purchase == pytest.approx(2 + 10 / 60 / 24)
    assert (c2.frequency, c2.monetary, c2.avg_order_value) == (2, 35.5, 17.75)
    assert c2.furthest_stage == "advocacy" and c2.regressions == 0
    assert np.isnan(c2.days_awareness_to_consideration)
    assert np.isnan(c2.days_consideration_to_purchase)
    assert c2.channel_direct == 1.0
    assert c3.furthest_stage == "awareness" and c3.frequency == 0 and np.isnan(c3.avg_order_value)
    assert (c1.nps, c1.csat, c1.survey_responses) == (8.0, 4.0, 2)
    assert np.isnan(c3.nps) and c3.survey_responses == 0
    assert (c1.age, c2.region) == (30.0, "south") and pd.isna(c3.region)
    assert f.blocks["age"] == "demographics" and f.blocks["nps"] == "attitudes"
    assert f.blocks["channel_search"] == "channels" and f.blocks["regressions"] == "journey"
    assert "region" in f.categorical


def test_features_agree_with_stage_sequences():
    """Furthest stage and regressions match cjlib.journeys.stage_sequences on the sample."""
    import cjlib as cj

    events = cj.load_sample("events")
    f = customer_features(events).frame.set_index("customer_id")
    seq = cj.stage_sequences(events).set_index("customer_id")
    assert (f.loc[seq.index, "furthest_stage"] == seq["furthest_stage"]).all()
    assert (f.loc[seq.index, "regressions"] == seq["regressions"]).all()
    assert (f.loc[seq.index, "stage_steps"] == seq["n_steps"]).all()


def test_prepare_reports_missing_values(small_events, small_customers, small_surveys, engine):
    """nps is missing for c3 (1 of 3): filled with the median of 8 and 9 (8.5) plus an indicator;
    region is missing for c3 -> level '(missing)'."""
    f = customer_features(small_events, customers=small_customers, surveys=small_surveys,
                          engine=engine)  # fmt: skip
    p = prepare_features(f, weights={"attitudes": 1, "journey": 1}, max_missing=0.9)
    report = p.missing.set_index("feature")
    assert report.loc["nps", "missing"] == 1
    assert report.loc["nps", "action"] == "median + indicator"
    assert report.loc["region", "action"] == "level '(missing)'"
    assert p.data.loc[2, "nps"] == 8.5 and p.data.loc[2, "nps__missing"] == 1.0
    assert "region=(missing)" in p.columns
    assert p.matrix.shape == (3, len(p.columns))
    dropped = prepare_features(f, weights={"journey": 1}, max_missing=0.5).missing
    assert (
        dropped.set_index("feature")
        .loc["days_consideration_to_purchase", "action"]
        .startswith("dropped")
    )
    with pytest.raises(ValueError, match="missing='error' but feature 'avg_order_value'"):
        prepare_features(f, missing="error", max_missing=0.9)
    with pytest.raises(ValueError, match="missing must be one of"):
        prepare_features(f, missing="zero")
    with pytest.raises(ValueError, match="scale must be one of"):
        prepare_features(f, scale="minmax")
    with pytest.raises(ValueError, match="weights must map blocks"):
        prepare_features(f, weights={"behaviour": -1})
    with pytest.raises(ValueError, match="blocks must be among"):
        prepare_features(f, blocks=["psychographics"])
    with pytest.raises(TypeError, match="features must be a FeatureTable"):
        prepare_features(f.frame)


def test_block_weights_balance_total_variance(small_events, small_customers, engine):
    """With balance_blocks each block's total variance equals its weight."""
    f = customer_features(small_events, customers=small_customers, engine=engine)
    p = prepare_features(f, weights={"behaviour": 2.0, "demographics": 0.5, "channels": 0})
    blocks = np.array(p.column_blocks)
    assert p.matrix[:, blocks == "behaviour"].var(axis=0).sum() == pytest.approx(2.0)
    assert p.matrix[:, blocks == "demographics"].var(axis=0).sum() == pytest.approx(0.5)
    assert "channels" not in blocks


def test_gower_distance_hand_computed():
    """Gower (1971): rows (age 20, north), (30, north), (40, south); age range 20.
    d(1,2) = (10/20 + 0) / 2 = 0.25; d(1,3) = (1 + 1) / 2 = 1; d(2,3) = (0.5 + 1) / 2 = 0.75.
    With weights age 3, region 1: d(1,2) = 3 * 0.5 / 4 = 0.375."""
    data = pd.DataFrame({"age": [20.0, 30.0, 40.0], "region": ["north", "north", "south"]})
    space = GowerSpace(data, numeric=["age"], categorical=["region"])
    enc = space.encode(data)
    d = gower_matrix(enc, enc, space)
    assert d == pytest.approx(np.array([[0, 0.25, 1], [0.25, 0, 0.75], [1, 0.75, 0]]))
    weighted = GowerSpace(data, numeric=["age"], categorical=["region"], weights={"age": 3})
    assert gower_matrix(enc, enc, weighted)[0, 1] == pytest.approx(0.375)
    with pytest.raises(ValueError, match="needs complete data"):
        GowerSpace(data.assign(age=[1.0, None, 2.0]), numeric=["age"], categorical=[])


def test_k_medoids_finds_two_obvious_groups():
    """Points 0, 1, 2 and 10, 11, 12 on a line: medoids 1 and 11, cost 4 (hand count)."""
    x = np.array([0, 1, 2, 10, 11, 12], dtype=float)
    medoids, labels, cost = k_medoids(np.abs(x[:, None] - x[None, :]), 2, random_state=1)
    assert sorted(x[medoids]) == [1.0, 11.0]
    assert cost == pytest.approx(4.0)
    assert len(set(labels[:3])) == 1 and labels[0] != labels[3]
    with pytest.raises(ValueError, match="k must be between 1"):
        k_medoids(np.zeros((2, 2)), 3)


def test_stability_primitives_hand_computed():
    """Jaccard: reference {0,1,2} vs bootstrap {0,1} and {2,3}: |{0,1}| / |{0,1,2}| = 2/3;
    reference {3} vs {2,3}: 1/2. Prediction strength: a cluster of 3 with 2 co-assigned pairs
    out of 3 pairs... labels (0,0,1) -> 1 pair of 3 together = 1/3; cluster {3,4} together = 1."""
    ref = np.array([0, 0, 0, 1])
    other = np.array([0, 0, 1, 1])
    assert _jaccard_best(ref, other, 2) == pytest.approx([2 / 3, 1 / 2])
    assert _pair_share(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1]), 2) == pytest.approx(
        1 / 3
    )


def test_rfm_scores_and_segments_hand_computed():
    """Five buyers with 1..5 orders: mid-rank percentiles 0.1, 0.3, ..., 0.9 -> scores 1..5.
    Recency reversed. Customer e (most recent, most orders, most revenue) is a Champion (5,5,5);
    customer a (oldest, fewest, least) has scores (1,1,1) -> Lost."""
    assert list(rfm_scores(pd.Series([1, 2, 3, 4, 5]), 5)) == [1, 2, 3, 4, 5]
    assert list(rfm_scores(pd.Series([1, 2, 3, 4, 5]), 5, reverse=True)) == [5, 4, 3, 2, 1]
    assert list(rfm_scores(pd.Series([1, 1, 1, 1, 2]), 5)) == [2, 2, 2, 2, 5]  # ties share
    rows = []
    for i, cid in enumerate("abcde"):
        for j in range(i + 1):
            rows.append((cid, f"2026-0{i + 1}-0{j + 1}T00:00:00Z", "purchase", 10.0 * (i + 1)))
    events = load_events(
        pd.DataFrame(rows, columns=["customer_id", "timestamp", "event", "revenue"])
    )
    res = rfm_segments(events, as_of="2026-06-01", scoring="rank")
    c = res.customers.set_index("customer_id")
    assert c.loc["e", "segment"] == "Champions" and c.loc["e", "rfm_score"] == 555
    assert c.loc["a", "segment"] == "Lost" and c.loc["a", "rfm_score"] == 111
    assert c.loc["a", "recency_days"] == 151  # 2026-01-01 -> 2026-06-01
    assert res.segments["customers"].sum() == 5
    assert res.assignment().columns.tolist() == ["customer_id", "segment"]
    # the R package's scores: quintiles of 1..5 are 1.8, 2.6, 3.4, 4.2, thresholds +1 = 2.8, 3.6,
    # 4.4, 5.2, so orders 1, 2 -> 1; 3 -> 2; 4 -> 3; 5 -> 4 (score 5 stays empty, as in R)
    scores, cuts = rfm_package_scores(pd.Series([1, 2, 3, 4, 5]), 5)
    assert list(scores) == [1, 1, 2, 3, 4] and list(cuts) == pytest.approx([2.8, 3.6, 4.4, 5.2])
    reverse, _ = rfm_package_scores(pd.Series([1, 2, 3, 4, 5]), 5, reverse=True)
    assert list(reverse) == [5, 5, 4, 3, 2]
    # recency 151, 119, 90, 58, 27 days and revenue 10, 40, 90, 160, 250 spread out: e scores
    # 5 on both, but its 5 orders only 4 (above)
    r = rfm_segments(events, as_of="2026-06-01").customers.set_index("customer_id")
    assert r.loc["e", "rfm_score"] == 545 and r.loc["a", "rfm_score"] == 111
    cells = rfm_segments(events, as_of="2026-06-01", bins=3).segments  # score cells, not names
    assert cells["customers"].sum() == 5 and set(cells["segment"]) >= {"111", "333"}
    with pytest.raises(ValueError, match="bins must be an int from 2 to 10"):
        rfm_segments(events, bins=1)
    with pytest.raises(ValueError, match=r"scoring must be one of \['rfm', 'rank'\]"):
        rfm_segments(events, scoring="ntile")
    with pytest.raises(ValueError, match="needs a revenue column"):
        rfm_segments(events.expr.drop("revenue"), engine=events.engine)


def test_trait_effects_cohens_d_hand_computed():
    """Persona values 1, 2, 3 vs rest 4, 5, 6: means 2 and 5, pooled SD 1 -> d = -3;
    se = sqrt(6/9 + 9/12) = sqrt(17/12)."""
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6]})
    t = trait_effects(frame, np.array([0, 0, 0, 1, 1, 1]))
    row = t[(t.persona_id == 1) & (t.trait == "x")].iloc[0]
    assert row.effect == pytest.approx(-3.0)
    z = 1.959963984540054
    assert row.effect_high - row.effect == pytest.approx(z * np.sqrt(17 / 12))


def test_cards_nps_and_sizes(small_events, small_customers, small_surveys, engine):
    """c1 and c2 in persona 1, c3 in persona 2. Respondents of persona 1: c1 (mean 8, passive)
    and c2 (9, promoter) -> NPS = 50 - 0 = +50; CSAT mean of 4 and 4 = 4."""
    f = customer_features(small_events, customers=small_customers, surveys=small_surveys,
                          engine=engine)  # fmt: skip
    assignment = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "persona_id": [1, 1, 2]})
    cards = persona_cards(f, assignment, surveys=small_surveys, min_cell_size=1, engine=engine)
    assert cards.summary["customers"].tolist() == [2, 1]
    att = cards.attitudes.set_index("persona_id")
    assert att.loc[1, "nps_score"] == pytest.approx(50.0)
    assert att.loc[1, "csat_mean"] == pytest.approx(4.0)
    voices = cards.voices
    assert set(voices["field"]) <= {"comment (promoters)", "comment (passives)",
                                     "comment (detractors)"}  # fmt: skip
    html = cards._repr_html_()
    assert "Persona 1" in html and "c1" not in html
    with pytest.raises(ValueError, match="assignment needs columns"):
        persona_cards(f, assignment.rename(columns={"persona_id": "p"}))


def test_fit_clusters_errors(small_events, engine):
    f = customer_features(small_events, engine=engine)
    p = prepare_features(f)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_clusters(p, k=2, method="dbscan")
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        fit_clusters(p, k=1)
    with pytest.raises(ValueError, match="k must not exceed the number of customers"):
        fit_clusters(p, k=5)


def test_read_assignment_checks_columns(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"customer_id": ["1"], "persona": ["x"], "extra": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="must have customer_id and one segment column"):
        read_assignment(path)


def test_survey_goal_is_the_most_frequent_answer_ties_alphabetical(small_events, engine):
    """goal per customer, counted by hand: c1 answered b, a (a tie -> 'a', the alphabetically
    first); c2 answered b, b, a -> 'b'; c3 answered only blanks -> missing."""
    df = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2", "c2", "c2", "c3"],
            "timestamp": ["2026-01-05T00:00:00Z"] * 6,
            "nps": [9.0] * 6,
            "goal": ["b", "a", "b", "b", "a", None],
        }
    )
    f = customer_features(small_events, surveys=load_surveys(df, engine=engine), engine=engine)
    goal = f.frame.set_index("customer_id")["goal"]
    assert (goal["c1"], goal["c2"]) == ("a", "b") and pd.isna(goal["c3"])
    assert f.blocks["goal"] == "attitudes" and "goal" in f.categorical


def test_no_drop_off_into_a_stage_nobody_has_events_in():
    """Order table personas: nobody has an advocacy event, and "the biggest drop-off is from
    retention to advocacy (100 % ...)" was every persona's finding. Hand count: persona 1 has
    furthest stages purchase, retention; persona 2 retention: retention lost 1 of 2 and 0 of 1;
    advocacy (no one, in any persona) is not measured."""
    import numpy as np

    from cjlib.personas.cards import _stages

    frame = pd.DataFrame({"furthest_stage_index": [2, 3, 3]})
    names = ["awareness", "consideration", "purchase", "retention", "advocacy"]
    out = _stages(frame, np.array([0, 0, 1]), names, 0.95).set_index(["persona_id", "stage"])
    assert out.loc[(1, "retention"), "lost_share"] == pytest.approx(0.5)
    assert out.loc[(2, "retention"), "lost_share"] == pytest.approx(0.0)
    assert out.xs("advocacy", level="stage")["lost_share"].isna().all()
