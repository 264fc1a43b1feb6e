"""Checks before results: sample-ratio mismatch, multiple exposure, pre-period balance.

Each check returns a tidy table and a one-row verdict (``check, status, p_value, magnitude,
message``); :func:`run_checks` stacks the verdicts so a failed check can head the report in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from cjlib.engine import Engine
from cjlib.stats import wilson_interval

__all__ = ["srm", "multiple_exposure", "balance", "verdicts", "expected_split"]


def expected_split(variants: Sequence[str], split: Mapping[str, float] | None) -> dict[str, float]:
    """Configured share of each variant (equal shares when ``split`` is ``None``), summing to 1."""
    if not split:
        return {v: 1 / len(variants) for v in variants}
    unknown = sorted(set(variants) - set(split))
    if unknown:
        raise ValueError(f"split must give a share for every variant; missing {unknown}")
    shares = {v: float(split[v]) for v in variants}
    if any(s <= 0 for s in shares.values()):
        raise ValueError(f"split shares must be positive, got {shares}")
    total = sum(shares.values())
    return {v: s / total for v, s in shares.items()}


def srm(
    counts: Mapping[str, int],
    *,
    split: Mapping[str, float] | None = None,
    alpha: float = 0.001,
    min_deviation: float = 0.002,
) -> tuple[pd.DataFrame, dict]:
    """Sample-ratio mismatch: chi-square goodness of fit of assigned counts to the split.

    The check fails only when ``p < alpha`` (default 0.001, as Kohavi, Tang & Xu 2020 suggest for
    SRM) *and* some variant's count deviates from its expected count by more than
    ``min_deviation`` (relative, default 0.2 %): with hundreds of millions of customers a
    negligible imbalance is "significant" but harmless. The default still flags the book's
    example (821,588 vs 815,482, a 0.37 % deviation, p = 1.8e-6). Returns the per-variant table
    and the verdict. A variant in ``split`` that got no customers counts with 0.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"srm alpha must be between 0 and 1, got {alpha!r}")
    if min_deviation < 0:
        raise ValueError(f"min_deviation must be >= 0, got {min_deviation!r}")
    # a configured variant that got nobody is the worst mismatch there is: counted as 0
    counts = {**dict(counts), **{v: 0 for v in (split or {}) if v not in counts}}
    variants = list(counts)
    if len(variants) < 2:
        raise ValueError(f"srm needs at least two variants, got {variants}")
    shares = expected_split(variants, split)
    obs = np.array([counts[v] for v in variants], dtype=float)
    total = obs.sum()
    exp = np.array([shares[v] for v in variants]) * total
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    p = float(st.chi2.sf(chi2, len(variants) - 1))
    low, high = wilson_interval(obs, np.full_like(obs, total))
    table = pd.DataFrame(
        {
            "variant": variants,
            "customers": obs.astype("int64"),
            "share": obs / total,
            "share_low": low,
            "share_high": high,
            "expected_share": [shares[v] for v in variants],
            "expected": exp,
            "deviation": obs / exp - 1,
        }
    )
    size = float(np.abs(table["deviation"]).max())
    failed = p < alpha and size > min_deviation
    worst = table.iloc[int(np.abs(table["deviation"]).argmax())]
    words = (
        f"{worst['variant']} has {worst['customers']:,} customers against {worst['expected']:,.0f}"
        f" expected ({worst['deviation']:+.1%}); chi-square p = {p:.2g}"
    )
    if failed:
        msg = f"Sample-ratio mismatch: {words}. Assignment or logging is broken; do not trust the "
        msg += "results until the cause is found."
    elif p < alpha:
        msg = "Split is statistically but not practically off "
        msg += f"({words}; within ±{min_deviation:.0%})."
    else:
        msg = f"Split matches the configured ratio ({words})."
    verdict = dict(
        check="sample ratio",
        status="fail" if failed else "pass",
        p_value=p,
        magnitude=size,
        message=msg,
    )
    return table, verdict


def multiple_exposure(
    assignments: Any, engine: Engine, *, max_share: float = 0.01
) -> tuple[pd.DataFrame, dict]:
    """Customers assigned to more than one variant (an Ibis ``assignments`` table with
    ``n_variants``). They are left out of the analysis; more than ``max_share`` of all assigned
    customers fails the check (assignment is leaking)."""
    t = assignments
    row = engine.to_pandas(
        t.aggregate(customers=t.count(), multiple=(t.n_variants > 1).cast("int64").sum())
    )
    n, k = int(row["customers"].iloc[0]), int(row["multiple"].iloc[0] or 0)
    low, high = wilson_interval(k, n) if n else (np.nan, np.nan)
    table = pd.DataFrame(
        {
            "customers": [n],
            "multiple_variants": [k],
            "share": [k / n if n else np.nan],
            "share_low": [float(low)],
            "share_high": [float(high)],
        }
    )
    share = k / n if n else 0.0
    failed = share > max_share
    if k == 0:
        msg = "No customer was exposed to more than one variant."
    else:
        msg = f"{k:,} customers ({share:.1%}) saw more than one variant and are left out"
        msg += "; assignment is leaking." if failed else "."
    verdict = dict(
        check="multiple exposure",
        status="fail" if failed else "pass",
        p_value=np.nan,
        magnitude=share,
        message=msg,
    )
    return table, verdict


def balance(
    stats: pd.DataFrame, *, control: str = "control", alpha: float = 0.001, max_smd: float = 0.1
) -> tuple[pd.DataFrame, dict]:
    """Pre-period balance of the covariate: means per variant, standardised mean difference
    (SMD, Austin 2009: |SMD| > 0.1 is imbalance) and Welch p-value against ``control``, from one
    metric's sufficient statistics (``s_x``, ``s_xx``). Fails when any variant has |SMD| >
    ``max_smd`` and p < ``alpha``: assignment was not random, or the covariate is not
    pre-period. A covariate with no spread is balanced when its means agree."""
    from cjlib.experiments.frequentist import welch_test

    first = stats[stats["metric"] == stats["metric"].iloc[0]].set_index("variant")
    if first["s_x"].isna().any():
        raise ValueError("balance needs a covariate (s_x, s_xx); none was given")
    n = first["n"].astype(float)
    mean = first["s_x"] / n
    var = (first["s_xx"] - n * mean**2) / (n - 1)
    rows = []
    for v in first.index:
        res = welch_test(mean[v], var[v], n[v], mean[control], var[control], n[control])
        gap, sd = mean[v] - mean[control], np.sqrt((var[v] + var[control]) / 2)
        # a constant covariate (every customer new: 0 sessions before) is balanced
        smd = gap / sd if sd > 0 else (0.0 if gap == 0 else np.inf * np.sign(gap))
        rows.append(
            dict(
                variant=v,
                customers=int(n[v]),
                covariate_mean=mean[v],
                covariate_sd=np.sqrt(var[v]),
                smd=0.0 if v == control else smd,
                p_value=np.nan if v == control else res["p_value"],
            )
        )
    table = pd.DataFrame(rows)
    others = table[table["variant"] != control]
    # any variant imbalanced fails the check (the worst of those is named), not only the one
    # with the largest SMD
    bad = others[(np.abs(others["smd"]) > max_smd) & (others["p_value"] < alpha)]
    pool = bad if len(bad) else others
    worst = pool.iloc[int(np.abs(pool["smd"]).fillna(0).argmax())]
    failed = len(bad) > 0
    words = f"{worst['variant']} vs {control}: SMD {worst['smd']:+.3f}, p = {worst['p_value']:.2g}"
    msg = (
        f"Pre-period covariate is imbalanced ({words}); randomisation may be broken."
        if failed
        else f"Pre-period covariate is balanced ({words})."
    )
    verdict = dict(
        check="pre-period balance",
        status="fail" if failed else "pass",
        p_value=float(worst["p_value"]),
        magnitude=float(abs(worst["smd"])),
        message=msg,
    )
    return table, verdict


def verdicts(*items: dict) -> pd.DataFrame:
    """The checks' verdicts as one table, failed checks first."""
    df = pd.DataFrame(list(items), columns=["check", "status", "p_value", "magnitude", "message"])
    return df.sort_values("status", key=lambda s: s != "fail", kind="stable").reset_index(drop=True)
