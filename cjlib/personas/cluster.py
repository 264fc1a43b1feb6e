"""Clustering customers into personas: k-means, mini-batch k-means, Gaussian mixtures, Gower.

- ``kmeans``: scikit-learn ``KMeans`` (Lloyd, k-means++ seeding, ``n_init`` restarts) on the
  prepared matrix;
- ``minibatch``: ``MiniBatchKMeans`` over all customers in batches (one pass per step, for a
  million customers and more);
- ``gmm``: ``GaussianMixture`` (diagonal covariances, i.e. latent profile analysis) on the
  prepared matrix; labels are the most probable component;
- ``gower``: mixed numeric and categorical features without one-hot encoding: Gower distance and
  k-medoids (:mod:`cjlib.personas.gower`).

Scalable path: with ``sample_size`` the model is fitted on a seeded random sample of that many
customers, then every customer is assigned (nearest centroid / medoid, most probable component)
in chunks, with progress. Labels are renumbered by size: persona 1 is the largest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cjlib.personas.gower import GowerSpace, gower_matrix, k_medoids
from cjlib.personas.prepare import PreparedFeatures
from cjlib.progress import track

__all__ = ["ClusterFit", "fit_clusters", "METHODS", "gower_space", "in_parallel"]

METHODS = ("kmeans", "minibatch", "gmm", "gower")
_CHUNK = 200_000


def _check_k(k: Any, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    if k > n:
        raise ValueError(f"k must not exceed the number of customers ({n:,}), got {k}")
    return int(k)


def gower_space(prepared: PreparedFeatures) -> GowerSpace:
    """The Gower space of a preparation: block weights shared among each block's features."""
    data = prepared.data
    numeric = [c for c in data.columns if c not in prepared.categorical]
    block_of = prepared.spec["blocks"]
    weights = prepared.params["weights"]
    per_block: dict[str, int] = {}
    for c in data.columns:
        b = block_of[c.removesuffix("__missing")]
        per_block[b] = per_block.get(b, 0) + 1
    w = {}
    for c in data.columns:
        b = block_of[c.removesuffix("__missing")]
        share = per_block[b] if prepared.params.get("balance_blocks", True) else 1
        w[c] = float(weights.get(b, 1.0)) / share
    return GowerSpace(data, numeric=numeric, categorical=list(prepared.categorical), weights=w)


@dataclass(frozen=True)
class ClusterFit:
    """A fitted clustering: ``labels`` (0 = largest persona) for every prepared customer,
    the fitted ``model`` and the ``params`` used."""

    labels: np.ndarray
    k: int
    method: str
    model: Any = field(repr=False)
    order: np.ndarray = field(repr=False)
    fit_rows: int = 0
    params: dict = field(default_factory=dict)

    def raw_predict(
        self, prepared: PreparedFeatures, rows: np.ndarray | slice | None = None
    ) -> np.ndarray:
        """Model labels (before renumbering) for ``prepared`` customers (optionally some rows)."""
        if self.method == "gower":
            space, medoids = self.model
            data = prepared.data if rows is None else prepared.data.iloc[rows]
            return gower_matrix(space.encode(data), medoids, space).argmin(axis=1)
        return self.model.predict(prepared.rows(rows))

    def predict(self, prepared: PreparedFeatures, *, progress: bool = False) -> np.ndarray:
        """Persona labels (0 = largest) for every customer of ``prepared``, in chunks (each
        chunk's matrix rows are written for it unless the whole matrix already is)."""
        n = len(prepared)
        starts = range(0, n, _CHUNK)
        parts = [
            self.raw_predict(prepared, slice(s, min(s + _CHUNK, n)))
            for s in track(starts, total=len(starts), desc="assigning", disable=not progress)
        ]
        raw = np.concatenate(parts) if parts else np.empty(0, int)
        return self.order[raw]


_controller: Any = None


def _one_thread() -> Any:
    """A context limiting BLAS and OpenMP to one thread. The controller that finds the libraries
    is made once (after scikit-learn has loaded its own): making one per fit cost ~5 ms each."""
    global _controller
    if _controller is None:
        import sklearn.cluster  # noqa: F401 - loads the OpenMP and BLAS libraries to control
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1)


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def in_parallel(tasks: Sequence[Callable[[], Any]]) -> Iterator[Any]:
    """Each task's result, in order, with the tasks run on one thread per core.

    For many small independent fits (k selection, bootstrap): each fit runs single-threaded
    (see :func:`_fit_model`) and scikit-learn's k-means loop, BLAS and numpy release the GIL,
    so fits on different threads overlap. Every task carries its own seed, so the results do
    not depend on which thread runs which task or in what order.
    """
    from concurrent.futures import ThreadPoolExecutor

    def run(task: Callable[[], Any]) -> Any:
        with _one_thread():  # OpenMP's limit is per thread: set it in the worker
            return task()

    workers = min(_workers(), len(tasks))
    # BLAS's limit is global: set once here, so the workers' own limits all restore to 1
    with _one_thread():
        if workers <= 1:
            yield from (task() for task in tasks)
            return
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(run, tasks)


def _fit_model(
    prepared: PreparedFeatures, rows: np.ndarray, k: int, method: str, n_init: int, seed: int
) -> Any:
    """Fit on ``rows``, single-threaded: the fits are small (a sample), and scikit-learn's
    OpenMP threads spin-waiting on a busy 2-core machine made a 5,000-row k-means 20x slower."""
    with _one_thread():
        return _fit(prepared, rows, k, method, n_init, seed)


def _fit(
    prepared: PreparedFeatures, rows: np.ndarray, k: int, method: str, n_init: int, seed: int
) -> Any:
    if method == "gower":
        space = gower_space(prepared)
        enc = space.encode(prepared.data.iloc[rows])
        medoids, _, _ = k_medoids(
            gower_matrix(enc, enc, space), k, n_init=n_init, random_state=seed
        )
        return space, (enc[0][medoids], enc[1][medoids])
    x = prepared.rows(rows)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(k, n_init=n_init, random_state=seed).fit(x)
    if method == "minibatch":
        from sklearn.cluster import MiniBatchKMeans

        batch = min(len(x), 4096)
        return MiniBatchKMeans(k, n_init=n_init, random_state=seed, batch_size=batch).fit(x)
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        k, covariance_type="diag", n_init=max(1, n_init // 2), random_state=seed, reg_covar=1e-3
    ).fit(x)


def fit_clusters(
    prepared: PreparedFeatures,
    *,
    k: int,
    method: str = "kmeans",
    sample_size: int | None = None,
    n_init: int = 10,
    random_state: int = 0,
    progress: bool = False,
) -> ClusterFit:
    """Fit ``k`` personas on ``prepared`` (on a sample of ``sample_size`` customers when given;
    default: all, except ``gower``, which samples 2,000) and assign every customer."""
    if not isinstance(prepared, PreparedFeatures):
        raise TypeError(f"prepared must be PreparedFeatures, got {type(prepared).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    n = len(prepared)
    k = _check_k(k, n)
    if sample_size is not None and (not isinstance(sample_size, int) or sample_size < k):
        raise ValueError(f"sample_size must be an int >= k ({k}) or None, got {sample_size!r}")
    if not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"n_init must be an int >= 1, got {n_init!r}")
    if method == "gower" and sample_size is None:
        sample_size = 2_000
    rng = np.random.default_rng(random_state)
    rows = np.arange(n)
    if sample_size is not None and sample_size < n:
        rows = np.sort(rng.choice(n, sample_size, replace=False))
    model = _fit_model(prepared, rows, k, method, n_init, random_state)
    fit = ClusterFit(np.empty(0, int), k, method, model, np.arange(k), len(rows))
    raw = fit.raw_predict(prepared) if n <= _CHUNK else fit.predict(prepared, progress=progress)
    sizes = np.bincount(raw, minlength=k)
    order = np.empty(k, int)
    order[np.argsort(-sizes, kind="stable")] = np.arange(k)
    params = {
        "k": k,
        "method": method,
        "sample_size": sample_size,
        "n_init": n_init,
        "random_state": random_state,
    }
    return ClusterFit(order[raw], k, method, model, order, len(rows), params)
