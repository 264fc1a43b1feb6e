"""Plain-language findings and the methods paragraph for the persona report."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["describe_personas", "persona_methods"]


def _pct(x: float) -> str:
    return "—" if pd.isna(x) else f"{100 * x:.1f} %"


def describe_personas(result: Any, *, min_cell_size: int = 10) -> list[str]:
    """Findings from a :class:`~cjlib.personas.PersonaResult`; the first line is the headline.
    Every share names its denominator and carries its interval."""
    summary = result.cards.summary
    total = int(summary["customers"].sum())
    sel, stab = result.selection, result.stability
    how = (
        f"k = {sel.chosen_k} chosen by {sel.criterion.replace('_', ' ')} over k = "
        f"{min(sel.table.k)}–{max(sel.table.k)}"
        if sel is not None
        else f"k = {len(summary)} fixed by the analyst"
    )
    top = summary.iloc[0]
    lines = [
        f"{len(summary)} personas among {total:,} customers ({how}); the largest, "
        f"'{top.persona}', holds {_pct(top.share)} of them (95 % CI {_pct(top.share_low)} to "
        f"{_pct(top.share_high)})."
    ]
    if stab is not None:
        s = stab.summary
        flagged = s["unstable_personas"]
        lines.append(
            f"Refitting on {s['n_boot']} bootstrap samples reproduces the personas with an "
            f"adjusted Rand index of {s['ari_mean']:.2f} (2.5–97.5 %: {s['ari_low']:.2f} to "
            f"{s['ari_high']:.2f}); "
            + (
                f"every persona is stable (Jaccard >= {stab.params['flag_below']:.2f})."
                if not flagged
                else f"unstable personas, to read with care: {', '.join(map(str, flagged))}."
            )
        )
    stages = result.cards.stages
    att = result.cards.attitudes.set_index("persona_id") if len(result.cards.attitudes) else None
    for row in summary.itertuples():
        if row.customers < min_cell_size:
            lines.append(f"Persona {row.persona_id} has fewer than {min_cell_size} customers.")
            continue
        text = (
            f"Persona {row.persona_id}, '{row.persona}': {_pct(row.share)} of customers "
            f"({int(row.customers):,})"
        )
        st = stages[stages.persona_id == row.persona_id] if len(stages) else stages
        if len(st) > 2:
            buy = st.iloc[2]
            text += (
                f"; {_pct(buy.reached_share)} of them reached {buy.stage} (95 % CI "
                f"{_pct(buy.reached_low)} to {_pct(buy.reached_high)})"
            )
            lost = st.dropna(subset=["lost_share"])
            if len(lost):
                worst = lost.loc[lost.lost_share.idxmax()]
                prev = st.stage.iloc[list(st.stage).index(worst.stage) - 1]
                text += (
                    f", and the biggest drop-off is from {prev} to {worst.stage} "
                    f"({_pct(worst.lost_share)} of those reaching {prev} go no further)"
                )
        if att is not None and "nps_score" in att and row.persona_id in att.index:
            a = att.loc[row.persona_id]
            if a.respondents >= min_cell_size:
                text += (
                    f"; NPS {a.nps_score:+.0f} (95 % CI {a.nps_low:+.0f} to {a.nps_high:+.0f}, "
                    f"{int(a.respondents):,} respondents)"
                )
        lines.append(text + ".")
    gaps = result.missing[result.missing["missing"] > 0]
    if len(gaps):
        lines.append(
            f"{len(gaps)} features had missing values; each was handled as the missing-value "
            "table says (filled with the median plus a missing indicator by default, never "
            "silently)."
        )
    return lines


def persona_methods(result: Any) -> list[str]:
    """Paragraphs for the methodology appendix."""
    p = result.params
    model, prep = p.get("model", {}), p.get("prepare", {})
    weights = ", ".join(f"{b} {w:g}" for b, w in prep.get("weights", {}).items())
    return [
        "Features per customer are computed in the engine from the events (recency, tenure, "
        "orders, revenue, sessions, touches, channel mix, furthest stage, regressions, days "
        "between stages), joined with the customers table (demographics) and survey answers "
        "(mean NPS and CSAT per respondent).",
        f"Preparation: block weights {weights} (each block's total variance equals its weight); "
        "right-skewed non-negative features log1p-transformed; numeric features standardised; "
        "categorical features one-hot encoded at 1/sqrt(2); missing values handled as "
        f"'{prep.get('missing')}' (see the missing-value table).",
        f"Clustering: {model.get('method')} fitted on at most {model.get('sample_size')} "
        "customers, every customer assigned to the nearest persona; persona 1 is the largest. "
        "k by prediction strength (Tibshirani & Walther 2005): the largest k whose clusters "
        "reproduce on held-out halves (threshold 0.9); silhouette, Calinski–Harabasz and "
        "Davies–Bouldin are shown for comparison.",
        "Stability: bootstrap refits; adjusted Rand index between each refit and the reported "
        "personas; per persona the mean Jaccard similarity with its best-matching bootstrap "
        "cluster (Hennig 2007), flagged below 0.75.",
        "Cards: numeric traits compare the persona with all other customers by Cohen's d "
        "(interval from Hedges & Olkin's standard error), categorical levels by Cohen's h and an "
        "index (share in persona / share overall x 100); NPS is % promoters minus % detractors "
        "among respondents with a normal-approximation interval; CSAT mean with a t interval.",
    ]
