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
from cjlib.funnels.spec import FunnelSpec, Step

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["Prepared", "prepare", "unit_table", "customer_table", "status_counts", "STATUSES"]

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
    kept: list = field(default_factory=list)  # intermediate tables held in the engine

    def keep(self, expr: Any) -> Any:
        """Compute ``expr`` once in the engine (each funnel step reads the previous step's units
        twice; without this the plan would recompute earlier steps)."""
        table = self.engine.materialize(expr, prefix="cjlib_funnel")
        self.kept.append(table)
        return table

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
    sigs = engine.to_pandas(t.select(*sig_cols).distinct())
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

    cols = {"customer_id": t.customer_id, "ts": t.timestamp}
    if spec.hold:
        t = t.filter(t[spec.hold].notnull())
        cols[spec.hold] = t[spec.hold]
    if spec.strict:
        order = ibis.window(group_by="customer_id", order_by=["timestamp", "event"])
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
        raw, _ = as_table(events, engine)
        as_of = pd.Timestamp(engine.to_pandas(raw.timestamp.max()))
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    prep = Prepared(spec, engine, t, matches, exclusions, as_of, overlap)
    prep.matches = prep.keep(matches)
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
        first = m.filter((m.k == 1) & _in_period(m.ts, spec))
        e = first.group_by([*side, "ts"]).aggregate(**strict).rename(t_entry="ts")
        # the journey runs until the next entry (entries outside the period still end one)
        allfirst = m.filter(m.k == 1).group_by([*side, "ts"]).aggregate()
        nxt = allfirst.mutate(
            t_next=allfirst.ts.lead().over(ibis.window(group_by=side, order_by="ts"))
        ).rename(t_entry="ts")
        e = e.left_join(nxt, [*side, "t_entry"]).select(*e.columns, "t_next")
        return e.mutate(entry_step=ibis.literal(1, "int64"))
    pool = m if spec.mode != "closed" else m.filter(m.k == 1)
    if spec.entry == "first_in_period":
        pool = pool.filter(_in_period(pool.ts, spec))
    e = pool.group_by(side).aggregate(t_entry=pool.ts.min())
    if spec.entry == "first":
        e = e.filter(_in_period(e.t_entry, spec))
    if spec.mode == "any_order":
        return e.mutate(entry_step=ibis.literal(1, "int64"))
    if spec.mode == "closed":
        if spec.strict:
            s = m.filter(m.k == 1)
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


def _window_end(t_entry: Any, spec: FunnelSpec) -> Any:
    import ibis

    return t_entry + ibis.interval(seconds=spec.window) if spec.window is not None else None


def _ordered(prep: Prepared, e: ir.Table) -> ir.Table:
    """Closed and open modes: the greedy step-by-step chain of group-and-joins."""
    import ibis

    spec, m, keys = prep.spec, prep.matches, prep.keys
    w = e.mutate(t_1=ibis.ifelse(e.entry_step == 1, e.t_entry, ibis.null("timestamp")))
    if spec.strict:
        w = w.mutate(seq_1=ibis.ifelse(w.entry_step == 1, w.seq_entry, ibis.null("int64")))
    for k in range(2, spec.n_steps + 1):
        prev = w[f"t_{k - 1}"]
        carry = {"p_ts": prev, "p_entry": w.t_entry}
        if spec.strict:
            carry["p_seq"] = w[f"seq_{k - 1}"]
        if spec.count == "journeys":
            carry["p_next"] = w.t_next
        live = w.filter(prev.notnull()).select(*keys, **carry)
        s = m.filter(m.k == k)
        j = live.join(s, [live[c] == s[c] for c in prep.side])
        conds = [s.ts > j.p_ts if prep.overlap[k - 2] else s.ts >= j.p_ts]
        if spec.window is not None:
            conds.append(s.ts <= _window_end(j.p_entry, spec))
        lo = spec.min_gap[k - 2]
        if lo:
            conds.append(s.ts >= j.p_ts + ibis.interval(seconds=lo))
        if spec.strict:
            conds.append(s.seq == j.p_seq + 1)
        if spec.count == "journeys":
            conds.append(j.p_next.isnull() | (s.ts < j.p_next))
        j = j.filter(*conds)
        agg = {f"c_{k}": j.ts.min()}
        if spec.strict:
            agg[f"cs_{k}"] = j.seq.min()
        cand = j.group_by(keys).aggregate(**agg)
        w = w.left_join(cand, keys).select(*w.columns, *agg)
        hi = spec.max_gap[k - 2]
        if hi is not None:
            ck = w[f"c_{k}"]
            w = w.mutate(
                **{
                    f"c_{k}": ibis.ifelse(
                        ck <= w[f"t_{k - 1}"] + ibis.interval(seconds=hi), ck, None
                    )
                }
            )
        tk = w[f"c_{k}"]
        xs = [i for i, (_, a, b) in enumerate(spec.exclude) if a < k <= b]
        if xs:
            x = prep.exclusions.filter(prep.exclusions.x.isin(xs))
            jx = live.join(x, [live[c] == x[c] for c in prep.side])
            cond = [jx.ts > jx.p_ts]
            if spec.window is not None:
                cond.append(jx.ts <= _window_end(jx.p_entry, spec))
            if spec.count == "journeys":
                cond.append(jx.p_next.isnull() | (jx.ts < jx.p_next))
            xagg = jx.filter(*cond).group_by(keys).aggregate(**{f"xc_{k}": jx.ts.min()})
            w = w.left_join(xagg, keys).select(*w.columns, f"xc_{k}")
            tk, xc = w[f"c_{k}"], w[f"xc_{k}"]
            hit = xc.notnull() & (tk.isnull() | (xc < tk))
            w = w.mutate(**{f"xt_{k}": ibis.ifelse(hit, xc, None)})
            tk = ibis.ifelse(hit, None, tk)
        here = ibis.ifelse(w.entry_step == k, w.t_entry, None)
        new = {f"t_{k}": tk.coalesce(here)}
        if spec.strict:
            seq_here = ibis.ifelse(w.entry_step == k, w.seq_entry, None)
            new[f"seq_{k}"] = ibis.ifelse(tk.notnull(), w[f"cs_{k}"], None).coalesce(seq_here)
        w = w.mutate(**new)
        w = prep.keep(w.drop(*[c for c in w.columns if c.startswith(("c_", "cs_", "xc_"))]))
    return w


def _any_order(prep: Prepared, e: ir.Table) -> ir.Table:
    import ibis

    spec, m, keys = prep.spec, prep.matches, prep.keys
    j = e.join(m, [e[c] == m[c] for c in prep.side])
    conds = [j.ts >= j.t_entry]
    if spec.window is not None:
        conds.append(j.ts <= _window_end(j.t_entry, spec))
    j = j.filter(*conds)
    firsts = {f"f_{k}": ibis.ifelse(j.k == k, j.ts, None).min() for k in range(1, spec.n_steps + 1)}
    w = e.left_join(j.group_by(keys).aggregate(**firsts), keys).select(*e.columns, *firsts)
    reach = None
    done = {}
    for k in range(1, spec.n_steps + 1):
        f = w[f"f_{k}"]
        reach = (
            f
            if reach is None
            else ibis.ifelse(f.isnull() | reach.isnull(), None, ibis.greatest(reach, f))
        )
        done[f"t_{k}"] = reach
    w = w.mutate(**done).drop(*firsts)
    if spec.exclude:
        x = prep.exclusions
        jx = e.join(x, [e[c] == x[c] for c in prep.side])
        cond = [jx.ts > jx.t_entry]
        if spec.window is not None:
            cond.append(jx.ts <= _window_end(jx.t_entry, spec))
        xagg = jx.filter(*cond).group_by(keys).aggregate(xt=jx.ts.min())
        w = w.left_join(xagg, keys).select(*w.columns, "xt")
        cut = {}
        for k in range(1, spec.n_steps + 1):
            tk = w[f"t_{k}"]
            cut[f"t_{k}"] = ibis.ifelse(w.xt.notnull() & (w.xt <= tk), None, tk)
        w = w.mutate(**cut)
        w = w.mutate(**{f"xt_{k}": w.xt for k in range(1, spec.n_steps + 1)}).drop("xt")
    return w


def _status(prep: Prepared, w: ir.Table) -> ir.Table:
    import ibis

    spec, n = prep.spec, prep.spec.n_steps
    reached = sum(w[f"t_{k}"].notnull().cast("int64") for k in range(1, n + 1))
    depth = reached if spec.mode == "any_order" else w.entry_step - 1 + reached
    w = w.mutate(depth=depth.cast("int64"))
    as_of = prep.as_of.to_pydatetime()
    cases = [(w.depth >= n, "converted")]
    first = 1 if spec.mode == "any_order" else 2
    for k in range(first, n + 1):  # status at the step after the last one reached
        xt = f"xt_{k}"
        if xt in w.columns:
            cases.append(((w.depth == k - 1) & w[xt].notnull(), "excluded"))
        if spec.window is None:
            continue
        open_ = _window_end(w.t_entry, spec) > as_of
        hi = spec.max_gap[k - 2] if k >= 2 else None
        if hi is not None:
            open_ = open_ & (w[f"t_{k - 1}"] + ibis.interval(seconds=hi) > as_of)
        cases.append(((w.depth == k - 1) & open_, "in_progress"))
    return w.mutate(status=ibis.cases(*cases, else_="dropped"))


def unit_table(prep: Prepared) -> ir.Table:
    """One row per journey unit (see the module doc)."""
    e = prep.keep(_entries(prep))
    w = _any_order(prep, e) if prep.spec.mode == "any_order" else _ordered(prep, e)
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
