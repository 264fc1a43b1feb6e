"""Plain-language findings from an :class:`~cjlib.attribution.AttributionResult`.

Every share is stated with its denominator and a 95 % bootstrap interval.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["describe_attribution", "MODEL_NAMES"]

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
            above = [f"{r.channel} (+{100 * r.difference:.1f} pts)" for r in
                     rows[rows.verdict == "above"].itertuples()]  # fmt: skip
            below = [f"{r.channel} ({100 * r.difference:.1f} pts)" for r in
                     rows[rows.verdict == "below"].itertuples()]  # fmt: skip
            apart = list(rows.loc[~rows["intervals_overlap"], "channel"])
            text = f"Compared with last touch, {MODEL_NAMES.get(model, model)} credits "
            text += f"more to {_join(above)}" if above else "no channel clearly more"
            text += f" and less to {_join(below)}" if below else ""
            text += " (paired 95 % bootstrap intervals of the difference exclude zero)."
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
        lines.append(
            f"The models (participation aside) agree, with intervals that share a common value, "
            f"on {len(agree)} of {len(comp)} channels"
            + (f" ({_join(agree)})" if agree else "")
            + f". They disagree most on {worst.channel}: from {_pct(worst.lowest)} "
            f"({MODEL_NAMES.get(worst.lowest_model, worst.lowest_model)}) to "
            f"{_pct(worst.highest)} ({MODEL_NAMES.get(worst.highest_model, worst.highest_model)})."
        )
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
