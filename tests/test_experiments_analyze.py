"""analyze(): outcomes through the engine, planted truth, Simpson's paradox, decisions, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import DATA

import cjlib as cj
from cjlib.experiments import analyze, metric, metrics_from_roles
from cjlib.experiments.metrics import customer_outcomes
from cjlib.experiments.stats import variant_stats


@pytest.fixture(scope="module")
def sample():
    from cjlib.engine import Engine

    eng = Engine.duckdb()
    return (
        cj.load_experiments(DATA / "experiments.csv", engine=eng),
        cj.load_events(DATA / "events.csv", engine=eng),
        cj.load_customers(DATA / "customers.csv", engine=eng),
    )


@pytest.fixture(scope="module")
def result(sample):
    experiments, events, customers = sample
    return analyze(
        experiments,
        events,
        metrics=metrics_from_roles("conversion", ["first_order_value", "aov"], ["sessions"]),
        covariate="pre_period_sessions",
        customers=customers,
        persona=DATA / "customer_persona.csv",
        segments=["device", "persona"],
        tests=("mann_whitney",),
        traffic_per_day=15,
    )


def test_planted_lifts_are_recovered(result):
    """data/truth.json (cjlib.synth, seed 42): +10 % planted on purchase probability (expected
    +10.5 % on this sample after the 0.99 cap) and +5 % on first order value; both lie inside
    the 95 % intervals, and the realised conversion per variant is reproduced exactly."""
    truth = json.loads((DATA / "truth.json").read_text())["experiment"]
    comp = result.comparisons.set_index("metric")
    conv = comp.loc["conversion"]
    assert conv["lift_low"] < truth["expected_relative_lift_conversion"] < conv["lift_high"]
    assert conv["lift_low"] < truth["relative_lift_conversion"] < conv["lift_high"]
    fov = comp.loc["first_order_value"]
    assert fov["lift_low"] < truth["relative_lift_revenue"] < fov["lift_high"]
    est = result.estimates[result.estimates.metric == "conversion"].set_index("variant")
    for v, rate in truth["realised_conversion_rate"].items():
        assert est.loc[v, "estimate"] == pytest.approx(rate, abs=1e-12)
        assert est.loc[v, "n"] == truth["n_assigned"][v]
    assert result.decision == "ship"
    assert (result.checks["status"] == "pass").all()


def test_result_shape_and_json(result):
    assert result.comparisons["test"].str.contains("CUPED").all()
    assert (result.comparisons["variance_reduction"] > 0).all()
    assert {"p_adjusted", "p_mann_whitney", "significant"} <= set(result.comparisons)
    assert set(result.bayesian["metric"]) == {m.name for m in result.metrics}
    assert result.bayesian.set_index("metric").loc["conversion", "model"] == "Beta-Binomial"
    seq = result.sequential[result.sequential.metric == "conversion"].dropna()
    assert seq["n_control"].is_monotonic_increasing and len(seq) > 100
    assert seq["always_valid_p"].is_monotonic_decreasing
    assert (
        seq["always_valid_high"] - seq["always_valid_low"]
        >= seq["fixed_high"] - seq["fixed_low"] - 1e-12
    ).all()
    assert set(result.segments["dimension"]) == {"device", "persona"}
    assert not result.simpson["reversal"].any()
    payload = json.dumps(result.to_dict())
    assert "C0001" not in payload
    assert result.findings()[0].startswith("Decision: ship.")
    assert "Decision: ship" in result._repr_html_()


def test_kidney_stone_simpson_paradox_is_flagged():
    """Charig et al. (1986), kidney stones (Julious & Mullee 1994): treatment A succeeds in
    81/87 small and 192/263 large stones (273/350 = 78 %), B in 234/270 and 55/80 (289/350 =
    83 %): B is better pooled, A within both strata. The check must warn."""
    rows = []
    for variant, size, ok, n in [
        ("A", "small", 81, 87),
        ("A", "large", 192, 263),
        ("B", "small", 234, 270),
        ("B", "large", 55, 80),
    ]:
        rows += [(variant, size, 1.0)] * ok + [(variant, size, 0.0)] * (n - ok)
    df = pd.DataFrame(rows, columns=["variant", "stone", "success"])
    df["customer_id"] = [f"p{i}" for i in range(len(df))]
    df["experiment"] = "kidney"
    res = analyze(
        df[["customer_id", "experiment", "variant", "success"]],
        metrics=["column:success"],
        control="B",
        customers=df[["customer_id", "stone"]],
        segments=["stone"],
    )
    pooled = res.comparisons.iloc[0]
    assert pooled["diff"] == pytest.approx(273 / 350 - 289 / 350)
    simpson = res.simpson.iloc[0]
    assert simpson["reversal"] and simpson["strata_agreeing"] == 0
    assert "Simpson's paradox" in " ".join(res.findings())


def test_metric_kinds_on_tiny_events(tiny_events):
    """Hand count on conftest's tiny events: c1 assigned 2026-01-02 (product_view) buys once for
    40; c2 assigned 2026-01-01 buys twice (15.5 + 20); c3 never buys. A 3-day window keeps only
    c2's first order."""
    exp = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "experiment": "e",
            "variant": ["control", "t", "t"],
            "assigned_at": ["2026-01-02T10:00:00Z", "2026-01-01T12:00:00Z", "2026-01-07T08:00:00Z"],
        }
    )
    experiments = cj.load_experiments(exp)
    events = cj.load_events(tiny_events)
    ms = [
        metric(n)
        for n in ("conversion", "orders", "revenue", "stage:retention", "event:add_to_cart", "aov")
    ]
    out, eng = customer_outcomes(experiments, events, ms)
    got = eng.to_pandas(out).set_index("customer_id").sort_index()
    assert got["conversion__num"].tolist() == [1, 1, 0]
    assert got["orders__num"].tolist() == [1, 2, 0]
    assert got["revenue__num"].tolist() == [40.0, 35.5, 0.0]
    assert got["stage_retention__num"].tolist() == [0, 1, 0]
    assert got["event_add_to_cart__num"].tolist() == [1, 0, 0]
    out3, _ = customer_outcomes(experiments, events, ms, window_days=3)
    got3 = eng.to_pandas(out3).set_index("customer_id").sort_index()
    assert got3["orders__num"].tolist() == [1, 0, 0]  # c2's purchase came 4 days later
    stats = variant_stats(out, ms, eng).set_index(["metric", "variant"])
    assert stats.loc[("aov", "t"), "s_y"] == 35.5 and stats.loc[("aov", "t"), "s_d"] == 2


def test_multiple_exposure_and_srm_fail_at_the_top():
    """Customers seen in two variants are counted and left out; a 70/30 split of a 50/50 design
    fails the sample-ratio check, and the decision says the readout cannot be trusted."""
    ids = [f"u{i}" for i in range(1000)]
    variant = ["control"] * 700 + ["t"] * 300
    df = pd.DataFrame(
        {
            "customer_id": ids,
            "experiment": "e",
            "variant": variant,
            "y": [i % 2 for i in range(1000)],
        }
    )
    extra = pd.DataFrame({"customer_id": ids[:5], "experiment": "e", "variant": "t", "y": 1})
    res = analyze(pd.concat([df, extra]), metrics=["column:y"])
    top = res.checks.iloc[0]
    assert top["check"] == "sample ratio" and top["status"] == "fail"
    assert res.exposure["multiple_variants"].iloc[0] == 5
    assert res.decision == "inconclusive"
    assert "Sample-ratio mismatch" in res.reasons[1]


def test_decisions_follow_the_rules():
    """No effect with a small sample -> keep running; no effect with a large one ->
    inconclusive; a clear drop -> do not ship; the sequential method keeps running."""
    import numpy as np

    rng = np.random.default_rng(0)

    def frame(n, p_c, p_t):
        y = np.r_[rng.random(n) < p_c, rng.random(n) < p_t].astype(float)
        return pd.DataFrame(
            {
                "customer_id": [f"u{i}" for i in range(2 * n)],
                "experiment": "e",
                "variant": ["control"] * n + ["t"] * n,
                "y": y,
            }
        )

    m = [metric("column:y", role="primary")]
    assert analyze(frame(200, 0.3, 0.3), metrics=m).decision == "keep running"
    assert analyze(frame(20000, 0.3, 0.3), metrics=m).decision == "inconclusive"
    assert analyze(frame(5000, 0.3, 0.22), metrics=m).decision == "do not ship"
    assert analyze(frame(5000, 0.3, 0.36), metrics=m, method="bayesian").decision == "ship"
    three = frame(5000, 0.3, 0.36)
    best = frame(5000, 0.3, 0.40).query("variant == 't'").assign(variant="u")
    best["customer_id"] = "w" + best["customer_id"]
    res = analyze(pd.concat([three, best]), metrics=m, split={"control": 1, "t": 1, "u": 1})
    assert res.decision == "ship" and res.reasons[0].startswith("Ship u:")


def test_control_without_conversions_small_counts_and_one_sided_plan():
    """0 of 1,000 control customers convert, 8 of 1,000 treated: expected counts 4 < 5, so the
    test is Fisher's exact (one-sided greater: p = C(1000, 8) / C(2000, 8), the hypergeometric
    chance that all 8 conversions fall in the treated arm); the relative lift is undefined, so
    the findings give the difference in points. The plan is one-sided like the test."""
    from math import comb

    from cjlib.experiments import power

    n = 1000
    ids = [f"c{i}" for i in range(2 * n)]
    ex = pd.DataFrame(
        {"customer_id": ids, "experiment": "e", "variant": ["control"] * n + ["t"] * n}
    )
    ex["assigned_at"] = pd.Timestamp("2024-01-01", tz="UTC")
    ev = pd.DataFrame({"customer_id": ids[n : n + 8], "event": "purchase"})
    ev["timestamp"] = pd.Timestamp("2024-01-02", tz="UTC")
    res = analyze(ex, ev, control="control", alternative="greater")
    row = res.comparisons.iloc[0]
    assert row["test"].startswith("Fisher's exact test")
    assert row["p_value"] == pytest.approx(comb(n, 8) / comb(2 * n, 8), rel=1e-9)
    assert row["lift"] != row["lift"]  # NaN: no relative lift from a zero control
    assert res.decision == "ship"
    assert "difference +0.80 pts" in res.findings()[0]
    assert "control at 0" in res.reasons[-1]
    # the plan: one-sided like the test (baseline 0 cannot be planned for a relative lift)
    assert res.power["n_needed"].isna().all()
    ex2 = ex.copy()
    ev2 = pd.DataFrame({"customer_id": ids[:100] + ids[n : n + 120], "event": "purchase"})
    ev2["timestamp"] = pd.Timestamp("2024-01-02", tz="UTC")
    plan = analyze(ex2, ev2, alternative="greater", mde=0.2).power.iloc[0]
    want = power.sample_size("binary", 0.1, 0.2, one_sided=True)
    assert plan["n_needed"] == int(-(-want // 1))
    assert want < power.sample_size("binary", 0.1, 0.2)  # one-sided needs fewer customers


def test_analyze_errors_name_the_parameter(sample):
    experiments, events, _ = sample
    with pytest.raises(ValueError, match="metric must be one of"):
        metric("conversions")
    with pytest.raises(ValueError, match="metric role must be one of"):
        metric("conversion", role="main")
    with pytest.raises(ValueError, match="listed twice"):
        metrics_from_roles("conversion", ["conversion"])
    with pytest.raises(ValueError, match="method must be one of"):
        analyze(experiments, events, method="magic")
    with pytest.raises(ValueError, match="tests must be a subset of"):
        analyze(experiments, events, tests=["anova"])
    with pytest.raises(ValueError, match="control must be one of the variants"):
        analyze(experiments, events, control="baseline")
    with pytest.raises(ValueError, match="covariate: no column 'pre_sessions'"):
        analyze(experiments, events, covariate="pre_sessions")
    with pytest.raises(ValueError, match="window_days must be a positive number"):
        analyze(experiments, events, window_days=0)
    with pytest.raises(ValueError, match="events are needed"):
        analyze(experiments, None, metrics=["conversion"])
    with pytest.raises(ValueError, match="segments: unknown column"):
        analyze(experiments, events, segments=["planet"])
    with pytest.raises(ValueError, match="winsorize must be a quantile"):
        analyze(experiments, events, metrics=["revenue"], winsorize_at=1.5)
