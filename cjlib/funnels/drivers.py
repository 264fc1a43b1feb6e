"""Drop-off drivers at one step: what is over- or under-represented among those who dropped.

At step k (default: the weakest step, lowest conversion from the previous one) the population is
every unit that reached step k-1 and whose outcome is decided: it reached k (*converted*) or
dropped / was excluded (*dropped*); in-progress units are left out. For each feature value the
share of dropped units having it is compared with the share of converted units having it:
difference (dropped - converted) with Newcombe's interval, pooled z-test p-value, adjusted over
all rows (Holm by default).

Features:

- ``event:<name>``: the customer did this event at or before reaching step k-1 (their history
  up to the decision point, the same definition for both groups, so follow-up length cannot
  create differences); events of steps k-1 and k themselves are not features. Read them as
  *associations*, not causes;
- ``channel:<name>``: channel of the customer's first touch;
- ``<attribute>:<value>``: customer attributes, when a customers table and columns are given.

Values held by fewer than ``min_size`` units in total are not shown (privacy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.funnels.core import TestedTable, computed_units, records, resolve_spec
from cjlib.funnels.inference import adjust, newcombe_interval, two_proportion_test
from cjlib.funnels.summary import step_table

__all__ = ["DriverResult", "dropoff_drivers"]


@dataclass(frozen=True)
class DriverResult(TestedTable):
    """``table``: ``feature, value, dropped_with, dropped_share, converted_with,
    converted_share, difference (+ interval), p_value, p_adjusted, direction``; ``step`` the step
    studied, ``n_dropped`` / ``n_converted`` the denominators."""

    table: pd.DataFrame
    step: int
    label: str
    n_dropped: int
    n_converted: int
    alpha: float

    def to_dict(self) -> dict:
        return {"step": self.step, "label": self.label, "n_dropped": self.n_dropped,
                "n_converted": self.n_converted, "table": records(self.table)}  # fmt: skip


def _outcome_units(prep: Any, units: Any, k: int) -> Any:
    import ibis

    spec = prep.spec
    prev, got = units[f"t_{k - 1}"], units[f"t_{k}"]
    u = units.filter(prev.notnull() & (got.notnull() | units.status.isin(["dropped", "excluded"])))
    prev, got = u[f"t_{k - 1}"], u[f"t_{k}"]
    end = ibis.literal(prep.as_of.to_pydatetime())
    if spec.window is not None:
        end = ibis.least(end, prep.engine.shift(u.t_entry, spec.window))
    hi = spec.max_gap[k - 2] if spec.mode != "any_order" else None
    if hi is not None:
        end = ibis.least(end, prep.engine.shift(prev, hi))
    if f"xt_{k}" in u.columns:
        end = u[f"xt_{k}"].coalesce(end)
    return u.select(*prep.side, start=prev, stop=got.coalesce(end),
                    dropped=got.isnull().cast("int64"))  # fmt: skip


def dropoff_drivers(
    events: Any,
    steps: Any,
    *,
    step: int | None = None,
    customers: Any = None,
    attributes: tuple[str, ...] | list[str] = (),
    min_size: int = 10,
    top: int | None = 20,
    adjust_method: str = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
    engine: Engine | None = None,
    **options: Any,
) -> DriverResult:
    """Drivers of drop-off at ``step`` (2..n; default the weakest); ``steps`` as in
    :func:`cjlib.funnels.segments.funnel_segments`. ``top`` rows by adjusted p-value."""
    from cjlib.funnels.segments import attribute_segments, first_channel_segments

    spec = resolve_spec(steps, options)
    if spec.mode == "any_order":
        raise ValueError("dropoff_drivers needs an ordered funnel (mode closed or open)")
    if step is not None and (not isinstance(step, int) or not 2 <= step <= spec.n_steps):
        raise ValueError(f"step must be an int from 2 to {spec.n_steps}, got {step!r}")
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an int >= 1, got {min_size!r}")
    adjust(np.array([]), adjust_method)
    t, eng = as_table(events, engine)
    with computed_units(events, spec, eng) as (prep, units, counted):
        if step is None:
            table = step_table(eng.to_pandas(
                counted.group_by(["entry_step", "depth", "status"]).aggregate(n=counted.count())
            ), spec)  # fmt: skip
            rows = table[table["step"] > 1].dropna(subset=["conversion"])
            if rows.empty:
                raise ValueError("no step after the first has a conversion rate (no entrants)")
            step = int(rows.loc[rows["conversion"].idxmin(), "step"])
        pop = _outcome_units(prep, units, step)
        sizes = eng.to_pandas(pop.group_by("dropped").aggregate(n=pop.count()))
        ev = prep.events
        own = [s for s in spec.steps[step - 2 : step]]
        skip = ev.event.isin([e for s in own for e in s.events])
        for s in own:
            if s.stage is not None:
                skip = skip | (ev.stage_index == spec.stages.index(s.stage))
        ev = ev.filter(~skip).select("customer_id", "timestamp", "event")
        j = pop.join(ev, [pop.customer_id == ev.customer_id])
        j = j.filter(j.timestamp <= j.start)
        per = j.select(*prep.side, "start", "dropped", value=j.event).distinct()
        parts = [per.group_by(["value", "dropped"]).aggregate(n=per.count())
                 .mutate(feature=ibis_literal("event"))]  # fmt: skip
        sources = (
            [("channel", first_channel_segments(events, engine=eng))]
            if "channel" in t.columns
            else []
        )
        sources += [(a, attribute_segments(customers, a, engine=eng)) for a in attributes]
        for name, seg in sources:
            sj = pop.join(seg, "customer_id")
            parts.append(sj.group_by([sj.segment.name("value"), "dropped"]).aggregate(n=sj.count())
                         .mutate(feature=ibis_literal(name)))  # fmt: skip
        counts = pd.concat([eng.to_pandas(p) for p in parts], ignore_index=True)
    sizes = dict(zip(sizes["dropped"].astype(int), sizes["n"].astype(int), strict=True))
    n_d, n_c = sizes.get(1, 0), sizes.get(0, 0)
    wide = counts.pivot_table(index=["feature", "value"], columns="dropped", values="n",
                              aggfunc="sum", fill_value=0).reset_index()  # fmt: skip
    wide = wide.rename(columns={1: "dropped_with", 0: "converted_with"})
    for c in ("dropped_with", "converted_with"):
        wide[c] = wide[c].astype("int64") if c in wide else 0
    wide = wide[wide["dropped_with"] + wide["converted_with"] >= min_size].copy()
    xd, xc = wide["dropped_with"].to_numpy(float), wide["converted_with"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        wide["dropped_share"] = xd / n_d if n_d else np.nan
        wide["converted_share"] = xc / n_c if n_c else np.nan
    wide["difference"] = wide["dropped_share"] - wide["converted_share"]
    low, high = newcombe_interval(xd, n_d, xc, n_c, confidence=confidence)
    wide["difference_low"], wide["difference_high"] = low, high
    wide["p_value"] = two_proportion_test(xd, n_d, xc, n_c)
    wide["p_adjusted"] = adjust(wide["p_value"].to_numpy(), adjust_method)
    wide["direction"] = np.where(wide["difference"] > 0, "over-represented among dropped",
                                 "under-represented among dropped")  # fmt: skip
    wide = wide.sort_values(["p_adjusted", "feature", "value"], ignore_index=True)
    wide.columns.name = None
    return DriverResult(wide.head(top) if top else wide, step, spec.steps[step - 1].label,
                        n_d, n_c, alpha)  # fmt: skip


def ibis_literal(value: str) -> Any:
    import ibis

    return ibis.literal(value)
