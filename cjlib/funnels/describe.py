"""Plain-language findings of the stage drop-off study, generated from the results.

Every rate is stated with its denominator and 95 % interval; segment gaps are called real only
when their adjusted p-value is below alpha; incomplete cohorts are said to be incomplete.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cjlib.units import duration_text

__all__ = ["describe_funnel", "headline", "opportunities", "METHODS"]


def _pct(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f} %"


def headline(result: Any) -> str:
    """One line: the biggest leak of the funnel."""
    s = result.steps
    if result.entered == 0:
        return "No customer entered the funnel."
    k = result.weakest_step
    row = s.set_index("step").loc[k]
    prev = s.set_index("step").loc[k - 1, "label"]
    return (
        f"The biggest leak is between '{prev}' and '{row.label}': {_pct(row.drop_off)} of the "
        f"{int(row.denominator):,} customers who reached '{prev}' did not go on (95 % CI "
        f"{_pct(1 - row.conversion_high)} to {_pct(1 - row.conversion_low)})."
    )


def describe_funnel(
    result: Any,
    *,
    segments: Any = None,
    trend: Any = None,
    drivers: Any = None,
    view: Any = None,
) -> list[str]:
    """Findings, most important first: the biggest leak, overall conversion and in-progress
    customers, time to convert, real segment gaps, the cohort trend, drivers, stage view."""
    if result.entered == 0:
        return ["No customer entered the funnel: check the steps, the period and the mode."]
    s = result.steps
    last = s.iloc[-1]
    lines = [headline(result)]
    lines.append(
        f"Of {result.entered:,} customers who entered, {int(last.customers):,} completed the "
        f"funnel: {_pct(last.conversion_from_start)} of the "
        f"{int(last.denominator_from_start):,} whose outcome is known (95 % CI "
        f"{_pct(last.conversion_from_start_low)} to {_pct(last.conversion_from_start_high)})."
    )
    waiting = int(s["in_progress"].sum())
    if waiting:
        lines.append(
            f"{waiting:,} customer{'s were' if waiting != 1 else ' was'} still in progress when "
            "the data end "
            f"({result.as_of:%Y-%m-%d}); they are shown separately, not counted as lost."
        )
    t = result.timing.dropna(subset=["median_hours"])
    if len(t):
        slow = t.loc[t["median_hours"].idxmax()]
        lines.append(
            f"The slowest step is '{slow.label}': converters took a median "
            f"{duration_text(slow.median_hours)} (quartiles {duration_text(slow.p25_hours)} to "
            f"{duration_text(slow.p75_hours)})."
        )
    if segments is not None:
        real = segments.significant()
        real = real[real["step"] == 0]
        if len(real):
            parts = [
                f"{r[segments.by]} {_pct(r.conversion)} vs {_pct(r.rest_conversion)} for the "
                f"rest (gap {100 * r.difference:+.1f} points, CI {100 * r.difference_low:+.1f} "
                f"to {100 * r.difference_high:+.1f})"
                for _, r in real.head(4).iterrows()
            ]
            lines.append(
                f"Real gaps by {segments.by} (whole funnel, {segments.adjust}-adjusted p < "
                f"{segments.alpha}): " + "; ".join(parts) + "."
            )
        else:
            lines.append(
                f"No segment by {segments.by} differs from the rest after {segments.adjust} "
                "correction; apparent gaps are within noise."
            )
    if trend is not None and len(trend.table):
        done = trend.table[~trend.table["incomplete"] & ~trend.table["suppressed"]]
        n_inc = int(trend.table["incomplete"].sum())
        if np.isnan(trend.p_value):
            lines.append(f"Too few complete {trend.cohort} cohorts to judge a trend.")
        else:
            way = "rising" if trend.slope > 0 else "falling"
            real = "a real" if trend.p_value < 0.05 else "no clear"
            lines.append(
                f"Across {len(done)} complete {trend.cohort} cohorts conversion shows {real} "
                f"trend ({way} {100 * abs(trend.slope):.2f} points per {trend.cohort}, "
                f"Cochran-Armitage p = {trend.p_value:.3g})"
                + (f"; the last {n_inc} cohort(s) are incomplete." if n_inc else ".")
            )
    if drivers is not None and len(drivers.significant()):
        top = drivers.significant().iloc[0]
        lines.append(
            f"Before '{drivers.label}', {top.feature} '{top.value}' is {top.direction} "
            f"({_pct(top.dropped_share)} of {drivers.n_dropped:,} who dropped vs "
            f"{_pct(top.converted_share)} of {drivers.n_converted:,} who went on)."
        )
    if view is not None:
        refs = view.references.dropna(subset=["our_lost_share"])
        for _, r in refs.iterrows():
            lines.append(
                f"Between {r.from_stage} and {r.to_stage} we lose {_pct(r.our_lost_share)} "
                f"(CI {_pct(r.our_low)} to {_pct(r.our_high)}); the industry figure quoted in "
                f"our sources is about {_pct(r.lost_share)} (a reference, not a target)."
            )
        share = view.regression_share()
        if share > 0:
            lines.append(
                f"{_pct(share)} of stage-to-stage moves go back to an earlier stage: "
                "journeys are not linear."
            )
        elif share == 0:
            lines.append("No stage-to-stage move goes back to an earlier stage.")
    return lines


def opportunities(result: Any, *, segments: Any = None, top: int = 3) -> list[dict]:
    """Opportunities for the run summary (``title``, ``evidence``, ``customers`` affected): the
    biggest leak (customers who dropped there) and whole-funnel segment gaps that survive the
    correction where the segment converts worse than the rest (the segment's customers)."""
    if result.entered == 0:
        return []
    s = result.steps.set_index("step")
    k = result.weakest_step
    out = [
        {
            "title": f"Lose fewer customers between '{s.loc[k - 1, 'label']}' and "
            f"'{s.loc[k, 'label']}'",
            "evidence": headline(result),
            "customers": int(s.loc[k, "dropped"]),
        }
    ]
    if segments is not None:
        real = segments.significant()
        real = real[(real["step"] == 0) & (real["difference"] < 0)]
        for _, r in real.iterrows():
            out.append(
                {
                    "title": f"Close the funnel gap of {segments.by} '{r[segments.by]}'",
                    "evidence": f"{_pct(r.conversion)} complete the funnel vs "
                    f"{_pct(r.rest_conversion)} of the rest (gap {100 * r.difference:+.1f} "
                    f"points, 95 % CI {100 * r.difference_low:+.1f} to "
                    f"{100 * r.difference_high:+.1f}; {segments.adjust}-adjusted p = "
                    f"{r.p_adjusted:.2g}).",
                    "customers": int(r.denominator),
                }
            )
    out.sort(key=lambda o: -o["customers"])
    return out[:top]


METHODS = [
    "Funnel: steps are events, event alternatives (`a|b`) or stages; each step is matched at its "
    "earliest occurrence after the previous one (greedy); an occurrence at the same timestamp "
    "counts as following unless the two steps can be the same event. The window runs from entry "
    "to the last step; minimum and maximum gaps bound the time between consecutive steps; an "
    "exclusion event strictly between two steps ends the journey (counted as excluded). "
    "Closed mode enters at step 1, open mode at the step of the first funnel event, any-order "
    "mode needs steps 1..k within the window in any order.",
    "In progress: a customer who has not reached the next step while the window (and the step's "
    "maximum gap) is still open when the data end is in progress, not dropped, and is left out of "
    "the denominators of the rates they could still change. Conversion from the previous step = "
    "went on / (reached the previous step - in progress); from the start = reached / (entered - "
    "in progress before the step).",
    "Time to convert: quantiles among converters; Kaplan-Meier curves (Greenwood variance, "
    "log-log 95 % interval) with in-progress, dropped and excluded customers censored at the end "
    "of their follow-up.",
    "Segments: each segment against all other customers, pooled two-proportion z test "
    "(= R prop.test without continuity correction), difference with Newcombe's hybrid score "
    "interval, p-values adjusted over every comparison shown (Holm 1979, or Benjamini-Hochberg "
    "1995); segments smaller than the minimum cell size are suppressed and not tested.",
    "Cohort trend: whole-funnel conversion per entry week or month; cohorts whose window had not "
    "closed for every entrant at the data end are incomplete and left out of the "
    "Cochran-Armitage trend test.",
    "Drivers: at the weakest step, events done up to the previous step, first-touch channel and "
    "customer attributes, compared between customers who dropped and who went on (in-progress "
    "customers left out); same test, interval and correction as segments.",
    "Stage view: stage funnel over all stages (closed, no window), furthest stage reached, stage "
    "transitions (repeats collapsed, regressions and skips kept), dwell time from entering a "
    "stage step to the next step, and the stage-path Sankey from paths taken by at least the "
    "minimum cell size. Industry figures (about 38 % lost between awareness and consideration, "
    "29 % between consideration and purchase) are reference marks quoted by our sources.",
]
