"""Gower distance for mixed numeric and categorical features, and k-medoids on it.

Gower (1971), "A general coefficient of similarity and some of its properties", Biometrics 27:857.
For customers *i*, *j* and features *f* with weights *w_f*:

    d(i, j) = sum_f w_f d_f(i, j) / sum_f w_f

where ``d_f = |x_if - x_jf| / R_f`` for a numeric feature with range ``R_f`` (0 when the range is
0) and ``d_f = 0 if x_if == x_jf else 1`` for a categorical one. Distances lie in [0, 1].

Written here because no maintained Python library provides it (the ``gower`` package had its last
release in 2022; scikit-learn and scipy have no mixed-type metric). Clusters come from k-medoids
(the alternating algorithm of Park & Jun 2009, with k-means++-style seeding and restarts) on the
Gower matrix of a sample; every customer is then assigned to its nearest medoid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["GowerSpace", "gower_matrix", "k_medoids"]


class GowerSpace:
    """Feature columns, kinds, ranges and weights: what a Gower distance needs.

    ``numeric`` columns are compared by range-scaled absolute difference, ``categorical`` ones by
    equality. ``ranges`` default to max - min over ``data``; ``weights`` default to 1.
    """

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        numeric: Sequence[str],
        categorical: Sequence[str],
        weights: dict[str, float] | None = None,
    ) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        if not self.numeric and not self.categorical:
            raise ValueError("Gower distance needs at least one numeric or categorical column")
        weights = weights or {}
        self.weights = {c: float(weights.get(c, 1.0)) for c in self.numeric + self.categorical}
        num = data[self.numeric].to_numpy(float) if self.numeric else np.empty((len(data), 0))
        if np.isnan(num).any():
            raise ValueError("Gower distance here needs complete data: fill or drop gaps first")
        span = num.max(axis=0) - num.min(axis=0) if len(num) else np.zeros(len(self.numeric))
        self.ranges = {c: float(r) for c, r in zip(self.numeric, span, strict=True)}

    def encode(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Numeric columns divided by their range, categorical columns as codes (strings)."""
        num = (
            np.column_stack(
                [
                    data[c].to_numpy(float) / (self.ranges[c] or 1.0) * (self.ranges[c] > 0)
                    for c in self.numeric
                ]
            )
            if self.numeric
            else np.empty((len(data), 0))
        )
        cat = (
            np.column_stack([data[c].astype(str).to_numpy() for c in self.categorical])
            if self.categorical
            else np.empty((len(data), 0), dtype=object)
        )
        return num, cat


def gower_matrix(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    space: GowerSpace,
) -> np.ndarray:
    """Gower distances between the rows of ``a`` and ``b`` (both from ``space.encode``)."""
    (an, ac), (bn, bc) = a, b
    w_num = np.array([space.weights[c] for c in space.numeric])
    w_cat = np.array([space.weights[c] for c in space.categorical])
    total = w_num.sum() + w_cat.sum()
    if total <= 0:
        raise ValueError("Gower weights must not all be zero")
    out = np.zeros((len(an) if len(an) else len(ac), len(bn) if len(bn) else len(bc)))
    for f, w in enumerate(w_num):
        if w:
            out += w * np.abs(an[:, f, None] - bn[None, :, f])
    for f, w in enumerate(w_cat):
        if w:
            out += w * (ac[:, f, None] != bc[None, :, f])
    return out / total


def k_medoids(
    dist: np.ndarray, k: int, *, n_init: int = 4, max_iter: int = 50, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """k-medoids on a square distance matrix: ``(medoid indices, labels, total cost)``.

    Alternating algorithm (Park & Jun 2009): assign each point to its nearest medoid, then move
    each medoid to the member with the least total distance to its cluster, until nothing
    changes. Seeds are drawn k-means++-style; the best of ``n_init`` restarts is kept.
    """
    n = len(dist)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")
    rng = np.random.default_rng(random_state)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(max(1, n_init)):
        medoids = [int(rng.integers(n))]
        for _ in range(1, k):
            near = dist[:, medoids].min(axis=1) ** 2
            p = near / near.sum() if near.sum() > 0 else None
            medoids.append(int(rng.choice(n, p=p)))
        medoids_arr = np.array(medoids)
        for _ in range(max_iter):
            labels = dist[:, medoids_arr].argmin(axis=1)
            new = medoids_arr.copy()
            for j in range(k):
                members = np.flatnonzero(labels == j)
                if len(members):
                    new[j] = members[dist[np.ix_(members, members)].sum(axis=1).argmin()]
            if np.array_equal(new, medoids_arr):
                break
            medoids_arr = new
        labels = dist[:, medoids_arr].argmin(axis=1)
        cost = float(dist[np.arange(n), medoids_arr[labels]].sum())
        if best is None or cost < best[2]:
            best = (medoids_arr, labels, cost)
    assert best is not None
    return best
