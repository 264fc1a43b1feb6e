"""Experiment statistics against published or hand-computed references (cjlib.experiments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cjlib.experiments import checks, power
from cjlib.experiments.bayesian import bayes_compare, beta_chance_to_beat
from cjlib.experiments.frequentist import (
    adjust,
    compare,
    exact_prop_test,
    prop_test,
    variant_estimates,
    welch_test,
)
from cjlib.experiments.metrics import metric
from cjlib.experiments.resampling import bootstrap_lift, mann_whitney
from cjlib.experiments.sequential import msprt
from cjlib.experiments.stats import SUMS, moments

# R's datasets::sleep, extra hours of sleep by drug group (Cushny & Peebles 1905)
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def _stats_row(variant, y, d=None, x=None, name="m"):
    y = np.asarray(y, float)
    d = np.ones_like(y) if d is None else np.asarray(d, float)
    row = dict(
        metric=name,
        variant=variant,
        n=len(y),
        s_y=y.sum(),
        s_yy=(y * y).sum(),
        s_d=d.sum(),
        s_dd=(d * d).sum(),
        s_yd=(y * d).sum(),
    )
    if x is not None:
        x = np.asarray(x, float)
        row |= dict(s_x=x.sum(), s_xx=(x * x).sum(), s_yx=(y * x).sum(), s_dx=(d * x).sum())
    return row


def _stats(rows):
    df = pd.DataFrame(rows)
    for c in SUMS:
        if c not in df:
            df[c] = np.nan
    return df


def test_prop_test_matches_r_prop_test_without_correction():
    """R: prop.test(c(65, 50), c(500, 500), correct = FALSE) -> X-squared = 2.2108,
    p-value = 0.1371, 95 % CI -0.009501906 0.069501906 (hand: pooled p = 0.115,
    z = 0.03 / sqrt(0.115 * 0.885 * 2 / 500) = 1.48686; CI 0.03 +- 1.959964 *
    sqrt(0.13 * 0.87 / 500 + 0.1 * 0.9 / 500))."""
    res = prop_test(65, 500, 50, 500)
    assert res["chi2"] == pytest.approx(2.2108, abs=1e-4)
    assert res["p_value"] == pytest.approx(0.1371, abs=1e-4)
    assert (res["low"], res["high"]) == pytest.approx((-0.009501906, 0.069501906), abs=1e-8)
    chi2 = st.chi2_contingency([[65, 435], [50, 450]], correction=False)[0]
    assert res["chi2"] == pytest.approx(chi2)
    assert prop_test(65, 500, 50, 500, alternative="greater")["p_value"] == pytest.approx(
        0.1371 / 2, abs=1e-4
    )


def test_small_counts_use_fisher_exact_and_newcombe():
    """An expected count below 5 (pooled rate x smaller n) switches to Fisher's exact test. R:
    fisher.test(matrix(c(3, 1, 1, 3), 2)) ("TeaTasting", ?fisher.test) -> p-value = 0.4857,
    alternative = "greater" -> 0.2429. Newcombe (1998), Stat Med 17:873, Table II, method 10:
    5/56 - 0/29 -> (-0.0381, 0.1926); 9/10 - 3/10 -> (0.1705, 0.8090). With expected counts of
    at least 5 the z-test stays (None)."""
    res = exact_prop_test(3, 4, 1, 4)
    assert res["p_value"] == pytest.approx(0.4857, abs=1e-4)
    assert exact_prop_test(3, 4, 1, 4, alternative="greater")["p_value"] == pytest.approx(
        0.2429, abs=1e-4
    )
    assert exact_prop_test(1, 4, 3, 4, alternative="less")["p_value"] == pytest.approx(
        0.2429, abs=1e-4
    )
    d = exact_prop_test(5, 56, 0, 29)
    assert (d["low"], d["high"]) == pytest.approx((-0.0381, 0.1926), abs=1e-4)
    assert d["diff"] == pytest.approx(5 / 56)
    b = exact_prop_test(9, 10, 3, 10)
    assert (b["low"], b["high"]) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    assert exact_prop_test(65, 500, 50, 500) is None
    assert exact_prop_test(5, 1000, 5, 1000) is None  # expected 5 in each arm: z-test
    assert exact_prop_test(4, 1000, 5, 1000) is not None
    assert exact_prop_test(0, 50, 0, 50)["p_value"] == 1.0  # nobody converted: no evidence


def test_welch_matches_r_t_test_on_sleep():
    """R: t.test(extra ~ group, data = sleep) -> t = -1.8608, df = 17.776, p-value = 0.07939,
    95 % CI -3.3654832 0.2054832 (documented output of the Welch test on datasets::sleep)."""
    a, b = SLEEP_1, SLEEP_2
    res = welch_test(a.mean(), a.var(ddof=1), 10, b.mean(), b.var(ddof=1), 10)
    assert res["t"] == pytest.approx(-1.8608, abs=1e-4)
    assert res["df"] == pytest.approx(17.776, abs=1e-3)
    assert res["p_value"] == pytest.approx(0.07939, abs=1e-5)
    assert (res["low"], res["high"]) == pytest.approx((-3.3654832, 0.2054832), abs=1e-7)


def test_mann_whitney_matches_r_wilcox_test_on_sleep():
    """R: wilcox.test(extra ~ group, data = sleep, exact = FALSE) -> W = 25.5,
    p-value = 0.06933 (normal approximation with tie and continuity correction)."""
    counts = (
        pd.DataFrame({"variant": ["a"] * 10 + ["b"] * 10, "value": np.r_[SLEEP_1, SLEEP_2]})
        .groupby(["variant", "value"])
        .size()
        .rename("count")
        .reset_index()
    )
    res = mann_whitney(counts, "a", "b")
    assert res["W"] == 25.5
    assert res["p_value"] == pytest.approx(0.06933, abs=1e-5)
    assert res["prob_superiority"] == pytest.approx(25.5 / 100)


def test_power_matches_r_power_prop_test_and_power_t_test():
    """R documentation examples: power.prop.test(n = 50, p1 = .5, p2 = .75) -> power =
    0.7401659; power.prop.test(p1 = .5, p2 = .75, power = .90) -> n = 76.7;
    power.t.test(n = 20, delta = 1) -> power = 0.8689528; power.t.test(power = .90,
    delta = 1) -> n = 22.02110."""
    assert power.power("binary", 0.5, 0.5, 50) == pytest.approx(0.7401659, abs=1e-7)
    assert power.sample_size("binary", 0.5, 0.5, target=0.9) == pytest.approx(76.7, abs=0.05)
    assert power.power("mean", 1.0, 1.0, 20, sd=1) == pytest.approx(0.8689528, abs=1e-7)
    assert power.sample_size("mean", 1.0, 1.0, sd=1, target=0.9) == pytest.approx(22.02110, 1e-6)
    n = power.sample_size("binary", 0.2, 0.1, target=0.8)
    assert power.mde("binary", 0.2, n) == pytest.approx(0.1, abs=1e-6)
    assert power.duration(1000, 150) == 14  # 2 x 1000 customers at 150 a day: ceil(13.3)
    # ratio metrics: normal approximation, n = 2 (z_.975 + z_.8)^2 sd^2 / delta^2 (hand)
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert power.sample_size("ratio", 10.0, 0.1, sd=5) == pytest.approx(2 * z**2 * 25, rel=1e-6)


def test_srm_kohavi_example_and_practical_threshold():
    """Kohavi, Tang & Xu (2020), Trustworthy Online Controlled Experiments, ch. 21: 821,588 vs
    815,482 users in a 50/50 design give a ratio of 0.993 and p = 1.8e-6: a real SRM."""
    table, verdict = checks.srm({"control": 821_588, "treatment": 815_482})
    assert verdict["p_value"] == pytest.approx(1.8e-6, rel=0.05)
    assert verdict["status"] == "fail" and "Sample-ratio mismatch" in verdict["message"]
    # 50,050,000 vs 49,950,000: chi-square 100 (hand: 2 x 50,000^2 / 5e7), p ~ 1.5e-23, but
    # only 0.1 % off the expected count, under the 0.2 % practical threshold: passes
    _, ok = checks.srm({"control": 50_050_000, "treatment": 49_950_000})
    assert ok["p_value"] < 1e-20 and ok["status"] == "pass"
    assert "statistically but not practically" in ok["message"]
    _, uneven = checks.srm({"a": 900, "b": 100}, split={"a": 0.9, "b": 0.1})
    assert uneven["status"] == "pass" and table["expected_share"].tolist() == [0.5, 0.5]


def test_delta_method_ratio_variance_equals_linearisation():
    """Deng et al. (2018): Var(Σy/Σd) ~ Var(L)/n with L = (y - R d)/mean(d); computed here
    directly from per-customer values, and equal to Var(y)/n when d = 1."""
    rng = np.random.default_rng(3)
    d = rng.poisson(2, 400) + 1.0
    y = d * 10 + rng.normal(0, 5, 400)
    mo = moments(_stats_row("a", y, d))
    ratio = y.sum() / d.sum()
    lin = (y - ratio * d) / d.mean()
    assert mo["var_ratio"] == pytest.approx(lin.var(ddof=1) / 400, rel=1e-9)
    assert moments(_stats_row("a", y))["var_ratio"] == pytest.approx(y.var(ddof=1) / 400)


def test_cuped_equals_regression_adjustment():
    """CUPED with the pooled within-variant theta equals the treatment coefficient of the OLS
    regression y ~ treatment + x (ANCOVA; Deng et al. 2013, section 3.3), and it shrinks the
    variance by about corr(y, x)^2."""
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(5, 2, 2 * n)
    treat = np.r_[np.zeros(n), np.ones(n)]
    y = 1.0 + 0.8 * x + 0.3 * treat + rng.normal(0, 1, 2 * n)
    rows = [_stats_row(v, y[treat == k], x=x[treat == k]) for k, v in ((0, "control"), (1, "t"))]
    m = metric("revenue")
    stats = _stats(rows).assign(metric="revenue")
    est = variant_estimates(stats, [m], cuped=True)
    comp = compare(est, [m])
    design = np.c_[np.ones(2 * n), treat, x]
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert comp["diff"].iloc[0] == pytest.approx(coef[1], abs=1e-10)
    raw = compare(variant_estimates(stats, [m]), [m])
    r2 = np.corrcoef(x, y)[0, 1] ** 2
    shrink = 1 - ((comp["diff_high"] - comp["diff_low"]) / (raw["diff_high"] - raw["diff_low"]))
    assert 1 - (1 - shrink.iloc[0]) ** 2 == pytest.approx(r2, abs=0.03)


def test_relative_lift_delta_interval_by_hand():
    """Relative lift 0.13 / 0.10 - 1 = 0.3 with se = sqrt(v_t/p_c^2 + p_t^2 v_c/p_c^4),
    v = p(1-p)/n, n = 500 each (hand: sqrt(0.0002262/0.01 + 0.0169*0.00018/0.0001) = 0.2078)."""
    m = metric("conversion")
    y_c = np.r_[np.ones(50), np.zeros(450)]
    y_t = np.r_[np.ones(65), np.zeros(435)]
    stats = _stats([_stats_row("control", y_c), _stats_row("t", y_t)]).assign(metric="conversion")
    comp = compare(variant_estimates(stats, [m]), [m]).iloc[0]
    se = np.sqrt(0.13 * 0.87 / 500 / 0.01 + 0.13**2 * 0.1 * 0.9 / 500 / 0.1**4)
    assert comp["lift"] == pytest.approx(0.3)
    assert comp["se_lift"] == pytest.approx(se)
    assert comp["lift_low"] == pytest.approx(0.3 - 1.959964 * se, abs=1e-6)
    assert comp["test"] == "two-proportion z-test"
    assert comp["p_value"] == pytest.approx(0.1371, abs=1e-4)  # as R prop.test above


def test_noninferiority_guardrail_one_sided():
    """Guardrail with a 5 % margin: z = (lift + 0.05) / se_lift, p = 1 - Phi(z) (hand)."""
    m = metric("revenue", role="guardrail", margin=0.05)
    rng = np.random.default_rng(1)
    rows = [
        _stats_row("control", rng.normal(100, 20, 2000)),
        _stats_row("t", rng.normal(99, 20, 2000)),
    ]
    comp = compare(variant_estimates(_stats(rows).assign(metric="revenue"), [m]), [m]).iloc[0]
    z = (comp["lift"] + 0.05) / comp["se_lift"]
    assert comp["p_noninferiority"] == pytest.approx(1 - st.norm.cdf(z))
    assert comp["p_noninferiority"] < 0.001 and comp["margin"] == 0.05


def test_bayesian_matches_closed_forms():
    """Beta-Binomial chance to beat control vs Evan Miller's exact sum (2015); the normal model's
    chance is Phi(diff / se). Monte Carlo with 200,000 seeded draws, so within 0.005."""
    stats = _stats(
        [
            _stats_row("control", np.r_[np.ones(40), np.zeros(160)]),
            _stats_row("t", np.r_[np.ones(55), np.zeros(145)]),
        ]
    ).assign(metric="conversion")
    m = metric("conversion")
    b = bayes_compare(variant_estimates(stats, [m]), [m], draws=200_000, random_state=1)
    exact = beta_chance_to_beat(1 + 55, 1 + 145, 1 + 40, 1 + 160)
    assert b["chance_to_beat"].iloc[0] == pytest.approx(exact, abs=0.005)
    assert b["model"].iloc[0] == "Beta-Binomial"
    mm = metric("revenue")
    rng = np.random.default_rng(2)
    rs = _stats(
        [_stats_row("control", rng.normal(10, 3, 300)), _stats_row("t", rng.normal(10.4, 3, 300))]
    ).assign(metric="revenue")
    est = variant_estimates(rs, [mm])
    bn = bayes_compare(est, [mm], draws=200_000)
    d = est["estimate"].iloc[1] - est["estimate"].iloc[0]
    se = np.sqrt(est["var"].sum())
    assert bn["chance_to_beat"].iloc[0] == pytest.approx(st.norm.cdf(d / se), abs=0.005)
    loss = se * st.norm.pdf(d / se) - d * st.norm.cdf(-d / se)  # E[max(-D, 0)], D ~ N(d, se^2)
    assert bn["expected_loss"].iloc[0] == pytest.approx(loss, rel=0.05)


def test_msprt_boundary_by_hand():
    """Johari et al. (2017): Lambda = sqrt(V/(V+tau^2)) exp(tau^2 theta^2 / (2V(V+tau^2))); the
    always-valid p is 1/Lambda; the confidence sequence ends where Lambda(theta0) = 1/alpha."""
    theta, var, tau = np.array([0.5]), np.array([0.04]), 0.3
    res = msprt(theta, var, tau=tau, alpha=0.05)
    lam = np.sqrt(0.04 / 0.13) * np.exp(0.09 * 0.25 / (2 * 0.04 * 0.13))
    assert res["p_value"][0] == pytest.approx(1 / lam)
    edge = theta - res["high"]  # theta_hat - theta0 at the upper end
    lam_edge = np.sqrt(0.04 / 0.13) * np.exp(0.09 * edge**2 / (2 * 0.04 * 0.13))
    assert lam_edge[0] == pytest.approx(20.0)
    # the p-value never rises again once it has fallen
    seq = msprt(np.array([0.5, 0.0, 0.0]), np.full(3, 0.04), tau=tau)
    assert np.all(np.diff(seq["p_value"]) <= 0)


def test_adjust_scopes_use_holm_and_bh():
    """Within a metric, Holm of (0.01, 0.04) is (0.02, 0.04); across all four rows
    Holm of (0.01, 0.04, 0.03, 0.2) is (0.04, 0.09, 0.09, 0.2) (R p.adjust, hand)."""
    t = pd.DataFrame({"metric": ["a", "a", "b", "b"], "p_value": [0.01, 0.04, 0.03, 0.2]})
    assert adjust(t, scope="metric").tolist() == pytest.approx([0.02, 0.04, 0.06, 0.2])
    assert adjust(t, scope="all").tolist() == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust(t, correction="bh", scope="all").tolist() == pytest.approx(
        [0.04, 0.0533333, 0.0533333, 0.2]
    )


def test_bootstrap_lift_is_seeded_and_close_to_delta():
    """The percentile bootstrap interval of a lift agrees with the delta-method one on a large
    normal sample (both ~ +5 % +- 2.5 %) and repeats exactly with the same random_state."""
    rng = np.random.default_rng(5)
    values = pd.DataFrame(
        {
            "variant": ["c"] * 3000 + ["t"] * 3000,
            "y": np.r_[rng.normal(100, 30, 3000), rng.normal(105, 30, 3000)],
            "d": 1.0,
        }
    )
    a = bootstrap_lift(values, "t", "c", n_boot=500, random_state=3)
    b = bootstrap_lift(values, "t", "c", n_boot=500, random_state=3)
    assert a == b
    se = np.sqrt(30**2 / 3000 / 100**2 + 105**2 * 30**2 / 3000 / 100**4)
    assert a["lift_high"] - a["lift_low"] == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_simulated_false_positive_rate_and_coverage():
    """Fast simulation (the long one is benchmarks/bench_experiments.py): 2,000 A/A tests of
    proportions at alpha = 0.05 reject 5 % +- 1.5 % (binomial sd at 2,000 is 0.49 %); 2,000
    experiments with a true +10 % lift cover it with the 95 % delta interval 95 % +- 1.5 %."""
    rng = np.random.default_rng(20261122)
    sims, n, p = 2000, 4000, 0.3
    xc, xt = rng.binomial(n, p, sims), rng.binomial(n, p, sims)
    rejected = np.mean(
        [prop_test(a, n, b, n)["p_value"] < 0.05 for a, b in zip(xt, xc, strict=True)]
    )
    assert 0.035 <= rejected <= 0.065
    xc, xt = rng.binomial(n, p, sims), rng.binomial(n, p * 1.1, sims)
    m = metric("conversion")
    rows = []
    for i in range(sims):
        rows += [
            dict(metric=f"s{i}", variant="control", n=n, s_y=xc[i], s_d=n),
            dict(metric=f"s{i}", variant="t", n=n, s_y=xt[i], s_d=n),
        ]
    stats = _stats(rows).assign(
        s_yy=lambda d: d["s_y"], s_dd=lambda d: d["s_d"], s_yd=lambda d: d["s_y"]
    )
    ms = [metric("conversion").__class__(f"s{i}", "binary") for i in range(sims)]
    comp = compare(variant_estimates(stats, ms), ms)
    covered = np.mean((comp["lift_low"] <= 0.1) & (comp["lift_high"] >= 0.1))
    assert 0.935 <= covered <= 0.965, covered
    assert m.kind == "binary"


def test_sequential_controls_peeking_where_naive_does_not():
    """400 A/A experiments, 30 daily looks each: stopping at the first naive p < 0.05 rejects far
    more than 5 % (about 20-25 %), the mSPRT's always-valid p stays at or below 5 %."""
    rng = np.random.default_rng(11)
    sims, looks, per_day, p = 400, 30, 100, 0.3
    xc = rng.binomial(per_day, p, (sims, looks)).cumsum(1)
    xt = rng.binomial(per_day, p, (sims, looks)).cumsum(1)
    n = per_day * np.arange(1, looks + 1)
    pc, pt = xc / n, xt / n
    theta, var = pt - pc, (pc * (1 - pc) + pt * (1 - pt)) / n
    naive = np.abs(theta / np.sqrt(var)) > 1.959964
    always = np.array([msprt(theta[i], var[i], tau=0.03)["reject"].any() for i in range(sims)])
    assert naive.any(1).mean() > 0.12
    assert always.mean() <= 0.05


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match="alternative must be one of"):
        prop_test(1, 10, 2, 10, alternative="bigger")
    with pytest.raises(ValueError, match="correction must be one of"):
        adjust(pd.DataFrame({"metric": ["a"], "p_value": [0.1]}), correction="bonferroni")
    with pytest.raises(ValueError, match="scope must be one of"):
        adjust(pd.DataFrame({"metric": ["a"], "p_value": [0.1]}), scope="everything")
    with pytest.raises(ValueError, match="split must give a share for every variant"):
        checks.srm({"a": 10, "b": 10}, split={"a": 0.5})
    with pytest.raises(ValueError, match="srm alpha must be between 0 and 1"):
        checks.srm({"a": 10, "b": 10}, alpha=2)
    with pytest.raises(ValueError, match="n_boot must be an int >= 100"):
        bootstrap_lift(pd.DataFrame({"variant": [], "y": [], "d": []}), "t", "c", n_boot=5)
    with pytest.raises(ValueError, match="sd must be a positive standard deviation"):
        power.power("mean", 1.0, 0.1, 100)
    with pytest.raises(ValueError, match="kind must be one of"):
        power.power("count", 1.0, 0.1, 100, sd=1)
    with pytest.raises(ValueError, match="tau must be positive"):
        msprt([0.1], [0.01], tau=0)
    with pytest.raises(ValueError, match="draws must be an int >= 1000"):
        bayes_compare(pd.DataFrame(), [], draws=10)
