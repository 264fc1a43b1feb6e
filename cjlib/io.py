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

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cjlib.engine import Engine, get_engine
from cjlib.schema import DataQualityWarning, SchemaError, TableSpec, resolve_column_map, spec_for

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

_TZ_SUFFIX = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|z|[+-]\d\d(:?\d\d)?|UTC)$"
_EXAMPLES = 5
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
    duplicates: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    def _repr_html_(self) -> str:
        dropped = ", ".join(f"{n:,} {why}" for why, n in self.dropped.items()) or "none"
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (
            f"<p><b>{self.table}</b> from <code>{self.source}</code>: {self.rows_read:,} rows "
            f"read, {self.rows_loaded:,} loaded; dropped: {dropped}; exact duplicate rows: "
            f"{self.duplicates:,}</p><ul>{notes}</ul>"
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


# -- coercion -----------------------------------------------------------------------------------
def _timestamp_expr(col: ir.Column, table: str, name: str, engine: Engine):
    """(parsed UTC timestamp, checks) for one column; checks are ``{label: bool expr}``."""
    import ibis

    utc = ibis.dtype("timestamp('UTC')")
    dtype = col.type()
    if dtype.is_string():
        text = col.strip()
        present = text.notnull() & (text != "")
        aware = present & text.re_search(_TZ_SUFFIX)
        parsed = ibis.cases((present, text.try_cast(utc)), else_=ibis.null(utc))
        checks = {
            "unparseable": present & parsed.isnull(),
            "tz_aware": aware,
            "tz_naive": present & ~aware & parsed.notnull(),
        }
        return parsed, checks
    if dtype.is_timestamp():
        return col.cast(utc), {}
    if dtype.is_date():
        return col.cast(utc), {}
    if dtype.is_integer() or dtype.is_floating():
        biggest = engine.to_pandas(col.abs().max())
        unit = "s"
        for limit, candidate in ((1e17, "ns"), (1e14, "us"), (1e11, "ms")):
            if biggest is not None and biggest == biggest and biggest > limit:
                unit = candidate
                break
        scaled = {"ns": col / 1000, "us": col, "ms": col * 1000, "s": col * 1_000_000}[unit]
        epoch = ibis.timestamp("1970-01-01 00:00:00")
        return (epoch + scaled.cast("int64").as_interval("us")).cast(utc), {}
    raise SchemaError(table, name, f"cannot read a timestamp from a column of type {dtype}")


def _coerce(t: ir.Table, spec: TableSpec, engine: Engine) -> tuple[ir.Table, dict]:
    """Cast canonical columns to their types; return the table and ``{(column, kind): bad}``."""
    import ibis

    values: dict[str, Any] = {}
    checks: dict[tuple[str, str], Any] = {}
    for name, role in spec.types.items():
        if name not in t.columns:
            continue
        col = t[name]
        if role in ("id", "text"):
            text = col.cast("string")
            if role == "id" and col.type().is_floating():
                text = col.cast("int64").cast("string")  # 12345.0 -> "12345"
            values[name] = ibis.cases((text.strip() == "", ibis.null("string")), else_=text)
        elif role == "timestamp":
            parsed, ts_checks = _timestamp_expr(col, spec.name, name, engine)
            values[name] = parsed
            checks.update({(name, k): v for k, v in ts_checks.items()})
        else:
            if col.type().is_string():
                text = col.strip()
                present = text.notnull() & (text != "")
                number = ibis.cases((present, text.try_cast("float64")), else_=ibis.null("float64"))
                checks[(name, "not_a_number")] = present & number.isnull()
            else:
                number = col.cast("float64")
            values[name] = number
            low, high, integer = spec.bounds.get(name, (None, None, False))
            bad = ibis.literal(False)
            if low is not None:
                bad = bad | (number < low)
            if high is not None:
                bad = bad | (number > high)
            if integer:
                bad = bad | (number != number.round())
            checks[(name, "out_of_range")] = number.notnull() & bad
    return t.mutate(**values), checks


def _check_pandas_timestamps(df: pd.DataFrame, spec: TableSpec) -> None:
    """Mixed naive/aware Python datetimes in an object column cannot reach the engine intact."""
    import pandas as pd

    for name, role in spec.types.items():
        if role != "timestamp" or name not in df.columns or df[name].dtype != object:
            continue
        stamps = df[name].map(lambda v: getattr(v, "tzinfo", "n/a") if v is not None else "n/a")
        aware = stamps.map(lambda z: z is not None and z != "n/a")
        naive = stamps.map(lambda z: z is None)
        if aware.any() and naive.any():
            raise SchemaError(
                spec.name,
                name,
                "mixes time-zone-naive and time-zone-aware timestamps",
                count=int(naive.sum()),
                examples=df.loc[naive].head(_EXAMPLES),
                hint="localise the naive ones (e.g. tz_localize('UTC')) first",
            )
        if aware.any() or naive.any():
            df[name] = pd.to_datetime(df[name], utc=True)


_MESSAGES = {
    "unparseable": "timestamps that cannot be read",
    "not_a_number": "values that are not numbers",
    "out_of_range": "values out of range",
}


def _bounds_text(spec: TableSpec, column: str) -> str:
    low, high, integer = spec.bounds.get(column, (None, None, False))
    parts = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    return " and ".join(p for p in parts if p) + (" (whole numbers)" if integer else "")


def _validate(t: ir.Table, raw: ir.Table, spec: TableSpec, checks: dict, engine: Engine) -> dict:
    """Run every check in one query; raise on the first failure with examples."""
    if not checks:
        return {"rows": int(engine.to_pandas(t.count()))}
    import ibis

    # run the checks on the original rows so examples show what the file holds
    named = {f"c{i}": cond for i, cond in enumerate(checks.values())}
    probe = raw.mutate(**{k: ibis.cases((v, 1), else_=0) for k, v in named.items()})
    totals = engine.to_pandas(
        probe.aggregate(rows=probe.count(), **{k: probe[k].sum() for k in named})
    )
    counts = {key: int(totals[k].iloc[0] or 0) for key, k in zip(checks, named, strict=True)}
    # mixed zones first: they explain the unparseable rows that often come with them
    order = sorted(counts, key=lambda key: key[1] != "tz_aware")
    for column, kind in order:
        count = counts[(column, kind)]
        if kind == "tz_aware" and count and counts.get((column, "tz_naive"), 0):
            naive = counts[(column, "tz_naive")]
            examples = engine.to_pandas(raw.filter(checks[(column, "tz_naive")]), limit=_EXAMPLES)
            raise SchemaError(
                spec.name,
                column,
                f"mixes time-zone-naive and time-zone-aware "
                f"timestamps ({count:,} with an offset, {naive:,} without)",
                count=naive,
                examples=examples,
                hint="one group is in the wrong zone: fix the export, or convert "
                "all to UTC before loading",
            )
        if kind in _MESSAGES and count:
            examples = engine.to_pandas(raw.filter(checks[(column, kind)]), limit=_EXAMPLES)
            hint = spec.hints.get(column, "")
            problem = _MESSAGES[kind]
            if kind == "out_of_range":
                problem += f" (allowed: {_bounds_text(spec, column)})"
            raise SchemaError(spec.name, column, problem, count=count, examples=examples, hint=hint)
    return {"rows": int(totals["rows"].iloc[0])}


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
        one of each), or ``"error"``.
    """
    import pandas as pd

    spec = spec_for(table)
    if duplicates not in ("report", "drop", "error"):
        raise ValueError(f"duplicates must be 'report', 'drop' or 'error', got {duplicates!r}")
    engine = engine or getattr(source, "engine", None) or get_engine()
    label = str(source) if isinstance(source, (str, Path)) else type(source).__name__
    if isinstance(source, pd.DataFrame):
        source = source.copy()  # never touch the caller's frame
        _check_pandas_timestamps(source, spec)
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
        )
    finally:
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
) -> LoadedTable:
    import ibis
    import pandas as pd

    mapping = resolve_column_map(table, raw.columns, column_map)
    raw = raw.rename({new: old for old, new in mapping.items()}) if mapping else raw
    coerced, checks = _coerce(raw, spec, engine)
    counts = _validate(coerced, raw, spec, checks, engine)
    rows_read = counts["rows"]

    t, dropped = coerced, {}
    keys = [c for c in spec.required if spec.types[c] in ("id", "text", "timestamp")]
    missing = engine.to_pandas(t.aggregate(**{c: t[c].isnull().sum() for c in keys}))
    for c in keys:
        n = int(missing[c].iloc[0] or 0)
        if n:
            dropped[f"rows without {c}"] = n
    if dropped:
        t = t.filter(*[t[c].notnull() for c in keys])
    time_col = "timestamp" if "timestamp" in t.columns else None
    if (start is not None or end is not None) and time_col is None:
        raise ValueError(f"start/end filter a timestamp column; table {table!r} has none")
    if start is not None:
        t = t.filter(t[time_col] >= ibis.literal(pd.Timestamp(start, tz="UTC")))
    if end is not None:
        t = t.filter(t[time_col] < ibis.literal(pd.Timestamp(end, tz="UTC")))
    for column, wanted in (filters or {}).items():
        if column not in t.columns:
            from cjlib.schema import did_you_mean

            raise SchemaError(
                table,
                column,
                "filters names an unknown column",
                hint=did_you_mean(column, t.columns),
            )
        values = list(wanted) if isinstance(wanted, (list, tuple, set)) else [wanted]
        t = t.filter(t[column].isin(values))

    t = engine.materialize(t, prefix=f"cjlib_{table}")
    try:
        rows = int(engine.to_pandas(t.count()))
        if rows == 0:
            raise SchemaError(
                table,
                None,
                f"no rows left after filters (read {rows_read:,}; "
                f"start={start}, end={end}, filters={dict(filters or {})})",
            )
        dup_keys = list(duplicate_keys or t.columns)
        unknown = [k for k in dup_keys if k not in t.columns]
        if unknown:
            raise ValueError(f"duplicate_keys: unknown columns {unknown}; columns are {t.columns}")
        n_distinct = int(engine.to_pandas(t.select(dup_keys).distinct().count()))
        n_dupes = rows - n_distinct
        notes: list[str] = []
        if n_dupes:
            grouped = t.group_by(dup_keys).aggregate(copies=t.count())
            examples = engine.to_pandas(grouped.filter(grouped.copies > 1), limit=_EXAMPLES)
            if duplicates == "error":
                raise SchemaError(
                    table,
                    ", ".join(dup_keys),
                    "exact duplicate rows",
                    count=n_dupes,
                    examples=examples,
                    hint="pass duplicates='drop' to keep one of each",
                )
            if duplicates == "drop":
                kept = engine.materialize(
                    t.distinct(on=dup_keys, keep="first") if duplicate_keys else t.distinct(),
                    prefix=f"cjlib_{table}",
                )
                engine.release(t)
                t = kept
                dropped["exact duplicates"] = n_dupes
                rows = n_distinct
            else:
                notes.append(
                    f"{n_dupes:,} exact duplicate rows kept (duplicates='drop' removes them)"
                )
                warnings.warn(
                    f"{table}: {n_dupes:,} exact duplicate rows on {dup_keys} (kept; "
                    f"pass duplicates='drop' to remove)\n{examples.to_string()}",
                    DataQualityWarning,
                    stacklevel=3,
                )
    except Exception:
        engine.release(t)
        raise
    for what, n in dropped.items():
        notes.append(f"dropped {n:,} {what}")
    report = LoadReport(table, label, rows_read, rows, mapping, dropped, n_dupes, tuple(notes))
    return LoadedTable(table, t, engine, report)


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
