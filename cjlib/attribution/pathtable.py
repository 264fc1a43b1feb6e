"""Pre-aggregated path tables (``a > b > c``, conversions, value, nulls) as :class:`Journeys`.

The format of ChannelAttribution (R and Python), analytics path exports and other tools.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cjlib.attribution.journeys import SEP, Journeys

__all__ = ["read_path_table"]

_PATH_COLUMNS = {
    "path": ("path", "paths"),
    "conversions": ("total_conversions", "conversions", "conversion", "converters"),
    "value": ("total_conversion_value", "conversion_value", "value", "revenue"),
    "nulls": ("total_null", "nulls", "null", "non_converters", "non_conversions"),
}


def _pick(columns: list[str], role: str, given: str | None) -> str | None:
    if given:
        if given not in columns:
            raise ValueError(f"column_map names {given!r} for {role}, columns are {columns}")
        return given
    lower = {c.lower(): c for c in columns}
    return next((lower[a] for a in _PATH_COLUMNS[role] if a in lower), None)


def _separator(path: Path) -> str:
    """The header's field separator: ``;`` (ChannelAttribution), else ``,``, else a tab."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return next((c for c in (";", ",", "\t") if c in header), ";")


def read_path_table(
    source: Any,
    *,
    sep: str | None = None,
    path_separator: str = ">",
    column_map: dict[str, str] | None = None,
) -> Journeys:
    """Journeys from a pre-aggregated path table (ChannelAttribution, analytics path exports).

    ``source`` is a DataFrame or a CSV path (``sep``: the field separator, by default read from
    the header: ``;``, ``,`` or a tab) with a ``path`` column (``a > b > c``), conversions,
    conversion value (optional) and nulls (optional); ``column_map`` maps the roles ``path,
    conversions, value, nulls`` to column names when they are not the usual ones
    (``total_conversions``, ``total_conversion_value``, ``total_null`` are recognised). Rows with
    the same path after trimming are added up; empty paths are dropped and counted.
    """
    if isinstance(source, (str, Path)):
        if not Path(source).exists():
            raise FileNotFoundError(f"source {str(source)!r} does not exist")
        df = pd.read_csv(source, sep=sep or _separator(Path(source)))
    elif isinstance(source, pd.DataFrame):
        df = source
    else:
        raise TypeError(f"source must be a CSV path or a DataFrame, got {type(source).__name__}")
    cols = list(df.columns)
    cmap = dict(column_map or {})
    unknown = set(cmap) - set(_PATH_COLUMNS)
    if unknown:
        raise ValueError(f"column_map roles must be among {sorted(_PATH_COLUMNS)}, got {unknown}")
    found = {role: _pick(cols, role, cmap.get(role)) for role in _PATH_COLUMNS}
    for role in ("path", "conversions"):
        if found[role] is None:
            raise ValueError(f"path table needs a {role} column; columns are {cols}")
    paths = df[found["path"]].astype("string").fillna("")
    parts = paths.str.split(path_separator)
    seqs = [[p.strip() for p in ps if p.strip()] for ps in parts]
    conv = pd.to_numeric(df[found["conversions"]], errors="raise").fillna(0).to_numpy(float)
    nulls = (
        pd.to_numeric(df[found["nulls"]]).fillna(0).to_numpy(float)
        if found["nulls"]
        else np.zeros(len(df))
    )
    value = (
        pd.to_numeric(df[found["value"]]).fillna(0).to_numpy(float)
        if found["value"]
        else np.zeros(len(df))
    )
    keep = np.array([len(s) > 0 for s in seqs], dtype=bool)
    tidy = pd.DataFrame(
        {
            "path": [SEP.join(s) for s, k in zip(seqs, keep, strict=True) if k],
            "conversions": conv[keep],
            "nulls": nulls[keep],
            "value": value[keep],
        }
    )
    tidy = tidy.groupby("path", sort=True, as_index=False).sum()
    journeys = Journeys.from_sequences(
        [p.split(SEP) for p in tidy["path"]],
        tidy["conversions"],
        nulls=tidy["nulls"],
        value=tidy["value"],
        params={"source": "path table"},
    )
    dropped = {"conversions": float(conv[~keep].sum()), "value": float(value[~keep].sum())}
    return replace(journeys, unattributed=dropped)
