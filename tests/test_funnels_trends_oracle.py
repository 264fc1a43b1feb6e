"""Differential test ("oracle") of cohort trends, time to convert and the stage view.

Checked against plain-Python references written from the documentation only (the module and
function docstrings of ``cjlib/funnels/spec.py``, ``summary.py``, ``trends.py``, ``timing.py``,
``core.py`` and ``stage_view.py``, and of ``cjlib.stages.StageModel``); the references call no
cjlib code. Only public functions are called on the cjlib side: ``funnel_trends``,
``trend_test``, ``funnel`` (its ``timing`` and ``km`` tables) and ``stage_view``.

What is checked, and the rules the references encode:

1. ``trend_test(x, n)``: the WLS slope of x/n on the scores 0..k-1 (weights n) and the
   Cochran-Armitage two-sided p-value, as R ``prop.trend.test(x, n)``: the classic statistic
   T = sum s_i (x_i - n_i p), Var T = p (1 - p) (sum n_i s_i^2 - (sum n_i s_i)^2 / N), computed
   in exact fractions, chi-square on 1 df. With two cohorts it must also equal the Pearson
   two-proportion chi-square without continuity correction (from the 2x2 table).
2. ``funnel_trends``: a unit-level funnel reference (closed, open and any-order modes; window,
   minimum/maximum gaps, exclusions, period with both entry rules, explicit or default
   ``as_of``) gives each unit its entry time, furthest step and status. Cohorts are the calendar
   week (Monday 00:00 UTC start) or month of the entry; per cohort ``entrants``, ``converted``
   (reached the last step), ``in_progress``, ``denominator`` = entrants - in progress,
   ``conversion`` with a Wilson interval at ``confidence``; ``incomplete`` when (cohort end, or
   the period end if earlier) + window > as_of (no window: that end > as_of); ``suppressed``
   when entrants < ``min_size`` (counts NA, rates NaN); ``slope``/``p_value`` from the
   reference Cochran-Armitage over the complete, unsuppressed cohorts, scored by their
   calendar position (a week or month without a usable cohort leaves a gap).
3. ``funnel().timing`` and ``funnel().km``: for step k (2..n) every unit that reached step k-1
   contributes the time from step k-1 to step k (an event) or to the end of its follow-up
   (censored): the first of as_of, the window end, the step's maximum gap and the exclusion
   event; in any-order mode every unit contributes to every step 1..n, from its entry (a
   reading, see ``durations_by_step``). Durations are floored to the second under an hour
   and to the minute from an hour on (or to multiples of ``resolution``). ``converters``,
   ``censored``, the type-1 empirical quantiles p25/median/p75/p90 of the converters' durations
   (the smallest value with a cumulative share >= q), the product-limit Kaplan-Meier curve (at
   a time with both, events before censorings: units censored at t are still at risk at t)
   reported as converted = 1 - S(t) with the Greenwood variance and R's log-log 95 % interval,
   and the KM median (the first time converted >= 1/2, exact fractions; NaN when never).
4. ``stage_view``: events mapped to stages (exact names after normalising, then patterns, the
   ``repeats`` rule: events in a repeated stage after the customer's first one there count as the
   later stage, ties with the first stay); the stage funnel is the closed funnel (ties count as
   following, greedy earliest occurrence, ``window`` default none) over the stages from the first to
   the last stage any event maps to (``skipped``, ``trailing``: the others); its table (customers,
   in progress, dropped, conversion from the previous step and from the start with Wilson intervals,
   drop-off) as ``summary.py`` defines it; ``references`` (industry figures with our lost share =
   drop-off at ``to_stage`` and its interval 1 - the conversion interval); ``furthest``; Sankey
   ``links`` from the collapsed stage paths with at least ``min_customers`` customers (positions
   1..``depth``, ``(end)`` after a path shorter than ``depth``); and ``regression_share``
   (regressions / stage-to-stage moves). Transitions, paths and dwell times are covered by
   ``tests/test_journeys_oracle.py`` and are not repeated here.

Random logs: seeded, 20-200 customers with 1-6 events each, entries spread over about four
months (so there are many weekly and several monthly cohorts), times on whole minutes and often
whole hours (ties between steps, between events and censorings, windows ending exactly on an
event); some configurations add seconds and milliseconds to check the duration floors. Floats
are compared to 1e-9, p-values to 1e-7. On a mismatch the log is shrunk (fewest customers, then
fewest events per customer) and the minimal log is printed with both outputs before failing.

Each configuration runs 4 seeds packed 2 to a cjlib call (customer ids carry the seed); the
stage view packs 3 seeds into one call. Where the documentation leaves a choice open, the
reading taken is stated next to the code (search for "Reading:").

Found when first run (both fixed since): the KM median missed a curve that reaches exactly one
half (1 - S(t) computed in floating point came out as 0.4999999999999999, so the median moved to
the next event time, or became NaN when there was none, although "half of the units" had
converted by t; ``trend_test`` renumbered the scores around a group with n = 0, which R keeps
(``test_trend_test_keeps_the_scores_around_an_empty_group``). The first case
(``test_km_median_when_exactly_half_convert``: 24 units, 12 events
at 1..12 h; the random ``closed_four_steps_conf90`` configuration hits the same case).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from conftest import Shrinker
from scipy.stats import chi2

from cjlib.funnels import INDUSTRY_REFERENCES, funnel, funnel_trends, stage_view
from cjlib.funnels.trends import trend_test
from cjlib.stages import StageModel, five_stage

T0 = pd.Timestamp("2025-12-17 00:00", tz="UTC")  # a Wednesday, two weeks before a new year
US_H = 3_600_000_000
US_MIN = 60_000_000
US_S = 1_000_000
SPAN_HOURS = 115 * 24  # entries spread over ~4 months
INF = math.inf
RTOL = ATOL = 1e-9
P_TOL = 1e-7


def z_of(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval from its formula."""
    if n == 0:
        return math.nan, math.nan
    z = z_of(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def us(value) -> int | None:
    """A duration as integer microseconds (None stays None)."""
    return None if value is None else int(pd.Timedelta(value) / pd.Timedelta(microseconds=1))


def ts_of(t_us: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(microseconds=int(t_us))


# ------------------------------------------------------------------------------------------------
# The funnel reference: one unit per customer (closed, open, any order)
# ------------------------------------------------------------------------------------------------


class Funnel:
    """The documented funnel rules (``cjlib/funnels/spec.py``) for one unit per customer.

    Times are integer microseconds after T0. A unit is a dict: ``entry_step``, ``t_entry``,
    ``times`` ({step: time reached}), ``depth`` (last step reached), ``status`` and, when it
    did not convert, ``end``: the end of its follow-up for the next step (for timing)."""

    def __init__(self, cfg: dict, as_of: int):
        self.steps = [frozenset(s.split("|")) for s in cfg["steps"]]
        self.labels = [" or ".join(dict.fromkeys(s.split("|"))) for s in cfg["steps"]]
        self.n = n = len(self.steps)
        self.mode = cfg.get("mode", "closed")
        self.window = us(cfg.get("window", "30D"))
        self.min_gap = self._per_step(cfg.get("min_gap"))
        self.max_gap = self._per_step(cfg.get("max_gap"))
        excl = cfg.get("exclude") or []
        spans = excl.items() if isinstance(excl, dict) else [(x, (1, n)) for x in excl]
        self.exclude = [(frozenset(x.split("|")), a, b) for x, (a, b) in spans]
        self.entry = cfg.get("entry", "first")
        self.period = cfg.get("period")  # (start_us | None, end_us | None)
        self.as_of = as_of

    def _per_step(self, value) -> list[int | None]:
        out: list[int | None] = [None] * (self.n + 1)  # index = step number 2..n
        if isinstance(value, dict):
            for k, v in value.items():
                out[k] = us(v)
        elif value is not None:
            out[2:] = [us(value)] * (self.n - 1)
        return out

    def in_period(self, t: int) -> bool:
        """The period includes its start and excludes its end."""
        if self.period is None:
            return True
        start, end = self.period
        return (start is None or start <= t) and (end is None or t < end)

    def pick_entry(self, evs, is_entry) -> int | None:
        """``first``: the first ever entry, counted when inside the period;
        ``first_in_period``: the first entry inside the period."""
        cands = [i for i, (_, name) in enumerate(evs) if is_entry(name)]
        if self.entry == "first":
            return cands[0] if cands and self.in_period(evs[cands[0]][0]) else None
        inside = [i for i in cands if self.in_period(evs[i][0])]
        return inside[0] if inside else None

    def follow_up_end(self, t_entry: int, t_prev: int, hi: int | None) -> int:
        """Timing: the follow-up ends at the first of the data end, the window end and the
        step's maximum gap."""
        end = self.as_of
        if self.window is not None:
            end = min(end, t_entry + self.window)
        if hi is not None:
            end = min(end, t_prev + hi)
        return end

    def still_open(self, t_entry: int, t_prev: int, hi: int | None) -> bool:
        """In progress: the window from entry and the step's maximum gap are both still open at
        the data end. No window: nobody is in progress. Reading (the one the funnel oracle
        established): "still open" is strict; a window ending exactly at as_of is closed, since
        every event up to as_of is in the data."""
        if self.window is None or not self.as_of < t_entry + self.window:
            return False
        return hi is None or self.as_of < t_prev + hi

    def unit(self, evs: list[tuple[int, str]]) -> dict | None:
        evs = sorted(evs)  # by timestamp, then event name
        is_funnel = lambda name: any(name in s for s in self.steps)  # noqa: E731
        if self.mode == "closed":
            pos = self.pick_entry(evs, lambda name: name in self.steps[0])
            if pos is None:
                return None
            return self.ordered(evs, pos, 1)
        pos = self.pick_entry(evs, is_funnel)
        if pos is None:
            return None
        if self.mode == "any_order":
            return self.any_order(evs, pos)
        # open: entry at the lowest step number matched by the events at the entry instant
        t0 = evs[pos][0]
        at_t = [
            (min(k for k in range(1, self.n + 1) if name in self.steps[k - 1]), q)
            for q, (t, name) in enumerate(evs)
            if t == t0 and is_funnel(name)
        ]
        step, q = min(at_t)
        return self.ordered(evs, q, step)

    def ordered(self, evs, pos: int, entry_step: int) -> dict:
        t_entry = evs[pos][0]
        used = {pos}
        times = {entry_step: t_entry}
        t_prev, k = t_entry, entry_step
        base = dict(entry_step=entry_step, t_entry=t_entry, times=times)
        while k < self.n:
            nxt = k + 1
            lo, hi = self.min_gap[nxt], self.max_gap[nxt]
            want = self.steps[nxt - 1]
            # Ties: same-time occurrences follow the previous step, unless the steps can be the
            # same event; then (and for any earlier overlapping step) strictly later.
            after = max((times[j] for j in times if self.steps[j - 1] & want), default=-INF)
            cands = [
                q
                for q, (t, name) in enumerate(evs)
                if q not in used
                and name in want
                and t >= t_prev
                and t > after
                and (lo is None or t - t_prev >= lo)
            ]
            match = cands[0] if cands else None  # greedy: the earliest occurrence
            if match is not None:
                t = evs[match][0]
                if (self.window is not None and t - t_entry > self.window) or (
                    hi is not None and t - t_prev > hi
                ):
                    match = None
            xs = set().union(*[x for x, a, b in self.exclude if a <= k and nxt <= b])
            if xs:
                if match is not None:
                    hits = [t for t, name in evs if name in xs and t_prev < t < evs[match][0]]
                else:  # while the next step could still be done (inclusive bounds)
                    limit = INF
                    if self.window is not None:
                        limit = min(limit, t_entry + self.window)
                    if hi is not None:
                        limit = min(limit, t_prev + hi)
                    hits = [t for t, name in evs if name in xs and t_prev < t <= limit]
                if hits:
                    return {**base, "depth": k, "status": "excluded", "end": min(hits)}
            if match is None:
                status = "in_progress" if self.still_open(t_entry, t_prev, hi) else "dropped"
                end = self.follow_up_end(t_entry, t_prev, hi)
                return {**base, "depth": k, "status": status, "end": end}
            used.add(match)
            t_prev, k = evs[match][0], nxt
            times[k] = t_prev
        return {**base, "depth": self.n, "status": "converted", "end": None}

    def any_order(self, evs, pos: int) -> dict:
        """Step k is reached when steps 1..k all occur, in any order, within the window from the
        entry; the time it is reached is the latest of the first occurrences of steps 1..k (the
        configurations use distinct single-event steps)."""
        t_entry = evs[pos][0]
        last = INF if self.window is None else t_entry + self.window
        times, reach = {}, t_entry
        for k in range(1, self.n + 1):
            occ = [t for t, name in evs if name in self.steps[k - 1] and t_entry <= t <= last]
            if not occ:
                break
            reach = max(reach, occ[0])
            times[k] = reach
        depth = len(times)
        base = dict(entry_step=1, t_entry=t_entry, times=times, depth=depth)
        if depth == self.n:
            return {**base, "status": "converted", "end": None}
        status = "in_progress" if self.still_open(t_entry, t_entry, None) else "dropped"
        return {**base, "status": status, "end": self.follow_up_end(t_entry, t_entry, None)}

    def units(self, log: dict[str, list[tuple[int, str]]]) -> list[dict]:
        out = []
        for evs in log.values():
            u = self.unit(evs)
            if u is not None:
                out.append(u)
        return out


# ------------------------------------------------------------------------------------------------
# Reference statistics: Cochran-Armitage, quantiles, Kaplan-Meier
# ------------------------------------------------------------------------------------------------


def cochran_armitage(x: list[int], n: list[int], scores=None) -> tuple[float, float]:
    """``(slope, p)``: WLS slope of x/n on scores 0..k-1 with weights n, and the two-sided
    Cochran-Armitage p-value, in exact fractions. Reading (R: lm on one point has no slope;
    with p = 0 or 1 the statistic is 0/0 and R reports NaN): fewer than two cohorts give
    (NaN, NaN); a pooled proportion of 0 or 1 gives (slope, NaN), the slope being 0."""
    k = len(n)
    if k < 2:
        return math.nan, math.nan
    N, X = sum(n), sum(x)
    p = Fraction(X, N)
    s = range(k) if scores is None else scores
    sbar = Fraction(sum(ni * si for ni, si in zip(n, s, strict=True)), N)
    ybar = p  # weighted mean of x/n with weights n
    sxx = sum(ni * (si - sbar) ** 2 for ni, si in zip(n, s, strict=True))
    sxy = sum(
        ni * (si - sbar) * (Fraction(xi, ni) - ybar) for xi, ni, si in zip(x, n, s, strict=True)
    )
    slope = sxy / sxx
    if p in (0, 1):
        return float(slope), math.nan
    t_stat = sum(si * (xi - ni * p) for xi, ni, si in zip(x, n, s, strict=True))
    var = (
        p
        * (1 - p)
        * (
            sum(ni * si * si for ni, si in zip(n, s, strict=True))
            - Fraction(sum(ni * si for ni, si in zip(n, s, strict=True)) ** 2, N)
        )
    )
    stat = t_stat**2 / var
    return float(slope), float(chi2.sf(float(stat), 1))


def pearson_2x2(x: list[int], n: list[int]) -> float:
    """Two-proportion Pearson chi-square without continuity correction: p-value."""
    table = [[x[0], n[0] - x[0]], [x[1], n[1] - x[1]]]
    rows = [sum(r) for r in table]
    cols = [table[0][j] + table[1][j] for j in range(2)]
    total = sum(rows)
    stat = sum(
        Fraction((table[i][j] * total - rows[i] * cols[j]) ** 2, total * rows[i] * cols[j])
        for i in range(2)
        for j in range(2)
    )
    return float(chi2.sf(float(stat), 1))


Q_LEVELS = (("p25", Fraction(1, 4)), ("median", Fraction(1, 2)), ("p75", Fraction(3, 4)),
            ("p90", Fraction(9, 10)))  # fmt: skip


def type1_quantile(values: list[int], q: Fraction) -> float:
    """Hyndman & Fan type 1: the smallest value with at least q of the values at or below it."""
    if not values:
        return math.nan
    values = sorted(values)
    for i, v in enumerate(values, start=1):
        if Fraction(i, len(values)) >= q:
            return v
    return values[-1]  # pragma: no cover


def kaplan_meier(durations: list[tuple[int, bool]]) -> list[dict]:
    """Product-limit estimate, one row per distinct event time. At a time with both, events
    come before censorings: everyone whose duration is >= t is at risk at t. Greenwood
    variance of log S; R's log-log interval: S^exp(+-z se / |log S|), se = sqrt(Greenwood),
    none where S is 0 (or 1). Reading: ``censored`` on a row counts the censorings at exactly
    that time (rows are only reported where events happen, as R's summary(survfit) does)."""
    z = z_of(0.95)
    ev = Counter(d for d, e in durations if e)
    ce = Counter(d for d, e in durations if not e)
    surv, green = Fraction(1), Fraction(0)
    rows = []
    at_risk = len(durations)
    for t in sorted(set(ev) | set(ce)):  # at_risk: the units whose duration is >= t
        d = ev.get(t, 0)
        leaving = d + ce.get(t, 0)
        if not d:
            at_risk -= leaving
            continue
        surv *= Fraction(at_risk - d, at_risk)
        if at_risk > d:
            green += Fraction(d, at_risk * (at_risk - d))
        s = float(surv)
        if 0 < surv < 1:
            se = math.sqrt(float(green)) / abs(math.log(s))
            s_low, s_high = s ** math.exp(z * se), s ** math.exp(-z * se)
            low, high = 1 - s_high, 1 - s_low
        else:
            low = high = math.nan
        rows.append(dict(time=t, at_risk=at_risk, events=d, censored=ce.get(t, 0),
                         converted_exact=1 - surv, converted=1 - s, converted_low=low,
                         converted_high=high))  # fmt: skip
        at_risk -= leaving
    return rows


def floor_duration(d: int, resolution: int | None) -> int:
    """To the second under an hour, to the minute from an hour on; or to ``resolution`` us."""
    if resolution is not None:
        return d // resolution * resolution
    unit = US_S if d < US_H else US_MIN
    return d // unit * unit


# ------------------------------------------------------------------------------------------------
# Random logs
# ------------------------------------------------------------------------------------------------

Log = dict[str, list[tuple[int, str]]]


def random_log(name: str, seed: int, vocab=("a", "b", "c", "x", "d"), jitter: bool = False,
               n_max: int = 200, max_events: int = 6) -> Log:  # fmt: skip
    """20-``n_max`` customers; each starts on a whole hour (one in ten in the last week, so
    some are still in progress at the data end) and does 1-``max_events`` events with gaps of 0
    (a tie), whole minutes, whole hours or whole days; with ``jitter`` most times get seconds
    and milliseconds too."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    weights = np.array([3.0, 2.0, 2.0, 1.0, 1.0] + [1.0] * max(len(vocab) - 5, 0))[: len(vocab)]
    weights /= weights.sum()
    log: Log = {}
    for c in range(int(rng.integers(20, n_max + 1))):
        late = rng.random() < 0.1
        t = int(rng.integers(SPAN_HOURS - 7 * 24 if late else 0, SPAN_HOURS)) * US_H
        n_ev = int(rng.integers(1, max_events + 1))
        kinds = rng.choice(4, size=n_ev, p=[0.15, 0.3, 0.4, 0.15])
        steps = np.stack([np.zeros(n_ev, dtype=np.int64), rng.integers(1, 120, n_ev) * US_MIN,
                          rng.integers(1, 60, n_ev) * US_H,
                          rng.integers(1, 8, n_ev) * 24 * US_H])  # fmt: skip
        times = t + np.cumsum(steps[kinds, np.arange(n_ev)])
        if jitter:
            extra = rng.integers(0, 60, n_ev) * US_S + rng.integers(0, 1000, n_ev) * 1000
            times = times + np.where(rng.random(n_ev) < 0.6, extra, 0)
        names = rng.choice(len(vocab), size=n_ev, p=weights)
        log[f"s{seed}_c{c:03d}"] = [
            (int(tt), vocab[int(i)]) for tt, i in zip(times, names, strict=True)
        ]
    return log


def to_frame(log: Log) -> pd.DataFrame:
    rows = [(c, t, e) for c, evs in log.items() for t, e in evs]
    df = pd.DataFrame(rows, columns=["customer_id", "us", "event"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("us").astype("int64"), unit="us")
    return df[["customer_id", "timestamp", "event"]]


def last_event(log: Log) -> int:
    return max(t for evs in log.values() for t, _ in evs)


def cohort_bounds(t_us: int, unit: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The calendar week (Monday 00:00 UTC) or month containing T0 + t, as [start, end)."""
    ts = ts_of(t_us)
    day = ts.normalize()
    if unit == "week":
        start = day - pd.Timedelta(days=day.day_of_week)
        return start, start + pd.Timedelta(days=7)
    start = day.replace(day=1)
    end = (start + pd.Timedelta(days=32)).replace(day=1)
    return start, end


def data_end(log: Log, cfg: dict) -> int:
    """The data end: ``as_of`` when given, else the last event of any name.

    ``"later"``: 5 days 3 hours after the last event. ``"boundary"``: a cohort end E (week or
    month) with E + window exactly at the data end (E the first such end with E + window at or
    after the last event), so that cohort sits exactly on the incomplete rule's boundary.
    ``"edge"``: the latest first occurrence of step 1 plus the window (or the last event when
    that is later), so that unit's window ends exactly at the data end."""
    last = last_event(log)
    choice = cfg.get("as_of")
    if choice is None:
        return last
    if choice == "later":
        return last + (5 * 24 + 3) * US_H
    window = us(cfg.get("window", "30D")) or 0
    if choice == "edge":
        first = frozenset(cfg["steps"][0].split("|"))
        entries = [min((t for t, e in evs if e in first), default=-INF) for evs in log.values()]
        return int(max(last, max(entries) + window))
    assert choice == "boundary"
    unit = cfg.get("cohort", "week")
    _, end = cohort_bounds(last - window, unit)
    return int((end - T0) / pd.Timedelta(microseconds=1)) + window


def period_of(cfg: dict, log: Log) -> tuple[int | None, int | None] | None:
    """The period in microseconds; an end ``"as_of-window"`` is the data end minus the window
    (so the period end, not the cohort end, decides whether its last cohort is complete)."""
    period = cfg.get("period")
    if period is None:
        return None
    start, end = period
    if end == "as_of-window":
        end = data_end(log, cfg) - us(cfg["window"])
    return start, end


def cj_options(cfg: dict, log: Log) -> dict:
    """The definition options as cjlib takes them (period and as_of as timestamps)."""
    kw = {k: cfg[k] for k in ("mode", "window", "min_gap", "max_gap", "exclude", "entry")
          if k in cfg}  # fmt: skip
    if cfg.get("period"):
        kw["period"] = tuple(None if p is None else ts_of(p) for p in period_of(cfg, log))
    if cfg.get("as_of"):
        kw["as_of"] = ts_of(data_end(log, cfg))
    return kw


def oracle_of(cfg: dict, log: Log) -> Funnel:
    return Funnel({**cfg, "period": period_of(cfg, log)}, data_end(log, cfg))


def packed_log(name: str, seeds, **kw) -> Log:
    """Several seeds' customers in one log (ids carry the seed), for one cjlib call."""
    return {k: v for s in seeds for k, v in random_log(name, s, **kw).items()}


def trimmed(log: Log, cfg: dict) -> Log:
    """For ``as_of="edge"``: the events after the latest entry + window are dropped, so the
    data end is exactly that entry's window end."""
    if cfg.get("as_of") != "edge":
        return log
    first = frozenset(cfg["steps"][0].split("|"))
    entries = [min((t for t, e in evs if e in first), default=-INF) for evs in log.values()]
    end = max(entries) + us(cfg["window"])
    return {c: kept for c, evs in log.items() if (kept := [(t, e) for t, e in evs if t <= end])}


def batches(seeds, pack: int) -> list[list[int]]:
    seeds = list(seeds)
    return [seeds[i : i + pack] for i in range(0, len(seeds), pack)]


# ------------------------------------------------------------------------------------------------
# Comparison and shrinking
# ------------------------------------------------------------------------------------------------


def is_missing(value) -> bool:
    return not isinstance(value, (tuple, list, str)) and bool(pd.isna(value))


def frame_difference(got: pd.DataFrame, want: pd.DataFrame, p_cols=()) -> str | None:
    """None when equal: integers and flags exactly, floats to 1e-9 (p-values 1e-7), NaN/NA
    alike."""
    if list(got.columns) != list(want.columns):
        return f"columns differ: {list(got.columns)} vs {list(want.columns)}"
    if len(got) != len(want):
        return f"{len(got)} rows, expected {len(want)}"
    for col in want.columns:
        for i, (a, b) in enumerate(zip(got[col], want[col], strict=True)):
            a_na, b_na = is_missing(a), is_missing(b)
            if a_na or b_na:
                if a_na != b_na:
                    return f"row {i} column {col!r}: got {a!r}, expected {b!r}"
                continue
            if isinstance(b, (float, np.floating)) and not isinstance(b, bool):
                tol = P_TOL if col in p_cols else ATOL
                if not math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=tol):
                    return f"row {i} column {col!r}: got {a!r}, expected {b!r}"
            elif a != b:
                return f"row {i} column {col!r}: got {a!r}, expected {b!r}"
    return None


def shrink(log: Log, fails, budget: int = 40) -> Log:
    """Delta debugging: drop chunks of customers, then of each customer's events, while the
    case still fails."""
    ddmin = Shrinker(budget, nonempty=True).ddmin

    keys = ddmin(list(log), lambda ks: fails({k: log[k] for k in ks}))
    log = {k: log[k] for k in keys}
    for k in list(log):
        log[k] = ddmin(log[k], lambda evs, k=k: fails({**log, k: evs}))
    return log


def show_log(log: Log) -> str:
    rows = [(c, ts_of(t), t / US_H, e) for c, evs in log.items() for t, e in sorted(evs)]
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "hours_after_T0", "event"])
    return df.to_string(index=False)


def fail_with(title: str, log: Log, cfg: dict, compare) -> None:
    """Shrink, print the minimal case with both outputs, fail."""

    def fails(sub: Log) -> bool:
        try:
            return compare(sub)[0] is not None
        except ValueError:  # a step's event vanished while shrinking: cjlib refuses the log
            return False

    small = shrink(log, fails)
    if not fails(small):
        small = log
    message, got, want = compare(small)
    text = (
        f"\n{title}: {cfg}\nminimal log ({sum(map(len, small.values()))} events, T0 = {T0}, "
        f"data end {ts_of(data_end(small, cfg))}):\n{show_log(small)}\n\n"
        f"cjlib:\n{got}\n\nreference:\n{want}\n\nfirst difference: {message}"
    )
    print(text)
    pytest.fail(text)


@pytest.fixture(scope="module")
def engine():
    from cjlib.engine import Engine

    return Engine.duckdb()


# ------------------------------------------------------------------------------------------------
# 1. trend_test
# ------------------------------------------------------------------------------------------------


def test_trend_test_matches_cochran_armitage():
    rng = np.random.default_rng(20260101)
    cases = []
    for _ in range(400):
        k = int(rng.integers(1, 9))
        n = [int(v) for v in rng.integers(1, 61, k)]
        p = rng.random()
        x = [int(rng.binomial(ni, p)) for ni in n]
        cases.append((x, n))
    cases += [([0, 0, 0], [5, 6, 7]), ([5, 6, 7], [5, 6, 7]), ([3], [9]), ([1, 2], [1, 2]),
              ([0, 4], [4, 4]), ([15, 10, 5], [30, 30, 30]), ([0, 1], [1, 1])]  # fmt: skip
    for x, n in cases:
        got = trend_test(np.array(x), np.array(n))
        want = cochran_armitage(x, n)
        for g, w, tol, what in ((got[0], want[0], ATOL, "slope"), (got[1], want[1], P_TOL, "p")):
            same = (math.isnan(g) and math.isnan(w)) or math.isclose(g, w, rel_tol=RTOL,
                                                                      abs_tol=tol)  # fmt: skip
            assert same, f"trend_test({x}, {n}) {what}: got {g!r}, expected {w!r}"
        if len(n) == 2 and 0 < sum(x) < sum(n):
            # two cohorts: the two-proportion chi-square test; the slope is p2 - p1
            assert math.isclose(got[1], pearson_2x2(x, n), rel_tol=RTOL, abs_tol=P_TOL), (x, n)
            assert math.isclose(got[0], x[1] / n[1] - x[0] / n[0], rel_tol=RTOL, abs_tol=ATOL)


def test_trend_test_keeps_the_scores_around_an_empty_group():
    """R ``prop.trend.test(x, n)`` scores the groups 1..k (``seq_along``) and its ``lm`` drops a
    group with n = 0 (x/n is NaN) without renumbering the others: here scores 0, 2, 3 (found by
    this file: cjlib renumbered them 0, 1, 2, giving slope 0.157, p = 0.339)."""
    got = trend_test(np.array([1, 0, 3, 2]), np.array([5, 0, 6, 4]))
    want = cochran_armitage([1, 3, 2], [5, 6, 4], scores=[0, 2, 3])
    assert got == pytest.approx(want, rel=1e-9)
    assert got[0] == pytest.approx(1 / 9)  # hand: WLS slope of (0.2, 0.5, 0.5) on (0, 2, 3)


# ------------------------------------------------------------------------------------------------
# 2. funnel_trends
# ------------------------------------------------------------------------------------------------

ABC = ["a", "b", "c"]
P_MID = (int(9.5 * 24 * US_H) + 7 * US_H, int(81 * 24 * US_H) + 13 * US_H)  # mid-week, off-grid

TREND_CONFIGS = {
    "week_closed": dict(steps=ABC, window="3D", min_size=5),
    "week_closed_boundary": dict(steps=ABC, window="4D", as_of="boundary", min_size=3),
    "week_open": dict(steps=ABC, mode="open", window="3D", min_size=3),
    "week_any_order": dict(steps=ABC, mode="any_order", window="2D", min_size=3),
    "week_no_window": dict(steps=ABC, window=None, as_of="later", min_size=3),
    "week_no_window_boundary": dict(steps=ABC, window=None, as_of="boundary", min_size=2),
    "week_period": dict(steps=ABC, window="3D", period=P_MID, as_of="later", min_size=3),
    "week_period_open_end": dict(steps=ABC, window="5D", period=(P_MID[0], None), min_size=3),
    "week_confidence_90": dict(steps=ABC, window="2D", min_size=1, confidence=0.9),
    "week_edge_as_of": dict(steps=ABC, window="2D", as_of="edge", min_size=1),
    "week_period_end_near_as_of": dict(steps=ABC, window="7D", as_of="later",
                                       period=(P_MID[0], "as_of-window"), min_size=2),
    "week_gaps_exclude": dict(steps=ABC, window="3D", max_gap={2: "30h"}, min_gap={3: "1h"},
                              exclude=["x"], as_of="later", min_size=3),
    "month_closed": dict(steps=ABC, cohort="month", window="10D", min_size=3),
    "month_boundary": dict(steps=ABC, cohort="month", window="2D", as_of="boundary",
                           min_size=3),
    "month_open_no_window": dict(steps=ABC, cohort="month", mode="open", window=None,
                                 min_size=3),
    "month_first_in_period": dict(steps=ABC, cohort="month", window="5D", period=P_MID,
                                  entry="first_in_period", as_of="later", min_size=3),
    "month_four_steps": dict(steps=["a", "b|d", "c", "x"], cohort="month", window="7D",
                             min_size=10),
}  # fmt: skip
TREND_SEEDS = range(4)
PACK = 2  # seeds per cjlib call
TREND_COLS = ["cohort", "entrants", "converted", "in_progress", "denominator", "conversion",
              "conversion_low", "conversion_high", "incomplete", "suppressed"]  # fmt: skip


def trends_reference(log: Log, cfg: dict) -> tuple[pd.DataFrame, float, float]:
    """Cohort table, slope and p-value from the unit reference.

    Reading: a cohort has a row when at least one unit entered in it (no rows for empty
    weeks). Reading: the trend uses the complete cohorts that are not suppressed (a suppressed
    cohort's counts are blank), scored by calendar position (weeks or months since the first
    of them), as the trends module doc says: an empty or suppressed week leaves a gap."""
    f = oracle_of(cfg, log)
    unit_kind = cfg.get("cohort", "week")
    window = us(cfg.get("window", "30D"))
    confidence = cfg.get("confidence", 0.95)
    min_size = cfg.get("min_size", 10)
    n_steps = len(cfg["steps"])
    groups: dict[pd.Timestamp, list[dict]] = {}
    for u in f.units(log):
        groups.setdefault(cohort_bounds(u["t_entry"], unit_kind)[0], []).append(u)
    as_of = ts_of(f.as_of)
    rows = []
    for start in sorted(groups):
        members = groups[start]
        end = cohort_bounds(int((start - T0) / pd.Timedelta(microseconds=1)), unit_kind)[1]
        period = period_of(cfg, log)
        if period and period[1] is not None:
            end = min(end, ts_of(period[1]))
        incomplete = end > as_of if window is None else end + pd.Timedelta(
            microseconds=window) > as_of  # fmt: skip
        entrants = len(members)
        converted = sum(u["depth"] == n_steps for u in members)
        in_progress = sum(u["status"] == "in_progress" for u in members)
        den = entrants - in_progress
        conv = converted / den if den else math.nan
        low, high = wilson(converted, den, confidence)
        suppressed = entrants < min_size
        if suppressed:
            entrants = converted = in_progress = den = pd.NA
            conv = low = high = math.nan
        rows.append((start, entrants, converted, in_progress, den, conv, low, high, incomplete,
                     suppressed))  # fmt: skip
    table = pd.DataFrame(rows, columns=TREND_COLS)
    done = table[~table["incomplete"] & ~table["suppressed"]]
    starts = list(done["cohort"])
    if unit_kind == "week":
        scores = [(c - starts[0]).days // 7 for c in starts] if starts else []
    else:
        scores = [(c.year - starts[0].year) * 12 + c.month - starts[0].month for c in starts]
    slope, p = cochran_armitage([int(v) for v in done["converted"]],
                                [int(v) for v in done["denominator"]], scores)  # fmt: skip
    return table, slope, p


def compare_trends(log: Log, cfg: dict, engine):
    kw = cj_options(cfg, log)
    for k in ("cohort", "min_size", "confidence"):
        if k in cfg:
            kw[k] = cfg[k]
    res = funnel_trends(to_frame(log), cfg["steps"], engine=engine, **kw)
    got = res.table[TREND_COLS].copy()
    got["cohort"] = [pd.Timestamp(c).tz_convert("UTC") if pd.Timestamp(c).tzinfo else
                     pd.Timestamp(c).tz_localize("UTC") for c in got["cohort"]]  # fmt: skip
    got["slope"], got["p_value"] = res.slope, res.p_value
    table, slope, p = trends_reference(log, cfg)
    want = table.assign(slope=slope, p_value=p)
    if len(want) == 0:
        want = want.astype(object)
    message = frame_difference(got.reset_index(drop=True), want, p_cols=("p_value",))
    return message, got.to_string(), want.to_string()


@pytest.mark.parametrize("name", list(TREND_CONFIGS))
def test_funnel_trends_matches_oracle(name, engine):
    cfg = TREND_CONFIGS[name]
    for seeds in batches(TREND_SEEDS, PACK):
        log = trimmed(packed_log(name, seeds), cfg)
        message, _, _ = compare_trends(log, cfg, engine)
        if message is not None:
            fail_with(f"funnel_trends {name} seeds {seeds}", log, cfg,
                      lambda sub: compare_trends(sub, cfg, engine))  # fmt: skip


# ------------------------------------------------------------------------------------------------
# 3. Time to convert: funnel().timing and funnel().km
# ------------------------------------------------------------------------------------------------

TIMING_CONFIGS = {
    "closed": dict(steps=ABC, window="3D"),
    "closed_no_window": dict(steps=ABC, window=None),
    "closed_later_as_of": dict(steps=ABC, window="2D", as_of="later"),
    "closed_gaps": dict(steps=ABC, window="4D", min_gap={3: "2h"}, max_gap={2: "20h", 3: "30h"},
                        as_of="later"),
    "closed_exclude": dict(steps=ABC, window="3D", exclude={"x": (1, 3), "d": (2, 3)}),
    "closed_period": dict(steps=ABC, window="3D", period=P_MID, entry="first_in_period"),
    "closed_four_steps_conf90": dict(steps=["a", "b|d", "c", "x"], window="5D",
                                     confidence=0.9),
    "closed_seconds": dict(steps=ABC, window="2D", jitter=True),
    "closed_resolution_15min": dict(steps=ABC, window="2D", jitter=True, resolution="15min"),
    "open": dict(steps=ABC, mode="open", window="3D", as_of="later"),
    "open_no_window_seconds": dict(steps=["a", "b", "c", "d"], mode="open", window=None,
                                   jitter=True),
    "any_order": dict(steps=ABC, mode="any_order", window="3D"),
}  # fmt: skip
TIMING_SEEDS = range(4)
TIMING_COLS = ["step", "label", "converters", "censored", "p25_hours", "median_hours",
               "p75_hours", "p90_hours", "km_median_hours"]  # fmt: skip
KM_COLS = ["step", "label", "hours", "at_risk", "events", "censored", "converted",
           "converted_low", "converted_high"]  # fmt: skip


def durations_by_step(log: Log, cfg: dict) -> dict[int, list[tuple[int, bool]]]:
    """Per step k, the floored duration (us) and whether it is an event, of every unit that
    reached step k-1 (ordered modes, k = 2..n).

    Reading (any order; the docs say "every unit that reached step k-1 contributes" and "in
    any-order mode the clock starts at entry", not which units contribute there): every unit
    contributes to every step k = 1..n, from its entry. A unit that has not yet done the
    steps before k can still reach k later (steps may come in any order), so it is at risk
    from entry; keeping only the units that ever reached k-1 would condition on the future.
    The literal reading gives different at-risk counts: see the report."""
    f = oracle_of(cfg, log)
    res = us(cfg["resolution"]) if "resolution" in cfg else None
    any_order = cfg.get("mode") == "any_order"
    out: dict[int, list[tuple[int, bool]]] = {}
    for u in f.units(log):
        for k in range(1 if any_order else 2, f.n + 1):
            if any_order:
                start = u["t_entry"]
            else:
                if k - 1 not in u["times"]:
                    continue
                start = u["times"][k - 1]
            if k in u["times"]:
                d, event = u["times"][k] - start, True
            else:
                d, event = u["end"] - start, False
            out.setdefault(k, []).append((floor_duration(d, res), event))
    return out


def timing_reference(log: Log, cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reading: a step gets a timing row when at least one unit contributes a duration to it."""
    labels = Funnel(cfg, 0).labels
    rows, curves = [], []
    for k, durs in sorted(durations_by_step(log, cfg).items()):
        conv = [d for d, e in durs if e]
        km = kaplan_meier(durs)
        # Reading: "half" is exact (the KM estimate is a ratio of integers), decided in fractions
        half = [r["time"] for r in km if r["converted_exact"] >= Fraction(1, 2)]
        rows.append(
            (k, labels[k - 1], len(conv), len(durs) - len(conv),
             *(type1_quantile(conv, q) / US_H for _, q in Q_LEVELS),
             half[0] / US_H if half else math.nan)
        )  # fmt: skip
        for r in km:
            curves.append((k, labels[k - 1], r["time"] / US_H, float(r["at_risk"]),
                           float(r["events"]), float(r["censored"]), r["converted"],
                           r["converted_low"], r["converted_high"]))  # fmt: skip
    return pd.DataFrame(rows, columns=TIMING_COLS), pd.DataFrame(curves, columns=KM_COLS)


def compare_timing(log: Log, cfg: dict, engine):
    kw = cj_options(cfg, log)
    for k in ("resolution", "confidence"):
        if k in cfg:
            kw[k] = cfg[k]
    res = funnel(to_frame(log), cfg["steps"], engine=engine, **kw)
    got_t = res.timing.reindex(columns=TIMING_COLS).reset_index(drop=True)
    got_k = res.km.reindex(columns=KM_COLS).reset_index(drop=True)
    want_t, want_k = timing_reference(log, cfg)
    # the curves first: a difference there explains one in the KM median
    message = frame_difference(got_k, want_k)
    if message is None:
        message = frame_difference(got_t, want_t)
        if message is not None:
            message = "timing: " + message
    else:
        message = "km: " + message
    if message is not None and "km_median_hours" in message:
        halves = [
            (k, r["time"] / US_H)
            for k, durs in durations_by_step(log, cfg).items()
            for r in kaplan_meier(durs)
            if r["converted_exact"] == Fraction(1, 2)
        ]
        message += (f" (the reference curve is exactly 1/2 at (step, hours) {halves}; see "
                    "test_km_median_when_exactly_half_convert)" if halves else "")  # fmt: skip
    shown = lambda t, k: f"{t.to_string()}\n\nkm:\n{k.to_string()}"  # noqa: E731
    return message, shown(got_t, got_k), shown(want_t, want_k)


@pytest.mark.parametrize("name", list(TIMING_CONFIGS))
def test_time_to_convert_matches_oracle(name, engine):
    cfg = TIMING_CONFIGS[name]
    for seeds in batches(TIMING_SEEDS, PACK):
        log = packed_log(name, seeds, jitter=cfg.get("jitter", False))
        message, _, _ = compare_timing(log, cfg, engine)
        if message is not None:
            fail_with(f"funnel() timing {name} seeds {seeds}", log, cfg,
                      lambda sub: compare_timing(sub, cfg, engine))  # fmt: skip


def test_km_median_when_exactly_half_convert(engine):
    """24 customers do A at hour 0; 12 of them do B at hours 1, 2, ..., 12, the others never
    (no window: censored at the data end, hour 200). The KM estimate after the 12th event is
    S = 23/24 * 22/23 * ... * 12/13 = 12/24 = 1/2 exactly: by 12 h half of the units have
    converted, so the KM median is 12 h ("the time by which half of the units would convert;
    missing when fewer than half ever do"). The p50 of the converters is 6 h (type 1)."""
    rows = [(f"u{i:02d}", 0, "A") for i in range(24)]
    rows += [(f"u{i:02d}", i + 1, "B") for i in range(12)]
    rows += [("zz", 200, "Z")]
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("hours"), unit="h")
    res = funnel(df, ["A", "B"], window=None, engine=engine)
    t = res.timing.set_index("step").loc[2]
    assert (t["converters"], t["censored"], t["median_hours"]) == (12, 12, 6.0)
    km = res.km[res.km["step"] == 2]
    assert km["converted"].iloc[-1] == pytest.approx(0.5, abs=1e-12)
    assert t["km_median_hours"] == 12.0, (
        f"KM median {t['km_median_hours']!r} h, expected 12 h: the curve reaches exactly one "
        f"half at 12 h (converted = {km['converted'].iloc[-1]!r} in floating point)"
    )


# ------------------------------------------------------------------------------------------------
# 4. stage_view
# ------------------------------------------------------------------------------------------------

HAND = dict(
    stages=("aware", "consider", "buy", "loyal"),
    events={"Ad View": "aware", "landing": "aware", "product-view": "consider",
            "add_to_cart": "consider", "checkout": "buy", "pay": "buy", "login": "loyal",
            "review": "loyal"},
    repeats={"buy": "loyal"},
)  # fmt: skip
HAND_POOL = ("ad_view", "Ad View", "landing", "product_view", "Product View", "add_to_cart",
             "checkout", "pay", "PAY", "login", "review", "scroll", "mystery")  # fmt: skip
FIVE_POOL = ("ad_impression", "page_view", "product_view", "add_to_cart", "purchase",
             "purchase", "order_completed", "Order Completed", "payment_done",
             "repeat_purchase", "login", "review_submitted", "newsletter_share", "mystery_event",
             "scroll")  # fmt: skip
# the first stage is absent from these pools: the stage funnel must start at the next one
HAND_POOL_LATE = tuple(e for e in HAND_POOL if e not in ("ad_view", "Ad View", "landing"))
FIVE_POOL_LATE = tuple(e for e in FIVE_POOL if e not in ("ad_impression", "page_view"))

STAGE_CASES = {
    "five_stage": (five_stage, FIVE_POOL, dict(min_customers=2, depth=4)),
    "five_stage_late_window": (five_stage, FIVE_POOL_LATE, dict(window="30h", min_customers=1,
                                                                depth=3, confidence=0.9)),
    "hand": (lambda: StageModel(**HAND, name="hand"), HAND_POOL, dict(min_customers=1, depth=5)),
    "hand_late": (lambda: StageModel(**HAND, name="hand"), HAND_POOL_LATE,
                  dict(min_customers=3, depth=2)),
}  # fmt: skip
STAGE_SEEDS = range(3)  # packed into one stage_view() call per case


def normalise(name: str) -> str:
    import re

    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def stage_index_of(model: StageModel, event: str) -> int | None:
    """Exact names (normalised: lower case, runs of spaces/hyphens as ``_``), then the patterns
    in order (first ``re.search`` hit); otherwise unmapped."""
    import re

    key = normalise(event)
    stage = model.events.get(key)
    if stage is None:
        stage = next((s for pat, s in model.patterns if re.search(pat, key)), None)
    return None if stage is None else model.stages.index(stage)


def staged(log: Log, model: StageModel) -> dict[str, list[tuple[int, int, str]]]:
    """Per customer, mapped events as (time, stage index after ``repeats``, event name)."""
    repeats = {model.stages.index(a): model.stages.index(b) for a, b in model.repeats.items()}
    out = {}
    for cust, evs in log.items():
        mapped = [(t, i, e) for t, e in evs if (i := stage_index_of(model, e)) is not None]
        first: dict[int, int] = {}
        for t, i, _ in mapped:
            if i in repeats:
                first[i] = min(first.get(i, t), t)
        out[cust] = [(t, repeats[i] if i in repeats and t > first[i] else i, e)
                     for t, i, e in mapped]  # fmt: skip
    return {c: v for c, v in out.items() if v}


def stage_paths(st: dict[str, list[tuple[int, int, str]]]) -> dict[str, list[int]]:
    """Collapsed stage steps: by time, then stage order, then event name; consecutive repeats
    of a stage are one step."""
    out = {}
    for cust, rows in st.items():
        idx = []
        for _, i, _ in sorted(rows):
            if not idx or idx[-1] != i:
                idx.append(i)
        out[cust] = idx
    return out


def stage_view_reference(log: Log, model: StageModel, opts: dict) -> dict[str, pd.DataFrame]:
    stages = list(model.stages)
    confidence = opts.get("confidence", 0.95)
    st = staged(log, model)
    first = min(i for rows in st.values() for _, i, _ in rows)
    last = max(i for rows in st.values() for _, i, _ in rows)  # later stages: not recorded
    # Reading: with only the last stage seen a two-step funnel cannot start there; the random
    # pools always map events to earlier stages, so that case does not arise here.
    steps = stages[first : max(last, first + 1) + 1]
    cfg = dict(steps=steps, window=opts.get("window"))
    # Reading: the stage funnel's data end is the last event in the data, mapped or not.
    f = Funnel(cfg, last_event(log))
    stage_log = {c: [(t, stages[i]) for t, i, _ in rows] for c, rows in st.items()}
    units = f.units(stage_log)
    n = len(steps)
    entrants = len(units)
    table = []
    for k in range(1, n + 1):
        reached = sum(u["depth"] >= k for u in units)
        stop = [u for u in units if u["depth"] == k - 1] if k > 1 else []
        prog = sum(u["status"] == "in_progress" for u in stop)
        drop = sum(u["status"] == "dropped" for u in stop)
        at_prev = entrants if k == 1 else sum(u["depth"] >= k - 1 for u in units)
        den = at_prev - prog
        den_start = entrants - sum(u["status"] == "in_progress" and u["depth"] < k for u in units)
        conv = reached / den if den else math.nan
        low, high = wilson(reached, den, confidence)
        cfs = reached / den_start if den_start else math.nan
        slow, shigh = wilson(reached, den_start, confidence)
        table.append((k, steps[k - 1], reached, entrants if k == 1 else 0, reached, prog, drop, 0,
                      conv, low, high, cfs, slow, shigh, 1 - conv))  # fmt: skip
    steps_cols = ["step", "label", "customers", "entered_here", "continued", "in_progress",
                  "dropped", "excluded", "conversion", "conversion_low", "conversion_high",
                  "conversion_from_start", "conversion_from_start_low",
                  "conversion_from_start_high", "drop_off"]  # fmt: skip
    steps_table = pd.DataFrame(table, columns=steps_cols)
    by_label = steps_table.set_index("label")
    refs = []
    for a, b, lost, source in INDUSTRY_REFERENCES.itertuples(index=False):
        # Reading: our figure needs both stages in the stage funnel (a skipped stage was not
        # measured); lost share = drop-off at the later stage, interval 1 - its conversion's.
        if a in by_label.index and b in by_label.index:
            r = by_label.loc[b]
            ours = (r["drop_off"], 1 - r["conversion_high"], 1 - r["conversion_low"])
        else:
            ours = (math.nan, math.nan, math.nan)
        refs.append((a, b, lost, source, *ours))
    references = pd.DataFrame(refs, columns=["from_stage", "to_stage", "lost_share", "source",
                                             "our_lost_share", "our_low", "our_high"])  # fmt: skip
    # furthest stage
    furthest = Counter(max(i for _, i, _ in rows) for rows in st.values())
    total = len(st)
    frows = []
    for i, stage in enumerate(stages):
        c = furthest.get(i, 0)
        r = sum(v for j, v in furthest.items() if j >= i)
        frows.append((stage, c, c / total, *wilson(c, total, confidence), r, r / total,
                      *wilson(r, total, confidence)))  # fmt: skip
    furthest_table = pd.DataFrame(frows, columns=[
        "stage", "customers", "share", "share_low", "share_high", "reached", "reached_share",
        "reached_low", "reached_high"])  # fmt: skip
    # Sankey links. Reading: positions 1..depth; a path shorter than depth goes on to
    # "(len+1). (end)", a longer one is cut at depth (its end lies outside the view).
    paths = stage_paths(st)
    counts = Counter(tuple(p) for p in paths.values())
    depth = opts.get("depth", 4)
    links: Counter = Counter()
    for path, c in counts.items():
        if c < opts.get("min_customers", 10):
            continue
        names = [stages[i] for i in path][:depth]
        if len(names) < depth:
            names.append("(end)")
        for j in range(len(names) - 1):
            links[f"{j + 1}. {names[j]}", f"{j + 2}. {names[j + 1]}"] += c
    link_rows = sorted((a, b, c) for (a, b), c in links.items())
    links_table = pd.DataFrame(link_rows, columns=["source", "target", "customers"])
    # regressions among stage-to-stage moves of the collapsed steps
    moves = [(p[j], p[j + 1]) for p in paths.values() for j in range(len(p) - 1)]
    back = sum(b < a for a, b in moves)
    share = back / len(moves) if moves else math.nan
    return dict(
        steps=steps_table,
        references=references,
        furthest=furthest_table,
        links=links_table,
        meta=pd.DataFrame(
            [(tuple(stages[:first]), tuple(stages[first + len(steps) :]), share)],
            columns=["skipped", "trailing", "regressions"],
        ),
    )


def compare_stage_view(log: Log, build, opts: dict, engine):
    model = build()
    view = stage_view(to_frame(log), model, engine=engine, **opts)
    want = stage_view_reference(log, model, opts)
    got = dict(
        steps=view.funnel.steps[list(want["steps"].columns)],
        references=view.references[list(want["references"].columns)],
        furthest=view.furthest[list(want["furthest"].columns)],
        links=view.links[["source", "target", "customers"]]
        .sort_values(["source", "target"])  # Reading: the order of links is not documented
        .reset_index(drop=True),
        meta=pd.DataFrame(
            [(tuple(view.skipped), tuple(view.trailing), view.regression_share())],
            columns=["skipped", "trailing", "regressions"],
        ),  # fmt: skip
    )
    for key in want:
        message = frame_difference(got[key].reset_index(drop=True), want[key])
        if message is not None:
            return (f"{key}: {message}", got[key].to_string(), want[key].to_string())
    return None, "", ""


@pytest.mark.parametrize("name", list(STAGE_CASES))
def test_stage_view_matches_oracle(name, engine):
    build, pool, opts = STAGE_CASES[name]
    for seeds in batches(STAGE_SEEDS, len(STAGE_SEEDS)):
        log = packed_log(name, seeds, vocab=pool, n_max=120, max_events=8)
        message, _, _ = compare_stage_view(log, build, opts, engine)
        if message is not None:
            fail_with(f"stage_view {name} seeds {seeds}", log, dict(opts, model=name),
                      lambda sub: compare_stage_view(sub, build, opts, engine))  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The references themselves, and what the random logs exercise
# ------------------------------------------------------------------------------------------------


def test_references_on_hand_counted_cases():
    """The reference statistics on small cases counted by hand (no cjlib call)."""
    # R: prop.trend.test(c(15, 10, 5), c(30, 30, 30)): X-squared = 7.5, p = 0.006170
    slope, p = cochran_armitage([15, 10, 5], [30, 30, 30])
    assert slope == pytest.approx(-1 / 6) and p == pytest.approx(0.0061698, abs=1e-7)
    # KM, test_funnels' toy log A->B: events at 0 (e), 1 (a), 2 (b, d) h; censored at 0 (g)
    # and 48 h (f). S(0) = 5/6, S(1) = 5/6 * 3/4, S(2) = 5/6 * 3/4 * 1/3.
    km = kaplan_meier([(0, True), (0, False), (1, True), (2, True), (2, True), (48, False)])
    assert [r["at_risk"] for r in km] == [6, 4, 3]
    assert [r["censored"] for r in km] == [1, 0, 0]
    assert km[-1]["converted_exact"] == 1 - Fraction(5, 6) * Fraction(3, 4) * Fraction(1, 3)
    # type 1: of 1 h and 2 h the median is 1 h; p90 of 1..10 is 9
    assert type1_quantile([2, 1], Fraction(1, 2)) == 1
    assert type1_quantile(list(range(1, 11)), Fraction(9, 10)) == 9
    assert floor_duration(US_H - 1, None) == US_H - US_S
    assert floor_duration(US_H + 59 * US_S, None) == US_H
    # the funnel reference: test_funnels' toy log, closed, 48 h window, data end hour 100
    toy = {"a": [(0, "A"), (1, "B"), (2, "C")], "b": [(0, "A"), (1, "C"), (2, "B")],
           "d": [(0, "A"), (1, "X"), (2, "B"), (3, "C")], "e": [(0, "A"), (0, "B"), (0, "C")],
           "f": [(0, "A"), (50, "B"), (51, "C")], "g": [(100, "A")]}  # fmt: skip
    toy = {c: [(h * US_H, e) for h, e in evs] for c, evs in toy.items()}
    units = Funnel(dict(steps=["A", "B", "C"], window="48h"), 100 * US_H).units(toy)
    assert sorted(u["depth"] for u in units) == [1, 1, 2, 3, 3, 3]
    assert sorted(u["status"] for u in units).count("in_progress") == 1


def test_generated_logs_exercise_the_rules():
    """The random logs contain what the rules are about: complete, incomplete and suppressed
    cohorts, trends with a p-value, in-progress and excluded units, ties between an event and a
    censoring, durations both sides of an hour, KM curves past one half."""
    seen: Counter = Counter()
    for name, cfg in TREND_CONFIGS.items():
        for seeds in batches(TREND_SEEDS, PACK):
            log = trimmed(packed_log(name, seeds), cfg)
            table, _, p = trends_reference(log, cfg)
            units = oracle_of(cfg, log).units(log)
            end = data_end(log, cfg)
            seen["windows ending at the data end"] += sum(
                u["t_entry"] + (us(cfg["window"]) or INF) == end for u in units
            )
            seen["complete cohorts"] += int((~table["incomplete"]).sum())
            seen["incomplete cohorts"] += int(table["incomplete"].sum())
            seen["suppressed cohorts"] += int(table["suppressed"].sum())
            seen["trends tested"] += not math.isnan(p)
    for name, cfg in TIMING_CONFIGS.items():
        for seeds in batches(TIMING_SEEDS, PACK):
            log = packed_log(name, seeds, jitter=cfg.get("jitter", False))
            units = oracle_of(cfg, log).units(log)
            seen["in progress"] += sum(u["status"] == "in_progress" for u in units)
            seen["excluded"] += sum(u["status"] == "excluded" for u in units)
            for durs in durations_by_step(log, cfg).values():
                ev = {d for d, e in durs if e}
                seen["event/censoring ties"] += len(ev & {d for d, e in durs if not e})
                seen["durations under an hour"] += sum(0 < d < US_H for d, _ in durs)
                seen["durations from an hour"] += sum(d >= US_H for d, _ in durs)
                km = kaplan_meier(durs)
                seen["KM medians"] += any(r["converted_exact"] >= Fraction(1, 2) for r in km)
    print(dict(seen))
    assert len(seen) == 11 and all(seen.values()), seen
