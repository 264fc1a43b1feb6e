"""Frequentist readout on sufficient statistics: per-variant estimates, lifts, tests.

- Proportions: two-proportion z-test with the pooled standard error (= R ``prop.test(x, n,
  correct = FALSE)``, whose X-squared is z²); the interval on the difference is the unpooled Wald
  interval, as R reports it. With few conversions (or non-conversions) the normal approximation
  fails: when an expected count of the 2×2 table under H0 is below 5 (Cochran's rule; R's
  ``prop.test`` warns there) the p-value is Fisher's exact test's (= R ``fisher.test``, conditional
  on the margins) and the interval Newcombe's hybrid score interval (Newcombe 1998, method 10).
- Means: Welch's t-test and interval (= R ``t.test(x, y)``; Welch-Satterthwaite df).
- Ratio metrics (Σy / Σd over customers): delta-method variance (Deng et al. 2018), z-test.
- CUPED (Deng, Xu, Kohavi & Walker 2013): ``ŷ_adj = ŷ − θ (x̄_v − x̄)`` with ``θ`` the pooled
  within-variant ``cov(y, x) / var(x)``; for ratio metrics ``y`` is the linearised ratio
  ``(y − R d) / μ_d``. Adjusted comparisons use a z-test.
- Relative lift ``ŷ_v / ŷ_c − 1`` with a delta-method interval
  (``var ≈ var_v / ŷ_c² + ŷ_v² var_c / ŷ_c⁴``).
- Non-inferiority for guardrails: H0 lift ≤ −margin (or ≥ +margin when lower is better),
  one-sided z-test on the relative lift.
Mann-Whitney and the bootstrap live in :mod:`cjlib.experiments.resampling`.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import stats as st

from cjlib.experiments.metrics import Metric
from cjlib.experiments.stats import moments
from cjlib.stats import benjamini_hochberg, holm, newcombe_interval, wilson_interval

__all__ = [
    "ALTERNATIVES",
    "CORRECTIONS",
    "SCOPES",
    "prop_test",
    "exact_prop_test",
    "welch_test",
    "variant_estimates",
    "compare",
    "adjust",
]

ALTERNATIVES = ("two-sided", "greater", "less")
CORRECTIONS = ("holm", "bh", "none")
SCOPES = ("metric", "all")
_N = NormalDist()


def _z(confidence: float) -> float:
    return _N.inv_cdf(0.5 + confidence / 2)


def _p_from_z(z: float, alternative: str) -> float:
    if np.isnan(z):
        return float("nan")
    if alternative == "greater":
        return 1 - _N.cdf(z)
    if alternative == "less":
        return _N.cdf(z)
    return 2 * (1 - _N.cdf(abs(z)))


def _check(alternative: str, confidence: float) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")


def _groups(table: pd.DataFrame, keys: list[str]) -> dict[tuple, list[dict]]:
    """Records grouped by ``keys`` in order of first appearance (fast on pandas 3)."""
    out: dict[tuple, list[dict]] = {}
    for r in table.to_dict("records"):
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def prop_test(
    x1: int, n1: int, x2: int, n2: int, *, alternative: str = "two-sided", confidence=0.95
) -> dict:
    """Two-proportion z-test of ``p1 − p2`` (R ``prop.test(c(x1, x2), c(n1, n2), correct=FALSE)``).

    Returns ``diff, low, high, z, chi2 (= z²), p_value``; the interval is the unpooled Wald one.
    """
    _check(alternative, confidence)
    if min(n1, n2) <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError(f"need 0 <= x <= n and n > 0, got x=({x1}, {x2}), n=({n1}, {n2})")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se0 if se0 > 0 else float("nan")
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    half = _z(confidence) * se
    return dict(
        diff=p1 - p2,
        low=p1 - p2 - half,
        high=p1 - p2 + half,
        z=z,
        chi2=z * z,
        p_value=_p_from_z(z, alternative),
        se=se,
    )


def exact_prop_test(
    x1: int, n1: int, x2: int, n2: int, *, alternative: str = "two-sided", confidence=0.95
) -> dict | None:
    """For small counts: ``None`` when every expected count of the 2×2 table under H0 (pooled
    rate × n) is at least 5, else ``diff, low, high, p_value`` with Fisher's exact p-value (R
    ``fisher.test``; ``greater`` = p1 > p2) and Newcombe's interval on ``p1 − p2``."""
    _check(alternative, confidence)
    pooled = (x1 + x2) / (n1 + n2)
    if min(pooled, 1 - pooled) * min(n1, n2) >= 5:
        return None
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    p = float(st.fisher_exact(table, alternative=alternative).pvalue)
    low, high = newcombe_interval(x1, n1, x2, n2, confidence=confidence)
    return dict(diff=x1 / n1 - x2 / n2, low=float(low), high=float(high), p_value=min(p, 1.0))


def welch_test(
    mean1: float,
    var1: float,
    n1: float,
    mean2: float,
    var2: float,
    n2: float,
    *,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> dict:
    """Welch's two-sample t-test of ``mean1 − mean2`` from summaries (R ``t.test(x, y)``).

    ``var`` are sample variances (n − 1). Returns ``diff, low, high, t, df, p_value, se``.
    """
    _check(alternative, confidence)
    a, b = var1 / n1, var2 / n2
    se = np.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1)) if se > 0 else float("nan")
    diff = mean1 - mean2
    t = diff / se if se > 0 else float("nan")
    if alternative == "two-sided":
        p = 2 * st.t.sf(abs(t), df)
    else:
        p = st.t.sf(t, df) if alternative == "greater" else st.t.cdf(t, df)
    half = st.t.ppf(0.5 + confidence / 2, df) * se
    return dict(diff=diff, low=diff - half, high=diff + half, t=t, df=df, p_value=float(p), se=se)


def variant_estimates(
    stats: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    cuped: bool = False,
    confidence: float = 0.95,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per (``by``..., metric, variant): ``n``, ``estimate`` with interval, its variance.

    ``estimate`` is the share of customers (binary; Wilson interval), the mean per customer
    (t interval) or Σy / Σd (ratio; delta-method normal interval). With ``cuped`` and a
    covariate, the CUPED-adjusted estimate, ``theta`` and the ``variance_reduction`` it bought.
    """
    kinds = {m.name: m for m in metrics}
    rows = []
    group_cols = ["metric", *by]
    for key, recs in _groups(stats, group_cols).items():
        m = kinds[key[0]]
        mom = {r["variant"]: moments(r) for r in recs}
        adjust = cuped and all(r["s_x"] == r["s_x"] for r in recs) and sum(r["n"] for r in recs) > 3
        theta, x_all, lin = float("nan"), float("nan"), {}
        if adjust:
            num = den = 0.0
            for r in recs:
                mo, n = mom[r["variant"]], r["n"]
                if n < 2:
                    continue
                mx = r["s_x"] / n
                var_x = (r["s_xx"] - n * mx * mx) / (n - 1)
                cov_yx = (r["s_yx"] - n * mo["mean_y"] * mx) / (n - 1)
                cov_dx = (r["s_dx"] - n * mo["mean_d"] * mx) / (n - 1)
                cov_lx = (cov_yx - mo["ratio"] * cov_dx) / mo["mean_d"]
                lin[r["variant"]] = (mx, var_x, cov_lx)
                num += cov_lx * (n - 1)
                den += var_x * (n - 1)
            theta = num / den if den > 0 else 0.0
            x_all = sum(r["s_x"] for r in recs) / sum(r["n"] for r in recs)
        for r in recs:
            mo, n = mom[r["variant"]], r["n"]
            est, var = mo["ratio"], mo["var_ratio"]
            if m.kind == "binary" and n > 0:
                var = est * (1 - est) / n
            row = {c: r[c] for c in by} | {"metric": m.name, "variant": r["variant"], "n": n}
            reduction = float("nan")
            adjusted = bool(adjust and r["variant"] in lin)
            if adjusted:
                mx, var_x, cov_lx = lin[r["variant"]]
                raw = var
                est = est - theta * (mx - x_all)
                var = max(var - 2 * theta * cov_lx / n + theta**2 * var_x / n, 0.0)
                reduction = 1 - var / raw if raw > 0 else float("nan")
            half = _z(confidence) * np.sqrt(var)
            low, high = est - half, est + half
            if m.kind == "binary" and not adjust:
                low, high = (float(v) for v in wilson_interval(r["s_y"], n, confidence=confidence))
            elif m.kind == "mean" and not adjust and n > 1:
                half = st.t.ppf(0.5 + confidence / 2, n - 1) * np.sqrt(var)
                low, high = est - half, est + half
            row |= dict(
                estimate=est,
                low=low,
                high=high,
                var=var,
                var_y=mo["var_y"],
                s_y=r["s_y"],
                s_d=r["s_d"],
                theta=theta,
                variance_reduction=reduction,
                cuped=adjusted,
            )
            rows.append(row)
    return pd.DataFrame(rows)


def compare(
    estimates: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    control: str = "control",
    alternative: str = "two-sided",
    confidence: float = 0.95,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Every variant against ``control`` for every metric (``estimates`` from
    :func:`variant_estimates`): difference and relative lift with intervals, test, p-values,
    and for guardrails the non-inferiority p-value against ``margin``."""
    _check(alternative, confidence)
    info = {m.name: m for m in metrics}
    z = _z(confidence)
    rows = []
    for key, recs in _groups(estimates, ["metric", *by]).items():
        m = info[key[0]]
        by_v = {r["variant"]: r for r in recs}
        if control not in by_v:
            continue
        c = by_v[control]
        # CUPED even when the control's variance is 0 (no conversions): its reduction is NaN then
        adjusted = bool(c.get("cuped", False))
        for name, v in by_v.items():
            if name == control:
                continue
            row = {col: v[col] for col in by} | {"metric": m.name, "role": m.role}
            row |= {"variant": name, "control": control, "n_control": c["n"], "n_variant": v["n"]}
            row |= {"control_value": c["estimate"], "variant_value": v["estimate"]}
            if min(c["n"], v["n"]) < 2:
                rows.append(row | {"test": "too few customers"})
                continue
            if m.kind == "binary" and not adjusted:
                counts = (int(v["s_y"]), int(v["n"]), int(c["s_y"]), int(c["n"]))
                kw = dict(alternative=alternative, confidence=confidence)
                res = exact_prop_test(*counts, **kw)
                test = "Fisher's exact test (an expected count < 5)"
                if res is None:
                    res, test = prop_test(*counts, **kw), "two-proportion z-test"
            elif m.kind == "mean" and not adjusted:
                res = welch_test(
                    v["estimate"],
                    v["var_y"],
                    v["n"],
                    c["estimate"],
                    c["var_y"],
                    c["n"],
                    alternative=alternative,
                    confidence=confidence,
                )
                test = "Welch t-test"
            else:
                diff = v["estimate"] - c["estimate"]
                se = np.sqrt(v["var"] + c["var"])
                zz = diff / se if se > 0 else float("nan")
                res = dict(
                    diff=diff,
                    low=diff - z * se,
                    high=diff + z * se,
                    p_value=_p_from_z(zz, alternative),
                )
                test = "z-test (delta method)" if m.is_ratio else "z-test"
                test += ", CUPED" if adjusted else ""
            base, new = c["estimate"], v["estimate"]
            lift = new / base - 1 if base else float("nan")
            se_lift = np.sqrt(v["var"] / base**2 + new**2 * c["var"] / base**4) if base else np.nan
            row |= dict(
                diff=res["diff"],
                diff_low=res["low"],
                diff_high=res["high"],
                lift=lift,
                lift_low=lift - z * se_lift,
                lift_high=lift + z * se_lift,
                p_value=res["p_value"],
                test=test,
                se_lift=se_lift,
            )
            if m.role == "guardrail":
                row["margin"] = m.margin
                sign = 1 if m.higher_is_better else -1
                zz = sign * (lift + sign * m.margin) / se_lift if se_lift > 0 else np.nan
                row["p_noninferiority"] = 1 - _N.cdf(zz) if not np.isnan(zz) else np.nan
            rows.append(row)
    out = pd.DataFrame(rows)
    if "p_noninferiority" not in out:
        out["p_noninferiority"] = np.nan
    return out


def adjust(
    table: pd.DataFrame,
    *,
    correction: str = "holm",
    scope: str = "metric",
    column: str = "p_value",
    by: Sequence[str] = (),
) -> pd.Series:
    """Adjusted p-values for ``table[column]``: Holm (family-wise) or Benjamini-Hochberg (FDR),
    within each metric across variants (``scope="metric"``) or across every row (``"all"``);
    ``by`` adds grouping columns (e.g. one family per segment variable)."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {list(CORRECTIONS)}, got {correction!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    p = table[column].astype(float)
    if correction == "none" or p.empty:
        return p.copy()
    fn = holm if correction == "holm" else benjamini_hochberg
    keys = (["metric"] if scope == "metric" else []) + list(by)
    if not keys:
        return pd.Series(fn(p.to_numpy()), index=table.index)
    out = pd.Series(np.nan, index=table.index)
    for _, grp in table.groupby(keys, sort=False):
        out.loc[grp.index] = fn(p.loc[grp.index].to_numpy())
    return out
