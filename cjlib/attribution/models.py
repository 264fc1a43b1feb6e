"""Every attribution model behind one specification, point estimates and bootstrap replicates.

Models: the rule-based ones of :mod:`~cjlib.attribution.heuristics`, ``markov`` (exact removal
effects, :mod:`~cjlib.attribution.markov`), ``shapley`` (the subset conversion-rate game) and
``shapley_simple`` (the conversions game: equal split over a journey's distinct channels), both
from :mod:`~cjlib.attribution.shapley`.

Bootstrap: journeys are resampled with replacement (the same number as observed), which for
aggregated paths is one multinomial draw over the cells (path, converted) and (path, not
converted). Conversion value and time-decay weights of a resampled converting journey are the
mean of its path. Rule models and ``shapley_simple`` are linear in the path counts, so all
replicates are one matrix product; ``markov`` and ``shapley`` are refitted per replicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cjlib.attribution.heuristics import (
    RULE_MODELS,
    position_weights,
    rule_credits,
    rule_unit_matrix,
)
from cjlib.attribution.journeys import Journeys
from cjlib.attribution.markov import MarkovDesign
from cjlib.attribution.shapley import rate_credits, shapley_credits

__all__ = ["MODELS", "DATA_DRIVEN", "ModelSpec", "point_credits", "bootstrap_credits"]

DATA_DRIVEN = ("markov", "shapley", "shapley_simple")
MODELS = RULE_MODELS + DATA_DRIVEN


@dataclass(frozen=True)
class ModelSpec:
    """Which models to run and their options (see :func:`cjlib.attribution.attribute`)."""

    models: tuple[str, ...] = MODELS
    markov_order: int = 1
    direct_channels: tuple[str, ...] = ("direct",)
    position: tuple[float, float, float] = (0.4, 0.2, 0.4)
    half_life: float = 7.0
    max_exact: int = 12
    n_permutations: int = 200
    random_state: int | None = 0
    extras: dict = field(default_factory=dict, compare=False)

    @classmethod
    def make(cls, models: Sequence[str] | str | None, **options) -> ModelSpec:
        if models is None or models == "all":
            chosen = MODELS
        else:
            chosen = (models,) if isinstance(models, str) else tuple(models)
            bad = [m for m in chosen if m not in MODELS]
            if bad or not chosen:
                raise ValueError(f"models must be among {list(MODELS)} (or 'all'), got {bad}")
        options["position"] = position_weights(options.get("position", "u"))
        options["direct_channels"] = tuple(options.get("direct_channels", ("direct",)))
        return cls(models=tuple(dict.fromkeys(chosen)), **options)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(m for m in self.models if m in RULE_MODELS)

    def rule_options(self) -> dict:
        return {
            "direct_channels": self.direct_channels,
            "position": self.position,
            "half_life": self.half_life,
        }


def point_credits(j: Journeys, spec: ModelSpec) -> tuple[dict, dict]:
    """``({model: (conversions, value)}, extras)``: extras hold the Markov fit, Shapley method."""
    out = dict(rule_credits(j, spec.rules, **spec.rule_options())) if spec.rules else {}
    extras: dict = {}
    if "markov" in spec.models:
        fit = MarkovDesign.build(j, spec.markov_order).fit(j.conversions, j.nulls, j.value)
        extras["markov_fit"] = fit
        out["markov"] = fit.credits(j.total_conversions, j.total_value)
    for name, game in (("shapley", "rate"), ("shapley_simple", "conversions")):
        if name in spec.models:
            c, v, method = shapley_credits(
                j,
                game=game,
                max_exact=spec.max_exact,
                n_permutations=spec.n_permutations,
                random_state=spec.random_state,
            )
            out[name] = (c, v)
            extras[f"{name}_method"] = method
    return {m: out[m] for m in spec.models}, extras


def _resample(j: Journeys, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    cells = np.concatenate([j.conversions, j.nulls])
    total = int(round(cells.sum()))
    draws = rng.multinomial(total, cells / cells.sum(), size=n_boot).astype(float)
    conv, null = draws[:, : j.n_paths], draws[:, j.n_paths :]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.where(j.conversions > 0, j.value / j.conversions, 0.0)
    return conv, null, conv * mean_value


def bootstrap_credits(
    j: Journeys, spec: ModelSpec, *, n_boot: int = 200, random_state: int | None = 0
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """``({model: (replicates x channels conversions, same for value)}, (total conversions,
    total value) per replicate)``."""
    if not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2, got {n_boot!r}")
    rng = np.random.default_rng(random_state)
    conv, null, value = _resample(j, n_boot, rng)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in spec.rules:
        uc, uv = rule_unit_matrix(j, m, **spec.rule_options())
        out[m] = (conv @ uc, conv @ uv)
    if "shapley_simple" in spec.models:
        uc, _ = rule_unit_matrix(j, "participation")
        size = uc.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(size > 0, uc / size, 0.0)
            mean_value = np.where(j.conversions > 0, j.value / j.conversions, 0.0)
        out["shapley_simple"] = (conv @ unit, conv @ (unit * mean_value[:, None]))
    n = len(j.channels)
    if "markov" in spec.models:
        design = MarkovDesign.build(j, spec.markov_order)
        reps = [design.fit(c, z, v) for c, z, v in zip(conv, null, value, strict=True)]
        credits = [f.credits(c.sum(), v.sum()) for f, c, v in zip(reps, conv, value, strict=True)]
        out["markov"] = (np.array([c for c, _ in credits]), np.array([v for _, v in credits]))
    if "shapley" in spec.models:
        mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), j.codes), j.offsets[:-1])
        masks, inv = np.unique(mask, return_inverse=True)
        cs, vs = np.zeros((n_boot, n)), np.zeros((n_boot, n))
        k = len(masks)
        for b in range(n_boot):
            jb = np.bincount(inv, conv[b] + null[b], k)
            cb, vb = np.bincount(inv, conv[b], k), np.bincount(inv, value[b], k)
            cs[b], vs[b], _ = rate_credits(
                masks, jb, cb, vb, n, max_exact=spec.max_exact,
                n_permutations=spec.n_permutations, rng=rng,
            )  # fmt: skip
        out["shapley"] = (cs, vs)
    return {m: out[m] for m in spec.models}, (conv.sum(axis=1), value.sum(axis=1))
