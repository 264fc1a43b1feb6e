"""The data contract: canonical tables, their columns and the rules a loaded table must meet.

Five long tables (DESIGN §3). Required columns must be present after the ``column_map``; optional
columns are typed when present; any other column is kept as a property column.

========== ================================== ==============================================
table      required                           optional (typed when present)
========== ================================== ==============================================
events     customer_id, timestamp, event      channel, stage, revenue (>= 0), session_id
customers  customer_id                        age, gender, region, device, signup_date,
                                              acquisition_channel
experiments customer_id, experiment, variant  assigned_at
surveys    customer_id, timestamp             stage, touchpoint, nps (0-10), csat (1-5), comment
costs      channel, spend (>= 0)              period, date
========== ================================== ==============================================

Timestamps are UTC. Text without an offset is read as UTC; text with an offset (``Z``, ``+02:00``)
is converted to UTC; a column that mixes the two is an error, because one of them is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SchemaError",
    "DataQualityWarning",
    "TableSpec",
    "TABLES",
    "COLUMN_MAPS",
    "spec_for",
    "resolve_column_map",
]


class SchemaError(ValueError):
    """Input that breaks the data contract. Names the table, the column, the count and examples."""

    def __init__(
        self,
        table: str,
        column: str | None,
        problem: str,
        *,
        count: int | None = None,
        examples: Any = None,
        hint: str = "",
    ) -> None:
        self.table, self.column, self.count, self.examples = table, column, count, examples
        where = f"{table}.{column}" if column else table
        text = f"{where}: {problem}"
        if count is not None:
            text += f" ({count:,} row{'s' if count != 1 else ''})"
        if hint:
            text += f"; {hint}"
        if examples is not None and len(examples):
            text += f"\nfirst offending rows:\n{_format_examples(examples)}"
        super().__init__(text)


class DataQualityWarning(UserWarning):
    """Something in the input worth knowing (duplicates, dropped rows) that is not an error."""


def _format_examples(examples: Any) -> str:
    try:
        return examples.to_string(max_rows=5, max_colwidth=40)
    except AttributeError:
        return "\n".join(str(e) for e in list(examples)[:5])


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract.

    ``types`` gives each canonical column a role: ``id`` and ``text`` (strings), ``timestamp``,
    ``float``, ``int``. ``bounds`` gives ``(low, high, integer)`` for numeric columns.
    """

    name: str
    required: tuple[str, ...]
    types: Mapping[str, str]
    bounds: Mapping[str, tuple[float | None, float | None, bool]] = field(default_factory=dict)
    hints: Mapping[str, str] = field(default_factory=dict)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c for c in self.types if c not in self.required)


# fmt: off
TABLES: dict[str, TableSpec] = {
    "events": TableSpec(
        "events",
        ("customer_id", "timestamp", "event"),
        {"customer_id": "id", "timestamp": "timestamp", "event": "text", "channel": "text",
         "stage": "text", "revenue": "float", "session_id": "id"},
        {"revenue": (0, None, False)},
        {"revenue": "refunds belong in their own event type, not as negative revenue"},
    ),
    "customers": TableSpec(
        "customers",
        ("customer_id",),
        {"customer_id": "id", "age": "float", "gender": "text", "region": "text",
         "device": "text", "signup_date": "timestamp", "acquisition_channel": "text"},
        {"age": (0, 130, False)},
    ),
    "experiments": TableSpec(
        "experiments",
        ("customer_id", "experiment", "variant"),
        {"customer_id": "id", "experiment": "text", "variant": "text",
         "assigned_at": "timestamp"},
    ),
    "surveys": TableSpec(
        "surveys",
        ("customer_id", "timestamp"),
        {"customer_id": "id", "timestamp": "timestamp", "stage": "text", "touchpoint": "text",
         "nps": "int", "csat": "int", "comment": "text"},
        {"nps": (0, 10, True), "csat": (1, 5, True)},
        {"nps": "NPS answers are whole numbers from 0 to 10",
         "csat": "CSAT answers are whole numbers from 1 to 5"},
    ),
    "costs": TableSpec(
        "costs",
        ("channel", "spend"),
        {"channel": "text", "spend": "float", "period": "text", "date": "timestamp"},
        {"spend": (0, None, False)},
    ),
}
# fmt: on

# Vendor exports -> canonical names. Flattened column names as exported to CSV/Parquet.
# fmt: off
COLUMN_MAPS: dict[str, dict[str, str]] = {
    # GA4 BigQuery export (event_timestamp is microseconds since the epoch; read as such)
    "ga4": {"user_pseudo_id": "customer_id", "event_timestamp": "timestamp",
            "event_name": "event", "traffic_source_medium": "channel",
            "ecommerce_purchase_revenue": "revenue", "ga_session_id": "session_id"},
    # Amplitude export API
    "amplitude": {"user_id": "customer_id", "event_time": "timestamp", "event_type": "event",
                  "revenue": "revenue", "session_id": "session_id"},
    # Segment track calls, flattened
    "segment": {"userId": "customer_id", "timestamp": "timestamp", "event": "event",
                "context_campaign_medium": "channel", "properties_revenue": "revenue"},
}
# fmt: on


def spec_for(table: str) -> TableSpec:
    """The :class:`TableSpec` of ``table`` (``events``, ``customers``, ...)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {sorted(TABLES)}, got {table!r}")
    return TABLES[table]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidates (case-insensitive), or ``""``."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"


def resolve_column_map(
    table: str, columns: Sequence[str], column_map: Mapping[str, str] | str | None
) -> dict[str, str]:
    """Check ``column_map`` against the source columns and return ``{source: canonical}``.

    ``column_map`` is ``{source column: canonical name}`` or a vendor preset name (``ga4``,
    ``amplitude``, ``segment``). A preset's entries whose source column is absent are skipped; an
    explicit entry whose source column is absent is an error. Afterwards every required column must
    exist, or :class:`SchemaError` names it with the closest source columns.
    """
    spec = spec_for(table)
    columns = list(columns)
    if isinstance(column_map, str):
        if column_map not in COLUMN_MAPS:
            raise ValueError(
                f"column_map preset must be one of {sorted(COLUMN_MAPS)}, got {column_map!r}"
            )
        mapping = {s: c for s, c in COLUMN_MAPS[column_map].items() if s in columns}
    elif column_map is None:
        mapping = {}
    elif isinstance(column_map, Mapping):
        mapping = {str(s): str(c) for s, c in column_map.items()}
        for source in mapping:
            if source not in columns:
                raise SchemaError(
                    table,
                    source,
                    "column_map names a column the source lacks",
                    hint=did_you_mean(source, columns) or f"columns are {columns}",
                )
    else:
        raise TypeError(
            f"column_map must be a dict or a preset name, got {type(column_map).__name__}"
        )
    targets = list(mapping.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise SchemaError(table, dupes[0], "column_map maps several source columns to one name")
    renamed = [mapping.get(c, c) for c in columns]
    clash = sorted({c for c in renamed if renamed.count(c) > 1})
    if clash:
        raise SchemaError(
            table,
            clash[0],
            "two columns would share this name after column_map; map or drop one of them",
        )
    for required in spec.required:
        if required not in renamed:
            hint = did_you_mean(required, columns)
            hint = (
                hint + " " if hint else ""
            ) + f"columns are {columns}; map one with column_map={{'<source>': '{required}'}}"
            raise SchemaError(table, required, "required column is missing", hint=hint)
    return mapping
