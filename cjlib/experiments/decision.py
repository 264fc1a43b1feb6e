"""The decision in plain words (ship, do not ship, keep running, inconclusive) and the findings.

Rules, in order (``method`` chooses the evidence for the primary metrics):

1. A failed check (sample ratio, multiple exposure, pre-period balance): **inconclusive**: the
   readout cannot be trusted until the cause is found.
2. A primary metric credibly worse for every variant, or a guardrail clearly harmed (its lift
   interval lies wholly beyond the non-inferiority margin): **do not ship**.
3. A variant credibly better on every primary metric, with every guardrail shown non-inferior:
   **ship** that variant (the best on the first primary metric if several qualify).
4. Better on the primaries but a guardrail not yet shown non-inferior, or no credible difference
   yet while the sample is below the size planned for the minimum detectable effect (or the
   method is sequential): **keep running**.
5. Otherwise **inconclusive**: enough customers, no effect as large as the MDE.

"Credibly better" is: frequentist, adjusted p < alpha in the good direction; Bayesian, chance to
beat control >= ``bayes_threshold``; sequential, the always-valid p-value at the last look < alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from cjlib.experiments.metrics import Metric

__all__ = ["DECISIONS", "METHODS", "decide", "describe", "methods"]

DECISIONS = ("ship", "do not ship", "keep running", "inconclusive")
METHODS = ("frequentist", "bayesian", "sequential")


def _pct(x: float) -> str:
    return "n/a" if x is None or x != x else f"{x:+.1%}"


def _pval(p: float) -> str:
    return "n/a" if p != p else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")


def _effect(row: dict, m: Metric | None) -> str:
    """The lift with its interval or, when the control's value is 0 (no relative lift), the
    difference: in percentage points for proportions, in the metric's units otherwise."""
    lift, diff = row.get("lift", float("nan")), row.get("diff", float("nan"))
    if lift == lift or diff != diff:  # a lift to show, or no difference either
        return f"lift {_pct(lift)} (CI {_pct(row.get('lift_low'))} to {_pct(row.get('lift_high'))})"
    pts = m is not None and m.kind == "binary"
    scale, unit, fmt = (100, " pts", "+.2f") if pts else (1, "", "+.3g")
    d, lo, hi = (format(row[c] * scale, fmt) for c in ("diff", "diff_low", "diff_high"))
    return f"difference {d}{unit} (CI {lo} to {hi}; control at 0)"


def _verdict(
    row: dict,
    m: Metric,
    method: str,
    bayes: pd.DataFrame,
    seq: pd.DataFrame,
    alpha: float,
    threshold: float,
) -> tuple[str, str]:
    """('better' | 'worse' | 'unclear', evidence in words) for one primary comparison."""
    good = 1 if m.higher_is_better else -1
    lift = f"{m.name} {_effect(row, m)}"
    if method == "bayesian":
        b = bayes[(bayes.metric == m.name) & (bayes.variant == row["variant"])]
        if b.empty:
            return "unclear", lift
        chance = float(b["chance_to_beat"].iloc[0])
        words = f"{m.name}: {chance:.1%} chance to beat control, lift {_pct(b['lift'].iloc[0])}"
        if chance >= threshold:
            return "better", words
        return ("worse" if chance <= 1 - threshold else "unclear"), words
    if method == "sequential":
        s = seq[(seq.metric == m.name) & (seq.variant == row["variant"])]
        if s.empty:
            return "unclear", lift
        last = s.iloc[-1]
        words = (
            f"{m.name}: always-valid p = {last['always_valid_p']:.3g} after {len(s)} daily looks"
        )
        if last["always_valid_p"] < alpha:
            return ("better" if good * last["diff"] > 0 else "worse"), words
        return "unclear", words
    p = row.get("p_adjusted", row["p_value"])
    words = f"{lift}, adjusted {_pval(p)}"
    if p == p and p < alpha:
        return ("better" if good * row["diff"] > 0 else "worse"), words
    return "unclear", words


def decide(
    checks: pd.DataFrame,
    comparisons: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    method: str = "frequentist",
    bayes: pd.DataFrame | None = None,
    sequential: pd.DataFrame | None = None,
    plan: pd.DataFrame | None = None,
    alpha: float = 0.05,
    bayes_threshold: float = 0.95,
) -> tuple[str, tuple[str, ...]]:
    """``(decision, reasons)`` from the results (see the module doc for the rules)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    bayes = bayes if bayes is not None else pd.DataFrame(columns=["metric", "variant"])
    sequential = sequential if sequential is not None else pd.DataFrame(columns=["metric"])
    failed = checks[checks["status"] == "fail"]
    if not failed.empty:
        return "inconclusive", tuple(
            ["A check failed, so the results cannot be trusted yet."] + list(failed["message"])
        )
    info = {m.name: m for m in metrics}
    primaries = [m for m in metrics if m.role == "primary"]
    reasons: list[str] = []
    guard_harm, guard_open = [], []
    for row in comparisons[comparisons["role"] == "guardrail"].to_dict("records"):
        m = info[row["metric"]]
        beyond = row["lift_high"] < -m.margin if m.higher_is_better else row["lift_low"] > m.margin
        p_ni = row.get("p_noninferiority_adjusted", row.get("p_noninferiority"))
        if beyond:
            guard_harm.append(
                f"guardrail {m.name} harmed in {row['variant']}: lift "
                f"{_pct(row['lift'])}, beyond the {m.margin:.0%} margin"
            )
        elif not (p_ni == p_ni and p_ni < alpha):
            guard_open.append(
                f"guardrail {m.name} in {row['variant']} not yet shown within "
                f"{m.margin:.0%} of control (lift {_pct(row['lift'])})"
            )
    variants = list(dict.fromkeys(comparisons["variant"]))
    status: dict[str, list[str]] = {}
    for v in variants:
        for m in primaries:
            rows = comparisons[(comparisons.metric == m.name) & (comparisons.variant == v)]
            if rows.empty:
                continue
            verdict, words = _verdict(
                rows.iloc[0].to_dict(), m, method, bayes, sequential, alpha, bayes_threshold
            )
            status.setdefault(v, []).append(verdict)
            reasons.append(f"{v} vs control: {words} → {verdict}.")
    winners = [v for v, s in status.items() if s and all(x == "better" for x in s)]
    losers = [v for v, s in status.items() if s and any(x == "worse" for x in s)]
    if guard_harm:
        return "do not ship", tuple(guard_harm + reasons)
    if len(winners) > 1:  # the best on the first primary metric, in its good direction
        first = comparisons[comparisons.metric == primaries[0].name].set_index("variant")["lift"]
        sign = 1 if primaries[0].higher_is_better else -1
        winners.sort(key=lambda v: -sign * float(first.get(v, 0.0)))
    if winners and not guard_open:
        return "ship", tuple([f"Ship {winners[0]}: better on every primary metric."] + reasons)
    if losers and len(losers) == len(status):
        return "do not ship", tuple(["Every variant is worse on a primary metric."] + reasons)
    if winners:
        return "keep running", tuple(guard_open + reasons)
    short = []
    if plan is not None and not plan.empty:
        for r in plan[plan["role"] == "primary"].to_dict("records"):
            need = r.get("n_needed")
            if need == need and need is not None and r["n_now"] < need:
                days = r.get("days_needed")
                extra = (
                    f"; about {int(days)} days at the stated traffic"
                    if days == days and days
                    else ""
                )
                short.append(
                    f"{r['metric']}: {r['n_now']:,} customers per variant of the "
                    f"{int(need):,} planned for a {r['mde']:.0%} lift{extra}"
                )
    if method == "sequential" or short:
        why = short or ["the sequential test has not crossed its boundary; looking again is safe"]
        return "keep running", tuple(["No credible difference yet: " + "; ".join(why)] + reasons)
    mde = ""
    if plan is not None and not plan.empty:
        prim = plan[plan["role"] == "primary"]
        if not prim.empty and not math.isnan(prim["mde_now"].iloc[0]):
            mde = f" any true lift is probably smaller than {prim['mde_now'].iloc[0]:.1%}"
    return "inconclusive", tuple(
        [f"Enough customers, but no credible difference on the primary metric;{mde}."] + reasons
    )


def describe(
    decision: str,
    reasons: Sequence[str],
    checks: pd.DataFrame,
    comparisons: pd.DataFrame,
    simpson: pd.DataFrame | None,
    metrics: Sequence[Metric] = (),
) -> list[str]:
    """Findings in plain language, headline first."""
    info = {m.name: m for m in metrics}
    primary = comparisons[comparisons["role"] == "primary"]
    head = f"Decision: {decision}."
    if not primary.empty:
        r = primary.iloc[0]
        head += f" {r['metric']} {_effect(r, info.get(r['metric']))} for {r['variant']} vs "
        head += f"{r['control']}."
    lines = [head]
    failed = checks[checks["status"] == "fail"]
    lines += [f"**Check failed:** {m}" for m in failed["message"]]
    if failed.empty:
        lines.append("All checks passed: " + " ".join(checks["message"]))
    lines += list(reasons)
    for r in comparisons[comparisons["role"] != "primary"].to_dict("records"):
        lines.append(
            f"{r['role'].capitalize()} {r['metric']} ({r['variant']}): "
            f"{_effect(r, info.get(r['metric']))}, "
            f"adjusted {_pval(r.get('p_adjusted', r['p_value']))}."
        )
    if simpson is not None and not simpson.empty:
        lines += [m for m in simpson.loc[simpson["reversal"], "message"]]
        if not simpson["reversal"].any():
            dims = ", ".join(sorted(set(simpson["dimension"])))
            lines.append(
                f"No Simpson's paradox: pooled and within-strata directions agree ({dims})."
            )
    return lines


def methods(metrics: Sequence[Metric], params: dict) -> list[str]:
    """Paragraphs for the appendix: metric definitions with denominators, tests, corrections."""
    window = params.get("window_days")
    when = f"within {window:g} days after" if window else "at or after"
    lines = [
        "Metrics (events counted " + when + " each customer's `assigned_at`; customers seen in "
        "more than one variant are left out): "
        + "; ".join(
            f"**{m.name}** ({m.role}, {m.kind}): {m.label}"
            + (
                " — denominator: all assigned customers"
                if m.kind != "ratio"
                else " — a ratio of sums over customers; its unit is the order or session"
            )
            + (f"; non-inferiority margin {m.margin:.0%}" if m.role == "guardrail" else "")
            for m in metrics
        )
        + ".",
        "Checks: sample-ratio mismatch by a chi-square goodness-of-fit test against the configured "
        f"split, failing when p < {params.get('srm_alpha')} and a variant is more than "
        f"{params.get('srm_min_deviation'):.1%} off its expected count; multiple exposure; "
        "pre-period balance of the covariate (standardised mean difference > 0.1 and p < 0.001).",
        "Frequentist: two-proportion z-test (as R `prop.test(correct = FALSE)`; Fisher's exact "
        "test with Newcombe's interval when an expected count is below 5), Welch t-test (as "
        "R `t.test`), delta-method z-test for ratio metrics (Deng et al. 2018); relative lift "
        "intervals by the delta method; CUPED with the pooled within-variant slope on the "
        f"pre-period covariate `{params.get('covariate')}` (Deng et al. 2013) when given; a "
        "customer without a covariate value counts as 0 (no pre-period activity), which keeps "
        "the adjusted estimate unbiased. "
        f"Alternative: {params.get('alternative')}; p-values adjusted by "
        f"{params.get('correction')} within scope '{params.get('scope')}'.",
        "Bayesian: Beta(1, 1)-Binomial for proportions; a normal large-sample posterior for means "
        "and ratios; chance to beat control, expected loss (in the metric's units) and equal-"
        f"tailed credible intervals from seeded Monte Carlo (random_state = "
        f"{params.get('random_state')}).",
        "Sequential: mixture SPRT with a normal mixture (Johari et al. 2017) and its always-valid "
        "confidence sequence (Howard et al. 2021), one look per assignment day over the customers "
        f"assigned so far; mixture scale = {params.get('mixture_lift'):.0%} of the control mean.",
        f"Decision rule: {params.get('method')} evidence on the primary metric(s); a failed "
        "check makes the readout inconclusive; a guardrail harmed beyond its margin blocks "
        "shipping; without a credible difference the test keeps running until the planned "
        f"sample for a {params.get('mde'):.0%} lift is reached (80 % power at alpha = "
        f"{params.get('alpha')}, {params.get('alternative')}, per comparison), then it is "
        "inconclusive.",
    ]
    return lines
