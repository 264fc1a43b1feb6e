"""Loaders for the five contract tables, and the bundled sample data.

Every loader takes a CSV/Parquet path, a DuckDB database file (with ``table=``), a pandas
DataFrame, or an Ibis table of the engine; renames columns with ``column_map`` (a dict or a vendor
preset: ``ga4``, ``amplitude``, ``segment``); coerces types (timestamps to UTC); validates; and
returns a :class:`LoadedTable` held in the engine, with a :class:`LoadReport` of what was read,
dropped and found. Loaders never write anything: a failed load raises :class:`SchemaError` and
leaves no trace. Rows missing an id, event name or timestamp are dropped and reported; values that
cannot be read (bad timestamps, numbers, out-of-range scores) are errors.

>>> import cjlib as cj
>>> events = cj.load_events("data/events.csv")
>>> events = cj.load_events("ga4_export.parquet", column_map="ga4", start="2026-01-01")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cjlib.checks import (
    NOTES,
    check_decimal,
    check_pandas_timestamps,
    coerce,
    infer_properties,
    validate,
)
from cjlib.duplicates import duplicates as _duplicates
from cjlib.engine import Engine, get_engine
from cjlib.schema import COLUMN_MAPS, SchemaError, TableSpec, resolve_column_map, spec_for

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pandas as pd

__all__ = [
    "LoadReport",
    "LoadedTable",
    "load_table",
    "load_events",
    "load_customers",
    "load_experiments",
    "load_surveys",
    "load_costs",
    "sample_path",
    "load_sample",
    "report_frame",
]

DUPLICATES = ("report", "drop", "error", "ignore")
_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class LoadReport:
    """What a loader read, dropped and found. ``dropped`` maps a reason to a row count."""

    table: str
    source: str
    rows_read: int
    rows_loaded: int
    column_map: dict[str, str]
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates: int | None = 0  # None: not checked (duplicates="ignore")
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    def _repr_html_(self) -> str:
        dropped = ", ".join(f"{n:,} {why}" for why, n in self.dropped.items()) or "none"
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (
            f"<p><b>{self.table}</b> from <code>{self.source}</code>: {self.rows_read:,} rows "
            f"read, {self.rows_loaded:,} loaded; dropped: {dropped}; exact duplicate rows: "
            f"{'not checked' if self.duplicates is None else f'{self.duplicates:,}'}</p>"
            f"<ul>{notes}</ul>"
        )


@dataclass(frozen=True)
class LoadedTable:
    """A validated contract table held in an engine; pass it to any cjlib analysis."""

    name: str
    expr: Any  # ibis.Table
    engine: Engine
    report: LoadReport

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.expr.columns)

    def __len__(self) -> int:
        return self.report.rows_loaded

    def to_pandas(self, *, limit: int | None = None) -> pd.DataFrame:
        return self.engine.to_pandas(self.expr, limit=limit)

    def _repr_html_(self) -> str:
        head = self.to_pandas(limit=5).to_html(index=False, max_cols=12)
        return self.report._repr_html_() + head


# -- the loader -----------------------------------------------------------------------------
def load_table(
    table: str,
    source: Any,
    *,
    column_map: Mapping[str, str] | str | None = None,
    engine: Engine | None = None,
    source_table: str | None = None,
    start: Any = None,
    end: Any = None,
    filters: Mapping[str, Any] | None = None,
    duplicates: str = "report",
    duplicate_keys: Sequence[str] | None = None,
    keep: bool = True,
    timestamp_format: str | None = None,
    constants: Mapping[str, Any] | None = None,
    decimal: str = ".",
) -> LoadedTable:
    """Load one contract table (see the module doc). Specific loaders wrap this.

    Parameters
    ----------
    table
        ``events``, ``customers``, ``experiments``, ``surveys`` or ``costs``.
    source
        Path (CSV, Parquet file or folder, DuckDB file), pandas DataFrame, Ibis table.
    column_map
        ``{source column: canonical name}`` or a vendor preset name.
    engine
        Where the table lives (default: :func:`cjlib.engine.get_engine`, DuckDB).
    source_table
        Table name inside a DuckDB database file.
    start, end
        Keep rows with ``start <= timestamp < end`` (UTC; tables with a timestamp column).
    filters
        ``{column: value or list of values}`` equality filters applied after renaming.
    duplicates
        Exact duplicate rows (identical in ``duplicate_keys``, default all columns):
        ``"report"`` (default: counted in the report and warned about, kept), ``"drop"`` (keep
        one of each), ``"error"``, or ``"ignore"`` (not checked: the check groups every row, the
        costliest part of loading a very large log).
    keep
        ``True`` (default): the checked table is kept in the engine (DuckDB: a temporary table
        whose text columns with at most 1,000 distinct values, ids excepted, are stored as
        categories, see :meth:`Engine.categorize`; Spark: cached), so analyses do not parse the
        source again. ``False``: the table stays a
        view over the source, parsed at each query; for logs larger than memory, with
        ``Engine.duckdb(memory_limit=...)``.
    timestamp_format
        How text timestamps are written, as a strptime format (``"%d/%m/%Y %H:%M"``). Default:
        ISO 8601 and epoch numbers are read as such, and day-first (``13/03/2024``,
        ``13.03.2024``), month-first (``03/13/2024 9:05 PM``) or named-month (``Mar 13, 2024``)
        dates are recognised, with or without a zone after them (``+02:00``); a column whose
        days never exceed 12 is refused as ambiguous.
    constants
        ``{column: value}``: columns the source lacks, with one value on every row. An order
        table (``customer_id, order_date, revenue``) loads as events with
        ``column_map={"order_date": "timestamp"}, constants={"event": "purchase"}``.
    decimal
        The decimal mark of numbers written as text (CSV): ``"."`` (default) or ``","`` for
        European exports (``12,50``; points or spaces may group thousands: ``1.234,75``). Text
        that is no number in that layout is refused with the rows named.
    """
    import pandas as pd

    spec = spec_for(table)
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {list(DUPLICATES)}, got {duplicates!r}")
    check_decimal(decimal)  # before the source is read
    engine = engine or getattr(source, "engine", None) or get_engine()
    label = str(source) if isinstance(source, (str, Path)) else type(source).__name__
    if isinstance(source, pd.DataFrame):
        source = source.copy()  # never touch the caller's frame
        check_pandas_timestamps(source, spec)
    raw = engine.read(source, table=source_table)
    try:
        loaded = _load(
            table,
            spec,
            raw,
            label,
            engine,
            column_map=column_map,
            start=start,
            end=end,
            filters=filters,
            duplicates=duplicates,
            duplicate_keys=duplicate_keys,
            keep=keep,
            timestamp_format=timestamp_format,
            constants=constants,
            decimal=decimal,
        )
    except Exception:
        engine.forget_source(raw)
        raise
    if keep:
        engine.forget_source(raw)
    return loaded


def _load(
    table: str,
    spec: TableSpec,
    raw: ir.Table,
    label: str,
    engine: Engine,
    *,
    column_map: Any,
    start: Any,
    end: Any,
    filters: Any,
    duplicates: str,
    duplicate_keys: Any,
    keep: bool,
    timestamp_format: str | None = None,
    constants: Mapping[str, Any] | None = None,
    decimal: str = ".",
) -> LoadedTable:
    raw = _with_constants(table, raw, constants, column_map)
    mapping = resolve_column_map(table, raw.columns, column_map)
    raw = raw.rename({new: old for old, new in mapping.items()}) if mapping else raw
    raw = infer_properties(raw, spec, engine, decimal)
    coerced, checks = coerce(raw, spec, engine, timestamp_format, decimal)
    counts = validate(coerced, raw, spec, checks, engine)
    rows_read = counts["rows"]

    if (start is not None or end is not None) and "timestamp" not in coerced.columns:
        raise ValueError(f"start/end filter a timestamp column; table {table!r} has none")
    for column in filters or {}:
        if column not in coerced.columns:
            from cjlib.schema import did_you_mean

            raise SchemaError(table, column, "filters names an unknown column",
                              hint=did_you_mean(column, coerced.columns))  # fmt: skip
    # without a period or filters the whole table is kept first, so the key counts read stored
    # columns rather than parse the source again; with them, only the rows asked for are kept
    narrowed = start is not None or end is not None or bool(filters)
    # few-level text columns (not ids) are kept as categories: Engine.categorize
    text = [c for c in coerced.columns if spec.types.get(c, "text") == "text"]
    first = None
    if keep and not narrowed:  # categories written with the table (one pass, not one per column)
        first = engine.materialize(coerced, prefix=f"cjlib_{table}", categories=text)
    t = coerced if first is None else first
    try:
        t, dropped = _filtered(t, table, engine, start=start, end=end, filters=filters, keep=keep)
        if first is not None and t is not first:
            engine.release(first)
        rows = int(engine.to_pandas(t.count()))
        if rows == 0:
            raise SchemaError(
                table,
                None,
                f"no rows left (read {rows_read:,}; "
                + "".join(f"{n:,} {what}; " for what, n in dropped.items())
                + f"start={start}, end={end}, filters={dict(filters or {})})",
            )
        t, n_dupes, notes = _duplicates(t, table, engine, duplicates, duplicate_keys, keep=keep)
        notes += [f"{column}: {n:,} {NOTES[kind]}" for (column, kind), n in counts["notes"].items()]
        if keep and first is None:  # kept only after the period and filters: convert now
            engine.categorize(t, text)
    except Exception:
        if keep:
            engine.release(t)
        raise
    if n_dupes and duplicates == "drop":
        dropped["exact duplicates"] = n_dupes
        rows -= n_dupes
    for what, n in dropped.items():
        notes.append(f"dropped {n:,} {what}")
    report = LoadReport(table, label, rows_read, rows, mapping, dropped, n_dupes, tuple(notes))
    return LoadedTable(table, t, engine, report)


def _with_constants(table: str, raw: ir.Table, constants: Any, column_map: Any) -> ir.Table:
    """``raw`` plus the ``constants`` columns; a column the source (or its map) has is an error."""
    if not constants:
        return raw
    import ibis

    if isinstance(column_map, str):  # a preset maps only the columns the source has
        column_map = {s: c for s, c in COLUMN_MAPS.get(column_map, {}).items() if s in raw.columns}
    mapped = set(column_map.values()) if isinstance(column_map, Mapping) else set()
    for column in constants:
        if column in raw.columns or column in mapped:
            raise SchemaError(table, column, "constants names a column the source already has",
                              hint="drop it from constants or from column_map")  # fmt: skip
    return raw.mutate(**{str(c): ibis.literal(v) for c, v in constants.items()})


def _filtered(
    t: ir.Table, table: str, engine: Engine, *, start: Any, end: Any, filters: Any, keep: bool
) -> tuple[ir.Table, dict[str, int]]:
    """Drop rows without a key column, then apply start/end and ``filters`` (checked by the
    caller); with ``keep``, a filtered table is kept anew (the caller releases the input).
    Returns it and the dropped counts."""
    import ibis
    import pandas as pd

    spec = spec_for(table)
    dropped: dict[str, int] = {}
    keys = [c for c in spec.required if spec.types[c] in ("id", "text", "timestamp")]
    # each dropped row counted once, under the first key it lacks
    lacks = {c: t[c].isnull() for c in keys}
    for i, c in enumerate(keys):
        for before in keys[:i]:
            lacks[c] = lacks[c] & t[before].notnull()
    missing = engine.to_pandas(t.aggregate(**{c: lacks[c].sum() for c in keys}))
    for c in keys:
        n = int(missing[c].iloc[0] or 0)
        if n:
            dropped[f"rows without {c}"] = n
    out = t.filter(*[t[c].notnull() for c in keys]) if dropped else t
    if start is not None:
        out = out.filter(out.timestamp >= ibis.literal(pd.Timestamp(start, tz="UTC")))
    if end is not None:
        out = out.filter(out.timestamp < ibis.literal(pd.Timestamp(end, tz="UTC")))
    for column, wanted in (filters or {}).items():
        values = list(wanted) if isinstance(wanted, (list, tuple, set)) else [wanted]
        out = out.filter(out[column].isin(values))
    if out is t or not keep:
        return out, dropped
    return engine.materialize(out, prefix=f"cjlib_{table}"), dropped


def report_frame(tables: Sequence[LoadedTable]) -> pd.DataFrame:
    """One row per loaded table: source, rows read, rows loaded, dropped, duplicates, notes."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "table": t.report.table,
                "source": t.report.source,
                "rows_read": t.report.rows_read,
                "rows_loaded": t.report.rows_loaded,
                "dropped": sum(t.report.dropped.values()),
                "exact_duplicates": t.report.duplicates,
                "notes": "; ".join(t.report.notes),
            }
            for t in tables
        ]
    )


def load_events(source: Any, **kwargs: Any) -> LoadedTable:
    """Events: ``customer_id, timestamp, event`` (+ channel, stage, revenue, session_id...)."""
    return load_table("events", source, **kwargs)


def load_customers(source: Any, **kwargs: Any) -> LoadedTable:
    """Customers: ``customer_id`` (+ demographics, signup, acquisition channel...)."""
    return load_table("customers", source, **kwargs)


def load_experiments(source: Any, **kwargs: Any) -> LoadedTable:
    """Experiment assignments: ``customer_id, experiment, variant`` (+ assigned_at, covariates)."""
    return load_table("experiments", source, **kwargs)


def load_surveys(source: Any, **kwargs: Any) -> LoadedTable:
    """Survey answers: ``customer_id, timestamp`` (+ stage, touchpoint, nps, csat, comment)."""
    return load_table("surveys", source, **kwargs)


def load_costs(source: Any, **kwargs: Any) -> LoadedTable:
    """Channel costs: ``channel, spend`` (+ period or date)."""
    return load_table("costs", source, **kwargs)


def sample_path(table: str) -> Path:
    """Path of a bundled sample table (``data/<table>.csv``), made by :mod:`cjlib.synth`."""
    spec_for(table)
    path = _SAMPLE_DIR / f"{table}.csv"
    if not path.exists():
        raise FileNotFoundError(f"sample file {path} is missing; run `make data` to regenerate it")
    return path


def load_sample(table: str = "events", **kwargs: Any) -> LoadedTable:
    """Load a bundled sample table (``events``, ``customers``, ``experiments``, ...)."""
    return load_table(table, sample_path(table), **kwargs)
