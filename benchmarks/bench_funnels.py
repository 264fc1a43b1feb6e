"""Ordered 5-step funnel with a 7-day window: cjlib vs vectorised pandas vs hand-written DuckDB SQL.

    .venv/bin/python benchmarks/bench_funnels.py --sizes 1e5 1e6 1e7 --repeats 3
    .venv/bin/python benchmarks/bench_funnels.py --sizes 1e7 --methods cjlib duckdb_sql \
        sql_int_ids sql_full
    .venv/bin/python benchmarks/bench_funnels.py --sizes 1e7 --paired --repeats 9
    .venv/bin/python benchmarks/bench_funnels.py --sizes 1e8 --methods cjlib duckdb_sql \
        --repeats 1 --source parquet --memory-limit 3GB --keep /tmp/funnel_data

A seeded synthetic log (customers = events / 10, each active for 14 days of 90; 12 event
names) is written to Parquet in chunks of 1e6 rows (so 1e8 events never sit in pandas). Each
(size, method) runs in a fresh child process that loads the file (pandas: categorical ``event``;
hand SQL: an in-memory table with an ENUM ``event``; cjlib: ``cj.load_events``, which stores
event names as categories too), runs the funnel ``repeats`` times, and
reports the median wall time, the per-step customer counts and its own peak RSS (VmHWM,
loading included; ``wait4`` ru_maxrss where /proc is missing). All methods must give identical
counts. cjlib runs the full :func:`cjlib.funnels.funnel` (counts, in-progress, Wilson
intervals, time-to-convert histograms), i.e. more work than the two baselines. Opt-in methods:
``sql_int_ids`` (the hand SQL on integer customer ids) and ``sql_full`` (the hand SQL that also
computes in-progress, dropped and the time histograms, as cjlib does); ``--paired`` runs all of
them and checks the full SQL's in-progress and dropped against cjlib's.

``--source parquet`` is for logs larger than memory (the 1e8 run): the DuckDB methods query the
Parquet file through a view, with DuckDB's ``memory_limit`` and spilling to a temporary folder
(cjlib loads it with ``cj.load_events(path, keep=False, duplicates="ignore")``: checked, not kept);
pandas cannot take part (1e8 rows do not fit in a few GB). ``--keep DIR`` reuses generated files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import timed

STEPS = ["visit", "view_item", "add_to_cart", "begin_checkout", "purchase"]
OTHER = ["search", "scroll", "login", "share", "review", "wishlist", "support"]
WEIGHTS = np.array([20, 30, 10, 6, 4, 10, 8, 4, 2, 2, 2, 2], dtype=float)
START = np.datetime64("2026-01-01T00:00:00", "us")
WINDOW_US = 7 * 86400 * 10**6
AS_OF = "2026-04-01T00:00:00+00:00"


def generate(path: Path, n: int, seed: int = 7, chunk: int = 1_000_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = np.array(STEPS + OTHER)
    p = WEIGHTS / WEIGHTS.sum()
    customers = max(n // 10, 1)
    first = rng.integers(0, 76 * 86400, customers)  # each customer active for 14 days
    writer = None
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cid = rng.integers(0, customers, m)
        ev = names[rng.choice(len(names), m, p=p)]
        ts = START + (first[cid] + rng.integers(0, 14 * 86400, m)).astype("timedelta64[s]")
        table = pa.table(
            {
                "customer_id": pa.array(np.char.add("c", cid.astype(str))),
                "timestamp": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
                "event": pa.array(ev),
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


# -- the three implementations (run in a child process) -------------------------------------------
def run_pandas(path: Path, repeats: int) -> tuple[list[float], list[int]]:
    import pandas as pd

    df = pd.read_parquet(path)
    df["event"] = df["event"].astype("category")
    df["customer_id"] = df["customer_id"].astype("category")

    def once() -> list[int]:
        by = {s: df.loc[df["event"] == s, ["customer_id", "timestamp"]] for s in STEPS}
        cur = by[STEPS[0]].groupby("customer_id", observed=True)["timestamp"].min().rename("t")
        cur = cur.reset_index()
        cur["entry"] = cur["t"]
        counts = [len(cur)]
        for s in STEPS[1:]:
            j = cur.merge(by[s], on="customer_id")
            j = j[
                (j["timestamp"] >= j["t"]) & (j["timestamp"] <= j["entry"] + pd.Timedelta(days=7))
            ]
            nxt = j.groupby("customer_id", observed=True).agg(
                t=("timestamp", "min"), entry=("entry", "first")
            )
            cur = nxt.reset_index()
            counts.append(len(cur))
        return counts

    return timed(once, repeats)


CHAIN = """
WITH s1 AS MATERIALIZED (SELECT customer_id, min(timestamp) AS t,
                                make_timestamptz(epoch_us(min(timestamp)) + {window_us}) AS w_end
                         FROM events WHERE event = '{first}' GROUP BY customer_id),
{steps}
"""


def _chain(table: str, extra: str = "") -> str:
    """The CTEs ``s1 .. s5``: per step, the customers still in the funnel joined to the step's
    events, the earliest qualifying time ``t`` kept (``extra``: more aggregates per step).

    The window end is computed once per customer from the stored microseconds. DuckDB adds an
    ``INTERVAL`` to a ``TIMESTAMPTZ`` with its calendar library: that projection alone took
    0.55 CPU-seconds at 1e7 events (DuckDB's profiler, sixth session), the whole query 1.61 s
    against 1.45 s (median of 5). Per joined row it was slower still (1.39 s against 1.23 s at 1e7
    in the fourth session)."""
    parts, prev = [], "s1"
    for i, s in enumerate(STEPS[1:], start=2):
        parts.append(
            f"s{i} AS MATERIALIZED (SELECT p.customer_id, min(e.timestamp) AS t, "
            f"min(p.w_end) AS w_end{extra} "
            f"FROM {prev} p JOIN events e ON e.customer_id = p.customer_id AND e.event = '{s}' "
            f"AND e.timestamp >= p.t AND e.timestamp <= p.w_end "
            f"GROUP BY p.customer_id)"
        )
        prev = f"s{i}"
    query = CHAIN.format(window_us=WINDOW_US, first=STEPS[0], steps=",\n".join(parts))
    return query.replace("FROM events", f"FROM {table}").replace("JOIN events", f"JOIN {table}")


def _sql(table: str = "events") -> str:
    """The best hand-written counts: the chain, then the number of customers at each step."""
    selects = ", ".join(f"(SELECT count(*) FROM s{i}) AS n{i}" for i in range(1, len(STEPS) + 1))
    return _chain(table) + f"SELECT {selects}"


def _sql_full(table: str = "events") -> str:
    """The same chain plus what cjlib's funnel reports besides the counts, by hand: per step k,
    the customers who reached step k-1 and not k, split into in progress (window still open at
    ``AS_OF``) and dropped, and the minute histograms of the time from step k-1 to step k
    (converters) or to the end of their follow-up (censored: ``AS_OF`` or the window end).
    Non-converters come from an anti-join of consecutive steps. Rows: ``step, event (1 =
    converted), open, bucket, n``."""
    as_of = f"epoch_us(TIMESTAMPTZ '{AS_OF}')"
    rows = []
    for k in range(2, len(STEPS) + 1):
        rows.append(
            f"SELECT {k} AS step, 1 AS event, NULL::BOOLEAN AS open, "
            f"(epoch_us(t) - epoch_us(p_t)) // 60000000 AS bucket FROM s{k}"
        )
        rows.append(
            f"SELECT {k}, 0, p.w_end > TIMESTAMPTZ '{AS_OF}', "
            f"(least({as_of}, epoch_us(p.w_end)) - epoch_us(p.t)) // 60000000 "
            f"FROM s{k - 1} p ANTI JOIN s{k} USING (customer_id)"
        )
    union = "\n UNION ALL ".join(rows)
    return (
        _chain(table, extra=", min(p.t) AS p_t")
        + f"SELECT step, event, open, bucket, count(*) AS n FROM ({union}) GROUP BY ALL"
    )


def _full_summary(rows: list[tuple]) -> dict[str, list[int]]:
    """Customers, in progress and dropped per step from :func:`_sql_full`'s rows."""
    n = len(STEPS)
    out = {"customers": [0] * n, "in_progress": [0] * n, "dropped": [0] * n}
    for step, event, open_, _bucket, count in rows:
        if event:
            out["customers"][step - 1] += count
        else:
            out["in_progress" if open_ else "dropped"][step - 1] += count
            out["customers"][0] += count if step == 2 else 0
    out["customers"][0] += out["customers"][1]  # step 1: who reached step 2 or stopped before it
    return out


def _duck_table(path: Path):
    """DuckDB with ``events``: an in-memory table (ENUM ``event``), or (``CJ_BENCH_SOURCE`` =
    ``parquet``) a view over the Parquet file with a memory limit (``CJ_BENCH_MEMORY``) and
    spilling to a temporary folder: how a log larger than memory is queried."""
    from cjlib.engine import Engine

    if os.environ.get("CJ_BENCH_SOURCE") == "parquet":
        eng = Engine.duckdb(memory_limit=os.environ.get("CJ_BENCH_MEMORY", "3GB"))
        eng.con.raw_sql(f"SET temp_directory = '{tempfile.mkdtemp(prefix='cj_spill_')}'")
        eng.con.raw_sql("SET preserve_insertion_order = false")
        eng.con.raw_sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{path}')")
        return eng
    eng = Engine.duckdb()
    names = ", ".join(f"'{s}'" for s in STEPS + OTHER)
    eng.con.raw_sql(f"CREATE TYPE ev AS ENUM ({names})")
    eng.con.raw_sql(
        "CREATE TABLE events AS SELECT customer_id, timestamp, CAST(event AS ev) AS event "
        f"FROM read_parquet('{path}')"
    )
    return eng


def _int_ids(eng) -> str:
    """A copy ``events_int`` of ``events`` with integer customer ids (``c123`` -> 123)."""
    eng.con.raw_sql(
        "CREATE TABLE events_int AS SELECT "
        "CAST(substr(customer_id, 2) AS INTEGER) AS customer_id, timestamp, event FROM events"
    )
    return "events_int"


def run_sql(path: Path, repeats: int) -> tuple[list[float], list[int]]:
    eng = _duck_table(path)
    query = _sql()

    def once() -> list[int]:
        return [int(v) for v in eng.con.con.execute(query).fetchone()]

    return timed(once, repeats)


def run_sql_int(path: Path, repeats: int) -> tuple[list[float], list[int]]:
    """The same hand SQL on a copy whose customer ids are integers (``c123`` -> 123, built before
    the timing): what a log with integer-coded customers gains (opt-in: ``--methods``)."""
    eng = _duck_table(path)
    query = _sql(_int_ids(eng))

    def once() -> list[int]:
        return [int(v) for v in eng.con.con.execute(query).fetchone()]

    return timed(once, repeats)


def run_sql_full(path: Path, repeats: int) -> tuple[list[float], list[int]]:
    """The hand SQL that also computes in-progress, dropped and the time histograms
    (:func:`_sql_full`): what cjlib's extra outputs cost when written by hand (opt-in)."""
    eng = _duck_table(path)
    query = _sql_full()

    def once() -> list[int]:
        return _full_summary(eng.con.con.execute(query).fetchall())["customers"]

    return timed(once, repeats)


def run_cjlib(path: Path, repeats: int) -> tuple[list[float], list[int]]:
    """cjlib as an analyst runs it: the log loaded with ``cj.load_events`` (checked and kept;
    event names stored as categories), then :func:`cjlib.funnels.funnel` on it."""
    import cjlib as cj
    from cjlib.engine import Engine
    from cjlib.funnels import funnel

    if os.environ.get("CJ_BENCH_SOURCE") == "parquet":  # as an analyst loads a huge log
        eng = _duck_table(path)
        events = cj.load_events(path, engine=eng, keep=False, duplicates="ignore")
    else:
        eng = Engine.duckdb()
        events = cj.load_events(path, engine=eng, duplicates="ignore")

    def once() -> list[int]:
        f = funnel(events, STEPS, window="7D", as_of=AS_OF, engine=eng)
        return [int(v) for v in f.steps["customers"]]

    return timed(once, repeats)


def run_paired(path: Path, repeats: int) -> dict:
    """cjlib and the hand SQL (counts; on integer ids; with cjlib's other outputs) in ONE process
    and engine, alternating round by round (``--paired``): the machine's speed drifts between
    the separate child processes of the default mode, and pairing cancels that drift out of the
    ratios. Besides the counts, the full SQL's in-progress and dropped must equal cjlib's."""
    import cjlib as cj
    from cjlib.funnels import funnel

    eng = _duck_table(path)
    events = cj.load_events(path, engine=eng, duplicates="ignore")
    con = eng.con.con
    text_sql, int_sql, full_sql = _sql(), _sql(_int_ids(eng)), _sql_full()
    extra = {}

    def cjlib_run() -> list[int]:
        steps = funnel(events, STEPS, window="7D", as_of=AS_OF, engine=eng).steps
        extra["cjlib"] = {c: [int(v) for v in steps[c]] for c in ("in_progress", "dropped")}
        return [int(v) for v in steps["customers"]]

    def full_run() -> list[int]:
        out = _full_summary(con.execute(full_sql).fetchall())
        extra["sql_full"] = {c: out[c] for c in ("in_progress", "dropped")}
        return out["customers"]

    runs = {
        "cjlib": cjlib_run,
        "duckdb_sql": lambda: [int(v) for v in con.execute(text_sql).fetchone()],
        "sql_int_ids": lambda: [int(v) for v in con.execute(int_sql).fetchone()],
        "sql_full": full_run,
    }
    times: dict[str, list[float]] = {m: [] for m in runs}
    counts = {}
    for _ in range(repeats):
        for m, fn in runs.items():
            (t,), counts[m] = timed(fn, 1)
            times[m].append(t)
    if len({tuple(c) for c in counts.values()}) != 1 or extra["cjlib"] != extra["sql_full"]:
        raise SystemExit(f"results differ: {counts} {extra}")
    return {"times": times, "counts": counts["cjlib"], **extra["cjlib"]}


def paired(path: Path, repeats: int) -> None:
    cmd = [sys.executable, __file__, "--child", "paired", str(path), "--repeats", str(repeats)]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True)
                     .stdout.strip().splitlines()[-1])  # fmt: skip
    t = out["times"]
    med = {m: statistics.median(v) for m, v in t.items()}
    print(
        f"paired, {repeats} alternating rounds; counts {out['counts']}, in progress "
        f"{out['in_progress']}, dropped {out['dropped']} (the same from every method)"
    )
    for m, v in med.items():
        print(f"{m:>12} median {v:.3f} s")
    for base in ("duckdb_sql", "sql_int_ids", "sql_full"):
        ratios = sorted(a / b for a, b in zip(t["cjlib"], t[base], strict=True))
        print(f"cjlib / {base}: {med['cjlib'] / med[base]:.2f}x (per round "
              f"{ratios[0]:.2f}-{ratios[-1]:.2f})")  # fmt: skip


METHODS = {
    "cjlib": run_cjlib,
    "duckdb_sql": run_sql,
    "pandas": run_pandas,
    "sql_int_ids": run_sql_int,
    "sql_full": run_sql_full,
}
DEFAULT_METHODS = ["cjlib", "duckdb_sql", "pandas"]


def _own_peak_mb() -> float | None:
    """This process's own peak RSS (VmHWM, Linux). ``ru_maxrss`` of a child also counts the
    parent's RSS at fork time (it survives exec), which hid every peak below the parent's."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        return None


def child(method: str, path: str, repeats: int) -> None:
    if method == "paired":
        print(json.dumps(run_paired(Path(path), repeats)))
        return
    times, counts = METHODS[method](Path(path), repeats)
    print(json.dumps({"times": times, "counts": counts, "peak_mb": _own_peak_mb()}))


def run_child(method: str, path: Path, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", method, str(path), "--repeats", str(repeats)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read()
    if status != 0:
        raise SystemExit(f"{method} failed (status {status})")
    result = json.loads(out.strip().splitlines()[-1])
    if result.get("peak_mb") is None:
        result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["1e5", "1e6", "1e7"])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"))
    parser.add_argument(
        "--source",
        choices=["memory", "parquet"],
        default="memory",
        help="DuckDB methods: load into an in-memory table (default) or query the Parquet file "
        "with a memory limit (--memory-limit) and spilling, for logs larger than memory",
    )
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--keep", help="generate into / reuse this folder instead of a temp one")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="cjlib, hand SQL and SQL on integer ids alternating in one process (in memory)",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeats)
        return
    os.environ["CJ_BENCH_SOURCE"] = args.source
    os.environ["CJ_BENCH_MEMORY"] = args.memory_limit
    print(f"DuckDB source: {args.source}" + (f", memory limit {args.memory_limit}"
          if args.source == "parquet" else ""))  # fmt: skip
    if args.paired and args.source != "memory":
        raise SystemExit("--paired runs in memory: drop --source parquet")
    if not args.paired:
        print(f"{'events':>12} {'method':>11} {'median s':>9} {'vs SQL':>7} {'vs pandas':>9} "
              f"{'peak MB':>8}  counts")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = int(float(size))
            folder = Path(args.keep or tmp)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"events_{n}.parquet"
            t0 = time.perf_counter()
            if not (args.keep and path.exists()):
                generate(path, n)
            gen = time.perf_counter() - t0
            if args.paired:
                paired(path, args.repeats)
                continue
            results = {m: run_child(m, path, args.repeats) for m in args.methods}
            counts = {m: r["counts"] for m, r in results.items()}
            if len({tuple(c) for c in counts.values()}) != 1:
                raise SystemExit(f"results differ at {n:,} events: {counts}")
            med = {m: statistics.median(r["times"]) for m, r in results.items()}
            for m, r in results.items():
                vs_sql = med[m] / med["duckdb_sql"] if "duckdb_sql" in med else float("nan")
                vs_pd = med["pandas"] / med[m] if "pandas" in med else float("nan")
                print(f"{n:>12,} {m:>11} {med[m]:>9.3f} {vs_sql:>6.2f}x {vs_pd:>8.2f}x "
                      f"{r['peak_mb']:>8.0f}  {r['counts']}")  # fmt: skip
            print(f"{'':>12} (data generated in {gen:.1f} s; vs SQL = time / SQL time; "
                  f"vs pandas = pandas time / time)")  # fmt: skip


if __name__ == "__main__":
    main()
