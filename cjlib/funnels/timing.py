"""Time to convert: duration histograms in the engine, quantiles and Kaplan-Meier locally.

For each step k (2..n in ordered modes), every unit that reached step k-1 contributes one duration:
the time to step k when it got there (an *event*), otherwise the time until its follow-up ended
(*censored*): the data end (``as_of``), the window end, the step's maximum gap or the exclusion
event, whichever came first. In any-order mode every entered unit contributes to every step k = 1..n
(it may still do the earlier steps later), the clock starts at entry and step k is reached when
steps 1..k all are. Durations are floored in the engine (by default to the second under an hour and
to the minute above; :func:`bucket`) and come back as counts per (step, duration, event), so the
result is small at any data size.

Kaplan-Meier (Kaplan & Meier 1958) treats in-progress units as censored; the curve reported is
the cumulative conversion 1 - S(t) with a Greenwood variance and a log-log 95 % interval
(Kalbfleisch & Prentice 2002, eq. 1.10), the form R's ``survival::survfit(conf.type="log-log")``
uses.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cjlib.funnels.compute import Prepared

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["bucket", "duration_counts", "kaplan_meier", "timing_tables"]


FINE_UNTIL_US = 3_600 * 1_000_000  # automatic precision: to the second under an hour


def bucket(micros: Any, resolution: float | None) -> Any:
    """A duration in microseconds floored to its precision, in microseconds: to multiples of
    ``resolution`` seconds, or (``None``, automatic) to the second under an hour and to the
    minute from an hour on, so that a click-stream's seconds and a purchase cycle's days both
    keep their size (about 14,000 distinct values per step over a week)."""
    import ibis

    def floor(us: int) -> Any:
        return (micros / us).floor() * us

    if resolution is None:
        return ibis.ifelse(micros < FINE_UNTIL_US, floor(1_000_000), floor(60_000_000))
    return floor(max(int(round(resolution * 1_000_000)), 1))


def duration_counts(
    prep: Prepared, units: ir.Table, *, resolution: float | None = None
) -> ir.Table:
    """``step, bucket, event, n``: durations (``bucket``: microseconds, floored by
    :func:`bucket`) per step.

    Times become integer microseconds once per unit (``e_k``; ``x_k`` for the end of the
    follow-up where step k was not reached; :meth:`Engine.epoch_us`, not Ibis's slow
    ``epoch_seconds``) into a kept table, and each step's durations are differences of those
    integers.
    """
    import ibis

    spec, us = prep.spec, prep.engine.epoch_us
    any_order = spec.mode == "any_order"
    steps = list(range(1 if any_order else 2, spec.n_steps + 1))
    e = {k: us(units[f"t_{k}"]) for k in range(1, spec.n_steps + 1)}
    proj = {f"e_{k}": v for k, v in e.items()}
    entry = us(units.t_entry)
    if any_order:
        proj["e_entry"] = entry
    as_of = int(prep.as_of.value // 1000)  # pandas Timestamp.value: nanoseconds
    for k in steps:
        start = entry if any_order else e[k - 1]
        end = ibis.literal(as_of, "int64")
        if spec.window is not None:
            end = ibis.least(end, entry + spec.window * 1_000_000)
        hi = spec.max_gap[k - 2] if not any_order else None
        if hi is not None:
            end = ibis.least(end, start + hi * 1_000_000)
        if spec.count == "journeys":  # the next entry ends the journey
            end = ibis.least(end, us(units.t_next).coalesce(as_of))
        if f"xt_{k}" in units.columns:
            end = us(units[f"xt_{k}"]).coalesce(end)
        censored = start.notnull() & units[f"t_{k}"].isnull()
        proj[f"x_{k}"] = ibis.ifelse(censored, end, ibis.null("int64"))
    u = prep.keep(units.select(**proj))
    parts = []
    for k in steps:
        first = "e_entry" if any_order else f"e_{k - 1}"
        rows = u.filter(u[first].notnull())
        got = rows[f"e_{k}"]
        micros = got.coalesce(rows[f"x_{k}"]) - rows[first]
        parts.append(
            rows.select(
                step=ibis.literal(k, "int64"),
                bucket=bucket(micros, resolution),
                event=got.notnull().cast("int64"),
            )
        )
    table = parts[0]
    for p in parts[1:]:
        table = table.union(p)
    table = table.filter(table.bucket >= 0)
    return table.group_by(["step", "bucket", "event"]).aggregate(n=table.count())


def kaplan_meier(
    durations: Any, events: Any, weights: Any = None, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Kaplan-Meier of time to conversion: ``time, at_risk, events, censored, converted,
    converted_low, converted_high`` with ``converted`` = 1 - S(t) (cumulative conversion).

    At a time with both, events are counted before censorings (the usual convention).
    """
    t = np.asarray(durations, dtype=float)
    ev_mask = np.asarray(events) == 1
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=float)
    times, where = np.unique(t, return_inverse=True)
    ev = np.bincount(where, weights=np.where(ev_mask, w, 0.0), minlength=len(times))
    ce = np.bincount(where, weights=np.where(ev_mask, 0.0, w), minlength=len(times))
    total = float(w.sum())
    at_risk = total - np.concatenate([[0.0], np.cumsum(ev + ce)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - ev / at_risk)
        green = np.cumsum(np.where(at_risk > ev, ev / (at_risk * (at_risk - ev)), 0.0))
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        log_s = np.log(surv)
        se = np.sqrt(green) / np.abs(log_s)
        low_s = np.where((surv > 0) & (surv < 1), surv ** np.exp(z * se), np.nan)
        high_s = np.where((surv > 0) & (surv < 1), surv ** np.exp(-z * se), np.nan)
    out = pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk,
            "events": ev,
            "censored": ce,
            "converted": 1 - surv,
            "converted_low": 1 - high_s,
            "converted_high": 1 - low_s,
        }
    )
    return out[out["events"] > 0].reset_index(drop=True) if len(out) else out


def _quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """The empirical quantile of a histogram (Hyndman & Fan type 1, the inverse of the empirical
    distribution): the smallest value with at least ``q`` of the counts at or below it, so a
    median is always a duration that occurred (of 1 h and 2 h, 1 h)."""
    if counts.sum() == 0:
        return float("nan")
    cum = np.cumsum(counts) / counts.sum()
    return float(values[np.searchsorted(cum, q - 1e-12)])


def timing_tables(hist: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(timing, km)`` from the duration histogram (one Kaplan-Meier fit per step).

    ``timing``, per step: converters, median and quartiles (and p90) of time to convert among
    them (empirical quantiles, :func:`_quantile`), and the Kaplan-Meier median (the time by
    which half of the units would convert, censoring handled; missing when fewer than half ever
    do). ``km``: the Kaplan-Meier curves of every step, stacked (``step, label, hours,
    converted, ...``). Times in hours.
    """
    rows, curves = [], []
    for step, g in hist.groupby("step"):
        g = g.sort_values("bucket")
        conv = g[g.event == 1]
        secs = conv["bucket"].to_numpy(dtype=float) / 1e6
        n = conv["n"].to_numpy(dtype=float)
        km = kaplan_meier(g["bucket"] / 1e6, g["event"], g["n"])
        half = km[km["converted"] >= 0.5 - 1e-12]  # 1 - S(t) = 1/2 exactly may round below
        rows.append(
            {
                "step": int(step),
                "label": labels[int(step) - 1],
                "converters": int(n.sum()),
                "censored": int(g.loc[g.event == 0, "n"].sum()),
                **{
                    f"{name}_hours": _quantile(secs, n, q) / 3600
                    for name, q in (("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p90", 0.9))
                },
                "km_median_hours": float(half["time"].iloc[0]) / 3600 if len(half) else np.nan,
            }
        )
        km.insert(0, "label", labels[int(step) - 1])
        km.insert(0, "step", int(step))
        km.insert(2, "hours", km.pop("time") / 3600)
        curves.append(km)
    km_all = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return pd.DataFrame(rows), km_all
