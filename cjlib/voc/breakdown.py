"""NPS and CSAT by stage, touchpoint, channel, persona and survey wave, with wave-to-wave tests.

The survey table is prepared in the engine (stage labels resolved to the stage model, the wave
cut from the timestamp, persona and first-touch channel joined on) and reduced there to counts per
group; the scores and intervals of :mod:`cjlib.voc.scores` are then computed on those counts.

Denominators: ``responses`` are survey answers (a customer may answer more than once), ``nps``
and ``csat`` shares are over the answers that carry that score (``nps_answers``,
``csat_answers``). Intervals treat answers as independent; ``respondents`` (distinct customers)
says how far that is from true. Groups with fewer than ``min_size`` respondents are suppressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.stages import StageModel, five_stage
from cjlib.stats import holm
from cjlib.voc import scores

__all__ = ["VocResult", "voc_scores", "prepare_surveys", "DIMENSIONS", "WAVES", "NO_PERSONA"]

DIMENSIONS = ("stage", "touchpoint", "channel", "persona", "wave")
WAVES = {"month": "%Y-%m", "quarter": None, "week": "%G-W%V", "year": "%Y"}
NO_PERSONA = "(no persona)"
_ANSWER_COUNTS = ["promoters", "passives", "detractors", "nps_answers", "csat_satisfied",
                  "csat_answers", "responses"]  # fmt: skip
SCORE_COLUMNS = [
    "nps",
    "nps_se",
    "nps_low",
    "nps_high",
    "csat_share",
    "csat_low",
    "csat_high",
    "csat_mean",
    "csat_mean_low",
    "csat_mean_high",
]


@dataclass(frozen=True)
class VocResult:
    """Voice-of-the-customer scores.

    ``overall``: one row for all answers; ``by``: one row per (dimension, group) with
    ``respondents, responses, nps_answers, promoters, passives, detractors, nps (points),
    nps_se, nps_low, nps_high, csat_answers, csat_satisfied, csat_share, csat_low, csat_high,
    csat_mean, csat_mean_low, csat_mean_high, suppressed``; ``waves``: wave-to-wave changes
    (overall and within each stage) with Holm-adjusted p-values; ``unavailable``: dimensions the
    data cannot support and why; ``parameters``: the options used.
    """

    overall: pd.DataFrame
    by: pd.DataFrame
    waves: pd.DataFrame
    unavailable: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def table(self, dimension: str) -> pd.DataFrame:
        """The rows of one dimension, ``group`` renamed to the dimension."""
        if dimension not in set(self.by["dimension"]):
            raise ValueError(
                f"dimension must be one of {sorted(set(self.by['dimension']))}, got {dimension!r}"
            )
        out = self.by[self.by["dimension"] == dimension].drop(columns=["dimension", "order"])
        return out.rename(columns={"group": dimension}).reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        return self.by.copy()

    def to_dict(self) -> dict:
        from cjlib.report.glue import jsonable

        return jsonable(
            {
                "overall": self.overall,
                "by": self.by,
                "waves": self.waves,
                "unavailable": self.unavailable,
                "parameters": self.parameters,
            }
        )

    def _repr_html_(self) -> str:
        cols = ["dimension", "group", "respondents", "nps", "nps_low", "nps_high", "csat_share"]
        return self.by[cols].to_html(index=False, float_format=lambda x: f"{x:.2f}")


def _wave_expr(ts: Any, wave: str) -> Any:
    if wave == "quarter":
        return ts.year().cast("string") + "-Q" + ts.quarter().cast("string")
    return ts.strftime(WAVES[wave])


def prepare_surveys(
    surveys: Any,
    *,
    stages: StageModel | None = None,
    events: Any = None,
    persona: Any = None,
    wave: str = "month",
    engine: Engine | None = None,
) -> tuple[Any, Engine, dict[str, str]]:
    """The survey table with the analysis dimensions added (engine expression), its engine and
    ``{dimension: why unavailable}``.

    ``stage`` labels are resolved to ``stages`` (aliases accepted; unknown labels kept as they
    are); ``wave`` is ``month``, ``quarter``, ``week``, ``year`` or a survey column;
    ``channel`` is a survey ``channel`` column or, failing that, the customer's first-touch
    channel from ``events``; ``persona`` a ``customer_id,persona`` table or file.
    """
    import ibis

    model = stages or five_stage()
    t, engine = as_table(surveys, engine)
    missing: dict[str, str] = {}
    if not isinstance(wave, str) or (wave not in WAVES and wave not in t.columns):
        raise ValueError(
            f"wave must be one of {sorted(WAVES)} or a survey column "
            f"{[c for c in t.columns if c not in ('nps', 'csat', 'comment')]}, got {wave!r}"
        )
    t = t.mutate(wave=_wave_expr(t.timestamp, wave) if wave in WAVES else t[wave].cast("string"))
    if "stage" in t.columns:
        labels = engine.to_pandas(t.select("stage").distinct())["stage"].dropna()
        resolved = {}
        for label in labels:
            try:
                resolved[str(label)] = model.resolve(str(label))
            except KeyError:
                resolved[str(label)] = str(label)
        if any(k != v for k, v in resolved.items()):
            cases = [(t.stage == k, v) for k, v in resolved.items()]
            t = t.mutate(stage=ibis.cases(*cases, else_=t.stage))
    else:
        missing["stage"] = "the survey table has no stage column"
    if "touchpoint" not in t.columns:
        missing["touchpoint"] = "the survey table has no touchpoint column"
    if "channel" not in t.columns:
        if events is not None:
            from cjlib.funnels.segments import first_channel_segments

            ev, _ = as_table(events, engine)
            if "channel" in ev.columns:
                first = first_channel_segments(ev, engine=engine).rename(channel="segment")
                t = t.left_join(first, "customer_id").drop("customer_id_right")
            else:
                missing["channel"] = "the events have no channel column"
        else:
            missing["channel"] = "no channel column in the surveys and no events to find one"
    if persona is not None and not (isinstance(persona, str) and persona == ""):
        from cjlib.funnels.segments import persona_segments

        p = persona_segments(persona, engine=engine).rename(persona="segment")
        p = p.group_by("customer_id").aggregate(persona=p.persona.min())
        t = t.left_join(p, "customer_id").drop("customer_id_right")
        t = t.mutate(persona=t.persona.fill_null(NO_PERSONA))
    elif "persona" not in t.columns:
        missing["persona"] = "no persona file given (persona_path)"
    for score in ("nps", "csat"):
        if score not in t.columns:
            t = t.mutate(**{score: ibis.null("int64")})
            missing[score] = f"the survey table has no {score} column"
    return t, engine, missing


def aggregate(t: Any, keys: Sequence[str], engine: Engine) -> pd.DataFrame:
    """Counts and sums per group of ``keys`` (run in the engine)."""
    nps, csat = t.nps, t.csat
    agg = t.group_by(list(keys)).aggregate(
        responses=t.count(),
        respondents=t.customer_id.nunique(),
        nps_answers=nps.count(),
        promoters=(nps >= scores.PROMOTER_MIN).cast("int64").sum(),
        detractors=(nps <= scores.DETRACTOR_MAX).cast("int64").sum(),
        csat_answers=csat.count(),
        csat_satisfied=(csat >= scores.CSAT_SATISFIED_MIN).cast("int64").sum(),
        csat_sum=csat.cast("float64").sum(),
        csat_sumsq=(csat.cast("float64") * csat.cast("float64")).sum(),
    )
    out = engine.to_pandas(agg)
    counts = ["responses", "respondents", "nps_answers", "promoters", "detractors"]
    counts += ["csat_answers", "csat_satisfied"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out[["csat_sum", "csat_sumsq"]] = out[["csat_sum", "csat_sumsq"]].fillna(0).astype(float)
    out["passives"] = out["nps_answers"] - out["promoters"] - out["detractors"]
    return out


def with_scores(df: pd.DataFrame, *, confidence: float, min_size: int) -> pd.DataFrame:
    """Add NPS, CSAT share and mean CSAT with intervals; blank groups below ``min_size``."""
    out = df.copy()
    n = scores.nps_interval(
        out["promoters"], out["detractors"], out["nps_answers"], confidence=confidence
    )
    out["nps"], out["nps_se"], out["nps_low"], out["nps_high"] = (
        n["nps"],
        n["se"],
        n["low"],
        n["high"],
    )
    c = scores.csat_share(out["csat_satisfied"], out["csat_answers"], confidence=confidence)
    out["csat_share"], out["csat_low"], out["csat_high"] = c["share"], c["low"], c["high"]
    m = scores.mean_interval(
        out["csat_sum"], out["csat_sumsq"], out["csat_answers"], confidence=confidence
    )
    out["csat_mean"], out["csat_mean_low"], out["csat_mean_high"] = m["mean"], m["low"], m["high"]
    out["suppressed"] = out["respondents"] < min_size
    out.loc[out["suppressed"], SCORE_COLUMNS] = np.nan
    # their answer counts too: promoters and detractors of a small group give its NPS back
    parts = [c for c in _ANSWER_COUNTS if c in out.columns]
    out[parts] = out[parts].astype("Int64")
    out.loc[out["suppressed"], parts] = pd.NA
    return out.drop(columns=["csat_sum", "csat_sumsq"])


def _order(dimension: str, groups: pd.Series, model: StageModel) -> list[int]:
    if dimension == "stage":
        rank = {s: i for i, s in enumerate(model.stages)}
        return [rank.get(str(g), len(rank)) for g in groups]
    return [0] * len(groups)


def _wave_tests(
    t: Any, within: Sequence[str], engine: Engine, *, confidence: float, min_size: int
) -> pd.DataFrame:
    rows = []
    for dim in [None, *within]:
        keys = ["wave"] if dim is None else [dim, "wave"]
        counts = with_scores(aggregate(t, keys, engine), confidence=confidence, min_size=min_size)
        groups = [(None, counts)] if dim is None else list(counts.groupby(dim, sort=True))
        for group, g in groups:
            g = g[~g["suppressed"] & g["wave"].notna()].sort_values("wave")
            for (_, a), (_, b) in zip(g.iloc[:-1].iterrows(), g.iloc[1:].iterrows(), strict=True):
                rows.append((dim or "all", "all" if group is None else str(group), a, b))
    cols = ["within", "group", "from_wave", "to_wave", "respondents_from", "respondents_to"]
    if not rows:
        return pd.DataFrame(columns=cols)
    a = pd.DataFrame([r[2] for r in rows]).reset_index(drop=True)
    b = pd.DataFrame([r[3] for r in rows]).reset_index(drop=True)
    out = pd.DataFrame(
        {
            "within": [r[0] for r in rows],
            "group": [r[1] for r in rows],
            "from_wave": a["wave"],
            "to_wave": b["wave"],
            "respondents_from": a["respondents"],
            "respondents_to": b["respondents"],
            "nps_from": a["nps"],
            "nps_to": b["nps"],
        }
    )
    d = scores.nps_difference(
        {"nps": a["nps"], "se": a["nps_se"]},
        {"nps": b["nps"], "se": b["nps_se"]},
        confidence=confidence,
    )
    out["nps_change"], out["nps_change_low"], out["nps_change_high"] = (
        d["difference"],
        d["low"],
        d["high"],
    )
    out["nps_p"] = d["p_value"]
    out["csat_from"], out["csat_to"] = a["csat_share"], b["csat_share"]
    c = scores.csat_difference(
        a["csat_satisfied"],
        a["csat_answers"],
        b["csat_satisfied"],
        b["csat_answers"],
        confidence=confidence,
    )
    out["csat_change"], out["csat_change_low"], out["csat_change_high"] = (
        c["difference"],
        c["low"],
        c["high"],
    )
    out["csat_p"] = c["p_value"]
    out["nps_p_adjusted"] = holm(out["nps_p"].to_numpy())
    out["csat_p_adjusted"] = holm(out["csat_p"].to_numpy())
    return out


def voc_scores(
    surveys: Any,
    *,
    dimensions: Sequence[str] = DIMENSIONS,
    stages: StageModel | None = None,
    events: Any = None,
    persona: Any = None,
    wave: str = "month",
    wave_within: Sequence[str] = ("stage",),
    min_size: int = 10,
    confidence: float = 0.95,
    engine: Engine | None = None,
) -> VocResult:
    """NPS and CSAT overall and by each of ``dimensions`` (default: stage, touchpoint, channel,
    persona, wave), and wave-to-wave changes overall and within each ``wave_within`` group.

    ``events`` (optional) gives the first-touch channel when the surveys have no ``channel``;
    ``persona`` (optional) a ``customer_id,persona`` table or CSV; ``wave``: ``month``
    (default), ``quarter``, ``week``, ``year`` or a survey column; ``min_size``: groups with fewer
    respondents are suppressed (their scores blanked) and left out of the wave tests. A
    dimension the data cannot support is listed in ``unavailable`` rather than failing.
    """
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"dimensions must be among {list(DIMENSIONS)}, got {unknown}")
    if not isinstance(min_size, int) or isinstance(min_size, bool) or min_size < 1:
        raise ValueError(f"min_size must be an int >= 1, got {min_size!r}")
    model = stages or five_stage()
    t, engine, missing = prepare_surveys(
        surveys, stages=model, events=events, persona=persona, wave=wave, engine=engine
    )
    if "nps" in missing and "csat" in missing:
        raise ValueError("surveys: neither an nps nor a csat column; nothing to score")
    t = engine.materialize(t.select([c for c in t.columns if c != "comment"]), prefix="cjlib_voc")
    try:
        return _scores(
            t, engine, model, missing, dimensions, wave, wave_within, min_size, confidence
        )
    finally:
        engine.release(t)


def _scores(t, engine, model, missing, dimensions, wave, wave_within, min_size, confidence):
    opts = {"confidence": confidence, "min_size": min_size}
    overall = aggregate(t.mutate(_all=1), ["_all"], engine).drop(columns=["_all"])
    overall = with_scores(overall, **opts)
    parts = []
    for dim in dimensions:
        if dim in missing:
            continue
        g = with_scores(aggregate(t, [dim], engine), **opts).rename(columns={dim: "group"})
        g["group"] = g["group"].astype("string").fillna("(missing)")
        g.insert(0, "dimension", dim)
        g["order"] = _order(dim, g["group"], model)
        parts.append(g.sort_values(["order", "group"]))
    by = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    within = [d for d in wave_within if d not in missing and d in t.columns]
    waves = (
        _wave_tests(t, within, engine, **opts)
        if "wave" in dimensions
        else pd.DataFrame(columns=["within", "group", "from_wave", "to_wave"])
    )
    params = {
        "dimensions": list(dimensions),
        "wave": wave,
        "wave_within": list(within),
        "min_size": min_size,
        "confidence": confidence,
    }
    unavailable = {d: why for d, why in missing.items() if d in (*dimensions, "nps", "csat")}
    return VocResult(overall, by, waves, unavailable, params)
