"""Public entry points: `generate` (in memory) and `write` (streamed to CSV or Parquet)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .blocks import run, validate, window
from .truth import SynthData, build_truth


def _to_pandas(table: Any) -> pd.DataFrame:
    df = table.to_pandas(date_as_object=False)
    if "signup_date" in df:
        df["signup_date"] = df["signup_date"].astype("datetime64[s]")
    return df


def generate(
    n_customers: int = 5_000,
    *,
    random_state: int = 42,
    start: str = "2026-01-01",
    end: str = "2026-12-31",
    progress: bool = False,
    block_size: int = 50_000,
) -> SynthData:
    """Generate synthetic customer journeys in memory.

    Parameters
    ----------
    n_customers : int
        Number of customers (>= 1).
    random_state : int
        Seed (>= 0) of the ``numpy.random.SeedSequence`` all randomness derives from.
    start, end : str
        First and last day (inclusive, UTC) of the observation window.
    progress : bool
        Show a progress bar over blocks.
    block_size : int
        Customers per block (a multiple of ``CHUNK``); does not change the data.

    Returns
    -------
    SynthData
        The tables and the planted truth; equal to what `write` writes for the same arguments.
    """
    validate(n_customers, random_state, block_size)
    import pyarrow as pa

    tables: dict[str, list[Any]] = {}
    stats = run(
        n_customers,
        random_state,
        start,
        end,
        block_size,
        progress,
        lambda name, table: tables.setdefault(name, []).append(table),
    )
    frames = {k: _to_pandas(pa.concat_tables(v)) for k, v in tables.items()}
    params = {
        "n_customers": n_customers,
        "seed": random_state,
        "start": str(start),
        "end": str(end),
    }
    truth = build_truth(stats, params, frames.pop("customer_persona"))
    return SynthData(truth=truth, **frames)


class _Sink:
    """Append Arrow tables block by block to CSV or Parquet files in ``folder``."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder, self.fmt = folder, fmt
        self.writers: dict[str, Any] = {}
        self.paths: dict[str, Path] = {}
        self.handles: list[Any] = []

    def __call__(self, name: str, table: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self.fmt == "csv":  # fixed text: ISO timestamps with Z, money with 2 decimals
            for i, field in enumerate(table.schema):
                col = table.column(i)
                if pa.types.is_timestamp(field.type):
                    col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
                elif field.name in ("revenue", "spend"):
                    v = col.to_numpy()
                    cents = np.rint(np.nan_to_num(v) * 100).astype(np.int64)
                    whole = pa.array(cents // 100, mask=np.isnan(v)).cast(pa.string())
                    frac = pc.utf8_lpad(
                        pa.array(cents % 100).cast(pa.string()), width=2, padding="0"
                    )
                    col = pc.binary_join_element_wise(whole, frac, ".")
                else:
                    continue
                table = table.set_column(i, field.name, col)
        if name not in self.writers:
            path = self.folder / f"{name}.{self.fmt}"
            self.paths[name] = path
            if self.fmt == "parquet":
                self.writers[name] = pq.ParquetWriter(path, table.schema)
            else:  # header written by hand: Arrow would quote the column names
                handle = open(path, "wb")  # noqa: SIM115 - closed in close()
                self.handles.append(handle)
                handle.write((",".join(table.column_names) + "\n").encode())
                options = pcsv.WriteOptions(include_header=False, quoting_style="none")
                self.writers[name] = pcsv.CSVWriter(handle, table.schema, write_options=options)
        self.writers[name].write_table(table)

    def close(self) -> None:
        """Close all writers and files (idempotent)."""
        writers, handles = list(self.writers.values()), self.handles
        self.writers, self.handles = {}, []
        for w in writers:
            w.close()
        for h in handles:
            h.close()


def write(
    out_dir: str | Path,
    n_customers: int = 5_000,
    *,
    random_state: int = 42,
    fmt: str = "csv",
    progress: bool = True,
    start: str = "2026-01-01",
    end: str = "2026-12-31",
    block_size: int = 50_000,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Stream synthetic journeys to ``out_dir`` in blocks of customers (bounded memory).

    Writes ``events``, ``customers``, ``experiments``, ``surveys``, ``costs`` and the hidden
    labels ``customer_persona`` (``.csv`` or ``.parquet``) plus ``truth.json``. Everything is
    written to a temporary sibling folder first and renamed into place, so a failure leaves
    nothing behind. Same arguments give byte-identical CSV files and the rows of `generate`.

    Parameters
    ----------
    out_dir : str or Path
        Target folder; must not exist or be empty unless ``overwrite=True``.
    n_customers, random_state, start, end, progress, block_size
        As in `generate`.
    fmt : {"csv", "parquet"}
        File format (Parquet: one row group per block).
    overwrite : bool
        Replace a non-empty existing ``out_dir``.

    Returns
    -------
    dict[str, Path]
        Table name (and ``"truth"``) to written file.
    """
    validate(n_customers, random_state, block_size)
    window(start, end)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be one of 'csv', 'parquet', got {fmt!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, got the file {str(out)!r}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"out_dir {str(out)!r} is not empty; pass overwrite=True")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    sink = _Sink(tmp, fmt)
    try:
        stats = run(n_customers, random_state, start, end, block_size, progress, sink)
        sink.close()
        params = {
            "n_customers": n_customers,
            "seed": random_state,
            "start": str(start),
            "end": str(end),
        }
        empty = pd.DataFrame({"customer_id": [], "persona": []})
        truth = build_truth(stats, params, empty).to_dict()
        truth["customer_persona"] = {"file": sink.paths["customer_persona"].name}
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp creates 0o700
        _move_into_place(tmp, out)
    except BaseException:
        try:
            sink.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**{k: out / p.name for k, p in sink.paths.items()}, "truth": out / "truth.json"}


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first, restored on failure."""
    if not out.exists():
        tmp.replace(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    out.replace(old / "data")
    try:
        tmp.replace(out)
    except BaseException:
        (old / "data").replace(out)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
