"""Differential test of ``cjlib.funnels.funnel`` against a brute-force reference ("oracle").

The oracle below is written from the documented rules only (the module docstring of
``cjlib/funnels/spec.py``, the ``funnel()`` docstring and the column definitions of
``cjlib/funnels/summary.py``); it uses no cjlib code. It walks each customer's events sorted by
timestamp, then event name, then session (the hold key), and decides for every unit (customer,
held attempt or journey) its entry step, the last step reached and, for units that did not
convert, whether they are in progress, dropped or excluded. Those are then counted per step
exactly as the summary columns are defined (``customers``, ``in_progress``, ``dropped``,
``excluded``, ``entered_here`` in open mode, and ``entered``).

Random logs: per seed 5-30 customers with 1-15 events each, 4-6 event names, whole-hour
timestamps (so equal timestamps, equal gaps and windows ending exactly on an event are common)
and a ``session_id`` (sometimes missing) for ``hold``. Each configuration runs 32 seeds; to keep
the run short the seeds are packed 8 to a ``funnel()`` call (customer ids are prefixed by the
seed; customers never interact, only the data end and the event names present are shared).
When cjlib and the oracle disagree the log is shrunk (fewest customers, then fewest events) and
the minimal log is printed with both tables.

Where the documentation leaves a choice open the oracle takes the reading stated at the
definition concerned (search for "Reading:"); for most of them that is cjlib's reading, so that
the comparison stays useful. When first run, the oracle found four cjlib bugs, fixed since (see
"Found:" below and ``test_strict_hold_ignores_other_customers``).
``test_oracle_reproduces_hand_counts`` checks the oracle itself on the hand-counted examples of
``tests/test_funnels.py``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from conftest import Shrinker
from test_funnels import ROWS as TOY

from cjlib.funnels import funnel

T0 = pd.Timestamp("2026-01-01", tz="UTC")
INF = math.inf
SEEDS = range(32)
PACK = 8  # seeds per funnel() call
MAX_HOUR = 96  # events fall in hours 0..96; the explicit data end is hour 100
AS_OF = 100.0
PERIOD = (20.5, 60.5)  # off the hour grid: the period bounds never tie with an event
STATUS_RANK = {"in_progress": 3, "dropped": 2, "excluded": 1, "converted": 0}
COUNTED = ["customers", "in_progress", "dropped", "excluded"]


@dataclass(frozen=True)
class Ev:
    """One event: hours after T0, event name, session (None = missing)."""

    t: float
    name: str
    sess: str | None = None


# --------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------


def hours(value) -> float | None:
    return None if value is None else pd.Timedelta(value) / pd.Timedelta(hours=1)


class Oracle:
    """The documented funnel rules, literally, one unit at a time."""

    def __init__(self, cfg: dict, as_of: float):
        self.steps = [frozenset(s.split("|")) for s in cfg["steps"]]
        self.n = n = len(self.steps)
        self.mode = cfg.get("mode", "closed")
        self.strict = cfg.get("strict", False)
        self.window = hours(cfg.get("window", "30D"))
        self.min_gap = self._per_step(cfg.get("min_gap"))
        self.max_gap = self._per_step(cfg.get("max_gap"))
        excl = cfg.get("exclude") or []
        spans = excl.items() if isinstance(excl, dict) else [(x, (1, n)) for x in excl]
        self.exclude = [(frozenset(x.split("|")), a, b) for x, (a, b) in spans]
        self.hold = cfg.get("hold")
        self.entry = cfg.get("entry", "first")
        self.period = cfg.get("period")
        self.journeys = cfg.get("count", "customers") == "journeys"
        self.as_of = as_of

    def _per_step(self, value) -> list[float | None]:
        """Index = step number (2..n); entries 0 and 1 unused."""
        out: list[float | None] = [None] * (self.n + 1)
        if value is None:
            return out
        if isinstance(value, dict):
            for k, v in value.items():
                out[k] = hours(v)
        elif isinstance(value, list):
            for k, v in enumerate(value, start=2):
                out[k] = hours(v)
        else:
            out[2:] = [hours(value)] * (self.n - 1)
        return out

    # -- helpers ----------------------------------------------------------------------------

    def in_period(self, t: float) -> bool:
        """Reading (cjlib's; the docs do not say): the start is inclusive, the end exclusive. The
        random periods are off the hour grid, so no event falls on a bound there."""
        if self.period is None:
            return True
        start, end = self.period
        return (start is None or start <= t) and (end is None or t < end)

    def matches(self, k: int, ev: Ev) -> bool:
        return ev.name in self.steps[k - 1]

    def funnel_event(self, ev: Ev) -> bool:
        return any(ev.name in s for s in self.steps)

    def excluded_names(self, k: int) -> set[str]:
        """Exclusion events that apply between step k-1 and step k."""
        out: set[str] = set()
        for names, a, b in self.exclude:
            if a <= k - 1 and k <= b:
                out |= names
        return out

    def pick_entry(self, evs: list[Ev], is_entry) -> int | None:
        """entry="first": the first ever entry, kept when inside the period;
        "first_in_period": the first entry inside the period."""
        cands = [i for i, e in enumerate(evs) if is_entry(e)]
        if self.entry == "first":
            return cands[0] if cands and self.in_period(evs[cands[0]].t) else None
        inside = [i for i in cands if self.in_period(evs[i].t)]
        return inside[0] if inside else None

    # -- ordered modes (closed, open) -------------------------------------------------------

    def run_ordered(
        self, evs: list[Ev], pos: int, entry_step: int, rank: list[int] | None = None
    ) -> tuple[int, int, str]:
        """From the entry at ``evs[pos]`` (step ``entry_step``) match the following steps.
        ``rank``: each event's place in the customer's own sequence (for strict)."""
        rank = list(range(len(evs))) if rank is None else rank
        t_entry = evs[pos].t
        used = {pos}
        at = {entry_step: t_entry}  # time each step was reached
        t_prev, k = t_entry, entry_step  # k: last step reached
        while k < self.n:
            nxt = k + 1
            # Ties: a same-time occurrence follows the previous step unless the two step
            # definitions overlap (then strictly later); one event never satisfies two steps.
            overlap = bool(self.steps[nxt - 1] & self.steps[k - 1])
            # A step that can be the same event as an earlier step (a repeated step, "a" after
            # "a|b") must come strictly after it, also when another step lies in between.
            same = [at[j] for j in at if self.steps[j - 1] & self.steps[nxt - 1]]
            after = max(same, default=-INF)
            lo, hi = self.min_gap[nxt], self.max_gap[nxt]

            def follows(q: int, nxt=nxt, t_prev=t_prev, overlap=overlap, lo=lo, after=after):
                e = evs[q]
                if q in used or not self.matches(nxt, e):
                    return False
                if e.t < t_prev or (overlap and e.t == t_prev) or e.t <= after:
                    return False
                return lo is None or e.t - t_prev >= lo

            if self.strict:  # the very next event (by timestamp, then name) must be the step
                nxt_ok = pos + 1 < len(evs) and rank[pos + 1] == rank[pos] + 1
                cands = [pos + 1] if nxt_ok and follows(pos + 1) else []
            else:  # greedy: the earliest qualifying occurrence, later ones are not searched
                cands = [q for q in range(len(evs)) if follows(q)]
            match = cands[0] if cands else None
            if match is not None:
                t = evs[match].t
                too_late = (hi is not None and t - t_prev > hi) or (
                    self.window is not None and t - t_entry > self.window
                )
                if too_late:
                    match = None
            # Exclusions: strictly after step k and strictly before step k+1.
            # When step k+1 is never reached, an exclusion event counts while the customer could
            # still have done the step (window and maximum gap still open).
            xs = self.excluded_names(nxt)
            if xs:
                if match is not None:
                    until = evs[match].t
                    hit = any(e.name in xs and t_prev < e.t < until for e in evs)
                else:
                    limit = INF
                    if self.window is not None:
                        limit = min(limit, t_entry + self.window)
                    if hi is not None:
                        limit = min(limit, t_prev + hi)
                    hit = any(e.name in xs and t_prev < e.t <= limit for e in evs)
                if hit:
                    return entry_step, k, "excluded"
            if match is None:
                return entry_step, k, self.status_open(t_entry, hi, t_prev)
            used.add(match)
            pos, t_prev, k = match, evs[match].t, nxt
            at[k] = t_prev
        return entry_step, k, "converted"

    def status_open(self, t_entry: float, hi: float | None, t_prev: float) -> str:
        """In progress when the window from entry and the step's maximum gap are both still open
        at the data end. Reading: "still open" is strict (a window ending exactly at the data end
        is closed: every event up to the data end is already in the data)."""
        if self.window is None:
            return "dropped"
        if not self.as_of < t_entry + self.window:
            return "dropped"
        if hi is not None and not self.as_of < t_prev + hi:
            return "dropped"
        return "in_progress"

    # -- units ------------------------------------------------------------------------------

    def units_of(self, evs: list[Ev], rank: list[int] | None = None) -> list[tuple[int, int, str]]:
        """The units of one customer's (or one held attempt's) events, sorted; ``rank`` as in
        :meth:`run_ordered`."""
        if self.mode == "any_order":
            pos = self.pick_entry(evs, self.funnel_event)
            return [] if pos is None else [self.run_any_order(evs, pos)]
        if self.mode == "open":
            pos = self.pick_entry(evs, self.funnel_event)
            if pos is None:
                return []
            # Reading: the entry is at the time of the first funnel event; events at that same
            # time are simultaneous (see Ties), so the entry step is the lowest step any of them
            # matches (not the step of the alphabetically first one).
            step_of = {
                q: min(k for k in range(1, self.n + 1) if self.matches(k, e))
                for q, e in enumerate(evs)
                if e.t == evs[pos].t and self.funnel_event(e)
            }
            pos = min(step_of, key=lambda q: (step_of[q], q))
            return [self.run_ordered(evs, pos, step_of[pos], rank)]
        if self.journeys:
            # Every occurrence of step 1 starts a journey running until the next occurrence.
            # Reading (cjlib's; the docs do not say): occurrences at the same time start one
            # journey; a journey holds the events at or after its entry time and strictly
            # before the next entry time.
            starts = sorted({e.t for e in evs if self.matches(1, e)})
            out = []
            for j, t_s in enumerate(starts):
                t_next = starts[j + 1] if j + 1 < len(starts) else INF
                sub = [e for e in evs if t_s <= e.t < t_next]
                pos = next(q for q, e in enumerate(sub) if self.matches(1, e))
                entry, k, status = self.run_ordered(sub, pos, 1)
                if status == "in_progress" and t_next <= self.as_of:
                    status = "dropped"  # the next entry ended the journey (found: in progress)
                out.append((entry, k, status))
            return out
        pos = self.pick_entry(evs, lambda e: self.matches(1, e))
        return [] if pos is None else [self.run_ordered(evs, pos, 1, rank)]

    def run_any_order(self, evs: list[Ev], pos: int) -> tuple[int, int, str]:
        """Step k is reached when steps 1..k all occur, in any order, within the window from the
        entry (the first funnel event)."""
        t_entry = evs[pos].t
        end = INF if self.window is None else t_entry + self.window
        seen = [e for e in evs if t_entry <= e.t <= end]
        depth = 0
        for k in range(1, self.n + 1):
            if not self.distinct_events(k, seen):
                break
            depth = k
        if depth == self.n:
            return 1, depth, "converted"
        return 1, depth, self.status_open(t_entry, None, t_entry)

    def distinct_events(self, k: int, seen: list[Ev]) -> bool:
        """Steps 1..k can each be given their own event (one event never satisfies two steps):
        a bipartite matching by augmenting paths."""
        owner: dict[int, int] = {}  # event index -> step

        def place(step: int, tried: set[int]) -> bool:
            for q, e in enumerate(seen):
                if q in tried or not self.matches(step, e):
                    continue
                tried.add(q)
                if q not in owner or place(owner[q], tried):
                    owner[q] = step
                    return True
            return False

        return all(place(step, set()) for step in range(1, k + 1))

    def customer_units(self, evs: list[Ev]) -> list[tuple[int, int, str]]:
        evs = sorted(evs, key=lambda e: (e.t, e.name, e.sess or ""))
        if self.hold is None:
            return self.units_of(evs)
        # Hold: every attempt uses one session's events (missing sessions left out); the
        # customer counts with the furthest attempt. Reading (the docs do not say): equal depth
        # -> the earliest entry step, then in progress before dropped before excluded.
        # Reading (cjlib's) for strict: "the customer's very next event" is the next of all the
        # customer's events that have a value (any session), and it must share the session.
        evs = [e for e in evs if e.sess is not None]
        attempts = []
        for s in sorted({e.sess for e in evs}):
            rank = [r for r, e in enumerate(evs) if e.sess == s]
            attempts += self.units_of([evs[r] for r in rank], rank)
        if not attempts or self.journeys:
            return attempts
        return [max(attempts, key=lambda u: (u[1], -u[0], STATUS_RANK[u[2]]))]

    def table(self, log: dict[str, list[Ev]]) -> dict[str, list[int]]:
        """Per-step counts as defined in ``cjlib/funnels/summary.py``."""
        n = self.n
        out = {c: [0] * n for c in [*COUNTED, "entered_here"]}
        entered = 0
        for evs in log.values():
            for entry_step, depth, status in self.customer_units(evs):
                entered += 1
                first = 1 if self.mode == "any_order" else entry_step
                out["entered_here"][entry_step - 1] += 1
                for k in range(first, depth + 1):
                    out["customers"][k - 1] += 1
                if status != "converted":  # stopped before step depth + 1
                    out[status][depth] += 1
        out["entered"] = [entered]
        return out


# --------------------------------------------------------------------------------------------
# cjlib side, random logs, shrinking
# --------------------------------------------------------------------------------------------


def to_frame(log: dict[str, list[Ev]]) -> pd.DataFrame:
    rows = [(c, e.t, e.name, e.sess) for c, evs in log.items() for e in evs]
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event", "session_id"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("hours").astype(float), unit="h")
    return df[["customer_id", "timestamp", "event", "session_id"]]


def cj_kwargs(cfg: dict) -> dict:
    kw = {k: v for k, v in cfg.items() if k not in ("steps", "vocab", "as_of", "period")}
    if cfg.get("as_of"):
        kw["as_of"] = T0 + pd.Timedelta(hours=AS_OF)
    if cfg.get("period"):
        kw["period"] = tuple(T0 + pd.Timedelta(hours=h) for h in cfg["period"])
    return kw


def data_end(log: dict[str, list[Ev]], cfg: dict) -> float:
    return AS_OF if cfg.get("as_of") else max(e.t for evs in log.values() for e in evs)


def cj_table(log: dict[str, list[Ev]], cfg: dict, engine) -> dict[str, list[int]]:
    res = funnel(to_frame(log), cfg["steps"], engine=engine, **cj_kwargs(cfg))
    out = {c: [int(v) for v in res.steps[c]] for c in [*COUNTED, "entered_here"]}
    out["entered"] = [int(res.entered)]
    return out


def oracle_table(log: dict[str, list[Ev]], cfg: dict) -> dict[str, list[int]]:
    return Oracle(cfg, data_end(log, cfg)).table(log)


def compared(table: dict[str, list[int]], cfg: dict) -> dict[str, list[int]]:
    """entered_here is only meaningful in open mode (step 1 = everyone otherwise)."""
    keep = [*COUNTED, "entered"] + (["entered_here"] if cfg.get("mode") == "open" else [])
    return {k: table[k] for k in keep}


def random_log(cfg: dict, seed: int) -> dict[str, list[Ev]]:
    vocab = cfg.get("vocab", list("abcdx"))
    rng = np.random.default_rng([zlib.crc32(repr(sorted(cfg.items())).encode()), seed])
    log = {}
    for c in range(int(rng.integers(5, 31))):
        n_ev = int(rng.integers(1, 16))
        span = int(rng.choice([2, 6, 24, 60, 96]))
        start = int(rng.integers(0, MAX_HOUR - span + 1))
        ts = start + rng.integers(0, span + 1, n_ev)
        names = rng.choice(vocab, n_ev)
        sess = rng.choice(
            np.array(["s1", "s2", "s3", None], dtype=object), n_ev, p=[0.4, 0.3, 0.15, 0.15]
        )
        log[f"s{seed}_c{c}"] = [
            Ev(float(t), str(e), s) for t, e, s in zip(ts, names, sess, strict=True)
        ]
    return log


def needed_names(cfg: dict) -> set[str]:
    excl = cfg.get("exclude") or []
    names = [*cfg["steps"], *excl]
    return {x for s in names for x in s.split("|")}


def with_filler(log: dict[str, list[Ev]], cfg: dict) -> dict[str, list[Ev]]:
    """cjlib rejects a step or exclusion event absent from the data: add a filler customer."""
    present = {e.name for evs in log.values() for e in evs}
    missing = sorted(needed_names(cfg) - present)
    return {**log, "zz_filler": [Ev(0.0, m, "s1") for m in missing]} if missing else log


def differs(log: dict[str, list[Ev]], cfg: dict, engine) -> bool:
    log = with_filler(log, cfg)
    if not log:
        return False
    try:
        got = cj_table(log, cfg, engine)
    except ValueError:  # an event the definition needs vanished while shrinking
        return False
    return compared(got, cfg) != compared(oracle_table(log, cfg), cfg)


def shrink(log: dict[str, list[Ev]], cfg: dict, engine, budget: int = 60):
    """Delta-debugging: drop chunks of customers, then chunks of each customer's events, while
    cjlib and the oracle still disagree."""
    ddmin = Shrinker(budget).ddmin

    keys = ddmin(list(log), lambda ks: differs({k: log[k] for k in ks}, cfg, engine))
    log = {k: log[k] for k in keys}
    for k in list(log):
        log[k] = ddmin(log[k], lambda evs, k=k: differs({**log, k: evs}, cfg, engine))
    return log


def show_log(log: dict[str, list[Ev]]) -> str:
    rows = [
        (c, e.t, e.name, e.sess)
        for c, evs in log.items()
        for e in sorted(evs, key=lambda e: (e.t, e.name))
    ]
    df = pd.DataFrame(rows, columns=["customer", "hour", "event", "session"])
    return df.to_string(index=False)


def show_table(table: dict[str, list[int]]) -> str:
    return "\n".join(f"  {k:13s} {v}" for k, v in table.items())


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

W = "2D"
CONFIGS = {
    "closed": dict(steps=["a", "b", "c"], window=W),
    "closed_as_of": dict(steps=["a", "b", "c"], window=W, as_of=True),
    "closed_no_window": dict(steps=["a", "b", "c"], window=None),
    "closed_4_steps_1D": dict(steps=["a", "b", "c", "d"], window="1D", as_of=True),
    "closed_names_reversed": dict(steps=["c", "b", "a"], window=W, as_of=True),
    "closed_strict": dict(steps=["a", "b", "c"], strict=True, window=W, as_of=True),
    "closed_strict_reversed": dict(steps=["c", "b", "a"], strict=True, window=None),
    "open": dict(steps=["a", "b", "c"], mode="open", window=W, as_of=True),
    "open_no_window": dict(steps=["a", "b", "c", "d"], mode="open", window=None),
    "open_names_reversed": dict(steps=["c", "a", "b"], mode="open", window=W, as_of=True),
    "open_strict": dict(steps=["a", "b", "c"], mode="open", strict=True, window=W, as_of=True),
    "any_order": dict(steps=["a", "b", "c"], mode="any_order", window=W, as_of=True),
    "any_order_no_window": dict(steps=["a", "b", "c"], mode="any_order", window=None),
    "any_order_default_as_of": dict(steps=["c", "a", "b"], mode="any_order", window="1D"),
    "gaps": dict(steps=["a", "b", "c"], window=W, as_of=True, min_gap={2: "2h"},
                 max_gap=[None, "6h"]),
    "gaps_every_step": dict(steps=["a", "b", "c"], window="3D", as_of=True, min_gap="1h",
                            max_gap="12h"),
    "gaps_no_window": dict(steps=["a", "b", "c"], window=None, min_gap={3: "3h"},
                           max_gap={2: "4h"}),
    "gaps_open": dict(steps=["a", "b", "c"], mode="open", window=W, as_of=True,
                      min_gap={3: "1h"}, max_gap=[ "5h", None]),
    "gaps_strict": dict(steps=["a", "b", "c"], strict=True, window=W, as_of=True,
                        max_gap="10h"),
    "exclude": dict(steps=["a", "b", "c"], window=W, as_of=True, exclude=["x"]),
    "exclude_no_window": dict(steps=["a", "b", "c"], window=None, exclude=["x"]),
    "exclude_range": dict(steps=["a", "b", "c", "d"], window=W, as_of=True,
                          exclude={"x": (2, 4), "e": (1, 2)}, vocab=list("abcdex")),
    # Found: step 3 never reached, its maximum gap closed, then x inside the window: cjlib said
    # excluded (it cut exclusions off at the window end but not at the maximum gap).
    "exclude_gaps": dict(steps=["a", "b", "c"], window=W, as_of=True, exclude=["x"],
                         min_gap={2: "1h"}, max_gap={3: "8h"}),
    "exclude_min_gap": dict(steps=["a", "b", "c"], window=W, as_of=True, exclude=["x"],
                            min_gap={2: "2h", 3: "1h"}),
    "exclude_strict": dict(steps=["a", "b", "c"], strict=True, window=W, as_of=True,
                           exclude=["x"]),
    "exclude_open": dict(steps=["a", "b", "c"], mode="open", window=W, as_of=True,
                         exclude=["x"]),
    "hold": dict(steps=["a", "b", "c"], window=W, as_of=True, hold="session_id"),
    "hold_no_window": dict(steps=["a", "b", "c"], window=None, hold="session_id"),
    "hold_strict": dict(steps=["a", "b", "c"], strict=True, window=W, as_of=True,
                        hold="session_id"),
    "hold_open": dict(steps=["a", "b", "c"], mode="open", window=W, as_of=True,
                      hold="session_id"),
    "entry_first_period": dict(steps=["a", "b", "c"], window=W, as_of=True, period=PERIOD),
    "entry_first_in_period": dict(steps=["a", "b", "c"], window=W, as_of=True, period=PERIOD,
                                  entry="first_in_period"),
    "entry_first_in_period_open": dict(steps=["a", "b", "c"], mode="open", window=W,
                                       as_of=True, period=PERIOD, entry="first_in_period"),
    "entry_first_in_period_any_order": dict(steps=["a", "b", "c"], mode="any_order", window=W,
                                            as_of=True, period=PERIOD,
                                            entry="first_in_period"),
    "journeys": dict(steps=["a", "b", "c"], window=W, as_of=True, count="journeys"),
    "journeys_no_window": dict(steps=["a", "b", "c"], window=None, count="journeys"),
    "journeys_exclude": dict(steps=["a", "b", "c"], window=W, as_of=True, count="journeys",
                             exclude=["x"]),
    "alternatives": dict(steps=["a|b", "c", "d|e"], window=W, as_of=True,
                         vocab=list("abcdex")),
    "alternatives_overlap": dict(steps=["a", "a|b", "c"], window=W, as_of=True),
    "repeated_step": dict(steps=["a", "b", "b"], window=W, as_of=True),
    "repeated_step_open": dict(steps=["a", "b", "b"], mode="open", window=W, as_of=True),
    "alternatives_overlap_open": dict(steps=["a", "a|b", "c"], mode="open", window=W,
                                      as_of=True),
    "exclude_step_event": dict(steps=["a", "b", "c"], window=W, as_of=True,
                               exclude={"c": (1, 2)}),
    "hold_exclude": dict(steps=["a", "b", "c"], window=W, as_of=True, hold="session_id",
                         exclude=["x"]),
    "journeys_hold": dict(steps=["a", "b", "c"], window=W, as_of=True, hold="session_id",
                          count="journeys"),
    "repeated_step_strict": dict(steps=["a", "b", "b"], strict=True, window=W, as_of=True),
    # Found: cjlib let the single "a" be step 1 and step 3 when "b" was at the same time.
    "repeated_non_adjacent": dict(steps=["a", "b", "a"], window=W, as_of=True),
    "overlap_non_adjacent": dict(steps=["a|b", "c", "b|d"], window=W, as_of=True),
    "overlap_non_adjacent_open": dict(steps=["a", "b", "a|c", "d"], mode="open", window=W,
                                      as_of=True),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CONFIGS))
def test_funnel_matches_oracle(name, engine):
    cfg = CONFIGS[name]
    seeds = list(SEEDS)
    for i in range(0, len(seeds), PACK):
        batch = seeds[i : i + PACK]
        log = with_filler({k: v for s in batch for k, v in random_log(cfg, s).items()}, cfg)
        got = compared(cj_table(log, cfg, engine), cfg)
        want = compared(oracle_table(log, cfg), cfg)
        if got == want:
            continue
        small = with_filler(shrink(log, cfg, engine), cfg)
        if differs(small, cfg, engine):
            log = small
        msg = (
            f"\nconfiguration {name}: {cfg}\nseeds {batch}; minimal log (hours after {T0}):\n"
            f"{show_log(log)}\ndata end: hour {data_end(log, cfg)}\n"
            f"cjlib:\n{show_table(compared(cj_table(log, cfg, engine), cfg))}\n"
            f"oracle:\n{show_table(compared(oracle_table(log, cfg), cfg))}"
        )
        print(msg)
        pytest.fail(msg)


def test_any_order_refuses_overlapping_steps(engine):
    """Found: in any-order mode one "b" counted for both "a|b" and "b" (one event never
    satisfies two steps). Overlapping steps are refused there, naming the steps and the event."""
    log = with_filler({"u": [Ev(0, "b"), Ev(1, "c")]}, dict(steps=["a|b", "b", "c"]))
    with pytest.raises(ValueError, match=r"'a or b' and 'b' both match event 'b'.*any_order"):
        funnel(to_frame(log), ["a|b", "b", "c"], mode="any_order", engine=engine)


def test_strict_hold_ignores_other_customers(engine):
    """Found: with strict + hold a customer's result depended on other customers in the data.

    u runs a -> b -> c in two sessions at the same instants (hours 0, 1, 2). Ordered by
    timestamp then event name, a(s2) and a(s3) tie, and so do b(s2)/b(s3), c(s2)/c(s3). With any
    consistent order of those ties the next event after a session's "a" is either the other
    session's "a" or the other session's "b", so neither attempt reaches step 2: [1, 0, 0], which
    is what cjlib gives for u alone. Adding 200 customers who only do "d" (not a funnel event)
    must not change it; cjlib broke the ties differently for "a" and "b" and gave [1, 1, 0].
    Ties are now ordered by the hold key after timestamp and event name."""
    u = [("u", h, e, s) for h, e in enumerate("abc") for s in ("s2", "s3")]
    others = [(f"o{i}", 50, "d", "s1") for i in range(200)]

    def frame(rows):
        df = pd.DataFrame(rows, columns=["customer_id", "hours", "event", "session_id"])
        df["timestamp"] = T0 + pd.to_timedelta(df.pop("hours"), unit="h")
        return df

    kw = dict(strict=True, window=None, hold="session_id", engine=engine)
    alone = funnel(frame(u), ["a", "b", "c"], **kw).steps["customers"].tolist()
    assert alone == [1, 0, 0]
    for rows in (u + others, others + u, u[::-1] + others):
        with_others = funnel(frame(rows), ["a", "b", "c"], **kw).steps["customers"].tolist()
        assert with_others == alone, f"u's funnel changed with unrelated customers: {with_others}"


# The oracle itself, on the hand-counted toy log of tests/test_funnels.py (no cjlib call).
ABC = ["A", "B", "C"]


def hand_log(rows) -> dict[str, list[Ev]]:
    log: dict[str, list[Ev]] = {}
    for c, h, e, *s in rows:
        log.setdefault(c, []).append(Ev(float(h), e, s[0] if s else None))
    return log


@pytest.mark.parametrize(
    ("rows", "cfg", "want"),
    [
        (TOY, dict(steps=ABC, window="48h"),
         dict(customers=[6, 4, 3], in_progress=[0, 1, 0], dropped=[0, 1, 1], entered=[6])),
        (TOY, dict(steps=ABC, window=None),
         dict(customers=[6, 5, 4], in_progress=[0, 0, 0], dropped=[0, 1, 1])),
        (TOY, dict(steps=ABC, window="48h", exclude=["X"]),
         dict(customers=[6, 3, 2], excluded=[0, 1, 0])),
        (TOY, dict(steps=ABC, window="48h", exclude={"X": (2, 3)}), dict(customers=[6, 4, 3])),
        (TOY, dict(steps=ABC, mode="open", window="48h"),
         dict(customers=[6, 5, 4], entered_here=[6, 1, 0], entered=[7])),
        (TOY, dict(steps=ABC, mode="any_order", window="48h"),
         dict(customers=[6, 4, 4], entered=[7])),
        (TOY, dict(steps=ABC, strict=True, window="48h"),
         dict(customers=[6, 2, 2], dropped=[0, 3, 0])),
        (TOY, dict(steps=ABC, window="48h", min_gap={2: "90min"}), dict(customers=[6, 2, 1])),
        (TOY, dict(steps=ABC, window="48h", max_gap=[None, "30min"]),
         dict(customers=[6, 4, 1], dropped=[0, 1, 3])),
        ([("h", 0, "A"), ("h", 0, "A"), ("i", 0, "A"), ("i", 1, "A"), ("j", 0, "A"),
          ("j", 0, "B")], dict(steps=["A", "A|B"], window=None), dict(customers=[3, 1])),
        ([("k", 0, "A", "s1"), ("k", 1, "B", "s2"), ("k", 2, "C", "s2"), ("k", 3, "A", "s2"),
          ("k", 4, "B", "s2")], dict(steps=ABC, window=None, hold="session_id"),
         dict(customers=[1, 1, 0])),
        ([("m", 0, "A"), ("m", 1, "B"), ("m", 2, "A"), ("m", 3, "B"), ("m", 4, "C"),
          ("m", 10, "A")], dict(steps=ABC, window=None, count="journeys"),
         dict(customers=[3, 2, 1])),
        ([("n", 0, "A"), ("n", 744, "A"), ("n", 745, "B")],
         dict(steps=["A", "B"], window=None, period=(336, None)), dict(customers=[0, 0])),
        ([("n", 0, "A"), ("n", 744, "A"), ("n", 745, "B")],
         dict(steps=["A", "B"], window=None, period=(336, None), entry="first_in_period"),
         dict(customers=[1, 1])),
        ([("a", 0, "P"), ("a", 96, "P"), ("a", 744, "P"), ("b", 24, "P"), ("b", 24, "P"),
          ("c", 48, "P"), ("c", 1488, "P"), ("z", 8760, "Q")],
         dict(steps=["P", "P", "P"], window="30D"),
         dict(customers=[3, 1, 0], dropped=[0, 2, 1])),
    ],
)  # fmt: skip
def test_oracle_reproduces_hand_counts(rows, cfg, want):
    got = oracle_table(hand_log(rows), cfg)
    assert {k: got[k] for k in want} == want


def test_shrinker_finds_a_minimal_failing_subset():
    """The oracles' delta debugging: the failure needs 7 and 13 together, so the shrunk list
    is exactly those two; a budget of 3 test calls stops it early, with a failing list still."""
    needs = lambda xs: 7 in xs and 13 in xs  # noqa: E731
    assert Shrinker(200).ddmin(list(range(20)), needs) == [7, 13]
    early = Shrinker(3).ddmin(list(range(20)), needs)
    assert needs(early) and len(early) > 2
    assert len(Shrinker(50, nonempty=True).ddmin([1, 2], lambda xs: True)) == 1  # never []
    assert Shrinker(50).ddmin([1, 2], lambda xs: True) == []
