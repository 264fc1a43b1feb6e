"""Persona clustering recovers the planted personas, runs on real CDNOW orders, and its
assignment file is reused as a segment by another analysis."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, SHARED

import cjlib as cj
from cjlib import personas


@pytest.fixture(scope="module")
def sample_result():
    events = cj.load_sample("events")
    return personas.find_personas(
        events,
        customers=cj.load_sample("customers"),
        surveys=cj.load_sample("surveys"),
        model=personas.PersonaModel(n_boot=5),
    ), events


def test_planted_personas_are_recovered(sample_result):
    """data/truth.json plants 4 personas; the default model must choose k = 4 by prediction
    strength and reach an adjusted Rand index >= 0.8 against data/customer_persona.csv."""
    from sklearn.metrics import adjusted_rand_score

    result, _ = sample_result
    truth = json.loads((DATA / "truth.json").read_text())
    assert result.selection.chosen_k == len(truth["personas"]) == 4
    hidden = pd.read_csv(DATA / "customer_persona.csv").merge(result.assignment, on="customer_id")
    assert len(hidden) == 5000
    assert adjusted_rand_score(hidden["persona_x"], hidden["persona_id"]) >= 0.8
    assert result.stability.summary["ari_mean"] >= 0.9
    assert result.stability.summary["unstable_personas"] == []


def test_cards_describe_the_planted_personas(sample_result):
    """The persona matched to 'Loyal enthusiasts' (truth: age 47, NPS mean 8.8, email-led) has
    the highest NPS; the one matched to 'Mobile impulse buyers' (age 24) is the youngest."""
    result, _ = sample_result
    hidden = pd.read_csv(DATA / "customer_persona.csv").merge(result.assignment, on="customer_id")
    match = hidden.groupby("persona_x")["persona_id"].agg(lambda s: s.mode()[0])
    att = result.cards.attitudes.set_index("persona_id")
    assert att["nps_score"].idxmax() == match["Loyal enthusiasts"]
    age = result.cards.traits[result.cards.traits.trait == "age"].set_index("persona_id")
    assert age["persona_value"].idxmin() == match["Mobile impulse buyers"]
    summary = result.cards.summary
    assert summary["share"].sum() == pytest.approx(1.0)
    assert (summary["share_low"] <= summary["share"]).all()
    doc = json.dumps(personas.PersonaResult.to_dict(result), default=str)
    assert "C0001" not in doc, "to_dict is aggregate only"


def test_assignment_file_is_a_segment_for_attribution(sample_result, tmp_path):
    """The written file (customer_id,persona) feeds cjlib.attribution.attribute_segments."""
    attribution = pytest.importorskip("cjlib.attribution")
    result, events = sample_result
    path = result.write_assignment(tmp_path / "out" / "personas.csv")
    table = personas.read_assignment(path)
    assert list(table.columns) == ["customer_id", "persona"] and len(table) == 5000
    seg = attribution.attribute_segments(events, str(path), min_journeys=10)
    assert set(seg.sizes["segment"]) == set(result.cards.summary["persona"])
    assert seg.sizes["shown"].all()


def test_model_predict_matches_fit_labels(sample_result):
    """PersonaModel follows the scikit-learn contract: predict on the fitted customers gives
    labels_, and predict before fit raises."""
    events = cj.load_sample("events")
    features = personas.customer_features(events, customers=cj.load_sample("customers"))
    model = personas.PersonaModel(k=4, n_boot=0, sample_size=2000).fit(features)
    assert model.selection_ is None and model.stability_ is None and model.k_ == 4
    assert np.array_equal(model.predict(features), model.labels_)
    with pytest.raises(ValueError, match="not fitted yet"):
        personas.PersonaModel().predict(features)


def test_journey_block_fetched_while_fitting_gives_the_same_result(sample_result):
    """find_personas from events fits while the journey block's query runs (the default weights
    leave that block out of the clustering): the assignment, k table, stability and cards equal
    those of find_personas given the complete feature table; a positive journey weight clusters
    on the journey columns."""
    result, events = sample_result
    customers, surveys = cj.load_sample("customers"), cj.load_sample("surveys")
    features = personas.customer_features(events, customers=customers, surveys=surveys)
    assert "stage_steps" in features.frame and features.blocks["stage_steps"] == "journey"
    model = personas.PersonaModel(n_boot=5)
    given = personas.find_personas(
        events, customers=customers, surveys=surveys, features=features, model=model
    )
    pd.testing.assert_frame_equal(given.assignment, result.assignment)
    pd.testing.assert_frame_equal(given.selection.table, result.selection.table)
    pd.testing.assert_frame_equal(given.cards.traits, result.cards.traits)
    pd.testing.assert_frame_equal(given.cards.stages, result.cards.stages)
    assert given.stability.summary == result.stability.summary
    assert given.params == result.params
    model = personas.PersonaModel(k=3, n_boot=2, weights={"journey": 1.0})
    weighted = personas.find_personas(events, customers=customers, model=model)
    assert "stage_steps" in set(weighted.missing["feature"])
    assert "stage_steps" not in set(result.missing["feature"])


def test_other_methods_run(sample_result):
    """Gower + k-medoids (mixed data), Gaussian mixture and mini-batch k-means all assign every
    customer; recovery by them is weaker on this data (reported, not asserted)."""
    events = cj.load_sample("events")
    features = personas.customer_features(events, customers=cj.load_sample("customers"))
    prepared = personas.prepare_features(features, weights=personas.DEFAULT_WEIGHTS)
    for method in ("gower", "gmm", "minibatch"):
        fit = personas.fit_clusters(prepared, k=4, method=method, sample_size=1000, n_init=2)
        assert len(fit.labels) == 5000 and set(fit.labels) == {0, 1, 2, 3}
        sizes = np.bincount(fit.labels)
        assert (np.diff(sizes) <= 0).all(), "persona 1 is the largest"
    with pytest.raises(ValueError, match="criterion='bic' needs method='gmm'"):
        personas.select_k(prepared, criterion="bic")
    with pytest.raises(ValueError, match="k_range must hold at least two values"):
        personas.select_k(prepared, k_range=[3])


@pytest.mark.skipif(not SHARED.exists(), reason="shared datasets folder absent")
def test_cdnow_end_to_end_is_stable():
    """CDNOW orders (lifetimes' CDNOW_master): one purchase event per order. The pipeline runs
    end to end; the segments it finds are stable (bootstrap ARI >= 0.9, no persona flagged),
    and RFM segments cover every buyer."""
    raw = pd.read_csv(SHARED / "cdnow_master_transactions.csv", dtype={"customer_id": str})
    events = cj.load_events(
        pd.DataFrame(
            {
                "customer_id": raw["customer_id"],
                "timestamp": raw["date"] + "T00:00:00Z",
                "event": "purchase",
                "revenue": raw["dollar_value"],
            }
        ),
        duplicates="drop",
    )
    result = personas.find_personas(events, model=personas.PersonaModel(n_boot=5))
    assert len(result.assignment) == raw["customer_id"].nunique() == 23_570
    assert result.stability.summary["ari_mean"] >= 0.9
    assert result.stability.summary["unstable_personas"] == []
    rfm = personas.rfm_segments(events)
    assert rfm.segments["customers"].sum() == rfm.params["buyers"]
    assert rfm.segments["share"].sum() == pytest.approx(1.0)
