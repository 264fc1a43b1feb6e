"""The funnel definition: steps, mode, windows, gaps, exclusions, hold-constant key, entry, period.

A :class:`FunnelSpec` is built and validated by :func:`funnel_spec`; every analysis in
:mod:`cjlib.funnels` takes the same keyword options and builds one.

Rules (the same on every engine):

- **Steps.** A step is an event name (``"add_to_cart"``), event alternatives separated by ``|``
  (``"product1|product2"``) or a stage of the stage model (``"stage:consideration"``). Event
  names are matched exactly.
- **Modes.** ``closed``: customers enter at step 1 and must do the steps in order. ``open``
  (as GA4 offers): customers enter at the step of their first funnel event (the lowest step
  number when that event, or the events at that same instant, match several) and continue in
  order from there. ``any_order``:
  customers enter at their first funnel event; step *k* is reached when steps 1..k all
  occur, in any order, within the window from entry.
- **strict** (closed and open modes): each step must be the customer's very next event after the
  previous step (events ordered by timestamp, then event name, then the hold key).
- **Matching.** Each step is matched at its earliest occurrence after the previous step (greedy,
  as GA4 and Mixpanel do). With a maximum gap a later occurrence of a step could sometimes have
  allowed the next step; it is not searched for.
- **Ties.** An occurrence at the same timestamp as the previous step counts as following it,
  except when the two steps can be the same event (their definitions overlap), which then must be
  strictly later: one event never satisfies two steps. The same holds for any earlier step a
  step overlaps (``a, b, a``: the second ``a`` must be strictly later than the first, even when
  ``b`` shares the first one's timestamp). In ``any_order`` mode steps must not overlap at all.
- **Window.** ``window``: the last step must happen within this time of the entry (inclusive).
  ``None`` = no window: nobody is ever *in progress*, non-converters count as dropped.
- **Gaps.** ``min_gap`` / ``max_gap``: per step (step 2 onwards) bounds on the time since the
  previous step (inclusive).
- **Exclusions.** ``exclude=["x", ...]``: a customer doing ``x`` strictly after a step and
  strictly before the next one, while the next step could still be done (within the window and
  the next step's maximum gap), leaves the funnel there (*excluded*, a kind of drop-off).
  ``{"x": (2, 4)}`` applies ``x`` only between steps 2 and 4.
- **Hold constant.** ``hold="session_id"``: all steps of a journey must share that column's
  value (events with no value are left out); a customer counts with their furthest attempt.
- **Entry.** ``entry="first"``: the customer's first ever entry, counted when it falls in
  ``period``; ``"first_in_period"``: the first entry inside ``period``. The period
  ``(start, end)`` includes its start and excludes its end, and bounds the entry only; later
  steps may fall after it.
- **Counting.** ``count="customers"`` (default): unique customers. ``"journeys"``: every
  occurrence of the entry step starts a journey (occurrences at one instant start one), which
  runs until the customer's next occurrence of the entry step (events before it); journeys are
  counted (closed mode only).
- **In progress.** A customer who has not reached the next step and could still do it when the
  data end (``as_of``, default the last event in the data) is *in progress*, not dropped:
  the window from entry and the step's maximum gap are both still open (and, for journeys, the
  customer has not entered again: the next entry ends a journey).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from cjlib.stages import StageModel

__all__ = ["Step", "FunnelSpec", "funnel_spec", "parse_step", "to_seconds", "MODES"]

MODES = ("closed", "open", "any_order")
ENTRIES = ("first", "first_in_period")
COUNTS = ("customers", "journeys")
STAGE_PREFIX = "stage:"


@dataclass(frozen=True)
class Step:
    """One funnel step: event alternatives, or a stage of the stage model."""

    label: str
    events: tuple[str, ...] = ()
    stage: str | None = None

    @property
    def text(self) -> str:
        """The step as written in a definition: ``a|b`` or ``stage:<stage>``."""
        return f"{STAGE_PREFIX}{self.stage}" if self.stage else "|".join(self.events)


def parse_step(step: Any, stages: StageModel | None = None, *, where: str = "steps") -> Step:
    """``"a"``, ``"a|b"`` or ``"stage:<stage>"`` (aliases accepted) as a :class:`Step`."""
    if isinstance(step, Step):
        return step
    if not isinstance(step, str) or not step.strip():
        raise ValueError(f"{where}: a step is a non-empty string, got {step!r}")
    text = step.strip()
    if text.lower().startswith(STAGE_PREFIX):
        if stages is None:
            raise ValueError(f"{where}: step {text!r} names a stage but no stage model was given")
        try:
            stage = stages.resolve(text[len(STAGE_PREFIX) :].strip())
        except KeyError as exc:
            raise ValueError(f"{where}: {exc.args[0]}") from None
        return Step(label=stage, stage=stage)
    events = tuple(dict.fromkeys(e.strip() for e in text.split("|") if e.strip()))
    if not events:
        raise ValueError(f"{where}: step {text!r} names no event")
    return Step(label=" or ".join(events), events=events)


def _repeats_labelled(steps: tuple[Step, ...], mode: str) -> tuple[Step, ...]:
    """A step repeated in an ordered funnel (purchase -> purchase: the second order) is labelled
    with its occurrence, ``purchase (2nd)``; each occurrence must come strictly after the last."""
    labels = [s.label for s in steps]
    if len(set(labels)) == len(labels):
        return steps
    if mode == "any_order":
        raise ValueError(f"steps must be distinct in mode='any_order', got {labels}")
    seen: dict[str, int] = {}
    out = []
    for step in steps:
        seen[step.label] = seen.get(step.label, 0) + 1
        n = seen[step.label]
        nth = {1: "st", 2: "nd", 3: "rd"}.get(n if n < 20 else n % 10, "th")
        out.append(step if n == 1 else replace(step, label=f"{step.label} ({n}{nth})"))
    return tuple(out)


def to_seconds(value: Any, *, name: str) -> int | None:
    """A duration (``"7D"``, ``"30min"``, ``timedelta``, seconds) as whole seconds, or ``None``."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            seconds = pd.Timedelta(value).total_seconds()
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a duration such as '7D', '2h', '30min' or seconds, got {value!r}"
        ) from None
    if not seconds >= 0:
        raise ValueError(f"{name} must be a duration >= 0, got {value!r}")
    return int(round(seconds))


def _timestamp(value: Any, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date or timestamp, got {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class FunnelSpec:
    """A validated funnel definition (see the module doc for every rule)."""

    steps: tuple[Step, ...]
    mode: str = "closed"
    strict: bool = False
    window: int | None = 30 * 86400
    min_gap: tuple[int | None, ...] = ()
    max_gap: tuple[int | None, ...] = ()
    exclude: tuple[tuple[Step, int, int], ...] = ()
    hold: str | None = None
    entry: str = "first"
    period: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)
    count: str = "customers"
    as_of: pd.Timestamp | None = None
    stages: StageModel | None = None

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.steps]

    def to_dict(self) -> dict:
        """JSON-able parameters (durations in seconds, timestamps in ISO 8601)."""

        def iso(ts: pd.Timestamp | None) -> str | None:
            return None if ts is None else ts.isoformat()

        return {
            "steps": [s.text for s in self.steps],
            "mode": self.mode,
            "strict": self.strict,
            "window_seconds": self.window,
            "min_gap_seconds": list(self.min_gap),
            "max_gap_seconds": list(self.max_gap),
            "exclude": [[s.text, a, b] for s, a, b in self.exclude],
            "hold": self.hold,
            "entry": self.entry,
            "period": [iso(self.period[0]), iso(self.period[1])],
            "count": self.count,
            "as_of": iso(self.as_of),
            "stage_model": None if self.stages is None else self.stages.name,
        }

    def describe(self) -> dict:
        """The definition in words for a report's parameter table (no ``|`` characters)."""

        def span(seconds: int | None) -> str:
            return "none" if seconds is None else str(pd.Timedelta(seconds=seconds))

        start, end = self.period
        return {
            "steps": " → ".join(self.labels),
            "mode": self.mode + (" (strict)" if self.strict else ""),
            "window": span(self.window),
            "min_gap": {i + 2: span(g) for i, g in enumerate(self.min_gap) if g is not None},
            "max_gap": {i + 2: span(g) for i, g in enumerate(self.max_gap) if g is not None},
            "exclude": [f"{s.label} (steps {a}-{b})" for s, a, b in self.exclude],
            "hold": self.hold or "none",
            "entry": self.entry,
            "period": f"{start or 'start'} to {end or 'end'}",
            "count": self.count,
        }


def _gaps(value: Any, n: int, name: str) -> tuple[int | None, ...]:
    """Per-step gaps for steps 2..n: a list of n-1 durations/None, a dict {step: duration}."""
    out: list[int | None] = [None] * (n - 1)
    if value is None:
        return tuple(out)
    if isinstance(value, Mapping):
        for step, gap in value.items():
            if not isinstance(step, int) or not 2 <= step <= n:
                raise ValueError(f"{name}: keys are step numbers 2..{n}, got {step!r}")
            out[step - 2] = to_seconds(gap, name=f"{name}[{step}]")
        return tuple(out)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n - 1:
            raise ValueError(
                f"{name} must give one gap per step after the first ({n - 1}), got {len(value)}"
            )
        return tuple(to_seconds(g, name=f"{name}[{i + 2}]") for i, g in enumerate(value))
    gap = to_seconds(value, name=name)  # one value for every step
    return tuple([gap] * (n - 1))


def _exclusions(value: Any, n: int, stages: StageModel | None) -> tuple:
    if value is None or value == [] or value == {}:
        return ()
    if isinstance(value, str):
        value = [value]
    items = value.items() if isinstance(value, Mapping) else ((v, (1, n)) for v in value)
    out = []
    for event, span in items:
        step = parse_step(event, stages, where="exclude")
        try:
            a, b = (int(x) for x in span)
        except (TypeError, ValueError):
            raise ValueError(
                f"exclude: {event!r} needs (from_step, to_step), got {span!r}"
            ) from None
        if not 1 <= a < b <= n:
            raise ValueError(f"exclude: steps for {event!r} must satisfy 1 <= from < to <= {n}")
        out.append((step, a, b))
    return tuple(out)


def _choice(value: Any, allowed: Sequence[str], name: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}{hint}")
    return value


def funnel_spec(
    steps: Sequence[Any],
    *,
    mode: str = "closed",
    strict: bool = False,
    window: Any = "30D",
    min_gap: Any = None,
    max_gap: Any = None,
    exclude: Any = None,
    hold: str | None = None,
    entry: str = "first",
    period: tuple[Any, Any] | None = None,
    count: str = "customers",
    as_of: Any = None,
    stages: StageModel | None = None,
) -> FunnelSpec:
    """Validate the options of a funnel and return a :class:`FunnelSpec`."""
    if isinstance(steps, str) or not isinstance(steps, Sequence):
        raise ValueError(f"steps must be a list of at least 2 steps, got {steps!r}")
    if len(steps) < 2:
        raise ValueError(f"steps must be a list of at least 2 steps, got {list(steps)!r}")
    if stages is not None and not isinstance(stages, StageModel):
        raise TypeError(f"stages must be a StageModel, got {type(stages).__name__}")
    parsed = tuple(parse_step(s, stages, where=f"steps[{i}]") for i, s in enumerate(steps))
    mode = _choice(mode, MODES, "mode")
    parsed = _repeats_labelled(parsed, mode)
    entry = _choice(entry, ENTRIES, "entry")
    count = _choice(count, COUNTS, "count")
    n = len(parsed)
    mins, maxs = _gaps(min_gap, n, "min_gap"), _gaps(max_gap, n, "max_gap")
    for i, (lo, hi) in enumerate(zip(mins, maxs, strict=True)):
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_gap[{i + 2}] ({lo} s) is larger than max_gap[{i + 2}] ({hi} s)")
    if mode == "any_order" and (strict or any(mins) or any(g is not None for g in maxs)):
        raise ValueError("mode='any_order' takes no strict order and no min_gap/max_gap")
    if count == "journeys" and mode != "closed":
        raise ValueError(f"count='journeys' needs mode='closed', got mode={mode!r}")
    if hold is not None and (not isinstance(hold, str) or not hold):
        raise ValueError(f"hold must be a column name or None, got {hold!r}")
    if period is None:
        period = (None, None)
    if not isinstance(period, Sequence) or isinstance(period, str) or len(period) != 2:
        raise ValueError(f"period must be (start, end) with None for open ends, got {period!r}")
    start, end = _timestamp(period[0], "period start"), _timestamp(period[1], "period end")
    if start is not None and end is not None and start >= end:
        raise ValueError(f"period start must be before its end, got {period!r}")
    return FunnelSpec(
        steps=parsed,
        mode=mode,
        strict=bool(strict),
        window=to_seconds(window, name="window"),
        min_gap=mins,
        max_gap=maxs,
        exclude=_exclusions(exclude, n, stages),
        hold=hold,
        entry=entry,
        period=(start, end),
        count=count,
        as_of=_timestamp(as_of, "as_of"),
        stages=stages,
    )


def as_spec(steps: Any, options: Mapping[str, Any]) -> FunnelSpec:
    """A :class:`FunnelSpec` as given, or built from ``steps`` and keyword options."""
    if isinstance(steps, FunnelSpec):
        if any(v is not None for v in options.values()):
            raise ValueError("pass either a FunnelSpec or steps with options, not both")
        return steps
    return funnel_spec(steps, **{k: v for k, v in options.items() if v is not None})


def utc_now() -> dt.datetime:  # pragma: no cover - convenience for callers
    return dt.datetime.now(dt.UTC)
