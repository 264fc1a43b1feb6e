"""Per-variant sufficient statistics, computed in the engine; only small tables come back.

For every metric each customer contributes a numerator ``y`` and a denominator ``d`` (``d = 1``
for per-customer metrics) and, when a pre-period covariate is given, ``x``. One query per grouping
returns, per (group, variant, metric): ``n`` (customers with a value), ``s_y = Σy``, ``s_yy = Σy²``,
``s_d``, ``s_dd``, ``s_yd`` and, with a covariate, ``s_x``, ``s_xx``, ``s_yx``, ``s_dx``. Every
test in :mod:`cjlib.experiments.frequentist` (means, proportions, ratio metrics by the delta
method, CUPED) needs nothing else. Mann-Whitney needs the value counts (:func:`value_counts`); the
bootstrap needs per-customer values, fetched only on request (:func:`customer_values`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine
from cjlib.experiments.metrics import column

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

    from cjlib.experiments.metrics import Metric

__all__ = [
    "SUMS",
    "winsorize",
    "variant_stats",
    "daily_stats",
    "value_counts",
    "customer_values",
    "moments",
]

SUMS = ("n", "s_y", "s_yy", "s_d", "s_dd", "s_yd", "s_x", "s_xx", "s_yx", "s_dx")


def winsorize(
    outcomes: ir.Table, metrics: Sequence[Metric], quantile: float | None, engine: Engine
) -> tuple[ir.Table, dict[str, float]]:
    """Cap every mean/ratio metric's per-customer numerator at its
    ``quantile`` over all assigned customers (computed in the engine). Returns the capped table
    and the caps used. ``None`` leaves the data alone."""
    if quantile is None:
        return outcomes, {}
    if not 0.5 < float(quantile) < 1:
        raise ValueError(f"winsorize must be a quantile between 0.5 and 1 or None, got {quantile}")
    cols = [column(m, "num") for m in metrics if m.kind != "binary"]
    if not cols:
        return outcomes, {}
    row = engine.to_pandas(
        outcomes.aggregate(**{c: outcomes[c].quantile(float(quantile)) for c in cols})
    )
    caps = {c: float(row[c].iloc[0]) for c in cols}
    capped = {c: outcomes[c].clip(upper=caps[c]) for c in cols}
    return outcomes.mutate(**capped), caps


def _sums(t: ir.Table, metrics: Sequence[Metric], covariate: bool) -> dict[str, Any]:
    import ibis

    aggs: dict[str, Any] = {}
    for i, m in enumerate(metrics):
        y, d = t[column(m, "num")], t[column(m, "den")]
        ok = y.notnull() & d.notnull()
        # a customer without a value counts in no sum (not in the denominator's either)
        y, d = ibis.ifelse(ok, y, 0.0), ibis.ifelse(ok, d, 0.0)
        terms = {"n": ok.cast("int64"), "s_y": y, "s_yy": y * y, "s_d": d, "s_dd": d * d}
        terms["s_yd"] = y * d
        if covariate:
            x = ibis.ifelse(ok, t.x.fill_null(0.0), 0.0)
            terms.update(s_x=x, s_xx=x * x, s_yx=y * x, s_dx=d * x)
        for key, expr in terms.items():
            aggs[f"m{i}__{key}"] = (expr if key == "n" else expr.cast("float64")).sum()
    return aggs


def _long(wide: pd.DataFrame, metrics: Sequence[Metric], keys: list[str]) -> pd.DataFrame:
    frames = []
    for i, m in enumerate(metrics):
        cols = {c: c.split("__", 1)[1] for c in wide.columns if c.startswith(f"m{i}__")}
        part = wide[keys + list(cols)].rename(columns=cols)
        part.insert(0, "metric", m.name)
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    for c in SUMS:
        if c not in out:
            out[c] = np.nan
    out["n"] = out["n"].fillna(0).astype("int64")
    return out[["metric", *keys, *SUMS]]


def variant_stats(
    outcomes: ir.Table,
    metrics: Sequence[Metric],
    engine: Engine,
    *,
    by: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Sufficient statistics per (``by``..., variant, metric), one engine query.

    ``outcomes`` is :func:`cjlib.experiments.metrics.customer_outcomes`'s table (possibly
    winsorised or joined with segment columns); ``extra`` adds computed grouping columns.
    """
    t = outcomes.mutate(**extra) if extra else outcomes
    keys = [*by, "variant"]
    covariate = "x" in t.columns
    wide = engine.to_pandas(t.group_by(keys).aggregate(**_sums(t, metrics, covariate)))
    out = _long(wide, metrics, keys)
    order = {m.name: i for i, m in enumerate(metrics)}
    out["_o"] = out["metric"].map(order)
    out = out.sort_values(["_o", *keys], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)


def daily_stats(outcomes: ir.Table, metrics: Sequence[Metric], engine: Engine) -> pd.DataFrame:
    """Sufficient statistics per assignment day (UTC) and variant, for looks over time."""
    if "assigned_at" not in outcomes.columns:
        raise ValueError("sequential looks need an 'assigned_at' column in the experiments table")
    day = outcomes.assigned_at.truncate("D").cast("date")
    out = variant_stats(outcomes, metrics, engine, by=["day"], extra={"day": day})
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out


def value_counts(outcomes: ir.Table, metric: Metric, engine: Engine) -> pd.DataFrame:
    """``variant, value, count`` of a per-customer metric (rank tests; not for ratio metrics)."""
    if metric.is_ratio:
        raise ValueError(f"metric {metric.name!r} is a ratio metric; rank tests need per-customer")
    y = outcomes[column(metric, "num")]
    # rounded to 1e-9: a customer's revenue is a sum, and 0.1 + 0.2 + 0.3 is 0.6 or
    # 0.6000000000000001 by the order of the events; equal amounts must tie in the ranks
    value = y.cast("float64").round(9) if y.type().is_floating() else y
    t = outcomes.filter(y.notnull()).mutate(value=value)
    return engine.to_pandas(t.group_by(["variant", "value"]).aggregate(count=t.count()))


def customer_values(outcomes: ir.Table, metric: Metric, engine: Engine) -> pd.DataFrame:
    """``variant, y, d`` per customer: for the bootstrap only, on request (kept local).

    Rows come in ``customer_id`` order: an engine returns them in any order (Spark's differs from
    DuckDB's), and the seeded bootstrap draws rows by position, so without a fixed order the same
    ``random_state`` resampled different customers on each engine."""
    y, d = outcomes[column(metric, "num")], outcomes[column(metric, "den")]
    t = outcomes.filter(y.notnull() & d.notnull())
    out = engine.to_pandas(t.select("customer_id", "variant", y=y, d=d))
    out = out.sort_values("customer_id", kind="stable", ignore_index=True)
    return out.drop(columns="customer_id")


def moments(row: Mapping[str, Any] | pd.Series) -> dict[str, float]:
    """Means, (co)variances (n - 1) and the delta-method variance of the ratio ``Σy / Σd``.

    ``var_ratio`` = (1/n)(s²_y/μ_d² − 2 μ_y s_yd/μ_d³ + μ_y² s²_d/μ_d⁴) (Deng, Knoblich & Lu 2018,
    "Applying the delta method in metric analytics", KDD); with ``d = 1`` it is ``s²_y / n``.
    """
    n = float(row["n"])
    if n < 2:
        nan = float("nan")
        return dict(
            n=n, mean_y=nan, mean_d=nan, ratio=nan, var_y=nan, var_d=nan, cov_yd=nan, var_ratio=nan
        )
    my, md = row["s_y"] / n, row["s_d"] / n
    var_y = max((row["s_yy"] - n * my * my) / (n - 1), 0.0)
    var_d = max((row["s_dd"] - n * md * md) / (n - 1), 0.0)
    cov = (row["s_yd"] - n * my * md) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = my / md if md else float("nan")  # e.g. no orders in a variant: no AOV
        var_ratio = (
            (var_y / md**2 - 2 * my * cov / md**3 + my**2 * var_d / md**4) / n
            if md
            else float("nan")
        )
    return dict(
        n=n,
        mean_y=my,
        mean_d=md,
        ratio=ratio,
        var_y=var_y,
        var_d=var_d,
        cov_yd=cov,
        var_ratio=max(float(var_ratio), 0.0),
    )
