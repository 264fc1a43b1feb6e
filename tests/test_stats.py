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
