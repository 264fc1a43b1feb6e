"""Events -> stages, stage steps, sequences, paths and transitions (engine expressions).

Journeys are not linear: customers go back and forth. Everything here works on *stage steps*:
each customer's events mapped to stages by a :class:`~cjlib.stages.StageModel`, ordered by time
(ties broken by stage order, then event name, so every engine gives the same order), with
consecutive repeats of a stage collapsed into one step unless ``collapse=False``.

From the steps come:

- :func:`stage_sequences`: each customer's stage path, furthest stage and regressions;
- :func:`stage_paths`: the distinct stage paths with their counts;
- :func:`stage_transitions`: counts of every (from stage -> to stage) move, with ``(start)`` and
  ``(end)``, each classed as progression, skip, regression or repeat (moves from ``(start)`` and
  into ``(end)``: ``start`` and ``end``);
- :func:`furthest_stage`: how many customers got how far.

The reductions run in the engine (DuckDB or Spark) and only small tables come back, except
:func:`stage_sequences`, which returns one row per customer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.stage_mapping import _mapped, _model, with_stages
from cjlib.stages import StageModel
from cjlib.stats import wilson_interval

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "with_stages",
    "stage_steps",
    "stage_sequences",
    "stage_paths",
    "stage_transitions",
    "describe_journeys",
    "furthest_stage",
    "stage_coverage",
    "START",
    "END",
]

START, END = "(start)", "(end)"
_ORDER = ("timestamp", "stage_index", "event")


def stage_steps(
    events: Any,
    stages: StageModel | None = None,
    *,
    collapse: bool = True,
    engine: Engine | None = None,
) -> ir.Table:
    """One row per stage step: ``customer_id, timestamp, event, stage, stage_index, step,
    prev_index, next_index``; unmapped events are left out. ``step`` counts from 1 within each
    customer; ``prev_index``/``next_index`` are null at the first/last step."""
    import ibis

    t = _mapped(events, _model(stages), engine).select(
        "customer_id", "timestamp", "event", "stage", "stage_index"
    )
    window = ibis.window(group_by="customer_id", order_by=list(_ORDER))
    if collapse:
        t = t.mutate(prev_index=t.stage_index.lag().over(window))
        t = t.filter(t.prev_index.isnull() | (t.prev_index != t.stage_index)).drop("prev_index")
    window = ibis.window(group_by="customer_id", order_by=list(_ORDER))
    return t.mutate(
        step=(ibis.row_number().over(window) + 1).cast("int64"),
        prev_index=t.stage_index.lag().over(window),
        next_index=t.stage_index.lead().over(window),
    )


def _customer_paths(steps: ir.Table) -> ir.Table:
    """Per customer: ``path`` ('a > b > c'), ``n_steps``, ``furthest_index``, ``regressions``."""
    # ordered string aggregation is not portable (Spark has no ORDER BY in collect), so each step
    # is keyed by its zero-padded number, the array is sorted, and the keys are stripped again
    key = steps.step.cast("string").lpad(9, "0") + "|" + steps.stage
    regression = steps.prev_index.notnull() & (steps.stage_index < steps.prev_index)
    per = steps.group_by("customer_id").aggregate(
        keys=key.collect(),
        n_steps=steps.count(),
        furthest_index=steps.stage_index.max(),
        regressions=regression.cast("int64").sum(),
    )
    path = per.keys.sort().join(" > ").re_replace(r"[0-9]{9}\|", "")
    return per.mutate(path=path).drop("keys")


def stage_sequences(
    events: Any,
    stages: StageModel | None = None,
    *,
    collapse: bool = True,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Each customer's stage path: ``customer_id, path, n_steps, furthest_stage, regressions``.

    One row per customer with at least one mapped event, sorted by ``customer_id``.
    """
    model = _model(stages)
    steps = stage_steps(events, model, collapse=collapse, engine=engine)
    _, engine = as_table(events, engine)
    out = engine.to_pandas(_customer_paths(steps).order_by("customer_id"))
    out["furthest_stage"] = [model.stages[int(i)] for i in out.pop("furthest_index")]
    out["n_steps"] = out["n_steps"].astype("int64")
    out["regressions"] = out["regressions"].astype("int64")
    return out[["customer_id", "path", "n_steps", "furthest_stage", "regressions"]].reset_index(
        drop=True
    )


def stage_paths(
    events: Any,
    stages: StageModel | None = None,
    *,
    top: int | None = 20,
    min_customers: int = 1,
    collapse: bool = True,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """The most common stage paths: ``path, customers, share, share_low, share_high``.

    ``share`` = customers with that exact path / customers with at least one mapped event, with a
    Wilson interval. Most common first, equally common paths by path name; ``top=None``
    returns every path. Paths taken by fewer than
    ``min_customers`` customers are left out (privacy: reports show no small groups).
    """
    if top is not None and (not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive int or None, got {top!r}")
    if not isinstance(min_customers, int) or min_customers < 1:
        raise ValueError(f"min_customers must be an int >= 1, got {min_customers!r}")
    model = _model(stages)
    steps = stage_steps(events, model, collapse=collapse, engine=engine)
    _, engine = as_table(events, engine)
    per = _customer_paths(steps)
    counts = per.group_by("path").aggregate(customers=per.count())
    total = int(engine.to_pandas(per.count()))
    counts = counts.filter(counts.customers >= min_customers)
    counts = counts.order_by([counts.customers.desc(), counts.path])
    out = engine.to_pandas(counts.limit(top) if top else counts)
    out["customers"] = out["customers"].astype("int64")
    out["share"] = out["customers"] / total
    out["share_low"], out["share_high"] = wilson_interval(
        out["customers"], total, confidence=confidence
    )
    return out.reset_index(drop=True)


def _kind(src: int | None, dst: int | None) -> str:
    if src is None:
        return "start"
    if dst is None:
        return "end"
    if dst == src:
        return "repeat"
    if dst == src + 1:
        return "progression"
    return "skip" if dst > src else "regression"


def stage_transitions(
    events: Any,
    stages: StageModel | None = None,
    *,
    collapse: bool = True,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Counts of every stage-to-stage move, including ``(start)`` and ``(end)``.

    Columns: ``from_stage, to_stage, kind, transitions, customers, share, share_low, share_high``.
    ``share`` = transitions from ``from_stage`` to ``to_stage`` / all transitions out of
    ``from_stage`` (ends included, so each row of the matrix sums to 1), with a Wilson interval.
    ``customers`` counts distinct customers who made the move at least once.
    """
    import ibis

    model = _model(stages)
    steps = stage_steps(events, model, collapse=collapse, engine=engine)
    _, engine = as_table(events, engine)
    moves = steps.group_by(["prev_index", "stage_index"]).aggregate(
        transitions=steps.count(), customers=steps.customer_id.nunique()
    )
    last = steps.filter(steps.next_index.isnull())
    ends = (
        last.group_by("stage_index")
        .aggregate(transitions=last.count(), customers=last.customer_id.nunique())
        .mutate(to_index=ibis.null("int64"))
        .rename(prev_index="stage_index")
    )
    moves = moves.rename(to_index="stage_index")
    table = engine.to_pandas(moves.union(ends.select(moves.columns)))
    names = list(model.stages)

    def label(i: Any, edge: str) -> str:
        return edge if pd.isna(i) else names[int(i)]

    table["kind"] = [
        _kind(None if pd.isna(a) else int(a), None if pd.isna(b) else int(b))
        for a, b in zip(table.prev_index, table.to_index, strict=True)
    ]
    table["from_stage"] = [label(i, START) for i in table.prev_index]
    table["to_stage"] = [label(i, END) for i in table.to_index]
    order = {s: i for i, s in enumerate([START, *names, END])}
    table = table.sort_values(["from_stage", "to_stage"], key=lambda c: c.map(order))
    table["transitions"] = table["transitions"].astype("int64")
    table["customers"] = table["customers"].astype("int64")
    out_of = table.groupby("from_stage")["transitions"].transform("sum")
    table["share"] = table["transitions"] / out_of
    table["share_low"], table["share_high"] = wilson_interval(
        table["transitions"], out_of, confidence=confidence
    )
    cols = [
        "from_stage",
        "to_stage",
        "kind",
        "transitions",
        "customers",
        "share",
        "share_low",
        "share_high",
    ]
    return table[cols].reset_index(drop=True)


def furthest_stage(
    events: Any,
    stages: StageModel | None = None,
    *,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """How far customers got: one row per stage.

    Columns: ``stage, customers`` (whose furthest stage is this one), ``share`` of customers with
    at least one mapped event, ``reached`` (customers whose furthest stage is this or later) and
    ``reached_share``; both shares with Wilson intervals. Regressions do not lower the furthest
    stage: it is the maximum stage ever reached.
    """
    model = _model(stages)
    t = _mapped(events, model, engine)
    _, engine = as_table(events, engine)
    per = t.group_by("customer_id").aggregate(furthest_index=t.stage_index.max())
    counts = engine.to_pandas(per.group_by("furthest_index").aggregate(customers=per.count()))
    by_index = dict(
        zip(counts.furthest_index.astype(int), counts.customers.astype(int), strict=True)
    )
    out = pd.DataFrame(
        {
            "stage": list(model.stages),
            "customers": [by_index.get(i, 0) for i in range(len(model.stages))],
        }
    )
    total = int(out["customers"].sum())
    out["share"] = out["customers"] / total if total else float("nan")
    out["share_low"], out["share_high"] = wilson_interval(
        out["customers"], total, confidence=confidence
    )
    out["reached"] = out["customers"][::-1].cumsum()[::-1].astype("int64")
    out["reached_share"] = out["reached"] / total if total else float("nan")
    out["reached_low"], out["reached_high"] = wilson_interval(
        out["reached"], total, confidence=confidence
    )
    return out


def stage_coverage(
    events: Any, stages: StageModel | None = None, *, engine: Engine | None = None
) -> pd.DataFrame:
    """Every event name with its count, customers and mapped stage (``None`` when unmapped).

    Sorted by count; read it to see which events the stage model leaves out.
    """
    t = with_stages(events, stages, engine=engine)
    _, engine = as_table(events, engine)
    counts = t.group_by(["event", "stage"]).aggregate(
        events=t.count(), customers=t.customer_id.nunique()
    )
    out = engine.to_pandas(counts.order_by([counts.events.desc(), counts.event]))
    out["events"] = out["events"].astype("int64")
    out["customers"] = out["customers"].astype("int64")
    out["share_of_events"] = out["events"] / out["events"].sum()
    return out.reset_index(drop=True)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def describe_journeys(
    furthest: pd.DataFrame, transitions: pd.DataFrame, paths: pd.DataFrame | None = None
) -> list[str]:
    """Plain-language findings from :func:`furthest_stage`, :func:`stage_transitions` and
    (optionally) :func:`stage_paths`. Every share is stated with its denominator and interval."""
    total = int(furthest["customers"].sum())
    if total == 0:
        return ["No customer has an event that the stage model maps to a stage."]
    lines = []
    for _, row in furthest.iloc[1:].iterrows():
        lines.append(
            f"{_pct(row.reached_share)} of the {total:,} customers with a mapped event reached "
            f"{row.stage} or a later stage (95 % CI {_pct(row.reached_low)} to "
            f"{_pct(row.reached_high)})."
        )
    reached = furthest.set_index("stage")["reached"]
    stages = list(furthest["stage"])
    seen = set(transitions["from_stage"]) | set(transitions["to_stage"])
    untracked = [s for s in stages[:-1] if s not in seen and reached[s]]
    if untracked:  # "reached" counts customers at or past a stage, events there or not
        lines.append(
            f"No event maps to {', '.join(untracked)}: customers past it are counted as having "
            "reached it, so its drop-off is not measured."
        )
    for a, b in zip(stages[:2], stages[1:3], strict=False):
        if reached[a] and a not in untracked:
            lost = 1 - reached[b] / reached[a]
            lines.append(
                f"Between {a} and {b}, {_pct(lost)} of the {int(reached[a]):,} customers "
                f"who reached {a} never got further."
            )
    moves = transitions[~transitions["from_stage"].isin([START]) & (transitions["to_stage"] != END)]
    back = moves[moves["kind"] == "regression"]
    if len(moves):
        n_back, n_moves = int(back["transitions"].sum()), int(moves["transitions"].sum())
        lines.append(
            f"{_pct(n_back / n_moves)} of the {n_moves:,} stage-to-stage moves go back to an "
            "earlier stage: journeys are not linear."
            if n_back
            else f"None of the {n_moves:,} stage-to-stage moves goes back to an earlier stage."
        )
    if paths is not None and len(paths):
        top = paths.iloc[0]
        lines.append(
            f"The most common stage path is '{top.path}' ({int(top.customers):,} "
            f"customers, {_pct(top.share)})."
        )
    return lines
