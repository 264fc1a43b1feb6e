"""Funnel engine expressions: one row per journey unit with the time each step was reached.

Everything here builds Ibis expressions (run by DuckDB or Spark, unchanged). The plan, per step,
is group-and-join: the units still in the funnel are joined to that step's events and the
earliest qualifying occurrence is kept (``min``), which beat a chain of window functions by ~3x
at 1e7 events. Only small tables leave the engine: counts by (entry step, furthest step,
status) and histograms of durations.

Unit table columns (:func:`unit_table`): ``customer_id`` (plus the hold key and, for journeys,
the entry time), ``entry_step`` (1-based), ``t_entry``, ``t_1 .. t_n`` (null when not reached),
``xt_2 .. xt_n`` (time of the exclusion event that ended the journey before that step),
``depth`` (last step reached, 0 when none) and ``status`` (``converted``, ``in_progress``,
``dropped``, ``excluded``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.funnels.chain import Chain, any_order, links, ordered
from cjlib.funnels.spec import FunnelSpec, Step

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "Prepared",
    "prepare",
    "chain",
    "unit_table",
    "customer_table",
    "status_counts",
    "STATUSES",
]

STATUSES = ("converted", "in_progress", "dropped", "excluded")
_RANK = {"in_progress": 3, "dropped": 2, "excluded": 1, "converted": 0}


@dataclass
class Prepared:
    """The funnel's inputs inside the engine: matched step rows, exclusion rows, keys, as_of."""

    spec: FunnelSpec
    engine: Engine
    events: Any  # ir.Table: the events (with stage columns when a step names a stage)
    matches: Any  # ir.Table: customer_id, [hold], ts, [seq], k
    exclusions: Any  # ir.Table | None: customer_id, [hold], ts, x (exclusion index)
    as_of: pd.Timestamp
    overlap: tuple[bool, ...]  # overlap[k-2]: step k can be the same event as step k-1
    # same_as[k-2]: the latest step before k-1 that can be the same event as step k (or None)
    same_as: tuple[int | None, ...] = ()
    step_rows: list = field(default_factory=list)  # [k-1]: step k's rows: customer_id, [hold], ts
    kept: list = field(default_factory=list)  # intermediate tables held in the engine

    def keep(self, expr: Any) -> Any:
        """Compute ``expr`` once in the engine (each funnel step reads the previous step's units
        twice; without this the plan would recompute earlier steps)."""
        table = self.engine.materialize(expr, prefix="cjlib_funnel")
        self.kept.append(table)
        return table

    def open_after(self, seconds: int) -> Any:
        """``as_of - seconds``: a follow-up of ``seconds`` from a later time is still open at the
        data end (``t + gap > as_of  <=>  t > as_of - gap``, exact: one literal instead of a
        sum per row)."""
        return (self.as_of - pd.Timedelta(seconds=seconds)).to_pydatetime()

    def release(self) -> None:
        while self.kept:
            self.engine.release(self.kept.pop())

    @property
    def side(self) -> list[str]:
        """Columns a unit shares with its events (customer, hold key)."""
        return ["customer_id"] + ([self.spec.hold] if self.spec.hold else [])

    @property
    def keys(self) -> list[str]:
        return self.side + (["t_entry"] if self.spec.count == "journeys" else [])


def _predicate(t: ir.Table, step: Step, stages: Any) -> Any:
    if step.stage is not None:
        return t.stage_index == stages.index(step.stage)
    return t.event.isin(list(step.events))


def _check_events(names: pd.Series, steps: list[Step], where: str) -> None:
    known = set(names.dropna())
    for step in steps:
        missing = [e for e in step.events if e not in known]
        if missing:
            close = difflib.get_close_matches(missing[0], sorted(known), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"{where}: event {missing[0]!r} does not occur in the events "
                f"({len(known)} distinct event names){hint}"
            )


def prepare(events: Any, spec: FunnelSpec, *, engine: Engine | None = None) -> Prepared:
    """Resolve the steps against the data and build the matched-rows expressions."""
    import ibis

    from cjlib.journeys import with_stages

    t, engine = as_table(events, engine)
    everything = list(spec.steps) + [s for s, _, _ in spec.exclude]
    if any(s.stage is not None for s in everything):
        t = with_stages(events, spec.stages, engine=engine)
    if spec.hold is not None and spec.hold not in t.columns:
        raise ValueError(
            f"hold: column {spec.hold!r} is not in the events; columns are {list(t.columns)}"
        )
    sig_cols = ["event"] + (["stage_index"] if "stage_index" in t.columns else [])
    # one scan: the distinct (event[, stage]) signatures and, per signature, the last timestamp
    # (their maximum is the data end when as_of is not given)
    sigs = engine.to_pandas(t.group_by(sig_cols).aggregate(_last=t.timestamp.max()))
    _check_events(sigs["event"], list(spec.steps), "steps")
    _check_events(sigs["event"], [s for s, _, _ in spec.exclude], "exclude")
    # which steps each distinct (event[, stage]) matches, evaluated in pandas on the small table
    hits = []
    for step in spec.steps:
        if step.stage is not None:
            hits.append(sigs["stage_index"] == spec.stages.index(step.stage))
        else:
            hits.append(sigs["event"].isin(step.events))
    overlap = tuple(bool((hits[k] & hits[k - 1]).any()) for k in range(1, spec.n_steps))
    same_as = tuple(
        max((j + 1 for j in range(k - 1) if (hits[k] & hits[j]).any()), default=None)
        for k in range(1, spec.n_steps)
    )
    if spec.mode == "any_order":  # one event would count for two steps: refused, not guessed
        for k in range(1, spec.n_steps):
            for j in range(k):
                both = sigs["event"][hits[k] & hits[j]]
                if len(both):
                    a, b = spec.steps[j].label, spec.steps[k].label
                    raise ValueError(
                        f"steps: {a!r} and {b!r} both match event {both.iloc[0]!r}; in "
                        "mode='any_order' every step needs events of its own (one event cannot "
                        "count for two steps); use mode='closed' or 'open', or separate the steps"
                    )

    cols = {"customer_id": t.customer_id, "ts": t.timestamp}
    if spec.hold:
        t = t.filter(t[spec.hold].notnull())
        cols[spec.hold] = t[spec.hold]
    if spec.strict:
        # ties: timestamp, then event name, then the hold key (rows equal in all three are
        # interchangeable), so the numbering never depends on the rows' order
        tie = ["timestamp", "event"] + ([spec.hold] if spec.hold else [])
        order = ibis.window(group_by="customer_id", order_by=tie)
        t = t.mutate(_seq=ibis.row_number().over(order))
        cols["seq"] = t._seq
    preds = [_predicate(t, s, spec.stages) for s in spec.steps]
    primary = ibis.cases(*[(p, k + 1) for k, p in enumerate(preds)], else_=ibis.null("int64"))
    any_step = preds[0]
    for p in preds[1:]:
        any_step = any_step | p
    base = t.filter(any_step)
    parts = [base.select(**{n: base[_src(n, spec)] for n in cols}, k=primary.cast("int64"))]
    for k in range(2, spec.n_steps + 1):
        earlier = [hits[j] for j in range(k - 1)]
        if any(bool((hits[k - 1] & h).any()) for h in earlier):
            also = preds[k - 1]
            before = preds[0]
            for p in preds[1 : k - 1]:
                before = before | p
            extra = t.filter(also & before)
            parts.append(extra.select(**{n: extra[_src(n, spec)] for n in cols},
                                      k=ibis.literal(k, "int64")))  # fmt: skip
    matches = parts[0]
    for p in parts[1:]:
        matches = matches.union(p)
    exclusions = None
    if spec.exclude:
        xpreds = [_predicate(t, s, spec.stages) for s, _, _ in spec.exclude]
        xidx = ibis.cases(*[(p, i) for i, p in enumerate(xpreds)], else_=ibis.null("int64"))
        rows = t.filter(xidx.notnull())
        exclusions = rows.select(**{n: rows[_src(n, spec)] for n in cols}, x=xidx.cast("int64"))
    if spec.as_of is not None:
        as_of = spec.as_of
    else:
        as_of = pd.Timestamp(sigs["_last"].max())
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    # each step's rows straight from the events (the filter is pushed into the scan); all of
    # step k's matches are exactly the events its predicate selects
    step_rows = [t.filter(p).select(**{n: t[_src(n, spec)] for n in cols}) for p in preds]
    prep = Prepared(
        spec, engine, t, matches, exclusions, as_of, overlap, same_as, step_rows=step_rows
    )
    if spec.strict:  # the row numbers come from a window over all events: compute them once
        prep.matches = prep.keep(matches)
        prep.step_rows = [
            prep.matches.filter(prep.matches.k == k) for k in range(1, len(preds) + 1)
        ]
    if exclusions is not None:
        prep.exclusions = prep.keep(exclusions)
    return prep


def _src(name: str, spec: FunnelSpec) -> str:
    return {"ts": "timestamp", "seq": "_seq"}.get(name, name)


def _in_period(ts: Any, spec: FunnelSpec) -> Any:
    import ibis

    start, end = spec.period
    cond = ibis.literal(True)
    if start is not None:
        cond = cond & (ts >= start.to_pydatetime())
    if end is not None:
        cond = cond & (ts < end.to_pydatetime())
    return cond


def _entries(prep: Prepared) -> ir.Table:
    """One row per unit: keys, ``t_entry``, ``entry_step`` (and ``seq_entry``, ``t_next``)."""
    import ibis

    spec, m = prep.spec, prep.matches
    side = prep.side
    strict = {"seq_entry": m.seq.min()} if spec.strict else {}
    if spec.count == "journeys":
        m1 = prep.step_rows[0]
        first = m1.filter(_in_period(m1.ts, spec))
        strict = {"seq_entry": first.seq.min()} if spec.strict else {}
        e = first.group_by([*side, "ts"]).aggregate(**strict).rename(t_entry="ts")
        # the journey runs until the next entry (entries outside the period still end one)
        allfirst = m1.group_by([*side, "ts"]).aggregate()
        nxt = allfirst.mutate(
            t_next=allfirst.ts.lead().over(ibis.window(group_by=side, order_by="ts"))
        ).rename(t_entry="ts")
        e = e.left_join(nxt, [*side, "t_entry"]).select(*e.columns, "t_next")
        return e.mutate(entry_step=ibis.literal(1, "int64"))
    pool = m if spec.mode != "closed" else prep.step_rows[0]
    if spec.entry == "first_in_period":
        pool = pool.filter(_in_period(pool.ts, spec))
    e = pool.group_by(side).aggregate(t_entry=pool.ts.min())
    if spec.entry == "first":
        e = e.filter(_in_period(e.t_entry, spec))
    if spec.mode == "any_order":
        return e.mutate(entry_step=ibis.literal(1, "int64"))
    if spec.mode == "closed":
        if spec.strict:
            s = prep.step_rows[0]
            e = (
                e.join(s, [*side, e.t_entry == s.ts])
                .group_by([*side, "t_entry"])
                .aggregate(seq_entry=s.seq.min())
            )
        return e.mutate(entry_step=ibis.literal(1, "int64"))
    at = e.join(m, [*side, e.t_entry == m.ts])
    return at.group_by([*side, "t_entry"]).aggregate(
        entry_step=m.k.min().cast("int64"), **({"seq_entry": m.seq.min()} if spec.strict else {})
    )


def _status(prep: Prepared, w: ir.Table) -> ir.Table:
    import ibis

    spec, n = prep.spec, prep.spec.n_steps
    reached = sum(w[f"t_{k}"].notnull().cast("int64") for k in range(1, n + 1))
    depth = reached if spec.mode == "any_order" else w.entry_step - 1 + reached
    w = w.mutate(depth=depth.cast("int64"))
    cases = [(w.depth >= n, "converted")]
    first = 1 if spec.mode == "any_order" else 2
    for k in range(first, n + 1):  # status at the step after the last one reached
        xt = f"xt_{k}"
        if xt in w.columns:
            cases.append(((w.depth == k - 1) & w[xt].notnull(), "excluded"))
        if spec.window is None:
            continue
        open_ = w.t_entry > prep.open_after(spec.window)
        if spec.count == "journeys":  # the customer's next entry ends the journey
            open_ = open_ & (w.t_next.isnull() | (w.t_next > prep.open_after(0)))
        hi = spec.max_gap[k - 2] if k >= 2 else None
        if hi is not None:
            open_ = open_ & (w[f"t_{k - 1}"] > prep.open_after(hi))
        cases.append(((w.depth == k - 1) & open_, "in_progress"))
    return w.mutate(status=ibis.cases(*cases, else_="dropped"))


def chain(prep: Prepared) -> Chain:
    """The ordered chain's links (closed and open modes), for :mod:`cjlib.funnels.tally`."""
    return links(prep, prep.keep(_entries(prep)))


def unit_table(prep: Prepared) -> ir.Table:
    """One row per journey unit (see the module doc)."""
    e = prep.keep(_entries(prep))
    w = any_order(prep, e) if prep.spec.mode == "any_order" else ordered(prep, e)
    return _status(prep, w)


def customer_table(prep: Prepared, units: ir.Table) -> ir.Table:
    """Units reduced to the counted rows: with a hold key and unique customers, each customer's
    furthest attempt (then the earliest entry step, then in progress before dropped before
    excluded); otherwise the units themselves. Columns: keys, entry_step, depth, status,
    t_entry."""
    import ibis

    spec = prep.spec
    if spec.hold is None or spec.count == "journeys":
        return units
    rank = ibis.cases(*[(units.status == s, r) for s, r in _RANK.items()], else_=0)
    score = units.depth * 1000 + (100 - units.entry_step) * 4 + rank
    per = units.group_by("customer_id").aggregate(score=score.max(), t_entry=units.t_entry.min())
    status = ibis.cases(*[(per.score % 4 == r, s) for s, r in _RANK.items() if r], else_="")
    depth = (per.score // 1000).cast("int64")
    return per.mutate(
        depth=depth,
        entry_step=(100 - (per.score % 1000) // 4).cast("int64"),
        status=ibis.ifelse(depth >= spec.n_steps, "converted", status),
    ).drop("score")


def status_counts(rows: ir.Table, by: list[str] | None = None) -> ir.Table:
    """``[by..., entry_step, depth, status, n]``: the small table every summary is built from."""
    cols = [*(by or []), "entry_step", "depth", "status"]
    return rows.group_by(cols).aggregate(n=rows.count())
