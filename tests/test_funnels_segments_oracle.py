"""Differential test of funnel segments and drop-off drivers against a reference ("oracle").

Targets: ``cjlib.funnels.segments`` (``funnel_segments`` and the segment sources
``attribute_segments``, ``first_channel_segments``, ``variant_segments``, ``persona_segments``)
and ``cjlib.funnels.drivers.dropoff_drivers``. Only these public functions (and ``funnel`` /
``funnel_spec``, to pass a FunnelSpec or FunnelResult and to self-check the reference's funnel)
are called; the reference below is plain Python / numpy / scipy.stats written from the
documentation only: the module docstrings of ``cjlib/funnels/segments.py``, ``drivers.py``,
``inference.py``, ``spec.py`` (funnel rules), ``summary.py`` (denominators) and the docstrings of
the functions and result classes.

Rules encoded (see "Reading:" comments for every choice the docs leave open):

- Funnel units (closed and open modes, window, ``as_of``, exclusions), from ``spec.py``: closed
  entry at the first step-1 event; open entry at the first funnel event, at the lowest step
  matched at that instant; greedy earliest next occurrence, a same-time occurrence follows;
  window inclusive from entry; exclusion events strictly between two steps (or, step not
  reached, while the window is open) end the journey; not reached + window still open at the
  data end = in progress, else dropped.
- Per segment and step k = 2..n (``summary.py``): converted = units that went on from k-1 to k;
  denominator = units at k-1 - those in progress at k; whole funnel (step 0) = units at the last
  step / (entrants - in-progress units). "The rest" = every other unit (suppressed segments
  included; with ``missing="drop"`` customers without a segment are left out everywhere).
- Conversion with Wilson limits, the rest's conversion, difference with Newcombe's hybrid score
  interval (Newcombe 1998, method 10), pooled two-proportion z test (NaN when a group is empty or
  the pooled rate is 0 or 1), adjusted p-values over all comparisons in the table (Holm, BH,
  none; NaN p-values are left out of the family), ``significant`` = adjusted p < alpha.
- ``(none)`` for customers with no segment value (absent from the segment table, or a null
  value); ``missing="drop"`` leaves them out. Segments with fewer entrants than ``min_size``:
  suppressed, all numbers blank (sizes' entrants too), not tested, still in the rest of others.
- Segment sources: attribute column, first event with a channel (ties: alphabetically first
  channel), the variant of one experiment (name optional for a single experiment), persona file.
- Drivers at step k (default the weakest step = lowest conversion from the previous step):
  population = units that reached k-1 whose outcome is decided (reached k = converted;
  dropped or excluded = dropped; in progress left out). Features: ``event`` = the customer did
  the event at or before reaching step k-1, events of steps k-1 and k are not features;
  ``channel`` = first-touch channel; attributes. Shares among dropped / converted, difference
  (dropped - converted) with Newcombe's interval, z-test p, adjustment over all rows, values held
  by fewer than ``min_size`` units of the population left out, ``top`` = first rows by adjusted p.

Random cases: per seed 20-200 customers with 1-7 events at whole hours (0..96, so ties are
common) from 6-7 event names (some steps with ``a|b`` alternatives), channels sometimes missing
(None or ""), a customers table (tier, plan; some values missing, some customers absent), an
experiments table (two experiments, not everyone assigned) and a persona table (not everyone).
Each configuration runs 3 seeds, one cjlib call per seed (plus one funnel() self-check). On a
mismatch the case is shrunk (fewest customers, then fewest events) and the minimal input is
printed with both tables.

Found when first run (fixed since): with ``missing="drop"`` a customer whose segment value is
missing (null attribute, null in a raw segment table) was still counted, as ``(none)``, instead
of being left out, which also changed the other segments' "rest" (``closed_attribute_drop`` and
``test_missing_drop_leaves_out_customers_without_a_value``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from conftest import Shrinker
from scipy.stats import chi2, norm

from cjlib.funnels import (
    dropoff_drivers,
    funnel,
    funnel_spec,
)
from cjlib.funnels.segments import (
    attribute_segments,
    first_channel_segments,
    funnel_segments,
    persona_segments,
    variant_segments,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")
MAX_HOUR = 96
AS_OF = 100.0  # explicit data end (hours after T0) when a configuration sets as_of
SEEDS = range(3)
TOL = 1e-9
PTOL = 1e-7
NONE = "(none)"
NAN = math.nan
INF = math.inf


# --------------------------------------------------------------------------------------------
# Random cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cust:
    """One customer: events (hour, event, channel), attributes, assignments."""

    events: tuple[tuple[float, str, str | None], ...]
    tier: str | None = None
    plan: str | None = None
    listed: bool = True  # a row in the customers table
    variants: tuple[tuple[str, str], ...] = ()  # (experiment, variant)
    persona: str | None = None  # None: not in the persona file


def random_case(cfg: dict, seed: int, name: str) -> dict[str, Cust]:
    """20-200 customers (``n_cust`` = (low, high) in a configuration changes that)."""
    names = [e for s in cfg["steps"] for e in s.split("|")]
    vocab = names + [e for e in "xyz" if e not in names]
    weights = np.array([3.0] * len(names) + [1.5] * (len(vocab) - len(names)))
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    case = {}
    n_cust = int(rng.integers(*cfg.get("n_cust", (20, 201))))
    for c in range(n_cust):
        n_ev = int(rng.integers(1, 8))
        span = int(rng.choice([1, 6, 24, 48, 96]))
        start = int(rng.integers(0, MAX_HOUR - span + 1))
        hours = start + rng.integers(0, span + 1, n_ev)
        names = rng.choice(vocab, n_ev, p=weights / weights.sum())
        chans = rng.choice(np.array(["email", "search", "social", "display", None, ""],
                                    dtype=object), n_ev, p=[.2, .2, .15, .1, .25, .1])  # fmt: skip
        tier = rng.choice(np.array(["gold", "silver", "bronze", "platinum", None], dtype=object),
                          p=[.35, .3, .17, .03, .15])  # fmt: skip
        plan = rng.choice(np.array(["free", "pro", None], dtype=object), p=[0.55, 0.3, 0.15])
        variants = []
        if rng.random() < 0.75:
            variants.append(("exp_a", str(rng.choice(["control", "treatment"]))))
        if rng.random() < 0.5:
            variants.append(("exp_b", str(rng.choice(["A", "B", "C"]))))
        persona = rng.choice(np.array(["p1", "p2", "p3", "p4", None], dtype=object),
                             p=[.3, .3, .2, .05, .15])  # fmt: skip
        case[f"c{c:03d}"] = Cust(
            events=tuple((float(h), str(e), ch) for h, e, ch in zip(hours, names, chans,
                                                                    strict=True)),
            tier=tier, plan=plan, listed=bool(rng.random() < 0.95), variants=tuple(variants),
            persona=persona,
        )  # fmt: skip
    for g in range(int(rng.integers(0, 4))):  # customers with no events at all
        case[f"g{g}"] = Cust(events=(), tier=str(rng.choice(["gold", "silver"])),
                             variants=(("exp_a", "control"),), persona="p1")  # fmt: skip
    return case


def needed(cfg: dict) -> set[str]:
    return {e for s in cfg["steps"] for e in s.split("|")} | set(cfg.get("exclude") or [])


def with_filler(case: dict[str, Cust], cfg: dict) -> dict[str, Cust]:
    """cjlib refuses a step (or exclusion) event absent from the data: a filler customer does
    the missing ones at hour 0 (it is part of the case on both sides)."""
    present = {e for c in case.values() for _, e, _ in c.events}
    missing = sorted(needed(cfg) - present)
    if not missing:
        return case
    return {**case, "zz_filler": Cust(events=tuple((0.0, m, None) for m in missing),
                                      listed=False)}  # fmt: skip


def events_frame(case: dict[str, Cust]) -> pd.DataFrame:
    rows = [(cid, h, e, ch) for cid, c in case.items() for h, e, ch in c.events]
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "event", "channel"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("hours").astype(float), unit="h")
    df["channel"] = df["channel"].astype(object)
    return df[["customer_id", "timestamp", "event", "channel"]]


def customers_frame(case: dict[str, Cust]) -> pd.DataFrame:
    rows = [(cid, c.tier, c.plan) for cid, c in case.items() if c.listed]
    return pd.DataFrame(rows, columns=["customer_id", "tier", "plan"]).astype(object)


def experiments_frame(case: dict[str, Cust], only: str | None = None) -> pd.DataFrame:
    rows = [(cid, x, v) for cid, c in case.items() for x, v in c.variants
            if only is None or x == only]  # fmt: skip
    return pd.DataFrame(rows, columns=["customer_id", "experiment", "variant"])


def persona_frame(case: dict[str, Cust]) -> pd.DataFrame:
    rows = [(cid, c.persona) for cid, c in case.items() if c.persona is not None]
    return pd.DataFrame(rows, columns=["customer_id", "persona"])


def raw_frame(case: dict[str, Cust]) -> pd.DataFrame:
    """Any table with customer_id and one more column (nulls included)."""
    rows = [(cid, None if c.tier is None else f"t_{c.tier}") for cid, c in case.items()
            if c.listed]  # fmt: skip
    return pd.DataFrame(rows, columns=["customer_id", "grp"]).astype(object)


# --------------------------------------------------------------------------------------------
# Reference: funnel units
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    entry: int  # entry step
    depth: int  # furthest step reached
    status: str  # converted / in_progress / dropped / excluded
    at: tuple[float, ...]  # at[k - 1]: hour step k was reached (NaN if not)


def data_end(case: dict[str, Cust], cfg: dict) -> float:
    """``as_of``, default the last event in the data."""
    if cfg.get("as_of"):
        return AS_OF
    return max(h for c in case.values() for h, _, _ in c.events)


def step_sets(cfg: dict) -> list[frozenset[str]]:
    """Each step's event alternatives (``a|b``); the configurations never let steps overlap."""
    return [frozenset(s.split("|")) for s in cfg["steps"]]


def ref_unit(events, cfg: dict, as_of: float) -> Unit | None:
    steps = step_sets(cfg)
    funnel_events = frozenset().union(*steps)
    n = len(steps)
    window = cfg.get("window")  # hours or None
    excl = set(cfg.get("exclude") or [])
    evs = sorted(events, key=lambda e: (e[0], e[1]))
    if cfg.get("mode", "closed") == "closed":
        firsts = [h for h, e, _ in evs if e in steps[0]]
        if not firsts:
            return None
        t0, entry = firsts[0], 1
    else:
        fun = [(h, e) for h, e, _ in evs if e in funnel_events]
        if not fun:
            return None
        t0 = fun[0][0]
        # open: the lowest step number among the funnel events at the entry instant
        entry = min(i + 1 for h, e in fun if h == t0 for i, s in enumerate(steps) if e in s)
    at = [NAN] * n
    at[entry - 1] = t0
    k, t_prev = entry, t0
    while k < n:
        nxt = steps[k]
        # greedy: the earliest occurrence at or after the previous step (same time follows;
        # the steps here never overlap)
        cands = [h for h, e, _ in evs if e in nxt and h >= t_prev]
        t = min(cands) if cands else None
        if t is not None and window is not None and t - t0 > window:
            t = None  # the window is inclusive; a later occurrence is later still
        if excl:
            if t is not None:
                hit = any(e in excl and t_prev < h < t for h, e, _ in evs)
            else:  # while the next step could still be done: within the window
                limit = INF if window is None else t0 + window
                hit = any(e in excl and t_prev < h <= limit for h, e, _ in evs)
            if hit:
                return Unit(entry, k, "excluded", tuple(at))
        if t is None:
            # Reading (as the funnel oracle, tests/test_funnels_oracle.py): the window is
            # "still open" at the data end when as_of < entry + window (strictly).
            status = "in_progress" if window is not None and as_of < t0 + window else "dropped"
            return Unit(entry, k, status, tuple(at))
        k, t_prev = k + 1, t
        at[k - 1] = t
    return Unit(entry, n, "converted", tuple(at))


def ref_units(case: dict[str, Cust], cfg: dict) -> dict[str, Unit]:
    as_of = data_end(case, cfg)
    out = {}
    for cid, c in case.items():
        u = ref_unit(c.events, cfg, as_of)
        if u is not None:
            out[cid] = u
    return out


def step_counts(units: list[Unit], n: int) -> dict[int, tuple[int, int]]:
    """{step: (converted, denominator)}: k = 2..n from step k-1 (summary.py); 0 = whole funnel:
    units at the last step / (entrants - in-progress units).

    Reading: SegmentResult says "step 0 = the whole funnel: last step / entrants"; summary.py
    says in-progress units are excluded from the denominators of every rate they could still
    change, so entrants still in progress are not in the denominator (conversion_from_start of
    the last step)."""
    out = {0: (sum(u.depth == n for u in units),
               sum(u.status != "in_progress" for u in units))}  # fmt: skip
    for k in range(2, n + 1):
        at_prev = [u for u in units if u.entry <= k - 1 and u.depth >= k - 1]
        went = sum(u.depth >= k for u in at_prev)
        prog = sum(u.depth == k - 1 and u.status == "in_progress" for u in at_prev)
        out[k] = (went, len(at_prev) - prog)
    return out


def funnel_counts(units: list[Unit], n: int) -> dict[str, list[int]]:
    """Self-check of the reference units against funnel().steps."""
    out = {c: [0] * n for c in ("customers", "in_progress", "dropped", "excluded")}
    for u in units:
        for k in range(u.entry, u.depth + 1):
            out["customers"][k - 1] += 1
        if u.status != "converted":
            out[u.status][u.depth] += 1
    return out


# --------------------------------------------------------------------------------------------
# Reference: statistics (written here, not cjlib's)
# --------------------------------------------------------------------------------------------


def wilson(x: float, n: float, conf: float) -> tuple[float, float]:
    """Wilson (1927) score interval."""
    if n == 0:
        return NAN, NAN
    z = norm.ppf(0.5 + conf / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcombe(x1, n1, x2, n2, conf) -> tuple[float, float]:
    """Newcombe (1998) method 10: the hybrid score interval for p1 - p2 from Wilson limits."""
    if n1 == 0 or n2 == 0:
        return NAN, NAN
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, conf)
    l2, u2 = wilson(x2, n2, conf)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))  # fmt: skip


def z_test(x1, n1, x2, n2) -> float:
    """Two-sided pooled z test = prop.test(correct = FALSE): chi-square 1 df of z^2. NaN when a
    group is empty or the pooled rate is 0 or 1."""
    if n1 == 0 or n2 == 0 or x1 + x2 == 0 or x1 + x2 == n1 + n2:
        return NAN
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(chi2.sf(z * z, 1))


def holm_ref(p: list[float]) -> list[float]:
    """Holm (1979) step-down. Reading: NaN p-values (no test) are not in the family."""
    idx = sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=lambda i: p[i])
    m, out, run = len(idx), [NAN] * len(p), 0.0
    for r, i in enumerate(idx):
        run = max(run, min(1.0, (m - r) * p[i]))
        out[i] = run
    return out


def bh_ref(p: list[float]) -> list[float]:
    """Benjamini-Hochberg (1995) step-up; NaN p-values are not in the family."""
    idx = sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=lambda i: p[i])
    m, out, run = len(idx), [NAN] * len(p), 1.0
    for r in range(m - 1, -1, -1):
        i = idx[r]
        run = min(run, m * p[i] / (r + 1))
        out[i] = min(run, 1.0)
    return out


def adjust_ref(p: list[float], method: str) -> list[float]:
    return {"holm": holm_ref, "bh": bh_ref, "none": list}[method](p)


def first_channels(case: dict[str, Cust]) -> dict[str, str]:
    """The channel of each customer's first event with a channel; ties at one timestamp: the
    alphabetically first. Reading: an empty string is no channel."""
    out = {}
    for cid, c in case.items():
        with_ch = [(h, ch) for h, _, ch in c.events if ch is not None and ch != ""]
        if with_ch:
            out[cid] = min(with_ch)[1]
    return out


def segment_map(case: dict[str, Cust], source: str) -> dict[str, str | None]:
    """customer -> segment value (None: no value / not in the segment table)."""
    if source.startswith("attr:"):
        col = source[5:]
        return {cid: getattr(c, col) for cid, c in case.items() if c.listed}
    if source == "raw":
        return {cid: None if c.tier is None else f"t_{c.tier}" for cid, c in case.items()
                if c.listed}  # fmt: skip
    if source == "first_channel":
        return first_channels(case)
    if source.startswith("variant"):
        exp = "exp_a" if source == "variant1" else source.split(":")[1]
        return {cid: dict(c.variants)[exp] for cid, c in case.items() if exp in dict(c.variants)}
    if source == "persona":
        return {cid: c.persona for cid, c in case.items() if c.persona is not None}
    raise AssertionError(source)


SEG_COLS = ["step", "label", "converted", "denominator", "suppressed", "conversion",
            "conversion_low", "conversion_high", "rest_conversion", "difference",
            "difference_low", "difference_high", "p_value", "p_adjusted",
            "significant"]  # fmt: skip


def labels(cfg: dict) -> list[str]:
    """Step labels as the (public) FunnelSpec gives them; only the labels are taken from it."""
    return funnel_spec(cfg["steps"]).labels


def ref_segments(case: dict[str, Cust], cfg: dict) -> tuple[pd.DataFrame, dict]:
    steps, n = labels(cfg), len(cfg["steps"])
    conf, alpha = cfg.get("confidence", 0.95), cfg.get("alpha", 0.05)
    min_size = cfg.get("min_size", 10)
    units = ref_units(case, cfg)
    seg = segment_map(case, cfg["source"])
    groups: dict[str, list[Unit]] = {}
    for cid, u in units.items():
        value = seg.get(cid)
        if value is None:
            if cfg.get("missing", "keep") == "drop":
                continue  # left out: neither a segment nor part of any rest
            value = NONE
        groups.setdefault(value, []).append(u)
    rows = []
    for name, mine in groups.items():
        rest = [u for other, us in groups.items() if other != name for u in us]
        a, b = step_counts(mine, n), step_counts(rest, n)
        suppressed = len(mine) < min_size
        for k in [0, *range(2, n + 1)]:
            (x, d), (xr, dr) = a[k], b[k]
            row = {"segment": name, "step": k, "label": None if k == 0 else steps[k - 1],
                   "suppressed": suppressed}  # fmt: skip
            if suppressed:
                row.update({c: NAN for c in SEG_COLS[2:] if c not in ("suppressed", "significant")})
            else:
                lo, hi = wilson(x, d, conf)
                dlo, dhi = newcombe(x, d, xr, dr, conf)
                conv = x / d if d else NAN
                rconv = xr / dr if dr else NAN
                row.update(converted=x, denominator=d, conversion=conv, conversion_low=lo,
                           conversion_high=hi, rest_conversion=rconv, difference=conv - rconv,
                           difference_low=dlo, difference_high=dhi,
                           p_value=z_test(x, d, xr, dr))  # fmt: skip
            rows.append(row)
    table = pd.DataFrame(rows, columns=["segment", *SEG_COLS])
    table["p_adjusted"] = adjust_ref(table["p_value"].tolist(), cfg.get("adjust", "holm"))
    table["significant"] = table["p_adjusted"] < alpha
    sizes = {name: (len(us), len(us) < min_size) for name, us in groups.items()}
    return table, sizes


DRV_COLS = ["dropped_with", "converted_with", "dropped_share", "converted_share", "difference",
            "difference_low", "difference_high", "p_value", "p_adjusted"]  # fmt: skip


def weakest_steps(units: list[Unit], n: int) -> set[int]:
    """Steps 2..n with the lowest conversion from the previous step (all of them on a tie)."""
    counts = step_counts(units, n)
    conv = {k: counts[k][0] / counts[k][1] for k in range(2, n + 1) if counts[k][1] > 0}
    if not conv:
        return set()
    low = min(conv.values())
    return {k for k, v in conv.items() if v == low}


def ref_drivers(case: dict[str, Cust], cfg: dict, k: int) -> tuple[pd.DataFrame, int, int]:
    conf, min_size = cfg.get("confidence", 0.95), cfg.get("min_size", 10)
    units = ref_units(case, cfg)
    chans = first_channels(case)
    own = step_sets(cfg)[k - 2] | step_sets(cfg)[k - 1]  # events of steps k-1, k: no features
    tally: dict[tuple[str, str], list[int]] = {}
    n_d = n_c = 0
    for cid, u in units.items():
        if not (u.entry <= k - 1 and u.depth >= k - 1):
            continue  # never reached step k-1
        if u.depth >= k:
            dropped = 0
        elif u.status in ("dropped", "excluded"):
            dropped = 1
        else:
            continue  # in progress: outcome not decided
        n_d += dropped
        n_c += 1 - dropped
        t_prev = u.at[k - 2]
        c = case[cid]
        # Reading: "at or before reaching step k-1" includes events at that same timestamp.
        feats = {("event", e) for h, e, _ in c.events if h <= t_prev and e not in own}
        # Reading: "first touch" = the first event with a channel (first_channel_segments),
        # over the whole history (the doc does not bound it by the decision point).
        if cid in chans:
            feats.add(("channel", chans[cid]))
        for a in cfg.get("attributes", ()):
            # Reading: a missing attribute value is not a feature value.
            if c.listed and getattr(c, a) is not None:
                feats.add((a, getattr(c, a)))
        for f in feats:
            tally.setdefault(f, [0, 0])[dropped] += 1
    rows = []
    # Reading: the table's ``feature`` column holds the prefix (event, channel, the attribute's
    # name) and ``value`` the name after the colon of ``<feature>:<value>``.
    for (feat, value), (xc, xd) in sorted(tally.items()):
        if xd + xc < min_size:  # Reading: "in total" = dropped + converted units having it
            continue
        lo, hi = newcombe(xd, n_d, xc, n_c, conf)
        ds = xd / n_d if n_d else NAN
        cs = xc / n_c if n_c else NAN
        rows.append({"feature": feat, "value": value, "dropped_with": xd, "converted_with": xc,
                     "dropped_share": ds, "converted_share": cs, "difference": ds - cs,
                     "difference_low": lo, "difference_high": hi,
                     "p_value": z_test(xd, n_d, xc, n_c)})  # fmt: skip
    table = pd.DataFrame(rows, columns=["feature", "value", *DRV_COLS])
    table["p_adjusted"] = adjust_ref(table["p_value"].tolist(), cfg.get("adjust", "holm"))
    return table, n_d, n_c


# --------------------------------------------------------------------------------------------
# cjlib side
# --------------------------------------------------------------------------------------------


def funnel_kwargs(cfg: dict) -> dict:
    kw = {"mode": cfg.get("mode", "closed"),
          "window": None if cfg.get("window") is None else f"{cfg['window']}h"}  # fmt: skip
    if cfg.get("as_of"):
        kw["as_of"] = T0 + pd.Timedelta(hours=AS_OF)
    if cfg.get("exclude"):
        kw["exclude"] = list(cfg["exclude"])
    return kw


def segment_table(case: dict[str, Cust], cfg: dict, engine):
    source = cfg["source"]
    if source.startswith("attr:"):
        return attribute_segments(customers_frame(case), source[5:], engine=engine)
    if source == "raw":
        return raw_frame(case)
    if source == "first_channel":
        return first_channel_segments(events_frame(case), engine=engine)
    if source == "variant1":  # a single experiment in the table: the name may be omitted
        return variant_segments(experiments_frame(case, only="exp_a"), engine=engine)
    if source.startswith("variant:"):
        return variant_segments(experiments_frame(case), experiment=source.split(":")[1],
                                engine=engine)  # fmt: skip
    if source == "persona":
        return persona_segments(persona_frame(case), engine=engine)
    raise AssertionError(source)


def cj_segments(case: dict[str, Cust], cfg: dict, engine):
    events = events_frame(case)
    kw = dict(by=cfg.get("by", "segment"), missing=cfg.get("missing", "keep"),
              min_size=cfg.get("min_size", 10), adjust_method=cfg.get("adjust", "holm"),
              alpha=cfg.get("alpha", 0.05), confidence=cfg.get("confidence", 0.95))  # fmt: skip
    seg = segment_table(case, cfg, engine)
    as_ = cfg.get("steps_as", "list")
    if as_ == "list":
        return funnel_segments(events, cfg["steps"], seg, engine=engine, **kw,
                               **funnel_kwargs(cfg))  # fmt: skip
    spec = funnel_spec(cfg["steps"], **funnel_kwargs(cfg))
    if as_ == "result":
        spec = funnel(events, spec, engine=engine)
    return funnel_segments(events, spec, seg, engine=engine, **kw)


def cj_drivers(case: dict[str, Cust], cfg: dict, engine):
    kw = dict(step=cfg.get("step"), min_size=cfg.get("min_size", 10),
              top=cfg.get("top"), adjust_method=cfg.get("adjust", "holm"),
              confidence=cfg.get("confidence", 0.95))  # fmt: skip
    if cfg.get("attributes"):
        kw.update(customers=customers_frame(case), attributes=list(cfg["attributes"]))
    return dropoff_drivers(events_frame(case), cfg["steps"], engine=engine, **kw,
                           **funnel_kwargs(cfg))  # fmt: skip


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def num(v) -> float:
    return NAN if v is None or pd.isna(v) else float(v)


def check_float(out: list[str], where: str, got, want, tol: float = TOL) -> None:
    g, w = num(got), num(want)
    if math.isnan(g) and math.isnan(w):
        return
    if math.isnan(g) or math.isnan(w) or abs(g - w) > tol:
        out.append(f"{where}: cjlib {g!r}, reference {w!r}")


def compare_segments(res, ref: pd.DataFrame, sizes: dict, cfg: dict) -> list[str]:
    out: list[str] = []
    by = cfg.get("by", "segment")
    t = res.table
    got_keys = set(zip(t[by], t["step"].astype(int), strict=True))
    want_keys = set(zip(ref["segment"], ref["step"], strict=True))
    if got_keys != want_keys:
        out.append(f"(segment, step) rows: cjlib only {sorted(got_keys - want_keys)}, "
                   f"reference only {sorted(want_keys - got_keys)}")  # fmt: skip
    g = t.set_index([by, t["step"].astype(int)])
    for r in ref.itertuples(index=False):
        key = (r.segment, r.step)
        if key not in g.index:
            continue
        row = g.loc[key]
        where = f"segment {r.segment!r} step {r.step}"
        if bool(row["suppressed"]) != r.suppressed:
            out.append(f"{where} suppressed: cjlib {row['suppressed']}, reference {r.suppressed}")
        if r.step > 0 and row["label"] != r.label:
            out.append(f"{where} label: cjlib {row['label']!r}, reference {r.label!r}")
        for c in SEG_COLS[2:]:
            if c in ("suppressed", "significant"):
                continue
            tol = PTOL if c.startswith("p_") else TOL
            check_float(out, f"{where} {c}", row[c], getattr(r, c), tol)
        # Reading: `significant` is p_adjusted < alpha (as TestedTable.significant()).
        if bool(row["significant"]) != bool(r.significant):
            out.append(f"{where} significant: cjlib {row['significant']}, "
                       f"reference {r.significant}")  # fmt: skip
    s = res.sizes.set_index(by)
    if set(s.index) != set(sizes):
        out.append(f"sizes segments: cjlib {sorted(s.index)}, reference {sorted(sizes)}")
    for name, (entrants, sup) in sizes.items():
        if name not in s.index:
            continue
        if bool(s.loc[name, "suppressed"]) != sup:
            out.append(f"sizes {name!r} suppressed: cjlib {s.loc[name, 'suppressed']}, "
                       f"reference {sup}")  # fmt: skip
        # suppressed: "their numbers ... are blank" (entrants included)
        check_float(out, f"sizes {name!r} entrants", s.loc[name, "entrants"],
                    NAN if sup else entrants)  # fmt: skip
    return out


def compare_funnel(case: dict[str, Cust], cfg: dict, engine) -> list[str]:
    """The reference's units against funnel() itself (so that a segment mismatch can be told
    apart from a funnel one)."""
    res = funnel(events_frame(case), cfg["steps"], engine=engine, **funnel_kwargs(cfg))
    want = funnel_counts(list(ref_units(case, cfg).values()), len(cfg["steps"]))
    return [f"funnel() {c}: cjlib {res.steps[c].tolist()}, reference {v}"
            for c, v in want.items() if res.steps[c].tolist() != v]  # fmt: skip


def segment_mismatches(case: dict[str, Cust], cfg: dict, engine) -> list[str]:
    res = cj_segments(case, cfg, engine)
    ref, sizes = ref_segments(case, cfg)
    return compare_segments(res, ref, sizes, cfg)


def driver_step(case: dict[str, Cust], cfg: dict, got_step: int) -> tuple[int, list[str]]:
    """The step the reference studies; the default must be the weakest step (any of them when
    several tie: Reading, the docs do not say which)."""
    if cfg.get("step") is not None:
        k = cfg["step"]
        return k, [] if got_step == k else [f"step: cjlib {got_step}, asked for {k}"]
    weakest = weakest_steps(list(ref_units(case, cfg).values()), len(cfg["steps"]))
    if got_step in weakest:
        return got_step, []
    return min(weakest), [f"default step: cjlib {got_step}, weakest step(s) {sorted(weakest)}"]


def compare_drivers(res, case: dict[str, Cust], cfg: dict) -> tuple[list[str], pd.DataFrame]:
    k, out = driver_step(case, cfg, res.step)
    ref, n_d, n_c = ref_drivers(case, cfg, k)
    if res.label != labels(cfg)[k - 1]:
        out.append(f"label: cjlib {res.label!r}, reference {labels(cfg)[k - 1]!r}")
    if (res.n_dropped, res.n_converted) != (n_d, n_c):
        out.append(f"(n_dropped, n_converted): cjlib {(res.n_dropped, res.n_converted)}, "
                   f"reference {(n_d, n_c)}")  # fmt: skip
    t = res.table
    got = t.set_index(["feature", "value"])
    want = ref.set_index(["feature", "value"])
    top = cfg.get("top")
    if top:
        # "top rows by adjusted p-value": the adjustment is over all rows, then the first `top`
        # rows by adjusted p. Reading: NaN adjusted p-values rank last; ties in any order.
        ps = sorted(want["p_adjusted"].tolist(), key=lambda v: (math.isnan(v), v))[:top]
        gp = [num(v) for v in t["p_adjusted"]]
        if len(gp) != len(ps) or any(
            not ((math.isnan(a) and math.isnan(b)) or abs(a - b) <= PTOL)
            for a, b in zip(gp, ps, strict=False)
        ):
            out.append(f"top {top} adjusted p-values: cjlib {gp}, reference {ps}")
        extra = set(got.index) - set(want.index)
        if extra:
            out.append(f"rows not in the reference: {sorted(extra)}")
    elif set(got.index) != set(want.index):
        out.append(f"(feature, value) rows: cjlib only {sorted(set(got.index) - set(want.index))}"
                   f", reference only {sorted(set(want.index) - set(got.index))}")  # fmt: skip
    for key in set(got.index) & set(want.index):
        g, w = got.loc[key], want.loc[key]
        for c in DRV_COLS:
            check_float(out, f"{key} {c}", g[c], w[c], PTOL if c.startswith("p_") else TOL)
        d = num(g["difference"])
        if not math.isnan(d) and d != 0:
            over = str(g["direction"]).startswith("over")
            if over != (d > 0):
                out.append(f"{key} direction {g['direction']!r} with difference {d}")
    return out, ref


def driver_mismatches(case: dict[str, Cust], cfg: dict, engine) -> list[str]:
    res = cj_drivers(case, cfg, engine)
    return compare_drivers(res, case, cfg)[0]


# --------------------------------------------------------------------------------------------
# Shrinking and reporting
# --------------------------------------------------------------------------------------------


def differs(case, cfg, engine, mismatches) -> bool:
    case = with_filler(case, cfg)
    if not any(c.events for c in case.values()):
        return False
    try:
        return bool(mismatches(case, cfg, engine))
    except (ValueError, KeyError):  # e.g. no entrant left, no experiment left
        return False


def shrink(case: dict[str, Cust], cfg: dict, engine, mismatches, budget: int = 40):
    """Delta debugging: drop chunks of customers, then of each customer's events, while cjlib
    and the reference still disagree."""
    ddmin = Shrinker(budget).ddmin

    keys = ddmin(list(case), lambda ks: differs({k: case[k] for k in ks}, cfg, engine,
                                                mismatches))  # fmt: skip
    case = {k: case[k] for k in keys}
    for k in list(case):
        evs = ddmin(list(case[k].events),
                    lambda e, k=k: differs({**case, k: replace(case[k], events=tuple(e))}, cfg,
                                           engine, mismatches))  # fmt: skip
        case[k] = replace(case[k], events=tuple(evs))
    return case


def show_case(case: dict[str, Cust]) -> str:
    ev = [
        (cid, h, e, ch)
        for cid, c in case.items()
        for h, e, ch in sorted(c.events, key=lambda x: x[:2])
    ]
    people = [(cid, c.listed, c.tier, c.plan, dict(c.variants), c.persona)
              for cid, c in case.items()]  # fmt: skip
    return (
        "events (hours after 2026-01-01 UTC):\n"
        + pd.DataFrame(ev, columns=["customer", "hour", "event", "channel"]).to_string(index=False)
        + "\ncustomers:\n"
        + pd.DataFrame(
            people, columns=["customer", "in_customers", "tier", "plan", "variants", "persona"]
        ).to_string(index=False)  # fmt: skip
    )


def report(name, cfg, seed, case, engine, mismatches, tables) -> str:
    small = with_filler(shrink(case, cfg, engine, mismatches), cfg)
    if differs(small, cfg, engine, mismatches):
        case = small
    case = with_filler(case, cfg)
    got, want = tables(case)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        return (f"\nconfiguration {name}: {cfg}\nseed {seed}; minimal case "
                f"(data end hour {data_end(case, cfg)}):\n{show_case(case)}\n"
                f"mismatches:\n  " + "\n  ".join(mismatches(case, cfg, engine)[:25])
                + f"\ncjlib:\n{got}\nreference:\n{want}")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Segment configurations
# --------------------------------------------------------------------------------------------

ABC, ABCD = ["a", "b", "c"], ["a", "b", "c", "d"]
SEG_CONFIGS = {
    "closed_window_as_of_tier": dict(steps=ABC, window=48, as_of=True, source="attr:tier",
                                     min_size=5),
    "closed_no_window_first_channel_bh": dict(steps=ABC, window=None, source="first_channel",
                                              adjust="bh", min_size=8, alpha=0.3),
    "closed_4_steps_default_as_of_persona_spec": dict(steps=ABCD, window=24, source="persona",
                                                      min_size=6, steps_as="spec",
                                                      confidence=0.9),
    "open_window_as_of_variant_drop": dict(steps=ABC, mode="open", window=24, as_of=True,
                                           source="variant:exp_b", missing="drop",
                                           by="variant", min_size=4),
    "open_no_window_raw_table_none": dict(steps=ABC, mode="open", window=None, source="raw",
                                          adjust="none", min_size=12, steps_as="result"),
    "closed_exclude_single_experiment": dict(steps=ABC, window=72, as_of=True, exclude=["x"],
                                             source="variant1", min_size=3),
    "open_exclude_plan_bh": dict(steps=ABC, mode="open", window=48, as_of=True, exclude=["x"],
                                 source="attr:plan", adjust="bh", min_size=10, alpha=0.2),
    "closed_alternatives_first_channel": dict(steps=["a|y", "b", "c|z"], window=48, as_of=True,
                                              source="first_channel", min_size=4),
    # missing="drop" with an attribute: customers whose value is missing have no segment
    "closed_attribute_drop": dict(steps=ABC, window=48, as_of=True, source="attr:tier",
                                  missing="drop", min_size=3),
}  # fmt: skip


def funnel_tables(cfg, engine):
    def tables(case):
        res = funnel(events_frame(case), cfg["steps"], engine=engine, **funnel_kwargs(cfg))
        want = funnel_counts(list(ref_units(case, cfg).values()), len(cfg["steps"]))
        return res.steps.to_string(), pd.DataFrame(want).to_string()

    return tables


def seg_tables(cfg, engine):
    def tables(case):
        res = cj_segments(case, cfg, engine)
        ref, _ = ref_segments(case, cfg)
        return res.table.to_string(), ref.to_string()

    return tables


@pytest.mark.parametrize("name", list(SEG_CONFIGS))
def test_segments_match_reference(name, engine):
    cfg = SEG_CONFIGS[name]
    for seed in SEEDS:
        case = with_filler(random_case(cfg, seed, name), cfg)
        # the reference's own funnel against funnel(), on the first seed (time)
        if seed == SEEDS[0] and compare_funnel(case, cfg, engine):
            msg = report(name, cfg, seed, case, engine, compare_funnel, funnel_tables(cfg, engine))
            print(msg)
            pytest.fail(msg)
        if segment_mismatches(case, cfg, engine):
            msg = report(name, cfg, seed, case, engine, segment_mismatches,
                         seg_tables(cfg, engine))  # fmt: skip
            print(msg)
            pytest.fail(msg)


# --------------------------------------------------------------------------------------------
# Driver configurations
# --------------------------------------------------------------------------------------------

DRV_CONFIGS = {
    "closed_window_as_of_default_step": dict(steps=ABC, window=48, as_of=True,
                                             attributes=["tier"], min_size=3),
    "closed_no_window_step2_min_size_1": dict(steps=ABC, window=None, step=2,
                                              attributes=["tier", "plan"], min_size=1),
    "open_4_steps_window_as_of_step3": dict(steps=ABCD, mode="open", window=24, as_of=True,
                                            step=3, attributes=["plan"], min_size=2),
    "closed_exclude_default_min_size": dict(steps=ABC, window=72, as_of=True, exclude=["x"],
                                            attributes=["tier"], n_cust=(150, 201)),
    "open_default_as_of_bh_top": dict(steps=ABC, mode="open", window=48, adjust="bh", top=4,
                                      min_size=2),
    "closed_4_steps_step4_none_conf90": dict(steps=ABCD, window=None, step=4, adjust="none",
                                             confidence=0.9, min_size=2, attributes=["tier"]),
    "open_exclude_step2": dict(steps=ABC, mode="open", window=24, as_of=True, exclude=["x"],
                               step=2, min_size=3),
    "open_alternatives_step3": dict(steps=["a|y", "b", "c|z"], mode="open", window=48,
                                    as_of=True, step=3, min_size=2, attributes=["tier"]),
}  # fmt: skip


def drv_tables(cfg, engine):
    def tables(case):
        res = cj_drivers(case, cfg, engine)
        ref = compare_drivers(res, case, cfg)[1]
        head = f"step {res.step}, n_dropped {res.n_dropped}, n_converted {res.n_converted}\n"
        return head + res.table.to_string(), ref.to_string()

    return tables


@pytest.mark.parametrize("name", list(DRV_CONFIGS))
def test_drivers_match_reference(name, engine):
    cfg = DRV_CONFIGS[name]
    for seed in SEEDS:
        case = with_filler(random_case(cfg, seed, name), cfg)
        found = driver_mismatches(case, cfg, engine)
        if found:
            msg = report(name, cfg, seed, case, engine, driver_mismatches,
                         drv_tables(cfg, engine))  # fmt: skip
            print(msg)
            pytest.fail(msg)


# --------------------------------------------------------------------------------------------
# Segment sources
# --------------------------------------------------------------------------------------------


def as_map(engine, table) -> dict[str, str | None]:
    df = engine.to_pandas(table)
    return {str(c): (None if pd.isna(s) else str(s))
            for c, s in zip(df["customer_id"], df["segment"], strict=True)}  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_segment_sources_match_reference(seed, engine):
    cfg = dict(steps=ABC)
    case = random_case(cfg, seed, "sources")
    out = []
    got = as_map(engine, first_channel_segments(events_frame(case), engine=engine))
    got = {c: s for c, s in got.items() if s is not None}  # Reading: no channel = no row/null
    want = first_channels(case)
    if got != want:
        out.append(f"first_channel: differ at {sorted(set(got.items()) ^ set(want.items()))}")
    got = as_map(engine, attribute_segments(customers_frame(case), "tier", engine=engine))
    want = segment_map(case, "attr:tier")
    if got != want:
        out.append(f"attribute tier: differ at {sorted(set(got.items()) ^ set(want.items()))}")
    for exp in ("exp_a", "exp_b"):
        got = as_map(engine, variant_segments(experiments_frame(case), experiment=exp,
                                              engine=engine))  # fmt: skip
        want = segment_map(case, f"variant:{exp}")
        if got != want:
            out.append(f"variant {exp}: differ at {sorted(set(got.items()) ^ set(want.items()))}")
    got = as_map(engine, variant_segments(experiments_frame(case, only="exp_a"), engine=engine))
    if got != segment_map(case, "variant1"):
        out.append("variant, single experiment unnamed: differs")
    got = as_map(engine, persona_segments(persona_frame(case), engine=engine))
    if got != segment_map(case, "persona"):
        out.append("persona: differs")
    assert not out, "\n".join(out)


# --------------------------------------------------------------------------------------------
# The reference itself on hand-computed values (no cjlib call)
# --------------------------------------------------------------------------------------------


def test_reference_statistics_by_hand():
    # Newcombe (1998) Table II example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    lo, hi = newcombe(56, 70, 48, 80, 0.95)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    # R: prop.test(c(3, 1), c(3, 2), correct = FALSE)$p.value = 0.1709
    assert z_test(3, 3, 1, 2) == pytest.approx(0.1709, abs=1e-4)
    assert math.isnan(z_test(0, 3, 0, 2)) and math.isnan(z_test(3, 3, 2, 2))
    # R: p.adjust(c(.01, .02, .03, .04, .05), "holm") / "BH"
    p = [0.03, 0.01, NAN, 0.05, 0.02, 0.04]
    assert holm_ref(p)[:2] == pytest.approx([0.09, 0.05]) and math.isnan(holm_ref(p)[2])
    assert holm_ref(p)[3:] == pytest.approx([0.09, 0.08, 0.09])
    assert [v for v in bh_ref(p) if not math.isnan(v)] == pytest.approx([0.05] * 5)
    assert bh_ref([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    # Wilson 0/10 at 95 %: 0 to 0.2775
    lo, hi = wilson(0, 10, 0.95)
    assert lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)


def test_reference_units_by_hand():
    log = {
        "u1": Cust(((0, "a", None), (1, "b", None), (2, "c", None))),  # converts
        "u2": Cust(((0, "a", None), (50, "b", None))),  # b after the 48 h window: dropped
        "u3": Cust(((90, "a", None),)),  # window open at hour 100: in progress
        "u4": Cust(((0, "b", None), (1, "a", None), (2, "c", None))),
        "u5": Cust(((5, "a", None), (5, "b", None), (6, "x", None), (7, "c", None))),
    }
    closed = dict(steps=ABC, window=48, as_of=True)
    u = ref_units(log, closed)
    assert [(u[c].entry, u[c].depth, u[c].status) for c in sorted(u)] == [
        (1, 3, "converted"), (1, 1, "dropped"), (1, 1, "in_progress"), (1, 1, "dropped"),
        (1, 3, "converted")]  # fmt: skip
    u = ref_units(log, {**closed, "mode": "open", "exclude": ["x"]})
    assert (u["u4"].entry, u["u4"].depth, u["u4"].status) == (2, 3, "converted")
    assert (u["u5"].depth, u["u5"].status) == (2, "excluded")
    counts = step_counts(list(ref_units(log, closed).values()), 3)
    # step 2: at a = 5, went on = 2 (u1, u5), in progress = 1 (u3): 2/4; step 3: 2/2;
    # whole: 2 / (5 - 1)
    assert counts == {0: (2, 4), 2: (2, 4), 3: (2, 2)}


def test_missing_drop_leaves_out_customers_without_a_value(engine):
    """segments.py: "Customers with no segment value form (none)"; funnel_segments: ``missing``
    "customers without a segment form (none) (keep, default) or are left out (drop ...)". A
    customer whose attribute is missing has no segment value, so with missing="drop" it must not
    be counted at all: u2 (tier missing) and u3 (not in the customers table) are left out."""
    case = {
        "u1": Cust(((0, "a", None), (1, "b", None), (2, "c", None)), tier="gold"),
        "u2": Cust(((0, "a", None),), tier=None),
        "u3": Cust(((0, "a", None),), listed=False),
    }
    cfg = dict(steps=ABC, window=None, source="attr:tier", missing="drop", min_size=1)
    res = cj_segments(case, cfg, engine)
    ref, sizes = ref_segments(case, cfg)
    assert sizes == {"gold": (1, False)}
    assert compare_segments(res, ref, sizes, cfg) == [], (
        f"\ncjlib sizes:\n{res.sizes}\ncjlib table:\n{res.table.to_string()}"
    )
