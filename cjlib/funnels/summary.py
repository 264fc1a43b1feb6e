"""From status counts to the per-step funnel table (pandas, small), with Wilson intervals.

Denominators (``k`` is a step, ``k-1`` the one before):

- ``customers``: units that reached step k (counted in journeys with ``count="journeys"``);
- ``entered_here``: units whose entry was step k (open mode; step 1 otherwise);
- ``in_progress``: units that reached k-1, not k, and could still do k when the data end;
- ``dropped``: reached k-1, not k, no longer able to (``excluded`` separately: an exclusion
  event ended their journey);
- ``conversion``: from the previous step = units that went on from k-1 to k /
  (units at k-1 - in progress at k). For step 1 it is the share of entrants doing step 1
  (1 by definition in closed mode);
- ``conversion_from_start``: units at k / (units that entered at or before step k - those of
  them still in progress before reaching k);
- ``drop_off`` = 1 - ``conversion``. In-progress units are excluded from the denominators of
  every rate they could still change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cjlib.funnels.spec import FunnelSpec
from cjlib.stats import wilson_interval

__all__ = ["step_table", "STEP_COLUMNS"]

STEP_COLUMNS = [
    "step",
    "label",
    "customers",
    "entered_here",
    "continued",
    "in_progress",
    "dropped",
    "excluded",
    "conversion",
    "conversion_low",
    "conversion_high",
    "conversion_from_start",
    "conversion_from_start_low",
    "conversion_from_start_high",
    "drop_off",
]


def step_table(counts: pd.DataFrame, spec: FunnelSpec, *, confidence: float = 0.95) -> pd.DataFrame:
    """The funnel table from ``status_counts`` rows (``entry_step, depth, status, n``)."""
    e = counts["entry_step"].to_numpy(dtype="int64")
    d = counts["depth"].to_numpy(dtype="int64")
    s = counts["status"].to_numpy(dtype=object)
    n = counts["n"].to_numpy(dtype="int64")

    def total(mask: np.ndarray) -> int:
        return int(n[mask].sum())

    any_order = spec.mode == "any_order"
    rows = []
    for k in range(1, spec.n_steps + 1):
        reached = total((e <= k) & (d >= k))
        here = 0 if any_order else total(e == k)
        if k == 1 or any_order:
            at_prev = total((e <= k) & (d >= k - 1)) if k > 1 else int(n.sum())
            went_on = reached
        else:
            at_prev = total((e <= k - 1) & (d >= k - 1))
            went_on = total((e <= k - 1) & (d >= k))
        stop = (e <= max(k - 1, 1)) & (d == k - 1)
        if k == 1 and not any_order:
            stop = np.zeros(len(n), dtype=bool)
        prog = total(stop & (s == "in_progress"))
        excl = total(stop & (s == "excluded"))
        drop = total(stop & (s == "dropped"))
        entered = total(e <= k)
        open_before = total((e <= k) & (d < k) & (s == "in_progress"))
        rows.append(
            {
                "step": k,
                "label": spec.steps[k - 1].label,
                "customers": reached,
                "entered_here": here,
                "continued": went_on,
                "in_progress": prog,
                "dropped": drop,
                "excluded": excl,
                "_den": at_prev - prog,
                "_den_start": entered - open_before,
            }
        )
    out = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = out.pop("_den").to_numpy(dtype=float)
        den_start = out.pop("_den_start").to_numpy(dtype=float)
        out["conversion"] = np.where(den > 0, out["continued"] / den, np.nan)
        out["conversion_low"], out["conversion_high"] = wilson_interval(
            out["continued"], den, confidence=confidence
        )
        out["conversion_from_start"] = np.where(den_start > 0, out["customers"] / den_start, np.nan)
        out["conversion_from_start_low"], out["conversion_from_start_high"] = wilson_interval(
            out["customers"], den_start, confidence=confidence
        )
    out["drop_off"] = 1 - out["conversion"]
    out["denominator"] = den.astype("int64")
    out["denominator_from_start"] = den_start.astype("int64")
    for col in ("customers", "entered_here", "continued", "in_progress", "dropped", "excluded"):
        out[col] = out[col].astype("int64")
    return out[[*STEP_COLUMNS, "denominator", "denominator_from_start"]]
