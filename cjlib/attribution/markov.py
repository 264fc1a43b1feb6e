"""Markov-chain attribution, solved exactly on the absorbing chain (no simulation, no powers).

States of an order-``k`` chain are the last ``k`` channels touched (shorter at the start of a
journey; the empty history is ``(start)``), plus two absorbing states, ``(conversion)`` and
``(null)``. Transition probabilities are the observed shares of moves out of each state. With
``P`` the transient-to-transient block and ``r`` the one-step probabilities of converting, the
probability of conversion from every state solves ``(I - P) y = r`` (Kemeny & Snell 1976, ch. 3);
``y[(start)]`` is the chain's conversion probability. Removing channel ``c`` turns every state
that contains ``c`` into a dead end (as if the journey stopped there: a move into it goes to
``(null)``), so the conversion probability without ``c`` solves the same system on the other
states. Removal effect ``RE_c = 1 - y_without_c / y``.

Credits: the removal effects are normalised to sum to 1 and then spread the total conversions
(and, with ``r`` weighted by conversion value, the total value) over the channels (Anderl et al.
2016, "Mapping the customer journey", IJRM 33:457).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cjlib.attribution.journeys import SEP, Journeys

__all__ = ["MarkovDesign", "MarkovFit", "fit_markov", "select_order", "START", "CONV", "NULL"]

START, CONV, NULL = "(start)", "(conversion)", "(null)"
_DENSE_MAX = 300
_SWEEPS = 10_000  # series sweeps before a sparse LU solve (:func:`_absorbed`)
_TOL = 1e-12  # relative error left in the series (:func:`_absorbed`)


def _check_order(order: int) -> int:
    if not isinstance(order, (int, np.integer)) or not 1 <= order <= 4:
        raise ValueError(f"order must be an int from 1 to 4, got {order!r}")
    return int(order)


def _pairs(j: Journeys, order: int, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every observed move as ``(history code, next symbol, path id)``.

    History code: sum of ``(channel + 1) * base ** (steps back - 1)`` over the last ``order``
    touches (0 = no touch yet). Next symbol: a channel code, ``C`` = conversion, ``C + 1`` = null.
    Touch moves come first (one per touch), then one end move per path.
    """
    pos, lengths, offsets = j.positions, j.lengths, j.offsets
    codes = j.codes.astype(np.int64) + 1
    n = len(codes)
    ext = np.concatenate([codes, [0]])  # so that index n (past the end) is valid

    def history(idx: np.ndarray, p: np.ndarray) -> np.ndarray:
        h = np.zeros(len(idx), dtype=np.int64)
        for back in range(1, order + 1):
            ok = p >= back
            h[ok] += ext[idx[ok] - back] * base ** (back - 1)
        return h

    h_touch = history(np.arange(n), pos)
    h_end = history(offsets[1:], lengths)
    c = len(j.channels)
    h = np.concatenate([h_touch, h_end])
    x = np.concatenate([j.codes.astype(np.int64), np.full(j.n_paths, c, dtype=np.int64)])
    pid = np.concatenate([j.path_ids, np.arange(j.n_paths)])
    return h, x, pid


@dataclass(frozen=True, eq=False)
class MarkovDesign:
    """The moves of a set of paths under an order-``k`` chain; refit with any path weights."""

    order: int
    channels: tuple[str, ...]
    states: np.ndarray  # sorted history codes; index 0 is (start)
    src: np.ndarray  # state index of each touch move
    dst: np.ndarray  # state index after each touch move
    lengths: np.ndarray  # touches per path (touch moves are in path order)
    end_src: np.ndarray  # state index of each path's end move
    contains: np.ndarray  # bool (channels x states): the state's history includes the channel

    @classmethod
    def build(cls, j: Journeys, order: int = 1) -> MarkovDesign:
        order = _check_order(order)
        c = len(j.channels)
        base = c + 1
        if order == 1:  # states are simply "last channel" (0 = start): no sorting, no lookups
            prev = np.empty(len(j.codes), dtype=np.int64)
            prev[1:] = j.codes[:-1] + 1
            prev[j.offsets[:-1]] = 0
            states = np.arange(base, dtype=np.int64)
            contains = np.eye(c, base, k=1, dtype=bool)
            end = j.codes[j.offsets[1:] - 1].astype(np.int64) + 1
            dst = j.codes.astype(np.int64) + 1
            return cls(1, j.channels, states, prev, dst, j.lengths, end, contains)
        h, x, pid = _pairs(j, order, base)
        t = len(j.codes)
        nxt = (h[:t] * base + x[:t] + 1) % base**order
        if base**order <= 1 << 22:  # small code space: a lookup table instead of sorting
            present = np.bincount(h, minlength=base**order) > 0
            states = np.flatnonzero(present)
            lookup = np.cumsum(present) - 1
            inverse, dst = lookup[h], lookup[nxt]
        else:
            states, inverse = np.unique(h, return_inverse=True)
            dst = np.searchsorted(states, nxt)
        digits = np.stack([(states // base**i) % base for i in range(order)])
        contains = np.stack([(digits == ch + 1).any(axis=0) for ch in range(c)])
        return cls(order, j.channels, states, inverse[:t], dst, j.lengths, inverse[t:], contains)

    def state_labels(self) -> list[str]:
        base = len(self.channels) + 1
        out = []
        for code in self.states:
            names = []
            while code:
                names.append(self.channels[int(code % base) - 1])
                code //= base
            out.append(SEP.join(reversed(names)) if names else START)
        return out

    def fit(self, conversions: np.ndarray, nulls: np.ndarray, value: np.ndarray) -> MarkovFit:
        """Transition counts and the exact solution for per-path weights."""
        from scipy import sparse

        n = len(self.states)
        journeys = conversions + nulls
        w = np.repeat(journeys, self.lengths)
        if n * n <= 1 << 22:
            dense = np.bincount(self.src * n + self.dst, w, n * n).reshape(n, n)
            counts = sparse.csr_matrix(dense)
        else:
            counts = sparse.csr_matrix((w, (self.src, self.dst)), shape=(n, n))
        conv = np.bincount(self.end_src, conversions, n)
        val = np.bincount(self.end_src, value, n)
        null = np.bincount(self.end_src, nulls, n)
        out = np.asarray(counts.sum(axis=1)).ravel() + conv + null
        return MarkovFit(self, counts, conv, val, null, out)


@dataclass(frozen=True, eq=False)
class MarkovFit:
    """A fitted chain: counts of moves between states and into the absorbing states."""

    design: MarkovDesign
    counts: object  # scipy.sparse csr (states x states)
    conv: np.ndarray
    value: np.ndarray
    null: np.ndarray
    out: np.ndarray

    def _system(self) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
        from scipy import sparse

        out = np.where(self.out > 0, self.out, 1.0)
        a = sparse.identity(len(out), format="csr") - sparse.diags(1.0 / out) @ self.counts
        return a, self.conv / out, self.value / out, out

    def _absorb(self) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Conversion probability and expected value from (start), with and without each channel.

        Dense (up to 300 states): one inverse ``N = (I - P)^-1``; forcing ``y = 0`` on the
        states ``R`` that contain a channel gives ``y'_0 = y_0 - N[0, R] N[R, R]^-1 y[R]`` (a
        bordered-system identity), exact. Larger chains: :func:`_absorbed`, every channel's
        system at once.
        """
        a, rc, rv, _ = self._system()
        contains = self.design.contains
        n_ch = contains.shape[0]
        pc, pv = np.zeros(n_ch), np.zeros(n_ch)
        b = np.column_stack([rc, rv])
        if a.shape[0] <= _DENSE_MAX:
            inv = np.linalg.inv(a.toarray())
            y = inv @ b
            for i in range(n_ch):
                r = np.flatnonzero(contains[i])
                if len(r) == 0:
                    pc[i], pv[i] = y[0]
                    continue
                lam = np.linalg.solve(inv[np.ix_(r, r)], y[r])
                pc[i], pv[i] = y[0] - inv[0, r] @ lam
            return float(y[0, 0]), float(y[0, 1]), pc, pv
        # system 0: the whole chain; system i + 1: without channel i (its states forced to 0)
        dead = np.repeat(np.vstack([np.zeros(len(rc), bool), contains]).T, 2, axis=1)
        y = _absorbed(a, np.tile(b, n_ch + 1), dead)
        return float(y[0, 0]), float(y[0, 1]), y[0, 2::2], y[0, 3::2]

    def conversion_probability(self) -> tuple[float, float]:
        """Chance that a journey from ``(start)`` converts, and its expected value."""
        p, v, _, _ = self._absorb()
        return p, v

    def removal_effects(self) -> pd.DataFrame:
        """Per channel: conversion probability and expected value without it, removal effects
        (``1 - without / with``) and their normalised shares (summing to 1)."""
        p, v, pc, vc = self._absorb()
        df = pd.DataFrame(
            {
                "channel": list(self.design.channels),
                "p_without": pc,
                "value_without": vc,
                "removal_effect": 1 - pc / p if p > 0 else np.zeros(len(pc)),
                "removal_effect_value": 1 - vc / v if v > 0 else np.zeros(len(vc)),
            }
        )
        df["re_share"] = _share(df["removal_effect"].to_numpy())
        df["re_share_value"] = _share(df["removal_effect_value"].to_numpy())
        return df

    def credits(self, total_conversions: float, total_value: float) -> tuple[np.ndarray, ...]:
        re = self.removal_effects()
        return (
            re["re_share"].to_numpy() * total_conversions,
            re["re_share_value"].to_numpy() * total_value,
        )

    def transition_table(self) -> pd.DataFrame:
        """Long table ``from_state, to_state, transitions, probability`` (absorbing included)."""
        labels = np.asarray(self.design.state_labels(), dtype=object)
        coo = self.counts.tocoo()
        order = self.design.order
        base = len(self.design.channels) + 1
        last = [self.design.channels[int(s % base) - 1] for s in self.design.states[coo.col]]
        to = labels[coo.col] if order > 1 else np.asarray(last, dtype=object)
        parts = [
            pd.DataFrame({"from_state": labels[coo.row], "to_state": to, "transitions": coo.data})
        ]
        for name, arr in ((CONV, self.conv), (NULL, self.null)):
            nz = np.flatnonzero(arr)
            parts.append(
                pd.DataFrame({"from_state": labels[nz], "to_state": name, "transitions": arr[nz]})
            )
        df = pd.concat(parts, ignore_index=True)
        df = df.groupby(["from_state", "to_state"], as_index=False, sort=True)["transitions"].sum()
        df["probability"] = df["transitions"] / df.groupby("from_state")["transitions"].transform(
            "sum"
        )
        return df

    def transition_matrix(self) -> pd.DataFrame:
        """Wide matrix of probabilities, rows = states, columns = next state (absorbing last)."""
        t = self.transition_table()
        m = t.pivot_table(index="from_state", columns="to_state", values="probability")
        cols = [c for c in m.columns if c not in (CONV, NULL)] + [CONV, NULL]
        rows = [START] + [r for r in m.index if r != START]
        return m.reindex(index=rows, columns=cols).fillna(0.0)


def _absorbed(a, b: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Solve ``(I - P) y = b`` column by column with ``y = 0`` where ``dead`` (``a = I - P``).

    ``P`` is substochastic and every state is left for an absorbing state eventually, so the
    series ``y = b + P b + P^2 b + ...`` converges geometrically: iterated until the error left,
    bounded from the shrinking of successive changes (ratio ``q``: at most ``change * q / (1 -
    q)``), is below ``_TOL`` of each column's largest value. Each sweep is one sparse product;
    at 7,237 states (an order-4 chain) it takes 0.03 s where a sparse LU solve took 1.2 s per
    channel. A chain that has not converged after ``_SWEEPS`` sweeps (journeys that loop
    almost forever) is solved by sparse LU, one system per column.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    p = (sparse.identity(a.shape[0], format="csr") - a).tocsr()
    alive = (~dead).astype(float)
    b = b * alive
    y, last, top = b.copy(), None, b.max(axis=0)
    for sweep in range(_SWEEPS):
        nxt = p @ y
        nxt += b
        nxt *= alive
        change = np.abs(nxt - y).max(axis=0)
        y = nxt
        if sweep % 16 == 15:  # y only grows (every term is >= 0): an older maximum is safe
            top = y.max(axis=0)
        if last is not None:
            q = np.divide(change, last, out=np.zeros_like(change), where=last > 0)
            left = np.where(q < 1, change * q / np.where(q < 1, 1 - q, 1), np.inf)
            if np.all((change == 0) | (left <= _TOL * top)):
                return y
        last = change
    out = np.zeros_like(b)
    for col in range(b.shape[1]):
        keep = np.flatnonzero(~dead[:, col])
        out[keep, col] = splu(a[keep][:, keep].tocsc()).solve(b[keep, col])
    return out


def _share(x: np.ndarray) -> np.ndarray:
    total = x.sum()
    return x / total if total > 0 else np.zeros_like(x)


def fit_markov(j: Journeys, order: int = 1) -> MarkovFit:
    """Fit the order-``order`` chain (1 to 4) to the journeys."""
    return MarkovDesign.build(j, order).fit(j.conversions, j.nulls, j.value)


def _split(j: Journeys, test_share: float, rng: np.random.Generator) -> tuple[Journeys, Journeys]:
    conv = np.rint(j.conversions).astype(np.int64)
    null = np.rint(j.nulls).astype(np.int64)
    tc, tn = rng.binomial(conv, test_share), rng.binomial(null, test_share)
    return j.with_counts(conv - tc, null - tn), j.with_counts(tc, tn)


def _counts(h: np.ndarray, x: np.ndarray, w: np.ndarray, v: int) -> tuple[pd.Series, pd.Series]:
    key = pd.Series(w).groupby(h * v + x).sum()
    tot = pd.Series(w).groupby(h).sum()
    return key, tot


def select_order(
    j: Journeys,
    *,
    orders: tuple[int, ...] = (1, 2, 3, 4),
    test_share: float = 0.3,
    prior_strength: float = 1.0,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Held-out log-likelihood per move for each order; the best is marked ``chosen``.

    Journeys are split at random (``test_share`` to the held-out set, per journey). Each order is
    fitted on the rest, with each state's next-step distribution smoothed towards the next lower
    order's (a Dirichlet prior of weight ``prior_strength`` centred on it; order 0 is the overall
    next-step frequency), so states unseen in training fall back gracefully. Score: mean log
    probability of the held-out moves (higher is better).
    """
    for o in orders:
        _check_order(o)
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be between 0 and 1, got {test_share!r}")
    train, test = _split(j, test_share, np.random.default_rng(random_state))
    c = len(j.channels)
    base, v = c + 1, c + 2
    top = max(orders)

    def moves(jj: Journeys, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, x, pid = _pairs(jj, k, base)
        t = len(jj.codes)
        w = np.concatenate([jj.journeys[pid[:t]], jj.conversions])
        hh = np.concatenate([h, h[t:]])
        xx = np.concatenate([x, np.full(jj.n_paths, c + 1)])
        ww = np.concatenate([w, jj.nulls])
        keep = ww > 0
        return hh[keep], xx[keep], ww[keep]

    fitted = {}
    for k in range(0, top + 1):
        h, x, w = moves(train, max(k, 1))
        if k == 0:
            h = np.zeros_like(h)
        fitted[k] = _counts(h, x, w, v)
    rows = []
    for k in sorted(orders):
        h, x, w = moves(test, k)
        p = None
        for level in range(0, k + 1):
            hl = np.zeros_like(h) if level == 0 else h % base**level
            pair, tot = fitted[level]
            n_hx = pair.reindex(hl * v + x).fillna(0.0).to_numpy()
            n_h = tot.reindex(hl).fillna(0.0).to_numpy()
            prior = np.full(len(h), 1.0 / v) if p is None else p
            p = (n_hx + prior_strength * prior) / (n_h + prior_strength)
        rows.append(
            {
                "order": k,
                "states": int(len(fitted[k][1])),
                "heldout_moves": float(w.sum()),
                "loglik_per_move": float((w * np.log(p)).sum() / w.sum()),
            }
        )
    table = pd.DataFrame(rows)
    table["chosen"] = table["loglik_per_move"] == table["loglik_per_move"].max()
    first = table.index[table["chosen"]][0]
    table["chosen"] = table.index == first
    return table
