"""The backends' own SQL functions as Ibis builtin UDFs, and DuckDB identifier quoting (helpers
of :mod:`cjlib.engine`)."""

from __future__ import annotations

from typing import Any


def quote(name: str) -> str:
    """A quoted DuckDB identifier (names come from data: never spliced in unquoted)."""
    import sqlglot as sg

    return sg.to_identifier(name, quoted=True).sql("duckdb")


_BUILTINS = {  # cjlib name -> ({backend: SQL function}, (argument type, result type))
    "epoch_us": ({"duckdb": "epoch_us", "pyspark": "unix_micros"}, ("timestamp('UTC')", "int64")),
    "from_epoch_us": (
        {"duckdb": "make_timestamptz", "pyspark": "timestamp_micros"},
        ("int64", "timestamp('UTC')"),
    ),
    "list_distinct": ({"duckdb": "list_distinct"}, ("array<string>", "array<string>")),
    # text -> naive timestamp or null, with the first format that fits (cjlib.timeformats)
    "parse_time_any": ({"duckdb": "try_strptime"}, (("string", "array<string>"), "timestamp")),
    "parse_time": ({"pyspark": "try_to_timestamp"}, (("string", "string"), "timestamp")),
}
_builtin_cache: dict[tuple[str, str], Any] = {}


def builtin(backend: str, name: str) -> Any:
    """An Ibis builtin scalar UDF calling the backend's own function for ``name``."""
    key = (backend, name)
    if key not in _builtin_cache:
        import ibis
        import ibis.expr.datatypes as dt

        functions, (arg, out) = _BUILTINS[name]
        sql = functions.get(backend)
        if sql is None:  # pragma: no cover - callers only ask for what their backend has
            raise NotImplementedError(f"{name} is not available on {backend}")

        def fn(x):  # noqa: ANN001, ANN202 - types set below (annotations are strings here)
            ...

        def fn2(x, y):  # noqa: ANN001, ANN202
            ...

        if isinstance(arg, tuple):  # two arguments
            fn = fn2
            fn.__annotations__ = {"x": dt.dtype(arg[0]), "y": dt.dtype(arg[1])}
        else:
            fn.__annotations__ = {"x": dt.dtype(arg)}
        fn.__annotations__["return"] = dt.dtype(out)
        fn.__name__ = f"cjlib_{name}"
        _builtin_cache[key] = ibis.udf.scalar.builtin(name=sql)(fn)
    return _builtin_cache[key]
