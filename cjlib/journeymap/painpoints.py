"""Pain points: the largest drop-offs, the lowest satisfaction, the slowest stages and the most
complained-about touchpoints, in one list ranked by the number of customers affected.

Each kind says what counts as a pain and how many customers it touches (``customers``):

- **drop-off** (consecutive stages that lost someone): customers who reached the stage and never got
  further (:func:`cjlib.journeys.furthest_stage`); ``share`` = that / customers who reached it.
- **low satisfaction** (stages whose detractor share is above that of the other stages' answers,
  Newcombe interval of the difference above 0): the *excess* detractor share x customers who
  reached the stage (an estimate: how many more detractors than if the stage were as good as
  the rest).
- **slow stage** (stages where significantly more than half of the customers' steps last longer
  than the median over all stage steps): those customers beyond the half expected.
- **complained-about touchpoint** (detractor share above the other touchpoints', as for stages):
  the excess share x customers touched on that channel, or, for touchpoints that are not event
  channels (checkout, support), the excess detractors among those who answered.

Drop-offs count every customer lost; the other kinds count only the excess over the rest of the
journey, so a stage is not a pain point merely because many customers pass through it.

``share`` carries a 95 % Wilson interval (``low``, ``high``); ``evidence`` states the numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.stats import wilson_interval
from cjlib.units import duration_text

__all__ = ["pain_points", "slow_steps", "COLUMNS"]

COLUMNS = ["rank", "kind", "stage", "what", "customers", "share", "low", "high", "evidence"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _excess(r: Any, o: Any, confidence: float):
    """Detractor share of a group against the rest of the answers: ``None`` unless the
    Newcombe interval of the difference lies above 0; else (share, excess, excess low, Wilson low,
    Wilson high, rest share)."""
    from cjlib.stats import newcombe_interval

    if r.suppressed or not r.nps_answers:
        return None
    k1, n1 = float(r.detractors), float(r.nps_answers)
    k2, n2 = float(o.detractors - r.detractors), float(o.nps_answers - r.nps_answers)
    if n2 <= 0:
        return None
    elo, _ = newcombe_interval(k1, n1, k2, n2, confidence=confidence)
    if not float(elo) > 0:
        return None
    lo, hi = wilson_interval(k1, n1, confidence=confidence)
    return k1 / n1, k1 / n1 - k2 / n2, float(elo), float(lo), float(hi), k2 / n2


def slow_steps(events: Any, stages: Any, *, engine: Engine | None = None) -> pd.DataFrame:
    """Per stage: closed steps, their median dwell (hours) and customers with a step longer
    than the median over all closed steps of all stages (``threshold_hours``). Durations and
    medians as :func:`cjlib.funnels.stage_view.dwell_times` gives them (floored to the second
    under an hour and to the minute above; empirical median, Hyndman & Fan type 1), so the
    journey map and the stage drop-off study show the same time in stage."""
    import ibis

    from cjlib.funnels.timing import _quantile, bucket
    from cjlib.journeys import _ORDER, stage_steps

    steps = stage_steps(events, stages, engine=engine)
    _, engine = as_table(events, engine)
    w = ibis.window(group_by="customer_id", order_by=list(_ORDER))
    steps = steps.mutate(next_ts=steps.timestamp.lead().over(w))
    steps = steps.filter(steps.next_ts.notnull())
    us = bucket(engine.epoch_us(steps.next_ts) - engine.epoch_us(steps.timestamp), None)
    steps = steps.mutate(us=us.cast("int64"))
    hist = engine.to_pandas(steps.group_by(["stage_index", "us"]).aggregate(n=steps.count()))
    hist = hist.astype({"stage_index": "int64", "us": "int64", "n": "int64"}).sort_values("us")
    whole = hist.groupby("us", as_index=False)["n"].sum()
    threshold = _quantile(whole["us"].to_numpy(dtype=float), whole["n"].to_numpy(), 0.5)
    slow = steps.us > (int(threshold) if threshold == threshold else 0)
    out = engine.to_pandas(
        steps.group_by("stage_index").aggregate(
            steps=steps.count(),
            customers=steps.customer_id.nunique(),
            slow_customers=ibis.ifelse(slow, steps.customer_id, ibis.null("string")).nunique(),
        )
    )
    idx = out.pop("stage_index").astype(int)
    medians = {
        i: _quantile(g["us"].to_numpy(dtype=float), g["n"].to_numpy(), 0.5) / 3.6e9
        for i, g in hist.groupby("stage_index")
    }
    out["median_hours"] = [medians.get(i, np.nan) for i in idx]
    out["stage"] = [stages.stages[i] for i in idx]
    out["threshold_hours"] = threshold / 3.6e9
    return out.sort_values("stage", key=lambda s: s.map(stages.stages.index), ignore_index=True)


def pain_points(
    furthest: pd.DataFrame,
    *,
    voc: Any = None,
    slow: pd.DataFrame | None = None,
    channel_reach: pd.Series | None = None,
    touchpoint_stage: dict[str, str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The ranked list (see the module doc). ``furthest``: :func:`cjlib.journeys.furthest_stage`;
    ``voc``: a :class:`cjlib.voc.VocResult` (for satisfaction and touchpoints); ``slow``:
    :func:`slow_steps`; ``channel_reach``: customers touched per channel; ``touchpoint_stage``:
    the stage where most of a touchpoint's answers were given."""
    rows = []
    f = furthest.reset_index(drop=True)
    for i in range(len(f) - 1):
        a, b = f.loc[i], f.loc[i + 1]
        lost = int(a.reached - b.reached)
        # nobody reached the stage, or everybody went on: no pain here; and a stage no customer
        # has an event in (no event in the data maps to it) measures nothing
        if not lost or not b.reached:
            continue
        lo, hi = wilson_interval(lost, int(a.reached), confidence=confidence)
        rows.append(
            (
                "drop-off",
                a.stage,
                f"{a.stage} → {b.stage}",
                lost,
                lost / a.reached,
                float(lo),
                float(hi),
                f"{lost:,} of the {int(a.reached):,} customers who reached {a.stage} never "
                f"reached {b.stage} or later ({_pct(lost / a.reached)} lost).",
            )
        )
    reached = dict(zip(f["stage"], f["reached"], strict=True))
    if voc is not None and len(voc.by):
        o = voc.overall.iloc[0]
        dims = set(voc.by["dimension"])
        if "stage" in dims:
            for _, r in voc.table("stage").iterrows():
                if r.stage not in reached:  # answers with no stage or an unknown one
                    continue
                ex = _excess(r, o, confidence)
                if ex is None:
                    continue
                d, excess, elo, lo, hi, rest = ex
                n = int(round(reached.get(r.stage, 0) * excess))
                rows.append(
                    (
                        "low satisfaction",
                        r.stage,
                        f"satisfaction at {r.stage}",
                        n,
                        d,
                        lo,
                        hi,
                        f"{_pct(d)} of {int(r.nps_answers):,} answers at {r.stage} are detractors "
                        f"against {_pct(rest)} at the other stages (NPS {r.nps:+.0f}, CI "
                        f"{r.nps_low:+.0f} to {r.nps_high:+.0f}); the excess of {_pct(excess)} "
                        f"(CI from {_pct(elo)}) applied to the {int(reached.get(r.stage, 0)):,} "
                        f"customers who reached {r.stage}.",
                    )
                )
        if "touchpoint" in dims:
            for _, r in voc.table("touchpoint").iterrows():
                ex = _excess(r, o, confidence)
                if ex is None:
                    continue
                d, excess, elo, lo, hi, rest = ex
                tp = str(r.touchpoint)
                touched = None if channel_reach is None else channel_reach.get(tp)
                if touched:
                    n = int(round(touched * excess))
                    size = f"applied to the {int(touched):,} customers touched on {tp}"
                else:
                    n = int(round(r.detractors - rest * r.nps_answers))
                    size = "counted among those who answered (not an event channel)"
                rows.append(
                    (
                        "complained-about touchpoint",
                        (touchpoint_stage or {}).get(tp, ""),
                        f"touchpoint {tp}",
                        n,
                        d,
                        lo,
                        hi,
                        f"{_pct(d)} of {int(r.nps_answers):,} answers about {tp} are detractors "
                        f"against {_pct(rest)} elsewhere; the excess of {_pct(excess)} {size}.",
                    )
                )
    if slow is not None and len(slow):
        for _, r in slow.iterrows():
            k, n = int(r.slow_customers), int(r.customers)
            if not n or not r.median_hours > r.threshold_hours:
                continue
            lo, hi = wilson_interval(k, n, confidence=confidence)
            if not float(lo) > 0.5:
                continue
            excess = int(round(k - 0.5 * n))
            rows.append(
                (
                    "slow stage",
                    r.stage,
                    f"time spent in {r.stage}",
                    excess,
                    k / n,
                    float(lo),
                    float(hi),
                    f"median {duration_text(r.median_hours)} in {r.stage} before the next "
                    f"stage against {duration_text(r.threshold_hours)} over all stage steps; "
                    f"{k:,} of {n:,} customers took longer than that, {excess:,} more than the "
                    "half expected at a typical stage.",
                )
            )
    out = pd.DataFrame(rows, columns=COLUMNS[1:])
    out = out.sort_values(["customers", "kind"], ascending=[False, True], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out
