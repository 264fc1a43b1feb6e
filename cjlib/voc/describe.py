"""Plain-language findings and method notes for the voice-of-the-customer results."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["describe_voc", "METHODS"]

METHODS = [
    "NPS = % promoters (9-10) - % detractors (0-6) of the answers with an NPS score, in points. "
    "Promoter and detractor shares come from one multinomial sample, so the interval uses the "
    "variance of their difference, (p + d - (p - d)^2) / n (Rocks 2016), not the sum of two "
    "binomial variances; 95 % Wald interval, clipped to [-100, 100].",
    "CSAT share = answers of 4 or 5 / answers with a CSAT score (1-5), with a Wilson interval; "
    "the emotion track is the mean CSAT with a Student t interval.",
    "Wave-to-wave changes compare consecutive survey waves (independent samples): NPS change "
    "with a Wald interval and z test, CSAT-share change with Newcombe's hybrid score interval "
    "and the pooled two-proportion test; p-values Holm-adjusted over all wave comparisons.",
    "Answers are treated as independent; customers who answered more than once are counted "
    "once in `respondents`. Groups with fewer respondents than the privacy threshold are "
    "suppressed and left out of the tests.",
    "Distinguishing terms: weighted log-odds ratio with an informative Dirichlet prior "
    "(Monroe, Colaresi & Quinn 2008), detractors' against promoters' comments within each "
    "stage; the prior is the stage's own comments scaled to 100 pseudo-counts; z > 0 marks "
    "detractor terms. Example comments have e-mail addresses, links, handles, numbers and "
    "identifier-like tokens removed.",
]


def _pts(x: float) -> str:
    return f"{x:+.0f}" if not math.isnan(x) else "n/a"


def describe_voc(result, terms=None) -> list[str]:
    """Findings from a :class:`~cjlib.voc.VocResult` (and optionally a ``TermsResult``)."""
    lines = []
    o = result.overall.iloc[0]
    if o["nps_answers"]:
        lines.append(
            f"Overall NPS is {_pts(o.nps)} (95 % CI {_pts(o.nps_low)} to {_pts(o.nps_high)}; "
            f"{int(o.nps_answers):,} answers from {int(o.respondents):,} customers); "
            f"{o.csat_share:.0%} of CSAT answers are 4 or 5 "
            f"(CI {o.csat_low:.0%} to {o.csat_high:.0%})."
        )
    for dim in ("stage", "persona", "touchpoint"):
        if dim not in set(result.by.get("dimension", pd.Series(dtype=str))):
            continue
        t = result.table(dim).dropna(subset=["nps"])
        if len(t) < 2:
            continue
        lo, hi = t.loc[t["nps"].idxmin()], t.loc[t["nps"].idxmax()]
        separated = lo.nps_high < hi.nps_low
        lines.append(
            f"By {dim}, NPS is lowest for {lo[dim]} ({_pts(lo.nps)}, CI {_pts(lo.nps_low)} to "
            f"{_pts(lo.nps_high)}) and highest for {hi[dim]} ({_pts(hi.nps)}, CI "
            f"{_pts(hi.nps_low)} to {_pts(hi.nps_high)})"
            + ("; the intervals do not overlap." if separated else "; the intervals overlap.")
        )
    w = result.waves
    if len(w):
        sig = w[(w["nps_p_adjusted"] < 0.05) | (w["csat_p_adjusted"] < 0.05)]
        if len(sig):
            r = sig.iloc[0]
            lines.append(
                f"{len(sig)} of {len(w)} wave-to-wave changes survive the Holm correction; e.g. "
                f"{r.group if r.within != 'all' else 'overall'} {r.from_wave} to {r.to_wave}: "
                f"NPS {_pts(r.nps_change)} points, CSAT share {_pts(r.csat_change * 100)} "
                "percentage points."
            )
        else:
            lines.append(
                f"None of the {len(w)} wave-to-wave changes in NPS or CSAT survives the Holm "
                "correction: the scores are stable from wave to wave within sampling noise."
            )
    if terms is not None and len(terms.terms):
        det = terms.terms[terms.terms["side"] == "detractor"]
        if len(det):
            top = det.sort_values("z", ascending=False).iloc[0]
            lines.append(
                f"The term most typical of detractors is '{top.term}' at {top.group} "
                f'(z = {top.z:.1f}; e.g. "{top.example}").'
            )
    return lines
