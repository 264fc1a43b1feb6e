"""Benchmark: first-order Markov and the rule-based models, cjlib vs straightforward pandas.

Seeded synthetic journeys (9 channels, mean ~3 touches, conversion depends on channels) at 1e4,
1e5 and 1e6 journeys. For each size it times, as medians of ``--repeats`` runs in this process:

- ``markov_raw``: exact first-order Markov removal effects from raw journeys (one row per
  journey, CSR layout), cjlib;
- ``markov_paths``: the same from aggregated distinct paths;
- ``rules_raw`` / ``rules_paths``: all seven rule-based models together;
- ``pandas_markov`` / ``pandas_rules``: a straightforward pandas implementation (touch table,
  groupby transition counts, numpy solve per removed channel; groupby credits per rule);
- ``engine_journeys`` (``--engine``): building the journeys from touch events through the
  engine (DuckDB), for sizes up to ``--engine-max``;
- ``--orders 2 3 4``: removal effects of higher-order chains (more than 300 states are solved
  by the series, :func:`cjlib.attribution.markov._absorbed`) against the sparse LU solve per
  channel that it replaced (its fallback), results checked equal.

Peak memory is the tracemalloc peak of the cjlib Markov + rules run on raw journeys (numpy
allocations included). Run: ``.venv/bin/python benchmarks/bench_attribution.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd

from cjlib.attribution.heuristics import RULE_MODELS, rule_credits
from cjlib.attribution.journeys import Journeys
from cjlib.attribution.markov import fit_markov

CHANNELS = (
    "affiliate",
    "direct",
    "display",
    "email",
    "referral",
    "search",
    "social",
    "store",
    "video",
)
EFFECT = np.array([0.1, 0.25, 0.0, 0.2, 0.45, 0.15, 0.05, 0.4, 0.02])


def synth(n: int, seed: int = 42) -> Journeys:
    rng = np.random.default_rng(seed)
    lengths = 1 + rng.geometric(0.45, n) - 1
    lengths = np.minimum(np.maximum(lengths, 1), 20)
    codes = rng.choice(len(CHANNELS), size=int(lengths.sum()), p=np.full(9, 1 / 9)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    pid = np.repeat(np.arange(n), lengths)
    logit = -1.6 + np.bincount(pid, EFFECT[codes], n)
    conv = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    value = conv * np.round(rng.lognormal(4, 0.5, n), 2)
    return Journeys(CHANNELS, codes, offsets, conv, 1 - conv, value)


def aggregate(j: Journeys) -> Journeys:
    """Distinct paths: hash each path's codes into one integer key (base 10, up to 20 touches
    as two 10-digit halves) and sum the counts."""
    lengths = j.lengths
    pos = j.positions
    key_lo = np.zeros(j.n_paths, dtype=np.int64)
    key_hi = np.zeros(j.n_paths, dtype=np.int64)
    pid = j.path_ids
    lo = pos < 10
    np.add.at(key_lo, pid[lo], (j.codes[lo] + 1).astype(np.int64) * 10 ** pos[lo])
    np.add.at(key_hi, pid[~lo], (j.codes[~lo] + 1).astype(np.int64) * 10 ** (pos[~lo] - 10))
    df = pd.DataFrame({"lo": key_lo, "hi": key_hi, "len": lengths, "c": j.conversions,
                       "n": j.nulls, "v": j.value, "first": np.arange(j.n_paths)})  # fmt: skip
    g = df.groupby(["lo", "hi", "len"], sort=False).agg(
        c=("c", "sum"), n=("n", "sum"), v=("v", "sum"), first=("first", "first")
    )
    first = g["first"].to_numpy()
    starts, lens = j.offsets[first], lengths[first]
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(
        lens.sum()
    )
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return Journeys(
        CHANNELS, j.codes[idx], offsets, g["c"].to_numpy(), g["n"].to_numpy(), g["v"].to_numpy()
    )


def touch_frame(j: Journeys) -> pd.DataFrame:
    return pd.DataFrame({"journey": j.path_ids, "pos": j.positions, "channel": j.codes,
                         "length": np.repeat(j.lengths, j.lengths)})  # fmt: skip


def pandas_markov(j: Journeys, touches: pd.DataFrame) -> np.ndarray:
    """Straightforward: transition counts by groupby, then one dense solve per removed channel."""
    c = len(CHANNELS)
    t = touches
    w = pd.Series(j.journeys)
    prev = t.groupby("journey")["channel"].shift(1).fillna(-1).astype(int) + 1  # 0 = start
    moves = pd.DataFrame({"a": prev, "b": t["channel"] + 1, "w": w.iloc[t["journey"]].to_numpy()})
    last = t[t["pos"] == t["length"] - 1]
    ends = pd.DataFrame({"a": last["channel"] + 1, "conv": j.conversions[last["journey"]],
                         "null": j.nulls[last["journey"]]})  # fmt: skip
    counts = moves.groupby(["a", "b"])["w"].sum().unstack(fill_value=0.0)
    counts = counts.reindex(index=range(c + 1), columns=range(c + 1), fill_value=0.0).to_numpy()
    e = ends.groupby("a")[["conv", "null"]].sum().reindex(range(c + 1), fill_value=0.0)
    out = counts.sum(1) + e["conv"].to_numpy() + e["null"].to_numpy()
    p = counts / np.where(out > 0, out, 1)[:, None]
    r = e["conv"].to_numpy() / np.where(out > 0, out, 1)

    def solve(keep):
        return np.linalg.solve(np.eye(len(keep)) - p[np.ix_(keep, keep)], r[keep])[0]

    base = solve(np.arange(c + 1))
    re = np.array([1 - solve(np.array([s for s in range(c + 1) if s != k + 1])) / base
                   for k in range(c)])  # fmt: skip
    return re / re.sum() * j.total_conversions


def pandas_rules(j: Journeys, touches: pd.DataFrame) -> dict[str, pd.Series]:
    t = touches.assign(conv=j.conversions[touches["journey"]])
    first, last = t["pos"] == 0, t["pos"] == t["length"] - 1
    out = {
        "first_touch": t[first].groupby("channel")["conv"].sum(),
        "last_touch": t[last].groupby("channel")["conv"].sum(),
        "linear": (t["conv"] / t["length"]).groupby(t["channel"]).sum(),
    }
    direct = CHANNELS.index("direct")
    nd = t[t["channel"] != direct]
    last_nd = nd.groupby("journey")["pos"].transform("max") == nd["pos"]
    out["last_non_direct"] = nd[last_nd].groupby("channel")["conv"].sum()
    w = np.where(first, 0.4, np.where(last, 0.4, 0.2 / np.maximum(t["length"] - 2, 1)))
    w = np.where(t["length"] == 1, 1.0, np.where(t["length"] == 2, 0.5, w))
    out["position_based"] = (t["conv"] * w).groupby(t["channel"]).sum()
    d = np.exp2(-(t["length"] - 1 - t["pos"]) / 7.0)
    d = d / d.groupby(t["journey"]).transform("sum")
    out["time_decay"] = (t["conv"] * d).groupby(t["channel"]).sum()
    out["participation"] = (
        t.drop_duplicates(["journey", "channel"]).groupby("channel")["conv"].sum()
    )
    return out


def timed(fn, repeats: int, *args) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def markov(j: Journeys):
    return fit_markov(j, 1).removal_effects()


def higher_orders(j: Journeys, orders: list[int], repeats: int) -> list[dict]:
    """Per order: states, seconds; above 300 states (the series) also sparse LU and the ratio."""
    import cjlib.attribution.markov as mk

    out = []
    for order in orders:
        fit = fit_markov(j, order)
        n = len(fit.design.states)
        row = {"order": order, "states": n, "seconds": timed(fit.removal_effects, repeats)}
        if n > mk._DENSE_MAX:  # solved by the series: time the LU fallback too
            sweeps, mk._SWEEPS = mk._SWEEPS, 0
            try:
                row["lu_seconds"] = timed(fit.removal_effects, max(1, repeats // 2))
                lu_re = fit.removal_effects()["removal_effect"].to_numpy()
            finally:
                mk._SWEEPS = sweeps
            assert np.allclose(fit.removal_effects()["removal_effect"], lu_re, rtol=1e-9)
            row["lu / series"] = row["lu_seconds"] / row["seconds"]
        out.append(row)
    return out


def events_frame(j: Journeys) -> pd.DataFrame:
    """Touch events + one purchase per converting journey (one customer per journey)."""
    pid, pos = j.path_ids, j.positions
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(pos * 3600, unit="s")
    touches = pd.DataFrame(
        {
            "customer_id": pid.astype(str),
            "timestamp": ts,
            "event": "view",
            "channel": np.asarray(CHANNELS)[j.codes],
            "revenue": np.nan,
        }
    )
    conv = np.flatnonzero(j.conversions > 0)
    buys = pd.DataFrame(
        {
            "customer_id": conv.astype(str),
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(j.lengths[conv] * 3600, unit="s"),
            "event": "purchase",
            "channel": None,
            "revenue": j.value[conv],
        }
    )
    return pd.concat([touches, buys], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--engine", action="store_true", help="also time journeys from events")
    ap.add_argument("--engine-max", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, nargs="*", default=[], help="higher orders to time")
    args = ap.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        raw = synth(n)
        paths = aggregate(raw)
        touches = touch_frame(raw)
        check = fit_markov(raw, 1).credits(raw.total_conversions, raw.total_value)[0]
        assert np.allclose(check, pandas_markov(raw, touches)), "pandas baseline disagrees"
        assert np.allclose(check, fit_markov(paths, 1).credits(paths.total_conversions, 0)[0])
        r = {"journeys": n, "paths": paths.n_paths, "touches": len(raw.codes)}
        r["markov_raw"] = timed(markov, args.repeats, raw)
        r["markov_paths"] = timed(markov, args.repeats, paths)
        r["rules_raw"] = timed(rule_credits, args.repeats, raw, RULE_MODELS)
        r["rules_paths"] = timed(rule_credits, args.repeats, paths, RULE_MODELS)
        reps = max(1, args.repeats // 2)
        r["pandas_markov"] = timed(pandas_markov, reps, raw, touches)
        r["pandas_rules"] = timed(pandas_rules, reps, raw, touches)
        tracemalloc.start()
        fit_markov(raw, 1).removal_effects()
        rule_credits(raw, RULE_MODELS)
        r["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        if args.engine and n <= args.engine_max:
            from cjlib.attribution import touch_journeys
            from cjlib.engine import Engine

            ev, eng = events_frame(raw), Engine.duckdb()
            t0 = time.perf_counter()
            built = touch_journeys(ev, engine=eng)
            r["engine_journeys"] = time.perf_counter() - t0
            assert built.total_conversions == raw.total_conversions
        r["markov_speedup"] = r["pandas_markov"] / r["markov_raw"]
        r["rules_speedup"] = r["pandas_rules"] / r["rules_raw"]
        rows.append(r)
        if args.orders:
            high = pd.DataFrame(higher_orders(raw, args.orders, args.repeats))
            print(f"{n} journeys, higher orders:\n{high.to_string(index=False)}")
        print(pd.DataFrame([r]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print("\nmedians in seconds; speedup = pandas / cjlib on raw journeys")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))


if __name__ == "__main__":
    main()
