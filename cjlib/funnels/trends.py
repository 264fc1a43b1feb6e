"""Conversion by entry cohort (week or month), with incomplete cohorts flagged, and a trend test.

A cohort is the set of units whose entry falls in the same calendar week (Monday start, UTC) or
month. Its conversion is the whole-funnel conversion (last step / entrants, in-progress excluded,
as in the funnel table). A cohort is *incomplete* when some of its entrants could still convert
at the data end: its last possible entry (the cohort's end, or the funnel period's end when
that comes first) plus the window is after ``as_of`` (with no window: that end is after
``as_of``). Incomplete cohorts are shown but left out of the trend.

The trend over complete cohorts is the Cochran-Armitage test for a linear trend in proportions
(Armitage 1955; R ``prop.trend.test``; with two cohorts it is the two-proportion chi-square
test), with the slope (change in conversion, as a proportion, per cohort) from the weighted
least-squares line it rests on. Cohorts are scored by their calendar position (week or month
number), so a cohort without entrants, or suppressed, leaves a gap rather than closing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from cjlib.engine import Engine, as_table
from cjlib.funnels.core import computed_units, records, resolve_spec
from cjlib.funnels.summary import step_table
from cjlib.stats import wilson_interval

__all__ = ["TrendResult", "funnel_trends", "trend_test"]

_UNITS = {"week": ("W", pd.Timedelta(days=7)), "month": ("M", None)}


def trend_test(x, n, scores=None) -> tuple[float, float]:
    """``(slope, p_value)``: WLS slope of x/n on the scores (weights n; default 0..k-1) and the
    Cochran-Armitage two-sided p-value, as R ``prop.trend.test(x, n, score)``; a group with
    n = 0 is left out and the others keep their scores, as there."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    ok = n > 0
    s = np.arange(len(n), dtype=float) if scores is None else np.asarray(scores, dtype=float)
    s = s[ok]
    x, n = x[ok], n[ok]
    if len(n) < 2:
        return np.nan, np.nan
    p = x.sum() / n.sum()
    sbar = (n * s).sum() / n.sum()
    sxx = (n * (s - sbar) ** 2).sum()
    slope = ((x - n * p) * (s - sbar)).sum() / sxx
    if p in (0.0, 1.0):
        return slope, np.nan
    chi = slope**2 * sxx / (p * (1 - p))
    return float(slope), float(2 * norm.sf(np.sqrt(chi)))


@dataclass(frozen=True)
class TrendResult:
    """``table``: one row per cohort (``cohort, entrants, converted, in_progress, conversion``
    with a Wilson interval, ``incomplete``, ``suppressed``); ``slope`` (conversion change per
    cohort over complete cohorts) and ``p_value`` (Cochran-Armitage)."""

    table: pd.DataFrame
    cohort: str
    slope: float
    p_value: float

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        return {"cohort": self.cohort, "slope": self.slope, "p_value": self.p_value,
                "table": records(self.table)}  # fmt: skip


def funnel_trends(
    events: Any,
    steps: Any,
    *,
    cohort: str = "week",
    min_size: int = 10,
    confidence: float = 0.95,
    engine: Engine | None = None,
    **options: Any,
) -> TrendResult:
    """Whole-funnel conversion per entry cohort; ``steps`` as in :func:`funnel_segments`.
    Cohorts with fewer than ``min_size`` entrants are suppressed (counts and rates blank)."""
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an int >= 1, got {min_size!r}")
    if cohort not in _UNITS:
        raise ValueError(f"cohort must be one of {list(_UNITS)}, got {cohort!r}")
    spec = resolve_spec(steps, options)
    _, eng = as_table(events, engine)
    unit, length = _UNITS[cohort]
    with computed_units(events, spec, eng) as (prep, _, counted):
        c = counted.mutate(cohort=counted.t_entry.truncate(unit))
        counts = eng.to_pandas(
            c.group_by(["cohort", "entry_step", "depth", "status"]).aggregate(n=c.count())
        )
        as_of = prep.as_of
    rows = []
    for start, g in counts.groupby("cohort"):
        start = pd.Timestamp(start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        end = start + (length if length is not None else pd.DateOffset(months=1))
        if spec.period[1] is not None:  # entries stop at the period end
            end = min(end, spec.period[1])
        last = step_table(g.drop(columns="cohort"), spec, confidence=confidence).iloc[-1]
        window = pd.Timedelta(seconds=spec.window) if spec.window is not None else None
        incomplete = end > as_of if window is None else end + window > as_of
        rows.append(
            {
                "cohort": start,
                "entrants": int(g["n"].sum()),
                "converted": int(last["customers"]),
                "in_progress": int(g.loc[g.status == "in_progress", "n"].sum()),
                "denominator": int(last["denominator_from_start"]),
                "incomplete": bool(incomplete),
            }
        )
    table = pd.DataFrame(rows).sort_values("cohort", ignore_index=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["conversion"] = table["converted"] / table["denominator"].where(
            table["denominator"] > 0
        )
    table["conversion_low"], table["conversion_high"] = wilson_interval(
        table["converted"], table["denominator"], confidence=confidence
    )
    table["suppressed"] = table["entrants"] < min_size
    cols = ["entrants", "converted", "in_progress", "denominator"]
    table[cols] = table[cols].astype("Int64")
    rates = ["conversion", "conversion_low", "conversion_high"]
    table.loc[table["suppressed"], cols] = pd.NA
    table.loc[table["suppressed"], rates] = np.nan
    done = table[~table["incomplete"] & ~table["suppressed"]]
    # scored by calendar position: a week without entrants (or suppressed) leaves a gap
    when = pd.DatetimeIndex(done["cohort"])
    position = (when - when.min()).days // 7 if cohort == "week" else when.year * 12 + when.month
    slope, p = trend_test(done["converted"], done["denominator"], scores=np.asarray(position))
    return TrendResult(table, cohort, slope, p)
