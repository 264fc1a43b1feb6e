"""``journey_map()``: the stage x row journey map (actions, touchpoints, reach, conversion, dwell,
emotion, pain points), the stage success metrics and the ranked pain points, for everyone or one
persona."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.journeymap.metrics import REFERRAL_EVENTS, REVIEW_EVENTS, stage_metrics
from cjlib.journeymap.painpoints import pain_points, slow_steps
from cjlib.stages import StageModel, five_stage
from cjlib.stats import wilson_interval
from cjlib.units import duration_text

__all__ = ["JourneyMap", "journey_map", "ROWS"]

ROWS = (
    "Customer actions (top events)",
    "Touchpoints and channels",
    "Reached (customers, % of all)",
    "Conversion to next stage",
    "Median time in stage",
    "Satisfaction (mean CSAT 1-5)",
    "NPS (points)",
    "Top pain points",
)


@dataclass(frozen=True)
class JourneyMap:
    """A journey map.

    ``stages``: one row per stage (tidy: ``reached, reached_share, conversion_next`` with
    ``_low/_high``, ``median_dwell_hours``, ``csat_mean`` and ``nps`` with intervals, ``answers``,
    ``actions``, ``channels``, ``pain``, ``has_events``: whether any event is in the stage; a
    stage without events has no conversion); ``table``: the same as the map table a reader sees
    (rows x stages, text); ``metrics``: stage success metrics; ``pain_points``: the ranked list;
    ``voc``: the :class:`cjlib.voc.VocResult` (``None`` without surveys); ``segment``: the
    persona mapped (``None`` for everyone); ``parameters``.
    """

    stages: pd.DataFrame
    table: pd.DataFrame
    metrics: pd.DataFrame
    pain_points: pd.DataFrame
    voc: Any
    furthest: pd.DataFrame
    segment: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def unavailable(self) -> pd.DataFrame:
        """Stage metrics the data cannot support, with the reason."""
        m = self.metrics
        return m.loc[~m["available"], ["stage", "metric", "note"]].reset_index(drop=True)

    def opportunities(self, top: int = 3) -> list[dict]:
        """The ``top`` pain points as opportunities for the run summary: ``title``,
        ``evidence``, ``customers`` (affected)."""
        out = []
        who = f" ({self.segment})" if self.segment else ""
        for _, r in self.pain_points.head(top).iterrows():
            title = {
                "drop-off": f"Lose fewer customers between {r.what.replace(' → ', ' and ')}",
                "low satisfaction": f"Fix what disappoints customers at {r.stage}",
                "slow stage": f"Speed customers through {r.stage}",
                "complained-about touchpoint": f"Improve the {r.what.split(' ', 1)[-1]} touchpoint",
            }[r.kind]
            out.append(
                {"title": title + who, "evidence": r.evidence, "customers": int(r.customers)}
            )
        return out

    def to_frame(self) -> pd.DataFrame:
        return self.stages.copy()

    def to_dict(self) -> dict:
        from cjlib.report.glue import jsonable

        return jsonable(
            {
                "segment": self.segment,
                "stages": self.stages,
                "metrics": self.metrics,
                "pain_points": self.pain_points,
                "parameters": self.parameters,
            }
        )

    def _repr_html_(self) -> str:
        return self.table.to_html(escape=True, index=False)


def _top(df: pd.DataFrame, key: str, label: str, value: str, n: int, min_size: int) -> dict:
    out = {}
    for k, g in df[df[value] >= min_size].groupby(key):
        g = g.sort_values([value, label], ascending=[False, True]).head(n)
        out[k] = ", ".join(f"{a} ({int(b):,})" for a, b in zip(g[label], g[value], strict=True))
    return out


def journey_map(
    events: Any,
    surveys: Any = None,
    *,
    stages: StageModel | None = None,
    persona: Any = None,
    segment: str | None = None,
    churn_days: int = 90,
    wave: str = "month",
    referral_events: tuple[str, ...] = REFERRAL_EVENTS,
    review_events: tuple[str, ...] = REVIEW_EVENTS,
    top_actions: int = 3,
    top_pain: int = 2,
    min_size: int = 10,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> JourneyMap:
    """Build the journey map of ``events`` (and ``surveys`` for the emotion track, NPS and
    touchpoint complaints), for everyone or, with ``persona`` (``customer_id,persona`` table or
    CSV) and ``segment`` (a persona name), for one persona.

    ``churn_days``: days without activity that count as churned; ``wave``: survey waves for the
    VoC breakdown; ``top_actions``: events and channels listed per stage; ``top_pain``: pain
    points shown per stage on the map; ``min_size``: actions, channels and survey groups with
    fewer customers are left out (privacy).
    """
    from cjlib import journeys
    from cjlib.funnels.segments import persona_segments

    model = stages or five_stage()
    ev, engine = as_table(events, engine)
    sv = as_table(surveys, engine)[0] if surveys is not None else None
    # a file path, a DataFrame or an Ibis table (never tested for truth: a table has none)
    given = persona is not None and not (isinstance(persona, str) and not persona)
    if segment is not None:
        if not given:
            raise ValueError(
                "segment names a persona, so persona (a customer_id,persona file) is needed"
            )
        p = persona_segments(persona, engine=engine)
        names = sorted(engine.to_pandas(p.select("segment").distinct())["segment"].dropna())
        if segment not in names:
            raise ValueError(f"segment must be one of the personas {names}, got {segment!r}")
        ids = p.filter(p.segment == segment).select("customer_id").distinct()
        ev = ev.semi_join(ids, "customer_id")
        sv = sv.semi_join(ids, "customer_id") if sv is not None else None
    furthest = journeys.furthest_stage(ev, model, confidence=confidence, engine=engine)
    metrics = stage_metrics(
        ev,
        stages=model,
        surveys=sv,
        churn_days=churn_days,
        referral_events=referral_events,
        review_events=review_events,
        confidence=confidence,
        engine=engine,
    )
    coverage = journeys.stage_coverage(ev, model, engine=engine)
    actions = _top(
        coverage.dropna(subset=["stage"]), "stage", "event", "customers", top_actions, min_size
    )
    channels, channel_reach = {}, None
    t = journeys.with_stages(ev, model, engine=engine)
    if "channel" in t.columns:
        c = t.filter(t.channel.notnull() & (t.channel != "") & t.stage.notnull())
        per = engine.to_pandas(
            c.group_by(["stage", "channel"]).aggregate(customers=c.customer_id.nunique())
        )
        channels = _top(per, "stage", "channel", "customers", top_actions, min_size)
        c = t.filter(t.channel.notnull() & (t.channel != ""))
        reach = engine.to_pandas(c.group_by("channel").aggregate(n=c.customer_id.nunique()))
        channel_reach = pd.Series(reach["n"].to_numpy(), index=reach["channel"].astype(str))
    slow = slow_steps(ev, model, engine=engine)
    voc_result, tp_stage = None, {}
    if sv is not None:
        from cjlib.voc.breakdown import aggregate, prepare_surveys, voc_scores

        dims = ("stage", "touchpoint", "channel", "wave") + (
            ("persona",) if given and segment is None else ()
        )
        voc_result = voc_scores(
            sv,
            dimensions=dims,
            stages=model,
            events=ev,
            persona=persona if segment is None else None,
            wave=wave,
            min_size=min_size,
            confidence=confidence,
            engine=engine,
        )
        prepared, _, missing = prepare_surveys(sv, stages=model, engine=engine)
        if "touchpoint" not in missing and "stage" not in missing:
            tp = aggregate(prepared, ["touchpoint", "stage"], engine)
            tp = tp[tp["stage"].isin(model.stages)]  # not the answers without a stage
            tp = tp.sort_values(["responses", "stage"], ascending=[False, True])
            tp_stage = tp.drop_duplicates("touchpoint").set_index("touchpoint")["stage"].to_dict()
    pains = pain_points(
        furthest,
        voc=voc_result,
        slow=slow,
        channel_reach=channel_reach,
        touchpoint_stage=tp_stage,
        confidence=confidence,
    )
    with_events = set(coverage["stage"].dropna())
    tidy = _stage_frame(
        furthest, with_events, slow, voc_result, actions, channels, pains, top_pain, confidence
    )
    params = {
        "stage_model": model.name,
        "segment": segment,
        "churn_days": churn_days,
        "wave": wave,
        "top_actions": top_actions,
        "top_pain": top_pain,
        "min_size": min_size,
        "confidence": confidence,
    }
    return JourneyMap(tidy, _wide(tidy), metrics, pains, voc_result, furthest, segment, params)


def _stage_frame(furthest, with_events, slow, voc, actions, channels, pains, top_pain, confidence):
    f = furthest.reset_index(drop=True)
    total = int(f["customers"].sum())
    nxt = list(f["reached"].iloc[1:]) + [np.nan]
    has = f["stage"].isin(with_events).to_numpy()
    # no conversion from a stage no event is in (an order table's awareness: its reach only
    # counts customers past it), nor into a stage nobody reached (its advocacy): not 100 % or 0 %
    conv = [
        b / a if a and b and own else np.nan
        for a, b, own in zip(f["reached"], nxt, has, strict=True)
    ]
    k = np.nan_to_num(np.array(nxt, dtype=float)).astype(int)
    lo, hi = wilson_interval(k, f["reached"].to_numpy(), confidence=confidence)
    out = pd.DataFrame(
        {
            "stage": f["stage"],
            "reached": f["reached"].astype(int),
            "reached_share": f["reached"] / total if total else np.nan,
            "conversion_next": conv,
            "conversion_next_low": np.where(np.isnan(conv), np.nan, lo),
            "conversion_next_high": np.where(np.isnan(conv), np.nan, hi),
        }
    )
    dwell = slow.set_index("stage")["median_hours"] if len(slow) else pd.Series(dtype=float)
    out["median_dwell_hours"] = out["stage"].map(dwell).astype(float)
    cols = ["csat_mean", "csat_mean_low", "csat_mean_high", "nps", "nps_low", "nps_high"]
    if voc is not None and "stage" in set(voc.by["dimension"]):
        st = voc.table("stage").set_index("stage")
        for col in cols:
            out[col] = out["stage"].map(st[col]).astype(float)
        # no answers at a stage: 0; a suppressed stage's count stays blank
        answers = out["stage"].map(st["responses"]).astype("Int64")
        out["answers"] = answers.where(out["stage"].isin(st.index), 0)
    else:
        for col in cols:
            out[col] = np.nan
        out["answers"] = 0
    out["actions"] = [actions.get(s, "") for s in out["stage"]]
    out["channels"] = [channels.get(s, "") for s in out["stage"]]
    pain = {}
    for _, r in pains.iterrows():
        if r.stage and len(pain.get(r.stage, [])) < top_pain:
            pain.setdefault(r.stage, []).append(
                f"#{r['rank']} {r.kind}: {r.what} ({int(r.customers):,})"
            )
    out["pain"] = out["stage"].map(lambda s: "; ".join(pain.get(s, [])))
    out["has_events"] = has
    return out


def _fmt(x: float, spec: str, na: str = "—") -> str:
    return na if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def _with_interval(x: float, low: float, high: float, spec: str, dash: str, n: str = "") -> str:
    """``4.20 (3.90–4.50; 12 answers)``; without an interval (one answer) ``4.00 (1 answer)``."""
    if np.isnan(x):
        return "—"
    inside = [] if np.isnan(low) or np.isnan(high) else [f"{low:{spec}}{dash}{high:{spec}}"]
    inside += [n] if n else []
    return f"{x:{spec}}" + (f" ({'; '.join(inside)})" if inside else "")


def _wide(s: pd.DataFrame) -> pd.DataFrame:
    cells = {}
    for _, r in s.iterrows():
        answers = (  # a suppressed stage: its scores are blank, so no count is shown
            "" if pd.isna(r.answers) else f"{r.answers:,} answer{'' if r.answers == 1 else 's'}"
        )
        cells[r.stage] = [
            r.actions or "—",
            r.channels or "—",
            f"{r.reached:,} ({_fmt(r.reached_share, '.1%')})",
            _with_interval(
                r.conversion_next, r.conversion_next_low, r.conversion_next_high, ".1%", "–"
            ),
            duration_text(r.median_dwell_hours),
            _with_interval(r.csat_mean, r.csat_mean_low, r.csat_mean_high, ".2f", "–", answers),
            _with_interval(r.nps, r.nps_low, r.nps_high, "+.0f", " to "),
            r.pain or "—",
        ]
    return pd.DataFrame({"row": list(ROWS), **cells})
