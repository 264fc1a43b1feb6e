"""Per-customer features for persona clustering, computed in the engine.

One row per customer with at least one event. Five blocks:

- **behaviour** (from events): ``recency_days`` (days from the customer's last event to
  ``as_of``), ``tenure_days`` (first event to ``as_of``), ``frequency`` (orders: events with
  revenue > 0), ``monetary`` (sum of revenue), ``avg_order_value`` (monetary / frequency; missing
  without orders), ``events``, ``sessions`` (distinct ``session_id``, or days with an event
  without that column), ``touches`` (events with a channel), ``events_per_session``;
- **channels**: ``channel_<name>``, the share of the customer's touches on that channel (missing
  without touches);
- **journey**, from the stage steps (as in :func:`cjlib.journeys.stage_steps`):
  ``furthest_stage_index``,
  ``stage_steps``, ``regressions`` (steps back to an earlier stage) and ``days_<a>_to_<b>`` (days
  from first reaching stage *a* to first reaching the next stage *b*; missing unless both were
  reached, *b* after *a*);
- **demographics** (the customers table): its numeric columns and text columns (categorical);
  date columns are left out;
- **attitudes** (the surveys table): ``nps`` and ``csat`` (mean of the customer's answers),
  ``survey_responses``, and the most frequent answer of ``goal`` / ``motivation`` / ``challenge``
  columns when present; missing for customers who never answered.

``furthest_stage`` (its name) rides along for persona cards but belongs to no block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine, as_table
from cjlib.journeys import _ORDER, with_stages
from cjlib.stages import StageModel, five_stage

__all__ = ["FeatureTable", "customer_features", "BLOCKS", "SURVEY_TEXT"]

BLOCKS = ("behaviour", "channels", "journey", "demographics", "attitudes")
_JOURNEY = ("furthest_stage_index", "stage_steps", "regressions")
SURVEY_TEXT = ("goal", "goals", "motivation", "motivations", "challenge", "challenges")
_DAY = 86_400.0


@dataclass(frozen=True)
class FeatureTable:
    """Per-customer features: ``frame`` (``customer_id`` first), each column's ``blocks`` entry,
    which columns are ``categorical``, and the ``params`` used."""

    frame: pd.DataFrame
    blocks: dict[str, str]
    categorical: tuple[str, ...]
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    def columns(self, block: str | None = None) -> list[str]:
        """Feature columns, optionally of one block."""
        return [c for c, b in self.blocks.items() if block is None or b == block]

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def to_dict(self) -> dict:
        """The feature dictionary (no per-customer rows): block and kind of each column."""
        return {
            "features": [
                {"feature": c, "block": b, "kind": self.kind(c)} for c, b in self.blocks.items()
            ],
            "customers": len(self.frame),
            "params": self.params,
        }

    def kind(self, column: str) -> str:
        return "categorical" if column in self.categorical else "numeric"


def _slug(text: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_") or "blank"


def _model(stages: StageModel | None) -> StageModel:
    if stages is None:
        return five_stage()
    if not isinstance(stages, StageModel):
        raise TypeError(f"stages must be a StageModel, got {type(stages).__name__}")
    return stages


def _behaviour(t: Any, engine: Engine, channels: list[str]) -> Any:
    """One aggregate over all events: activity, orders, revenue, touches per channel."""
    # COUNT(*) FILTER (...) rather than SUM(CAST(... AS INT)): 5x faster on DuckDB at 1e7 rows
    aggs: dict[str, Any] = {
        "first_ts": engine.epoch_seconds(t.timestamp.min()),
        "last_ts": engine.epoch_seconds(t.timestamp.max()),
        "events": t.count(),
    }
    if "session_id" in t.columns:
        aggs["sessions"] = t.session_id.nunique()
    else:  # days with an event, as whole days since the epoch (no time-zone work per row)
        aggs["sessions"] = (engine.epoch_us(t.timestamp) / 86_400e6).floor().nunique()
    if "revenue" in t.columns:
        paid = t.revenue.notnull() & (t.revenue > 0)
        aggs["frequency"] = t.count(where=paid)
        aggs["monetary"] = t.revenue.sum(where=paid)
    if "channel" in t.columns:
        aggs["touches"] = t.count(where=t.channel.notnull())
        for name in channels:
            aggs[f"channel_{_slug(name)}"] = t.count(where=t.channel == name)
    return t.group_by("customer_id").aggregate(**aggs)


def _journey(events: Any, model: StageModel, engine: Engine) -> Any:
    """Furthest stage, stage steps, regressions and first time at each stage.

    Events are mapped to stages by :func:`cjlib.journeys.with_stages` and ordered as
    :func:`cjlib.journeys.stage_steps` orders them; a step starts wherever the stage changes and a
    regression is a change to an earlier stage, so the counts equal those of the collapsed steps
    (a test checks them against :func:`cjlib.journeys.stage_sequences`). The window carries only
    customer, time and stage (every other column would be sorted along: ~2x the cost) and
    orders by time and stage only: ``stage_steps`` orders ties further by event name, but tied
    events with the same stage give the same sequence of stages whichever comes first.
    """
    import ibis

    t = with_stages(events, model, engine=engine)
    t = t.filter(t.stage_index.notnull()).select("customer_id", "timestamp", "stage_index")
    window = ibis.window(group_by="customer_id", order_by=list(_ORDER[:2]))
    t = t.mutate(prev_index=t.stage_index.lag().over(window))
    change = t.prev_index.isnull() | (t.prev_index != t.stage_index)
    aggs: dict[str, Any] = {
        "furthest_stage_index": t.stage_index.max(),
        "stage_steps": t.count(where=change),
        "regressions": t.count(where=t.stage_index < t.prev_index),
    }
    for i in range(len(model.stages)):
        aggs[f"first_at_{i}"] = engine.epoch_seconds(t.timestamp.min(where=t.stage_index == i))
    return t.group_by("customer_id").aggregate(**aggs)


def _attitudes(surveys: Any, engine: Engine) -> tuple[Any, list[str]]:
    s, _ = as_table(surveys, engine)
    aggs: dict[str, Any] = {"survey_responses": s.count()}
    numeric = [c for c in ("nps", "csat") if c in s.columns]
    for c in numeric:
        aggs[c] = s[c].cast("float64").mean()
    text = [c for c in s.columns if c.lower() in SURVEY_TEXT]
    out = s.group_by("customer_id").aggregate(**aggs)
    for c in text:
        out = out.left_join(_most_frequent(s, c), "customer_id").drop("customer_id_right")
    return out, text


def _most_frequent(s: Any, column: str) -> Any:
    """``customer_id, <column>``: each customer's most frequent non-missing answer; ties go to
    the alphabetically first answer (the same on every engine: Ibis's ``mode()`` has no Spark
    rule, and DuckDB's breaks ties its own way)."""
    import ibis

    answered = s.filter(s[column].notnull())
    n = answered.group_by(["customer_id", column]).aggregate(_n=answered.count())
    order = ibis.window(group_by="customer_id", order_by=[ibis.desc("_n"), column])
    n = n.mutate(_rank=ibis.row_number().over(order))
    return n.filter(n._rank == 0).select("customer_id", column)


def _demographics(
    customers: Any, engine: Engine, *, dedupe: bool = True
) -> tuple[Any, list[str], list[str]]:
    """Numeric and text columns of the customers table, one row per customer (the first known
    value of each column) with ``dedupe``; as they are without (ids already unique)."""
    c, _ = as_table(customers, engine)
    numeric, categorical = [], []
    for name, dtype in c.schema().items():
        if name == "customer_id":
            continue
        if dtype.is_numeric() and not dtype.is_boolean():
            numeric.append(name)
        elif dtype.is_string() or dtype.is_boolean():
            categorical.append(name)
    cols = {"customer_id": c.customer_id.cast("string")}
    cols.update({n: c[n].cast("float64") for n in numeric})
    cols.update({n: c[n].cast("string") for n in categorical})
    out = c.select(**cols)
    return (out.distinct(on="customer_id") if dedupe else out), numeric, categorical


def _view(dtype: Any) -> bool:
    import pyarrow as pa

    return bool(getattr(pa.types, "is_string_view", lambda _: False)(dtype))


def _fetch(expr: Any, engine: Engine) -> tuple[dict[str, pd.Series], bool, Any]:
    """The rows of ``expr`` ordered by ``customer_id`` as one Series per column, through Arrow:
    numbers as float64 / int64 (gaps as NaN), ``customer_id`` as ``str``, other text as objects
    (gaps as ``None``); whether any ``customer_id`` occurs more than once; and the ids as Arrow.

    The rows are sorted here (Arrow's sort of the ids, byte order as in the engine's ORDER BY):
    on 1.4 M customers a sort on the client costs less than one in the engine, and Spark returns
    rows in any order anyway. A pandas frame straight from the engine turns every column with a
    gap into Python objects first (~2 s for 1.4 M customers); numbers never pass through Python.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = engine.to_arrow(expr)
    order = pc.sort_indices(table["customer_id"])
    table = table.take(order)
    ids = table["customer_id"].combine_chunks()
    repeated = len(ids) > 1 and bool(pc.any(pc.equal(ids[1:], ids[:-1])).as_py())
    out: dict[str, pd.Series] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name == "customer_id":
            out[name] = pd.Series(col.cast(pa.string()).to_pandas(), copy=False).astype(str)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or _view(col.type):
            # few distinct values: one Python string per value, shared by the rows holding it
            codes = col.dictionary_encode().combine_chunks()
            levels = np.array([*codes.dictionary.to_pylist(), None], dtype=object)
            index = codes.indices.fill_null(len(levels) - 1).to_numpy(zero_copy_only=False)
            out[name] = pd.Series(levels[index], dtype=object)
        else:
            out[name] = pd.Series(col.to_numpy(zero_copy_only=False), copy=False)
    return out, repeated, ids


def _journey_columns(model: StageModel) -> list[str]:
    """The columns of :func:`_journey`'s result besides ``customer_id``."""
    return [*_JOURNEY, *(f"first_at_{i}" for i in range(len(model.stages)))]


def _fetch_journey(events: Any, model: StageModel, engine: Engine, ids: Any) -> dict:
    """The journey columns for the customers ``ids`` (sorted Arrow ids of the main query), in
    that order; customers without a mapped event get missing values. The expression is built
    here too: mapping events to stages asks the engine for the distinct event names first."""
    import pyarrow.compute as pc

    table = engine.to_arrow(_journey(events, model, engine))
    table = table.take(pc.sort_indices(table["customer_id"]))
    mine = table["customer_id"].combine_chunks()
    if not mine.equals(ids):  # some customers have no mapped event (or ids repeat in the main)
        table = table.take(pc.index_in(ids, value_set=mine))
    return {
        name: table[name].to_numpy(zero_copy_only=False).astype(float)
        for name in table.column_names
        if name != "customer_id"
    }


def customer_features(
    events: Any,
    *,
    customers: Any = None,
    surveys: Any = None,
    stages: StageModel | None = None,
    as_of: Any = None,
    max_channels: int = 12,
    engine: Engine | None = None,
) -> FeatureTable:
    """Per-customer behaviour, demographics and attitudes (see the module doc for definitions).

    Parameters
    ----------
    events
        The events table (``LoadedTable``, Ibis table or DataFrame).
    customers, surveys
        Optional customers and surveys tables, joined on ``customer_id`` (customers without
        events are left out; customers without a survey answer get missing attitudes).
    stages
        The stage model (default :func:`~cjlib.stages.five_stage`).
    as_of
        The reference time for recency and tenure (default: the latest event timestamp).
    max_channels
        Channel-mix columns for at most this many channels, the most frequent first.
    """
    return _start(events, customers=customers, surveys=surveys, stages=stages, as_of=as_of,
                  max_channels=max_channels, engine=engine, joined=True).table()  # fmt: skip


class _Build:
    """Features being built: every block but the journey is fetched. The journey block (a window
    over the events) came with them when ``_start(joined=True)``; otherwise it is its own query,
    run when :meth:`table` needs it, or on a background thread started by
    :meth:`journey_in_background` while the caller works on :meth:`partial` (persona clustering
    leaves the journey block out by default and only the cards need it)."""

    def __init__(self, df: dict, model: StageModel, engine: Engine, events: Any, ids: Any,
                 layout: dict, params: dict) -> None:  # fmt: skip
        self.df, self.model, self.engine, self.params = df, model, engine, params
        self.layout = layout
        self._events, self._ids, self._future = events, ids, None

    def journey_in_background(self) -> None:
        """Start the journey query on a thread (the engine must not run other queries until
        :meth:`table` returns; DuckDB releases the interpreter lock while it works)."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, thread_name_prefix="cjlib-journey")
        self._future = pool.submit(_fetch_journey, self._events, self.model, self.engine, self._ids)
        pool.shutdown(wait=False)

    def _journey_values(self) -> dict[str, np.ndarray]:
        if self.layout["joined"]:  # fetched with the other blocks
            return {c: self.df[c].to_numpy(float) for c in _journey_columns(self.model)}
        if self._future is not None:
            return self._future.result()
        return _fetch_journey(self._events, self.model, self.engine, self._ids)

    def partial(self) -> FeatureTable:
        """Every block but the journey (and no ``furthest_stage``)."""
        return self._assemble(None)

    def table(self) -> FeatureTable:
        """All blocks (waits for the journey query)."""
        return self._assemble(self._journey_values())

    def _assemble(self, jdf: dict[str, np.ndarray] | None) -> FeatureTable:
        df, model, lay = self.df, self.model, self.layout
        ref = lay["ref"]
        cols: dict[str, Any] = {"customer_id": df["customer_id"]}
        blocks: dict[str, str] = {}
        categorical: list[str] = []
        cols["recency_days"] = (ref - df["last_ts"].astype(float)) / _DAY
        cols["tenure_days"] = (ref - df["first_ts"].astype(float)) / _DAY
        if "frequency" in df:
            cols["frequency"] = df["frequency"].fillna(0).astype("int64")
            cols["monetary"] = df["monetary"].fillna(0.0).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                aov = cols["monetary"] / cols["frequency"].where(cols["frequency"] > 0)
            cols["avg_order_value"] = aov.astype(float)
        cols["events"] = df["events"].astype("int64")
        cols["sessions"] = df["sessions"].astype("int64")
        cols["events_per_session"] = cols["events"] / cols["sessions"]
        if "touches" in df:
            cols["touches"] = df["touches"].astype("int64")
            denom = cols["touches"].where(cols["touches"] > 0)
            for name in lay["channels"]:
                col = f"channel_{_slug(name)}"
                cols[col] = (df[col].astype(float) / denom).astype(float)
        for col in list(cols)[1:]:
            blocks[col] = "channels" if col.startswith("channel_") else "behaviour"
        if jdf is not None:
            index = pd.RangeIndex(len(df["customer_id"]))
            cols["furthest_stage_index"] = pd.Series(jdf["furthest_stage_index"], index=index)
            for col in ("stage_steps", "regressions"):
                cols[col] = pd.Series(np.nan_to_num(jdf[col]).astype("int64"), index=index)
            for i, (a, b) in enumerate(zip(model.stages, model.stages[1:], strict=False)):
                gap = (jdf[f"first_at_{i + 1}"] - jdf[f"first_at_{i}"]) / _DAY
                with np.errstate(invalid="ignore"):
                    cols[f"days_{_slug(a)}_to_{_slug(b)}"] = pd.Series(
                        np.where(gap >= 0, gap, np.nan), index=index
                    )
            for col in list(cols):
                if col not in blocks and col != "customer_id":
                    blocks[col] = "journey"
        for col in lay["demo_num"]:
            cols[col] = df[col].astype(float)
            blocks[col] = "demographics"
        for col in lay["demo_cat"]:
            cols[col] = df[col]
            blocks[col] = "demographics"
            categorical.append(col)
        if lay["surveys"]:
            cols["survey_responses"] = df["survey_responses"].fillna(0).astype("int64")
            blocks["survey_responses"] = "attitudes"
            for col in lay["att_num"]:
                cols[col] = df[col].astype(float)
                blocks[col] = "attitudes"
            for col in lay["survey_text"]:
                cols[col] = df[col]
                blocks[col] = "attitudes"
                categorical.append(col)
        if jdf is not None:
            idx = jdf["furthest_stage_index"]
            reached = ~np.isnan(idx)
            names = np.array(model.stages, dtype=object)
            where = np.clip(np.nan_to_num(idx, nan=0).astype(int), 0, None)
            cols["furthest_stage"] = pd.Series(np.where(reached, names[where], None))
        out = pd.DataFrame(cols, copy=False)
        return FeatureTable(out, blocks, tuple(categorical), dict(self.params))


def _start(
    events: Any,
    *,
    customers: Any = None,
    surveys: Any = None,
    stages: StageModel | None = None,
    as_of: Any = None,
    max_channels: int = 12,
    engine: Engine | None = None,
    joined: bool = False,
) -> _Build:
    """Check the arguments, run the query of every block but the journey, and prepare the
    journey's (see :class:`_Build`); with ``joined`` the journey block is joined into that query
    instead (one query costs less than two when nothing else can run meanwhile)."""
    if not isinstance(max_channels, int) or isinstance(max_channels, bool) or max_channels < 0:
        raise ValueError(f"max_channels must be an int >= 0, got {max_channels!r}")
    model = _model(stages)
    t, engine = as_table(events, engine)
    missing = [c for c in ("customer_id", "timestamp", "event") if c not in t.columns]
    if missing:
        raise ValueError(f"events must have columns customer_id, timestamp, event; lacks {missing}")
    channels: list[str] = []
    if "channel" in t.columns and max_channels:
        touched = t.filter(t.channel.notnull())
        counts = touched.group_by("channel").aggregate(n=touched.count())
        top = engine.to_pandas(
            counts.order_by([counts.n.desc(), counts.channel]).limit(max_channels)
        )
        channels = [str(c) for c in top["channel"]]
    activity = _behaviour(t, engine, channels)
    if joined:
        activity = activity.left_join(_journey(events, model, engine), "customer_id")
        activity = activity.drop(*[c for c in activity.columns if c.endswith("_right")])
    demo_num: list[str] = []
    demo_cat: list[str] = []
    survey_text: list[str] = []
    att_num: list[str] = []

    def query(dedupe: bool) -> Any:
        nonlocal demo_num, demo_cat, survey_text, att_num
        expr = activity
        if customers is not None:
            demo, demo_num, demo_cat = _demographics(customers, engine, dedupe=dedupe)
            clash = {c for c in demo.columns if c != "customer_id" and c in expr.columns}
            # the journey block's columns (a query of its own) are renamed as they were when
            # it was joined here
            clash |= set(demo.columns) & set(_journey_columns(model))
            demo = demo.rename({f"customer_{c}": c for c in clash}) if clash else demo
            demo_num = [f"customer_{c}" if c in clash else c for c in demo_num]
            demo_cat = [f"customer_{c}" if c in clash else c for c in demo_cat]
            expr = expr.left_join(demo, "customer_id")
            expr = expr.drop(*[c for c in expr.columns if c.endswith("_right")])
        if surveys is not None:
            att, survey_text = _attitudes(surveys, engine)
            att_num = [c for c in ("nps", "csat") if c in att.columns]
            expr = expr.left_join(att, "customer_id")
            expr = expr.drop(*[c for c in expr.columns if c.endswith("_right")])
        return expr

    # customers tables nearly always hold each id once: join them as they are (deduplicating
    # 1.4 M customers costs a second hash aggregate), and only when an id comes back twice run
    # the query again with one row per customer
    df, repeated, ids = _fetch(query(dedupe=False), engine)
    if repeated and customers is not None:
        df, _, ids = _fetch(query(dedupe=True), engine)
    ref = float(df["last_ts"].max()) if as_of is None else pd.Timestamp(as_of).timestamp()
    if as_of is not None and pd.Timestamp(as_of).tzinfo is None:
        ref = pd.Timestamp(as_of, tz="UTC").timestamp()
    params = {
        "stages": model.name,
        "stage_names": list(model.stages),
        "as_of": pd.Timestamp(ref, unit="s", tz="UTC").isoformat(),
        "channels": channels,
        "max_channels": max_channels,
        "engine": engine.name,
    }
    layout = {"ref": ref, "channels": channels, "demo_num": demo_num, "demo_cat": demo_cat,
              "surveys": surveys is not None, "att_num": att_num,
              "survey_text": survey_text, "joined": joined}  # fmt: skip
    return _Build(df, model, engine, events, ids, layout, params)
