"""Stage reductions through the engine vs a plain pandas baseline, same data, same process.

    .venv/bin/python benchmarks/bench_journeys.py --customers 200000 --repeats 3

Generates a seeded synthetic log with cjlib.synth (Parquet, in a temp folder), then times
furthest_stage and stage_transitions on DuckDB against a straightforward pandas implementation of
the same numbers (sort + shift + groupby), checks they agree, and prints medians and the ratio.
Peak memory of the process is printed too (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from _timing import median_time

import cjlib as cj
from cjlib import synth


def pandas_baseline(df: pd.DataFrame, stages) -> tuple[pd.Series, pd.Series]:
    """Furthest-stage counts and collapsed transition counts, in pandas only."""
    idx = {s: i for i, s in enumerate(stages.stages)}
    stage = df["event"].map(stages.stage_of).map(idx)
    d = df.assign(stage_index=stage).dropna(subset=["stage_index"])
    d = d.sort_values(["customer_id", "timestamp", "stage_index", "event"])
    furthest = d.groupby("customer_id")["stage_index"].max().value_counts().sort_index()
    prev = d.groupby("customer_id")["stage_index"].shift()
    d = d[prev.isna() | (prev != d["stage_index"])]
    prev = d.groupby("customer_id")["stage_index"].shift()
    moves = d.assign(prev=prev).dropna(subset=["prev"]).groupby(["prev", "stage_index"]).size()
    return furthest, moves


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stages = cj.five_stage()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = synth.write(Path(tmp) / "d", args.customers, random_state=args.seed, fmt="parquet",
                            progress=False)  # fmt: skip
        gen = time.perf_counter() - t0
        events = cj.load_events(files["events"])
        n = len(events)
        print(f"{args.customers:,} customers, {n:,} events (generated in {gen:.1f} s)")

        def engine_run():
            return cj.furthest_stage(events, stages), cj.stage_transitions(events, stages)

        frame = events.to_pandas()[["customer_id", "timestamp", "event"]]
        t_engine, (furthest, transitions) = median_time(engine_run, args.repeats)
        t_pandas, (b_furthest, b_moves) = median_time(lambda: pandas_baseline(frame, stages),
                                                      args.repeats)  # fmt: skip
        assert list(furthest["customers"][furthest["customers"] > 0]) == list(b_furthest), "differ"
        inner = transitions[~transitions.kind.isin(["start", "end"])]
        assert inner["transitions"].sum() == b_moves.sum(), "transition totals differ"
        print(f"duckdb (furthest + transitions): median {t_engine:.3f} s over {args.repeats}")
        print(f"pandas baseline (same numbers):  median {t_pandas:.3f} s over {args.repeats}")
        print(f"ratio pandas / duckdb: {t_pandas / t_engine:.1f}x")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
