"""Readout helpers for :func:`cjlib.experiments.analyze`: CUPED variance reduction per
comparison, corrected p-values and significance, and the tests run on request."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cjlib.experiments.frequentist import adjust
from cjlib.experiments.resampling import bootstrap_lift, mann_whitney
from cjlib.experiments.stats import customer_values, value_counts

__all__ = ["with_reduction", "corrected", "extra_tests"]


def with_reduction(comp, raw, est, control) -> pd.DataFrame:
    """Share of the variance of the difference removed by CUPED (0 without a covariate)."""
    if comp.empty:
        return comp
    key = ["metric", "variant"]
    v_raw, v_adj = raw.set_index(key)["var"], est.set_index(key)["var"]
    out = []
    for r in comp.to_dict("records"):
        a = v_raw[(r["metric"], r["variant"])] + v_raw[(r["metric"], control)]
        b = v_adj[(r["metric"], r["variant"])] + v_adj[(r["metric"], control)]
        out.append(1 - b / a if a > 0 else np.nan)
    return comp.assign(variance_reduction=out)


def corrected(
    comp: pd.DataFrame, correction: str, scope: str, alpha: float, metrics
) -> pd.DataFrame:
    """Adjusted p-values (``correction`` within ``scope``), ``significant`` at ``alpha``, and the
    guardrails' non-inferiority p-values adjusted within the guardrail family."""
    comp = comp.copy()
    comp["p_adjusted"] = adjust(comp, correction=correction, scope=scope)
    comp["significant"] = comp["p_adjusted"] < alpha
    guard = comp["role"] == "guardrail"
    comp["p_noninferiority_adjusted"] = np.nan
    if guard.any():
        comp.loc[guard, "p_noninferiority_adjusted"] = adjust(
            comp[guard], correction=correction, scope=scope, column="p_noninferiority"
        )
    return comp


def extra_tests(comp, table, metrics, eng, tests, control, alpha, n_boot, random_state):
    """Mann-Whitney (p-value, probability of superiority; not for ratio metrics) and bootstrap
    (lift interval, p-value) columns for the comparisons, when ``tests`` asks for them."""
    if not tests or comp.empty:
        return comp
    comp = comp.copy()
    info = {m.name: m for m in metrics}
    for name in dict.fromkeys(comp["metric"]):
        m = info[name]
        rows = comp.index[comp["metric"] == name]
        if "mann_whitney" in tests and not m.is_ratio:
            counts = value_counts(table, m, eng)
            for i in rows:
                res = mann_whitney(counts, comp.at[i, "variant"], control)
                comp.loc[i, ["p_mann_whitney", "prob_superiority"]] = [
                    res["p_value"],
                    res["prob_superiority"],
                ]
        if "bootstrap" in tests:
            values = customer_values(table, m, eng)
            for i in rows:
                res = bootstrap_lift(
                    values,
                    comp.at[i, "variant"],
                    control,
                    n_boot=n_boot,
                    confidence=1 - alpha,
                    random_state=random_state,
                )
                comp.loc[i, ["boot_lift_low", "boot_lift_high", "p_bootstrap"]] = [
                    res["lift_low"],
                    res["lift_high"],
                    res["p_value"],
                ]
    return comp
