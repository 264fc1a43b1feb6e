"""Planning: sample size, minimum detectable effect, power and duration.

- Proportions: as R ``power.prop.test`` (normal approximation, ``strict = FALSE``):
  power = Φ((√n |p1 − p2| − z_{1−α/2} √(2 p̄ q̄)) / √(p1 q1 + p2 q2)).
- Means: as R ``power.t.test`` (two-sample, noncentral t with 2(n − 1) df, ``strict = FALSE``).
- Ratio metrics: normal approximation with the per-customer standard deviation of the linearised
  ratio (delta method), σ_L; power = Φ(√(n/2) |δ| / σ_L − z_{1−α/2}).
``n`` is customers per variant (equal split); effects are relative to the baseline (``mde=0.05`` is
a 5 % lift). One-sided tests use z_{1−α}.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as st

__all__ = ["power", "sample_size", "mde", "duration", "plan"]

_KINDS = ("binary", "mean", "ratio")


def _check(kind: str, baseline: float, sd: float | None, alpha: float) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {list(_KINDS)}, got {kind!r}")
    if kind == "binary" and not 0 < baseline < 1:
        raise ValueError(f"baseline must be a proportion in (0, 1) for binary, got {baseline!r}")
    if kind != "binary" and (sd is None or not sd > 0):
        raise ValueError(f"sd must be a positive standard deviation for {kind} metrics, got {sd!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")


def power(
    kind: str,
    baseline: float,
    mde: float,
    n: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    one_sided: bool = False,
) -> float:
    """Power to detect a relative lift ``mde`` with ``n`` customers per variant."""
    _check(kind, baseline, sd, alpha)
    a = alpha if one_sided else alpha / 2
    delta = abs(baseline * mde)
    if kind == "binary":
        p1, p2 = baseline, baseline * (1 + mde)
        if not 0 < p2 < 1:
            raise ValueError(f"baseline x (1 + mde) must stay in (0, 1), got {p2!r}")
        qbar = ((p1 + p2) / 2) * (1 - (p1 + p2) / 2)
        z = NormalDist().inv_cdf(1 - a)
        arg = (math.sqrt(n) * delta - z * math.sqrt(2 * qbar)) / math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2)
        )
        return NormalDist().cdf(arg)
    if kind == "mean":
        df = 2 * (n - 1)
        ncp = math.sqrt(n / 2) * delta / sd
        return float(st.nct.sf(st.t.ppf(1 - a, df), df, ncp))
    return NormalDist().cdf(math.sqrt(n / 2) * delta / sd - NormalDist().inv_cdf(1 - a))


def sample_size(
    kind: str,
    baseline: float,
    mde: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    target: float = 0.8,
    one_sided: bool = False,
) -> float:
    """Customers per variant for ``target`` power at relative lift ``mde`` (not rounded up)."""
    if not 0 < target < 1:
        raise ValueError(f"target power must be between 0 and 1, got {target!r}")
    if mde == 0:
        raise ValueError("mde must be non-zero: no sample detects a zero effect")

    def gap(n: float) -> float:
        return power(kind, baseline, mde, n, sd=sd, alpha=alpha, one_sided=one_sided) - target

    return float(optimize.brentq(gap, 2 + 1e-9, 1e10, xtol=1e-7, rtol=1e-12))


def mde(
    kind: str,
    baseline: float,
    n: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    target: float = 0.8,
    one_sided: bool = False,
) -> float:
    """Smallest relative lift detected with ``target`` power by ``n`` customers per variant."""
    hi = (1 / baseline - 1) * 0.999 if kind == "binary" else 100.0

    def gap(m: float) -> float:
        return power(kind, baseline, m, n, sd=sd, alpha=alpha, one_sided=one_sided) - target

    if gap(hi) < 0:
        return float("nan")
    return float(optimize.brentq(gap, 1e-9, hi, xtol=1e-10))


def duration(n_per_variant: float, traffic_per_day: float, *, variants: int = 2) -> int:
    """Days until every variant has ``n_per_variant`` customers at ``traffic_per_day`` customers
    entering the experiment per day, split equally over ``variants``."""
    if not traffic_per_day > 0:
        raise ValueError(f"traffic_per_day must be positive, got {traffic_per_day!r}")
    return int(math.ceil(n_per_variant * variants / traffic_per_day))


def plan(
    estimates: pd.DataFrame,
    metrics,
    *,
    control: str = "control",
    mde_target: float = 0.05,
    alpha: float = 0.05,
    target: float = 0.8,
    traffic_per_day: float | None = None,
    one_sided: bool = False,
) -> pd.DataFrame:
    """Per metric, from the control group's estimates: baseline, per-customer sd, customers per
    variant and days needed for ``mde_target``, and the power and MDE at the current size.
    ``one_sided``: plan for the one-sided test the analysis runs (``alternative`` greater or
    less), with z_{1−α}. ``alpha`` is per comparison: no multiple-testing correction."""
    info = {m.name: m for m in metrics}
    variants = int(estimates["variant"].nunique())
    rows = []
    for r in estimates[estimates["variant"] == control].to_dict("records"):
        m = info[r["metric"]]
        base, n = r["estimate"], r["n"]
        sd = math.sqrt(r["var"] * n) if m.kind != "binary" else None
        row = dict(metric=m.name, role=m.role, kind=m.kind, baseline=base, sd=sd, mde=mde_target)
        try:
            kw = dict(sd=sd, alpha=alpha, one_sided=one_sided)
            need = sample_size(m.kind, base, mde_target, target=target, **kw)
            row |= dict(
                n_needed=int(math.ceil(need)),
                n_now=int(n),
                power_now=power(m.kind, base, mde_target, n, **kw),
                mde_now=mde(m.kind, base, n, target=target, **kw),
            )
            if traffic_per_day:
                row["days_needed"] = duration(need, traffic_per_day, variants=variants)
        except (ValueError, ZeroDivisionError):
            row |= dict(n_needed=np.nan, n_now=int(n), power_now=np.nan, mde_now=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)
