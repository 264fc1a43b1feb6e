"""Two-proportion comparisons used by segments and drivers (numpy/scipy on small tables).

- :func:`two_proportion_test`: two-sided pooled z test of p1 = p2, the same p-value as R's
  ``prop.test(c(x1, x2), c(n1, n2), correct = FALSE)`` (chi-square with 1 df = z^2).
- :func:`newcombe_interval` (from :mod:`cjlib.stats`): interval for p1 - p2, Newcombe (1998)
  method 10.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from cjlib.stats import benjamini_hochberg, holm, newcombe_interval

__all__ = ["two_proportion_test", "newcombe_interval", "adjust", "ADJUSTMENTS"]

ADJUSTMENTS = ("holm", "bh", "none")


def two_proportion_test(x1, n1, x2, n2) -> np.ndarray:
    """Two-sided p-values of the pooled z test; NaN where a group is empty or the pooled rate is
    0 or 1 (no variation to test)."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
        p = 2 * norm.sf(np.abs(z))
    return np.where((n1 > 0) & (n2 > 0) & (se > 0), p, np.nan)


def adjust(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values: ``holm`` (default), ``bh`` (Benjamini-Hochberg) or ``none``."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {list(ADJUSTMENTS)}, got {method!r}")
    p = np.asarray(p_values, dtype=float)
    if method == "none" or p.size == 0:
        return p.copy()
    return holm(p) if method == "holm" else benjamini_hochberg(p)
