"""Durations as people read them: seconds for a click, minutes, hours, days for a purchase."""

from __future__ import annotations

import math

__all__ = ["duration_text", "TIME_TICKS"]

# log-scale time axes: tick positions in hours and their labels
TIME_TICKS = (
    (1 / 3600, "1 s"),
    (10 / 3600, "10 s"),
    (1 / 60, "1 min"),
    (10 / 60, "10 min"),
    (1.0, "1 h"),
    (6.0, "6 h"),
    (24.0, "1 d"),
    (168.0, "1 wk"),
    (720.0, "30 d"),
    (8760.0, "1 yr"),
)


def duration_text(hours: float) -> str:
    """``hours`` in the unit that suits it: ``"45 s"``, ``"3.2 min"``, ``"5.1 h"``, ``"2.3 days"``
    (``"—"`` when missing)."""
    try:
        if hours is None or math.isnan(hours):
            return "—"
    except TypeError:  # pandas' NA
        return "—"
    seconds = hours * 3600
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:,.1f} days"
