"""Dates that are not ISO 8601 (``01/03/2024 12:00``, ``13.03.2024``, ``Mar 1, 2024 9:05 PM``):
which way a text timestamp column is written, and parsing it in the engine (helpers of
:mod:`cjlib.checks`).

Formats use Python's ``strptime`` codes. On DuckDB they go to ``try_strptime`` as they are; on
Spark they are translated to Java patterns for ``try_to_timestamp`` (two-digit years then pivot
as on DuckDB: ``99`` is 1999, ``68`` is 2068). Either way a value that does
not fit is null (the loader then reports it as unreadable), never an error mid-query.

Detection (:func:`detect`) reads the whole column once, and only when its first values are not
ISO. Day-first and month-first formats are each tried on every non-ISO value; the one that reads
them all wins. When both do (no day above 12 anywhere) the column is ambiguous and the loader
refuses it, naming both readings: guessing would swap days and months silently.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from cjlib.schema import SchemaError

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pandas as pd

    from cjlib.engine import Engine

__all__ = ["DAY_FIRST", "MONTH_FIRST", "NAMED", "ISO_START", "detect", "parse", "check_format"]

_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", " %I:%M %p", " %I:%M:%S %p")


def _with_times(dates: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(d + t for d in dates for t in _TIMES)


# two-digit years first: %Y would read "99" as the year 99 (a four-digit year never fits %y)
DAY_FIRST = _with_times(("%d/%m/%y", "%d/%m/%Y", "%d.%m.%y", "%d.%m.%Y", "%d-%m-%y", "%d-%m-%Y"))
MONTH_FIRST = _with_times(("%m/%d/%y", "%m/%d/%Y", "%m-%d-%y", "%m-%d-%Y"))
# unambiguous however the rest is written: year first, or the month as a word
NAMED = _with_times(
    ("%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%d %b %Y", "%d-%b-%y", "%d-%b-%Y", "%b %d, %Y", "%b %d %Y",
     "%d %B %Y", "%B %d, %Y", "%B %d %Y")
)  # fmt: skip
ISO_START = r"^\s*[+-]?\d{4}-\d{1,2}-\d{1,2}"  # what the engine's own cast reads

_JAVA = {  # strptime code -> Java pattern letters (Spark); one letter parses 1 or 2 digits
    "d": "d", "m": "M", "Y": "yyyy", "y": "yy", "H": "H", "M": "mm", "S": "ss",
    "f": "SSSSSS", "I": "h", "p": "a", "b": "MMM", "B": "MMMM",
}  # fmt: skip


def check_format(fmt: str) -> str:
    """``fmt`` if it is a timestamp format cjlib can run on every engine, else ``ValueError``."""
    if not isinstance(fmt, str) or not re.search(r"%[dmYy]|%[bB]", fmt):
        raise ValueError(
            f"timestamp_format {fmt!r} must be a strptime format with a day, month and year, "
            "e.g. '%d/%m/%Y %H:%M'"
        )
    unknown = sorted({c for c in re.findall(r"%(.)", fmt) if c not in _JAVA})
    if unknown:
        raise ValueError(
            f"timestamp_format {fmt!r}: unsupported code(s) {', '.join('%' + c for c in unknown)}; "
            f"use {' '.join('%' + c for c in _JAVA)}"
        )
    return fmt


def _java(fmt: str) -> str:
    """The Java pattern of ``fmt``; codes with no separator between them (``%Y%m%d``) take
    fixed two-digit widths (``yyyyMMdd``): Java cannot split ``yyyyMd``."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            letters = _JAVA[fmt[i + 1]]
            packed = fmt[i + 2 : i + 3] == "%" or (i >= 2 and fmt[i - 2] == "%")
            out.append(letters * 2 if packed and len(letters) == 1 else letters)
            i += 2
        else:
            out.append(f"'{fmt[i]}'" if fmt[i].isalpha() else fmt[i])
            i += 1
    return "".join(out)


_FOUR_DIGITS = r"\d{4}"  # room for a four-digit year


def parse(text: ir.StringValue, formats: tuple[str, ...], engine: Engine) -> ir.TimestampValue:
    """``text`` read with the first of ``formats`` that fits (null when none does), as UTC.

    A format with ``%Y`` reads only values holding a four-digit number: DuckDB's and Java's
    four-digit year also takes one or two digits, so ``%Y.%m.%d`` read ``07.08.18`` as the year
    7 and ``%d %b %Y`` read ``13 Mar 24`` as the year 24."""
    import ibis

    from cjlib.sqlfuncs import builtin

    four = text.re_search(_FOUR_DIGITS)
    runs: list[tuple[bool, list[str]]] = []  # consecutive formats alike in needing four digits
    for f in formats:
        if runs and runs[-1][0] == ("%Y" in f):
            runs[-1][1].append(f)
        else:
            runs.append(("%Y" in f, [f]))
    each = []
    for needs_year, fmts in runs:
        if engine.name == "duckdb":
            fn = builtin(engine.name, "parse_time_any")
            found = fn(text, ibis.literal(fmts, "array<string>"))
        else:
            fn = builtin(engine.name, "parse_time")
            parsed = [_pivot(fn(text, ibis.literal(_java(f))), f) for f in fmts]
            found = ibis.coalesce(*parsed) if len(parsed) > 1 else parsed[0]
        each.append(ibis.ifelse(four, found, ibis.null(found.type())) if needs_year else found)
    found = ibis.coalesce(*each) if len(each) > 1 else each[0]
    return found.cast("timestamp('UTC')")


def _pivot(ts: ir.TimestampValue, fmt: str) -> ir.TimestampValue:
    """Two-digit years as DuckDB and POSIX ``strptime`` read them: 69-99 -> 1969-1999, 00-68 ->
    2000-2068 (Spark's ``yy`` reads every one as 20xx)."""
    if "%y" not in fmt:
        return ts
    import ibis

    return ibis.ifelse(ts.year() >= 2069, ts - ibis.interval(years=100), ts)


def detect(
    text: ir.StringColumn, sample: pd.Series, engine: Engine, table: str, column: str
) -> tuple[str, ...] | None:
    """The formats a text timestamp column is written in, or ``None`` when it is ISO 8601.

    ``sample``: the column's first filled values. When they are all ISO nothing more is read.
    Otherwise every non-ISO value of the column is tried day-first and month-first (year-first
    and month-name dates fit both); :class:`SchemaError` when both read every value."""
    if not len(sample) or sample.str.match(ISO_START).all():
        return None
    import ibis

    other = text.notnull() & (text != "") & ~text.re_search(ISO_START)
    day, month = DAY_FIRST + NAMED, MONTH_FIRST + NAMED
    fails = {
        name: ibis.cases((other & parse(text, fmts, engine).isnull(), 1), else_=0).sum()
        for name, fmts in (("day", day), ("month", month), ("named", NAMED))
    }
    counts = engine.to_pandas(text.name("v").as_table().aggregate(**fails)).iloc[0]
    counts = {k: int(v or 0) for k, v in counts.items()}
    if counts["named"] == 0:
        return NAMED
    if counts["day"] == 0 and counts["month"] == 0:
        example = sample[~sample.str.match(ISO_START)].iloc[0]
        raise SchemaError(
            table,
            column,
            f"dates such as {example!r} read both day-first and month-first (no day above 12)",
            hint="say which: timestamp_format='%d/%m/%Y %H:%M' (day first) or "
            "'%m/%d/%Y %H:%M' (month first), with the time part your export uses",
        )
    # the reading that fits more values; what fits neither is reported as unreadable
    return day if counts["day"] <= counts["month"] else month
