"""Type coercion and contract checks, as engine expressions (used by :mod:`cjlib.io`).

Each canonical column is cast to its role's type; every check is a boolean expression over the
source rows, so one query counts all problems and a second fetches the first offending rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cjlib.engine import Engine
from cjlib.schema import SchemaError, TableSpec

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pandas as pd

__all__ = [
    "DECIMALS",
    "check_decimal",
    "coerce",
    "check_pandas_timestamps",
    "validate",
    "infer_properties",
    "number_from_text",
]

_TZ_SUFFIX = r"\d:\d\d(:\d\d(\.\d+)?)?(\s*[AaPp][Mm])?\s*(Z|z|[+-]\d\d(:?\d\d)?|UTC)$"
_OFFSET = r"\s*(Z|z|UTC|[+-]\d\d(:?\d\d)?)$"  # the zone part _TZ_SUFFIX ends with


def _without_offset(text: ir.StringValue, aware: ir.BooleanValue) -> tuple[Any, Any]:
    """(``text`` without a trailing zone, the zone's offset in microseconds) for values such as
    ``13/03/2024 09:05 +02:00`` that the engine's ISO cast does not read; values without a zone
    (``aware`` false) come back as they are, with offset 0."""
    import ibis

    zone = ibis.ifelse(aware, text.re_extract(_OFFSET, 1), "")
    digits = zone.re_replace(r"[^0-9]", "")
    hours = ibis.ifelse(digits.length() >= 2, digits.substr(0, 2), "0").cast("int64")
    minutes = ibis.ifelse(digits.length() >= 4, digits.substr(2, 2), "0").cast("int64")
    sign = ibis.ifelse(zone.startswith("-"), -1, 1)
    offset = sign * (hours * 60 + minutes) * 60_000_000
    return ibis.ifelse(aware, text.re_replace(_OFFSET, ""), text), offset


EXAMPLES = 5


def _timestamp_expr(col: ir.Column, table: str, name: str, engine: Engine, fmt: str | None = None):
    """(parsed UTC timestamp, checks) for one column; checks are ``{label: bool expr}``.

    Text is read as ISO 8601 by the engine's cast, as epoch numbers when it holds only those, and
    otherwise in the day-first, month-first, year-first (``20201101``) or named-month formats that
    :func:`cjlib.timeformats.detect` finds (``fmt``: one strptime format, given by the user); a zone
    after those (``+02:00``, ``+0530``, ``Z``, ``UTC``) moves the value to UTC. Numbers are epoch
    seconds, milliseconds, microseconds or nanoseconds by magnitude, except integers from 19000101
    to 21001231, which are dates written as ``YYYYMMDD``."""
    import ibis

    from cjlib import timeformats

    utc = ibis.dtype("timestamp('UTC')")
    dtype = col.type()
    sample = _sample(col, engine) if dtype.is_string() else None
    if fmt is None and sample is not None and _epoch_text(sample):
        text = col.strip()
        present = text.notnull() & (text != "")
        number = text.try_cast("float64")
        parsed, _ = _timestamp_expr(number, table, name, engine)
        return parsed, {"unparseable": present & number.isnull()}
    if dtype.is_string():
        text = col.strip()
        present = text.notnull() & (text != "")
        aware = present & text.re_search(_TZ_SUFFIX)
        # other layouts may end with a zone too (13/03/2024 09:05 +02:00): read without it,
        # then moved to UTC
        base, offset = _without_offset(text, aware)

        def local(formats: tuple[str, ...]) -> Any:
            read = engine.epoch_us(timeformats.parse(base, formats, engine))
            return engine.from_epoch_us(read - offset).cast(utc)

        if fmt is not None:
            value = local((timeformats.check_format(fmt),))
        else:
            zoned = sample.str.replace(_OFFSET, "", regex=True)
            formats = timeformats.detect(base, zoned, engine, table, name)
            # the engine's own cast, for ISO 8601 only: it also read 22/11/21 as the year 22
            value = ibis.ifelse(text.re_search(timeformats.ISO_START), text.try_cast(utc), None)
            if formats is not None:  # ISO values still read as such
                value = value.coalesce(local(formats))
        parsed = ibis.cases((present, value), else_=ibis.null(utc))
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
        span = engine.to_pandas(col.name("v").as_table().aggregate(lo=col.min(), hi=col.max()))
        lo, hi = span["lo"].iloc[0], span["hi"].iloc[0]
        if dtype.is_integer() and lo == lo and _YYYYMMDD[0] <= lo and hi <= _YYYYMMDD[1]:
            # 20201101: a date written as a number (GA4's event_date, CDNOW), not seconds in
            # August 1970
            text = col.cast("string")
            parsed = timeformats.parse(text, ("%Y%m%d",), engine)
            return parsed, {"unparseable": col.notnull() & parsed.isnull()}
        biggest = max(abs(lo), abs(hi)) if lo == lo else 0.0  # an all-null column: seconds
        unit = "s"
        for limit, candidate in ((1e17, "ns"), (1e14, "us"), (1e11, "ms")):
            if biggest > limit:
                unit = candidate
                break
        scaled = {"ns": col / 1000, "us": col, "ms": col * 1000, "s": col * 1_000_000}[unit]
        epoch = ibis.timestamp("1970-01-01 00:00:00")
        return (epoch + scaled.cast("int64").as_interval("us")).cast(utc), {}
    raise SchemaError(table, name, f"cannot read a timestamp from a column of type {dtype}")


_YYYYMMDD = (19000101, 21001231)  # integers in this range are dates, not epoch seconds
_EPOCH_TEXT = r"^[+-]?\d{9,19}(\.\d+)?$"  # 9+ digits: epoch seconds from 1973 on, ms, us, ns


def _sample(col: ir.StringColumn, engine: Engine, size: int = 1000) -> pd.Series:
    """The filled values among the column's first ``size`` rows, stripped."""
    values = engine.to_pandas(col.strip().name("v").as_table().limit(size))["v"]
    return values[values.notna() & (values != "")].astype(str)


def _epoch_text(values: pd.Series) -> bool:
    """Whether sampled text holds epoch numbers (a CSV of GA4's ``event_timestamp``, in
    microseconds, or of Unix seconds): every value is a number of 9 to 19 digits. Eight-digit
    dates such as 20240301 are not taken for seconds."""
    return bool(len(values)) and bool(values.str.fullmatch(_EPOCH_TEXT).all())


_WHITESPACE = (9, 10, 11, 12, 13, 32)  # what Ibis's strip() removes


DECIMALS = (".", ",")
# with decimal commas a point may only group thousands: 1.234,75 but not 12.5 (a point decimal)
_COMMA_NUMBER = r"^[+-]?(\d+|\d{1,3}(\.\d{3})+)(,\d*)?([eE][+-]?\d+)?$"


def check_decimal(decimal: str) -> None:
    if decimal not in DECIMALS:
        raise ValueError(f"decimal must be one of {list(DECIMALS)}, got {decimal!r}")


def number_from_text(text: ir.StringValue, decimal: str = ".") -> ir.FloatingValue:
    """Text to float64 (null where it is no number). ``decimal=","``: decimal commas, with
    points (``1.234,75``) or spaces (``1 234,75``) grouping thousands."""
    import ibis

    check_decimal(decimal)
    if decimal == ".":
        return text.try_cast("float64")
    plain = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    number = plain.replace(".", "").replace(",", ".").try_cast("float64")
    return ibis.ifelse(plain.re_search(_COMMA_NUMBER), number, ibis.null("float64"))


def _blank(text: ir.StringValue) -> ir.BooleanValue:
    """Empty or whitespace only. The strip (a new string per value) runs only for values that
    start with whitespace: loading 1e7 events took 8.3 s with a strip of every id, 4.6 s so."""
    return (text == "") | (text.ascii_str().isin(list(_WHITESPACE)) & (text.strip() == ""))


def coerce(
    t: ir.Table,
    spec: TableSpec,
    engine: Engine,
    timestamp_format: str | None = None,
    decimal: str = ".",
) -> tuple[ir.Table, dict]:
    """Cast canonical columns to their types; return the table and ``{(column, kind): bad}``.
    ``timestamp_format``: the strptime format of the text timestamp columns (else detected);
    ``decimal``: the decimal mark of text numbers (:func:`number_from_text`)."""
    import ibis

    values: dict[str, Any] = {}
    checks: dict[tuple[str, str], Any] = {}
    for name, role in spec.types.items():
        if name not in t.columns:
            continue
        col = t[name]
        if role in ("id", "text"):
            text = col.cast("string")
            if role == "id" and col.type().is_floating():  # 12345.0 -> "12345"; a fraction
                # stays (GA4's user_pseudo_id 1026454.4271112504 read by pandas as a float)
                whole = col == col.round()
                text = ibis.ifelse(whole, col.cast("int64").cast("string"), col.cast("string"))
            elif role == "id" and col.type().is_string() and _float_ids(col, engine):
                # "13085.0": a whole-number id written by a float column (a spreadsheet, pandas
                # with a missing value); read as "13085" so it matches the other tables' ids
                floaty = text.re_search(_FLOAT_ID)
                checks[(name, "float_id")] = floaty.fill_null(False)
                text = ibis.ifelse(floaty, text.re_replace(r"\.0+$", ""), text)
            values[name] = ibis.cases((_blank(text), ibis.null("string")), else_=text)
        elif role == "timestamp":
            parsed, ts_checks = _timestamp_expr(col, spec.name, name, engine, timestamp_format)
            values[name] = parsed
            checks.update({(name, k): v for k, v in ts_checks.items()})
        else:
            if col.type().is_string():
                text = col.strip()
                present = text.notnull() & (text != "")
                number = ibis.ifelse(present, number_from_text(text, decimal), None)
                checks[(name, "not_a_number")] = present & number.isnull()
            else:
                number = col.cast("float64")
            values[name] = number
            low, high, integer = spec.bounds.get(name, (None, None, False))
            bad = number.isinf()  # "inf" reads as a number but is no amount or score
            if low is not None:
                bad = bad | (number < low)
            if high is not None:
                bad = bad | (number > high)
            if integer:
                bad = bad | (number != number.round())
            checks[(name, "out_of_range")] = number.notnull() & bad
    return t.mutate(**values), checks


def check_pandas_timestamps(df: pd.DataFrame, spec: TableSpec) -> None:
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
                examples=df.loc[naive].head(EXAMPLES),
                hint="localise the naive ones (e.g. tz_localize('UTC')) first",
            )
        if aware.any() or naive.any():
            df[name] = pd.to_datetime(df[name], utc=True)


_FLOAT_ID = r"^[0-9]+\.0+$"


def _float_ids(col: ir.StringColumn, engine: Engine) -> bool:
    """Whether the column's first values include ids such as '13085.0' (only then is every
    value tested: a regular expression on every id of a large log costs seconds)."""
    return bool(_sample(col, engine).str.fullmatch(_FLOAT_ID).any())


# counted, not refused: reported as notes by the loader
NOTES = {"float_id": "ids such as '13085.0' (a float export) read without the '.0'"}
_MESSAGES = {
    "unparseable": "timestamps that cannot be read",
    "not_a_number": "values that are not numbers",
    "out_of_range": "values out of range",
}
_NOT_A_NUMBER = (
    "numbers are read with the decimal mark the loader's decimal= names ('.' by default, ',' "
    "for 12,50 or 1.234,75); currency signs and other thousands separators are not read"
)
_UNREADABLE = (
    "read are ISO 8601 (2024-03-13 09:05:00), epoch numbers, and dates such as 13/03/2024, "
    "03/13/2024 9:05 PM, 13.03.2024, 20240313 or Mar 13, 2024; for another layout pass "
    "timestamp_format (strptime codes, e.g. '%d/%m/%Y %H:%M')"
)


def _bounds_text(spec: TableSpec, column: str) -> str:
    low, high, integer = spec.bounds.get(column, (None, None, False))
    parts = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    return " and ".join(p for p in parts if p) + (" (whole numbers)" if integer else "")


def validate(t: ir.Table, raw: ir.Table, spec: TableSpec, checks: dict, engine: Engine) -> dict:
    """Run every check in one query; raise on the first failure with examples."""
    if not checks:
        return {"rows": int(engine.to_pandas(t.count())), "notes": {}}
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
            examples = engine.to_pandas(raw.filter(checks[(column, "tz_naive")]), limit=EXAMPLES)
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
            examples = engine.to_pandas(raw.filter(checks[(column, kind)]), limit=EXAMPLES)
            # the table's own hints are about allowed values (revenue >= 0: refunds)
            hint = {"not_a_number": _NOT_A_NUMBER, "unparseable": _UNREADABLE}.get(kind)
            hint = hint or spec.hints.get(column, "")
            problem = _MESSAGES[kind]
            if kind == "out_of_range":
                problem += f" (allowed: {_bounds_text(spec, column)})"
            raise SchemaError(spec.name, column, problem, count=count, examples=examples, hint=hint)
    notes = {key: n for key, n in counts.items() if key[1] in NOTES and n}
    return {"rows": int(totals["rows"].iloc[0]), "notes": notes}


_SAMPLE = 10_000


def infer_properties(t: ir.Table, spec: TableSpec, engine: Engine, decimal: str = ".") -> ir.Table:
    """Text property columns (not in the contract) whose every value is a number become numbers.

    CSV files arrive as text; a covariate such as ``pre_period_sessions`` should not. Whole
    numbers become ``int64``, others ``float64``. Columns named ``*id`` stay text (leading zeros).
    """
    import ibis

    extra = [
        c
        for c in t.columns
        if c not in spec.types and t[c].type().is_string() and not c.lower().endswith("id")
    ]
    if not extra:
        return t

    def tally(rows: ir.Table, cols: list[str]) -> pd.Series:
        aggs = {}
        for i, c in enumerate(cols):
            text = rows[c].strip()
            present = text.notnull() & (text != "")
            number = number_from_text(text, decimal)
            aggs[f"n{i}"] = present.cast("int64").sum()
            aggs[f"bad{i}"] = (present & number.isnull()).cast("int64").sum()
            aggs[f"frac{i}"] = (present & (number != number.round())).cast("int64").sum()
        return engine.to_pandas(rows.aggregate(**aggs)).iloc[0]

    # a text value among the first rows settles a column (it stays text) without a full scan
    head = tally(t.limit(_SAMPLE), extra)
    extra = [c for i, c in enumerate(extra) if not head[f"bad{i}"]]
    if not extra:
        return t
    found = tally(t, extra)
    casts = {}
    for i, c in enumerate(extra):
        if found[f"n{i}"] and not found[f"bad{i}"]:
            text = t[c].strip()
            number = ibis.ifelse(text != "", number_from_text(text, decimal), None)
            casts[c] = number if found[f"frac{i}"] else number.cast("int64")
    return t.mutate(**casts) if casts else t
