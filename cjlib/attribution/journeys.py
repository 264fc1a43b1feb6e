"""Touch journeys: from touch events (through the engine) or from pre-aggregated path tables.

A *journey* is the ordered list of a customer's touches (events with a channel) that lead to one
conversion, or to none. Journeys end at each conversion (the next journey starts after it), keep
only touches within ``lookback_days`` of the journey's end (the conversion, or the last touch of a
journey that did not convert), and can have consecutive repeats of a channel collapsed.

Everything downstream works on :class:`Journeys`: the distinct paths as a flat array of channel
codes with offsets (CSR layout), and per path the converting journeys, their value and the
journeys that did not convert. The same object holds one row per journey (``from_sequences``),
so models run alike on raw journeys and on aggregated paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["Journeys", "touch_journeys", "SEP"]

SEP = " > "


@dataclass(frozen=True, eq=False)
class Journeys:
    """Journeys in CSR layout: path ``i`` has channel codes ``codes[offsets[i]:offsets[i+1]]``.

    ``conversions``, ``nulls`` and ``value`` are per path (floats, so resampled counts fit).
    ``decay_conversions`` / ``decay_value`` (per touch, optional) hold time-decay credit summed
    over the converting journeys that share the path, when touch times were known.
    """

    channels: tuple[str, ...]
    codes: np.ndarray
    offsets: np.ndarray
    conversions: np.ndarray
    nulls: np.ndarray
    value: np.ndarray
    decay_conversions: np.ndarray | None = None
    decay_value: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    unattributed: dict = field(default_factory=dict)

    # -- shape ---------------------------------------------------------------------------------
    @property
    def n_paths(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def path_ids(self) -> np.ndarray:
        """Path index of every touch."""
        return np.repeat(np.arange(self.n_paths), self.lengths)

    @property
    def positions(self) -> np.ndarray:
        """0-based position of every touch within its path."""
        return np.arange(len(self.codes)) - np.repeat(self.offsets[:-1], self.lengths)

    @property
    def journeys(self) -> np.ndarray:
        return self.conversions + self.nulls

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_value(self) -> float:
        return float(self.value.sum())

    def channel_touches(self) -> np.ndarray:
        """Touches per channel (in ``channels`` order), every journey counted."""
        return np.bincount(self.codes, self.journeys[self.path_ids], len(self.channels))

    def labels(self) -> list[str]:
        """Each path as ``a > b > c``."""
        names = np.asarray(self.channels, dtype=object)[self.codes]
        return [
            SEP.join(names[a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def to_frame(self) -> pd.DataFrame:
        """One row per path: ``path, length, journeys, conversions, value, nulls``."""
        return pd.DataFrame(
            {
                "path": self.labels(),
                "length": self.lengths.astype("int64"),
                "journeys": self.journeys,
                "conversions": self.conversions,
                "value": self.value,
                "nulls": self.nulls,
            }
        )

    def summary(self) -> dict[str, Any]:
        return {
            "paths": self.n_paths,
            "journeys": float(self.journeys.sum()),
            "conversions": self.total_conversions,
            "value": self.total_value,
            "channels": list(self.channels),
            **{f"unattributed_{k}": v for k, v in self.unattributed.items()},
        }

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a two-column table (``measure, value``) for reports."""
        s = self.summary()
        rows = [
            ("journeys with at least one touch", s["journeys"]),
            ("converting journeys (attributed conversions)", s["conversions"]),
            ("conversion value attributed", s["value"]),
            ("distinct channel paths", s["paths"]),
            ("channels", len(s["channels"])),
            (
                "conversions with no touch in the lookback window",
                s.get("unattributed_conversions", 0),
            ),
        ]
        return pd.DataFrame(rows, columns=["measure", "value"])

    def converting(self) -> Journeys:
        """Only the paths with conversions (what rule-based models credit)."""
        keep = self.conversions > 0
        if keep.all():
            return self
        touch = np.repeat(keep, self.lengths)
        lengths = self.lengths[keep]

        def sub(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[touch]

        return replace(
            self,
            codes=self.codes[touch],
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            conversions=self.conversions[keep],
            nulls=self.nulls[keep],
            value=self.value[keep],
            decay_conversions=sub(self.decay_conversions),
            decay_value=sub(self.decay_value),
        )

    def with_counts(self, conversions: np.ndarray, nulls: np.ndarray) -> Journeys:
        """The same paths with other counts (bootstrap, held-out splits); value and time-decay
        sums scale with the converting journeys of each path (their mean per path is kept)."""
        conversions = np.asarray(conversions, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(self.conversions > 0, conversions / self.conversions, 0.0)
        per_touch = np.repeat(scale, self.lengths)
        dc = None if self.decay_conversions is None else self.decay_conversions * per_touch
        dv = None if self.decay_value is None else self.decay_value * per_touch
        return replace(
            self,
            conversions=conversions,
            nulls=np.asarray(nulls, dtype=float),
            value=self.value * scale,
            decay_conversions=dc,
            decay_value=dv,
        )

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_sequences(
        cls,
        sequences: Any,
        conversions: Any,
        *,
        nulls: Any = None,
        value: Any = None,
        channels: tuple[str, ...] | None = None,
        params: dict | None = None,
    ) -> Journeys:
        """From lists of channel names (one per path or per journey) and their counts.

        ``nulls`` defaults to ``1 - conversions`` (one journey per row); ``value`` to 0.
        """
        seqs = [list(s) for s in sequences]
        if any(len(s) == 0 for s in seqs):
            raise ValueError("sequences must not contain empty paths")
        flat = [c for s in seqs for c in s]
        for c in flat:
            if not isinstance(c, str) or ">" in c or not c.strip():
                raise ValueError(f"channel names must be non-empty text without '>', got {c!r}")
        channels = tuple(channels or sorted(set(flat)))
        index = {c: i for i, c in enumerate(channels)}
        codes = np.fromiter((index[c] for c in flat), dtype=np.int32, count=len(flat))
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
        conv = np.asarray(conversions, dtype=float)
        null = 1.0 - conv if nulls is None else np.asarray(nulls, dtype=float)
        val = np.zeros(len(seqs)) if value is None else np.asarray(value, dtype=float)
        for name, arr in (("conversions", conv), ("nulls", null), ("value", val)):
            if arr.shape != (len(seqs),):
                raise ValueError(f"{name} must have one entry per sequence ({len(seqs)})")
            if np.any(arr < 0) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite and >= 0")
        return cls(channels, codes, offsets, conv, null, val, params=dict(params or {}))


def _touch_table(
    t: ir.Table, conversion_event: str, lookback_days: float, engine: Engine
) -> ir.Table:
    """Touch rows with journey key ``(customer_id, k)``, conversion time/value, age (seconds)."""
    import ibis

    is_conv = t.event == conversion_event
    revenue = t.revenue.cast("float64").fill_null(0.0) if "revenue" in t.columns else 0.0
    e = t.filter(is_conv | (t.channel.notnull() & (t.channel != ""))).select(
        "customer_id",
        "timestamp",
        channel=ibis.ifelse(is_conv, ibis.null("string"), t.channel.cast("string")),
        is_conv=is_conv.cast("int64"),
        revenue=ibis.ifelse(is_conv, revenue, 0.0),
    )
    # simultaneous conversions: the smaller value closes the journey, whatever the rows' order
    w = ibis.cumulative_window(
        group_by="customer_id", order_by=["timestamp", "is_conv", "channel", "revenue"]
    )
    e = e.mutate(k=e.is_conv.sum().over(w) - e.is_conv)
    convs = e.filter(e.is_conv == 1).select(
        "customer_id", "k", conv_time="timestamp", conv_value="revenue"
    )
    touches = e.filter(e.is_conv == 0).select("customer_id", "k", "timestamp", "channel")
    j = touches.left_join(convs, ["customer_id", "k"]).select(
        "customer_id", "k", "timestamp", "channel", "conv_time", "conv_value"
    )
    last = j.timestamp.max().over(ibis.window(group_by=["customer_id", "k"]))
    end = j.conv_time.coalesce(last)
    age = engine.epoch_seconds(end) - engine.epoch_seconds(j.timestamp)
    j = j.mutate(age=age, converted=j.conv_time.notnull().cast("int64"))
    return j.filter(j.age <= float(lookback_days) * 86400.0), convs


def touch_journeys(
    events: Any,
    *,
    conversion_event: str = "purchase",
    lookback_days: float = 30.0,
    collapse_repeats: bool = False,
    half_life: float = 7.0,
    engine: Engine | None = None,
) -> Journeys:
    """Journeys from touch events, reduced in the engine to distinct paths.

    Touches are events with a non-empty ``channel`` (other than the conversion event). Each
    ``conversion_event`` closes the customer's current journey; touches after it start the next
    one. A touch belongs to a journey only if it is at most ``lookback_days`` before the journey's
    end (its conversion, or for a journey that did not convert, its last touch). Touches at the
    same instant as a conversion count before it; of two conversions at one instant, the one with
    the smaller value closes the journey (the other has no touches). ``collapse_repeats`` merges
    consecutive touches on the same channel into one (the first). Conversions with no touch in
    the window are not attributed and are counted in ``unattributed``. ``half_life`` (days) sets
    time-decay weights ``0.5 ** (days before conversion / half_life)``, normalised within each
    journey.
    """
    import ibis

    if not isinstance(conversion_event, str) or not conversion_event:
        raise ValueError(f"conversion_event must be an event name, got {conversion_event!r}")
    if not (isinstance(lookback_days, (int, float)) and lookback_days > 0):
        raise ValueError(f"lookback_days must be a number > 0, got {lookback_days!r}")
    if not (isinstance(half_life, (int, float)) and half_life > 0):
        raise ValueError(f"half_life must be a number > 0, got {half_life!r}")
    t, engine = as_table(events, engine)
    missing = {"customer_id", "timestamp", "event", "channel"} - set(t.columns)
    if missing:
        hint = (
            " (the touchpoint of each event; a column map names it, e.g. {'utm_source': 'channel'})"
            if "channel" in missing
            else ""
        )
        raise ValueError(
            f"events need columns {sorted(missing)} for attribution{hint}; their columns are "
            f"{list(t.columns)}"
        )
    found = engine.to_pandas(t.filter(t.event == conversion_event).count())
    if int(found) == 0:
        raise ValueError(f"conversion_event {conversion_event!r} does not occur in the events")
    j, convs = _touch_table(t, conversion_event, lookback_days, engine)
    key = ["customer_id", "k"]
    order = ["timestamp", "channel"]
    if collapse_repeats:
        prev = j.channel.lag().over(ibis.window(group_by=key, order_by=order))
        j = j.filter(prev.isnull() | (prev != j.channel))
    j = j.mutate(pos=ibis.row_number().over(ibis.window(group_by=key, order_by=order)))
    decay = (j.age * (-math.log(2) / (float(half_life) * 86400.0))).exp()
    j = j.mutate(w=decay / decay.sum().over(ibis.window(group_by=key)))
    # the touch rows (three windows) and the journeys are read more than once: keep each once
    kept = [engine.materialize(j, prefix="cjlib_touches")]
    try:
        j = kept[0]
        tag = j.pos.cast("string").lpad(9, "0") + "|" + j.channel
        per = j.group_by(key).aggregate(
            keys=tag.collect(), converted=j.converted.max(), value=j.conv_value.max().fill_null(0.0)
        )
        # drop the position tags: each follows the start or a separator (channel names cannot
        # hold '>', but may hold '123456789|')
        tagged = (SEP + per.keys.sort().join(SEP)).re_replace(f"{SEP}[0-9]{{9}}\\|", SEP)
        per = per.mutate(path=tagged.substr(len(SEP)))
        kept.append(engine.materialize(per.drop("keys"), prefix="cjlib_journeys"))
        per = kept[1]
        paths = per.group_by("path").aggregate(
            conversions=per.converted.sum(),
            nulls=(1 - per.converted).sum(),
            value=per.value.sum(),
        )
        jp = j.join(per.filter(per.converted == 1).select(*key, "path"), key)
        decay_tab = jp.group_by(["path", "pos"]).aggregate(
            dc=jp.w.sum(), dv=(jp.w * jp.conv_value.fill_null(0.0)).sum()
        )
        totals = convs.aggregate(n=convs.count(), value=convs.conv_value.sum())
        paths_df = engine.to_pandas(paths.order_by("path"))
        decay_df = engine.to_pandas(decay_tab)
        tot = engine.to_pandas(totals)
    finally:
        for table in kept:
            engine.release(table)
    channels = sorted({c for p in paths_df["path"] for c in p.split(SEP)})
    bad = [c for c in channels if ">" in c]
    if bad:
        raise ValueError(f"channel names must not contain '>', got {bad[:5]}")
    out = Journeys.from_sequences(
        [p.split(SEP) for p in paths_df["path"]],
        paths_df["conversions"].astype(float),
        nulls=paths_df["nulls"].astype(float),
        value=paths_df["value"].astype(float),
        channels=tuple(channels),
    )
    row = pd.Series(np.arange(out.n_paths), index=paths_df["path"])
    flat = out.offsets[row.reindex(decay_df["path"]).to_numpy()] + decay_df["pos"].to_numpy()
    dc = np.zeros(len(out.codes))
    dv = np.zeros(len(out.codes))
    np.add.at(dc, flat, decay_df["dc"].to_numpy(float))
    np.add.at(dv, flat, decay_df["dv"].to_numpy(float))
    params = {
        "source": "events",
        "conversion_event": conversion_event,
        "lookback_days": float(lookback_days),
        "collapse_repeats": bool(collapse_repeats),
        "half_life": float(half_life),
    }
    unattributed = {
        "conversions": float(tot["n"].iloc[0]) - out.total_conversions,
        "value": float(tot["value"].fillna(0).iloc[0]) - out.total_value,
    }
    return replace(
        out, decay_conversions=dc, decay_value=dv, params=params, unattributed=unattributed
    )
