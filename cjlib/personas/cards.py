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
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from cjlib.personas.features import FeatureTable
from cjlib.stats import wilson_interval

__all__ = ["PersonaCards", "persona_cards", "trait_effects", "name_personas"]

_SKIP = ("customer_id", "furthest_stage", "survey_responses")
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


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


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


def _numeric_rows(x: np.ndarray, groups: list[np.ndarray], pids: np.ndarray, z: float) -> list:
    """Cohen's d of each persona against the rest on one numeric trait (module doc).

    ``groups`` holds each persona's row numbers (in row order), so a persona's mean and variance
    are those of its own values; the rest's follow from the personas' counts, sums and squared
    deviations (the parallel-variance identity) instead of a pass over all other customers.
    """
    ok = ~np.isnan(x)
    if ok.sum() < 3:
        return []
    mean_all = float(x[ok].mean())
    if np.nanmin(x) == np.nanmax(x):
        return []
    k = len(pids)
    count, sums, means, sq = np.zeros(k), np.zeros(k), np.full(k, np.nan), np.zeros(k)
    for g, rows in enumerate(groups):
        part = x[rows]
        part = part[~np.isnan(part)]
        if len(part):
            count[g], sums[g], means[g] = len(part), part.sum(), part.mean()
            sq[g] = part.var() * len(part)
    total = count.sum()
    out = []
    for g, pid in enumerate(pids):
        n1, n2 = int(count[g]), int(total - count[g])
        if n1 < 2 or n2 < 2:
            continue
        others = (np.arange(k) != g) & (count > 0)
        rest = (sums[others].sum()) / n2
        rest_sq = sq[others].sum() + (count[others] * (means[others] - rest) ** 2).sum()
        pooled = np.sqrt((sq[g] + rest_sq) / (n1 + n2 - 2))
        d = (means[g] - rest) / pooled if pooled > 0 else 0.0
        se = np.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
        out.append((pid, None, "numeric", means[g], rest, mean_all, n1, "d", d, d - z * se,
                    d + z * se))  # fmt: skip
    return out


def _categorical_rows(
    values: pd.Series, labels: np.ndarray, pids: np.ndarray, z: float
) -> list[tuple]:
    """Cohen's h of each persona against the rest for every level of one categorical trait,
    from one persona x level count table."""
    codes, uniques = pd.factorize(values.to_numpy(object))
    texts = [str(u) for u in uniques]
    levels = sorted(set(texts))
    where = {level: i for i, level in enumerate(levels)}
    level_of = np.array([where[t] for t in texts] + [-1], dtype=np.int64)[codes]
    known = level_of >= 0
    group = np.searchsorted(pids, labels[known])
    size = (len(pids), len(levels))
    joint = np.bincount(group * size[1] + level_of[known], minlength=size[0] * size[1])
    joint = joint.reshape(size)
    n_known = int(known.sum())
    rows = []
    for j, level in enumerate(levels):
        hits = int(joint[:, j].sum())
        p_all = hits / n_known
        for g, pid in enumerate(pids):
            n1 = int(joint[g].sum())
            n2 = n_known - n1
            if not n1 or not n2:
                continue
            p1, p2 = joint[g, j] / n1, (hits - joint[g, j]) / n2
            h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2))
            se = np.sqrt(1 / n1 + 1 / n2)
            rows.append((pid, level, "categorical", p1, p2, p_all, n1, "h", h, h - z * se,
                         h + z * se))  # fmt: skip
    return rows


def trait_effects(
    frame: pd.DataFrame,
    labels: np.ndarray,
    *,
    categorical: tuple[str, ...] = (),
    blocks: dict[str, str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every trait of every persona against the rest (see the module doc for the measures).

    One pass per trait: counts, sums and squared deviations per persona (numeric) or a persona
    x level count table (categorical); the rest's statistics follow from those.
    """
    z = _z(confidence)
    labels = np.asarray(labels)
    pids = np.unique(labels)
    order = np.argsort(labels, kind="stable")  # each persona's rows, in row order
    cuts = np.searchsorted(labels[order], pids, side="right")
    groups = np.split(order, cuts[:-1])
    rows = []
    for col in frame.columns:
        if col in _SKIP or col.endswith("__missing"):
            continue
        block = (blocks or {}).get(col, "")
        if col in categorical:
            found = _categorical_rows(frame[col], labels, pids, z)
        else:
            x = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
            found = _numeric_rows(x, groups, pids, z)
        rows.extend((r[0], col, r[1], block, *r[2:]) for r in found)
    out = pd.DataFrame(
        rows,
        columns=["persona_id", "trait", "level", "block", "kind", "persona_value", "rest_value",
                 "overall_value", "customers", "measure", "effect", "effect_low", "effect_high"],
    )  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        out["index"] = np.where(out["kind"] == "categorical", out["persona_value"] /
                                out["overall_value"] * 100, np.nan)  # fmt: skip
    out["persona_id"] = out["persona_id"].astype(int) + 1
    return out


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
    frame = features.frame.merge(assignment[["customer_id", "persona_id"]], on="customer_id")
    labels = frame.pop("persona_id").to_numpy(int) - 1
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
        _voices(surveys, assignment, engine, min_cell_size)
        if surveys is not None
        else pd.DataFrame(columns=["persona_id", "field", "answer", "respondents"])
    )
    for table in (traits, stages, attitudes, voices):
        if len(table):
            table.insert(1, "persona", table["persona_id"].map(names))
    params = {"min_cell_size": min_cell_size, "confidence": confidence, "customers": total}
    return PersonaCards(summary, traits, stages, attitudes, voices, params)
