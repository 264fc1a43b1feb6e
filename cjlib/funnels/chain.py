"""The step chains behind :func:`cjlib.funnels.compute.unit_table` (Ibis expressions).

``ordered``: closed and open modes, one group-and-join per step over the units still in the
funnel; ``any_order``: one join of the entries to all step rows. Both return one row per unit
with ``t_1 .. t_n`` (and ``xt_k``, ``seq_k`` when exclusions or strict order apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

    from cjlib.funnels.compute import Prepared

__all__ = ["Link", "Chain", "links", "ordered", "any_order", "window_end"]


def window_end(prep: Prepared, t_entry: Any) -> Any:
    """When the unit's conversion window closes (``None`` without a window)."""
    window = prep.spec.window
    return prep.engine.shift(t_entry, window) if window is not None else None


@dataclass(frozen=True)
class Link:
    """Step ``k`` of an ordered chain (k = 2..n).

    ``live``: the units in the funnel at step k-1 (keys, ``p_ts`` = the time of step k-1,
    ``p_end`` = the window end, or the entry time without a window; ``entry_step`` in open mode);
    ``step``: the units that reached step k (``r`` not null) or were excluded before it (``rx``
    not null), with the ``p_ts`` and ``p_end`` they had in ``live`` (kept in the engine).
    """

    k: int
    live: Any
    step: Any


@dataclass(frozen=True)
class Chain:
    """The ordered chain: its links and, in open mode, the units entering at the last step
    (``last_entrants``: they reach it on entry, so no link holds them)."""

    links: list[Link]
    last_entrants: Any = None


def links(prep: Prepared, e: ir.Table) -> Chain:
    """Closed and open modes: the greedy step-by-step chain of group-and-joins.

    Only the units still in the funnel move on: step k joins them to step k's rows and keeps,
    per unit, the earliest qualifying time (``r``) or the exclusion that ended it (``rx``).
    Each step's small result is kept in the engine.
    """
    import ibis

    spec, keys, side = prep.spec, prep.keys, prep.side
    # p_end: when the unit's window closes (computed once per unit, not per joined row)
    carry = ["p_end"] + (["p_next"] if spec.count == "journeys" else [])
    if spec.mode == "open":
        carry.append("entry_step")
    # t<j>: when step j was reached, kept while a later step can be the same event as step j
    # (not the previous step: p_ts covers that); null for units that entered after step j
    held = sorted({j for j in prep.same_as if j is not None})
    carry += [f"t{j}" for j in held]

    def entrants(k: int) -> ir.Table:
        x = e.filter(e.entry_step == k) if spec.mode == "open" else e
        end = window_end(prep, x.t_entry) if spec.window is not None else x.t_entry
        c = {"p_ts": x.t_entry, "p_end": end}
        if spec.strict:
            c["p_seq"] = x.seq_entry
        if spec.count == "journeys":
            c["p_next"] = x.t_next
        if spec.mode == "open":
            c["entry_step"] = x.entry_step
        for j in held:
            c[f"t{j}"] = x.t_entry if j == k else ibis.null().cast(x.t_entry.type())
        return x.select(*keys, **c)

    live = entrants(1)
    out = []
    for k in range(2, spec.n_steps + 1):
        s = prep.step_rows[k - 1]
        j = live.join(s, [live[c] == s[c] for c in side])
        conds = [s.ts > j.p_ts if prep.overlap[k - 2] else s.ts >= j.p_ts]
        if spec.window is not None:
            conds.append(s.ts <= j.p_end)
        lo = spec.min_gap[k - 2]
        if lo:
            conds.append(s.ts >= prep.engine.shift(j.p_ts, lo))
        if spec.strict:
            conds.append(s.seq == j.p_seq + 1)
        if spec.count == "journeys":
            conds.append(j.p_next.isnull() | (s.ts < j.p_next))
        same = prep.same_as[k - 2]
        if same is not None:  # strictly after that step: one event never counts twice
            conds.append(j[f"t{same}"].isnull() | (s.ts > j[f"t{same}"]))
        j = j.filter(*conds)
        agg = {"r": j.ts.min(), "p_ts": j.p_ts.min(), **{c: j[c].min() for c in carry}}
        if spec.strict:
            agg["rs"] = j.seq.min()
        cand = j.group_by(keys).aggregate(**agg)
        hi = spec.max_gap[k - 2]
        if hi is not None:
            cand = cand.filter(cand.r <= prep.engine.shift(cand.p_ts, hi))
        got = ["r"] + (["rs"] if spec.strict else [])
        xs = [i for i, (_, a, b) in enumerate(spec.exclude) if a < k <= b]
        if xs:
            x = prep.exclusions.filter(prep.exclusions.x.isin(xs))
            jx = live.join(x, [live[c] == x[c] for c in side])
            cond = [jx.ts > jx.p_ts]
            if spec.window is not None:
                cond.append(jx.ts <= jx.p_end)
            if hi is not None:  # after the maximum gap the unit has dropped already
                cond.append(jx.ts <= prep.engine.shift(jx.p_ts, hi))
            if spec.count == "journeys":
                cond.append(jx.p_next.isnull() | (jx.ts < jx.p_next))
            xagg = jx.filter(*cond).group_by(keys).aggregate(xc=jx.ts.min())
            both = live.left_join(cand, keys).select(*keys, "p_ts", *carry, *got)
            both = both.left_join(xagg, keys).select(*both.columns, "xc")
            both = both.filter(both.r.notnull() | both.xc.notnull())
            hit = both.xc.notnull() & (both.r.isnull() | (both.xc < both.r))
            cand = both.mutate(
                rx=ibis.ifelse(hit, both.xc, None),
                **{g: ibis.ifelse(hit, None, both[g]) for g in got},
            ).drop("xc")
            got.append("rx")
        step = prep.keep(cand.select(*keys, "p_ts", *carry, *got))
        out.append(Link(k, live, step))
        if k == spec.n_steps:
            break
        moved = step.filter(step.r.notnull())
        nxt = {"p_ts": moved.r, **{c: moved[c] for c in carry}}
        if k in held:
            nxt[f"t{k}"] = moved.r
        if spec.strict:
            nxt["p_seq"] = moved.rs
        live = moved.select(*keys, **{c: nxt[c] for c in ["p_ts", "p_end",
                             *(["p_seq"] if spec.strict else []), *carry[1:]]})  # fmt: skip
        if spec.mode == "open":
            live = live.union(entrants(k))
    return Chain(out, entrants(spec.n_steps) if spec.mode == "open" else None)


def ordered(prep: Prepared, e: ir.Table) -> ir.Table:
    """Closed and open modes: one row per unit, the entries joined to each link's step table."""
    import ibis

    spec, keys = prep.spec, prep.keys
    w = e
    for link in links(prep, e).links:  # all joins first, then one projection (flat SQL)
        step, k = link.step, link.k
        got = [g for g in ("r", "rs", "rx") if g in step.columns]
        w = w.left_join(step, keys).select(*w.columns, **{f"{g}_{k}": step[g] for g in got})
    opened = spec.mode == "open"  # closed: every unit entered at step 1

    def at_entry(k: int, col: str) -> Any:
        """The entry's own value for units that entered at step k (open mode), else null."""
        return ibis.ifelse(w.entry_step == k, w[col], None) if opened else None

    new = {"t_1": at_entry(1, "t_entry") if opened else w.t_entry}
    if spec.strict:
        new["seq_1"] = at_entry(1, "seq_entry") if opened else w.seq_entry
    for k in range(2, spec.n_steps + 1):
        new[f"t_{k}"] = w[f"r_{k}"].coalesce(at_entry(k, "t_entry")) if opened else w[f"r_{k}"]
        if f"rx_{k}" in w.columns:
            new[f"xt_{k}"] = w[f"rx_{k}"]
        if spec.strict:
            rs = w[f"rs_{k}"]
            new[f"seq_{k}"] = rs.coalesce(at_entry(k, "seq_entry")) if opened else rs
    return w.select(*e.columns, **new)


def any_order(prep: Prepared, e: ir.Table) -> ir.Table:
    import ibis

    spec, m, keys = prep.spec, prep.matches, prep.keys
    j = e.join(m, [e[c] == m[c] for c in prep.side])
    conds = [j.ts >= j.t_entry]
    if spec.window is not None:
        conds.append(j.ts <= window_end(prep, j.t_entry))
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
            cond.append(jx.ts <= window_end(prep, jx.t_entry))
        xagg = jx.filter(*cond).group_by(keys).aggregate(xt=jx.ts.min())
        w = w.left_join(xagg, keys).select(*w.columns, "xt")
        cut = {}
        for k in range(1, spec.n_steps + 1):
            tk = w[f"t_{k}"]
            cut[f"t_{k}"] = ibis.ifelse(w.xt.notnull() & (w.xt <= tk), None, tk)
        w = w.mutate(**cut)
        w = w.mutate(**{f"xt_{k}": w.xt for k in range(1, spec.n_steps + 1)}).drop("xt")
    return w
