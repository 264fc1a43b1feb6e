"""Segment breakdowns of a funnel: each segment compared with the rest, multiplicity-corrected.

Segment sources (each an engine table ``customer_id, segment``):

- :func:`attribute_segments`: a column of the customers table (region, device, ...);
- :func:`first_channel_segments`: the channel of each customer's first event with a channel;
- :func:`variant_segments`: the variant of one experiment (experiments table);
- :func:`persona_segments`: a persona assignment file ``customer_id,persona`` (CSV, Parquet or a
  DataFrame), as the persona notebook writes it.

:func:`funnel_segments` computes the funnel once, counts statuses per segment in the engine, and
for every step (2..n) and for the whole funnel compares the segment's conversion with everyone
else's: pooled two-proportion z test, p-values adjusted over all comparisons in the table (Holm by
default, Benjamini-Hochberg on request), difference with Newcombe's interval. Customers with no
segment value form ``(none)``. Segments with fewer entrants than ``min_size`` are suppressed:
their numbers (and their rest's rate, which with the whole funnel would give theirs back) are
blank and they are not tested (they stay in "the rest" of the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.funnels.core import TestedTable, computed_units, records, resolve_spec
from cjlib.funnels.inference import adjust, newcombe_interval, two_proportion_test
from cjlib.funnels.summary import step_table

__all__ = [
    "SegmentResult",
    "funnel_segments",
    "attribute_segments",
    "first_channel_segments",
    "variant_segments",
    "persona_segments",
    "segment_source",
    "NONE",
]

NONE = "(none)"


def attribute_segments(customers: Any, column: str, *, engine: Engine | None = None):
    """``customer_id, segment`` from a column of the customers table."""
    t, _ = as_table(customers, engine)
    if column not in t.columns:
        raise ValueError(f"column: {column!r} is not in the customers table; columns are "
                         f"{[c for c in t.columns if c != 'customer_id']}")  # fmt: skip
    return t.select("customer_id", segment=t[column].cast("string"))


def first_channel_segments(events: Any, *, engine: Engine | None = None):
    """``customer_id, segment``: the channel of the customer's first event with a channel (ties at
    the same timestamp: the alphabetically first channel)."""
    t, _ = as_table(events, engine)
    if "channel" not in t.columns:
        raise ValueError(
            "segment_by='first_channel' needs a channel column in the events; their columns "
            f"are {list(t.columns)}"
        )
    t = t.filter(t.channel.notnull() & (t.channel != ""))
    first = t.group_by("customer_id").aggregate(first=t.timestamp.min())
    j = t.join(first, ["customer_id", t.timestamp == first.first])
    return j.group_by("customer_id").aggregate(segment=j.channel.min())


def variant_segments(
    experiments: Any, *, experiment: str | None = None, engine: Engine | None = None
):
    """``customer_id, segment``: the variant each customer was assigned in ``experiment`` (may be
    omitted when the table holds a single experiment)."""
    t, eng = as_table(experiments, engine)
    names = sorted(eng.to_pandas(t.select("experiment").distinct())["experiment"].dropna())
    if experiment is None:
        if len(names) != 1:
            raise ValueError(f"experiment: the table holds {len(names)} experiments {names}; "
                             "name one")  # fmt: skip
        experiment = names[0]
    if experiment not in names:
        raise ValueError(f"experiment must be one of {names}, got {experiment!r}")
    t = t.filter(t.experiment == experiment)
    return t.group_by("customer_id").aggregate(segment=t.variant.cast("string").min())


def persona_segments(source: Any, *, engine: Engine | None = None):
    """``customer_id, segment`` from a persona file with columns ``customer_id,persona``."""
    t, _ = as_table(source, engine)
    missing = {"customer_id", "persona"} - set(t.columns)
    if missing:
        raise ValueError(f"persona file must have columns customer_id and persona, missing "
                         f"{sorted(missing)}; found {list(t.columns)}")  # fmt: skip
    return t.select(customer_id=t.customer_id.cast("string"), segment=t.persona.cast("string"))


@dataclass(frozen=True)
class SegmentResult(TestedTable):
    """``table``: one row per (segment, step) with the segment's and the rest's conversion from
    the previous step (step ``0`` = the whole funnel: last step / entrants whose outcome is
    decided, in-progress units left out as in the funnel table), their difference
    with a Newcombe interval, the test's p-value and the adjusted p-value; ``sizes``: entrants
    per segment and whether it was suppressed."""

    table: pd.DataFrame
    sizes: pd.DataFrame
    by: str
    adjust: str
    min_size: int
    alpha: float

    def to_dict(self) -> dict:
        return {"by": self.by, "adjust": self.adjust, "min_size": self.min_size,
                "alpha": self.alpha, "table": records(self.table),
                "sizes": records(self.sizes)}  # fmt: skip


def _rates(counts: pd.DataFrame, spec, confidence: float) -> pd.DataFrame:
    steps = step_table(counts, spec, confidence=confidence)
    last = steps.iloc[-1]
    whole = {"step": 0, "label": "whole funnel", "x": last["customers"],
             "n": last["denominator_from_start"]}  # fmt: skip
    rows = [whole] + [
        {"step": int(r.step), "label": r.label, "x": int(r.continued), "n": int(r.denominator)}
        for r in steps.itertuples()
        if r.step > 1
    ]
    return pd.DataFrame(rows)


def funnel_segments(
    events: Any,
    steps: Any,
    segments: Any,
    *,
    by: str = "segment",
    missing: str = "keep",
    min_size: int = 10,
    adjust_method: str = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
    engine: Engine | None = None,
    **options: Any,
) -> SegmentResult:
    """The funnel ``steps`` (a list with funnel ``options``, a FunnelSpec or a FunnelResult)
    broken down by ``segments`` (``customer_id, segment`` as from the ``*_segments`` helpers,
    or any table with ``customer_id`` and one more column). ``by`` names the breakdown in
    reports; ``missing``: customers without a segment form ``(none)`` (``keep``, default) or are
    left out (``drop``, e.g. customers never assigned to an experiment); ``adjust_method``:
    ``holm`` (default), ``bh`` or ``none``."""
    import ibis

    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an int >= 1, got {min_size!r}")
    if missing not in ("keep", "drop"):
        raise ValueError(f"missing must be 'keep' or 'drop', got {missing!r}")
    adjust(np.array([]), adjust_method)  # validates the name early
    spec = resolve_spec(steps, options)
    _, eng = as_table(events, engine)
    seg, _ = as_table(segments, eng)
    others = [c for c in seg.columns if c != "customer_id"]
    if "customer_id" not in seg.columns or len(others) != 1:
        raise ValueError(f"segments must have customer_id and one segment column, got "
                         f"{list(seg.columns)}")  # fmt: skip
    seg = seg.select("customer_id", segment=seg[others[0]].cast("string"))
    if missing == "drop":  # a null value is no segment, as is no row
        seg = seg.filter(seg.segment.notnull())
    dup = eng.to_pandas(seg.count() - seg.customer_id.nunique())
    if int(dup):
        raise ValueError(f"segments: {int(dup)} customers appear more than once; give one "
                         "segment per customer")  # fmt: skip
    with computed_units(events, spec, eng) as (_, _, counted):
        j = counted.join(seg, "customer_id", how="inner" if missing == "drop" else "left")
        j = j.mutate(segment=j.segment.fill_null(ibis.literal(NONE)))
        cols = ["segment", "entry_step", "depth", "status"]
        counts = eng.to_pandas(j.group_by(cols).aggregate(n=j.count()))
    counts["n"] = counts["n"].astype("int64")
    sizes = counts.groupby("segment")["n"].sum().rename("entrants").reset_index()
    sizes["suppressed"] = sizes["entrants"] < min_size
    sizes = sizes.sort_values("entrants", ascending=False).reset_index(drop=True)
    keys = ["entry_step", "depth", "status"]
    base = counts.groupby(keys, as_index=False)["n"].sum()
    rows = []
    for name, size_row in sizes.set_index("segment").iterrows():
        mine = counts[counts.segment == name].drop(columns="segment")
        merged = base.merge(mine, on=keys, how="left",
                            suffixes=("", "_seg")).fillna({"n_seg": 0})  # fmt: skip
        rest = merged.assign(n=merged["n"] - merged["n_seg"]).drop(columns="n_seg")
        a, b = _rates(mine, spec, confidence), _rates(rest, spec, confidence)
        a = a.merge(b[["step", "x", "n"]], on="step", suffixes=("", "_rest"))
        a.insert(0, by, name)
        a["suppressed"] = bool(size_row["suppressed"])
        rows.append(a)
    table = pd.concat(rows, ignore_index=True)
    x, n, xr, nr = (table[c].astype(float) for c in ("x", "n", "x_rest", "n_rest"))
    sup = table["suppressed"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["conversion"] = np.where(n > 0, x / n, np.nan)
        table["rest_conversion"] = np.where(nr > 0, xr / nr, np.nan)
    from cjlib.stats import wilson_interval

    table["conversion_low"], table["conversion_high"] = wilson_interval(x, n, confidence=confidence)
    table["difference"] = table["conversion"] - table["rest_conversion"]
    table["difference_low"], table["difference_high"] = newcombe_interval(
        x, n, xr, nr, confidence=confidence
    )
    p = two_proportion_test(x, n, xr, nr)
    p = np.where(sup, np.nan, p)
    table["p_value"] = p
    table["p_adjusted"] = adjust(p, adjust_method)
    # the rest's rate too: with the whole funnel's counts it would give the segment's back
    numeric = ["x", "n", "conversion", "conversion_low", "conversion_high", "rest_conversion",
               "difference", "difference_low", "difference_high"]  # fmt: skip
    table.loc[sup, numeric] = np.nan
    table = table.rename(columns={"x": "converted", "n": "denominator"})
    table[["converted", "denominator"]] = table[["converted", "denominator"]].astype("Int64")
    table["significant"] = table["p_adjusted"] < alpha
    sizes = sizes.rename(columns={"segment": by})
    sizes.loc[sizes["suppressed"], "entrants"] = pd.NA
    return SegmentResult(table.drop(columns=["x_rest", "n_rest"]), sizes, by, adjust_method,
                         min_size, alpha)  # fmt: skip


def segment_source(
    segment_by: str,
    *,
    events: Any,
    customers: Any = None,
    experiments: Any = None,
    persona: Any = None,
    experiment: str | None = None,
    engine: Engine | None = None,
):
    """The segment table for a notebook's ``segment_by``: ``first_channel``, ``variant``
    (needs ``experiments``), ``persona`` (needs a ``persona`` file) or a customers column."""
    if not isinstance(segment_by, str) or not segment_by:
        raise ValueError(f"segment_by must name a breakdown, got {segment_by!r}")
    if segment_by == "first_channel":
        return first_channel_segments(events, engine=engine)
    if segment_by == "variant":
        if experiments is None:
            raise ValueError("segment_by='variant' needs the experiments table (experiments_path)")
        return variant_segments(experiments, experiment=experiment or None, engine=engine)
    if segment_by == "persona":
        if persona is None or persona == "":
            raise ValueError("segment_by='persona' needs a persona file (persona_path)")
        return persona_segments(persona, engine=engine)
    if customers is None:
        raise ValueError(
            f"segment_by={segment_by!r} is read as a customers column, but no customers table "
            "was given; use first_channel, variant, persona or give customers_path"
        )
    return attribute_segments(customers, segment_by, engine=engine)
