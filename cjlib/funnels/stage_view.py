"""The journey-stage view: stage funnel, furthest stage, transitions, dwell time, stage paths.

Reuses :mod:`cjlib.journeys` (furthest stage, transitions with regressions and skips, paths) and
adds the stage funnel (a closed funnel over the stages, via :func:`cjlib.funnels.funnel`), dwell
time per stage and the links of a stage-path Sankey. Industry figures are shown as labelled
reference marks, not as truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.funnels.core import FunnelResult, funnel, records
from cjlib.funnels.timing import _quantile, bucket
from cjlib.stages import StageModel, five_stage

__all__ = ["StageView", "stage_view", "dwell_times", "sankey_links", "INDUSTRY_REFERENCES"]

# Share of customers lost between consecutive stages, as quoted by the sources (marketing
# funnel benchmarks); reference marks only.
INDUSTRY_REFERENCES = pd.DataFrame(
    [
        ("awareness", "consideration", 0.38, "industry figure quoted in our sources (~38 % lost)"),
        ("consideration", "purchase", 0.29, "industry figure quoted in our sources (~29 % lost)"),
    ],
    columns=["from_stage", "to_stage", "lost_share", "source"],
)


def dwell_times(
    events: Any, stages: StageModel | None = None, *, engine: Engine | None = None
) -> pd.DataFrame:
    """Time spent in each stage: from entering a stage step to the next stage step (steps as in
    :func:`cjlib.journeys.stage_steps`, repeats collapsed). A customer's last step has no end
    (still there, or gone) and is counted in ``open_steps`` only. Hours; to the second under an
    hour and to the minute above (:func:`cjlib.funnels.timing.bucket`); quartiles are empirical
    quantiles (Hyndman & Fan type 1: of 1 h and 2 h the median is 1 h)."""
    import ibis

    from cjlib.journeys import _ORDER, stage_steps

    model = stages or five_stage()
    steps = stage_steps(events, model, engine=engine)
    _, engine = as_table(events, engine)
    window = ibis.window(group_by="customer_id", order_by=list(_ORDER))
    steps = steps.mutate(next_ts=steps.timestamp.lead().over(window))
    micros = bucket(engine.epoch_us(steps.next_ts) - engine.epoch_us(steps.timestamp), None)
    steps = steps.mutate(us=ibis.ifelse(steps.next_ts.isnull(), -1, micros.cast("int64")))
    hist = engine.to_pandas(
        steps.group_by(["stage_index", "us"]).aggregate(n=steps.count())
    ).astype({"stage_index": "int64", "us": "int64", "n": "int64"})
    rows = []
    for i, stage in enumerate(model.stages):
        g = hist[(hist.stage_index == i) & (hist.us >= 0)].sort_values("us")
        vals, n = g["us"].to_numpy(dtype=float) / 3.6e9, g["n"].to_numpy(dtype=float)
        rows.append(
            {
                "stage": stage,
                "steps": int(n.sum()),
                "open_steps": int(hist.loc[(hist.stage_index == i) & (hist.us < 0), "n"].sum()),
                "p25_hours": _quantile(vals, n, 0.25),
                "median_hours": _quantile(vals, n, 0.5),
                "p75_hours": _quantile(vals, n, 0.75),
            }
        )
    return pd.DataFrame(rows)


def sankey_links(paths: pd.DataFrame, *, depth: int = 4) -> pd.DataFrame:
    """Links ``source, target, customers`` between positions of the stage paths (``"1.
    awareness"`` -> ``"2. consideration"``; a path that ends goes to ``"k. (end)"``), from
    :func:`cjlib.journeys.stage_paths` (so the same privacy threshold applies)."""
    if not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth must be an int >= 2, got {depth!r}")
    links: dict[tuple[str, str], int] = {}
    for path, n in zip(paths["path"], paths["customers"], strict=True):
        parts = str(path).split(" > ")[:depth]
        if len(parts) < depth:
            parts = [*parts, "(end)"]
        for i in range(len(parts) - 1):
            key = (f"{i + 1}. {parts[i]}", f"{i + 2}. {parts[i + 1]}")
            links[key] = links.get(key, 0) + int(n)
    out = pd.DataFrame([(a, b, n) for (a, b), n in links.items()],
                       columns=["source", "target", "customers"])  # fmt: skip
    return out.sort_values(["source", "customers"], ascending=[True, False], ignore_index=True)


@dataclass(frozen=True)
class StageView:
    """``funnel``: the closed stage funnel, from the first to the last stage the data record
    (``skipped``: the earlier stages, which no event maps to: a click-stream seldom records
    awareness, and a closed funnel entered there would be empty; ``trailing``: the later ones, which
    would show a 100 % loss that is only a stage nobody records); ``furthest``, ``transitions``,
    ``paths``: from :mod:`cjlib.journeys`; ``dwell``: time in each stage; ``links``: Sankey links;
    ``references``: industry figures next to ours (``our_lost_share`` with its interval)."""

    funnel: FunnelResult
    furthest: pd.DataFrame
    transitions: pd.DataFrame
    paths: pd.DataFrame
    dwell: pd.DataFrame
    links: pd.DataFrame
    references: pd.DataFrame
    stages: StageModel
    skipped: tuple[str, ...] = ()
    trailing: tuple[str, ...] = ()

    def regression_share(self) -> float:
        """Share of stage-to-stage moves that go back to an earlier stage."""
        t = self.transitions
        moves = t[t["kind"].isin(["progression", "skip", "regression"])]
        total = moves["transitions"].sum()
        return (
            float(moves.loc[moves["kind"] == "regression", "transitions"].sum() / total)
            if total
            else np.nan
        )

    def to_frame(self) -> pd.DataFrame:
        return self.funnel.to_frame()

    def to_dict(self) -> dict:
        return {
            "funnel": self.funnel.to_dict(),
            "furthest": records(self.furthest),
            "transitions": records(self.transitions),
            "paths": records(self.paths),
            "dwell": records(self.dwell),
            "references": records(self.references),
            "skipped": list(self.skipped),
            "trailing": list(self.trailing),
        }


def stage_view(
    events: Any,
    stages: StageModel | None = None,
    *,
    window: Any = None,
    top: int = 10,
    min_customers: int = 10,
    depth: int = 4,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> StageView:
    """Everything the stage section of the drop-off study shows, for ``stages`` (default
    five-stage). The stage funnel runs from the first to the last stage any event maps to (at least
    two stages; see :class:`StageView`). ``window``: of the stage funnel (default none: stages are
    slow); ``top``/``min_customers``: stage paths listed and their privacy threshold."""
    from cjlib import journeys

    model = stages or five_stage()
    dwell = dwell_times(events, model, engine=engine)
    seen = (dwell["steps"] + dwell["open_steps"]).to_numpy() > 0
    n_stages = len(model.stages)
    first = min(int(seen.argmax()) if seen.any() else 0, n_stages - 2)
    last = n_stages - 1 - int(seen[::-1].argmax()) if seen.any() else n_stages - 1
    last = max(last, first + 1)
    steps = [f"stage:{s}" for s in model.stages[first : last + 1]]
    f = funnel(events, steps, stages=model, window=window, confidence=confidence, engine=engine)
    paths_all = journeys.stage_paths(events, model, top=None, min_customers=min_customers,
                                     confidence=confidence, engine=engine)  # fmt: skip
    refs = INDUSTRY_REFERENCES.copy()
    rows = f.steps.set_index("label")
    pairs = zip(refs["from_stage"], refs["to_stage"], strict=True)
    ours = [rows.loc[b] if a in rows.index and b in rows.index else None for a, b in pairs]
    refs["our_lost_share"] = [np.nan if r is None else r["drop_off"] for r in ours]
    refs["our_low"] = [np.nan if r is None else 1 - r["conversion_high"] for r in ours]
    refs["our_high"] = [np.nan if r is None else 1 - r["conversion_low"] for r in ours]
    return StageView(
        funnel=f,
        furthest=journeys.furthest_stage(events, model, confidence=confidence, engine=engine),
        transitions=journeys.stage_transitions(
            events, model, confidence=confidence, engine=engine
        ),  # fmt: skip
        paths=paths_all.head(top).reset_index(drop=True),
        dwell=dwell,
        links=sankey_links(paths_all, depth=depth),
        references=refs,
        stages=model,
        skipped=tuple(model.stages[:first]),
        trailing=tuple(model.stages[last + 1 :]),
    )
