"""Persona clustering: features through the engine, clustering, k selection, stability, cards.

>>> from cjlib import personas
>>> result = personas.find_personas(events, customers=customers, surveys=surveys)
>>> result.cards                         # persona cards (renders in the report)
>>> result.write_assignment("../reports/personas.csv")   # customer_id,persona for other notebooks

Steps, each usable alone: :func:`customer_features` (engine) -> :func:`prepare_features` ->
:func:`select_k` -> :func:`fit_clusters` -> :func:`bootstrap_stability` -> :func:`persona_cards`;
:class:`PersonaModel` bundles the middle steps with the scikit-learn contract. By default personas
are segmented on who customers are and how they engage (behaviour, channels, demographics, and
attitudes at a low weight); journey outcomes (furthest stage, regressions, time between stages)
are profiled on the cards rather than clustered (weight 0; raise it to cluster on them).
:func:`rfm_segments` gives the classic RFM segments as a simpler alternative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cjlib.personas.cards import PersonaCards, persona_cards
from cjlib.personas.cluster import METHODS, ClusterFit, fit_clusters
from cjlib.personas.features import BLOCKS, FeatureTable, _start, customer_features
from cjlib.personas.prepare import PreparedFeatures, prepare_features
from cjlib.personas.rfm import RFMResult, rfm_segments
from cjlib.personas.selection import KSelection, Stability, bootstrap_stability, select_k

__all__ = [
    "DEFAULT_WEIGHTS",
    "FeatureTable",
    "PreparedFeatures",
    "ClusterFit",
    "KSelection",
    "Stability",
    "PersonaCards",
    "PersonaModel",
    "PersonaResult",
    "RFMResult",
    "customer_features",
    "prepare_features",
    "fit_clusters",
    "select_k",
    "bootstrap_stability",
    "persona_cards",
    "find_personas",
    "rfm_segments",
    "read_assignment",
]

DEFAULT_WEIGHTS = {
    "behaviour": 0.5,
    "channels": 1.0,
    "journey": 0.0,
    "demographics": 1.0,
    "attitudes": 0.25,
}


class PersonaModel:
    """Prepare, choose k (unless given), cluster and check stability (scikit-learn contract).

    Fitted attributes: ``prepared_``, ``selection_`` (``None`` when ``k`` is fixed), ``k_``,
    ``clusters_``, ``stability_`` (``None`` when ``n_boot`` is 0), ``labels_`` (persona ids from
    1, largest first) and ``customer_id_``.
    """

    def __init__(
        self,
        k: int | None = None,
        *,
        k_range: Sequence[int] = range(2, 9),
        method: str = "kmeans",
        criterion: str = "prediction_strength",
        blocks: Sequence[str] = BLOCKS,
        weights: Mapping[str, float] | None = None,
        exclude: Sequence[str] = (),
        missing: str = "indicator",
        scale: str = "standard",
        sample_size: int | None = 20_000,
        n_init: int = 4,
        n_boot: int = 20,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.method = method
        self.criterion = criterion
        self.blocks = blocks
        self.weights = weights
        self.exclude = exclude
        self.missing = missing
        self.scale = scale
        self.sample_size = sample_size
        self.n_init = n_init
        self.n_boot = n_boot
        self.random_state = random_state
        self.progress = progress

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    _PARAMS = ("k", "k_range", "method", "criterion", "blocks", "weights", "exclude", "missing",
               "scale", "sample_size", "n_init", "n_boot", "random_state", "progress")  # fmt: skip

    def fit(self, features: FeatureTable, y: Any = None) -> PersonaModel:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        weights = DEFAULT_WEIGHTS | dict(self.weights or {})
        self.prepared_ = prepare_features(
            features, blocks=self.blocks, weights=weights, exclude=self.exclude,
            missing=self.missing, scale=self.scale,
        )  # fmt: skip
        self.selection_: KSelection | None = None
        if self.k is None:
            self.selection_ = select_k(
                self.prepared_, k_range=self.k_range, method=self.method,
                criterion=self.criterion, random_state=self.random_state, progress=self.progress,
            )  # fmt: skip
            self.k_ = self.selection_.chosen_k
        else:
            self.k_ = int(self.k)
        self.clusters_ = fit_clusters(
            self.prepared_, k=self.k_, method=self.method, sample_size=self.sample_size,
            n_init=self.n_init, random_state=self.random_state, progress=self.progress,
        )  # fmt: skip
        self.stability_: Stability | None = None
        if self.n_boot:
            self.stability_ = bootstrap_stability(
                self.prepared_, self.clusters_, n_boot=self.n_boot,
                random_state=self.random_state, progress=self.progress,
            )  # fmt: skip
        self.labels_ = self.clusters_.labels + 1
        self.customer_id_ = self.prepared_.customer_id
        return self

    def predict(self, features: FeatureTable) -> np.ndarray:
        """Persona ids (from 1) for the customers of ``features``, with this fit's preparation."""
        if not hasattr(self, "clusters_"):
            raise ValueError("PersonaModel is not fitted yet: call fit(features) first")
        from dataclasses import replace

        from cjlib.personas.prepare import _fill

        frame = features.frame if isinstance(features, FeatureTable) else features
        data = _fill(frame, self.prepared_.spec).reset_index(drop=True)
        other = replace(self.prepared_, data=data, codes={},
                        customer_id=frame["customer_id"].to_numpy())  # fmt: skip
        return self.clusters_.predict(other) + 1

    def assignment(self) -> pd.DataFrame:
        """``customer_id, persona_id`` of the fitted customers."""
        return pd.DataFrame({"customer_id": self.customer_id_, "persona_id": self.labels_})


@dataclass(frozen=True)
class PersonaResult:
    """Everything the persona notebook shows. ``assignment`` is per customer (for the file other
    notebooks read, never for the report); every other table is aggregate."""

    assignment: pd.DataFrame
    cards: PersonaCards
    selection: KSelection | None
    stability: Stability | None
    missing: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.cards.summary)

    def to_frame(self) -> pd.DataFrame:
        return self.cards.summary.copy()

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "cards": self.cards.to_dict(),
            "selection": self.selection.to_dict() if self.selection else None,
            "stability": self.stability.to_dict() if self.stability else None,
            "missing": self.missing.to_dict(orient="records"),
            "params": self.params,
        }

    def _repr_html_(self) -> str:
        return self.cards._repr_html_()

    def write_assignment(self, path: str | Path) -> Path:
        """Write ``customer_id,persona`` (CSV) for other notebooks' ``persona_path``; the file is
        written whole (to a temporary name, then renamed) and its folder created if needed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        self.assignment[["customer_id", "persona"]].to_csv(tmp, index=False)
        tmp.replace(path)
        return path


def read_assignment(path: str | Path) -> pd.DataFrame:
    """Read a persona (or segment) assignment file: ``customer_id`` and one segment column."""
    df = pd.read_csv(path, dtype=str)
    if "customer_id" not in df.columns or len(df.columns) != 2:
        raise ValueError(
            f"assignment file {str(path)!r} must have customer_id and one segment column, "
            f"got {list(df.columns)}"
        )
    return df


def find_personas(
    events: Any,
    *,
    customers: Any = None,
    surveys: Any = None,
    stages: Any = None,
    features: FeatureTable | None = None,
    model: PersonaModel | None = None,
    min_cell_size: int = 10,
    engine: Any = None,
) -> PersonaResult:
    """The whole pipeline: features (engine; or the given ``features``), :class:`PersonaModel`
    (default settings unless ``model`` is given; a model already fitted on ``features`` is used as
    it is), cards with stability."""
    model = model or PersonaModel()
    if features is None:
        _import_in_background()  # scikit-learn loads while the engine builds the features
        build = _start(events, customers=customers, surveys=surveys, stages=stages,
                       engine=engine)  # fmt: skip
        if _needs_journey(model):
            features = build.table()
        else:  # the journey block is for the cards only: its query runs while the model fits
            try:
                model.fit(build.partial())
            finally:  # the engine is free again only once the journey query is back
                features = build.table()
    if not hasattr(model, "clusters_"):
        model.fit(features)
    assignment = model.assignment()
    cards = persona_cards(features, assignment, surveys=surveys, stability=model.stability_,
                          min_cell_size=min_cell_size, engine=engine)  # fmt: skip
    names = dict(zip(cards.summary.persona_id, cards.summary.persona, strict=True))
    assignment["persona"] = assignment["persona_id"].map(names)
    params = {"model": {k: _plain(v) for k, v in model.get_params().items()},
              "features": features.params, "prepare": model.prepared_.params}  # fmt: skip
    return PersonaResult(assignment, cards, model.selection_, model.stability_,
                         model.prepared_.missing, params)  # fmt: skip


def _needs_journey(model: PersonaModel) -> bool:
    """Whether fitting ``model`` needs the journey block: a positive journey weight, or
    ``exclude`` names (checked against every feature column); a fitted model is not refitted."""
    if hasattr(model, "clusters_") or model.exclude:
        return True
    weights = DEFAULT_WEIGHTS | dict(model.weights or {})
    return "journey" in model.blocks and float(weights.get("journey", 0)) > 0


def _import_in_background() -> None:
    """Start importing scikit-learn's clustering and metrics on a daemon thread (~1.5-3 s in a
    fresh process, nearly all of it Python work that overlaps the engine's query, which holds no
    interpreter lock). Python's import locks make a later import of the same modules wait for
    this one instead of repeating it."""
    import sys
    import threading

    if "sklearn.cluster" in sys.modules and "sklearn.metrics" in sys.modules:
        return

    def load() -> None:
        import sklearn.cluster  # noqa: F401
        import sklearn.metrics  # noqa: F401

    threading.Thread(target=load, name="cjlib-import-sklearn", daemon=True).start()


def _plain(value: Any) -> Any:
    if isinstance(value, range):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value
