"""Bayesian readout: chance to beat control, expected loss, credible intervals.

Models (documented choices):

- Proportions: conjugate Beta-Binomial, prior Beta(``prior_a``, ``prior_b``) (default Beta(1, 1),
  uniform), posterior Beta(a + conversions, b + non-conversions) per variant, independent, on the
  raw counts (CUPED does not apply to the conjugate model).
- Means, ratio metrics and CUPED-adjusted estimates: each variant's mean has a normal posterior
  N(estimate, variance of the estimate), the large-sample limit under a flat prior (Bayesian
  central limit theorem; the same model as many commercial A/B tools). It is not meant for a few
  dozen customers with heavy-tailed revenue: winsorise or use the bootstrap there.

``chance_to_beat`` = P(variant better than control) in the metric's direction;
``expected_loss`` = E[max(control − variant, 0)] in the metric's units (direction-aware): what you
expect to give up by shipping the variant if it is in fact worse. Intervals are equal-tailed
credible intervals for the difference and the relative lift from ``draws`` seeded Monte Carlo draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cjlib.experiments.metrics import Metric

__all__ = ["bayes_compare", "beta_chance_to_beat"]


def beta_chance_to_beat(a_v: float, b_v: float, a_c: float, b_c: float) -> float:
    """Exact P(p_v > p_c) for independent Beta posteriors with integer ``a_v`` (Evan Miller 2015,
    "Formulas for Bayesian A/B testing"): Σ_{i<a_v} B(a_c+i, b_c+b_v) / ((b_v+i) B(1+i, b_v)
    B(a_c, b_c)). Used to check the Monte Carlo; O(a_v)."""
    from scipy.special import betaln

    i = np.arange(int(a_v))
    terms = betaln(a_c + i, b_c + b_v) - np.log(b_v + i) - betaln(1 + i, b_v) - betaln(a_c, b_c)
    return float(np.exp(terms).sum())


def bayes_compare(
    estimates: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    control: str = "control",
    confidence: float = 0.95,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    draws: int = 100_000,
    random_state: int = 0,
) -> pd.DataFrame:
    """Every variant against ``control`` per metric (``estimates`` from
    :func:`cjlib.experiments.frequentist.variant_estimates`)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if prior_a <= 0 or prior_b <= 0:
        raise ValueError(f"prior_a and prior_b must be positive, got {prior_a}, {prior_b}")
    if not isinstance(draws, int) or draws < 1000:
        raise ValueError(f"draws must be an int >= 1000, got {draws!r}")
    rng = np.random.default_rng(random_state)
    info = {m.name: m for m in metrics}
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    rows = []
    for name, grp in estimates.groupby("metric", sort=False):
        m = info[name]
        by_v = {r["variant"]: r for r in grp.to_dict("records")}
        if control not in by_v:
            continue
        beta = m.kind == "binary"

        def sample(r: dict, beta: bool = beta) -> np.ndarray:
            if beta:
                return rng.beta(prior_a + r["s_y"], prior_b + r["n"] - r["s_y"], draws)
            return rng.normal(r["estimate"], np.sqrt(r["var"]), draws)

        c = sample(by_v[control])
        for v_name, r in by_v.items():
            if v_name == control or min(r["n"], by_v[control]["n"]) < 2:
                continue
            v = sample(r)
            diff = v - c
            better = diff if m.higher_is_better else -diff
            lift = v / c - 1
            rows.append(
                dict(
                    metric=name,
                    role=m.role,
                    variant=v_name,
                    control=control,
                    model="Beta-Binomial" if beta else "normal (large-sample)",
                    chance_to_beat=float(np.mean(better > 0)),
                    expected_loss=float(np.mean(np.maximum(-better, 0))),
                    diff=float(np.mean(diff)),
                    diff_low=float(np.quantile(diff, q[0])),
                    diff_high=float(np.quantile(diff, q[1])),
                    lift=float(np.median(lift)),
                    lift_low=float(np.quantile(lift, q[0])),
                    lift_high=float(np.quantile(lift, q[1])),
                )
            )
    return pd.DataFrame(rows)
