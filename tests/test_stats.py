"""Wilson score interval against hand-calculated references."""

from __future__ import annotations

import numpy as np
import pytest

from cjlib.stats import wilson_interval


def test_wilson_reference_values():
    """5/10: 0.2366-0.7634; 0/10: 0-0.2775 (= z^2 / (n + z^2)), z = 1.959964 (hand calculation,
    formula of Agresti & Coull 1998, eq. 2; statsmodels proportion_confint(method='wilson') agrees).
    """
    low, high = wilson_interval([5, 0], [10, 10])
    assert low == pytest.approx([0.2366, 0.0], abs=1e-4)
    assert high == pytest.approx([0.7634, 0.2775], abs=1e-4)


def test_wilson_edges_and_errors():
    low, high = wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)
    low90, high90 = wilson_interval(5, 10, confidence=0.90)
    assert 0.2366 < low90 < 0.5 < high90 < 0.7634
    with pytest.raises(ValueError, match="successes must lie between 0 and trials"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        wilson_interval(1, 10, confidence=95)


def test_wilson_interval_contains_the_estimate_exactly_at_the_edges():
    """0 of n has a lower bound of exactly 0 and n of n an upper bound of exactly 1 (the formula
    gives them; rounding did not: 957 of n = 1..4999 had a lower bound above 0 for 0 successes,
    and charts drew negative whiskers for 100 %)."""
    n = np.arange(1, 5000)
    low, high = wilson_interval(np.zeros_like(n), n)
    assert (low == 0).all() and (high > 0).all()
    low, high = wilson_interval(n, n)
    assert (high == 1).all() and (low < 1).all()
    k = n // 3
    low, high = wilson_interval(k, n)
    assert ((low <= k / n) & (k / n <= high)).all()


def test_holm_and_bh_match_r_p_adjust():
    """p = c(0.01, 0.04, 0.03, 0.005): R p.adjust(p, "holm") = 0.03 0.06 0.06 0.02 and
    p.adjust(p, "BH") = 0.02 0.04 0.04 0.02 (hand calculation of both step rules)."""
    from cjlib.stats import benjamini_hochberg, holm

    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, float("nan"), 0.04])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="pvalues must lie between 0 and 1"):
        benjamini_hochberg([0.2, 1.5])
