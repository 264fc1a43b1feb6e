"""Attribution per segment (e.g. persona): the same models on each segment's journeys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cjlib.engine import Engine, as_table

__all__ = ["SegmentAttribution", "attribute_segments"]


@dataclass(frozen=True)
class SegmentAttribution:
    """``credits``: the credit table with a leading ``segment`` column; ``sizes``: journeys and
    conversions per segment and whether it was shown (segments with fewer than ``min_journeys``
    converting journeys are suppressed)."""

    credits: pd.DataFrame
    sizes: pd.DataFrame
    params: dict

    def to_frame(self) -> pd.DataFrame:
        return self.credits.copy()

    def shares(self, model: str = "markov") -> pd.DataFrame:
        """Channel x segment shares of conversions under ``model`` (shown segments only)."""
        if self.credits.empty:
            return pd.DataFrame()
        rows = self.credits[self.credits["model"] == model]
        if rows.empty:
            raise ValueError(
                f"model must be one of {sorted(set(self.credits['model']))}, got {model!r}"
            )
        return rows.pivot(index="channel", columns="segment", values="share").reset_index()

    def to_dict(self) -> dict:
        import json

        return {
            "params": self.params,
            "sizes": json.loads(self.sizes.to_json(orient="records")),
            "credits": json.loads(self.credits.to_json(orient="records")),
        }


def attribute_segments(
    events: Any,
    segments: Any,
    *,
    segment_column: str | None = None,
    min_journeys: int = 10,
    engine: Engine | None = None,
    **options: Any,
) -> SegmentAttribution:
    """Run :func:`cjlib.attribution.attribute` on each segment's events.

    ``segments`` is a table (DataFrame, CSV path, ``LoadedTable``) of ``customer_id`` and one
    segment column (``segment_column``, default: the only other column). Customers without a
    segment are left out. ``options`` are passed to ``attribute`` (costs are not split by segment).
    """
    from cjlib.attribution import attribute

    if not isinstance(min_journeys, int) or min_journeys < 1:
        raise ValueError(f"min_journeys must be an int >= 1, got {min_journeys!r}")
    t, engine = as_table(events, engine)
    s, _ = as_table(segments, engine)
    others = [c for c in s.columns if c != "customer_id"]
    if "customer_id" not in s.columns or not others:
        raise ValueError(f"segments need customer_id and a segment column, got {list(s.columns)}")
    column = segment_column or (others[0] if len(others) == 1 else None)
    if column not in others:
        raise ValueError(f"segment_column must be one of {others}, got {segment_column!r}")
    s = s.select(customer_id=s.customer_id.cast("string"), segment=s[column].cast("string"))
    joined = t.mutate(customer_id=t.customer_id.cast("string")).inner_join(s, "customer_id")
    names = sorted(engine.to_pandas(s.select("segment").distinct())["segment"].dropna())
    frames, sizes = [], []
    for name in names:
        sub = joined.filter(joined.segment == name).drop("segment")
        try:
            res = attribute(sub, engine=engine, **options)
        except ValueError as exc:
            if "nothing to attribute" not in str(exc) and "does not occur" not in str(exc):
                raise
            res = None
        conv = 0.0 if res is None else res.summary["conversions"]
        shown = conv >= min_journeys
        sizes.append(
            {
                "segment": name,
                "journeys": 0.0 if res is None else res.summary["journeys"],
                "conversions": conv,
                "shown": bool(shown),
            }
        )
        if shown:
            frames.append(res.credits.assign(segment=name))
    credits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(credits):
        credits = credits[["segment", *[c for c in credits.columns if c != "segment"]]]
    params = {"segment_column": column, "min_journeys": min_journeys, **options}
    params = {k: v for k, v in params.items() if k != "costs"}
    return SegmentAttribution(credits, pd.DataFrame(sizes), params)
