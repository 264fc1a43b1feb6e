"""A/B test analysis: checks before results, frequentist, Bayesian and sequential readouts,
corrections, segments with a Simpson's-paradox check, planning, and a decision in plain words.

>>> import cjlib as cj
>>> from cjlib.experiments import analyze, metrics_from_roles
>>> result = analyze(
...     cj.load_experiments("data/experiments.csv"), cj.load_events("data/events.csv"),
...     metrics=metrics_from_roles("conversion", ["first_order_value"], ["sessions"]),
...     covariate="pre_period_sessions", window_days=14,
... )
>>> result.decision, result.reasons
>>> result.comparisons        # metric x variant: lift with intervals, p, adjusted p

Outcomes per customer and per-variant sufficient statistics are engine expressions
(:mod:`~cjlib.experiments.metrics`, :mod:`~cjlib.experiments.stats`); every test runs locally on
the few numbers that come back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from cjlib.engine import Engine
from cjlib.experiments import checks as _checks
from cjlib.experiments.bayesian import bayes_compare
from cjlib.experiments.decision import DECISIONS, METHODS, decide, describe, methods
from cjlib.experiments.frequentist import compare, variant_estimates
from cjlib.experiments.metrics import (
    Metric,
    assignments,
    customer_outcomes,
    metric,
    metrics_from_roles,
)
from cjlib.experiments.power import plan
from cjlib.experiments.readout import corrected, extra_tests, with_reduction
from cjlib.experiments.segments import segment_columns, segment_effects, simpson_check
from cjlib.experiments.sequential import sequential_looks
from cjlib.experiments.stats import daily_stats, variant_stats, winsorize

__all__ = [
    "ExperimentResult",
    "analyze",
    "Metric",
    "metric",
    "metrics_from_roles",
    "DECISIONS",
    "METHODS",
    "TESTS",
]

TESTS = ("mann_whitney", "bootstrap")


@dataclass(frozen=True, eq=False)
class ExperimentResult:
    """Everything an A/B readout needs, as tidy tables.

    ``checks`` (one verdict per check, failed first), ``srm`` / ``exposure`` / ``balance`` (the
    checks' tables), ``stats`` (per-variant sufficient statistics), ``estimates`` (per metric and
    variant, unadjusted: share of customers with a Wilson interval, mean per customer with a t
    interval, or ratio with a delta-method interval), ``comparisons`` (each variant vs control,
    CUPED-adjusted when a covariate is given: difference and relative lift with intervals,
    p-value, adjusted p-value, non-inferiority for guardrails, optional
    Mann-Whitney and bootstrap columns), ``bayesian``, ``sequential`` (one row per daily look),
    ``power`` (plan per metric), ``segments`` and ``simpson``; ``decision`` (ship, do not ship,
    keep running, inconclusive) with ``reasons``; ``metrics`` and ``params``.
    """

    decision: str
    reasons: tuple[str, ...]
    checks: pd.DataFrame
    srm: pd.DataFrame
    exposure: pd.DataFrame
    balance: pd.DataFrame | None
    stats: pd.DataFrame
    estimates: pd.DataFrame
    comparisons: pd.DataFrame
    bayesian: pd.DataFrame
    sequential: pd.DataFrame
    power: pd.DataFrame
    segments: pd.DataFrame
    simpson: pd.DataFrame
    metrics: tuple[Metric, ...]
    params: dict = field(default_factory=dict)
    caps: dict = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        return list(self.checks.loc[self.checks["status"] == "fail", "message"])

    def findings(self) -> list[str]:
        """Plain-language findings, headline first."""
        return describe(
            self.decision,
            self.reasons,
            self.checks,
            self.comparisons,
            self.simpson,
            self.metrics,
        )

    def banner(self) -> str:
        """Markdown for the top of a report: the decision, failed checks in words, the reasons."""
        lines = [f"### Decision: {self.decision}", ""]
        lines += [f"> **Check failed:** {msg}\n" for msg in self.failed_checks]
        lines += [f"- {r}" for r in self.reasons]
        return "\n".join(lines)

    def methods(self) -> list[str]:
        """Definitions for the methodology appendix (metrics, denominators, tests, rules)."""
        return methods(self.metrics, self.params)

    def to_frame(self) -> pd.DataFrame:
        """The comparisons table (one row per metric and variant against control)."""
        return self.comparisons.copy()

    def to_dict(self) -> dict:
        from cjlib.report.glue import jsonable

        tables = ("checks", "srm", "exposure", "balance", "estimates", "comparisons", "bayesian")
        tables += ("power", "segments", "simpson")
        out = {k: jsonable(getattr(self, k)) for k in tables}
        out |= dict(
            decision=self.decision,
            reasons=list(self.reasons),
            metrics=[asdict(m) for m in self.metrics],
            params=jsonable(self.params),
            caps=self.caps,
        )
        return out

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{r}</li>" for r in self.reasons)
        cols = ["metric", "role", "variant", "lift", "lift_low", "lift_high", "p_adjusted"]
        return f"<p><b>Decision: {self.decision}</b></p><ul>{items}</ul>" + self.comparisons[
            [c for c in cols if c in self.comparisons]
        ].to_html(index=False)


def _as_metrics(metrics: Sequence[Metric | str] | Metric | str) -> tuple[Metric, ...]:
    items = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    if not items:
        raise ValueError("metrics must name at least one metric, got none")
    out = [
        m if isinstance(m, Metric) else metric(m, role="primary" if i == 0 else "secondary")
        for i, m in enumerate(items)
    ]
    if len({m.name for m in out}) < len(out):
        raise ValueError(f"metrics must have distinct names, got {[m.name for m in out]}")
    if not any(m.role == "primary" for m in out):
        raise ValueError("metrics need at least one primary metric")
    return tuple(out)


def analyze(
    experiments: Any,
    events: Any = None,
    *,
    metrics: Sequence[Metric | str] | Metric | str = ("conversion",),
    experiment: str | None = None,
    control: str = "control",
    split: Mapping[str, float] | None = None,
    covariate: str | None = None,
    cuped: bool = True,
    window_days: float | None = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    correction: str = "holm",
    scope: str = "metric",
    method: str = "frequentist",
    tests: Sequence[str] = (),
    winsorize_at: float | None = None,
    customers: Any = None,
    persona: Any = None,
    segments: Sequence[str] = (),
    min_segment_size: int = 10,
    srm_alpha: float = 0.001,
    srm_min_deviation: float = 0.002,
    mde: float = 0.05,
    traffic_per_day: float | None = None,
    mixture_lift: float = 0.1,
    bayes_threshold: float = 0.95,
    n_boot: int = 2000,
    random_state: int = 0,
    stages: Any = None,
    engine: Engine | None = None,
) -> ExperimentResult:
    """Analyse one experiment, from checks to decision.

    ``experiments`` (assignments: ``customer_id, experiment, variant`` + ``assigned_at``, the
    covariate, metric columns) and ``events`` (outcomes after assignment, within
    ``window_days``; ``None`` = no limit). ``metrics``: :class:`Metric` objects or names (the
    first name is primary). ``split``: configured share per variant (default equal).
    ``covariate``: pre-period column for the balance check and, with ``cuped``, CUPED (a missing
    value counts as 0). ``correction``: ``holm``, ``bh`` or ``none`` within each metric
    (``scope="metric"``) or across all metrics and variants (``"all"``). ``method``
    (frequentist, bayesian, sequential) chooses the evidence the decision uses; all three
    readouts are always computed. ``tests``: extra tests (``mann_whitney``, ``bootstrap``).
    ``winsorize_at``: cap per-customer values at this quantile (e.g. 0.99). ``segments``:
    columns of ``customers``, ``persona`` (a ``customer_id, persona`` table or CSV) or ``week``.
    ``mde`` (relative) and ``traffic_per_day`` (default: customers assigned per day so far)
    drive the plan and "keep running". ``random_state`` seeds every Monte Carlo and bootstrap
    draw.
    """
    metrics = _as_metrics(metrics)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    bad = [t for t in tests if t not in TESTS]
    if bad:
        raise ValueError(f"tests must be a subset of {list(TESTS)}, got {bad}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha!r}")
    if (segments or persona is not None) and min_segment_size < 1:
        raise ValueError(f"min_segment_size must be >= 1, got {min_segment_size!r}")
    outcomes, eng = customer_outcomes(
        experiments,
        events,
        metrics,
        experiment=experiment,
        covariate=covariate,
        window_days=window_days,
        stages=stages,
        engine=engine,
    )
    assign, _ = assignments(experiments, experiment=experiment, engine=eng)
    table = eng.materialize(outcomes, prefix="cjlib_ab")
    try:
        table, caps = winsorize(table, metrics, winsorize_at, eng)
        counts = eng.to_pandas(table.group_by("variant").aggregate(customers=table.count()))
        counts = dict(zip(counts["variant"], counts["customers"].astype(int), strict=True))
        if control not in counts:
            raise ValueError(
                f"control must be one of the variants {sorted(counts)}, got {control!r}"
            )
        order = [control] + sorted(v for v in counts if v != control)
        srm_table, srm_v = _checks.srm(
            {v: counts[v] for v in order},
            split=split,
            alpha=srm_alpha,
            min_deviation=srm_min_deviation,
        )
        exposure, exp_v = _checks.multiple_exposure(assign, eng)
        stats = variant_stats(table, metrics, eng)
        verdicts = [srm_v, exp_v]
        bal = None
        if covariate:
            bal, bal_v = _checks.balance(stats, control=control)
            verdicts.append(bal_v)
        checks = _checks.verdicts(*verdicts)
        raw = variant_estimates(stats, metrics, cuped=False, confidence=1 - alpha)
        est = variant_estimates(
            stats, metrics, cuped=cuped and bool(covariate), confidence=1 - alpha
        )
        comp = compare(est, metrics, control=control, alternative=alternative, confidence=1 - alpha)
        comp = with_reduction(comp, raw, est, control)
        comp = corrected(comp, correction, scope, alpha, metrics)
        comp = extra_tests(comp, table, metrics, eng, tests, control, alpha, n_boot, random_state)
        bayes = bayes_compare(
            est, metrics, control=control, confidence=1 - alpha, random_state=random_state
        )
        seq = pd.DataFrame()
        if "assigned_at" in table.columns:
            daily = daily_stats(table, metrics, eng)
            if traffic_per_day is None:  # customers per day over the assignment period
                days = (max(daily["day"]) - min(daily["day"])).days + 1
                traffic_per_day = sum(counts.values()) / days
            seq = sequential_looks(
                daily,
                metrics,
                control=control,
                alpha=alpha,
                mixture_lift=mixture_lift,
            )
        plan_t = plan(
            raw,
            metrics,
            control=control,
            mde_target=mde,
            alpha=alpha,
            traffic_per_day=traffic_per_day,
            one_sided=alternative != "two-sided",
        )
        seg, simpson = pd.DataFrame(), pd.DataFrame()
        dims = list(segments)
        if dims:
            joined = segment_columns(table, eng, customers=customers, persona=persona, columns=dims)
            primary = [m for m in metrics if m.role == "primary"]
            seg = segment_effects(
                joined,
                primary,
                eng,
                dimensions=dims,
                control=control,
                confidence=1 - alpha,
                correction=correction,
                scope=scope,
                min_size=min_segment_size,
            )
            simpson = simpson_check(comp, seg, alpha=alpha)
    finally:
        eng.release(table)
    decision, reasons = decide(
        checks,
        comp,
        metrics,
        method=method,
        bayes=bayes,
        sequential=seq,
        plan=plan_t,
        alpha=alpha,
        bayes_threshold=bayes_threshold,
    )
    params = dict(
        experiment=experiment,
        control=control,
        split=dict(split or {}),
        covariate=covariate,
        cuped=cuped,
        window_days=window_days,
        alpha=alpha,
        alternative=alternative,
        correction=correction,
        scope=scope,
        method=method,
        tests=list(tests),
        winsorize_at=winsorize_at,
        segments=dims,
        min_segment_size=min_segment_size,
        srm_alpha=srm_alpha,
        srm_min_deviation=srm_min_deviation,
        mde=mde,
        traffic_per_day=traffic_per_day,
        mixture_lift=mixture_lift,
        bayes_threshold=bayes_threshold,
        n_boot=n_boot,
        random_state=random_state,
        engine=eng.name,
    )
    return ExperimentResult(
        decision=decision,
        reasons=reasons,
        checks=checks,
        srm=srm_table,
        exposure=exposure,
        balance=bal,
        stats=stats,
        estimates=raw,
        comparisons=comp,
        bayesian=bayes,
        sequential=seq,
        power=plan_t,
        segments=seg,
        simpson=simpson,
        metrics=metrics,
        params=params,
        caps=caps,
    )
