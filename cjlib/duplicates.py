"""Exact duplicate rows at load (helpers of :mod:`cjlib.io`): counted exactly, then reported,
dropped, refused or kept as the loader's ``duplicates`` option says."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from cjlib.checks import EXAMPLES
from cjlib.engine import Engine
from cjlib.schema import DataQualityWarning, SchemaError

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir

__all__ = ["duplicates", "duplicate_groups"]


def duplicates(
    t: ir.Table, table: str, engine: Engine, how: str, keys: Any, *, keep: bool
) -> tuple[ir.Table, int | None, list[str]]:
    """Count exact duplicate rows and apply ``how``: the table (deduplicated for ``drop``), the
    number of duplicate rows (``None`` when not checked) and notes for the report."""
    if how == "ignore":
        return t, None, ["exact duplicates not checked (duplicates='ignore')"]
    dup_keys = list(keys or t.columns)
    unknown = [k for k in dup_keys if k not in t.columns]
    if unknown:
        raise ValueError(f"duplicate_keys: unknown columns {unknown}; columns are {t.columns}")
    copies = engine.materialize(duplicate_groups(t, dup_keys))  # small: duplicates only
    try:
        found = engine.to_pandas(copies.aggregate(n=(copies.copies - 1).sum().coalesce(0)))
        n_dupes = int(found["n"].iloc[0])
        examples = engine.to_pandas(copies, limit=EXAMPLES) if n_dupes else None
    finally:
        engine.release(copies)
    if not n_dupes:
        return t, 0, []
    if how == "error":
        raise SchemaError(
            table,
            ", ".join(dup_keys),
            "exact duplicate rows",
            count=n_dupes,
            examples=examples,
            hint="pass duplicates='drop' to keep one of each",
        )
    if how == "drop":
        unique = t.distinct(on=dup_keys, keep="first") if keys else t.distinct()
        if not keep:
            return unique, n_dupes, []
        kept = engine.materialize(unique, prefix=f"cjlib_{table}")
        engine.release(t)
        return kept, n_dupes, []
    warnings.warn(
        f"{table}: {n_dupes:,} exact duplicate rows on {dup_keys} (kept; "
        f"pass duplicates='drop' to remove)\n{examples.to_string()}",
        DataQualityWarning,
        stacklevel=5,
    )
    return t, n_dupes, [f"{n_dupes:,} exact duplicate rows kept (duplicates='drop' removes them)"]


def duplicate_groups(t: ir.Table, keys: list[str]) -> ir.Table:
    """``keys..., copies`` for every group of exact duplicates (copies > 1).

    Exact, without grouping every row by every column: rows are first grouped by one hash of
    all the keys (of a struct of them: 1.7 s at 1e7 events against 3.4 s for combining one hash
    per column, which Ibis writes as bit-string casts on DuckDB), and only rows whose hash occurs
    more than once are grouped by the keys themselves (collisions are thereby ruled out).
    """
    import ibis

    hashed = t.mutate(_h=ibis.struct({k: t[k] for k in keys}).hash())
    twice = hashed.group_by("_h").aggregate(_n=hashed.count())
    twice = twice.filter(twice._n > 1)
    rows = hashed.semi_join(twice, "_h").select(*keys)
    grouped = rows.group_by(keys).aggregate(copies=rows.count())
    return grouped.filter(grouped.copies > 1)
