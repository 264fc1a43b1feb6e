"""``funnel()``: the complete funnel with in-progress handling, Wilson intervals and timing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cjlib.engine import Engine
from cjlib.funnels import tally
from cjlib.funnels.compute import (
    Prepared,
    chain,
    customer_table,
    prepare,
    status_counts,
    unit_table,
)
from cjlib.funnels.spec import FunnelSpec, funnel_spec, to_seconds
from cjlib.funnels.summary import step_table
from cjlib.funnels.timing import duration_counts, timing_tables
from cjlib.stages import StageModel

__all__ = ["FunnelResult", "TestedTable", "funnel", "resolve_spec", "computed_units", "records"]


def records(df: pd.DataFrame) -> list[dict]:
    """A table as JSON-able records (NaN as null, timestamps in ISO 8601)."""
    import json

    return json.loads(df.to_json(orient="records", date_format="iso"))


class TestedTable:
    """For results whose ``table`` has ``difference`` and ``p_adjusted`` columns (and ``alpha``)."""

    table: pd.DataFrame
    alpha: float

    def significant(self) -> pd.DataFrame:
        """Rows whose adjusted p-value is below ``alpha``, largest differences first."""
        t = self.table[self.table["p_adjusted"] < self.alpha]
        return t.reindex(t["difference"].abs().sort_values(ascending=False).index)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


@dataclass(frozen=True)
class FunnelResult:
    """A computed funnel.

    ``steps``: one row per step (see :mod:`cjlib.funnels.summary` for every denominator);
    ``timing``: time to convert per step (hours); ``km``: Kaplan-Meier curves of time to the
    step (in-progress units censored); ``entered``: units that entered; ``as_of``: when the data
    end (in-progress is judged against it); ``spec``: the definition used.
    """

    steps: pd.DataFrame
    timing: pd.DataFrame
    km: pd.DataFrame
    entered: int
    as_of: pd.Timestamp
    spec: FunnelSpec
    confidence: float = 0.95

    @property
    def overall(self) -> pd.Series:
        """The last step's row: conversion from start to the end of the funnel."""
        return self.steps.iloc[-1]

    @property
    def weakest_step(self) -> int:
        """The step (2..n) with the lowest conversion from the previous step."""
        rows = self.steps[self.steps["step"] > 1].dropna(subset=["conversion"])
        if rows.empty:
            raise ValueError("no step after the first has a conversion rate (no entrants)")
        return int(rows.loc[rows["conversion"].idxmin(), "step"])

    def to_frame(self) -> pd.DataFrame:
        return self.steps.copy()

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "entered": int(self.entered),
            "as_of": self.as_of.isoformat(),
            "confidence": self.confidence,
            "steps": records(self.steps),
            "timing": records(self.timing),
        }

    def _repr_html_(self) -> str:
        cols = ["step", "label", "customers", "in_progress", "dropped", "conversion",
                "conversion_low", "conversion_high", "conversion_from_start"]  # fmt: skip
        view = self.steps[cols].copy()
        for c in cols[5:]:
            view[c] = view[c].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.1f} %")
        return (
            f"<p><b>Funnel</b> ({self.spec.mode}, {self.entered:,} entered, data end "
            f"{self.as_of:%Y-%m-%d %H:%M} UTC)</p>" + view.to_html(index=False)
        )


def resolve_spec(steps: Any, options: dict[str, Any]) -> FunnelSpec:
    """``steps`` as given when it is a FunnelSpec (or a FunnelResult), else a new spec."""
    if isinstance(steps, FunnelResult):
        steps = steps.spec
    if isinstance(steps, FunnelSpec):
        return steps
    return funnel_spec(steps, **options)


@contextlib.contextmanager
def computed_units(
    events: Any, spec: FunnelSpec, engine: Engine | None
) -> Iterator[tuple[Prepared, Any, Any]]:
    """``(prepared, units, counted)`` kept in the engine for the block, released afterwards."""
    prep = prepare(events, spec, engine=engine)
    try:
        units = prep.keep(unit_table(prep))
        yield prep, units, customer_table(prep, units)
    finally:
        prep.release()


def _summaries(
    events: Any, spec: FunnelSpec, engine: Engine | None, resolution: float | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """The two small tables a funnel is read from: units by (entry step, furthest step, status)
    and durations by (step, bucket, event), and the data end. Straight from the chain's links
    where :func:`cjlib.funnels.tally.applies`, else from the unit table."""
    prep = prepare(events, spec, engine=engine)
    to_pandas = prep.engine.to_pandas
    try:
        if tally.applies(prep):
            counts, hist = tally.tables(prep, chain(prep), resolution=resolution)
        else:
            units = prep.keep(unit_table(prep))
            counts = to_pandas(status_counts(customer_table(prep, units)))
            hist = to_pandas(duration_counts(prep, units, resolution=resolution))
    finally:
        prep.release()
    return counts, hist, prep.as_of


def funnel(
    events: Any,
    steps: Any,
    *,
    mode: str = "closed",
    strict: bool = False,
    window: Any = "30D",
    min_gap: Any = None,
    max_gap: Any = None,
    exclude: Any = None,
    hold: str | None = None,
    entry: str = "first",
    period: tuple[Any, Any] | None = None,
    count: str = "customers",
    as_of: Any = None,
    stages: StageModel | None = None,
    confidence: float = 0.95,
    resolution: Any = "auto",
    engine: Engine | None = None,
) -> FunnelResult:
    """Compute a funnel over ``events`` (a LoadedTable, Ibis table or DataFrame).

    ``steps``: a list of steps (``"event"``, ``"a|b"``, ``"stage:<stage>"``) or a
    :class:`FunnelSpec` (then the definition options here are not used). ``mode``: ``closed``
    (default), ``open`` or ``any_order``; ``strict``: directly-followed steps; ``window``: from
    entry to the last step (default 30 days; ``None`` = unlimited); ``min_gap``/``max_gap``:
    per-step bounds (a list for steps 2..n, a dict ``{step: gap}`` or one value); ``exclude``:
    events that end a journey between steps; ``hold``: a column all steps must share;
    ``entry``: ``first`` (first ever, counted if inside ``period``) or ``first_in_period``;
    ``count``: ``customers`` or ``journeys``; ``as_of``: the data end (default: the last
    event); ``stages``: the stage model for stage steps; ``resolution``: time-to-convert
    precision, ``"auto"`` (default: to the second under an hour, to the minute above) or a
    duration such as ``"1min"``. The full rules are in :mod:`cjlib.funnels.spec`.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    res = None if resolution == "auto" else to_seconds(resolution, name="resolution")
    if res is not None and not res > 0:
        raise ValueError(f"resolution must be 'auto' or a positive duration, got {resolution!r}")
    spec = resolve_spec(
        steps,
        dict(mode=mode, strict=strict, window=window, min_gap=min_gap, max_gap=max_gap,
             exclude=exclude, hold=hold, entry=entry, period=period, count=count, as_of=as_of,
             stages=stages),
    )  # fmt: skip
    counts, hist, as_of = _summaries(events, spec, engine, res)
    labels = spec.labels
    hist = hist.astype({"step": "int64", "bucket": "int64", "event": "int64", "n": "int64"})
    timing, km = timing_tables(hist, labels)
    return FunnelResult(
        steps=step_table(counts, spec, confidence=confidence),
        timing=timing,
        km=km,
        entered=int(counts["n"].sum()) if len(counts) else 0,
        as_of=as_of,
        spec=spec,
        confidence=confidence,
    )
