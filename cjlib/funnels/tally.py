"""The funnel's counts and time-to-convert histograms straight from the ordered chain's links.

:func:`cjlib.funnels.core.funnel` needs only two small tables: units by (entry step, furthest
step, status) and durations by (step, bucket, event). In closed and open modes both follow from
the chain's links without building the table of one row per unit (which costs a join of the
entries to every step and a write of the result: about a fifth of the whole funnel at 1e7
events). Link k holds ``live`` (the units at step k-1) and ``step`` (those of them that reached
step k or were excluded before it), so

- units whose furthest step is k-1 = ``live`` minus ``step``: counted by difference, split by
  whether their follow-up is still open (*in progress*) or not (*dropped*); the excluded ones are
  ``step``'s rows with an exclusion time;
- converted = the last step's reachers (plus, in open mode, the units entering at the last step);
- censored durations at step k = the follow-up ends of ``live`` minus those of ``step`` (each unit
  has the same start and window end in both, so its bucket is the same and the difference of the
  two histograms is exact), plus the exclusion times of the excluded.

Every row is an integer count, so the differences are exact; tests compare both tables with
those computed from the unit table (:func:`cjlib.funnels.compute.unit_table`) for every mode and
option. Not for any-order mode or for a hold key with unique customers (each customer's best
attempt needs the unit rows).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cjlib.funnels.chain import Chain
from cjlib.funnels.timing import bucket

if TYPE_CHECKING:  # pragma: no cover
    from cjlib.funnels.compute import Prepared

__all__ = ["applies", "tables"]

# status codes in the engine (integers group faster than text); "reached": an earlier step
_STATUS = np.array(["reached", "converted", "in_progress", "dropped", "excluded"], dtype=object)
_CODE = {name: i for i, name in enumerate(_STATUS)}


def applies(prep: Prepared) -> bool:
    """Whether the counts can come from the links (ordered modes, rows counted as they are)."""
    spec = prep.spec
    held = spec.hold is not None and spec.count == "customers"
    return spec.mode != "any_order" and not held


def _entry_step(t: Any, prep: Prepared) -> Any:
    import ibis

    return t.entry_step if prep.spec.mode == "open" else ibis.literal(1, "int64")


def _open(t: Any, prep: Prepared, k: int) -> Any:
    """Whether a unit at step k-1 (``p_ts``, ``p_end``) is still followed up at the data end:
    the window has not closed (entry + window > as_of) and, with a maximum gap to step k, nor
    has the gap; the same literals as :func:`cjlib.funnels.compute._status`."""
    import ibis

    spec = prep.spec
    if spec.window is None:  # no window: nobody is in progress
        return ibis.literal(False)
    # p_end = entry + window, so entry > as_of - window <=> p_end > (as_of - window) + window
    cond = t.p_end > prep.open_after(spec.window) + dt.timedelta(seconds=spec.window)
    if spec.count == "journeys":  # the customer's next entry ends the journey
        cond = cond & (t.p_next.isnull() | (t.p_next > prep.open_after(0)))
    hi = spec.max_gap[k - 2]
    if hi is not None:
        cond = cond & (t.p_ts > prep.open_after(hi))
    return cond


def tables(
    prep: Prepared, chain: Chain, *, resolution: float | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(counts, hist)``: ``entry_step, depth, status, n`` as
    :func:`cjlib.funnels.compute.status_counts` gives them from the unit table, and ``step,
    bucket, event, n`` as :func:`cjlib.funnels.timing.duration_counts` does; one query.

    Each link contributes signed rows ``(entry_step, step, status, bucket, event)``: ``live``
    +1 and ``step`` -1 (status in progress or dropped, bucket of the follow-up end), the excluded
    +1 (bucket of the exclusion), the reachers +1 (event 1; status ``converted`` at the last
    step). Summed per group in the engine, then split into the two tables here.
    """
    import ibis

    spec, us = prep.spec, prep.engine.epoch_us
    n_steps = spec.n_steps
    as_of = ibis.literal(int(prep.as_of.value // 1000), "int64")
    parts = []

    def part(t: Any, k: int, status: Any, micros: Any, event: int, sign: int) -> None:
        parts.append(
            t.select(
                entry_step=_entry_step(t, prep).cast("int64"),
                step=ibis.literal(k, "int64"),
                status=status.cast("int64"),
                bucket=bucket(micros, resolution) if micros is not None else ibis.null("int64"),
                event=ibis.literal(event, "int64"),
                sign=ibis.literal(sign, "int64"),
            )
        )

    def follow_up(t: Any, k: int) -> tuple[Any, Any]:
        """(status if the unit stops at step k-1, microseconds from step k-1 to the follow-up
        end: the data end, the window end, the maximum gap or, for journeys, the next entry,
        whichever comes first)."""
        end = as_of
        if spec.window is not None:
            end = ibis.least(end, us(t.p_end))
        hi = spec.max_gap[k - 2]
        if hi is not None:
            end = ibis.least(end, us(t.p_ts) + hi * 1_000_000)
        if spec.count == "journeys":  # or the next entry, which ends the journey
            end = ibis.least(end, us(t.p_next).coalesce(as_of))
        status = ibis.ifelse(_open(t, prep, k), _CODE["in_progress"], _CODE["dropped"])
        return status, end - us(t.p_ts)

    for link in chain.links:
        k, live, step = link.k, link.live, link.step
        part(live, k, *follow_up(live, k), 0, 1)
        part(step, k, *follow_up(step, k), 0, -1)
        got = step.filter(step.r.notnull())
        reached = _CODE["converted" if k == n_steps else "reached"]
        part(got, k, ibis.literal(reached), us(got.r) - us(got.p_ts), 1, 1)
        if "rx" in step.columns:
            out = step.filter(step.rx.notnull())
            part(out, k, ibis.literal(_CODE["excluded"]), us(out.rx) - us(out.p_ts), 0, 1)
    if chain.last_entrants is not None:  # open mode: entering at the last step is converting
        part(chain.last_entrants, n_steps, ibis.literal(_CODE["converted"]), None, 1, 1)
    rows = parts[0].union(*parts[1:])
    cols = ["entry_step", "step", "status", "bucket", "event"]
    # through Arrow: a few integer columns, no per-column conversion by Ibis
    both = prep.engine.to_arrow(rows.group_by(cols).aggregate(n=rows.sign.sum())).to_pandas()
    both = both.astype({"entry_step": "int64", "step": "int64", "event": "int64", "n": "int64"})
    both["status"] = _STATUS[both["status"].to_numpy(dtype="int64")]
    c = both[both["status"] != "reached"]
    depth = c["step"].where(c["status"] == "converted", c["step"] - 1)
    counts = c.assign(depth=depth).groupby(["entry_step", "depth", "status"], as_index=False)
    counts = counts["n"].sum()
    h = both[both["bucket"].notna()]
    h = h[h["bucket"] >= 0].astype({"bucket": "int64"})
    hist = h.groupby(["step", "bucket", "event"], as_index=False)["n"].sum()
    return counts[counts["n"] != 0], hist[hist["n"] != 0]
