"""Segment-level effects with the same corrections, and the Simpson's-paradox check.

Segments come from the customers table (device, region, acquisition channel...), a persona file
(``customer_id, persona``), or the week of assignment (``week``). Each dimension is one engine
query of per-(segment, variant) sufficient statistics; the same tests as the overall readout run
locally, and p-values are corrected within each (dimension, metric) family, or across all rows.
Segments with fewer than ``min_size`` customers in a variant are not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.experiments.frequentist import adjust, compare, variant_estimates
from cjlib.experiments.metrics import Metric
from cjlib.experiments.stats import variant_stats

__all__ = ["segment_effects", "simpson_check", "segment_columns"]


def segment_columns(
    outcomes: Any,
    engine: Engine,
    *,
    customers: Any = None,
    persona: Any = None,
    columns: Sequence[str] = (),
) -> Any:
    """``outcomes`` joined with the segment ``columns`` (from ``customers``, ``persona`` or
    ``week``), each cast to text. Unknown columns raise with the ones available."""
    import ibis

    t = outcomes
    wanted = list(columns)
    have: list[str] = ["week"] if "assigned_at" in t.columns else []
    sources = []
    if customers is not None:
        c, _ = as_table(customers, engine)
        sources.append(c)
        have += [x for x in c.columns if x != "customer_id"]
    if persona is not None:
        p, _ = as_table(persona, engine)
        if not {"customer_id", "persona"} <= set(p.columns):
            raise ValueError(f"persona file needs columns customer_id, persona; got {p.columns}")
        sources.append(p.select("customer_id", "persona"))
        have.append("persona")
    missing = [c for c in wanted if c not in have]
    if missing:
        raise ValueError(f"segments: unknown column(s) {missing}; available: {sorted(set(have))}")
    if "week" in wanted:
        t = t.mutate(week=t.assigned_at.truncate("W").cast("date").cast("string"))
    for src in sources:
        cols = [c for c in wanted if c in src.columns and c not in t.columns]
        if cols:
            s = src.select("customer_id", *[src[c].cast("string").name(c) for c in cols])
            s = s.distinct(on="customer_id", keep="first")
            t = t.left_join(s, "customer_id").drop("customer_id_right")
    for c in wanted:
        t = t.mutate(**{c: t[c].fill_null(ibis.literal("(missing)"))})
    return t


def segment_effects(
    table: Any,
    metrics: Sequence[Metric],
    engine: Engine,
    *,
    dimensions: Sequence[str],
    control: str = "control",
    confidence: float = 0.95,
    correction: str = "holm",
    scope: str = "metric",
    min_size: int = 10,
    cuped: bool = False,
) -> pd.DataFrame:
    """Per (dimension, segment, metric, variant): sizes, difference and lift with intervals,
    p-value and the adjusted p-value (family = one dimension x one metric, or every row with
    ``scope="all"``). Rows where a variant has fewer than ``min_size`` customers are dropped."""
    frames = []
    for dim in dimensions:
        stats = variant_stats(table, metrics, engine, by=[dim])
        est = variant_estimates(stats, metrics, cuped=cuped, confidence=confidence, by=[dim])
        comp = compare(est, metrics, control=control, confidence=confidence, by=[dim])
        if comp.empty:
            continue
        comp = comp.rename(columns={dim: "segment"})
        comp.insert(0, "dimension", dim)
        frames.append(comp)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    small = (out["n_control"] < min_size) | (out["n_variant"] < min_size)
    out = out[~small].reset_index(drop=True)
    if out.empty:
        return out
    out["p_adjusted"] = adjust(out, correction=correction, scope=scope, by=["dimension"])
    return out


def simpson_check(
    pooled: pd.DataFrame, segments: pd.DataFrame, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Compare the pooled direction of each effect with its direction within strata.

    For each (dimension, metric, variant): the pooled difference, how many strata agree in sign,
    and the stratum-size-weighted mean of the within-stratum differences (the effect standardised
    to the pooled mix). ``reversal`` is True when the weighted within-strata effect has the
    opposite sign of the pooled one, or every stratum disagrees with it (Simpson's paradox: the
    mix of strata differs between variants, e.g. after a ramp-up or a broken split).
    """
    if segments.empty:
        return pd.DataFrame(
            columns=[
                "dimension",
                "metric",
                "variant",
                "pooled_diff",
                "within_diff",
                "strata",
                "strata_agreeing",
                "reversal",
                "message",
            ]
        )
    pooled = pooled.set_index(["metric", "variant"])
    rows = []
    for (dim, metric, variant), g in segments.groupby(["dimension", "metric", "variant"]):
        if (metric, variant) not in pooled.index:
            continue
        p = float(pooled.loc[(metric, variant), "diff"])
        w = (g["n_control"] + g["n_variant"]).to_numpy(float)
        d = g["diff"].to_numpy(float)
        ok = ~np.isnan(d)
        within = float(np.average(d[ok], weights=w[ok])) if ok.any() else np.nan
        agree = int((np.sign(d[ok]) == np.sign(p)).sum())
        reversal = bool(p != 0 and ok.sum() >= 2 and (np.sign(within) == -np.sign(p) or agree == 0))
        msg = ""
        if reversal:
            msg = (
                f"Simpson's paradox on {metric} by {dim}: pooled difference {p:+.4g} but "
                f"{agree} of {int(ok.sum())} strata agree (size-weighted within-strata "
                f"difference {within:+.4g}); the variants' {dim} mix differs. Trust the "
                "stratified comparison and check the assignment."
            )
        rows.append(
            dict(
                dimension=dim,
                metric=metric,
                variant=variant,
                pooled_diff=p,
                within_diff=within,
                strata=int(ok.sum()),
                strata_agreeing=agree,
                reversal=reversal,
                message=msg,
            )
        )
    return pd.DataFrame(rows)
