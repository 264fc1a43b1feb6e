"""Stage success metrics: what the customer-journey literature measures at each stage.

awareness: reach, new customers, share of reach by channel; consideration: engagement (events per
customer), return visits, click-through from awareness; purchase: conversion, orders, revenue,
average order value; retention: repeat-purchase rate, churn, time to second purchase; advocacy:
referral rate, review rate, NPS. A metric whose data is missing is listed as not available, with
the reason. Per-customer reductions run in the engine; only a few numbers come back.

Definitions (every denominator): *reached* a stage = had an event in that stage or a later one
(:func:`cjlib.journeys.furthest_stage`); an *order* = an event with revenue > 0 (without a revenue
column: an event of the purchase stage); *churned* = a customer with an order whose last event is
more than ``churn_days`` before the data end, among customers whose first order is at least
``churn_days`` before the data end (newer customers cannot be judged yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from cjlib.engine import Engine, as_table
from cjlib.stats import wilson_interval
from cjlib.voc.scores import mean_interval, nps_interval

__all__ = ["stage_metrics", "REFERRAL_EVENTS", "REVIEW_EVENTS", "COLUMNS"]

REFERRAL_EVENTS = ("referral_sent", "refer_friend", "invite_sent", "share")
REVIEW_EVENTS = ("review_submitted", "review", "rating_submitted")
COLUMNS = ["stage", "metric", "value", "low", "high", "unit", "numerator", "denominator", "note"]


def _row(
    stage, metric, value=np.nan, low=np.nan, high=np.nan, unit="", num=None, den=None, note=""
):
    return dict(zip(COLUMNS, [stage, metric, value, low, high, unit, num, den, note], strict=True))


def _share(stage, metric, k, n, note, confidence):
    k, n = int(k), int(n)
    if n == 0:
        return _row(stage, metric, note=f"not available: no customers in the denominator ({note})")
    low, high = wilson_interval(k, n, confidence=confidence)
    return _row(stage, metric, k / n, float(low), float(high), "share", k, n, note)


def _na(stage, metric, why):
    return _row(stage, metric, note=f"not available: {why}")


def median_interval(values: np.ndarray, counts: np.ndarray, *, confidence: float = 0.95):
    """Median of a weighted sample and its distribution-free interval from binomial order
    statistics (Conover 1999, Practical Nonparametric Statistics, 3rd ed., sec. 3.2)."""
    order = np.argsort(values)
    v, c = np.asarray(values, float)[order], np.asarray(counts, float)[order]
    n = int(c.sum())
    if n == 0:
        return np.nan, np.nan, np.nan
    cum = np.cumsum(c)

    def at(k: int) -> float:  # k-th order statistic, 1-based
        return float(v[np.searchsorted(cum, min(max(k, 1), n))])

    med = (at((n + 1) // 2) + at(n // 2 + 1)) / 2
    lo_k = int(sps.binom.ppf((1 - confidence) / 2, n, 0.5))
    hi_k = int(n - lo_k + 1)
    return med, (at(lo_k) if lo_k >= 1 else np.nan), (at(hi_k) if hi_k <= n else np.nan)


def stage_metrics(
    events: Any,
    *,
    stages: Any,
    surveys: Any = None,
    churn_days: int = 90,
    referral_events: Sequence[str] = REFERRAL_EVENTS,
    review_events: Sequence[str] = REVIEW_EVENTS,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """One row per (stage, metric): ``value, low, high`` (interval, NaN for plain counts),
    ``unit`` (share, count, currency, days, events, points), ``numerator, denominator`` (for
    shares) and a ``note`` that defines it or says why it is not available."""
    import ibis

    from cjlib.journeys import with_stages

    if not isinstance(churn_days, int) or isinstance(churn_days, bool) or churn_days < 1:
        raise ValueError(
            f"churn_days must be an int >= 1 (days without activity), got {churn_days!r}"
        )
    t0, engine = as_table(events, engine)
    t = with_stages(t0, stages, engine=engine)
    names = list(stages.stages)
    idx = {s: i for i, s in enumerate(names)}
    has_rev, has_sess, has_ch = (c in t.columns for c in ("revenue", "session_id", "channel"))
    p_idx = idx.get("purchase", min(2, len(names) - 1))
    is_order = (t.revenue.fill_null(0) > 0) if has_rev else (t.stage_index == p_idx)
    t = t.mutate(
        is_order=is_order.cast("int64"),
        rev=(t.revenue if has_rev else ibis.literal(0.0)).cast("float64"),
    )
    refs, revs = list(referral_events), list(review_events)
    per = t.group_by("customer_id").aggregate(
        first_ts=t.timestamp.min(),
        last_ts=t.timestamp.max(),
        n_events=t.count(),
        furthest=t.stage_index.max(),
        # the first event's stage; at one instant the earliest stage, an unmapped event last
        first_stage=t.stage_index.argmin(
            engine.epoch_us(t.timestamp) * (len(names) + 1) + t.stage_index.fill_null(len(names))
        ),
        sessions=engine.count_distinct(t.session_id) if has_sess else ibis.literal(0),
        orders=t.is_order.sum(),
        first_order=ibis.ifelse(t.is_order == 1, t.timestamp, ibis.null("timestamp")).min(),
        referred=t.event.isin(refs).cast("int64").max() if refs else ibis.literal(0),
        reviewed=t.event.isin(revs).cast("int64").max() if revs else ibis.literal(0),
    )
    as_of = engine.to_pandas(t.timestamp.max())
    cutoff = ibis.literal(pd.Timestamp(as_of) - pd.Timedelta(days=churn_days))
    buyer = per.orders > 0
    eligible = buyer & (per.first_order <= cutoff)
    considered = per.furthest >= idx.get("consideration", 1)
    s = (
        engine.to_pandas(
            per.aggregate(
                customers=per.count(),
                aware=(per.furthest >= 0).cast("int64").sum(),
                new=(per.first_stage == 0).cast("int64").sum(),
                reached_cons=considered.cast("int64").sum(),
                reached_purch=(per.furthest >= p_idx).cast("int64").sum(),
                cons_events=ibis.ifelse(considered, per.n_events, 0).sum(),
                cons_events_sq=ibis.ifelse(considered, per.n_events * per.n_events, 0).sum(),
                returners=(considered & (per.sessions >= 2)).cast("int64").sum(),
                buyers=buyer.cast("int64").sum(),
                repeaters=(per.orders >= 2).cast("int64").sum(),
                eligible=eligible.cast("int64").sum(),
                churned=(eligible & (per.last_ts < cutoff)).cast("int64").sum(),
                referrers=(buyer & (per.referred > 0)).cast("int64").sum(),
                reviewers=(buyer & (per.reviewed > 0)).cast("int64").sum(),
            )
        )
        .iloc[0]
        .fillna(0)
        .astype(float)
    )
    o = t.filter(t.is_order == 1)
    orders = (
        engine.to_pandas(o.aggregate(n=o.count(), rev=o.rev.sum(), rev_sq=(o.rev * o.rev).sum()))
        .iloc[0]
        .fillna(0)
    )
    ci = {"confidence": confidence}
    a, c, p, r, v = (
        names[0],
        names[min(1, len(names) - 1)],
        names[p_idx],
        "retention" if "retention" in idx else None,
        "advocacy" if "advocacy" in idx else None,
    )
    rows = [
        _row(
            a,
            "reach",
            s.aware,
            unit="customers",
            note="customers with an event in any stage (a count, no interval)",
        ),
        _share(
            a,
            "new customers",
            s.new,
            s.aware,
            "share of reached customers whose first event is an awareness event",
            confidence,
        ),
    ]
    if has_ch:
        aw = t.filter((t.stage_index == 0) & t.channel.notnull() & (t.channel != ""))
        by_ch = engine.to_pandas(aw.group_by("channel").aggregate(n=aw.customer_id.nunique()))
        reach_aw = int(engine.to_pandas(t.filter(t.stage_index == 0).customer_id.nunique()))
        for ch, n in sorted(zip(by_ch["channel"], by_ch["n"], strict=True), key=lambda x: -x[1]):
            rows.append(
                _share(
                    a,
                    f"reach by channel: {ch}",
                    n,
                    reach_aw,
                    "share of customers with an awareness event touched on this channel "
                    "(a customer may have several)",
                    confidence,
                )
            )
    else:
        rows.append(_na(a, "reach by channel", "the events have no channel column"))
    m = mean_interval(s.cons_events, s.cons_events_sq, s.reached_cons, **ci)
    rows.append(
        _row(
            c,
            "engagement (events per customer)",
            float(m["mean"]),
            float(m["low"]),
            float(m["high"]),
            "events",
            None,
            int(s.reached_cons),
            "all events of customers who reached consideration; t interval",
        )
    )
    rows.append(
        _share(
            c,
            "return visits",
            s.returners,
            s.reached_cons,
            "customers who reached consideration with 2 or more sessions",
            confidence,
        )
        if has_sess
        else _na(c, "return visits", "the events have no session_id column")
    )
    rows.append(
        _share(
            c,
            "click-through from awareness",
            s.reached_cons,
            s.aware,
            "reached consideration / reached awareness",
            confidence,
        )
    )
    rows.append(
        _share(
            p,
            "conversion rate",
            s.reached_purch,
            s.reached_cons,
            "reached purchase / reached consideration",
            confidence,
        )
    )
    rows.append(
        _row(
            p,
            "orders",
            float(orders.n),
            unit="orders",
            note="events with revenue > 0"
            if has_rev
            else "purchase-stage events (no revenue column)",
        )
    )
    if has_rev:
        rows.append(
            _row(
                p,
                "revenue",
                float(orders.rev),
                unit="currency",
                note="sum of revenue over orders (a total, no interval)",
            )
        )
        m = mean_interval(orders.rev, orders.rev_sq, orders.n, **ci)
        rows.append(
            _row(
                p,
                "average order value",
                float(m["mean"]),
                float(m["low"]),
                float(m["high"]),
                "currency",
                None,
                int(orders.n),
                "revenue / orders; t interval over orders",
            )
        )
    else:
        rows += [
            _na(p, "revenue", "the events have no revenue column"),
            _na(p, "average order value", "the events have no revenue column"),
        ]
    if r:
        rows.append(
            _share(
                r,
                "repeat-purchase rate",
                s.repeaters,
                s.buyers,
                "customers with 2+ orders / customers with an order",
                confidence,
            )
        )
        rows.append(
            _share(
                r,
                f"churn ({churn_days} days without activity)",
                s.churned,
                s.eligible,
                f"buyers whose last event is over {churn_days} days before the data end "
                f"({pd.Timestamp(as_of):%Y-%m-%d}), among buyers whose first order is at least "
                "that old",
                confidence,
            )
        )
        rows.append(_time_to_second(t, engine, r, confidence))
    if v:
        rows.append(
            _share(
                v,
                "referral rate",
                s.referrers,
                s.buyers,
                f"buyers with a referral event ({', '.join(refs)})",
                confidence,
            )
            if refs
            else _na(v, "referral rate", "no referral events named")
        )
        rows.append(
            _share(
                v,
                "review rate",
                s.reviewers,
                s.buyers,
                f"buyers with a review event ({', '.join(revs)})",
                confidence,
            )
        )
        rows.append(_nps_row(v, surveys, engine, confidence))
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["available"] = ~out["note"].str.startswith("not available")
    return out


def _time_to_second(t: Any, engine: Engine, stage: str, confidence: float) -> dict:
    import ibis

    o = t.filter(t.is_order == 1)
    w = ibis.window(group_by="customer_id", order_by=["timestamp", "event"])
    o = o.mutate(k=ibis.row_number().over(w)).filter(lambda x: x.k <= 1)
    two = o.group_by("customer_id").aggregate(a=o.timestamp.min(), b=o.timestamp.max(), n=o.count())
    two = two.filter(two.n == 2)
    days = ((engine.epoch_us(two.b) - engine.epoch_us(two.a)) / 86_400e6).floor().cast("int64")
    two = two.mutate(days=days)
    hist = engine.to_pandas(two.group_by("days").aggregate(n=two.count()))
    note = (
        "days from the first to the second order, customers with 2+ orders; median with a "
        "distribution-free interval"
    )
    if hist.empty:
        return _na(stage, "time to second purchase (median)", "no customer has two orders")
    med, lo, hi = median_interval(
        hist["days"].to_numpy(), hist["n"].to_numpy(), confidence=confidence
    )
    return _row(
        stage,
        "time to second purchase (median)",
        med,
        lo,
        hi,
        "days",
        None,
        int(hist["n"].sum()),
        note,
    )


def _nps_row(stage: str, surveys: Any, engine: Engine, confidence: float) -> dict:
    if surveys is None:
        return _na(stage, "NPS", "no survey table given")
    s, _ = as_table(surveys, engine)
    if "nps" not in s.columns:
        return _na(stage, "NPS", "the survey table has no nps column")
    c = (
        engine.to_pandas(
            s.aggregate(
                n=s.nps.count(),
                p=(s.nps >= 9).cast("int64").sum(),
                d=(s.nps <= 6).cast("int64").sum(),
            )
        )
        .iloc[0]
        .fillna(0)
    )
    r = nps_interval(c.p, c.d, c.n, confidence=confidence)
    return _row(
        stage,
        "NPS",
        float(r["nps"]),
        float(r["low"]),
        float(r["high"]),
        "points",
        None,
        int(c.n),
        "all survey answers with an NPS score (promoters - detractors, points)",
    )
