"""Tests on request: Mann-Whitney from value counts, and the bootstrap of a lift.

Mann-Whitney runs on the (variant, value, count) table the engine returns, so it never needs the
customers' rows; the bootstrap resamples customers and so fetches one metric's per-customer values
(kept in memory, never shown).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = ["mann_whitney", "bootstrap_lift"]


def mann_whitney(counts: pd.DataFrame, variant: str, control: str) -> dict:
    """Wilcoxon-Mann-Whitney test of ``variant`` vs ``control`` from ``variant, value, count``.

    Normal approximation with tie and continuity correction, two-sided, exactly as R
    ``wilcox.test(x, y, exact = FALSE, correct = TRUE)``: ``W`` is the U statistic of
    ``variant``; ``prob_superiority`` = W / (n_v n_c) = P(Y_v > Y_c) + ½ P(Y_v = Y_c).
    """
    for name in (variant, control):
        if name not in set(counts["variant"]):
            raise ValueError(f"variant {name!r} not in the value counts {sorted(counts.variant)}")
    t = counts.pivot_table(index="value", columns="variant", values="count", aggfunc="sum")
    t = t.reindex(columns=[variant, control]).fillna(0).sort_index()
    a, b = t[variant].to_numpy(float), t[control].to_numpy(float)
    tot = a + b
    n1, n2 = a.sum(), b.sum()
    n = n1 + n2
    mid = np.cumsum(tot) - (tot - 1) / 2  # mid-rank of each tied value
    w = float((a * mid).sum() - n1 * (n1 + 1) / 2)
    ties = float((tot**3 - tot).sum())
    sigma = np.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = w - n1 * n2 / 2
    z = (z - np.sign(z) * 0.5) / sigma if sigma > 0 else float("nan")
    nd = NormalDist()
    p = 2 * min(nd.cdf(z), 1 - nd.cdf(z)) if not np.isnan(z) else float("nan")
    return dict(W=w, z=float(z), p_value=float(p), prob_superiority=w / (n1 * n2))


def bootstrap_lift(
    values: pd.DataFrame,
    variant: str,
    control: str,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict:
    """Percentile bootstrap of ``Σy/Σd`` per group: difference and relative lift intervals.

    Customers are resampled within each variant (``values``: ``variant, y, d``). Two-sided
    p-value = 2 × min(share of resampled differences ≤ 0, share ≥ 0).
    """
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an int >= 100, got {n_boot!r}")
    rng = np.random.default_rng(random_state)
    stats = {}
    for name in (variant, control):
        g = values[values["variant"] == name]
        if len(g) < 2:
            raise ValueError(f"variant {name!r} has {len(g)} customers; the bootstrap needs 2+")
        y, d = g["y"].to_numpy(float), g["d"].to_numpy(float)
        out = np.empty(n_boot)
        step = max(1, 2_000_000 // len(y))
        for s in range(0, n_boot, step):
            k = min(step, n_boot - s)
            idx = rng.integers(0, len(y), size=(k, len(y)))
            out[s : s + k] = y[idx].sum(1) / d[idx].sum(1)
        stats[name] = (out, y.sum() / d.sum())
    (bv, ev), (bc, ec) = stats[variant], stats[control]
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    diff, lift = bv - bc, bv / bc - 1
    p = 2 * min(np.mean(diff <= 0), np.mean(diff >= 0))
    return dict(
        diff=ev - ec,
        diff_low=float(np.quantile(diff, q[0])),
        diff_high=float(np.quantile(diff, q[1])),
        lift=ev / ec - 1,
        lift_low=float(np.quantile(lift, q[0])),
        lift_high=float(np.quantile(lift, q[1])),
        p_value=float(min(p, 1.0)),
        n_boot=n_boot,
    )
