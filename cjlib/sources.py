"""Reading a source into an engine: a pandas DataFrame, an Ibis table, a CSV or Parquet file (or
a folder of Parquet files), or a table of a DuckDB database file (:meth:`Engine.read`)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pandas as pd

    from cjlib.engine import Engine

__all__ = ["read"]

_CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".gz"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_DUCKDB_SUFFIXES = {".duckdb", ".ddb", ".db"}
_counter = itertools.count()


def read(engine: Engine, source: Any, *, table: str | None = None) -> ir.Table:
    """An Ibis table for ``source`` on ``engine``. Reading never modifies the source. ``table``
    names the table inside a DuckDB file."""
    import ibis
    import pandas as pd

    if hasattr(source, "expr") and hasattr(source, "report"):  # a LoadedTable
        return source.expr
    if isinstance(source, ibis.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return ibis.memtable(_to_microseconds(source))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be a path (CSV, Parquet, DuckDB file), a pandas DataFrame or an Ibis "
            f"table, got {type(source).__name__}"
        )
    if not str(source).strip():  # Path("") is the working folder
        raise ValueError("source is an empty path: give a CSV, Parquet or DuckDB file")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"source {str(path)!r} does not exist")
    if path.is_dir() and not any(path.glob("*.parquet")):
        raise FileNotFoundError(f"source {str(path)!r} is a folder with no *.parquet files")
    suffixes = {s.lower() for s in path.suffixes}
    if path.is_dir() or suffixes & _PARQUET_SUFFIXES:
        target = str(path / "*.parquet") if path.is_dir() else str(path)
        return engine.con.read_parquet(target)
    if suffixes & _DUCKDB_SUFFIXES:
        return _read_duckdb_file(engine, path, table)
    if suffixes & _CSV_SUFFIXES:
        return _read_csv(engine, path)
    raise ValueError(f"source {str(path)!r}: unknown file type; use .csv/.tsv, .parquet or .duckdb")


def _delimiter(path: Path) -> str:
    """The header line's most frequent separator among , ; tab | (DuckDB sniffs the file
    itself; Spark reads commas unless told)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        head = f.readline()
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_csv(engine: Engine, path: Path) -> ir.Table:
    if engine.name == "duckdb":
        # all_varchar: the loader parses types itself so bad values are reported, not guessed
        return engine.con.read_csv(str(path), all_varchar=True)
    # RFC 4180 quoting (a quote inside a quoted field is doubled; Spark's default escape is a
    # backslash) and quoted line breaks (survey comments)
    return engine.con.read_csv(
        str(path),
        header=True,
        inferSchema=False,
        sep=_delimiter(path),
        escape='"',
        multiLine=True,
    )


def _read_duckdb_file(engine: Engine, path: Path, table: str | None) -> ir.Table:
    if not table:
        raise ValueError(f"source {str(path)!r} is a DuckDB database: pass table=<name>")
    if engine.name == "duckdb":
        key = str(path.resolve())
        if key not in engine._attached:  # attached once per engine, read-only
            alias = f"cjlib_src_{next(_counter)}"
            engine.con.attach(key, name=alias, read_only=True)
            engine._attached[key] = alias
        alias = engine._attached[key]
        tables = engine.con.list_tables(database=(alias, "main"))
        if table not in tables:
            raise ValueError(f"table {table!r} not found in {str(path)!r}; tables: {tables}")
        return engine.con.table(table, database=(alias, "main"))
    import duckdb
    import ibis

    with duckdb.connect(str(path), read_only=True) as src:
        return ibis.memtable(src.table(table).arrow())


def _to_microseconds(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with timestamps finer than a microsecond floored to it, on a shallow copy (the
    engines store microseconds; Arrow refuses to drop pandas' nanoseconds, so a frame built from
    float hours could not be read at all)."""
    import pandas as pd

    out = df
    for i, (_, col) in enumerate(df.items()):
        if pd.api.types.is_datetime64_any_dtype(col) and (col.dt.nanosecond != 0).any():
            out = out.copy(deep=False) if out is df else out
            out.isetitem(i, col.dt.floor("us"))
    return out
