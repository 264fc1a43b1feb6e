"""What every chart module shares: a new axes when none is given, and interval whiskers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


def axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure of ``size`` inches."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, dpi=110, layout="constrained")
    return ax


def whiskers(centre: Any, low: Any, high: Any, scale: float = 1.0) -> np.ndarray:
    """Whisker lengths ``[below, above]`` for ``errorbar`` / ``bar`` (``yerr`` or ``xerr``),
    times ``scale``. Never negative (a bound equal to the estimate can differ from it in the last
    bit, which matplotlib refuses) and 0 where a bound is missing."""
    c, lo, hi = (np.asarray(x, dtype=float) * scale for x in (centre, low, high))
    return np.nan_to_num(np.clip(np.vstack([c - lo, hi - c]), 0, None), nan=0.0)
