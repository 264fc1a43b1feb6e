"""Shapley-value attribution on channel sets, and the ordered (position-aware) variant.

Players are channels; a journey is described by the *set* of channels it touched. Two games:

- ``game="conversions"`` (default): ``v(S)`` = conversions of journeys whose channel set is a
  subset of ``S`` (Zhao et al. 2018, "Shapley value methods for attribution modeling in online
  advertising", arXiv:1804.05327). It is a sum of unanimity games, so its Shapley value is exact
  for any number of channels: every converting journey's conversion is split equally among its
  distinct channels. Credits sum to the total conversions (efficiency).
- ``game="rate"``: ``v(S)`` = conversion rate of the journeys whose channel set is exactly ``S``
  (0 when no journey has that set), the characteristic function of Dalessandro et al. (2012,
  "Causally motivated attribution for online advertising", ADKDD). Each converting journey with
  channel set ``T`` splits its conversion in proportion to the Shapley values of ``v`` restricted
  to the subsets of ``T`` (which sum to ``v(T)``), so a channel whose presence lifts the rate of
  the journeys it joins earns more. Exact: all ``T`` at once by subset-sum (zeta) transforms over
  the ``2^C`` channel sets when ``C <= max_exact`` (default 12); beyond, each set ``T`` with at
  most ``max_exact`` channels is solved exactly on its own ``2^|T|`` subsets and larger sets by
  Monte Carlo over ``n_permutations`` random orders (Castro et al. 2009, Computers & OR
  36:1726), seeded by ``random_state``. A channel that lowers the rate gets a negative share.

Value credits: the conversions game with value in place of conversions; the rate game spreads
each converting set's value with the same shares as its conversions.

The ordered variant (Zhao et al. 2018, sec. 3.2) makes ``(channel, position)`` the players, with
position the rank of the channel's first touch among the journey's distinct channels; under the
conversions game each converting journey's conversion is split equally among its
``(channel, position)`` pairs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cjlib.attribution.journeys import Journeys

__all__ = [
    "GAMES",
    "shapley_values",
    "restricted_shapley",
    "channel_masks",
    "rate_credits",
    "shapley_credits",
    "ordered_shapley",
]

GAMES = ("conversions", "rate")


def shapley_values(v: np.ndarray) -> np.ndarray:
    """Exact Shapley values of a game given as ``v[mask]`` over all ``2**n`` coalitions.

    Bit ``i`` of ``mask`` says whether player ``i`` is in the coalition; ``v[0]`` is the empty
    coalition. ``phi_i = sum_S |S|! (n-|S|-1)! / n! (v(S + i) - v(S))`` (Shapley 1953).
    """
    v = np.asarray(v, dtype=float)
    n = int(round(math.log2(len(v)))) if len(v) else -1
    if n < 1 or len(v) != 1 << n:
        raise ValueError(f"v must have 2**n entries for n >= 1 players, got {len(v)}")
    masks = np.arange(1 << n)
    size = np.zeros(1 << n, dtype=np.int64)
    for i in range(n):
        size += (masks >> i) & 1
    fact = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
    weight = fact[size] * fact[n - size - 1] / fact[n] if n else np.ones(1)
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = (weight[without] * (v[without | (1 << i)] - v[without])).sum()
    return phi


def channel_masks(j: Journeys) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct channel sets as bit masks with their journeys, conversions and value."""
    if len(j.channels) > 62:
        raise ValueError(f"Shapley attribution supports up to 62 channels, got {len(j.channels)}")
    mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), j.codes), j.offsets[:-1])
    uniq, inv = np.unique(mask, return_inverse=True)
    n = len(uniq)
    return (
        uniq,
        np.bincount(inv, j.journeys, n),
        np.bincount(inv, j.conversions, n),
        np.bincount(inv, j.value, n),
    )


def _unanimity(masks: np.ndarray, amounts: np.ndarray, n: int) -> np.ndarray:
    """Closed-form Shapley value of ``v(S) = sum_{T subset S} a_T``: ``sum_{T ni i} a_T / |T|``."""
    has = [((masks >> i) & 1) == 1 for i in range(n)]
    size = np.sum(has, axis=0)
    return np.array([(amounts[h] / size[h]).sum() for h in has])


def _zeta(f: np.ndarray, n: int) -> np.ndarray:
    """Subset sums along the last axis: ``F(T) = sum_{S subset T} f(S)``."""
    f = f.copy()
    lead = f.shape[:-1]
    for b in range(n):
        view = f.reshape(*lead, 1 << (n - b - 1), 2, 1 << b)
        view[..., 1, :] += view[..., 0, :]
    return f


def _popcount(masks: np.ndarray, n: int) -> np.ndarray:
    return sum(((masks >> i) & 1) for i in range(n)).astype(np.int64)


def restricted_shapley(v: np.ndarray, n: int) -> np.ndarray:
    """``phi[i, T]``: Shapley value of player ``i`` in the game ``v`` restricted to the subsets of
    every coalition ``T`` (``2**n`` entries), exact, by one zeta transform per coalition size."""
    full = np.arange(1 << n)
    size = _popcount(full, n)
    fact = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
    delta = np.zeros((n, n, 1 << n))  # delta[i, s, S] = v(S + i) - v(S), |S| = s, i not in S
    for i in range(n):
        without = full[(full >> i) & 1 == 0]
        delta[i, size[without], without] = v[without | (1 << i)] - v[without]
    sums = _zeta(delta, n)  # sums[i, s, T] = sum over S subset T, |S| = s of delta
    t = size[None, :]
    s_ = np.arange(n)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(s_ < t, fact[s_] * fact[np.maximum(t - s_ - 1, 0)] / fact[t], 0.0)
    phi = (sums * w[None, :, :]).sum(axis=1)
    phi[((full[None, :] >> np.arange(n)[:, None]) & 1) == 0] = 0.0
    return phi


def _rate_values(masks, journeys, conv) -> dict[int, float]:
    return {int(m): c / j for m, j, c in zip(masks, journeys, conv, strict=True) if j > 0}


def _set_phi(t_mask: int, n: int, rates: dict, max_exact: int, n_perm: int, rng) -> np.ndarray:
    """Shapley values of the rate game restricted to one channel set (exact or Monte Carlo)."""
    players = [i for i in range(n) if (t_mask >> i) & 1]
    k = len(players)
    phi = np.zeros(n)
    if k <= max_exact:
        local = np.arange(1 << k)
        glob = np.zeros(1 << k, dtype=np.int64)
        for a, p in enumerate(players):
            glob |= ((local >> a) & 1) << p
        v = np.array([rates.get(int(g), 0.0) for g in glob])
        phi[players] = restricted_shapley(v, k)[:, -1]
        return phi
    for _ in range(n_perm):
        cur, prev = 0, 0.0
        for p in rng.permutation(players):
            cur |= 1 << int(p)
            val = rates.get(cur, 0.0)
            phi[p] += val - prev
            prev = val
    return phi / n_perm


def rate_credits(
    masks: np.ndarray,
    journeys: np.ndarray,
    conv: np.ndarray,
    value: np.ndarray,
    n: int,
    *,
    max_exact: int = 12,
    n_permutations: int = 200,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Rate-game credits from distinct channel sets with their journeys, conversions, value."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(journeys > 0, conv / np.where(journeys > 0, journeys, 1), 0.0)
    converting = conv > 0
    if n <= max_exact:
        v = np.zeros(1 << n)
        v[masks] = rate
        phi = restricted_shapley(v, n)[:, masks[converting]]
        method = "exact"
    else:
        rng = rng or np.random.default_rng(0)
        rates = _rate_values(masks, journeys, conv)
        phi = np.column_stack(
            [_set_phi(int(m), n, rates, max_exact, n_permutations, rng) for m in masks[converting]]
        )
        method = f"exact per channel set up to {max_exact} channels, else Monte Carlo"
    share = phi / rate[converting][None, :]
    return share @ conv[converting], share @ value[converting], method


def shapley_credits(
    j: Journeys,
    *,
    game: str = "conversions",
    max_exact: int = 12,
    n_permutations: int = 200,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(conversion credits, value credits, method)`` per channel in ``j.channels`` order."""
    if game not in GAMES:
        raise ValueError(f"game must be one of {list(GAMES)}, got {game!r}")
    if not isinstance(max_exact, int) or not 1 <= max_exact <= 20:
        raise ValueError(f"max_exact must be an int from 1 to 20, got {max_exact!r}")
    n = len(j.channels)
    masks, journeys, conv, value = channel_masks(j)
    if game == "conversions":
        return _unanimity(masks, conv, n), _unanimity(masks, value, n), "exact (closed form)"
    return rate_credits(
        masks,
        journeys,
        conv,
        value,
        n,
        max_exact=max_exact,
        n_permutations=n_permutations,
        rng=np.random.default_rng(random_state),
    )


def ordered_shapley(j: Journeys, *, max_position: int = 5) -> pd.DataFrame:
    """Ordered Shapley credits: ``channel, position, conversions, value``.

    ``position`` is the rank (1 = first) of the channel's first touch among the journey's distinct
    channels; ranks above ``max_position`` are pooled into ``max_position``. The rows of a channel
    add up to its ``shapley`` (conversions game) credit.
    """
    if not isinstance(max_position, int) or max_position < 1:
        raise ValueError(f"max_position must be an int >= 1, got {max_position!r}")
    from cjlib.attribution.heuristics import touch_weights

    first = touch_weights(j, "participation").astype(bool)
    pid = j.path_ids
    distinct = np.bincount(pid, first, j.n_paths)
    before = np.concatenate([[0.0], np.cumsum(distinct)[:-1]])
    rank = np.cumsum(first) - before[pid]
    share = np.where(first, 1.0 / distinct[pid], 0.0)
    df = pd.DataFrame(
        {
            "channel": np.asarray(j.channels, dtype=object)[j.codes][first],
            "position": np.minimum(rank[first], max_position).astype("int64"),
            "conversions": (share * j.conversions[pid])[first],
            "value": (share * j.value[pid])[first],
        }
    )
    out = df.groupby(["channel", "position"], as_index=False)[["conversions", "value"]].sum()
    return out.sort_values(["channel", "position"]).reset_index(drop=True)
