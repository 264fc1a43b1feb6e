"""Plain-language findings from an :class:`~cjlib.attribution.AttributionResult`.

Every share is stated with its denominator and a 95 % bootstrap interval.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["describe_attribution", "methodology", "MODEL_NAMES"]

MODEL_NAMES = {
    "first_touch": "first touch",
    "last_touch": "last touch",
    "last_non_direct": "last non-direct",
    "linear": "linear",
    "position_based": "position-based",
    "time_decay": "time decay",
    "participation": "participation",
    "markov": "Markov",
    "shapley": "Shapley (conversion-rate game)",
    "shapley_simple": "Shapley (conversions game)",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _pts(diff: float) -> str:
    """A share difference in percentage points, signed; a real difference under 0.05 points
    keeps two significant digits instead of reading "-0.0 pts"."""
    pts = 100 * diff
    return f"{pts:+.1f} pts" if abs(pts) >= 0.05 else f"{pts:+.2g} pts"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _top(credits: pd.DataFrame, model: str) -> str:
    rows = credits[credits["model"] == model].sort_values("share", ascending=False)
    if rows.empty:
        return ""
    r = rows.iloc[0]
    ci = f" (95 % CI {_pct(r.share_low)} to {_pct(r.share_high)})" if "share_low" in rows else ""
    return f"{r.channel}, {_pct(r.share)} of attributed conversions{ci}"


def describe_attribution(result: Any) -> list[str]:
    """Findings: the headline, data-driven models against last touch, agreement, costs."""
    s, p, credits = result.summary, result.params, result.credits
    models = list(dict.fromkeys(credits["model"]))
    lead = "markov" if "markov" in models else models[0]
    name = MODEL_NAMES.get(lead, lead)
    if lead == "markov":
        name += f" (order {p.get('markov_order')})"
    lines = [
        f"{s['conversions']:,.0f} converting journeys (of {s['journeys']:,.0f} journeys with a "
        f"touch, {len(result.channels)} channels) were attributed; the {name} model credits "
        f"{_top(credits, lead)} most."
    ]
    if "last_touch" in models and lead != "last_touch":
        lines[0] += f" Last touch credits {_top(credits, 'last_touch')} most."
    vs = result.versus_last_touch
    if vs is not None and len(vs):
        for model in dict.fromkeys(vs["model"]):
            rows = vs[vs["model"] == model]
            above = [f"{r.channel} ({_pts(r.difference)})" for r in
                     rows[rows.verdict == "above"].itertuples()]  # fmt: skip
            below = [f"{r.channel} ({_pts(r.difference)})" for r in
                     rows[rows.verdict == "below"].itertuples()]  # fmt: skip
            apart = list(rows.loc[~rows["intervals_overlap"], "channel"])
            text = f"Compared with last touch, {MODEL_NAMES.get(model, model)} credits "
            parts = []
            if above:
                parts.append(f"more to {_join(above)}")
            if below:
                parts.append(f"less to {_join(below)}")
            if parts:
                text += " and ".join(parts)
                text += " (paired 95 % bootstrap intervals of the difference exclude zero)."
            else:  # said so plainly: the parenthesis read as if intervals excluded zero
                text += "no channel clearly more or less (no paired 95 % bootstrap interval of "
                text += "the difference excludes zero)."
            if apart:
                text += f" The two models' own intervals do not overlap for {_join(apart)}"
                text += "; for the other channels they overlap."
            else:
                text += " Their own share intervals overlap for every channel."
            lines.append(text)
    comp = result.comparison
    if "agree" in comp and len(comp):
        agree = list(comp.loc[comp["agree"], "channel"])
        worst = comp.sort_values("spread", ascending=False).iloc[0]
        text = (
            f"All models (participation aside) have share intervals with a common value on "
            f"{len(agree)} of {len(comp)} channels"
            + (f" ({_join(agree)})" if agree else "")
            + f"; they disagree most on {worst.channel}: from {_pct(worst.lowest)} "
            f"({MODEL_NAMES.get(worst.lowest_model, worst.lowest_model)}) to "
            f"{_pct(worst.highest)} ({MODEL_NAMES.get(worst.highest_model, worst.highest_model)})."
        )
        if "data_driven_agree" in comp:
            dd = list(comp.loc[comp["data_driven_agree"], "channel"])
            text += f" The data-driven models alone agree on {len(dd)} of {len(comp)} channels" + (
                f" ({_join(dd)})." if dd else "."
            )
        lines.append(text)
    if result.costs is not None and lead in set(result.costs["model"]):
        c = result.costs[(result.costs["model"] == lead) & result.costs["cpa"].notna()]
        if len(c):
            lo, hi = c.sort_values("cpa").iloc[0], c.sort_values("cpa").iloc[-1]
            best = c.sort_values("credit_to_cost", ascending=False).iloc[0]
            lines.append(
                f"Under {name}, {lo.channel} has the lowest cost per attributed conversion "
                f"({lo.cpa:,.2f}; 95 % CI {lo.cpa_low:,.2f} to {lo.cpa_high:,.2f}) and "
                f"{hi.channel} the highest ({hi.cpa:,.2f}); {best.channel} earns "
                f"{best.credit_to_cost:.1f}x its cost share in credit ({_pct(best.share)} of "
                f"conversions for {_pct(best.cost_share)} of spend)."
            )
    missing = s.get("unattributed_conversions", 0) or 0
    if missing:
        lines.append(
            f"{missing:,.0f} conversions had no touch within the lookback window and are not "
            "attributed to any channel."
        )
    if result.order_selection is not None:
        t = result.order_selection
        lines.append(
            f"On held-out journeys the order-{p.get('markov_order')} Markov chain predicted the "
            f"next step best (log-likelihood per move {t['loglik_per_move'].max():.3f}; orders "
            f"tried: {', '.join(str(o) for o in t['order'])})."
        )
    return lines


def methodology(result: Any) -> str:
    """Markdown definitions of the journeys, models, intervals and denominators used."""
    p = result.params
    first, middle, last = p["position_weights"]
    lines = [
        "### Attribution definitions",
        "",
    ]
    if p.get("source") == "events":
        lines.append(
            f"- **Journeys.** Touches are events with a channel. Each `{p['conversion_event']}` "
            "closes the customer's journey; touches after it start the next one. Only touches "
            f"within {p['lookback_days']:g} days before the journey's end (the conversion, or the "
            "last touch of a journey that did not convert) count. Consecutive repeats of a channel "
            + ("were collapsed." if p.get("collapse_repeats") else "were kept.")
        )
    else:
        lines.append("- **Journeys.** Read from a pre-aggregated path table.")
    lines += [
        "- **Rule-based models.** First touch, last touch, last non-direct (channels treated as "
        f"direct: {', '.join(p['direct_channels'])}; an all-direct journey credits its last "
        f"touch), linear, position-based ({first:.0%} first / {middle:.0%} middle / "
        f"{last:.0%} last; two-touch journeys split first : last), time decay (half-life "
        f"{p['half_life']:g} "
        + ("days before the conversion" if p.get("source") == "events" else "touches")
        + "), and participation (every channel in a converting journey gets the whole "
        "conversion, so participation credits do **not** sum to the total: read them as reach).",
        f"- **Markov chain (order {p['markov_order']}).** States are the last "
        f"{p['markov_order']} channel(s) touched; the chance of conversion from the start and "
        "without each channel is solved exactly from the absorbing chain (linear algebra, no "
        "simulation). Removal effect = 1 − P(conversion without the channel) / P(conversion). "
        "**The removal effects are normalised to sum to 1 before they spread the total "
        "conversions and revenue over the channels.**"
        + (
            " The order was chosen on 30 % held-out journeys."
            if p.get("markov_order_requested") == "auto"
            else ""
        ),
        "- **Shapley.** The conversion-rate game: v(S) = conversion rate of journeys whose "
        "channel set is exactly S; each converting journey splits its conversion in proportion "
        "to the Shapley values of that game restricted to its own channels "
        f"({p.get('shapley_method') or 'exact'}). The conversions game (`shapley_simple`) "
        "splits each conversion equally among the journey's distinct channels; its ordered "
        "variant splits by the position of each channel's first touch.",
        f"- **Intervals.** {p['n_boot']} bootstrap replicates resampling journeys with "
        f"replacement (seed {p['random_state']}); percentile intervals at "
        f"{p['confidence']:.0%}. All models use the same replicates, so differences between "
        "models have paired intervals.",
        "- **Denominators.** A share is the channel's credited conversions / all attributed "
        "conversions (converting journeys with at least one touch in the window). Cost share = "
        "channel spend / all spend; CPA = spend / credited conversions; ROAS = credited value / "
        "spend. Path conversion rate = conversions / journeys on exactly that path (Wilson "
        "interval).",
    ]
    return "\n".join(lines)
