"""Classic RFM segments: a simpler alternative to persona clustering.

Orders are events with revenue > 0. Per buyer, computed in the engine: ``recency_days`` (whole days
from the last order to ``as_of``; default the latest event timestamp), ``frequency`` (orders) and
``monetary`` (revenue).

Scores 1-``bins``, two ways (``scoring``):

- ``"rfm"`` (default): as the R package ``rfm`` (rsquaredacademy/rfm, ``rfm_table_order``) computes
  them, so segment counts match it: thresholds at the interior quantiles of the buyers' values
  (R's default type 7) plus one, score i for ``lower_i <= value < upper_i`` with ``lower = [min,
  thresholds]`` and ``upper = [thresholds, max + 1]``; recency reversed. The "+1" puts a value
  equal to a quantile in the lower score, as R does (for whole numbers: ``value <= quantile``).
- ``"rank"``: ceil(bins x mid-rank percentile), so tied customers share a score and each score
  holds about 1/bins of the buyers.

With ``bins=5`` segments follow the rules of the R package ``rfm`` (the ``rfm_segment``
documentation example): the first rule whose recency, frequency and monetary score ranges all
match names the segment; customers matching none are ``Others``. Other ``bins`` give score cells
(``"345"``; from 10 bins ``"10-1-10"``) instead of names. ``rfm_score`` is ``r * 100 + f * 10 +
m``, as the R package computes it (unambiguous up to 9 bins). The quantile probabilities are
R's ``seq(0, 1, length.out = bins + 1)``, floating-point values included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.stats import wilson_interval

__all__ = ["RFMResult", "rfm_segments", "rfm_package_scores", "RFM_RULES", "SCORINGS"]

# name: (recency low, high, frequency low, high, monetary low, high), first match wins
RFM_RULES: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Champions", (5, 5, 5, 5, 5, 5)),
    ("Potential Loyalist", (3, 5, 3, 5, 2, 5)),
    ("Loyal Customers", (2, 4, 2, 4, 2, 4)),
    ("Promising", (3, 4, 1, 3, 3, 5)),
    ("New Customers", (4, 5, 1, 3, 1, 5)),
    ("Can't Lose Them", (1, 2, 3, 4, 4, 5)),
    ("At Risk", (1, 2, 2, 5, 4, 5)),
    ("Need Attention", (1, 3, 3, 5, 3, 5)),
    ("About To Sleep", (2, 3, 1, 3, 1, 4)),
    ("Lost", (1, 1, 1, 5, 1, 5)),
)


@dataclass(frozen=True)
class RFMResult:
    """``customers``: one row per buyer (for the assignment file, not for reports);
    ``segments``: customers, share (of buyers, Wilson interval), medians, revenue share."""

    customers: pd.DataFrame
    segments: pd.DataFrame
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.segments.copy()

    def to_dict(self) -> dict:
        return {"segments": self.segments.to_dict(orient="records"), "params": self.params}

    def assignment(self) -> pd.DataFrame:
        """``customer_id, segment``: the file other notebooks take as a segment parameter."""
        return self.customers[["customer_id", "segment"]].copy()


def rfm_scores(values: pd.Series, bins: int, *, reverse: bool = False) -> np.ndarray:
    """Scores 1..bins from mid-rank percentiles (ties share a score)."""
    pct = values.rank(method="average", pct=True).to_numpy(float)
    pct = pct - 0.5 / len(values)  # mid-rank: the smallest single value gets 0.5 / n
    score = np.clip(np.ceil(pct * bins), 1, bins).astype(int)
    return bins + 1 - score if reverse else score


def rfm_package_scores(values: pd.Series, bins: int, *, reverse: bool = False) -> tuple:
    """Scores 1..bins as the R package ``rfm`` gives them (see the module doc), and the
    thresholds (``quantile + 1``) it used."""
    v = values.to_numpy(float)
    cuts = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]) + 1  # numpy's default = R type 7
    lower, upper = np.concatenate([[v.min()], cuts]), np.concatenate([cuts, [v.max() + 1]])
    score = np.zeros(len(v), dtype=int)
    for i in range(bins):  # in order, a later bin overwriting an earlier one, as R's loop does
        score[(v >= lower[i]) & (v < upper[i])] = i + 1
    return (bins + 1 - score if reverse else score), cuts


SCORINGS = ("rfm", "rank")


def rfm_segments(
    events: Any,
    *,
    as_of: Any = None,
    bins: int = 5,
    scoring: str = "rfm",
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> RFMResult:
    """Recency, frequency, monetary value, scores and named segments for every buyer.
    ``scoring``: ``"rfm"`` (the R package's quantile thresholds) or ``"rank"`` (module doc)."""
    if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 10:
        raise ValueError(f"bins must be an int from 2 to 10, got {bins!r}")
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {list(SCORINGS)}, got {scoring!r}")
    t, engine = as_table(events, engine)
    if "revenue" not in t.columns:
        raise ValueError(f"rfm_segments needs a revenue column in events; columns: {t.columns}")
    last_any = engine.epoch_seconds(t.timestamp.max())
    paid = t.filter(t.revenue.notnull() & (t.revenue > 0))
    per = paid.group_by("customer_id").aggregate(
        last=engine.epoch_seconds(paid.timestamp.max()),
        frequency=paid.count(),
        monetary=paid.revenue.sum(),
    )
    df = engine.to_pandas(per.order_by("customer_id")).reset_index(drop=True)
    if df.empty:
        raise ValueError("rfm_segments: no event has revenue > 0, so there are no buyers")
    if as_of is None:
        ref = float(engine.to_pandas(last_any))
    else:
        stamp = pd.Timestamp(as_of)
        ref = (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).timestamp()
    out = pd.DataFrame({"customer_id": df["customer_id"].astype(str)})
    out["recency_days"] = np.floor((ref - df["last"].astype(float)) / 86_400).astype("int64")
    out["frequency"] = df["frequency"].astype("int64")
    out["monetary"] = df["monetary"].astype(float)
    thresholds = {}
    for col, score in (("recency_days", "r_score"), ("frequency", "f_score"),
                       ("monetary", "m_score")):  # fmt: skip
        reverse = col == "recency_days"
        if scoring == "rfm":
            out[score], cuts = rfm_package_scores(out[col], bins, reverse=reverse)
            thresholds[col] = [float(c) for c in cuts]
        else:
            out[score] = rfm_scores(out[col], bins, reverse=reverse)
    out["rfm_score"] = out.r_score * 100 + out.f_score * 10 + out.m_score
    segment = np.full(len(out), "Others", dtype=object)
    if bins == 5:
        free = np.ones(len(out), bool)
        for name, (r0, r1, f0, f1, m0, m1) in RFM_RULES:
            hit = free & out.r_score.between(r0, r1).to_numpy()
            hit &= out.f_score.between(f0, f1).to_numpy() & out.m_score.between(m0, m1).to_numpy()
            segment[hit] = name
            free &= ~hit
    else:  # the named rules are written for 5 bins; other bins give score cells
        sep = "-" if bins >= 10 else ""  # 10, 1, 10 is "10-1-10": "10110" reads two ways
        segment = np.array(
            [f"{r}{sep}{f}{sep}{m}" for r, f, m in zip(out.r_score, out.f_score, out.m_score,
                                                         strict=True)], dtype=object)  # fmt: skip
    out["segment"] = segment
    total = len(out)
    seg = out.groupby("segment").agg(
        customers=("customer_id", "size"),
        recency_median=("recency_days", "median"),
        frequency_median=("frequency", "median"),
        monetary_median=("monetary", "median"),
        revenue=("monetary", "sum"),
    )
    if bins == 5:  # the named segments in the rules' order; score cells sort as text
        order = [n for n, _ in RFM_RULES] + ["Others"]
        seg = seg.reindex([n for n in order if n in seg.index])
    seg = seg.reset_index()
    seg["share"] = seg["customers"] / total
    seg["share_low"], seg["share_high"] = wilson_interval(
        seg["customers"], total, confidence=confidence
    )
    seg["revenue_share"] = seg["revenue"] / seg["revenue"].sum()
    params = {
        "as_of": pd.Timestamp(ref, unit="s", tz="UTC").isoformat(),
        "bins": bins,
        "scoring": scoring,
        "thresholds": thresholds,
        "buyers": total,
        "rules": "R package rfm, rfm_segment example",
        "engine": engine.name,
    }
    return RFMResult(out, seg, params)
