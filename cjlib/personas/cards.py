"""Persona cards: size, a name from distinctive traits, who they are, how they behave, how far they
get, what they say, and which traits over- or under-index.

Definitions (every share says its denominator):

- size share: customers in the persona / all assigned customers (Wilson interval);
- numeric traits: standardised mean difference of the persona against the rest of the customers
  (Cohen's d with the pooled standard deviation), interval from the normal approximation of its
  standard error, sqrt((n1 + n2) / (n1 n2) + d^2 / (2 (n1 + n2))) (Hedges & Olkin 1985, eq. 5.14);
  customers missing the trait are left out of it;
- categorical traits, per level: Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)) (persona vs rest),
  interval +- z sqrt(1/n1 + 1/n2) (Cohen 1988, ch. 6); ``index`` = share in the persona / share
  among all customers x 100 (100 = average), as marketers read it;
- furthest stage: share of the persona's customers (with a mapped event) reaching each stage or a
  later one (Wilson); the drop-off is the step with the largest share lost;
- NPS: over respondents (customers with at least one answer; their mean answer), % promoters (9-10)
  minus % detractors (0-6), interval from the variance (p_P + p_D - (p_P - p_D)^2) / n (the
  multinomial normal approximation); CSAT: mean with a t interval;
- the name joins the phrases of the (up to) three traits with the largest absolute effect whose
  interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import in_background
from cjlib.personas.features import FeatureTable
from cjlib.personas.traits import _z, trait_effects
from cjlib.stats import wilson_interval

__all__ = ["PersonaCards", "persona_cards", "trait_effects", "name_personas"]

_PHRASES = {
    "age": ("older", "younger"),
    "monetary": ("high spend", "low spend"),
    "avg_order_value": ("big baskets", "small baskets"),
    "frequency": ("frequent buyers", "rare buyers"),
    "recency_days": ("lapsing", "recently active"),
    "touches": ("many touches", "few touches"),
    "events": ("highly engaged", "light engagement"),
    "sessions": ("many sessions", "few sessions"),
    "regressions": ("back-and-forth journeys", "straight journeys"),
    "furthest_stage_index": ("deep in the journey", "early drop-off"),
    "nps": ("promoters", "detractors"),
    "csat": ("satisfied", "dissatisfied"),
    "tenure_days": ("long-standing", "new"),
}


def _phrase(trait: str, level: Any, effect: float) -> str:
    if level is not None and not pd.isna(level):
        col = trait.removeprefix("customer_")
        if col in ("acquisition_channel",):
            return f"acquired via {level}" if effect > 0 else f"rarely via {level}"
        return f"{level}" if effect > 0 else f"seldom {level}"
    if trait.startswith("channel_"):
        ch = trait.removeprefix("channel_")
        return f"{ch}-led" if effect > 0 else f"little {ch}"
    hi, lo = _PHRASES.get(
        trait, (f"high {trait.replace('_', ' ')}", f"low {trait.replace('_', ' ')}")
    )
    return hi if effect > 0 else lo


def name_personas(traits: pd.DataFrame, *, n_phrases: int = 3) -> dict[int, str]:
    """A short name per persona from its most distinctive significant traits, at most one per
    feature block (unique names); categorical levels name a persona only when over-indexed."""
    names: dict[int, str] = {}
    sig = traits[(traits.effect_low > 0) | (traits.effect_high < 0)]
    sig = sig[~sig.trait.str.startswith("days_")]
    for pid, group in sig.groupby("persona_id"):
        group = group.assign(size=group.effect.abs()).sort_values("size", ascending=False)
        phrases: list[str] = []
        used: set[str] = set()
        for row in group.itertuples():
            if (row.kind == "categorical" and row.effect < 0) or row.block in used:
                continue
            phrase = _phrase(row.trait, row.level, row.effect)
            if phrase not in phrases:
                phrases.append(phrase)
                used.add(row.block)
            if len(phrases) == n_phrases:
                break
        name = ", ".join(phrases).capitalize() or f"Persona {pid}"
        names[int(pid)] = name if name not in names.values() else f"{name} ({pid})"
    for pid in traits["persona_id"].unique():
        names.setdefault(int(pid), f"Persona {pid}")
    return names


@dataclass(frozen=True)
class PersonaCards:
    """The cards' tables: ``summary`` (one row per persona), ``traits``, ``stages``,
    ``attitudes``, ``voices`` (what respondents say, groups below ``min_cell_size`` left out)."""

    summary: pd.DataFrame
    traits: pd.DataFrame
    stages: pd.DataFrame
    attitudes: pd.DataFrame
    voices: pd.DataFrame
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def to_dict(self) -> dict:
        def rec(df: pd.DataFrame) -> list:
            return df.astype(object).where(df.notna(), None).to_dict(orient="records")

        return {
            "summary": rec(self.summary),
            "traits": rec(self.traits),
            "stages": rec(self.stages),
            "attitudes": rec(self.attitudes),
            "voices": rec(self.voices),
            "params": self.params,
        }

    def _repr_html_(self) -> str:
        from cjlib.personas.render import cards_html

        return cards_html(self)


def _stages(frame: pd.DataFrame, labels: np.ndarray, stage_names: list[str], conf: float):
    rows = []
    idx = pd.to_numeric(frame["furthest_stage_index"], errors="coerce").to_numpy(float)
    for pid in np.unique(labels):
        got = idx[(labels == pid) & ~np.isnan(idx)]
        n = len(got)
        for i, stage in enumerate(stage_names):
            reached = int((got >= i).sum())
            rows.append((pid + 1, stage, reached, n))
    out = pd.DataFrame(rows, columns=["persona_id", "stage", "reached", "customers"])
    out["reached_share"] = out["reached"] / out["customers"].where(out["customers"] > 0)
    out["reached_low"], out["reached_high"] = wilson_interval(
        out["reached"], out["customers"], confidence=conf
    )
    prev = out.groupby("persona_id")["reached"].shift()
    out["lost_share"] = 1 - out["reached"] / prev.where(prev > 0)
    # a stage no customer has an event in (no event in the data maps to it) measures no drop-off
    anyone = out.groupby("stage")["reached"].transform("sum")
    out.loc[anyone == 0, "lost_share"] = np.nan
    return out


def _attitudes(frame: pd.DataFrame, labels: np.ndarray, conf: float) -> pd.DataFrame:
    z = _z(conf)
    rows = []
    for pid in np.unique(labels):
        row: dict[str, Any] = {"persona_id": int(pid) + 1}
        if "nps" in frame:
            nps = frame["nps"].to_numpy(float)[labels == pid]
            nps = nps[~np.isnan(nps)]
            n = len(nps)
            pp, pd_ = ((nps >= 9).mean(), (nps <= 6).mean()) if n else (np.nan, np.nan)
            score = pp - pd_
            se = np.sqrt(max(pp + pd_ - score**2, 0) / n) if n else np.nan
            row |= {"respondents": n, "nps_score": 100 * score, "nps_low": 100 * (score - z * se),
                    "nps_high": 100 * (score + z * se)}  # fmt: skip
        if "csat" in frame:
            from scipy import stats

            cs = frame["csat"].to_numpy(float)[labels == pid]
            cs = cs[~np.isnan(cs)]
            n = len(cs)
            m = cs.mean() if n else np.nan
            half = (
                stats.t.ppf(0.5 + conf / 2, n - 1) * cs.std(ddof=1) / np.sqrt(n)
                if n > 1
                else np.nan
            )
            row |= {
                "csat_respondents": n,
                "csat_mean": m,
                "csat_low": m - half,
                "csat_high": m + half,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def _voices(surveys: Any, assignment: pd.DataFrame, engine: Any, min_cell: int) -> pd.DataFrame:
    """Most common answers per persona: ``comment`` split by NPS group, and goal-like columns."""
    import ibis

    from cjlib.engine import as_table
    from cjlib.personas.features import SURVEY_TEXT

    s, engine = as_table(surveys, engine)
    cols = [c for c in s.columns if c == "comment" or c.lower() in SURVEY_TEXT]
    if not cols:
        return pd.DataFrame(columns=["persona_id", "field", "answer", "respondents"])
    lab = ibis.memtable(assignment[["customer_id", "persona_id"]].astype({"customer_id": str}))
    joined = s.mutate(customer_id=s.customer_id.cast("string")).inner_join(lab, "customer_id")
    frames = []
    for col in cols:
        field_name = col
        if col == "comment" and "nps" in s.columns:
            group = ibis.cases(
                (joined.nps >= 9, "comment (promoters)"),
                (joined.nps <= 6, "comment (detractors)"),
                else_="comment (passives)",
            )
        else:
            group = ibis.literal(field_name)
        t = joined.filter(joined[col].notnull()).mutate(field=group, answer=joined[col])
        agg = t.group_by(["persona_id", "field", "answer"]).aggregate(
            respondents=t.customer_id.nunique()
        )
        frames.append(engine.to_pandas(agg.filter(agg.respondents >= min_cell)))
    out = pd.concat(frames, ignore_index=True)
    out["respondents"] = out["respondents"].astype("int64")
    return out.sort_values(["persona_id", "field", "respondents"], ascending=[True, True, False])


def _same_customers(frame: pd.DataFrame, assignment: pd.DataFrame) -> bool:
    """Whether ``assignment`` lists exactly ``frame``'s customers, in its order, each once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(assignment) != len(frame) or len(frame) < 2:
        return False

    def ids(values: pd.Series) -> pa.Array:
        out = pa.array(values, type=pa.large_string())  # Arrow-backed text: no copy
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    try:
        mine, theirs = ids(frame["customer_id"]), ids(assignment["customer_id"])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return mine.equals(theirs) and bool(pc.all(pc.less(mine[:-1], mine[1:])).as_py())


def _with_personas(frame: pd.DataFrame, assignment: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """The features of the assigned customers and their labels (persona id - 1): the inner join
    on ``customer_id``, or, when the assignment lists the same customers in the same order (as
    :func:`~cjlib.personas.find_personas` passes it), the rows as they are (no join to pay)."""
    if _same_customers(frame, assignment):
        return frame, assignment["persona_id"].to_numpy(int) - 1
    frame = frame.merge(assignment[["customer_id", "persona_id"]], on="customer_id")
    return frame, frame.pop("persona_id").to_numpy(int) - 1


def persona_cards(
    features: FeatureTable,
    assignment: pd.DataFrame,
    *,
    surveys: Any = None,
    stability: Any = None,
    min_cell_size: int = 10,
    confidence: float = 0.95,
    engine: Any = None,
) -> PersonaCards:
    """Cards for the personas in ``assignment`` (``customer_id, persona_id``; ids from 1).

    ``surveys`` adds what respondents say (answers given by at least ``min_cell_size``
    respondents of a persona); ``stability`` (:class:`~cjlib.personas.selection.Stability`) adds
    each persona's Jaccard stability and flag to the summary.
    """
    if not isinstance(features, FeatureTable):
        raise TypeError(f"features must be a FeatureTable, got {type(features).__name__}")
    if not isinstance(min_cell_size, int) or min_cell_size < 1:
        raise ValueError(f"min_cell_size must be an int >= 1, got {min_cell_size!r}")
    need = {"customer_id", "persona_id"}
    if not need <= set(assignment.columns):
        raise ValueError(f"assignment needs columns {sorted(need)}, got {list(assignment.columns)}")
    frame, labels = _with_personas(features.frame, assignment)
    voices_job = None
    if surveys is not None:  # the engine's query runs while the traits are computed here
        voices_job = in_background(_voices, surveys, assignment, engine, min_cell_size,
                                   name="cjlib-voices")  # fmt: skip
    traits = trait_effects(frame, labels, categorical=features.categorical,
                           blocks=features.blocks, confidence=confidence)  # fmt: skip
    sizes = np.bincount(labels, minlength=labels.max() + 1)
    found = name_personas(traits)
    names = {i: found.get(i, f"Persona {i}") for i in range(1, len(sizes) + 1)}
    total = int(sizes.sum())
    summary = pd.DataFrame({"persona_id": np.arange(1, len(sizes) + 1), "customers": sizes})
    summary.insert(1, "persona", [names[i] for i in summary.persona_id])
    summary["share"] = summary["customers"] / total
    summary["share_low"], summary["share_high"] = wilson_interval(
        summary["customers"], total, confidence=confidence
    )
    if stability is not None:
        cols = ["persona_id", "jaccard", "stability", "flagged"]
        summary = summary.merge(stability.personas[cols], on="persona_id", how="left")
    stage_names = list(features.params.get("stage_names", []))
    stages = _stages(frame, labels, stage_names, confidence) if stage_names else pd.DataFrame()
    attitudes = _attitudes(frame, labels, confidence)
    voices = (
        voices_job.result()
        if voices_job is not None
        else pd.DataFrame(columns=["persona_id", "field", "answer", "respondents"])
    )
    for table in (traits, stages, attitudes, voices):
        if len(table):
            table.insert(1, "persona", table["persona_id"].map(names))
    params = {"min_cell_size": min_cell_size, "confidence": confidence, "customers": total}
    return PersonaCards(summary, traits, stages, attitudes, voices, params)
