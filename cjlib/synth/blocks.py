"""Block runner: seeded chunks -> Arrow tables per block, handed to a sink; input checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .params import (
    CHANNELS,
    CHUNK,
    COMMENTS,
    COST,
    DEVICES,
    EVENTS,
    GENDERS,
    PERSONAS,
    REGIONS,
    STAGES,
    STAT_KEYS,
    TOUCHPOINTS,
)
from .simulate import simulate_chunk


def arrow_tables(parts: list[dict[str, Any]], b0: int, b1: int, width: int) -> dict[str, Any]:
    """Turn the code arrays of the chunks of one block (customers b0..b1-1) into Arrow tables."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cat = {
        k: {c: np.concatenate([p[k][c] for p in parts]) for c in parts[0][k]}
        for k in ("events", "customers", "experiments", "surveys", "customer_persona")
    }
    num = pa.array(np.arange(b0, b1) + 1).cast(pa.string())
    ids = pc.binary_join_element_wise("C", pc.utf8_lpad(num, width=width, padding="0"), "")

    def cid(a: np.ndarray) -> Any:
        return pc.take(ids, pa.array(a - b0))

    def lab(vocab: Any, codes: np.ndarray) -> Any:
        codes = np.asarray(codes, dtype=np.int64)
        return pc.take(pa.array(list(vocab), pa.string()), pa.array(codes, mask=codes < 0))

    def tsa(a: np.ndarray) -> Any:
        return pa.array(np.asarray(a, dtype=np.int64), pa.timestamp("s", tz="UTC"))

    e, c, x, s, cp = (
        cat[k] for k in ("events", "customers", "experiments", "surveys", "customer_persona")
    )
    ecid = cid(e["cust"])
    sess = pc.utf8_lpad(pa.array(e["session"]).cast(pa.string()), width=3, padding="0")
    return {
        "events": pa.table(
            {
                "customer_id": ecid,
                "timestamp": tsa(e["ts"]),
                "event": lab(EVENTS, e["event"]),
                "channel": lab(CHANNELS, e["channel"]),
                "revenue": pa.array(e["revenue"], pa.float64(), from_pandas=True),
                "session_id": pc.binary_join_element_wise(ecid, sess, "-S"),
                "device": lab(DEVICES, e["device"]),
            }
        ),
        "customers": pa.table(
            {
                "customer_id": cid(c["cust"]),
                "age": pa.array(c["age"]),
                "gender": lab(GENDERS, c["gender"]),
                "region": lab(REGIONS, c["region"]),
                "device": lab(DEVICES, c["device"]),
                "signup_date": pa.array(c["signup"], pa.int32()).cast(pa.date32()),
                "acquisition_channel": lab(CHANNELS, c["acq"]),
            }
        ),
        "experiments": pa.table(
            {
                "customer_id": cid(x["cust"]),
                "experiment": lab(("checkout_redesign",), np.zeros(len(x["cust"]))),
                "variant": lab(("control", "treatment"), x["variant"]),
                "assigned_at": tsa(x["ts"]),
                "pre_period_sessions": pa.array(x["pre"]),
            }
        ),
        "surveys": pa.table(
            {
                "customer_id": cid(s["cust"]),
                "timestamp": tsa(s["ts"]),
                "stage": lab(STAGES, s["stage"]),
                "touchpoint": lab(TOUCHPOINTS, s["touchpoint"]),
                "nps": pa.array(s["nps"]),
                "csat": pa.array(s["csat"]),
                "comment": lab(COMMENTS, s["comment"]),
            }
        ),
        "customer_persona": pa.table(
            {"customer_id": cid(cp["cust"]), "persona": lab(PERSONAS, cp["persona"])}
        ),
    }


def window(start: Any, end: Any) -> tuple[int, int, np.ndarray]:
    """Validate the dates; return start (s), exclusive end (s, end day + 1) and the months."""
    days = []
    for name, value in (("start", start), ("end", end)):
        try:
            days.append(np.datetime64(value, "D"))
        except (ValueError, TypeError):
            msg = f"{name} must be an ISO date like '2026-01-01', got {value!r}"
            raise ValueError(msg) from None
    if days[1] < days[0]:
        raise ValueError(f"end must be on or after start ({start!r}), got {end!r}")
    t_lo, t_end = (int(d.astype("datetime64[s]").astype(np.int64)) for d in (days[0], days[1] + 1))
    first, last = (d.astype("datetime64[M]") for d in days)
    return t_lo, t_end, np.arange(first, last + 1)


def validate(n_customers: Any, random_state: Any, block_size: Any) -> None:
    for name, value, low in (
        ("n_customers", n_customers, 1),
        ("random_state", random_state, 0),
        ("block_size", block_size, CHUNK),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if block_size % CHUNK:
        raise ValueError(f"block_size must be a multiple of {CHUNK}, got {block_size!r}")


def run(
    n: int,
    random_state: int,
    start: Any,
    end: Any,
    block_size: int,
    progress: bool,
    sink: Callable[[str, Any], None],
) -> np.ndarray:
    """Simulate block by block, hand every table of every block to ``sink``; return the stats."""
    import pyarrow as pa
    from tqdm.std import tqdm

    t_lo, t_end, months = window(start, end)
    t = (t_lo, t_lo + (t_end - t_lo) // 2, t_end)
    months0, n_months = int(months[0].astype(np.int64)), len(months)
    n_chunks, per_block = -(-n // CHUNK), block_size // CHUNK
    stats = np.zeros(len(STAT_KEYS))
    touches = np.zeros(len(CHANNELS) * n_months, np.int64)
    blocks = range(-(-n_chunks // per_block))
    for b in tqdm(blocks, desc="synth", unit="block", mininterval=5, disable=not progress):
        parts = []
        for i in range(b * per_block, min((b + 1) * per_block, n_chunks)):
            # the same as SeedSequence(random_state).spawn(2)[0].spawn(i + 1)[i]
            seed = np.random.SeedSequence(random_state, spawn_key=(0, i))
            parts.append(
                simulate_chunk(seed, i * CHUNK, min(CHUNK, n - i * CHUNK), t, months0, n_months)
            )
            stats, touches = stats + parts[-1]["stats"], touches + parts[-1]["touches"]
        b0, b1 = b * block_size, min((b + 1) * block_size, n)
        for name, table in arrow_tables(parts, b0, b1, len(str(n))).items():
            sink(name, table)
    rng = np.random.default_rng(np.random.SeedSequence(random_state, spawn_key=(1,)))
    noise = np.exp(0.05 * rng.standard_normal(len(touches)))
    sink(
        "costs",
        pa.table(
            {
                "channel": np.repeat(np.array(CHANNELS), n_months).tolist(),
                "period": np.tile(months.astype(str), len(CHANNELS)).tolist(),
                "spend": np.round(touches * np.repeat(COST, n_months) * noise, 2),
            }
        ),
    )
    return stats
