"""Credit tables with bootstrap intervals, the model comparison, and costs per channel.

Denominators, stated once:

- ``share`` = a channel's credited conversions / all attributed conversions (converting journeys
  with at least one touch in the lookback window). Shares of a model sum to 1, except
  ``participation``, whose share is the fraction of converting journeys that touched the channel.
- ``value_share`` = credited conversion value / all attributed conversion value.
- Intervals are bootstrap percentile intervals over resampled journeys (the same replicates for
  every model, so differences between models are paired).
- ``cost_share`` = the channel's spend / all spend in the cost table; ``cpa`` = spend / credited
  conversions; ``roas`` = credited value / spend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table

__all__ = ["credit_table", "comparison", "versus_baseline", "channel_costs", "cost_table"]


def _interval(reps: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - confidence) / 2
    return np.quantile(reps, a, axis=0), np.quantile(reps, 1 - a, axis=0)


def credit_table(
    channels: tuple[str, ...],
    point: dict[str, tuple[np.ndarray, np.ndarray]],
    reps: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    totals: tuple[float, float],
    rep_totals: tuple[np.ndarray, np.ndarray] | None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Long table: one row per model and channel with credits, shares and their intervals."""
    total_c, total_v = totals
    frames = []
    for model, (c, v) in point.items():
        df = pd.DataFrame({"model": model, "channel": list(channels)})
        df["conversions"] = c
        df["share"] = c / total_c if total_c else np.nan
        df["value"] = v
        df["value_share"] = v / total_v if total_v else np.nan
        if reps is not None and rep_totals is not None:
            rc, rv = reps[model]
            tc, tv = rep_totals
            df["conversions_low"], df["conversions_high"] = _interval(rc, confidence)
            with np.errstate(invalid="ignore", divide="ignore"):
                df["share_low"], df["share_high"] = _interval(rc / tc[:, None], confidence)
                df["value_low"], df["value_high"] = _interval(rv, confidence)
                df["value_share_low"], df["value_share_high"] = _interval(
                    rv / tv[:, None], confidence
                )
        frames.append(df)
    cols = [
        "model",
        "channel",
        "conversions",
        "conversions_low",
        "conversions_high",
        "share",
        "share_low",
        "share_high",
        "value",
        "value_low",
        "value_high",
        "value_share",
        "value_share_low",
        "value_share_high",
    ]
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in cols if c in out.columns]]


def comparison(credits: pd.DataFrame) -> pd.DataFrame:
    """One row per channel: each model's share, the spread across models and whether they agree.

    ``agree`` is true when the models' share intervals have a point in common (largest lower
    bound <= smallest upper bound); ``data_driven_agree`` the same for the data-driven models
    only. ``participation`` is left out (its share is a reach).
    """
    df = credits[credits["model"] != "participation"]
    wide = df.pivot(index="channel", columns="model", values="share")
    wide = wide[[m for m in dict.fromkeys(df["model"]) if m in wide.columns]]
    out = wide.add_prefix("share_").reset_index()
    out["lowest"] = wide.min(axis=1).to_numpy()
    out["highest"] = wide.max(axis=1).to_numpy()
    out["spread"] = out["highest"] - out["lowest"]
    out["lowest_model"] = wide.idxmin(axis=1).to_numpy()
    out["highest_model"] = wide.idxmax(axis=1).to_numpy()
    if "share_low" in df.columns:
        lo = df.groupby("channel")["share_low"].max()
        hi = df.groupby("channel")["share_high"].min()
        out["agree"] = (lo <= hi).reindex(out["channel"]).to_numpy()
        dd = df[df["model"].isin(["markov", "shapley", "shapley_simple"])]
        if dd["model"].nunique() > 1:
            lo, hi = (
                dd.groupby("channel")["share_low"].max(),
                dd.groupby("channel")["share_high"].min(),
            )
            out["data_driven_agree"] = (lo <= hi).reindex(out["channel"]).to_numpy()
    return out.sort_values("channel").reset_index(drop=True)


def versus_baseline(
    channels: tuple[str, ...],
    point: dict[str, tuple[np.ndarray, np.ndarray]],
    reps: dict[str, tuple[np.ndarray, np.ndarray]],
    totals: float,
    rep_totals: np.ndarray,
    *,
    baseline: str = "last_touch",
    models: tuple[str, ...] = ("markov", "shapley", "shapley_simple"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each model's share minus the ``baseline``'s, per channel, with a paired bootstrap interval.

    ``verdict``: ``above`` / ``below`` when the interval of the difference excludes 0, else
    ``no clear difference``; ``intervals_overlap`` says whether the two models' own share
    intervals overlap (a cruder, more conservative reading).
    """
    if baseline not in point:
        raise ValueError(f"baseline must be one of the models run {list(point)}, got {baseline!r}")
    rows = []
    base_share = point[baseline][0] / totals
    base_reps = reps[baseline][0] / rep_totals[:, None]
    b_lo, b_hi = _interval(base_reps, confidence)
    for m in models:
        if m not in point or m == baseline:
            continue
        share = point[m][0] / totals
        m_reps = reps[m][0] / rep_totals[:, None]
        lo, hi = _interval(m_reps - base_reps, confidence)
        m_lo, m_hi = _interval(m_reps, confidence)
        for i, ch in enumerate(channels):
            verdict = "above" if lo[i] > 0 else "below" if hi[i] < 0 else "no clear difference"
            rows.append(
                {
                    "model": m,
                    "channel": ch,
                    "share": share[i],
                    "baseline_share": base_share[i],
                    "difference": share[i] - base_share[i],
                    "difference_low": lo[i],
                    "difference_high": hi[i],
                    "verdict": verdict,
                    "intervals_overlap": bool(m_lo[i] <= b_hi[i] and b_lo[i] <= m_hi[i]),
                }
            )
    return pd.DataFrame(rows)


def channel_costs(costs: Any, *, engine: Engine | None = None) -> pd.DataFrame:
    """Spend per channel (``channel, spend``) summed in the engine over every period/date."""
    t, engine = as_table(costs, engine)
    missing = {"channel", "spend"} - set(t.columns)
    if missing:
        raise ValueError(f"costs need columns {sorted(missing)}; columns are {list(t.columns)}")
    agg = t.group_by("channel").aggregate(spend=t.spend.cast("float64").sum())
    out = engine.to_pandas(agg.order_by("channel"))
    out["channel"] = out["channel"].astype(str)
    return out.reset_index(drop=True)


def cost_table(credits: pd.DataFrame, spend: pd.DataFrame) -> pd.DataFrame:
    """Per model and channel: spend, cost share, credit share, CPA and ROAS with intervals.

    CPA and ROAS intervals come from the credit intervals (spend is taken as known).
    ``credit_to_cost`` = credit share / cost share (above 1: the channel earns more than it costs).
    Participation is left out. Channels with credit but no spend row get spend NaN.
    """
    s = spend.set_index("channel")["spend"]
    df = credits[credits["model"] != "participation"].copy()
    df["spend"] = df["channel"].map(s)
    total = float(s.sum())
    df["cost_share"] = df["spend"] / total if total else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        df["credit_to_cost"] = df["share"] / df["cost_share"]
        df["cpa"] = df["spend"] / df["conversions"]
        df["roas"] = df["value"] / df["spend"]
        if "conversions_low" in df.columns:
            df["cpa_low"] = df["spend"] / df["conversions_high"]
            df["cpa_high"] = df["spend"] / df["conversions_low"]
            df["roas_low"] = df["value_low"] / df["spend"]
            df["roas_high"] = df["value_high"] / df["spend"]
    for col in ("cpa", "cpa_low", "cpa_high"):
        if col in df.columns:
            df[col] = df[col].where(np.isfinite(df[col]) & (df[col] >= 0))
    cols = ["model", "channel", "spend", "cost_share", "share"]
    cols += [c for c in ("share_low", "share_high") if c in df]
    cols += ["credit_to_cost", "conversions"]
    cols += [c for c in ("cpa", "cpa_low", "cpa_high", "roas", "roas_low", "roas_high") if c in df]
    return df[cols].reset_index(drop=True)
