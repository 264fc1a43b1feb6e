"""Metamorphic and reference tests of the funnel breakdowns (segments and entry-cohort trends).

On seeded random event logs (300 customers, UTC timestamps, channels with gaps and ties, a
customers table with a categorical ``region``; DuckDB default engine, pandas input), checks:

1. ``funnel_segments``: each segment's numbers (converted, denominator, conversion and its
   Wilson interval per step 2..n and for the whole funnel, step 0) and its entrants equal
   ``funnel()`` run on that segment's customers only, same definition, explicit ``as_of``.
   Closed and open modes, with and without a window; segments from a customers attribute and
   from the first channel (both recomputed independently in pandas).
2. The rest: ``rest_conversion`` equals ``funnel()`` on all other customers; the difference,
   the pooled two-proportion z-test p-value (hand formula) and Newcombe's hybrid score interval
   (method 10 from hand-computed Wilson limits) are recomputed; the Holm and
   Benjamini-Hochberg adjusted p-values are recomputed by hand over all tested rows.
3. Segments with fewer entrants than ``min_size`` are suppressed (own numbers and entrants
   blank, not tested, still part of the others' rest); ``entrants == min_size`` is not.
4. ``funnel_trends``: each entry cohort's numbers equal ``funnel()`` with ``period`` = the
   cohort's bounds (Monday-start UTC week, calendar month, intersected with the definition's
   period); cohorts and their entrants match each customer's entry computed in pandas;
   ``incomplete`` follows the documented rule (checked at the one-second boundary too); the
   Cochran-Armitage slope and p-value over complete, unsuppressed cohorts are recomputed.
5. Invariance: renaming customer ids, shuffling the rows and adding customers who never enter
   change none of segments, trends, the funnel table and the drop-off drivers.

On a mismatch the customers are shrunk (greedy delta debugging, time-boxed) to a small set that
still shows it, and that case is printed with cjlib's and the expected numbers.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from conftest import wilson_by_hand

from cjlib.funnels import (
    attribute_segments,
    dropoff_drivers,
    first_channel_segments,
    funnel,
    funnel_segments,
    funnel_trends,
)

T0 = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
CUT = T0 + pd.Timedelta(days=70)  # 2026-03-16, a Monday: no event at or after it
STEPS = ["view", "cart|save", "buy"]
N_STEPS = len(STEPS)
ENTRY_EVENTS = {"closed": {"view"}, "open": {"view", "cart", "save", "buy"}}
CHANNELS = ["search", "email", "social", "direct"]
REGIONS = ["north", "south", "east", "west"]
NONE = "(none)"
US = pd.Timedelta(microseconds=1)

CONFIGS = {
    "closed-7D": dict(mode="closed", window="7D", as_of=CUT),
    "open-3D": dict(mode="open", window="3D", as_of=CUT),
    "closed-nowindow": dict(mode="closed", window=None, as_of=CUT),
    "open-nowindow-later-as_of": dict(mode="open", window=None, as_of=CUT + pd.Timedelta("2D")),
}
SEGMENT_CASES = [
    ("closed-7D", "region"),
    ("closed-7D", "first_channel"),
    ("open-3D", "region"),
    ("open-3D", "first_channel"),
    ("closed-nowindow", "region"),
    ("open-nowindow-later-as_of", "first_channel"),
]


# -- the data ----------------------------------------------------------------------------------
def _journeys(rng: np.random.Generator, ids: list[str], *, noise_only: str | None = None) -> list:
    """Events of ``ids``: random walks through the funnel with repeats, detours, ties (same
    second), missing and empty channels; 12 % start exactly on a week or month boundary.
    ``noise_only``: ``"any"`` (no funnel event) or ``"no_view"`` (never the closed entry)."""
    bounds = [T0 + pd.Timedelta(weeks=w) for w in range(10)] + [
        pd.Timestamp("2026-02-01", tz="UTC"),
        pd.Timestamp("2026-03-01", tz="UTC"),
    ]
    rows = []
    for cid in ids:
        if rng.random() < 0.12:
            t = bounds[int(rng.integers(len(bounds)))]
        else:
            t = T0 + pd.Timedelta(seconds=int(rng.integers(0, 70 * 86400)))
        stage = 0
        for _ in range(int(rng.integers(1, 8))):
            r = rng.random()
            if noise_only == "any":
                event = str(rng.choice(["visit", "help"]))
            elif noise_only == "no_view":
                event = str(rng.choice(["visit", "cart", "save", "buy"]))
            elif r < 0.55:
                event = ("view", str(rng.choice(["cart", "save"])), "buy")[min(stage, 2)]
                stage += 1
            elif r < 0.75:
                event = str(rng.choice(["visit", "help"]))
            else:
                event = str(rng.choice(["view", "cart", "save", "buy"]))
            c = rng.random()
            channel = str(rng.choice(CHANNELS)) if c < 0.7 else (None if c < 0.95 else "")
            if t < CUT:
                rows.append((cid, t, event, channel))
            g = rng.random()
            gap = 0 if g < 0.12 else rng.exponential(86400 if g < 0.8 else 6 * 86400)
            t = t + pd.Timedelta(seconds=int(gap))
    return rows


def _frame(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event", "channel"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


@functools.cache
def make_log(seed: int = 20260105, n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(events, customers)``: customers lists 88 % of the customers (the rest have no row and
    form ``(none)``), 5 % with a null region, a 4-customer region ``islands`` (suppressed at
    ``min_size`` 10) and 10 customers with no events."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(n)]
    events = _frame(_journeys(rng, ids))
    region = rng.choice(REGIONS, size=n, p=[0.35, 0.3, 0.2, 0.15]).astype(object)
    region[rng.random(n) < 0.05] = None
    tiny = rng.choice(n, 4, replace=False)
    region[tiny] = "islands"
    listed = rng.random(n) >= 0.12
    listed[tiny] = True
    customers = pd.DataFrame({"customer_id": ids, "region": region})[listed]
    ghosts = pd.DataFrame(
        {"customer_id": [f"g{i:03d}" for i in range(10)], "region": ["north"] * 5 + ["zz"] * 5}
    )
    customers = pd.concat([customers, ghosts], ignore_index=True)
    return events, customers


# -- independent computations (pandas and hand formulas) ---------------------------------------
def entry_times(events: pd.DataFrame, mode: str) -> pd.Series:
    """customer -> first entry (closed: first step-1 event; open: first funnel event)."""
    e = events[events["event"].isin(ENTRY_EVENTS[mode])]
    return e.groupby("customer_id")["timestamp"].min()


def first_channel(events: pd.DataFrame) -> pd.Series:
    """customer -> channel of the first event with a (non-empty) channel; ties: alphabetical."""
    e = events[events["channel"].notna() & (events["channel"] != "")]
    first = e.groupby("customer_id")["timestamp"].transform("min")
    return e[e["timestamp"] == first].groupby("customer_id")["channel"].min()


def segment_of(source: str, events: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """customer (every one in the events) -> segment, ``(none)`` when missing."""
    ids = pd.Index(events["customer_id"].unique())
    if source == "first_channel":
        mapping = first_channel(events)
    else:
        mapping = customers.set_index("customer_id")[source]
    return pd.Series(ids.map(mapping), index=ids).fillna(NONE)


def segments_table(source: str, events: pd.DataFrame, customers: pd.DataFrame):
    if source == "first_channel":
        return first_channel_segments(events)
    return attribute_segments(customers, source)


def newcombe(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """Newcombe (1998) method 10: d - sqrt((p1-l1)^2 + (u2-p2)^2), d + sqrt((u1-p1)^2 + ...)."""
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson_by_hand(x1, n1), wilson_by_hand(x2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def z_test(x1: float, n1: float, x2: float, n2: float) -> float:
    """Two-sided pooled two-proportion z test (= chi-square without continuity correction)."""
    if n1 == 0 or n2 == 0:
        return math.nan
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return math.nan
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm (1979): the i-th smallest gets max_{j<=i} min(1, (m - j + 1) p_(j)); NaN left out."""
    idx = sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=lambda i: p[i])
    m, out, running = len(idx), [math.nan] * len(p), 0.0
    for j, i in enumerate(idx):
        running = max(running, min(1.0, (m - j) * p[i]))
        out[i] = running
    return out


def bh_by_hand(p: list[float]) -> list[float]:
    """Benjamini-Hochberg: the i-th smallest gets min_{j>=i} min(1, m p_(j) / j); NaN left out."""
    idx = sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=lambda i: p[i])
    m, out, running = len(idx), [math.nan] * len(p), 1.0
    for rank in range(m, 0, -1):
        i = idx[rank - 1]
        running = min(running, min(1.0, m * p[i] / rank))
        out[i] = running
    return out


def trend_by_hand(x: list[int], n: list[int]) -> tuple[float, float]:
    """Cochran-Armitage with scores 0..k-1: slope = sum s (x - n p) / (sum n s^2 - (sum n s)^2 / N)
    (WLS of x/n on s, weights n), chi2 = slope^2 * Sxx / (p (1 - p)), 1 df."""
    s = range(len(x))
    big_n, p = sum(n), sum(x) / sum(n)
    sxx = (
        sum(ni * si * si for ni, si in zip(n, s, strict=True))
        - sum(ni * si for ni, si in zip(n, s, strict=True)) ** 2 / big_n
    )
    slope = sum(si * (xi - ni * p) for si, xi, ni in zip(s, x, n, strict=True)) / sxx
    chi2 = slope * slope * sxx / (p * (1 - p))
    return slope, math.erfc(math.sqrt(chi2 / 2))


def same(a, b, tol: float = 1e-9) -> bool:
    a_na, b_na = pd.isna(a), pd.isna(b)
    if a_na or b_na:
        return bool(a_na and b_na)
    return abs(float(a) - float(b)) <= tol * (1 + abs(float(b)))


# -- funnel() on a subset ----------------------------------------------------------------------
def sub_funnel(events: pd.DataFrame, ids, cfg: dict, **extra):
    return funnel(events[events["customer_id"].isin(set(ids))], STEPS, **cfg, **extra)


def rows_of(f) -> dict[int, tuple]:
    """step -> (converted, denominator, conversion, low, high) as funnel_segments defines them:
    step k >= 2 from the previous step, step 0 the whole funnel (last step / from start)."""
    s = f.steps.set_index("step")
    last = s.loc[N_STEPS]
    out = {
        0: (
            last["customers"],
            last["denominator_from_start"],
            last["conversion_from_start"],
            last["conversion_from_start_low"],
            last["conversion_from_start_high"],
        )
    }
    for k in range(2, N_STEPS + 1):
        r = s.loc[k]
        out[k] = (
            r["continued"],
            r["denominator"],
            r["conversion"],
            r["conversion_low"],
            r["conversion_high"],
        )
    return out


OWN = ["converted", "denominator", "conversion", "conversion_low", "conversion_high"]
BLANK = OWN + ["difference", "difference_low", "difference_high", "p_value", "p_adjusted"]


def segment_mismatches(
    events: pd.DataFrame,
    customers: pd.DataFrame,
    cfg: dict,
    source: str,
    *,
    min_size: int = 10,
    adjust_method: str = "holm",
    only: str | None = None,
    per_segment: bool = True,
) -> list[tuple[str, str, str]]:
    """``(kind, segment, message)`` for every disagreement between ``funnel_segments`` and the
    independent computation; kinds: sizes, counts, rest, test, adjust, suppress. ``only``
    restricts the per-segment checks to one segment (for shrinking); ``per_segment=False``
    checks only the segment list and the adjusted p-values (no funnel() runs)."""
    res = funnel_segments(
        events,
        STEPS,
        segments_table(source, events, customers),
        min_size=min_size,
        adjust_method=adjust_method,
        **cfg,
    )
    bad: list[tuple[str, str, str]] = []
    seg = segment_of(source, events, customers)
    entered = entry_times(events, cfg["mode"]).index
    expected = seg[seg.index.isin(entered)].value_counts()
    sizes = res.sizes.set_index("segment")
    if only is None and set(sizes.index) != set(expected.index):
        bad.append(("sizes", "*", f"segments {sorted(sizes.index)} != {sorted(expected.index)}"))
    table = res.table
    for name, n_entrants in expected.items():
        if not per_segment or (only is not None and name != only) or name not in sizes.index:
            continue
        suppressed = n_entrants < min_size
        got_size = sizes.loc[name]
        if bool(got_size["suppressed"]) != suppressed:
            bad.append(
                (
                    "suppress",
                    name,
                    f"suppressed={got_size['suppressed']}, expected "
                    f"{suppressed} with {n_entrants} entrants, min_size={min_size}",
                )
            )
        if not same(got_size["entrants"], math.nan if suppressed else n_entrants):
            bad.append(
                (
                    "suppress" if suppressed else "sizes",
                    name,
                    f"entrants {got_size['entrants']} != {n_entrants}",
                )
            )
        rows = table[table["segment"] == name].set_index("step")
        if sorted(rows.index) != [0, *range(2, N_STEPS + 1)]:
            bad.append(("counts", name, f"steps {sorted(rows.index)}"))
            continue
        rest = rows_of(sub_funnel(events, seg.index[seg != name], cfg))
        mine = None
        if not suppressed:
            f = sub_funnel(events, seg.index[seg == name], cfg)
            mine = rows_of(f)
            if f.entered != n_entrants:
                bad.append(("counts", name, f"funnel() entered {f.entered} != {n_entrants}"))
        for k, row in rows.iterrows():
            if (row["suppressed"]) != suppressed:
                bad.append(("suppress", name, f"step {k}: row suppressed={row['suppressed']}"))
            xr, nr, conv_r = rest[k][:3]
            # a suppressed segment's rest is blank too (with the whole funnel it gives the
            # segment's own numbers back)
            if not same(row["rest_conversion"], math.nan if suppressed else conv_r):
                bad.append(
                    (
                        "rest",
                        name,
                        f"step {k} rest_conversion: cjlib "
                        f"{row['rest_conversion']!r}, funnel() on the rest {xr}/{nr}",
                    )
                )
            if suppressed:
                filled = [c for c in BLANK if not pd.isna(row[c])]
                if filled or bool(row["significant"]):
                    bad.append(
                        ("suppress", name, f"step {k}: not blank: { {c: row[c] for c in filled} }")
                    )
                continue
            x, n = mine[k][:2]
            for col, want in zip(OWN, mine[k], strict=True):
                if not same(row[col], want):
                    bad.append(
                        (
                            "counts",
                            name,
                            f"step {k} {col}: cjlib {row[col]!r}, funnel() on the segment {want!r}",
                        )
                    )
            for col, want in zip(OWN[3:], wilson_by_hand(x, n), strict=True):
                if not same(row[col], want):
                    bad.append(
                        (
                            "counts",
                            name,
                            f"step {k} {col}: cjlib {row[col]!r}, "
                            f"Wilson by hand {want!r} ({x}/{n})",
                        )
                    )
            diff = x / n - xr / nr if n and nr else math.nan
            lo, hi = newcombe(x, n, xr, nr)
            for col, want in [
                ("difference", diff),
                ("difference_low", lo),
                ("difference_high", hi),
                ("p_value", z_test(x, n, xr, nr)),
            ]:
                if not same(row[col], want):
                    bad.append(
                        (
                            "test",
                            name,
                            f"step {k} {col}: cjlib {row[col]!r}, by hand "
                            f"{want!r} (segment {x}/{n}, rest {xr}/{nr})",
                        )
                    )
    if only is None:
        p = [float(v) for v in table["p_value"]]
        fam = [v if not s else math.nan for v, s in zip(p, table["suppressed"], strict=True)]
        by_hand = {"holm": holm_by_hand, "bh": bh_by_hand, "none": list}[adjust_method](fam)
        for (i, row), want in zip(table.iterrows(), by_hand, strict=True):
            if not same(row["p_adjusted"], want, 1e-12):
                bad.append(
                    (
                        "adjust",
                        row["segment"],
                        f"step {row['step']} p_adjusted "
                        f"({adjust_method}): cjlib {row['p_adjusted']!r}, by hand {want!r} "
                        f"over {sum(not math.isnan(v) for v in fam)} tests",
                    )
                )
            if bool(row["significant"]) != (not math.isnan(want) and want < res.alpha):
                bad.append(("adjust", row["segment"], f"row {i}: significant flag"))
    return bad


# -- shrinking and printing a minimal case -----------------------------------------------------
def shrink(ids: list[str], fails: Callable[[list[str]], bool], seconds: float = 15.0) -> list:
    """Greedy delta debugging: drop chunks of customers while ``fails`` stays true."""
    start, ids = time.monotonic(), list(ids)
    chunk = max(len(ids) // 2, 1)
    while chunk >= 1 and time.monotonic() - start < seconds:
        i = 0
        while i < len(ids) and time.monotonic() - start < seconds:
            trial = ids[:i] + ids[i + chunk :]
            try:
                ok = bool(trial) and fails(trial)
            except Exception:  # noqa: BLE001 - e.g. a step event missing from the subset
                ok = False
            if ok:
                ids = trial
            else:
                i += chunk
        chunk //= 2
    return ids


def report(
    title: str,
    events: pd.DataFrame,
    ids: list[str],
    extra: pd.DataFrame | None,
    messages: list[str],
) -> None:
    print(f"\n=== minimal case: {title} ({len(ids)} customers) ===")
    print("(some customers may be kept only to supply event names the steps name: funnel()")
    print(" refuses a step event that does not occur in the events)")
    sub = events[events["customer_id"].isin(set(ids))].sort_values(["customer_id", "timestamp"])
    print(sub.to_string(index=False))
    if extra is not None:
        print(extra[extra["customer_id"].isin(set(ids))].to_string(index=False))
    for m in messages[:10]:
        print("  ", m)


def assert_segments(case: tuple[str, str], kinds: set[str], **kw) -> None:
    cfg_name, source = case
    cfg = CONFIGS[cfg_name]
    events, customers = make_log()
    bad = [b for b in cached_segment_check(cfg_name, source, **kw) if b[0] in kinds]
    if bad:
        kind, name, _ = bad[0]
        min_size = kw.get("min_size", 10) if kind == "suppress" else 1
        only = None if kind in ("sizes", "adjust") else name

        def fails(ids: list[str]) -> bool:
            ev = events[events["customer_id"].isin(set(ids))]
            found = segment_mismatches(
                ev,
                customers,
                cfg,
                source,
                min_size=min_size,
                only=only,
                adjust_method=kw.get("adjust_method", "holm"),
                per_segment=kind != "adjust",
            )
            return any(b[0] == kind for b in found)

        ids = list(events["customer_id"].unique())
        if not fails(ids):
            min_size = kw.get("min_size", 10)
        small = shrink(ids, fails)
        ev = events[events["customer_id"].isin(set(small))]
        msgs = segment_mismatches(
            ev,
            customers,
            cfg,
            source,
            min_size=min_size,
            adjust_method=kw.get("adjust_method", "holm"),
        )
        report(
            f"{cfg_name}, segments by {source}, min_size={min_size}",
            events,
            small,
            customers if source != "first_channel" else None,
            [f"[{k}] {s}: {m}" for k, s, m in msgs if k == kind],
        )
    assert not bad, "\n".join(f"[{k}] {s}: {m}" for k, s, m in bad[:20])


@functools.cache
def _segment_check(
    cfg_name: str, source: str, min_size: int, adjust_method: str, per_segment: bool
) -> tuple:
    events, customers = make_log()
    return tuple(
        segment_mismatches(
            events,
            customers,
            CONFIGS[cfg_name],
            source,
            min_size=min_size,
            adjust_method=adjust_method,
            per_segment=per_segment,
        )
    )


def cached_segment_check(
    cfg_name: str,
    source: str,
    min_size: int = 10,
    adjust_method: str = "holm",
    per_segment: bool = True,
) -> tuple:
    return _segment_check(cfg_name, source, min_size, adjust_method, per_segment)


# -- 1-3: segments -----------------------------------------------------------------------------
def test_data_covers_the_cases():
    """The log has segments of every kind, entries on cohort boundaries and ties."""
    events, customers = make_log()
    assert 250 <= events["customer_id"].nunique() <= 300
    seg = segment_of("region", events, customers)
    assert {NONE, "islands", *REGIONS} <= set(seg)
    assert (events["timestamp"] == T0 + pd.Timedelta(weeks=3)).any()
    assert events.duplicated(["customer_id", "timestamp"]).any()
    fc = segment_of("first_channel", events, customers)
    assert {NONE, *CHANNELS} <= set(fc)


@pytest.mark.parametrize("case", SEGMENT_CASES, ids=["/".join(c) for c in SEGMENT_CASES])
def test_segment_numbers_equal_the_funnel_of_its_customers(case):
    assert_segments(case, {"sizes", "counts"})


@pytest.mark.parametrize("case", SEGMENT_CASES, ids=["/".join(c) for c in SEGMENT_CASES])
def test_rest_difference_test_interval_and_holm(case):
    assert_segments(case, {"rest", "test", "adjust"})


@pytest.mark.parametrize("case", SEGMENT_CASES[:3], ids=["/".join(c) for c in SEGMENT_CASES[:3]])
def test_benjamini_hochberg_over_the_table(case):
    assert_segments(case, {"adjust"}, adjust_method="bh", per_segment=False)


SUPPRESS_CASES = [SEGMENT_CASES[0], SEGMENT_CASES[3]]


@pytest.mark.parametrize("case", SUPPRESS_CASES, ids=["/".join(c) for c in SUPPRESS_CASES])
def test_small_segments_are_suppressed(case):
    """Default min_size 10 suppresses the 4-customer ``islands``; then the smallest entrant
    count m of a segment: min_size = m keeps it (``fewer than``), min_size = m + 1 suppresses
    it and every segment as small (their rows blank, untested, still in the others' rest)."""
    cfg_name, source = case
    events, customers = make_log()
    assert_segments(case, {"suppress", "sizes"})
    seg = segment_of(source, events, customers)
    entered = seg[seg.index.isin(entry_times(events, CONFIGS[cfg_name]["mode"]).index)]
    counts = entered.value_counts()
    big = sorted(c for c in counts if c >= 10)
    m = big[0]
    assert_segments(case, {"suppress", "sizes"}, min_size=m)
    assert_segments(case, {"suppress", "sizes", "rest", "adjust"}, min_size=m + 1)
    if source == "region":
        assert 0 < counts.get("islands", 0) < 10


# -- 4: trends ---------------------------------------------------------------------------------
def cohort_start(ts: pd.Series, unit: str) -> pd.Series:
    day = ts.dt.floor("D")
    if unit == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def cohort_end(start: pd.Timestamp, unit: str) -> pd.Timestamp:
    return start + (pd.Timedelta(days=7) if unit == "week" else pd.DateOffset(months=1))


def trend_mismatches(
    events: pd.DataFrame,
    cfg: dict,
    unit: str,
    period: tuple | None = None,
    min_size: int = 1,
    only: pd.Timestamp | None = None,
) -> list[tuple[str, str, str]]:
    tr = funnel_trends(events, STEPS, cohort=unit, min_size=min_size, period=period, **cfg)
    p0, p1 = (None, None) if period is None else (pd.Timestamp(p, tz="UTC") for p in period)
    entry = entry_times(events, cfg["mode"])
    if p0 is not None:
        entry = entry[entry >= p0]
    if p1 is not None:
        entry = entry[entry < p1]
    mine = cohort_start(entry, unit).value_counts()
    bad: list[tuple[str, str, str]] = []
    table = tr.table.set_index("cohort")
    if only is None and set(table.index) != set(mine.index):
        bad.append(
            (
                "cohorts",
                "*",
                f"cohorts {sorted(map(str, table.index))} != {sorted(map(str, mine.index))}",
            )
        )
    as_of = cfg["as_of"]
    window = None if cfg["window"] is None else pd.Timedelta(cfg["window"])
    for start, row in table.iterrows():
        if only is not None and start != only:
            continue
        key, end = str(start.date()), cohort_end(start, unit)
        lo = start if p0 is None else max(start, p0)
        hi = end if p1 is None else min(end, p1)
        f = funnel(events, STEPS, period=(lo, hi), **cfg)
        last = f.steps.iloc[-1]
        want = {
            "entrants": f.entered,
            "converted": last["customers"],
            "in_progress": f.steps["in_progress"].sum(),
            "denominator": last["denominator_from_start"],
            "conversion": last["conversion_from_start"],
            "conversion_low": last["conversion_from_start_low"],
            "conversion_high": last["conversion_from_start_high"],
        }
        suppressed = mine.get(start, 0) < min_size
        if f.entered != mine.get(start, 0):
            bad.append(("counts", key, f"funnel() entered {f.entered}, pandas {mine.get(start)}"))
        if bool(row["suppressed"]) != suppressed:
            bad.append(("counts", key, f"suppressed={row['suppressed']}"))
        for col, value in want.items():
            value = math.nan if suppressed else value
            if not same(row[col], value):
                bad.append(
                    (
                        "counts",
                        key,
                        f"{col}: cjlib {row[col]!r}, funnel() with period [{lo}, {hi}) {value!r}",
                    )
                )
        # documented: with a window, its last possible entry plus the window is after as_of
        # (entries end at the cohort's end or the period's, whichever is first); without one,
        # the cohort period itself is not over
        incomplete = end > as_of if window is None else hi - US + window > as_of
        if bool(row["incomplete"]) != incomplete:
            bad.append(
                (
                    "incomplete",
                    key,
                    f"incomplete: cjlib {row['incomplete']}, documented "
                    f"rule {incomplete} (cohort [{start}, {end}), entries until {hi}, window "
                    f"{window}, as_of {as_of}, in progress {want['in_progress']})",
                )
            )
        if not incomplete and want["in_progress"]:
            bad.append(
                ("incomplete", key, f"complete cohort with {want['in_progress']} in progress")
            )
    if only is None:
        done = table[~table["incomplete"] & ~table["suppressed"]]
        x, n = [int(v) for v in done["converted"]], [int(v) for v in done["denominator"]]
        ok = [i for i, v in enumerate(n) if v > 0]
        x, n = [x[i] for i in ok], [n[i] for i in ok]
        if len(n) >= 2 and 0 < sum(x) < sum(n):  # two cohorts: R's prop.trend.test still tests
            slope, p = trend_by_hand(x, n)
            if not (same(tr.slope, slope) and same(tr.p_value, p)):
                bad.append(
                    (
                        "trend",
                        "*",
                        f"slope, p: cjlib {tr.slope!r}, {tr.p_value!r}; by "
                        f"hand {slope!r}, {p!r} (x={x}, n={n})",
                    )
                )
    return bad


TREND_CASES = {
    "closed-7D/week": ("closed-7D", "week", None, 1),
    "open-3D/week/period": ("open-3D", "week", ("2026-01-14 12:00", "2026-03-12"), 1),
    "closed-7D/month/min10": ("closed-7D", "month", None, 10),
    "open-nowindow/week/min10": ("open-nowindow-later-as_of", "week", None, 10),
}


@pytest.mark.parametrize("name", list(TREND_CASES))
def test_cohort_numbers_equal_the_funnel_of_the_cohort(name):
    cfg_name, unit, period, min_size = TREND_CASES[name]
    cfg = CONFIGS[cfg_name]
    events, _ = make_log()
    bad = trend_mismatches(events, cfg, unit, period, min_size)
    if bad:
        kind, key, _ = bad[0]
        only = None if key == "*" else pd.Timestamp(key, tz="UTC")

        def fails(ids: list[str]) -> bool:
            ev = events[events["customer_id"].isin(set(ids))]
            return any(
                b[0] == kind for b in trend_mismatches(ev, cfg, unit, period, min_size, only=only)
            )

        small = shrink(list(events["customer_id"].unique()), fails)
        ev = events[events["customer_id"].isin(set(small))]
        msgs = trend_mismatches(ev, cfg, unit, period, min_size, only=only)
        report(f"trends {name}", events, small, None, [f"[{k}] {c}: {m}" for k, c, m in msgs])
    assert not bad, "\n".join(f"[{k}] {c}: {m}" for k, c, m in bad[:20])


@pytest.mark.parametrize("delta", ["0s", "-1s"])
def test_incomplete_flag_at_the_boundary(delta):
    """Week of 2 Mar (entries until 9 Mar 00:00), 3-day window: complete from as_of = 12 Mar
    00:00 on (an entry at 8 Mar 23:59:59.999999 is then past its window), incomplete before."""
    events, _ = make_log()
    as_of = pd.Timestamp("2026-03-12", tz="UTC") + pd.Timedelta(delta)
    ev = events[events["timestamp"] <= as_of]
    cfg = dict(mode="closed", window="3D", as_of=as_of)
    tr = funnel_trends(ev, STEPS, min_size=1, **cfg)
    row = tr.table.set_index("cohort").loc[pd.Timestamp("2026-03-02", tz="UTC")]
    assert bool(row["incomplete"]) == (delta != "0s"), row.to_dict()
    bad = trend_mismatches(ev, cfg, "week", only=pd.Timestamp("2026-03-02", tz="UTC"))
    assert not bad, bad


# -- 5: invariance -----------------------------------------------------------------------------
def results(events: pd.DataFrame, customers: pd.DataFrame, cfg: dict) -> dict[str, pd.DataFrame]:
    """Every breakdown, ids dropped and rows sorted by their keys (comparable across renames)."""
    out = {}
    for source in ("region", "first_channel"):
        r = funnel_segments(events, STEPS, segments_table(source, events, customers), **cfg)
        out[f"segments/{source}"] = r.table.sort_values(["segment", "step"], ignore_index=True)
        out[f"sizes/{source}"] = r.sizes.sort_values("segment", ignore_index=True)
    out["trends"] = funnel_trends(events, STEPS, min_size=1, **cfg).table
    out["funnel"] = funnel(events, STEPS, **cfg).steps
    d = dropoff_drivers(
        events, STEPS, customers=customers, attributes=["region"], top=None, min_size=3, **cfg
    )
    out["drivers"] = d.table.sort_values(["feature", "value"], ignore_index=True)
    out["drivers/meta"] = pd.DataFrame(
        [{"step": d.step, "n_dropped": d.n_dropped, "n_converted": d.n_converted}]
    )
    return out


def rename(events: pd.DataFrame, customers: pd.DataFrame, seed: int):
    rng = np.random.default_rng(seed)
    ids = sorted(set(events["customer_id"]) | set(customers["customer_id"]))
    new = [f"id-{v:06x}" for v in rng.permutation(len(ids)) * 7919 + 17]
    mapping = dict(zip(ids, new, strict=True))
    return (
        events.assign(customer_id=events["customer_id"].map(mapping)),
        customers.assign(customer_id=customers["customer_id"].map(mapping)),
    )


def shuffle(events: pd.DataFrame, customers: pd.DataFrame, seed: int):
    return (
        events.sample(frac=1, random_state=seed).reset_index(drop=True),
        customers.sample(frac=1, random_state=seed + 1).reset_index(drop=True),
    )


def add_non_entrants(events: pd.DataFrame, customers: pd.DataFrame, seed: int, mode: str):
    """60 customers doing no funnel event (and, for closed funnels, 30 more doing funnel events
    but never the first step), some with a new channel and region of their own."""
    rng = np.random.default_rng(seed)
    rows = _journeys(rng, [f"n{i:03d}" for i in range(60)], noise_only="any")
    if mode == "closed":
        rows += _journeys(rng, [f"m{i:03d}" for i in range(30)], noise_only="no_view")
    extra = _frame(rows)
    extra.loc[extra.index[::5], "channel"] = "carrier-pigeon"
    new_ids = extra["customer_id"].unique()
    regions = ["north", "atlantis"] * (len(new_ids) // 2) + ["north"] * (len(new_ids) % 2)
    more = pd.DataFrame({"customer_id": new_ids, "region": regions})
    return (
        pd.concat([events, extra], ignore_index=True),
        pd.concat([customers, more], ignore_index=True),
    )


def compare(base: dict, other: dict, label: str) -> list[str]:
    diffs = []
    for key, want in base.items():
        got = other[key]
        try:
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
        except AssertionError as exc:
            diffs.append(
                f"{label}: {key} changed\n{exc}\nbase:\n{want.to_string()}\n"
                f"transformed:\n{got.to_string()}"
            )
    return diffs


@pytest.mark.parametrize(
    "cfg_name, transforms",
    [
        ("closed-7D", ("rename", "shuffle", "add")),
        ("open-3D", ("rename+shuffle+add",)),
    ],
)
def test_invariance(cfg_name, transforms):
    cfg = CONFIGS[cfg_name]
    events, customers = make_log()
    base = results(events, customers, cfg)
    diffs = []
    for i, name in enumerate(transforms):
        ev, cu = events, customers
        for step in name.split("+"):
            if step == "rename":
                ev, cu = rename(ev, cu, seed=i)
            elif step == "shuffle":
                ev, cu = shuffle(ev, cu, seed=i)
            else:
                ev, cu = add_non_entrants(ev, cu, seed=i, mode=cfg["mode"])
        diffs += compare(base, results(ev, cu, cfg), f"{cfg_name}, {name}")
    for d in diffs:
        print(d)
    assert not diffs, diffs[0][:3000]
