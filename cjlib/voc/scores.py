"""Survey scores from counts: NPS, CSAT share and mean satisfaction, each with an interval.

All functions are vectorised over numpy arrays of counts and sums (the small tables the engine
returns), so the same arithmetic serves one overall score or a breakdown by any dimension.

- NPS = 100 x (promoters - detractors) / answers. Promoters answer 9-10, passives 7-8,
  detractors 0-6 (Reichheld 2003). It is a difference of two proportions from *one* multinomial
  sample, so its variance is not the sum of two binomial variances: with shares ``p`` (promoters)
  and ``d`` (detractors) of ``n`` answers, ``Var(p - d) = (p + d - (p - d)^2) / n`` (the
  variance of a +1/0/-1 score; Rocks 2016, The American Statistician 70:365). The interval is
  Wald on that variance, clipped to [-100, 100].
- CSAT share = answers of 4 or 5 on the 1-5 scale / CSAT answers, Wilson interval.
- Mean satisfaction (the emotion track) = mean CSAT with a Student t interval.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from scipy import stats as sps

from cjlib.stats import wilson_interval

__all__ = [
    "nps_interval",
    "nps_difference",
    "csat_share",
    "csat_difference",
    "mean_interval",
    "PROMOTER_MIN",
    "DETRACTOR_MAX",
    "CSAT_SATISFIED_MIN",
]

PROMOTER_MIN, DETRACTOR_MAX, CSAT_SATISFIED_MIN = 9, 6, 4


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def nps_interval(promoters, detractors, answers, *, confidence: float = 0.95) -> dict:
    """NPS (points, -100..100) with its standard error and interval, from counts.

    Returns ``{"nps", "se", "low", "high"}`` (arrays; NaN where ``answers`` is 0).
    """
    z = _z(confidence)
    k_p, k_d, n = _arrays(promoters, detractors, answers)
    if np.any(k_p < 0) or np.any(k_d < 0) or np.any(k_p + k_d > n):
        raise ValueError("promoters and detractors must be >= 0 and together at most answers")
    with np.errstate(invalid="ignore", divide="ignore"):
        p, d = k_p / n, k_d / n
        nps = p - d
        se = np.sqrt(np.maximum(p + d - nps**2, 0) / n)
    ok = n > 0
    nps, se = np.where(ok, 100 * nps, np.nan), np.where(ok, 100 * se, np.nan)
    low = np.where(ok, np.clip(nps - z * se, -100, 100), np.nan)
    high = np.where(ok, np.clip(nps + z * se, -100, 100), np.nan)
    return {"nps": nps, "se": se, "low": low, "high": high}


def nps_difference(a: dict, b: dict, *, confidence: float = 0.95) -> dict:
    """``b - a`` for two NPS results from independent samples (e.g. consecutive survey waves):
    the difference, its Wald interval (variances add) and the two-sided z-test p-value."""
    z = _z(confidence)
    diff = np.asarray(b["nps"], dtype=float) - np.asarray(a["nps"], dtype=float)
    se = np.sqrt(np.asarray(a["se"], dtype=float) ** 2 + np.asarray(b["se"], dtype=float) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * sps.norm.sf(np.abs(diff / se))
    p = np.where(se > 0, p, np.nan)
    return {"difference": diff, "low": diff - z * se, "high": diff + z * se, "p_value": p}


def csat_share(satisfied, answers, *, confidence: float = 0.95) -> dict:
    """Share of CSAT answers that are 4 or 5, with a Wilson interval."""
    k, n = _arrays(satisfied, answers)
    low, high = wilson_interval(k, n, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, k / n, np.nan)
    return {"share": share, "low": low, "high": high}


def csat_difference(k1, n1, k2, n2, *, confidence: float = 0.95) -> dict:
    """``p2 - p1`` for two CSAT shares: Newcombe's hybrid score interval (method 10, Stat Med
    1998) and the pooled two-proportion z test (R ``prop.test(correct = FALSE)``)."""
    from cjlib.funnels.inference import newcombe_interval, two_proportion_test

    low, high = newcombe_interval(k2, n2, k1, n1, confidence=confidence)
    k1, n1, k2, n2 = _arrays(k1, n1, k2, n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = k2 / n2 - k1 / n1
    return {
        "difference": diff,
        "low": low,
        "high": high,
        "p_value": two_proportion_test(k1, n1, k2, n2),
    }


def mean_interval(total, total_sq, n, *, confidence: float = 0.95) -> dict:
    """Mean with a Student t interval from the sum, the sum of squares and the count."""
    s, ss, n = _arrays(total, total_sq, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = np.maximum(ss - n * mean**2, 0) / (n - 1)
        half = sps.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * np.sqrt(var / n)
    mean = np.where(n > 0, mean, np.nan)
    half = np.where(n > 1, half, np.nan)
    return {"mean": mean, "low": mean - half, "high": mean + half}
