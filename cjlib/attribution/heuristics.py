"""Rule-based attribution: each converting journey's credit split over its touches by a rule.

Every model here returns a per-touch weight (touches of one journey sum to 1, except
participation); credit per channel is then the weighted count of converting journeys (and of their
value). All models are vectorised over the CSR layout of :class:`~cjlib.attribution.journeys.
Journeys`, so they cost a few passes over the touch array.

- ``first_touch`` / ``last_touch``: all credit to the first / last touch.
- ``last_non_direct``: all credit to the last touch not on a direct channel; a journey made only
  of direct touches credits its last (direct) touch, as Google Analytics does.
- ``linear``: equal credit to every touch.
- ``position_based``: ``first``/``middle``/``last`` weights (U-shaped 40/20/40 by default; the
  presets ``j`` = 20/20/60 and ``inverse_j`` = 60/20/20). The middle weight is shared by the
  middle touches; a two-touch journey splits ``first : last`` in proportion; one touch gets all.
- ``time_decay``: weight ``0.5 ** (age / half_life)`` normalised within the journey, with age the
  days from touch to conversion when touch times are known (journeys built from events), otherwise
  the number of touches before the last one (path tables; half-life then counts touches).
- ``participation``: every distinct channel in a converting journey gets the full conversion.
  Credits therefore do **not** sum to the total conversions; read them as reach, not shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cjlib.attribution.journeys import Journeys

__all__ = [
    "RULE_MODELS",
    "POSITION_PRESETS",
    "position_weights",
    "touch_weights",
    "rule_credits",
    "rule_unit_matrix",
]

RULE_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
    "participation",
)
POSITION_PRESETS = {"u": (0.4, 0.2, 0.4), "j": (0.2, 0.2, 0.6), "inverse_j": (0.6, 0.2, 0.2)}


def position_weights(weights: str | Sequence[float]) -> tuple[float, float, float]:
    """``(first, middle, last)`` from a preset name (``u``, ``j``, ``inverse_j``) or 3 numbers
    >= 0 summing to 1."""
    if isinstance(weights, str):
        if weights not in POSITION_PRESETS:
            raise ValueError(
                f"position_weights must be one of {sorted(POSITION_PRESETS)} or (first, middle, "
                f"last), got {weights!r}"
            )
        return POSITION_PRESETS[weights]
    w = tuple(float(x) for x in weights)
    if len(w) != 3 or min(w) < 0 or abs(sum(w) - 1) > 1e-9:
        raise ValueError(
            f"position_weights must be 3 numbers >= 0 summing to 1 (first, middle, last), "
            f"got {weights!r}"
        )
    return w  # type: ignore[return-value]


def _context(j: Journeys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = j.lengths
    pos = j.positions
    return lengths, pos, np.repeat(lengths, lengths)


def touch_weights(
    j: Journeys,
    model: str,
    *,
    direct_channels: Sequence[str] = ("direct",),
    position: str | Sequence[float] = "u",
    half_life: float = 7.0,
    _ctx: tuple | None = None,
) -> np.ndarray:
    """Weight of every touch under ``model`` (a name in :data:`RULE_MODELS`). Time decay here
    counts touches back from the last one; journeys built from events with their touch times
    carry day-based weights instead (``Journeys.decay_conversions``), which
    :func:`rule_credits` and :func:`rule_unit_matrix` use."""
    lengths, pos, plen = _ctx or _context(j)
    if model == "first_touch":
        return (pos == 0).astype(float)
    if model == "last_touch":
        return (pos == plen - 1).astype(float)
    if model == "linear":
        return 1.0 / plen
    if model == "position_based":
        first, middle, last = position_weights(position)
        w = np.where(pos == 0, first, np.where(pos == plen - 1, last, 0.0))
        inner = (pos > 0) & (pos < plen - 1)
        w[inner] = middle / (plen[inner] - 2)
        two = plen == 2
        if first + last > 0:
            w[two] = np.where(pos[two] == 0, first, last) / (first + last)
        else:
            w[two] = 0.5
        w[plen == 1] = 1.0
        return w
    if model == "last_non_direct":
        direct = np.isin(np.asarray(j.channels, dtype=object), list(direct_channels))
        nd = ~direct[j.codes]
        last_nd = np.maximum.reduceat(np.where(nd, pos, -1), j.offsets[:-1])
        target = np.where(last_nd >= 0, last_nd, lengths - 1)
        return (pos == np.repeat(target, lengths)).astype(float)
    if model == "time_decay":
        if not (isinstance(half_life, (int, float)) and half_life > 0):
            raise ValueError(f"half_life must be a number > 0, got {half_life!r}")
        w = np.exp2(-(plen - 1 - pos) / float(half_life))
        sums = np.add.reduceat(w, j.offsets[:-1])
        return w / np.repeat(sums, lengths)
    if model == "participation":
        key = j.path_ids.astype(np.int64) * len(j.channels) + j.codes
        first = np.ones(len(key), dtype=bool)
        order = np.argsort(key, kind="stable")
        ks = key[order]
        first[order[1:]] = ks[1:] != ks[:-1]
        return first.astype(float)
    raise ValueError(f"model must be one of {list(RULE_MODELS)}, got {model!r}")


def _uses_times(j: Journeys, half_life: float) -> bool:
    if j.decay_conversions is None:
        return False
    built = j.params.get("half_life")
    if built is not None and abs(float(built) - float(half_life)) > 1e-12:
        raise ValueError(
            f"half_life={half_life!r} differs from the half_life={built!r} the journeys were "
            "built with; rebuild them with touch_journeys(..., half_life=...)"
        )
    return True


def rule_credits(
    j: Journeys,
    models: Sequence[str] = RULE_MODELS,
    *,
    direct_channels: Sequence[str] = ("direct",),
    position: str | Sequence[float] = "u",
    half_life: float = 7.0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{model: (conversions per channel, value per channel)}`` in ``j.channels`` order.

    Computed per path where the rule only needs the path's ends (first, last, position-based
    end points) and with closed forms elsewhere (time decay normalises by a geometric sum), so
    all seven models cost a few passes over the touches; :func:`touch_weights` gives the same
    numbers touch by touch (time decay: for journeys without touch times).
    """
    n = len(j.channels)
    bad = [m for m in models if m not in RULE_MODELS]
    if bad:
        raise ValueError(f"model must be one of {list(RULE_MODELS)}, got {bad[0]!r}")
    j = j.converting()  # journeys without a conversion earn nothing under any rule
    lengths = j.lengths.astype(float)
    starts, ends = j.offsets[:-1], j.offsets[1:] - 1
    first, last = j.codes[starts], j.codes[ends]
    cw, vw = j.conversions, j.value

    def count(codes: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.bincount(codes, w, n)

    def both(codes: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return count(codes, scale * cw), count(codes, scale * vw)

    def spread(scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Credit ``scale`` (per path) to every touch of the path."""
        return count(j.codes, np.repeat(scale * cw, j.lengths)), count(
            j.codes, np.repeat(scale * vw, j.lengths)
        )

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ones = np.ones(j.n_paths)
    for m in models:
        if m == "first_touch":
            out[m] = both(first, ones)
        elif m == "last_touch":
            out[m] = both(last, ones)
        elif m == "linear":
            out[m] = spread(1.0 / lengths)
        elif m == "position_based":
            f, mid, la = position_weights(position)
            two = f / (f + la) if f + la > 0 else 0.5
            wf = np.where(lengths == 1, 1.0, np.where(lengths == 2, two, f))
            wl = np.where(lengths == 1, 0.0, np.where(lengths == 2, 1 - two, la))
            wm = np.where(lengths >= 3, mid / np.maximum(lengths - 2, 1), 0.0)
            c, v = spread(wm)
            cf, vf = both(first, wf - wm)
            cl, vl = both(last, wl - wm)
            out[m] = (c + cf + cl, v + vf + vl)
        elif m == "time_decay":
            if _uses_times(j, half_life):
                out[m] = (count(j.codes, j.decay_conversions), count(j.codes, j.decay_value))
                continue
            if not (isinstance(half_life, (int, float)) and half_life > 0):
                raise ValueError(f"half_life must be a number > 0, got {half_life!r}")
            q = 2.0 ** (-1.0 / float(half_life))
            total = (1 - q**lengths) / (1 - q)  # sum of q**k, k = 0 .. L-1
            back = (np.repeat(ends, j.lengths) - np.arange(len(j.codes))).astype(float)
            w = np.exp2(back * (-1.0 / float(half_life)))
            out[m] = (
                count(j.codes, w * np.repeat(cw / total, j.lengths)),
                count(j.codes, w * np.repeat(vw / total, j.lengths)),
            )
        elif m == "last_non_direct":
            lut = np.isin(np.asarray(j.channels, dtype=object), list(direct_channels))
            idx = np.where(lut[j.codes], -1, np.arange(len(j.codes)))
            last_nd = np.maximum.reduceat(idx, starts)
            target = j.codes[np.where(last_nd >= starts, last_nd, ends)]
            out[m] = both(target, ones)
        elif m == "participation" and n <= 62:  # distinct channels per path as a bit mask
            mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), j.codes), starts)
            bits = ((mask[:, None] >> np.arange(n)) & 1).astype(float)  # paths x channels
            out[m] = (cw @ bits, vw @ bits)
        else:
            w = touch_weights(j, m, direct_channels=direct_channels)
            pid = j.path_ids
            out[m] = (count(j.codes, w * cw[pid]), count(j.codes, w * vw[pid]))
    return out


def rule_unit_matrix(
    j: Journeys,
    model: str,
    *,
    direct_channels: Sequence[str] = ("direct",),
    position: str | Sequence[float] = "u",
    half_life: float = 7.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per path and channel, the credit of one converting journey (``paths x channels``) for
    conversions and for value (value per converting journey of the path), so any re-weighting
    of paths (bootstrap) is a matrix product."""
    n = len(j.channels)
    pid = j.path_ids
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.where(j.conversions > 0, j.value / j.conversions, 0.0)
    if model == "time_decay" and _uses_times(j, half_life):
        inv = np.where(j.conversions > 0, 1 / np.maximum(j.conversions, 1e-300), 0.0)
        per_conv = np.repeat(inv, j.lengths)
        wc = j.decay_conversions * per_conv
        wv = j.decay_value * per_conv
    else:
        wc = touch_weights(
            j, model, direct_channels=direct_channels, position=position, half_life=half_life
        )
        wv = wc * mean_value[pid]
    unit_c = np.zeros((j.n_paths, n))
    unit_v = np.zeros((j.n_paths, n))
    np.add.at(unit_c, (pid, j.codes), wc)
    np.add.at(unit_v, (pid, j.codes), wv)
    return unit_c, unit_v
