"""From a feature table to a clustering matrix: blocks, weights, scaling, missing values.

Steps, in order (every choice lands in :attr:`PreparedFeatures.missing` or ``params``):

1. choose the columns: the feature blocks asked for, minus ``exclude`` (or exactly ``include``);
2. missing values, never silently: a column missing for more than ``max_missing`` of customers is
   dropped; otherwise ``missing="indicator"`` fills numeric gaps with the column median and adds a
   0/1 ``<column>__missing`` column (so "never answered a survey" is itself a trait), and gives
   categorical gaps the level ``(missing)``; ``"median"`` fills without the indicator;
   ``"drop_rows"`` leaves out customers with any gap (they get no persona); ``"error"`` refuses;
3. numeric columns that are non-negative and right-skewed (skewness > 1: counts, money, days)
   are log-transformed (``log1p``) when ``log_skewed``; numeric columns are then centred and
   scaled (``standard``: mean / standard deviation; ``robust``: median / inter-quartile range;
   ``none``); a categorical column becomes one 0/1 column per level, multiplied by 1/sqrt(2) so
   two customers with different levels are at squared distance 1, as two customers one standard
   deviation apart on a numeric column;
4. block weights: with ``balance_blocks`` every block's columns are rescaled so the block's total
   variance equals its weight (a block with many columns does not outvote a small one, as in
   multiple factor analysis); without it each column is multiplied by sqrt(weight).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from cjlib.personas.features import BLOCKS, FeatureTable

__all__ = ["PreparedFeatures", "prepare_features", "MISSING", "SCALES"]

MISSING = ("indicator", "median", "drop_rows", "error")
SCALES = ("standard", "robust", "none")
_MISSING_LEVEL = "(missing)"
_ONE_HOT = 1 / np.sqrt(2)


@dataclass(frozen=True)
class PreparedFeatures:
    """The matrix to cluster and how it was made.

    ``matrix`` (customers x ``columns``), each column's block in ``column_blocks``; ``data`` holds
    the unscaled feature values used (gaps filled as reported; for Gower distance and cards);
    ``missing`` the per-feature report; ``spec`` what :meth:`transform` needs for new customers.
    The matrix is written from ``data`` when first asked for (and kept); :meth:`rows` writes only
    some customers' rows, which is all that fitting on a sample and assigning in chunks need
    (the whole matrix of 1.4 M customers is ~0.5 GB).
    """

    columns: tuple[str, ...]
    column_blocks: tuple[str, ...]
    customer_id: np.ndarray
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    data: pd.DataFrame
    missing: pd.DataFrame
    spec: dict = field(repr=False)
    params: dict = field(default_factory=dict)
    codes: dict = field(default_factory=dict, repr=False)  # level codes of the categoricals

    @cached_property
    def matrix(self) -> np.ndarray:
        return _encode(self.data, self.spec, self.codes)

    def rows(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """The matrix rows of the customers at positions ``index`` (all when ``None``)."""
        if index is None:
            return self.matrix
        if "matrix" in self.__dict__:  # already written
            return self.matrix[index]
        data = self.data.iloc[index]
        return _encode(data, self.spec, {c: v[index] for c, v in self.codes.items()})

    def subset(self, index: np.ndarray) -> PreparedFeatures:
        """The same preparation for the customers at positions ``index`` only (with their
        matrix rows when the whole matrix is already written)."""
        out = replace(
            self,
            customer_id=self.customer_id[index],
            data=self.data.iloc[index].reset_index(drop=True),
            codes={c: v[index] for c, v in self.codes.items()},
        )
        if "matrix" in self.__dict__:
            out.__dict__["matrix"] = self.matrix[index]
        return out

    def __len__(self) -> int:
        return len(self.customer_id)

    def transform(self, features: FeatureTable | pd.DataFrame) -> np.ndarray:
        """The matrix for other customers, with this preparation's medians, scales and weights."""
        frame = features.frame if isinstance(features, FeatureTable) else features
        return _encode(_fill(frame, self.spec), self.spec)

    def to_dict(self) -> dict:
        return {
            "columns": list(self.columns),
            "column_blocks": list(self.column_blocks),
            "customers": len(self),
            "missing": self.missing.to_dict(orient="records"),
            "params": self.params,
        }


def _fill(frame: pd.DataFrame, spec: dict, filled: dict | None = None) -> pd.DataFrame:
    """Numeric gaps filled (and indicated), logs taken; categorical gaps as ``(missing)``
    (``filled``: categorical columns already filled)."""
    out = pd.DataFrame(index=frame.index)
    filled = filled or {}
    for col in spec["numeric"]:
        values = frame[col].astype(float)
        if col in spec["medians"]:
            if spec["indicator"]:
                out[f"{col}__missing"] = values.isna().astype(float)
            values = values.fillna(spec["medians"][col])
        out[col] = np.log1p(values) if col in spec["log"] else values
    for col in spec["categorical"]:
        if col in filled:
            out[col] = filled[col]
        else:
            out[col] = frame[col].astype("object").where(frame[col].notna(), _MISSING_LEVEL)
    return out


def _codes(values: pd.Series, levels: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Each value's position among ``levels`` by its text (-1 when it is none of them), and the
    levels (default: the distinct texts of ``values``, sorted). Hashes each value once."""
    codes, uniques = pd.factorize(values.to_numpy(object))
    texts = [str(u) for u in uniques]
    levels = sorted(set(texts)) if levels is None else list(levels)
    where = {level: i for i, level in enumerate(levels)}
    lookup = np.array([where.get(t, -1) for t in texts] + [-1], dtype=np.int64)
    return lookup[codes], levels


def _sources(
    data: pd.DataFrame, spec: dict, codes: dict[str, np.ndarray]
) -> list[tuple[np.ndarray, float, float, float]]:
    """One entry per matrix column, in order: source values and either (centre, scale) of a
    numeric column or (level code, nan) of a one-hot column, with its block factor (``codes``:
    level codes already known)."""
    factor = spec["block_factor"]
    out = []
    for col in spec["scaled"]:
        f = factor[spec["blocks"][col.removesuffix("__missing")]]
        out.append((data[col].to_numpy(float), spec["centre"][col], spec["scale"][col], f))
    for col in spec["categorical"]:
        code = codes[col] if col in codes else _codes(data[col], spec["levels"][col])[0]
        f = factor[spec["blocks"][col]]
        out.extend((code, float(i), np.nan, f) for i in range(len(spec["levels"][col])))
    return out


def _layout(spec: dict) -> tuple[list[str], list[str]]:
    """The matrix columns' names (numeric columns, then ``<column>=<level>``) and blocks."""
    names, blocks = [], []
    for col in spec["scaled"]:
        names.append(col)
        blocks.append(spec["blocks"][col.removesuffix("__missing")])
    for col in spec["categorical"]:
        names.extend(f"{col}={level}" for level in spec["levels"][col])
        blocks.extend([spec["blocks"][col]] * len(spec["levels"][col]))
    return names, blocks


_ROWS = 8_192  # rows filled at a time: the block stays in cache while each column is written


def _encode(
    data: pd.DataFrame, spec: dict, codes: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """The weighted matrix: numeric columns ``(x - centre) / scale``, one-hot columns
    ``1/sqrt(2)`` at their level, each times its block factor; written block of rows by block of
    rows (a column at a time over all rows is ~6x slower at a million rows)."""
    sources = _sources(data, spec, codes or {})
    n = len(data)
    matrix = np.empty((n, len(sources)))
    for start in range(0, n, _ROWS):
        stop = min(start + _ROWS, n)
        part = matrix[start:stop]
        for j, (x, a, b, f) in enumerate(sources):
            if np.isnan(b):
                part[:, j] = (x[start:stop] == a) * _ONE_HOT * f
            else:
                part[:, j] = (x[start:stop] - a) / b * f
    return matrix


def _constant(values: pd.Series) -> bool:
    """Fewer than two distinct numbers (min == max: far cheaper than nunique)."""
    x = values.to_numpy(dtype=float, na_value=np.nan)
    return bool(np.isnan(x).all() or np.nanmin(x) == np.nanmax(x))


def _skewed(values: pd.Series) -> bool:
    x = values.dropna().astype(float)
    return bool(len(x) > 2 and x.min() >= 0 and x.skew() > 1)


def prepare_features(
    features: FeatureTable,
    *,
    blocks: Sequence[str] = BLOCKS,
    weights: Mapping[str, float] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    scale: str = "standard",
    missing: str = "indicator",
    max_missing: float = 0.8,
    balance_blocks: bool = True,
    log_skewed: bool = True,
) -> PreparedFeatures:
    """Select, fill, encode, scale and weight features for clustering (see the module doc).

    ``weights`` maps a block to a weight >= 0 (default 1 for each block in ``blocks``).
    """
    if not isinstance(features, FeatureTable):
        raise TypeError(
            f"features must be a FeatureTable (cjlib.personas.customer_features), "
            f"got {type(features).__name__}"
        )
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {list(MISSING)}, got {missing!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    if not 0 < max_missing <= 1:
        raise ValueError(f"max_missing must be in (0, 1], got {max_missing!r}")
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown:
        raise ValueError(f"blocks must be among {list(BLOCKS)}, got {unknown}")
    weights = {b: 1.0 for b in blocks} | dict(weights or {})
    bad = {b: w for b, w in weights.items() if b not in BLOCKS or not float(w) >= 0}
    if bad:
        raise ValueError(f"weights must map blocks {list(BLOCKS)} to numbers >= 0, got {bad}")
    frame = features.frame
    if include is not None:
        absent = [c for c in include if c not in features.blocks]
        if absent:
            raise ValueError(f"include names columns that are not features: {absent}")
        cols = list(include)
    else:
        cols = [c for c in features.columns() if features.blocks[c] in blocks]
    absent = [c for c in exclude if c not in features.blocks]
    if absent:
        raise ValueError(f"exclude names columns that are not features: {absent}")
    cols = [c for c in cols if c not in exclude and float(weights.get(features.blocks[c], 0)) > 0]
    rows = []
    kept = []
    factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n = len(frame)
    for col in cols:
        kind = features.kind(col)
        if kind == "categorical":  # one hash pass: gaps and distinct levels
            factorized[col] = found, uniques = pd.factorize(frame[col])
            gaps, constant = int((found < 0).sum()), len(uniques) < 2
        else:
            gaps, constant = int(frame[col].isna().sum()), _constant(frame[col])
        share = gaps / n if n else 0.0
        if share > max_missing:
            action = f"dropped: missing for more than {max_missing:.0%} of customers"
        elif constant:
            action = "dropped: constant"
        else:
            kept.append(col)
            if not gaps:
                action = "complete"
            elif missing == "error":
                raise ValueError(
                    f"missing='error' but feature {col!r} is missing for {gaps:,} customers; "
                    "use missing='indicator', 'median' or 'drop_rows', or exclude it"
                )
            elif missing == "drop_rows":
                action = "customers left out"
            elif kind == "categorical":
                action = f"level {_MISSING_LEVEL!r}"
            else:
                action = "median" + (" + indicator" if missing == "indicator" else "")
        rows.append(
            {
                "feature": col,
                "block": features.blocks[col],
                "kind": kind,
                "missing": gaps,
                "missing_share": share,
                "action": action,
            }
        )
    report = pd.DataFrame(
        rows, columns=["feature", "block", "kind", "missing", "missing_share", "action"]
    )
    if not kept:
        raise ValueError(
            f"no usable feature in blocks {list(blocks)} (after exclude and max_missing)"
        )
    numeric = [c for c in kept if features.kind(c) == "numeric"]
    categorical = [c for c in kept if features.kind(c) == "categorical"]
    used = frame
    if missing == "drop_rows":
        used = frame[frame[kept].notna().all(axis=1)]
        if used.empty:
            raise ValueError("missing='drop_rows' leaves no customer; use missing='indicator'")
    spec: dict[str, Any] = {
        "numeric": numeric,
        "categorical": categorical,
        "indicator": missing == "indicator",
        "medians": {c: float(used[c].median()) for c in numeric if used[c].isna().any()},
        "blocks": dict(features.blocks),
        "log": [c for c in numeric if log_skewed and _skewed(used[c])],
    }
    report["transform"] = ["log1p" if c in spec["log"] else "" for c in report["feature"]]
    # categorical columns filled and coded from the hash pass above (its distinct values and
    # each row's position among them; gaps -> '(missing)') instead of a second pass over 1.4 M
    # Python strings
    filled, codes, spec["levels"] = {}, {}, {}
    if used is frame:
        for col in categorical:
            found, uniques = factorized[col]
            values = np.array([*uniques, _MISSING_LEVEL], dtype=object)
            filled[col] = pd.Series(values[found], index=frame.index, dtype=object)
            texts = [str(u) for u in uniques] + [_MISSING_LEVEL]
            spec["levels"][col] = levels = sorted(set(texts[:-1] if found.min(initial=0) >= 0
                                                      else texts))  # fmt: skip
            where = {level: i for i, level in enumerate(levels)}
            codes[col] = np.array([where.get(t, -1) for t in texts], dtype=np.int64)[found]
    data = _fill(used, spec, filled)
    spec["scaled"] = [c for c in data.columns if c not in categorical]
    spec["centre"], spec["scale"] = {}, {}
    variance: dict[str, float] = {}
    for col in spec["scaled"]:
        x = data[col].to_numpy(float)
        variance[col] = float(x.var())
        if scale == "standard" or col.endswith("__missing"):
            centre, spread = x.mean(), np.sqrt(variance[col])
        elif scale == "robust":
            q1, centre, q3 = np.percentile(x, [25, 50, 75])
            spread = q3 - q1 or x.std()
        else:
            centre, spread = 0.0, 1.0
        spec["centre"][col], spec["scale"][col] = float(centre), float(spread or 1.0)
    for col in categorical:
        if col not in codes:  # customers were left out: code the rows that are left
            codes[col], spec["levels"][col] = _codes(data[col])
    # each column's variance after centring and scaling, in closed form (no matrix pass needed):
    # var / scale^2 for numbers, (1/2) p (1 - p) for a one-hot level held by a share p
    col_var, col_blocks = [], []
    for col in spec["scaled"]:
        col_var.append(variance[col] / spec["scale"][col] ** 2)
        col_blocks.append(spec["blocks"][col.removesuffix("__missing")])
    for col in categorical:
        share = np.bincount(codes[col], minlength=len(spec["levels"][col]))
        share = share / max(len(data), 1)
        col_var.extend(_ONE_HOT**2 * share * (1 - share))
        col_blocks.extend([spec["blocks"][col]] * len(share))
    spec["block_factor"] = {b: 1.0 for b in BLOCKS}
    for b in set(col_blocks):
        w = float(weights.get(b, 1.0))
        if balance_blocks:
            total = float(sum(v for v, x in zip(col_var, col_blocks, strict=True) if x == b))
            spec["block_factor"][b] = float(np.sqrt(w / total)) if total > 0 else 0.0
        else:
            spec["block_factor"][b] = float(np.sqrt(w))
    names, col_blocks = _layout(spec)
    params = {
        "blocks": list(blocks),
        "weights": {b: float(w) for b, w in weights.items()},
        "include": list(include) if include is not None else None,
        "exclude": list(exclude),
        "scale": scale,
        "missing": missing,
        "max_missing": max_missing,
        "balance_blocks": balance_blocks,
        "log_skewed": log_skewed,
        "customers_left_out": int(len(frame) - len(used)),
    }
    return PreparedFeatures(
        columns=tuple(names),
        column_blocks=tuple(col_blocks),
        customer_id=used["customer_id"].to_numpy(),
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        data=data.reset_index(drop=True),
        missing=report,
        spec=spec,
        params=params,
        codes=codes,
    )
