"""Differential test: the stage-journey functions against a brute-force oracle.

Checks ``cj.stage_steps``, ``cj.stage_sequences``, ``cj.stage_paths``, ``cj.stage_transitions``,
``cj.furthest_stage`` and ``cjlib.funnels.stage_view.dwell_times`` (DuckDB, the default engine)
on many small seeded random event logs against a plain-Python reference that loops over each
customer's events. The oracle is written from the documentation only (the module and function
docstrings of ``cjlib.journeys``, ``cjlib.stage_mapping``, ``cjlib.stages`` and ``dwell_times``).
It reads the StageModel's data (stage order, event names, patterns, ``repeats``) but calls no
cjlib code. The rules it encodes:

- an event's stage: its name lower-cased with runs of spaces/hyphens read as ``_``, looked up in
  the exact names, then the patterns in order (first ``re.search`` hit); otherwise unmapped and
  left out;
- ``repeats`` ``{stage: later}``: a customer's events in ``stage`` after their first one there
  count as ``later``; events tied with the first stay (the preset test's "a tie: both first");
- steps: by time, ties by stage order, then event name; consecutive repeats of a stage collapse
  into one step (the first event of the run) unless ``collapse=False``;
- a move is a progression (next stage), skip (further forward), regression (back) or repeat
  (same stage); ``(start)``/``(end)`` open and close every customer's steps;
- dwell time: from a step to the customer's next step (collapsed steps), floored to the second
  under an hour and to the minute above; a customer's last step is an open step. The quartiles
  are empirical quantiles (Hyndman & Fan type 1: the smallest duration with cumulative share
  >= q), as ``dwell_times`` documents;
- shares with the Wilson score interval.

Timestamps are drawn on a coarse hour grid so ties are frequent; one seed in four moves half the
events off the grid (milliseconds) to check the duration floors. On a mismatch, the log is shrunk
(delta debugging over customers, then rows) to a small failing log that is printed and put in the
failure message together with cjlib's and the oracle's outputs.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from conftest import wilson_by_hand

import cjlib as cj
from cjlib.funnels.stage_view import dwell_times
from cjlib.stages import StageModel

START, END = "(start)", "(end)"
T0 = pd.Timestamp("2026-03-01", tz="UTC")
SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US

HAND_STAGES = ("aware", "consider", "buy", "loyal")
HAND_EVENTS = {
    "Ad View": "aware",
    "landing": "aware",
    "product-view": "consider",
    "add_to_cart": "consider",
    "checkout": "buy",
    "pay": "buy",
    "login": "loyal",
    "review": "loyal",
}
# the log spells some names differently from the model (case, spaces, hyphens)
HAND_POOL = (
    "ad_view", "Ad View", "landing", "product_view", "Product View", "add_to_cart", "checkout",
    "pay", "PAY", "login", "review", "scroll", "mystery",
)  # fmt: skip
FIVE_POOL = (
    "ad_impression", "page_view", "product_view", "add_to_cart", "purchase", "purchase",
    "order_completed", "Order Completed", "payment_done", "repeat_purchase", "login",
    "review_submitted", "newsletter_share", "mystery_event", "scroll",
)  # fmt: skip

MODELS: dict[str, tuple[Callable[[], StageModel], tuple[str, ...]]] = {
    "hand": (lambda: StageModel(HAND_STAGES, HAND_EVENTS, name="hand"), HAND_POOL),
    "hand_repeats": (
        lambda: StageModel(HAND_STAGES, HAND_EVENTS, name="hand", repeats={"buy": "loyal"}),
        HAND_POOL,
    ),
    "five_stage": (cj.five_stage, FIVE_POOL),
}
SEEDS = {"hand": range(10), "hand_repeats": range(8), "five_stage": range(10)}

# (function, collapse): collapse None = the function has no such option
CHECKED = [
    ("stage_steps", True),
    ("stage_steps", False),
    ("stage_sequences", True),
    ("stage_sequences", False),
    ("stage_paths", True),
    ("stage_paths", False),
    ("stage_transitions", True),
    ("stage_transitions", False),
    ("furthest_stage", None),
    ("dwell_times", None),
]


# -- random logs ---------------------------------------------------------------------------------
def random_log(model_name: str, seed: int) -> pd.DataFrame:
    """5-40 customers with 1-15 events each on an hour grid (a few hours wide: many ties)."""
    rng = np.random.default_rng([seed, zlib.crc32(model_name.encode())])
    pool = MODELS[model_name][1]
    jitter = seed % 4 == 3
    rows = []
    for c in range(int(rng.integers(5, 41))):
        span = int(rng.choice([2, 4, 8, 24]))
        for _ in range(int(rng.integers(1, 16))):
            us = int(rng.integers(0, span)) * HOUR_US
            if jitter and rng.random() < 0.5:
                us += int(rng.integers(0, 5_400_000)) * 1_000  # up to 1.5 h, in milliseconds
            rows.append((f"c{c:02d}", T0 + pd.Timedelta(microseconds=us), str(rng.choice(pool))))
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


# -- the oracle ----------------------------------------------------------------------------------
def normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def base_index(model: StageModel, event: str) -> int | None:
    """Stage index from the event name alone: exact names, then patterns, else None."""
    key = normalise(event)
    stage = model.events.get(key)
    if stage is None:
        stage = next((s for pat, s in model.patterns if re.search(pat, key)), None)
    return None if stage is None else model.stages.index(stage)


def to_us(ts) -> int:
    return pd.Timestamp(ts).value // 1_000


def oracle_steps(df: pd.DataFrame, model: StageModel, collapse: bool = True) -> dict:
    """``{customer: [(microseconds, event, stage_index), ...]}`` in step order."""
    repeats = {model.stages.index(a): model.stages.index(b) for a, b in model.repeats.items()}
    mapped = defaultdict(list)
    for cust, ts, ev in zip(df["customer_id"], df["timestamp"], df["event"], strict=True):
        i = base_index(model, ev)
        if i is not None:
            mapped[cust].append((to_us(ts), ev, i))
    out = {}
    for cust, rows in mapped.items():
        first: dict[int, int] = {}
        for us, _, i in rows:
            if i in repeats:
                first[i] = min(first.get(i, us), us)
        staged = sorted(
            (us, repeats[i] if i in repeats and us > first[i] else i, ev) for us, ev, i in rows
        )  # time, then stage order, then event name
        steps: list[tuple[int, str, int]] = []
        for us, i, ev in staged:
            if collapse and steps and steps[-1][2] == i:
                continue
            steps.append((us, ev, i))
        out[cust] = steps
    return out


def kind(src: int, dst: int) -> str:
    if dst == src:
        return "repeat"
    if dst == src + 1:
        return "progression"
    return "skip" if dst > src else "regression"


def floor_duration(us: int) -> int:
    unit = SECOND_US if us < HOUR_US else 60 * SECOND_US
    return us // unit * unit


def lower_quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    values = sorted(values)
    return values[max(math.ceil(q * len(values)), 1) - 1]


# -- one check per function: (cjlib frame, oracle frame), comparable --------------------------
def check_stage_steps(df, model, collapse):
    got = cj.stage_steps(df, model, collapse=collapse).to_pandas()
    got = got.sort_values(["customer_id", "step"]).reset_index(drop=True)
    got["timestamp"] = [to_us(t) for t in got["timestamp"]]
    rows = []
    for cust, steps in sorted(oracle_steps(df, model, collapse).items()):
        idx = [i for _, _, i in steps]
        for k, (us, ev, i) in enumerate(steps):
            prev = idx[k - 1] if k else math.nan
            nxt = idx[k + 1] if k + 1 < len(idx) else math.nan
            rows.append((cust, us, ev, model.stages[i], i, k + 1, prev, nxt))
    cols = ["customer_id", "timestamp", "event", "stage", "stage_index", "step"]
    want = pd.DataFrame(rows, columns=[*cols, "prev_index", "next_index"])
    return got[want.columns], want


def check_stage_sequences(df, model, collapse):
    got = cj.stage_sequences(df, model, collapse=collapse)  # documented: sorted by customer_id
    rows = []
    for cust, steps in sorted(oracle_steps(df, model, collapse).items()):
        idx = [i for _, _, i in steps]
        rows.append(
            (
                cust,
                " > ".join(model.stages[i] for i in idx),
                len(idx),
                model.stages[max(idx)],
                sum(b < a for a, b in zip(idx, idx[1:], strict=False)),
            )
        )
    cols = ["customer_id", "path", "n_steps", "furthest_stage", "regressions"]
    return got, pd.DataFrame(rows, columns=cols)


def paths_options(seed: int) -> dict:
    """Vary ``top``/``min_customers`` with the seed: (None, 1), (None, 2), (3, 1)."""
    return [{"top": None}, {"top": None, "min_customers": 2}, {"top": 3}][seed % 3]


def check_stage_paths(df, model, collapse, seed=0):
    opts = paths_options(seed)
    got = cj.stage_paths(df, model, collapse=collapse, **opts)
    steps = oracle_steps(df, model, collapse)
    counts = Counter(" > ".join(model.stages[i] for _, _, i in s) for s in steps.values())
    total = len(steps)
    rows = [
        (path, n, n / total, *wilson_by_hand(n, total))
        for path, n in counts.items()
        if n >= opts.get("min_customers", 1)
    ]
    cols = ["path", "customers", "share", "share_low", "share_high"]
    want = pd.DataFrame(rows, columns=cols)
    want = want.sort_values(["customers", "path"], ascending=[False, True], ignore_index=True)
    if not got["customers"].is_monotonic_decreasing:
        return got, want.assign(note="most common first")
    if opts["top"] is not None:
        # which of several paths tied at the cut-off are listed is not documented: the counts
        # must be the top counts, and each listed path must be a path with that count
        top_counts = list(want["customers"].head(opts["top"]))
        if list(got["customers"]) != top_counts or not set(got["path"]) <= set(want["path"]):
            return got, want.head(opts["top"])
        want = want.set_index("path").loc[list(got["path"])].reset_index()
    # the order among paths with equal counts is not documented either
    got = got.sort_values(["customers", "path"], ascending=[False, True], ignore_index=True)
    want = want.sort_values(["customers", "path"], ascending=[False, True], ignore_index=True)
    return got, want


def check_stage_transitions(df, model, collapse):
    got = cj.stage_transitions(df, model, collapse=collapse)
    moves: Counter = Counter()
    who = defaultdict(set)
    for cust, steps in oracle_steps(df, model, collapse).items():
        labels = [START, *(model.stages[i] for _, _, i in steps), END]
        for a, b in zip(labels, labels[1:], strict=False):
            moves[a, b] += 1
            who[a, b].add(cust)
    out_of = Counter()
    for (a, _), n in moves.items():
        out_of[a] += n
    rows = []
    for (a, b), n in moves.items():
        k = "(edge)" if START in (a, b) or END in (a, b) else kind(model.index(a), model.index(b))
        rows.append((a, b, k, n, len(who[a, b]), n / out_of[a], *wilson_by_hand(n, out_of[a])))
    cols = [
        "from_stage", "to_stage", "kind", "transitions", "customers", "share", "share_low",
        "share_high",
    ]  # fmt: skip
    want = pd.DataFrame(rows, columns=cols)
    # the docs class stage-to-stage moves only; the (start)/(end) rows' kind is not compared
    got = got.assign(
        kind=got["kind"].where((got["from_stage"] != START) & (got["to_stage"] != END), "(edge)")
    )
    order = {s: i for i, s in enumerate([START, *model.stages, END])}

    def by_stage(t):
        return t.sort_values(["from_stage", "to_stage"], key=lambda c: c.map(order)).reset_index(
            drop=True
        )

    return by_stage(got), by_stage(want)


def check_furthest_stage(df, model, collapse=None):
    got = cj.furthest_stage(df, model)
    furthest = [max(i for _, _, i in s) for s in oracle_steps(df, model).values()]
    total = len(furthest)
    rows = []
    for i, stage in enumerate(model.stages):
        n = sum(f == i for f in furthest)
        r = sum(f >= i for f in furthest)
        share = n / total if total else math.nan
        reached_share = r / total if total else math.nan
        rows.append((stage, n, share, *wilson_by_hand(n, total), r, reached_share,
                     *wilson_by_hand(r, total)))  # fmt: skip
    cols = [
        "stage", "customers", "share", "share_low", "share_high", "reached", "reached_share",
        "reached_low", "reached_high",
    ]  # fmt: skip
    return got, pd.DataFrame(rows, columns=cols)


def check_dwell_times(df, model, collapse=None):
    got = dwell_times(df, model)
    durations = defaultdict(list)
    open_steps = Counter()
    for steps in oracle_steps(df, model, collapse=True).values():
        for (us, _, i), (nxt, _, _) in zip(steps, steps[1:], strict=False):
            durations[i].append(floor_duration(nxt - us) / HOUR_US)
        open_steps[steps[-1][2]] += 1
    rows = [
        (
            stage,
            len(durations[i]),
            open_steps[i],
            *(lower_quantile(durations[i], q) for q in (0.25, 0.5, 0.75)),
        )
        for i, stage in enumerate(model.stages)
    ]
    cols = ["stage", "steps", "open_steps", "p25_hours", "median_hours", "p75_hours"]
    return got, pd.DataFrame(rows, columns=cols)


CHECKS = {
    "stage_steps": check_stage_steps,
    "stage_sequences": check_stage_sequences,
    "stage_paths": check_stage_paths,
    "stage_transitions": check_stage_transitions,
    "furthest_stage": check_furthest_stage,
    "dwell_times": check_dwell_times,
}


def difference(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
    """None when the frames agree (counts exactly, floats to 1e-9), else pandas' message."""
    got = got.copy()
    for col in got.columns.intersection(want.columns):  # an all-null column comes back as None
        if pd.api.types.is_float_dtype(want[col]) and got[col].dtype == object:
            got[col] = pd.to_numeric(got[col])
    try:
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True),
            want.reset_index(drop=True),
            check_dtype=False,
            check_index_type=False,
            check_column_type=False,
            check_exact=False,
            rtol=1e-9,
            atol=1e-9,
        )
    except AssertionError as exc:
        return str(exc)
    return None


# -- shrinking -----------------------------------------------------------------------------------
def shrink(df: pd.DataFrame, fails: Callable[[pd.DataFrame], bool], budget: int = 150):
    """Delta debugging: drop chunks of customers, then of rows, while the log still fails."""
    calls = 0

    def still(d: pd.DataFrame) -> bool:
        nonlocal calls
        calls += 1
        return calls <= budget and len(d) > 0 and fails(d)

    for unit in ("customer_id", None):
        keys = list(dict.fromkeys(df["customer_id"])) if unit else list(df.index)

        def subset(ks, unit=unit, frame=df):
            return frame[frame["customer_id"].isin(ks)] if unit else frame.loc[ks]

        n = 2
        while len(keys) >= 2 and calls < budget:
            size = math.ceil(len(keys) / n)
            for start in range(0, len(keys), size):
                rest = keys[:start] + keys[start + size :]
                if rest and still(subset(rest)):
                    keys, n = rest, max(n - 1, 2)
                    break
            else:
                if size == 1:
                    break
                n = min(2 * n, len(keys))
        df = subset(keys)
    return df.reset_index(drop=True)  # in input order: a bug may depend on it


def show_log(df: pd.DataFrame) -> str:
    hours = (df["timestamp"] - T0) / pd.Timedelta(hours=1)
    return df.assign(hours_after_t0=hours).to_string(index=False)


def run_check(func: str, df, model, collapse, seed):
    if func == "stage_paths":
        return CHECKS[func](df, model, collapse, seed=seed)
    return CHECKS[func](df, model, collapse)


@pytest.mark.parametrize(("func", "collapse"), CHECKED, ids=[f"{f}-{c}" for f, c in CHECKED])
@pytest.mark.parametrize("model_name", list(MODELS))
def test_matches_oracle(model_name, func, collapse):
    model = MODELS[model_name][0]()
    for seed in SEEDS[model_name]:
        df = random_log(model_name, seed)
        got, want = run_check(func, df, model, collapse, seed)
        if difference(got, want) is None:
            continue

        def fails(d, seed=seed):
            return difference(*run_check(func, d, model, collapse, seed)) is not None

        small = shrink(df, fails)
        got, want = run_check(func, small, model, collapse, seed)
        opts = f", {paths_options(seed)}" if func == "stage_paths" else ""
        message = (
            f"{func}(collapse={collapse}{opts}) disagrees with the oracle on {model_name} seed "
            f"{seed}; minimal log ({len(small)} rows, T0 = {T0}):\n{show_log(small)}\n\n"
            f"cjlib:\n{got.to_string()}\n\noracle:\n{want.to_string()}\n\n"
            f"{difference(got, want)}"
        )
        print(message)
        pytest.fail(message)


def test_oracle_mapping_matches_stage_of():
    """The oracle's name -> stage reading agrees with StageModel.stage_of on every pool name
    (so a mismatch above is about steps, not about reading the model differently)."""
    for build, pool in MODELS.values():
        model = build()
        for name in pool:
            want = model.stage_of(name)
            got = base_index(model, name)
            assert (None if got is None else model.stages[got]) == want, name


def test_generated_logs_exercise_the_rules():
    """The random logs contain what the rules are about: ties across stages, regressions, skips,
    repeat-rule moves and ties with a customer's first event in a repeated stage, unmapped events,
    customers with no mapped event, and off-grid durations past an hour."""
    seen: Counter = Counter()
    for model_name, (build, _) in MODELS.items():
        model = build()
        repeated = {model.stages.index(s) for s in model.repeats}
        for seed in SEEDS[model_name]:
            df = random_log(model_name, seed)
            index = {e: base_index(model, e) for e in set(df["event"])}
            seen["unmapped events"] += sum(index[e] is None for e in df["event"])
            mapped = set(df.loc[[index[e] is not None for e in df["event"]], "customer_id"])
            seen["customers without a mapped event"] += df["customer_id"].nunique() - len(mapped)
            for _, g in df.groupby("customer_id"):
                firsts = [to_us(t) for t, e in zip(g.timestamp, g.event, strict=True)
                          if index[e] in repeated]  # fmt: skip
                seen["moved by repeats"] += sum(t > min(firsts) for t in firsts) if firsts else 0
                seen["tied with the first"] += firsts.count(min(firsts)) > 1 if firsts else 0
            for steps in oracle_steps(df, model, collapse=False).values():
                at = defaultdict(set)
                for us, _, i in steps:
                    at[us].add(i)
                seen["ties across stages"] += sum(len(v) > 1 for v in at.values())
                idx = [i for _, _, i in steps]
                pairs = list(zip(idx, idx[1:], strict=False))
                seen["regressions"] += sum(b < a for a, b in pairs)
                seen["skips"] += sum(b > a + 1 for a, b in pairs)
            for steps in oracle_steps(df, model).values():
                for (us, _, _), (nxt, _, _) in zip(steps, steps[1:], strict=False):
                    gap = nxt - us
                    seen["off-grid gaps past an hour"] += gap > HOUR_US and gap % HOUR_US != 0
    print(dict(seen))
    assert len(seen) == 8 and all(seen.values()), seen
