"""Findings, method notes and per-persona maps for the journey-map study."""

from __future__ import annotations

from typing import Any

from cjlib.units import duration_text

__all__ = ["METHODS", "describe_journey_map", "persona_maps", "format_metrics"]

METHODS = [
    "Reached a stage = had an event in that stage or a later one (the furthest stage ever "
    "reached; going back does not lower it). Conversion to the next stage = customers who reached "
    "the next stage / customers who reached this one, with a Wilson interval.",
    "Time in stage = from entering a stage step to the next stage step (repeats collapsed); a "
    "customer's last step has no end and is left out; durations to the second under an hour "
    "and to the minute above; the map shows the median (the middle duration that occurred, "
    "as in the stage drop-off study's dwell table).",
    "Emotion track = mean CSAT (1-5) of the answers given at each stage, with a Student t "
    "interval; NPS per stage as in the voice-of-the-customer section.",
    "Pain points are ranked by the number of customers affected: drop-off = reached the stage "
    "and never got further; low satisfaction (stages whose NPS interval lies below the overall "
    "NPS) = customers who reached the stage x its detractor share; slow stage (median time above "
    "the median of all stage steps) = customers with a longer step there; complained-about "
    "touchpoint (detractor-share interval above the overall share) = customers touched on that "
    "channel x its detractor share, or the detractors who answered when the touchpoint is not an "
    "event channel. Estimates that apply survey shares to customers say so in their evidence.",
    "Orders = events with revenue > 0; repeat-purchase rate = customers with 2+ orders / "
    "customers with an order; time to second purchase: median with a distribution-free "
    "(binomial order-statistic) interval.",
]


def describe_journey_map(jm: Any) -> list[str]:
    """Plain-language findings from a :class:`~cjlib.journeymap.JourneyMap`; the first line is
    the headline."""
    lines = []
    who = f"For {jm.segment}, the" if jm.segment else "The"
    p = jm.pain_points
    if len(p):
        top = p.iloc[0]
        lines.append(f"{who} biggest pain point is the {top.kind} {top.what}: {top.evidence}")
        for _, r in p.iloc[1:3].iterrows():
            lines.append(f"Next: {r.kind} {r.what} ({int(r.customers):,} customers). {r.evidence}")
    f = jm.furthest
    if len(f) and f["reached"].max() > 0:
        empty = [str(st) for st, n in zip(f["stage"], f["reached"], strict=True) if n == 0]
        it = "it" if len(empty) == 1 else "them"
        if empty and jm.segment:
            lines.append(f"No customer in {jm.segment} has an event in {', '.join(empty)}; the "
                         f"drop-off into {it} is not ranked.")  # fmt: skip
        elif empty:
            lines.append(
                f"No event in the data is in {', '.join(empty)}, so the drop-off into {it} is "
                f"not measured (map events to {it} with a stage model or a stage column)."
            )
    s = jm.stages.dropna(subset=["csat_mean"])
    if len(s) >= 2:
        lo, hi = s.loc[s["csat_mean"].idxmin()], s.loc[s["csat_mean"].idxmax()]
        lines.append(
            f"Customers feel worst at {lo.stage} (mean CSAT {lo.csat_mean:.2f}, CI "
            f"{lo.csat_mean_low:.2f} to {lo.csat_mean_high:.2f}) and best at {hi.stage} "
            f"({hi.csat_mean:.2f}, CI {hi.csat_mean_low:.2f} to {hi.csat_mean_high:.2f})."
        )
    d = jm.stages.dropna(subset=["median_dwell_hours"])
    if len(d):
        slow = d.loc[d["median_dwell_hours"].idxmax()]
        lines.append(
            f"Customers spend longest in {slow.stage} (median "
            f"{duration_text(slow.median_dwell_hours)} before their next stage)."
        )
    na = jm.unavailable
    if len(na):
        lines.append(
            "Not available from this data: "
            + "; ".join(f"{r.stage} {r.metric} ({r.note[15:]})" for _, r in na.iterrows())
            + "."
        )
    return lines


def persona_maps(events: Any, surveys: Any = None, *, persona: Any, **options: Any) -> dict:
    """One :class:`~cjlib.journeymap.JourneyMap` per persona in ``persona`` (a
    ``customer_id,persona`` table or CSV); ``options`` as for :func:`journey_map`."""
    from cjlib.engine import as_table
    from cjlib.funnels.segments import persona_segments
    from cjlib.journeymap.build import journey_map

    _, engine = as_table(events, options.get("engine"))
    p = persona_segments(persona, engine=engine)
    names = sorted(engine.to_pandas(p.select("segment").distinct())["segment"].dropna())
    return {
        name: journey_map(events, surveys, persona=persona, segment=name, **options)
        for name in names
    }


def _value(x: float, unit: str) -> str:
    if x != x:  # NaN
        return "—"
    if unit == "share":
        return f"{x:.1%}"
    if unit in ("currency", "events", "days"):
        return f"{x:,.2f}" if unit != "days" else f"{x:,.0f}"
    if unit == "points":
        return f"{x:+.1f}"
    return f"{x:,.0f}"


def format_metrics(metrics: Any) -> Any:
    """The stage-metrics table as text for a report: value and interval formatted by unit."""
    import pandas as pd

    rows = []
    for _, r in metrics.iterrows():
        interval = "—" if r.low != r.low else f"{_value(r.low, r.unit)} to {_value(r.high, r.unit)}"
        den = (
            ""
            if r.denominator is None or r.denominator != r.denominator
            else f"{int(r.denominator):,}"
        )
        rows.append((r.stage, r.metric, _value(r.value, r.unit), interval, den, r.unit, r.note))
    return pd.DataFrame(
        rows,
        columns=["stage", "metric", "value", "95 % interval", "denominator", "unit", "definition"],
    )
