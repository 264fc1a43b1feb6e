"""Choosing k honestly, and how stable the chosen personas are.

:func:`select_k` fits every k in a range and reports, per k: silhouette (Rousseeuw 1987; on a
sample of at most ``metric_sample`` customers; Gower distances for ``gower``), Calinski-Harabasz
(1974) and Davies-Bouldin (1979) indices, BIC (``gmm`` only), and the prediction strength of
Tibshirani & Walther (2005): split the customers in two halves at random, cluster both, and for
each cluster of the second half take the share of its pairs of customers that the first half's
clustering also puts together; the smallest share over clusters, averaged over ``n_splits`` splits.

Rules (``criterion``): ``prediction_strength`` (default) takes the largest k whose prediction
strength is at least ``threshold`` (0.9; the authors suggest 0.8 to 0.9), i.e. the most personas
that reproduce on new customers; ``silhouette`` / ``calinski_harabasz`` the maximum;
``davies_bouldin`` and ``bic`` the minimum.

:func:`bootstrap_stability` refits the chosen model on ``n_boot`` bootstrap samples and assigns
every customer: the adjusted Rand index (Hubert & Arabie 1985) between each refit and the reference
clustering, and per persona the Jaccard similarity of the persona with its best-matching bootstrap
cluster (Hennig 2007, "Cluster-wise assessment of cluster stability"), averaged, with 2.5 and 97.5
percentiles. Hennig's reading: below 0.5 a persona "dissolves", 0.6-0.75 shows a pattern, above
0.75 it is stable, above 0.85 highly stable; personas below ``flag_below`` (0.75) are flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cjlib.personas.cluster import (
    METHODS,
    ClusterFit,
    _fit_model,
    fit_clusters,
    gower_space,
    in_parallel,
)
from cjlib.personas.gower import gower_matrix
from cjlib.personas.prepare import PreparedFeatures
from cjlib.progress import track

__all__ = ["KSelection", "Stability", "select_k", "bootstrap_stability", "CRITERIA"]

CRITERIA = ("prediction_strength", "silhouette", "calinski_harabasz", "davies_bouldin", "bic")


@dataclass(frozen=True)
class KSelection:
    """``table``: one row per k with every criterion; ``chosen_k`` by ``criterion``."""

    table: pd.DataFrame
    chosen_k: int
    criterion: str
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        return {
            "chosen_k": self.chosen_k,
            "criterion": self.criterion,
            "table": self.table.to_dict(orient="records"),
            "params": self.params,
        }


@dataclass(frozen=True)
class Stability:
    """``summary``: ARI between refits and the reference (mean, interval); ``personas``: mean
    Jaccard per persona with interval, label and flag; ``replicates``: one row per refit."""

    summary: dict
    personas: pd.DataFrame
    replicates: pd.DataFrame
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.personas.copy()

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "personas": self.personas.to_dict(orient="records"),
            "params": self.params,
        }


def _pair_share(reference: np.ndarray, other: np.ndarray, k: int) -> float:
    """Prediction strength of one split: min over ``reference`` clusters of co-membership."""
    shares = []
    for j in range(k):
        members = other[reference == j]
        n = len(members)
        if n < 2:
            continue
        counts = np.bincount(members, minlength=k).astype(float)
        shares.append(float((counts * (counts - 1)).sum() / (n * (n - 1))))
    return min(shares) if shares else float("nan")


def _silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) from a full distance matrix, as scikit-learn's
    ``silhouette_score(dist, labels, metric="precomputed")`` defines it (a customer alone in its
    cluster scores 0), with each customer's distance sums per cluster as one matrix product
    instead of a loop over customers (~0.12 s less per k at 3,000 customers)."""
    groups, codes = np.unique(labels, return_inverse=True)
    n, k = len(codes), len(groups)
    if not 2 <= k <= n - 1:
        return float("nan")
    member = np.zeros((n, k))
    member[np.arange(n), codes] = 1.0
    sums = dist @ member  # customer x cluster: sum of distances to its members
    sizes = member.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = sums[np.arange(n), codes] / (sizes[codes] - 1)
        mean_to = sums / sizes
        mean_to[np.arange(n), codes] = np.inf
        nearest = mean_to.min(axis=1)
        score = (nearest - own) / np.maximum(own, nearest)
    return float(np.nan_to_num(score).mean())


def select_k(
    prepared: PreparedFeatures,
    *,
    k_range: Sequence[int] = range(2, 9),
    method: str = "kmeans",
    criterion: str = "prediction_strength",
    threshold: float = 0.9,
    sample_size: int | None = 10_000,
    metric_sample: int = 3_000,
    n_splits: int = 3,
    n_init: int = 4,
    random_state: int = 0,
    progress: bool = False,
) -> KSelection:
    """Every criterion for every k in ``k_range`` (see the module doc); k by ``criterion``.

    Fits use at most ``sample_size`` customers (seeded sample; ``None`` = all).
    """
    ks = sorted({int(k) for k in k_range})
    if len(ks) < 2 or ks[0] < 2:
        raise ValueError(f"k_range must hold at least two values >= 2, got {list(k_range)}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    if criterion == "bic" and method != "gmm":
        raise ValueError(f"criterion='bic' needs method='gmm', got method={method!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    rng = np.random.default_rng(random_state)
    n = len(prepared)
    cap = sample_size if sample_size is not None else n
    if method == "gower":
        cap = min(cap, 2_000)
    work = prepared.subset(np.sort(rng.choice(n, cap, replace=False))) if cap < n else prepared
    m = len(work)
    metric_rows = np.sort(rng.choice(m, min(metric_sample, m), replace=False))
    if method == "gower":
        space = gower_space(work)
        enc = space.encode(work.data.iloc[metric_rows])
        dist = gower_matrix(enc, enc, space)
    else:  # the same customers for every k: their distances once
        from sklearn.metrics import pairwise_distances

        dist = pairwise_distances(work.matrix[metric_rows])
    splits = [rng.permutation(m) for _ in range(n_splits)]

    def full(k: int) -> Callable[[], ClusterFit]:
        return lambda: fit_clusters(work, k=k, method=method, n_init=n_init,
                                    random_state=random_state)  # fmt: skip

    def strength(k: int, s: int) -> Callable[[], float]:
        def run() -> float:
            a, b = np.sort(splits[s][: m // 2]), np.sort(splits[s][m // 2 :])
            fa = fit_clusters(work.subset(a), k=k, method=method, n_init=n_init, random_state=s)
            fb = fit_clusters(work.subset(b), k=k, method=method, n_init=n_init, random_state=s)
            return _pair_share(fb.labels, fa.raw_predict(work.subset(b)), k)

        return run

    # every fit is independent and seeded: all of them on the cores, in k order
    tasks = [task for k in ks for task in (full(k), *(strength(k, s) for s in range(n_splits)))]
    results = in_parallel(tasks)
    rows = []
    for k in track(ks, total=len(ks), desc="choosing k", disable=not progress):
        fit = next(results)
        strengths = [next(results) for _ in range(n_splits)]
        labels = fit.labels
        sub = labels[metric_rows]
        row = {"k": k, "silhouette": np.nan, "calinski_harabasz": np.nan}
        row |= {"davies_bouldin": np.nan, "bic": np.nan}
        if len(np.unique(sub)) > 1:
            row["silhouette"] = _silhouette(dist, sub)
            if method != "gower":
                row["calinski_harabasz"] = calinski_harabasz_score(work.matrix, labels)
                row["davies_bouldin"] = davies_bouldin_score(work.matrix, labels)
        if method == "gmm":
            row["bic"] = float(fit.model.bic(work.matrix))
        row["prediction_strength"] = float(np.nanmean(strengths))
        rows.append(row)
    table = pd.DataFrame(rows)
    col = table[criterion]
    if criterion == "prediction_strength":
        ok = table.loc[col >= threshold, "k"]
        chosen = int(ok.max()) if len(ok) else int(table.loc[col.idxmax(), "k"])
    elif criterion in ("davies_bouldin", "bic"):
        chosen = int(table.loc[col.idxmin(), "k"])
    else:
        chosen = int(table.loc[col.idxmax(), "k"])
    table["chosen"] = table["k"] == chosen
    params = {
        "k_range": ks,
        "method": method,
        "criterion": criterion,
        "threshold": threshold,
        "sample_size": sample_size,
        "customers_used": m,
        "metric_sample": int(len(metric_rows)),
        "n_splits": n_splits,
        "n_init": n_init,
        "random_state": random_state,
    }
    return KSelection(table, chosen, criterion, params)


def _jaccard_best(ref: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """Per reference cluster, the best Jaccard similarity with any cluster of ``other``."""
    ko = int(other.max()) + 1 if len(other) else 0
    joint = np.zeros((k, ko))
    np.add.at(joint, (ref, other), 1)
    size_r = joint.sum(axis=1, keepdims=True)
    size_o = joint.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = joint / (size_r + size_o - joint)
    return np.nan_to_num(jac).max(axis=1)


def bootstrap_stability(
    prepared: PreparedFeatures,
    reference: ClusterFit,
    *,
    n_boot: int = 20,
    sample_size: int | None = 5_000,
    eval_size: int | None = 50_000,
    flag_below: float = 0.75,
    random_state: int = 0,
    progress: bool = False,
) -> Stability:
    """Refit ``reference``'s method and k on bootstrap samples; ARI and per-persona Jaccard.

    Each refit fits on ``sample_size`` customers drawn with replacement (default 5,000) and
    assigns the customers of a fixed seeded evaluation sample of ``eval_size`` (default 50,000;
    ``None`` = all), on which the reference and the refit are compared.
    """
    from sklearn.metrics import adjusted_rand_score

    if not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2, got {n_boot!r}")
    if not 0 < flag_below <= 1:
        raise ValueError(f"flag_below must be in (0, 1], got {flag_below!r}")
    rng = np.random.default_rng(random_state)
    n, k, method = len(prepared), reference.k, reference.method
    draw = min(n, sample_size or n, 2_000 if method == "gower" else n)
    n_init = int(reference.params.get("n_init", 4))
    evaluated = prepared
    ref = reference.labels
    if eval_size is not None and eval_size < n:
        keep = np.sort(rng.choice(n, eval_size, replace=False))
        evaluated, ref = prepared.subset(keep), ref[keep]
    if method != "gower":  # the refits all assign these customers: their rows written once
        evaluated.rows()
    draws = [rng.choice(n, draw, replace=True) for _ in range(n_boot)]  # drawn in order, as before

    def refit(b: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            model = _fit_model(prepared, draws[b], k, method, max(1, n_init // 2),
                               random_state + b + 1)  # fmt: skip
            return ClusterFit(np.empty(0, int), k, method, model, np.arange(k)).predict(evaluated)

        return run

    aris, jaccards = [], []
    results = in_parallel([refit(b) for b in range(n_boot)])
    for labels in track(results, total=n_boot, desc="bootstrap", disable=not progress):
        aris.append(adjusted_rand_score(ref, labels))
        jaccards.append(_jaccard_best(ref, labels, k))
    jac = np.array(jaccards)
    mean = jac.mean(axis=0)
    personas = pd.DataFrame(
        {
            "persona_id": np.arange(1, k + 1),
            "jaccard": mean,
            "jaccard_low": np.percentile(jac, 2.5, axis=0),
            "jaccard_high": np.percentile(jac, 97.5, axis=0),
        }
    )
    personas["stability"] = pd.cut(
        personas["jaccard"],
        [-np.inf, 0.5, 0.6, 0.75, 0.85, np.inf],
        labels=["dissolved", "unstable", "pattern", "stable", "highly stable"],
        right=False,
    ).astype(str)
    personas["flagged"] = personas["jaccard"] < flag_below
    aris_arr = np.array(aris)
    summary = {
        "ari_mean": float(aris_arr.mean()),
        "ari_low": float(np.percentile(aris_arr, 2.5)),
        "ari_high": float(np.percentile(aris_arr, 97.5)),
        "n_boot": n_boot,
        "unstable_personas": [int(i) for i in personas.loc[personas.flagged, "persona_id"]],
    }
    replicates = pd.DataFrame({"replicate": np.arange(1, n_boot + 1), "ari": aris_arr})
    params = {
        "n_boot": n_boot,
        "sample_size": sample_size,
        "eval_size": eval_size,
        "customers_compared": len(ref),
        "flag_below": flag_below,
        "random_state": random_state,
        "method": method,
        "k": k,
    }
    return Stability(summary, personas, replicates, params)
