"""Shared interval and multiple-testing primitives: Wilson, Newcombe, Holm, Benjamini-Hochberg."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["wilson_interval", "newcombe_interval", "holm", "benjamini_hochberg"]


def wilson_interval(successes, trials, *, confidence: float = 0.95):
    """Wilson score interval for a binomial proportion, vectorised.

    ``successes`` out of ``trials``; returns ``(low, high)`` arrays (NaN where ``trials`` is 0).
    Reference: Wilson (1927), JASA 22:209; the form in Agresti & Coull (1998), eq. 2.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes must lie between 0 and trials")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        # exact at the edges: centre - half is 0 for k = 0 and centre + half is 1 for k = n, but
        # rounding left 0 successes with a lower bound above 0 for 957 of n = 1..4999
        low = np.where(k == 0, 0.0, np.clip(centre - half, 0, 1))
        high = np.where(k == n, 1.0, np.clip(centre + half, 0, 1))
        low, high = np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)
    return low, high


def newcombe_interval(x1, n1, x2, n2, *, confidence: float = 0.95):
    """``(low, high)`` for p1 - p2 from the two Wilson intervals: Newcombe (1998) method 10,
    the "hybrid score" interval (Statistics in Medicine 17:873), vectorised."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    l1, u1 = wilson_interval(x1, n1, confidence=confidence)
    l2, u2 = wilson_interval(x2, n2, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def _check_pvalues(pvalues) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("pvalues must lie between 0 and 1")
    return p


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error), as R's ``p.adjust(p, "holm")``.

    NaN p-values are left out of the family and stay NaN.
    """
    p = _check_pvalues(pvalues)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    order = np.argsort(q, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * q[order])
    out_ok = np.empty(m)
    out_ok[order] = np.minimum(adjusted, 1.0)
    out[ok] = out_ok
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (false discovery rate), as R's
    ``p.adjust(p, "BH")``. NaN p-values are left out of the family and stay NaN."""
    p = _check_pvalues(pvalues)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    order = np.argsort(q, kind="stable")[::-1]
    ranks = np.arange(m, 0, -1)
    adjusted = np.minimum.accumulate(q[order] * m / ranks)
    out_ok = np.empty(m)
    out_ok[order] = np.minimum(adjusted, 1.0)
    out[ok] = out_ok
    return out
