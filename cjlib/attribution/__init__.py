"""Touchpoint attribution: which channels earn the conversions and the revenue, and how sure we are.

>>> import cjlib as cj
>>> from cjlib.attribution import attribute
>>> events = cj.load_events("data/events.csv")
>>> result = attribute(events, markov_order="auto", costs="data/costs.csv")
>>> result.credits            # model x channel credits, shares, 95 % bootstrap intervals
>>> result.comparison         # one row per channel: every model's share, spread, agreement

Journeys come from touch events through the engine (:func:`touch_journeys`) or from a
pre-aggregated path table (:func:`read_path_table`). Models: rule-based (first/last touch, last
non-direct, linear, position-based, time-decay, participation), exact Markov removal effects of
order 1 to 4 (or chosen on held-out journeys), and Shapley values. Every credit carries a bootstrap
interval over resampled journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cjlib.attribution.compare import (
    channel_costs,
    comparison,
    cost_table,
    credit_table,
    versus_baseline,
)
from cjlib.attribution.findings import describe_attribution, methodology
from cjlib.attribution.heuristics import POSITION_PRESETS, RULE_MODELS
from cjlib.attribution.journeys import Journeys, touch_journeys
from cjlib.attribution.markov import fit_markov, select_order
from cjlib.attribution.models import (
    DATA_DRIVEN,
    MODELS,
    ModelSpec,
    bootstrap_credits,
    point_credits,
)
from cjlib.attribution.paths import path_flows, top_paths
from cjlib.attribution.pathtable import read_path_table
from cjlib.attribution.segments import attribute_segments
from cjlib.attribution.shapley import ordered_shapley, shapley_values
from cjlib.engine import Engine

__all__ = [
    "AttributionResult",
    "attribute",
    "attribute_segments",
    "touch_journeys",
    "read_path_table",
    "Journeys",
    "fit_markov",
    "select_order",
    "shapley_values",
    "ordered_shapley",
    "top_paths",
    "path_flows",
    "channel_costs",
    "describe_attribution",
    "methodology",
    "MODELS",
    "RULE_MODELS",
    "DATA_DRIVEN",
    "POSITION_PRESETS",
]


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """Credits per model and channel, with intervals, and everything behind them.

    ``credits`` (long: model, channel, conversions, share, value, value_share, each with
    ``_low``/``_high`` bootstrap bounds), ``comparison`` (one row per channel),
    ``versus_last_touch`` (data-driven minus last touch, paired intervals), ``removal_effects``
    and ``transitions`` (the Markov chain), ``order_selection`` (held-out log-likelihood per
    order, when ``auto``),
    ``ordered_shapley`` (credit by channel and position), ``costs`` (CPA, ROAS, cost vs credit
    share; ``None`` without a cost table), ``summary`` and ``params``.
    """

    credits: pd.DataFrame
    comparison: pd.DataFrame
    versus_last_touch: pd.DataFrame
    removal_effects: pd.DataFrame | None
    transitions: pd.DataFrame | None
    order_selection: pd.DataFrame | None
    ordered_shapley: pd.DataFrame | None
    costs: pd.DataFrame | None
    summary: dict
    params: dict
    journeys: Journeys = field(repr=False)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.journeys.channels

    @property
    def transition_matrix(self) -> pd.DataFrame | None:
        """Wide first-order-style matrix: rows = states, columns = next state, probabilities."""
        if self.transitions is None:
            return None
        from cjlib.attribution.markov import CONV, NULL, START

        m = self.transitions.pivot_table(
            index="from_state", columns="to_state", values="probability", aggfunc="sum"
        )
        cols = [c for c in m.columns if c not in (CONV, NULL)] + [CONV, NULL]
        rows = [START] + [r for r in m.index if r != START]
        return m.reindex(index=rows, columns=cols).fillna(0.0)

    def shares(self, value: bool = False) -> pd.DataFrame:
        """Wide table channel x model of shares (of conversions, or of value)."""
        col = "value_share" if value else "share"
        return self.credits.pivot(index="channel", columns="model", values=col)[
            list(dict.fromkeys(self.credits["model"]))
        ]

    def ordered_shapley_wide(self) -> pd.DataFrame | None:
        """Ordered Shapley conversions as channel x position of first touch (1 = first)."""
        if self.ordered_shapley is None:
            return None
        wide = self.ordered_shapley.pivot(index="channel", columns="position", values="conversions")
        wide.columns = [f"position {c}" for c in wide.columns]
        return wide.fillna(0.0).reset_index()

    def top_paths(self, **kwargs: Any) -> pd.DataFrame:
        """:func:`cjlib.attribution.paths.top_paths` on these journeys."""
        return top_paths(self.journeys, **kwargs)

    def path_flows(self, **kwargs: Any) -> pd.DataFrame:
        """:func:`cjlib.attribution.paths.path_flows` on these journeys."""
        return path_flows(self.journeys, **kwargs)

    def describe(self) -> list[str]:
        return describe_attribution(self)

    def to_frame(self) -> pd.DataFrame:
        return self.credits.copy()

    def to_dict(self) -> dict:
        import json

        def records(df: pd.DataFrame | None) -> Any:
            return None if df is None else json.loads(df.to_json(orient="records"))

        return {
            "params": self.params,
            "summary": self.summary,
            "credits": records(self.credits),
            "comparison": records(self.comparison),
            "versus_last_touch": records(self.versus_last_touch),
            "removal_effects": records(self.removal_effects),
            "order_selection": records(self.order_selection),
            "costs": records(self.costs),
        }

    def _repr_html_(self) -> str:
        s = self.summary
        head = (
            f"<p><b>Attribution</b>: {s['conversions']:,.0f} conversions from "
            f"{s['journeys']:,.0f} journeys over {len(self.channels)} channels; "
            f"Markov order {self.params.get('markov_order')}.</p>"
        )
        return head + self.shares().to_html(float_format=lambda x: f"{100 * x:.1f} %")


def _journeys(data: Any, engine: Engine | None, options: dict) -> Journeys:
    if isinstance(data, Journeys):
        return data
    if isinstance(data, pd.DataFrame) and "path" in data.columns and "event" not in data.columns:
        return read_path_table(data)
    return touch_journeys(data, engine=engine, **options)


def attribute(
    data: Any,
    *,
    models: Sequence[str] | str = "all",
    conversion_event: str = "purchase",
    lookback_days: float = 30.0,
    collapse_repeats: bool = False,
    direct_channels: Sequence[str] = ("direct",),
    position_weights: str | Sequence[float] = "u",
    half_life: float = 7.0,
    markov_order: int | str = 1,
    shapley_max_exact: int = 12,
    n_boot: int = 200,
    confidence: float = 0.95,
    costs: Any = None,
    random_state: int | None = 0,
    engine: Engine | None = None,
) -> AttributionResult:
    """Attribute conversions and revenue to channels with every model, with intervals.

    ``data``: touch events (a ``LoadedTable``, DataFrame, Ibis table or file: journeys are built
    by :func:`touch_journeys` with ``conversion_event``, ``lookback_days``, ``collapse_repeats``
    and ``half_life``), a pre-aggregated path table (DataFrame with a ``path`` column), or
    :class:`Journeys`. ``models``: names from :data:`MODELS` or ``"all"``. ``direct_channels``
    are non-touches for last non-direct. ``position_weights``: ``u`` (40/20/40), ``j``
    (20/20/60), ``inverse_j`` (60/20/20) or ``(first, middle, last)``. ``half_life``: days for
    time decay (touches when journeys carry no times). ``markov_order``: 1-4 or ``"auto"``
    (chosen on 30 % held-out journeys, :func:`select_order`). ``n_boot``: bootstrap replicates
    (0 for none). ``costs``: a cost table (``channel, spend``) for CPA and ROAS. ``random_state``
    seeds the bootstrap, the held-out split and Monte Carlo Shapley.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if not isinstance(n_boot, int) or (n_boot != 0 and n_boot < 2):
        raise ValueError(f"n_boot must be 0 (no intervals) or an int >= 2, got {n_boot!r}")
    if markov_order != "auto" and markov_order not in (1, 2, 3, 4):
        raise ValueError(f"markov_order must be 1, 2, 3, 4 or 'auto', got {markov_order!r}")
    options = {
        "conversion_event": conversion_event,
        "lookback_days": lookback_days,
        "collapse_repeats": collapse_repeats,
        "half_life": half_life,
    }
    j = _journeys(data, engine, options)
    if j.n_paths == 0 or j.total_conversions <= 0:
        raise ValueError("data holds no converting journey with a touch: nothing to attribute")
    order_table = None
    order = markov_order
    if markov_order == "auto":
        order_table = select_order(j, random_state=random_state)
        order = int(order_table.loc[order_table["chosen"], "order"].iloc[0])
    spec = ModelSpec.make(
        models,
        markov_order=order,
        direct_channels=tuple(direct_channels),
        position=position_weights,
        half_life=half_life,
        max_exact=shapley_max_exact,
        random_state=random_state,
    )
    point, extras = point_credits(j, spec)
    reps = None
    rep_totals = None
    if n_boot:
        reps, rep_totals = bootstrap_credits(j, spec, n_boot=n_boot, random_state=random_state)
    totals = (j.total_conversions, j.total_value)
    credits = credit_table(j.channels, point, reps, totals, rep_totals, confidence=confidence)
    versus = pd.DataFrame()
    if reps is not None and "last_touch" in point:
        versus = versus_baseline(
            j.channels, point, reps, totals[0], rep_totals[0], confidence=confidence
        )
    fit = extras.get("markov_fit")
    cost = None
    if costs is not None:
        cost = cost_table(credits, channel_costs(costs, engine=engine))
    params = {
        **j.params,
        "models": list(spec.models),
        "markov_order": order,
        "markov_order_requested": markov_order,
        "direct_channels": list(spec.direct_channels),
        "position_weights": list(spec.position),
        "half_life": float(half_life),
        "shapley_method": extras.get("shapley_method"),
        "n_boot": n_boot,
        "confidence": confidence,
        "random_state": random_state,
    }
    return AttributionResult(
        credits=credits,
        comparison=comparison(credits),
        versus_last_touch=versus,
        removal_effects=None if fit is None else fit.removal_effects(),
        transitions=None if fit is None else fit.transition_table(),
        order_selection=order_table,
        ordered_shapley=ordered_shapley(j) if "shapley_simple" in spec.models else None,
        costs=cost,
        summary=j.summary(),
        params=params,
        journeys=j,
    )
