"""Peeking-safe readout: the mixture SPRT and its always-valid confidence sequence.

For the difference ``θ`` between a variant and control, with estimate ``θ̂`` and variance ``V`` at
a look, the normal-mixture likelihood ratio against ``θ = θ0`` (Johari, Koomen, Pekelis & Walsh
2017, "Peeking at A/B tests", KDD; Robbins 1970) with mixing distribution N(θ0, τ²) is

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²))).

Rejecting the first time Λ ≥ 1/α keeps the chance of ever rejecting a true null at or below α,
however often one looks. The always-valid p-value is the running minimum of min(1, 1/Λ); the
confidence sequence (Howard, Ramdas, McAuliffe & Sekhon 2021, normal mixture) is the set of θ0
not rejected: θ̂ ± sqrt(2 V (V + τ²) / τ² · log(sqrt((V + τ²) / V) / α)). ``V`` is the plug-in
variance of θ̂ (unpooled; p(1−p)/n for proportions, delta method for ratios), as in Johari et al.

Looks are made once per assignment day over the customers assigned so far (their outcomes as
measured at the analysis date). ``τ`` sets the effect size the test is most sensitive to; any
fixed value keeps the guarantee. By default ``τ = mixture_lift × control mean at the last look``.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from cjlib.experiments.metrics import Metric

__all__ = ["msprt", "sequential_looks"]


def msprt(theta: np.ndarray, var: np.ndarray, *, tau: float, alpha: float = 0.05) -> dict:
    """Always-valid p-values and confidence sequence for estimates ``theta`` with variances
    ``var`` at successive looks (arrays), null ``θ = 0``. Returns arrays ``p_value``, ``low``,
    ``high`` and ``reject`` (the p-value has reached ``alpha``)."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    theta, var = np.asarray(theta, float), np.asarray(var, float)
    t2 = tau * tau
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(var / (var + t2)) + t2 * theta**2 / (2 * var * (var + t2))
        p_look = np.where(np.isfinite(log_lr), np.minimum(1.0, np.exp(-log_lr)), 1.0)
        half = np.sqrt(2 * var * (var + t2) / t2 * np.log(np.sqrt((var + t2) / var) / alpha))
    p = np.minimum.accumulate(p_look)
    half = np.where(np.isfinite(half), half, np.inf)
    return dict(p_value=p, low=theta - half, high=theta + half, reject=p <= alpha)


def _cumulative(daily: pd.DataFrame, variant: str, days: pd.Index) -> pd.DataFrame:
    g = daily[daily["variant"] == variant].set_index("day")
    cols = ["n", "s_y", "s_yy", "s_d", "s_dd", "s_yd"]
    return g[cols].reindex(days).fillna(0).cumsum()


def _est(c: pd.DataFrame, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    n = c["n"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        my, md = c["s_y"] / n, c["s_d"] / n
        r = (my / md).to_numpy()
        if binary:
            return r, r * (1 - r) / n
        vy = (c["s_yy"] - n * my**2) / (n - 1)
        vd = (c["s_dd"] - n * md**2) / (n - 1)
        cov = (c["s_yd"] - n * my * md) / (n - 1)
        var = (vy / md**2 - 2 * my * cov / md**3 + my**2 * vd / md**4) / n
    return r, np.clip(var.to_numpy(), 0, None)


def sequential_looks(
    daily: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    control: str = "control",
    alpha: float = 0.05,
    mixture_lift: float = 0.1,
    tau: float | None = None,
) -> pd.DataFrame:
    """One row per (metric, variant, day): cumulative customers, difference, the always-valid
    interval and p-value (mSPRT), and the naive fixed-horizon interval and p-value for comparison
    (``daily`` from :func:`cjlib.experiments.stats.daily_stats`)."""
    if not mixture_lift > 0:
        raise ValueError(f"mixture_lift must be positive, got {mixture_lift!r}")
    info = {m.name: m for m in metrics}
    z = NormalDist().inv_cdf(1 - alpha / 2)
    frames = []
    for name, grp in daily.groupby("metric", sort=False):
        m = info[name]
        days = pd.Index(sorted(grp["day"].unique()), name="day")
        if control not in set(grp["variant"]):
            continue
        cc = _cumulative(grp, control, days)
        rc, vc = _est(cc, m.kind == "binary")
        for variant in [v for v in grp["variant"].unique() if v != control]:
            cv = _cumulative(grp, variant, days)
            rv, vv = _est(cv, m.kind == "binary")
            theta, var = rv - rc, vv + vc
            ok = (cc["n"].to_numpy() >= 2) & (cv["n"].to_numpy() >= 2) & (var > 0)
            theta, var = np.where(ok, theta, 0.0), np.where(ok, var, np.inf)
            t = tau if tau is not None else mixture_lift * abs(rc[ok][-1] if ok.any() else 1.0)
            res = msprt(theta, var, tau=t or 1e-9, alpha=alpha)
            se = np.sqrt(var)
            with np.errstate(divide="ignore", invalid="ignore"):
                naive_p = 2 * (1 - np.vectorize(NormalDist().cdf)(np.abs(theta / se)))
            frames.append(
                pd.DataFrame(
                    {
                        "metric": name,
                        "variant": variant,
                        "day": days,
                        "n_control": cc["n"].to_numpy().astype("int64"),
                        "n_variant": cv["n"].to_numpy().astype("int64"),
                        "diff": np.where(ok, theta, np.nan),
                        "always_valid_low": np.where(ok, res["low"], np.nan),
                        "always_valid_high": np.where(ok, res["high"], np.nan),
                        "always_valid_p": res["p_value"],
                        "fixed_low": np.where(ok, theta - z * se, np.nan),
                        "fixed_high": np.where(ok, theta + z * se, np.nan),
                        "fixed_p": np.where(ok, naive_p, np.nan),
                        "tau": t,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
