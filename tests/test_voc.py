"""Voice of the customer: NPS/CSAT intervals against worked examples, breakdowns by hand, wave
tests, distinguishing terms, redaction, and the planted satisfaction differences of the sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

from cjlib import voc

# -- scores ------------------------------------------------------------------------------------


def test_nps_variance_matches_the_cross_validated_worked_example():
    """Cross Validated, "How can I calculate margin of error in a NPS result?" (whuber's answer):
    with 1/2 promoters, 1/3 passives and 1/6 detractors, NPS = 1/3 and the variance of one
    +1/0/-1 ticket is (2/3)^2/2 + (1/3)^2/3 + (4/3)^2/6 = 5/9, so SE = sqrt(5/9 / n).
    With n = 600 (300/200/100): NPS = 33.33 points, SE = 100 * sqrt(5/9/600) = 3.043 points."""
    r = voc.nps_interval(300, 100, 600)
    assert r["nps"] == pytest.approx(100 / 3)
    assert r["se"] == pytest.approx(100 * np.sqrt(5 / 9 / 600))
    assert r["se"] == pytest.approx(3.043, abs=1e-3)
    assert r["low"] == pytest.approx(100 / 3 - 1.959964 * r["se"], abs=1e-4)


def test_nps_margin_matches_the_talkstats_example():
    """talkstats.com thread "Net Promoter Score - Calculating Confidence Intervals and Margin of
    Error": 1,162 answers, 291 promoters, 476 passives, 395 detractors: NPS -9 with a margin of
    4.4 points. By hand: p = .25043, d = .33993, var = (p + d - (p - d)^2) / n = 5.0123e-4,
    SE = 2.2388 points, 1.96 * SE = 4.388."""
    r = voc.nps_interval(291, 395, 1162)
    assert round(float(r["nps"])) == -9
    assert float(r["high"] - r["nps"]) == pytest.approx(4.388, abs=1e-3)
    assert round(float(r["nps"] - r["low"]), 1) == 4.4


def test_nps_is_not_two_binomials():
    """The multinomial variance is smaller than p(1-p)/n + d(1-d)/n whenever both are > 0
    (the covariance -pd/n is negative): for 300/100 of 600, 0.5556 < 0.25 + 0.1389 + 2 * 0.0833."""
    r = voc.nps_interval(300, 100, 600)
    naive = 100 * np.sqrt((0.5 * 0.5 + (1 / 6) * (5 / 6)) / 600)
    assert r["se"] > naive  # the covariance term adds variance for a difference
    assert r["se"] == pytest.approx(100 * np.sqrt((0.25 + 5 / 36 + 2 * 0.5 / 6) / 600))


def test_nps_edge_cases_and_errors():
    r = voc.nps_interval([10, 0], [0, 0], [10, 0])
    assert r["nps"][0] == 100 and r["low"][0] == 100 and np.isnan(r["nps"][1])
    with pytest.raises(ValueError, match="at most answers"):
        voc.nps_interval(8, 5, 10)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        voc.nps_interval(1, 1, 10, confidence=95)


def test_csat_share_is_wilson_by_hand():
    """8 of 10: Wilson centre (0.8 + z^2/20) / (1 + z^2/10) = 0.71674, half-width
    z sqrt(0.016 + z^2/400) / (1 + z^2/10) = 0.22657 -> (0.4902, 0.9433)."""
    r = voc.csat_share(8, 10)
    assert r["share"] == 0.8
    assert float(r["low"]) == pytest.approx(0.4902, abs=1e-4)
    assert float(r["high"]) == pytest.approx(0.9433, abs=1e-4)


def test_mean_interval_by_hand():
    """3, 4, 5: mean 4, sd 1, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.4841."""
    r = voc.mean_interval(12, 50, 3)
    assert float(r["mean"]) == 4
    assert float(r["high"] - r["mean"]) == pytest.approx(2.4841, abs=1e-4)


def test_nps_difference_by_hand():
    """Wave a: 50 P / 20 D of 100 (NPS 30, var .7 - .09 = .61); wave b: 30 P / 30 D of 100 (NPS 0,
    var .6). SE of b - a = 100 sqrt(.0061 + .006) = 11.0; z = -30 / 11.0 = -2.727, p = .00639."""
    a, b = voc.nps_interval(50, 20, 100), voc.nps_interval(30, 30, 100)
    d = voc.nps_difference(a, b)
    assert float(d["difference"]) == pytest.approx(-30)
    assert float(d["p_value"]) == pytest.approx(0.006390, abs=2e-5)
    assert float(d["high"]) == pytest.approx(-30 + 1.959964 * 11.0, abs=1e-3)


def test_csat_difference_matches_prop_test():
    """By hand (the statistic of R's prop.test(correct = FALSE), chi-square = z^2): pooled
    95/170 = .558824, SE = sqrt(.558824 * .441176 * (1/80 + 1/90)) = .076295, z = .111111 / .076295
    = 1.45634, two-sided p = .14531."""
    d = voc.csat_difference(40, 80, 55, 90)
    assert float(d["difference"]) == pytest.approx(55 / 90 - 0.5)
    assert float(d["p_value"]) == pytest.approx(0.14531, abs=1e-5)
    assert d["low"] < d["difference"] < d["high"]


# -- breakdowns --------------------------------------------------------------------------------


def _surveys() -> pd.DataFrame:
    """12 answers by hand: stage 'purchase' (5 answers, 4 customers), 'awareness' (7 answers).

    purchase: nps 10, 9, 3, 5, 7 -> 2 P, 2 D, 1 passive: NPS 0; csat 5, 4, 2, 1, 3 -> 2 of 5.
    awareness: nps 9, 9, 9, 8, 0, 10, 6 -> 4 P, 2 D: NPS 200/7 = 28.57; csat 5,5,4,4,2,5,3 -> 5/7.
    """
    rows = [
        ("c1", "2026-01-05", "purchase", "checkout", 10, 5, "Smooth checkout, thanks"),
        ("c2", "2026-01-06", "purchase", "checkout", 9, 4, "smooth and fast"),
        ("c3", "2026-02-01", "purchase", "checkout", 3, 2, "Payment failed, call 555-123-4567"),
        ("c3", "2026-02-02", "purchase", "support", 5, 1, "payment failed again C0042"),
        ("c4", "2026-02-03", "purchase", "support", 7, 3, ""),
        ("c5", "2026-01-01", "Świadomość", "search", 9, 5, "great ads"),
        ("c6", "2026-01-02", "awareness", "search", 9, 5, "great campaign"),
        ("c7", "2026-01-03", "awareness", "social", 9, 4, "great"),
        ("c8", "2026-02-04", "awareness", "social", 8, 4, "ok"),
        ("c9", "2026-02-05", "awareness", "social", 0, 2, "too many ads, mail me x@y.com"),
        ("c10", "2026-02-06", "awareness", "search", 10, 5, None),
        ("c11", "2026-02-07", "awareness", "search", 6, 3, "too many ads"),
    ]
    df = pd.DataFrame(
        rows,
        columns=["customer_id", "timestamp", "stage", "touchpoint", "nps", "csat", "comment"],
    )
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def test_voc_scores_by_stage_by_hand():
    v = voc.voc_scores(_surveys(), dimensions=("stage", "touchpoint", "wave"), min_size=1)
    st = v.table("stage").set_index("stage")
    assert list(st.index) == ["awareness", "purchase"], "aliases resolved, stage order kept"
    assert st.loc["purchase", "nps"] == pytest.approx(0)
    assert st.loc["purchase", "respondents"] == 4 and st.loc["purchase", "responses"] == 5
    assert st.loc["purchase", "csat_share"] == pytest.approx(2 / 5)
    assert st.loc["awareness", "nps"] == pytest.approx(200 / 7)
    assert st.loc["awareness", "csat_share"] == pytest.approx(5 / 7)
    assert st.loc["awareness", "csat_mean"] == pytest.approx(28 / 7)
    assert v.overall.iloc[0]["nps"] == pytest.approx(100 * (6 - 4) / 12)
    assert v.unavailable == {}, "only the dimensions asked for are reported"
    assert set(voc.voc_scores(_surveys(), min_size=1).unavailable) == {"channel", "persona"}
    wave = v.table("wave").set_index("wave")
    assert list(wave.index) == ["2026-01", "2026-02"]
    assert wave.loc["2026-01", "nps"] == pytest.approx(100 * 5 / 5)


def test_voc_suppresses_small_groups_and_skips_them_in_wave_tests():
    v = voc.voc_scores(_surveys(), dimensions=("stage", "touchpoint", "wave"), min_size=5)
    st = v.table("stage").set_index("stage")
    assert bool(st.loc["purchase", "suppressed"]) and np.isnan(st.loc["purchase", "nps"])
    assert not st.loc["awareness", "suppressed"]
    overall = v.waves[v.waves["within"] == "all"]
    assert len(overall) == 1, "January (5 respondents) against February (6)"
    r = overall.iloc[0]
    # January: 5 promoters of 5 (NPS 100); February: 1 promoter, 4 detractors of 7 answers
    assert r.nps_change == pytest.approx(100 * (1 - 4) / 7 - 100)
    assert v.waves["nps_p_adjusted"].ge(v.waves["nps_p"]).all()


def test_voc_persona_and_channel_dimensions(tmp_path):
    s = _surveys()
    persona = pd.DataFrame({"customer_id": ["c1", "c2", "c5"], "persona": ["A", "A", "B"]})
    events = pd.DataFrame(
        {
            "customer_id": ["c1", "c5", "c5"],
            "timestamp": pd.to_datetime(["2026-01-01", "2026-01-01", "2025-12-01"], utc=True),
            "event": ["first_visit"] * 3,
            "channel": ["email", "search", "display"],
        }
    )
    v = voc.voc_scores(s, persona=persona, events=events, min_size=1)
    p = v.table("persona").set_index("persona")
    assert p.loc["A", "responses"] == 2 and p.loc["(no persona)", "responses"] == 9
    ch = v.table("channel").set_index("channel")
    assert ch.loc["display", "responses"] == 1, "first touch, not the latest"
    assert ch.loc["(missing)", "responses"] == 10
    assert json.dumps(v.to_dict())


def test_voc_errors_name_the_parameter():
    with pytest.raises(ValueError, match="dimensions must be among"):
        voc.voc_scores(_surveys(), dimensions=("region",))
    with pytest.raises(ValueError, match="wave must be one of"):
        voc.voc_scores(_surveys(), wave="fortnight")
    with pytest.raises(ValueError, match="min_size must be an int >= 1"):
        voc.voc_scores(_surveys(), min_size=0)
    with pytest.raises(ValueError, match="neither an nps nor a csat column"):
        voc.voc_scores(_surveys().drop(columns=["nps", "csat"]))
    with pytest.raises(ValueError, match="dimension must be one of"):
        voc.voc_scores(_surveys(), dimensions=("stage",)).table("persona")


# -- comments ----------------------------------------------------------------------------------


def test_log_odds_by_hand():
    """Monroe et al. (2008) eq. 16-22 with a0 = 10, prior counts {bad: 4, good: 4, ok: 2}
    (a = 4, 4, 2); detractors {bad: 3, ok: 1} (n = 4), promoters {good: 3, ok: 1} (n = 4):
    delta_bad = log(7 / 7) - log(4 / 10) = 0.91629; var = 1/7 + 1/4 -> z = 1.4617."""
    prior = {"bad": 4, "good": 4, "ok": 2}
    out = voc.log_odds_terms({"bad": 3, "ok": 1}, {"good": 3, "ok": 1}, prior, prior_size=10)
    row = out.set_index("term").loc["bad"]
    assert row["delta"] == pytest.approx(np.log(7 / 7) - np.log(4 / 10))
    assert row["z"] == pytest.approx(0.916291 / np.sqrt(1 / 7 + 1 / 4), abs=1e-5)
    assert out.set_index("term").loc["ok", "delta"] == pytest.approx(0)
    assert list(out["term"]) == ["bad", "ok", "good"]
    with pytest.raises(ValueError, match="prior_size must be > 0"):
        voc.log_odds_terms({}, {}, prior, prior_size=0)


def test_redact_and_tokenize():
    text = "Mail jo.doe@ex.com or call +44 20 7946 0958 about order AB-1234 (C0042) www.x.io"
    clean = voc.redact(text)
    for secret in ("jo.doe", "7946", "AB-1234", "C0042", "www.x.io"):
        assert secret not in clean
    assert "[email]" in clean and "[id]" in clean
    assert voc.tokenize("The payment FAILED twice!") == ["payment", "failed", "twice"]
    assert voc.tokenize("payment failed twice", ngrams=(2,)) == ["payment failed", "failed twice"]
    # a redacted item is no term ('email' was one), and no pair spans it
    assert voc.tokenize("mail me x@y.com") == ["mail"]
    assert voc.tokenize("order C0042 late", ngrams=(1, 2)) == ["order", "late"]


def test_distinguishing_terms_with_examples_redacted():
    r = voc.distinguishing_terms(_surveys(), by=None, min_size=2, min_count=2, min_z=0)
    det = r.terms[r.terms["side"] == "detractor"].set_index("term")
    assert {"ads", "payment", "failed"} <= set(det.index)
    assert "C0042" not in " ".join(r.terms["example"]) and "555" not in " ".join(r.terms["example"])
    pro = r.terms[r.terms["side"] == "promoter"]
    assert pro["term"].iloc[0] in {"great", "smooth"}
    with pytest.raises(ValueError, match="top must be an int >= 1"):
        voc.distinguishing_terms(_surveys(), top=0)
    with pytest.raises(ValueError, match="by must be a survey column"):
        voc.distinguishing_terms(_surveys(), by="region")


# -- planted truth -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_voc():
    import cjlib as cj

    surveys = cj.load_surveys(DATA / "surveys.csv")
    return voc.voc_scores(surveys, persona=DATA / "customer_persona.csv", min_size=10), surveys


def test_planted_persona_satisfaction_is_recovered(sample_voc):
    """truth.json plants NPS means 5.8 / 8.8 / 7.4 / 6.5 and CSAT means 3.4 / 4.5 / 4.0 / 3.7 for
    the four personas: the measured NPS and mean CSAT put them in the same order, and the
    extreme personas are separated by their intervals."""
    v, _ = sample_voc
    truth = pd.DataFrame(json.loads((DATA / "truth.json").read_text())["personas"])
    p = v.table("persona").set_index("persona").loc[truth["persona"]]
    assert list(p["nps"].rank()) == list(truth["nps_mean"].rank())
    assert list(p["csat_mean"].rank()) == list(truth["csat_mean"].rank())
    best, worst = p.loc["Loyal enthusiasts"], p.loc["Deal seekers"]
    assert worst.nps_high < best.nps_low
    assert worst.csat_mean_high < best.csat_mean_low


def test_planted_stage_satisfaction_is_recovered(sample_voc):
    """The generator shifts NPS by stage (cjlib/synth/params.py ``stage_nps``): purchase is the
    worst stage for every persona but one (-0.8, +0.2, 0, -1.2), advocacy the best (+0.5/0.6).
    Measured: purchase has the lowest NPS and CSAT, advocacy the highest."""
    v, _ = sample_voc
    st = v.table("stage").set_index("stage")
    assert st["nps"].idxmin() == "purchase" and st["csat_mean"].idxmin() == "purchase"
    assert st["nps"].idxmax() == "advocacy"
    assert st.loc["purchase", "nps_high"] < st.loc["retention", "nps_low"]


def test_sample_terms_name_the_planted_complaints(sample_voc):
    """The generator's detractor comments (params.py ``COMMENTS``) at purchase are 'Checkout was
    confusing' and 'Payment failed twice'; at retention 'Support never answered'."""
    _, surveys = sample_voc
    r = voc.distinguishing_terms(surveys, min_size=10)
    det = r.terms[r.terms["side"] == "detractor"]
    assert set(det.loc[det["group"] == "purchase", "term"]) & {"checkout", "payment", "failed"}
    assert set(det.loc[det["group"] == "retention", "term"]) & {"never", "answered", "late"}
    assert set(r.comments.loc[~r.comments["analysed"], "group"]) == {"advocacy"}
