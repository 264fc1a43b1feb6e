"""Experiment metrics and per-customer outcomes, built as engine expressions.

A :class:`Metric` says what to measure for each assigned customer from the events *after* their
assignment (optionally within ``window_days``): whether they converted, reached a stage or an
event (a funnel step), their revenue, orders or sessions, or a per-customer column of the
experiments table. A ratio metric divides two of those summed over customers (average order value
= revenue / orders; revenue per session), so its unit is the order or the session, not the customer.

Names understood by :func:`metric` (``order events`` default to ``purchase, repeat_purchase``):

=========================  =========  ===================================================
name                       kind       per customer after assignment
=========================  =========  ===================================================
``conversion``             binary     made a ``conversion_event`` (default ``purchase``)
``event:<name>``           binary     had at least one ``<name>`` event (a funnel step)
``stage:<name>``           binary     reached stage ``<name>`` or a later one (stage model)
``revenue``                mean       revenue on all events
``orders``                 mean       number of order events
``count:<name>``           mean       number of ``<name>`` events
``sessions``               mean       distinct ``session_id``
``column:<name>``          mean       the experiments table's column ``<name>``
``aov``                    ratio      revenue on order events / order events
``first_order_value``      ratio      revenue on conversion events / conversion events
``revenue_per_session``    ratio      revenue / sessions
=========================  =========  ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from cjlib.engine import Engine, as_table

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = [
    "Metric",
    "metric",
    "metrics_from_roles",
    "ROLES",
    "KINDS",
    "assignments",
    "customer_outcomes",
    "column",
]

ROLES = ("primary", "secondary", "guardrail")
KINDS = ("binary", "mean", "ratio")
ORDER_EVENTS = ("purchase", "repeat_purchase")
_NAMED = ("conversion", "revenue", "orders", "sessions", "aov", "first_order_value")
_NAMED += ("revenue_per_session",)
_PREFIXES = ("event", "stage", "count", "column")


@dataclass(frozen=True)
class Metric:
    """One metric: ``name``, ``kind`` (binary, mean, ratio), ``role`` and how to compute it.

    ``numerator`` / ``denominator`` are the per-customer quantities (``("conversion",)``,
    ``("revenue", events)``, ``("count", events)``, ``("sessions",)``, ``("stage", name)``,
    ``("column", name)``, ``("one",)``). ``higher_is_better`` orients guardrails and decisions;
    ``margin`` is the non-inferiority margin (relative to control) used when the role is guardrail.
    """

    name: str
    kind: str
    role: str = "secondary"
    numerator: tuple = ()
    denominator: tuple = ("one",)
    higher_is_better: bool = True
    margin: float = 0.0
    label: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_ratio(self) -> bool:
        return self.kind == "ratio"


def column(m: Metric, part: str) -> str:
    """Name of a metric's ``num`` / ``den`` column in the outcomes table (safe on every engine)."""
    import re

    return re.sub(r"[^0-9A-Za-z_]", "_", m.name) + f"__{part}"


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"metric role must be one of {list(ROLES)}, got {role!r}")
    return role


def metric(
    name: str,
    *,
    role: str = "secondary",
    conversion_event: str = "purchase",
    order_events: Sequence[str] = ORDER_EVENTS,
    higher_is_better: bool = True,
    margin: float = 0.0,
) -> Metric:
    """The :class:`Metric` for a name from the module table (``conversion``, ``event:add_to_cart``,
    ``aov``...). ``margin`` (>= 0, relative) is the non-inferiority margin for guardrails."""
    _check_role(role)
    if not isinstance(name, str) or not name:
        raise ValueError(f"metric must be a non-empty name, got {name!r}")
    if not 0 <= float(margin) < 1:
        raise ValueError(f"margin must be a relative margin in [0, 1), got {margin!r}")
    orders = tuple(order_events)
    conv = (conversion_event,)
    kw = dict(role=role, higher_is_better=bool(higher_is_better), margin=float(margin))
    prefix, _, arg = name.partition(":")
    if arg:
        if prefix not in _PREFIXES or not arg.strip():
            raise ValueError(
                f"metric {name!r}: prefix must be one of {list(_PREFIXES)} followed by a name"
            )
        arg = arg.strip()
        spec = {
            "event": ("binary", ("count", (arg,)), f"share reaching event {arg}"),
            "stage": ("binary", ("stage", arg), f"share reaching stage {arg} or later"),
            "count": ("mean", ("count", (arg,)), f"{arg} events per customer"),
            "column": ("mean", ("column", arg), f"mean of {arg} per customer"),
        }[prefix]
        return Metric(name, spec[0], numerator=spec[1], label=spec[2], **kw)
    table = {
        "conversion": ("binary", ("count", conv), ("one",), f"share making a {conversion_event}"),
        "revenue": ("mean", ("revenue", None), ("one",), "revenue per customer"),
        "orders": ("mean", ("count", orders), ("one",), "orders per customer"),
        "sessions": ("mean", ("sessions",), ("one",), "sessions per customer"),
        "aov": ("ratio", ("revenue", orders), ("count", orders), "revenue per order"),
        "first_order_value": ("ratio", ("revenue", conv), ("count", conv), "first order value"),
        "revenue_per_session": ("ratio", ("revenue", None), ("sessions",), "revenue per session"),
    }
    if name not in table:
        raise ValueError(
            f"metric must be one of {list(_NAMED)} or '<prefix>:<name>' with prefix in "
            f"{list(_PREFIXES)}, got {name!r}"
        )
    kind, num, den, label = table[name]
    return Metric(name, kind, numerator=num, denominator=den, label=label, **kw)


def metrics_from_roles(
    primary: str | Sequence[str] = "conversion",
    secondary: Sequence[str] = (),
    guardrail: Sequence[str] = (),
    *,
    conversion_event: str = "purchase",
    order_events: Sequence[str] = ORDER_EVENTS,
    guardrail_margin: float = 0.05,
    lower_is_better: Sequence[str] = (),
) -> tuple[Metric, ...]:
    """Metrics from names grouped by role (the notebook's parameters). A name may appear once."""
    primary = [primary] if isinstance(primary, str) else list(primary)
    if not primary:
        raise ValueError("primary must name at least one metric, got none")
    seen: set[str] = set()
    out = []
    for role, names in (("primary", primary), ("secondary", secondary), ("guardrail", guardrail)):
        for name in names:
            if name in seen:
                raise ValueError(f"metric {name!r} is listed twice; give each metric one role")
            seen.add(name)
            out.append(
                metric(
                    name,
                    role=role,
                    conversion_event=conversion_event,
                    order_events=order_events,
                    higher_is_better=name not in lower_is_better,
                    margin=guardrail_margin if role == "guardrail" else 0.0,
                )
            )
    return tuple(out)


# -- engine expressions ------------------------------------------------------------------------
def assignments(
    experiments: Any,
    *,
    experiment: str | None = None,
    covariate: str | None = None,
    columns: Sequence[str] = (),
    engine: Engine | None = None,
) -> tuple[ir.Table, Engine]:
    """One row per assigned customer: ``customer_id, variant, n_variants, assigned_at[, x]``.

    Several rows of one customer collapse to the earliest assignment; ``n_variants`` > 1 marks a
    customer exposed to more than one variant (see :func:`cjlib.experiments.checks`). ``x`` is
    the covariate (mean over the customer's rows); ``columns`` are per-customer metric columns.
    """
    import ibis

    t, engine = as_table(experiments, engine)
    for name, col in (("covariate", covariate), *(("columns", c) for c in columns)):
        if col and col not in t.columns:
            raise ValueError(f"{name}: no column {col!r} in the experiments table {t.columns}")
    if experiment is not None:
        t = t.filter(t.experiment == ibis.literal(str(experiment)))
    aggs: dict[str, Any] = {
        "variant": t.variant.min(),
        "n_variants": t.variant.nunique().cast("int64"),
    }
    if "assigned_at" in t.columns:
        aggs["assigned_at"] = t.assigned_at.min()
    if covariate:
        aggs["x"] = t[covariate].cast("float64").mean()
    for col in columns:
        aggs[f"col_{col}"] = t[col].cast("float64").mean()
    return t.group_by("customer_id").aggregate(**aggs), engine


def _quantity(q: tuple, ev: ir.Table, stage_index: Mapping[str, int], engine: Engine) -> Any:
    """Per-customer aggregate expression over the post-assignment events ``ev``."""
    import ibis

    kind = q[0]
    if kind == "count":
        return ev.event.isin(list(q[1])).cast("int64").sum()
    if kind == "revenue":
        rev = ev.revenue.cast("float64").fill_null(0.0)
        keep = ev.event.isin(list(q[1])) if q[1] else ibis.literal(True)
        return ibis.cases((keep, rev), else_=0.0).sum()
    if kind == "sessions":
        return engine.count_distinct(ev.session_id).cast("int64")
    if kind == "stage":
        return (ev.stage_index >= stage_index[q[1]]).cast("int64").max()
    raise ValueError(f"unknown quantity {q!r}")  # pragma: no cover


def customer_outcomes(
    experiments: Any,
    events: Any = None,
    metrics: Sequence[Metric] = (),
    *,
    experiment: str | None = None,
    covariate: str | None = None,
    window_days: float | None = None,
    stages: Any = None,
    engine: Engine | None = None,
) -> tuple[ir.Table, Engine]:
    """Ibis table, one row per customer exposed to exactly one variant: ``customer_id, variant,
    assigned_at, x`` (covariate) and ``<metric>__num``, ``<metric>__den`` for every metric.

    Events count when ``assigned_at <= timestamp`` (and ``< assigned_at + window_days`` when given);
    without an ``assigned_at`` column every event counts. Customers without events get 0.
    Nothing is executed here: the statistics run through :mod:`cjlib.experiments.stats`.
    """
    import ibis

    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics must hold at least one Metric, got none")
    if window_days is not None and not float(window_days) > 0:
        raise ValueError(
            f"window_days must be a positive number of days or None, got {window_days}"
        )
    cols = sorted({q[1] for m in metrics for q in (m.numerator, m.denominator) if q[0] == "column"})
    assign, engine = assignments(
        experiments, experiment=experiment, covariate=covariate, columns=cols, engine=engine
    )
    clean = assign.filter(assign.n_variants == 1).drop("n_variants")
    quantities = {q for m in metrics for q in (m.numerator, m.denominator)}
    event_q = {q for q in quantities if q[0] in ("count", "revenue", "sessions", "stage")}
    values: dict[tuple, Any] = {}
    if event_q:
        if events is None:
            raise ValueError("events are needed for metrics computed from events; got events=None")
        ev, _ = as_table(events, engine)
        needs = {"revenue": "revenue", "sessions": "session_id"}
        for q in event_q:
            if q[0] in needs and needs[q[0]] not in ev.columns:
                raise ValueError(f"metric needs a {needs[q[0]]!r} column in the events table")
        stage_index: dict[str, int] = {}
        if any(q[0] == "stage" for q in event_q):
            from cjlib.journeys import with_stages
            from cjlib.stages import five_stage

            model = stages or five_stage()
            for q in event_q:
                if q[0] == "stage":
                    stage_index[q[1]] = model.index(q[1])
            ev = with_stages(ev, model, engine=engine)
        keep = [
            c
            for c in ("customer_id", "timestamp", "event", "revenue", "session_id")
            if c in ev.columns
        ]
        ev = ev.select(*keep, *(["stage_index"] if stage_index else []))
        ev = ev.join(
            clean.select(
                "customer_id", *(["assigned_at"] if "assigned_at" in clean.columns else [])
            ),
            "customer_id",
        )
        if "assigned_at" in ev.columns:
            ev = ev.filter(ev.timestamp >= ev.assigned_at)
            if window_days is not None:
                lag = engine.epoch_seconds(ev.timestamp) - engine.epoch_seconds(ev.assigned_at)
                ev = ev.filter(lag < float(window_days) * 86400.0)
        names = {q: f"q{i}" for i, q in enumerate(sorted(event_q, key=repr))}
        per = ev.group_by("customer_id").aggregate(
            **{names[q]: _quantity(q, ev, stage_index, engine) for q in event_q}
        )
        clean = clean.left_join(per, "customer_id").drop("customer_id_right")
        for q, col in names.items():
            values[q] = clean[col].cast("float64").fill_null(0.0)
    out = {}
    for m in metrics:
        for part, q in (("num", m.numerator), ("den", m.denominator)):
            if q[0] == "one":
                expr = ibis.literal(1.0)
            elif q[0] == "column":
                expr = clean[f"col_{q[1]}"]
            else:
                expr = values[q]
            if m.kind == "binary" and part == "num":
                expr = ibis.cases((expr > 0, 1.0), else_=0.0)
            out[column(m, part)] = expr.cast("float64")
    base = [c for c in ("customer_id", "variant", "assigned_at", "x") if c in clean.columns]
    return clean.select(*base, **out), engine
