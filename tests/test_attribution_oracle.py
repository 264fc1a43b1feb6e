"""Differential test: the attribution package against brute-force references.

Checks ``cjlib.attribution`` (``rule_credits``, ``touch_weights``, ``shapley_credits``,
``shapley_values``, ``restricted_shapley``, ``ordered_shapley``,
``fit_markov(...).removal_effects()`` on the dense and the iterative (more than ``_DENSE_MAX``
states) solvers, ``attribute`` and ``touch_journeys`` on DuckDB) on many
seeded random inputs against plain-Python references (loops, dicts, ``itertools``,
``fractions``; numpy only to solve the small absorbing-chain systems). The references are
written from the documentation only (the module and function docstrings of
``cjlib/attribution/{journeys,heuristics,shapley,markov,__init__}.py``) and call no cjlib code.
The rules they encode:

- rule models credit converting journeys only: first / last touch; last non-direct (the last
  touch not on a direct channel, else the last touch); linear; position based (first / middle /
  last weights, the middle weight shared by the middle touches, two touches split first : last
  in proportion, one touch gets all); time decay ``0.5 ** (age / half_life)`` normalised per
  journey, age in days before the conversion when journeys come from events, else the number of
  touches after the touch (half-life in touches); participation (1 per distinct channel). Value
  credits use the same weights on the journeys' value;
- Shapley, conversions game: ``v(S)`` = conversions (value) of the journeys whose channel set is
  inside ``S``, Shapley values by the subset formula over all channels; rate game: ``v(S)`` = the
  conversion rate of the journeys whose channel set is exactly ``S`` (0 if none), each converting
  set ``T`` splits its conversions and value in proportion to the Shapley values of ``v``
  restricted to the subsets of ``T``, computed by enumerating the orders of ``T``; ordered
  Shapley: each converting journey's conversion split equally over its (channel, rank of first
  touch) pairs, ranks above ``max_position`` pooled;
- Markov: order-``k`` states are the last ``k`` channels (``()`` at the start), transition
  probabilities the observed shares, the conversion probability (and the expected value, with the
  conversion step weighted by value) from the start solved on ``(I - P) y = r``; removing a
  channel sets ``y = 0`` on every state containing it; ``RE = 1 - without / with``, shares
  ``RE / sum(RE)``;
- touch journeys: touches are non-conversion events with a non-empty channel; each conversion
  closes the customer's current journey (touches at the same instant count before it); a touch
  stays if at most ``lookback_days`` before the journey's end (the conversion, else the last
  touch); ``collapse_repeats`` keeps the first of consecutive same-channel touches (after the
  window); conversions with no touch left are ``unattributed``; time-decay ages in days.

Points the documentation leaves open, where the references follow cjlib (see the notes at each
place): simultaneous touches are ordered by channel name; a two-touch journey under position
weights with ``first + last = 0`` splits 50 / 50; removal effects are 0 when nothing converts
(``1 - 0 / 0``); lookback is applied before collapsing repeats.
Random logs never hold two conversions of one customer at the same instant (which of them gets
the journey is not specified).

On a mismatch the input is shrunk (greedy deletion of journeys, touches or event rows) to a small
failing input, which is printed and put in the failure message with both outputs.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import cjlib as cj
import cjlib.attribution.markov as markov_module
from cjlib.attribution import Journeys, attribute, fit_markov, ordered_shapley, touch_journeys
from cjlib.attribution.heuristics import RULE_MODELS, rule_credits
from cjlib.attribution.shapley import shapley_credits

TOL = 1e-9
CHANNEL_POOL = ("direct", "email", "search", "social", "display", "video", "affiliate", "print")
PRESETS = {"u": (0.4, 0.2, 0.4), "j": (0.2, 0.2, 0.6), "inverse_j": (0.6, 0.2, 0.2)}


def channel_names(n: int) -> tuple[str, ...]:
    """``n`` channel names, ``direct`` first (numbered names beyond the pool)."""
    return (
        CHANNEL_POOL[:n]
        if n <= len(CHANNEL_POOL)
        else ("direct",) + tuple(f"ch{i:02d}" for i in range(1, n))
    )


Row = tuple[tuple[str, ...], int, int, float]  # (path, conversions, nulls, value)


# -- comparison and shrinking --------------------------------------------------------------------
def close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def compare(label: str, got: dict, want: dict, tol: float = TOL) -> list[str]:
    """Mismatches between two ``{key: number}`` maps (a missing key counts as 0)."""
    out = []
    for k in sorted(set(got) | set(want), key=str):
        g, w = float(got.get(k, 0.0)), float(want.get(k, 0.0))
        if not close(g, w, tol):
            out.append(f"{label} {k}: cjlib {g!r}, oracle {w!r}")
    return out


def by_key(keys, values) -> dict:
    return dict(zip(keys, values, strict=True))


def run_check(check: Callable[..., list[str]], *args) -> list[str]:
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 - cjlib raising where the oracle answers is a finding
        return [f"cjlib raised {exc!r}"]


def shrink_rows(rows: list[Row], fails: Callable[[list[Row]], bool], budget: int = 400):
    """Greedy: drop whole journeys, then single touches, while the input still fails."""
    calls = 0

    def still(cand: list[Row]) -> bool:
        nonlocal calls
        calls += 1
        return calls <= budget and bool(cand) and fails(cand)

    changed = True
    while changed and calls < budget:
        changed = False
        for i in range(len(rows)):
            cand = rows[:i] + rows[i + 1 :]
            if still(cand):
                rows, changed = cand, True
                break
        if changed:
            continue
        for i, (seq, c, n, v) in enumerate(rows):
            for k in range(len(seq) if len(seq) > 1 else 0):
                cand = rows[:i] + [(seq[:k] + seq[k + 1 :], c, n, v)] + rows[i + 1 :]
                if still(cand):
                    rows, changed = cand, True
                    break
            if changed:
                break
    return rows


def fail_with_rows(name: str, rows: list[Row], check: Callable[[list[Row]], list[str]], *extra):
    problems = run_check(check, rows, *extra)
    if not problems:
        return
    small = shrink_rows(rows, lambda r: bool(run_check(check, r, *extra)))
    detail = run_check(check, small, *extra)
    text = (
        f"{name}: cjlib differs from the oracle; minimal input (path, conversions, nulls, value) "
        f"with options {extra!r}:\n"
        + "\n".join(f"  {r!r}" for r in small)
        + "\n"
        + "\n".join(detail)
    )
    print(text)
    pytest.fail(text)


def journeys_of(rows: list[Row]) -> Journeys:
    return Journeys.from_sequences(
        [list(s) for s, _, _, _ in rows],
        [c for _, c, _, _ in rows],
        nulls=[n for _, _, n, _ in rows],
        value=[v for _, _, _, v in rows],
    )


# -- random journeys -----------------------------------------------------------------------------
def random_rows(rng: np.random.Generator, n_channels: int, n_rows: int, max_len: int = 6):
    """Journeys over ``n_channels`` channels (always with ``direct``), 1 to ``max_len`` touches,
    one journey per row (conversion 0/1) or, for a third of the rows, a path-table row with
    several journeys; plus a single touch, an all-direct and a two-touch converting journey."""
    names = channel_names(n_channels)
    rows: list[Row] = []
    for _ in range(n_rows):
        length = int(rng.integers(1, max_len + 1))
        seq = tuple(str(names[i]) for i in rng.integers(0, n_channels, length))
        if rng.random() < 1 / 3:
            c, n = int(rng.integers(0, 4)), int(rng.integers(0, 4))
            n = n if c + n > 0 else 1
        else:
            c = int(rng.integers(0, 2))
            n = 1 - c
        value = float(sum(round(float(rng.uniform(1, 100)), 2) for _ in range(c)))
        rows.append((seq, c, n, value))
    other = str(names[int(rng.integers(1, n_channels))])
    rows.append(((other,), 1, 0, 12.5))
    rows.append((("direct",) * int(rng.integers(1, 4)), 1, 0, 7.25))
    rows.append(((other, "direct"), 1, int(rng.integers(0, 2)), 3.0))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def random_options(rng: np.random.Generator) -> dict:
    position = [
        "u",
        "j",
        "inverse_j",
        (0.5, 0.0, 0.5),
        (0.1, 0.7, 0.2),
        (0.0, 1.0, 0.0),
        (0.0, 0.3, 0.7),
        (1.0, 0.0, 0.0),
    ][int(rng.integers(0, 8))]
    direct = [("direct",), ("direct", "email"), ("direct", "nowhere")][int(rng.integers(0, 3))]
    half_life = [0.5, 1.0, 2.5, 7.0][int(rng.integers(0, 4))]
    return {"position": position, "direct_channels": direct, "half_life": half_life}


# -- oracle: rule-based models -------------------------------------------------------------------
def rule_touch_weights(
    seq: tuple[str, ...], model: str, opts: dict, ages: tuple[float, ...] | None = None
) -> list[float]:
    """Weight of every touch of one converting journey under ``model`` (heuristics docstring)."""
    n = len(seq)
    if model == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "last_non_direct":
        non_direct = [i for i, ch in enumerate(seq) if ch not in opts["direct_channels"]]
        target = non_direct[-1] if non_direct else n - 1  # all direct: the last (direct) touch
        return [1.0 if i == target else 0.0 for i in range(n)]
    if model == "linear":
        return [1.0 / n] * n
    if model == "position_based":
        p = opts["position"]
        first, middle, last = PRESETS[p] if isinstance(p, str) else p
        if n == 1:
            return [1.0]
        if n == 2:
            if first + last == 0:  # "in proportion" to 0 : 0 is undefined; cjlib splits 50/50
                return [0.5, 0.5]
            return [first / (first + last), last / (first + last)]
        return [first] + [middle / (n - 2)] * (n - 2) + [last]
    if model == "time_decay":
        hl = opts["half_life"]
        back = ages if ages is not None else tuple(float(n - 1 - i) for i in range(n))
        raw = [0.5 ** (a / hl) for a in back]
        return [w / sum(raw) for w in raw]
    if model == "participation":
        seen: set[str] = set()
        out = []
        for ch in seq:
            out.append(0.0 if ch in seen else 1.0)
            seen.add(ch)
        return out
    raise AssertionError(model)


def rule_oracle(rows, model: str, opts: dict, ages=None) -> tuple[dict, dict]:
    conv: dict[str, float] = defaultdict(float)
    val: dict[str, float] = defaultdict(float)
    for k, (seq, c, _n, v) in enumerate(rows):
        if c <= 0:  # journeys that did not convert earn nothing
            continue
        w = rule_touch_weights(seq, model, opts, None if ages is None else ages[k])
        for ch, wt in zip(seq, w, strict=True):
            conv[ch] += wt * c
            val[ch] += wt * v
    return conv, val


def check_rules(rows: list[Row], opts: dict) -> list[str]:
    j = journeys_of(rows)
    got = rule_credits(j, RULE_MODELS, **opts)
    problems = []
    for model in RULE_MODELS:
        want_c, want_v = rule_oracle(rows, model, opts)
        gc, gv = got[model]
        problems += compare(f"{model} conversions", by_key(j.channels, gc), want_c)
        problems += compare(f"{model} value", by_key(j.channels, gv), want_v)
    return problems


@pytest.mark.parametrize("seed", range(80))
def test_rule_models_match_oracle(seed):
    rng = np.random.default_rng([seed, 1])
    rows = random_rows(rng, int(rng.integers(3, 6)), int(rng.integers(3, 25)))
    fail_with_rows("rule_credits", rows, check_rules, random_options(rng))


EDGE_ROWS: list[tuple[str, list[Row]]] = [
    ("single touch", [(("email",), 1, 0, 10.0)]),
    ("all direct", [(("direct", "direct", "direct"), 1, 0, 9.0), (("direct",), 2, 1, 4.0)]),
    ("direct last", [(("email", "direct", "search", "direct"), 1, 0, 8.0)]),
    ("two touches", [(("search", "email"), 1, 0, 10.0), (("email", "email"), 3, 2, 30.0)]),
    ("three touches", [(("search", "direct", "search"), 1, 0, 10.0)]),
    ("no conversion", [(("search", "email"), 0, 1, 0.0), (("direct",), 0, 4, 0.0)]),
]
EDGE_OPTIONS = [
    {"position": "u", "direct_channels": ("direct",), "half_life": 1.0},
    {"position": "j", "direct_channels": ("direct", "search"), "half_life": 7.0},
    {"position": (0.0, 1.0, 0.0), "direct_channels": ("direct",), "half_life": 0.5},
    {"position": (0.3, 0.0, 0.7), "direct_channels": ("nowhere",), "half_life": 2.0},
]


@pytest.mark.parametrize("opts", EDGE_OPTIONS, ids=lambda o: str(o["position"]))
@pytest.mark.parametrize("case", EDGE_ROWS, ids=lambda c: c[0])
def test_rule_edge_cases(case, opts):
    """The documented edge rules: single touch, all-direct journeys (last non-direct falls back to
    the last touch), position-based with 1, 2 and 3 touches, journeys that never convert."""
    fail_with_rows(f"rule_credits[{case[0]}]", list(case[1]), check_rules, opts)


# -- oracle: Shapley -----------------------------------------------------------------------------
def channel_sets(rows) -> dict[frozenset, list]:
    """Per distinct channel set: [journeys, conversions, value]."""
    sets: dict[frozenset, list] = defaultdict(lambda: [0, 0, 0.0])
    for seq, c, n, v in rows:
        s = sets[frozenset(seq)]
        s[0] += c + n
        s[1] += c
        s[2] += v
    return sets


def shapley_subset_formula(players: list[str], v: Callable[[frozenset], float]) -> dict:
    """``phi_i = sum_{S not ni i} |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))``."""
    n = len(players)
    cache: dict[frozenset, float] = {}

    def value(s: frozenset) -> float:
        if s not in cache:
            cache[s] = v(s)
        return cache[s]

    phi = {}
    for i in players:
        others = [p for p in players if p != i]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                fs = frozenset(s)
                total += weight * (value(fs | {i}) - value(fs))
        phi[i] = total
    return phi


def shapley_by_orders(players: list[str], v: Callable[[frozenset], Fraction]) -> dict:
    """Average marginal contribution over every order of the players."""
    phi = dict.fromkeys(players, Fraction(0))
    orders = list(itertools.permutations(players))
    for perm in orders:
        cur: frozenset = frozenset()
        prev = v(cur)
        for p in perm:
            cur = cur | {p}
            now = v(cur)
            phi[p] += now - prev
            prev = now
    return {p: x / len(orders) for p, x in phi.items()}


def conversions_game_oracle(rows, channels: list[str]) -> tuple[dict, dict]:
    sets = channel_sets(rows)

    def game(index: int) -> Callable[[frozenset], float]:
        return lambda s: float(sum(a[index] for t, a in sets.items() if t <= s))

    conv = shapley_subset_formula(channels, game(1))
    val = shapley_subset_formula(channels, game(2))
    return conv, val


def rate_game_oracle(rows) -> tuple[dict, dict]:
    sets = channel_sets(rows)
    rate = {t: Fraction(c, jn) for t, (jn, c, _v) in sets.items() if jn > 0}

    def v(s: frozenset) -> Fraction:
        return rate.get(s, Fraction(0))

    conv: dict[str, Fraction] = defaultdict(Fraction)
    val: dict[str, float] = defaultdict(float)
    for t, (_jn, c, value) in sets.items():
        if c <= 0:
            continue
        phi = shapley_by_orders(sorted(t), v)  # the game restricted to the subsets of t
        for p, x in phi.items():
            share = x / rate[t]
            conv[p] += share * c
            val[p] += float(share) * value
    return conv, val


def ordered_oracle(rows, max_position: int) -> dict:
    out: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for seq, c, _n, v in rows:
        distinct = list(dict.fromkeys(seq))
        for rank, ch in enumerate(distinct, start=1):
            cell = out[(ch, min(rank, max_position))]
            cell[0] += c / len(distinct)
            cell[1] += v / len(distinct)
    return out


def check_shapley(rows: list[Row], max_exact: int, max_position: int) -> list[str]:
    j = journeys_of(rows)
    channels = list(j.channels)
    problems = []
    gc, gv, _ = shapley_credits(j, game="conversions")
    wc, wv = conversions_game_oracle(rows, channels)
    problems += compare("conversions game conversions", by_key(channels, gc), wc)
    problems += compare("conversions game value", by_key(channels, gv), wv)
    gc, gv, method = shapley_credits(j, game="rate", max_exact=max_exact)
    if "Monte Carlo" in method and max(len(set(s)) for s, *_ in rows) > max_exact:
        raise AssertionError("the case must not reach Monte Carlo")
    wc, wv = rate_game_oracle(rows)
    problems += compare(f"rate game conversions ({method})", by_key(channels, gc), wc)
    problems += compare(f"rate game value ({method})", by_key(channels, gv), wv)
    got = ordered_shapley(j, max_position=max_position)
    want = ordered_oracle(rows, max_position)
    for col, k in (("conversions", 0), ("value", 1)):
        problems += compare(
            f"ordered_shapley {col}",
            {(r.channel, int(r.position)): getattr(r, col) for r in got.itertuples()},
            {key: cell[k] for key, cell in want.items()},
        )
    return problems


@pytest.mark.parametrize("seed", range(60))
def test_shapley_matches_oracle(seed):
    """Exact credits for 3-5 channels; every fourth seed runs the rate game with ``max_exact``
    below the number of channels but at least every set's size (exact per channel set)."""
    rng = np.random.default_rng([seed, 2])
    n_channels = int(rng.integers(3, 6))
    rows = random_rows(rng, n_channels, int(rng.integers(3, 30)))
    max_exact = 12
    if seed % 4 == 3:
        max_exact = n_channels - 1
        rows = [(s, c, n, v) for s, c, n, v in rows if len(set(s)) <= max_exact]
    fail_with_rows("shapley", rows, check_shapley, max_exact, int(rng.integers(1, 5)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_generic_shapley_values_match_orders(n):
    """``shapley_values(v)`` and ``restricted_shapley(v, n)`` on random games (``v[mask]``, bit
    ``i`` = player ``i``) against the average marginal contribution over every order; the
    restricted game on ``T`` has the subsets of ``T`` only, players outside ``T`` get 0."""
    from cjlib.attribution.shapley import restricted_shapley, shapley_values

    rng = np.random.default_rng([n, 9])
    for _ in range(5):
        v = rng.integers(-5, 20, 1 << n).astype(float)
        players = list(range(n))

        def game(s: frozenset, v=v) -> Fraction:
            return Fraction(v[sum(1 << p for p in s)])

        want = shapley_by_orders(players, game)
        problems = compare("shapley_values", by_key(players, shapley_values(v)), want)
        phi = restricted_shapley(v, n)
        for t in range(1 << n):
            members = [p for p in players if (t >> p) & 1]
            sub = shapley_by_orders(members, game) if members else {}
            problems += compare(f"restricted_shapley T={t:b}", by_key(players, phi[:, t]), sub)
        assert not problems, f"v = {list(v)}\n" + "\n".join(problems)


@pytest.mark.parametrize("seed", range(4))
def test_shapley_monte_carlo_keeps_efficiency(seed):
    """Sets larger than ``max_exact`` are sampled: not comparable exactly, but each converting
    set's conversion and value are still split in full (every order's marginals sum to v(T)),
    and the result is the same for the same ``random_state``."""
    rng = np.random.default_rng([seed, 3])
    rows = random_rows(rng, 5, 30)
    j = journeys_of(rows)
    c1, v1, method = shapley_credits(j, game="rate", max_exact=2, random_state=seed)
    c2, v2, _ = shapley_credits(j, game="rate", max_exact=2, random_state=seed)
    assert "Monte Carlo" in method
    assert close(c1.sum(), j.total_conversions) and close(v1.sum(), j.total_value)
    assert np.array_equal(c1, c2) and np.array_equal(v1, v2)


# -- oracle: Markov ------------------------------------------------------------------------------
def markov_oracle(rows, order: int, channels: list[str]) -> dict[str, dict[str, float]]:
    """Removal effects from the absorbing chain of histories, solved densely with numpy."""
    moves: dict[tuple, float] = defaultdict(float)
    conv: dict[tuple, float] = defaultdict(float)
    val: dict[tuple, float] = defaultdict(float)
    null: dict[tuple, float] = defaultdict(float)
    for seq, c, n, v in rows:
        state: tuple = ()
        for ch in seq:
            nxt = (state + (ch,))[-order:]
            moves[(state, nxt)] += c + n
            state = nxt
        conv[state] += c
        val[state] += v
        null[state] += n
    states = {s for s, _ in moves} | {t for _, t in moves} | set(conv)
    states = sorted(states, key=lambda s: (len(s), s))
    assert states[0] == ()
    index = {s: i for i, s in enumerate(states)}
    m = len(states)
    out = np.zeros(m)
    for (s, _t), w in moves.items():
        out[index[s]] += w
    for s in conv:
        out[index[s]] += conv[s] + null[s]
    p = np.zeros((m, m))
    for (s, t), w in moves.items():
        p[index[s], index[t]] += w / out[index[s]]
    r = np.zeros((m, 2))
    for s in conv:
        r[index[s]] = conv[s] / out[index[s]], val[s] / out[index[s]]

    def from_start(alive: list[int]) -> np.ndarray:
        a = np.eye(len(alive)) - p[np.ix_(alive, alive)]
        return np.linalg.solve(a, r[alive])[0]  # alive[0] is the start state

    prob, value = from_start(list(range(m)))
    res: dict[str, dict[str, float]] = {}
    for ch in channels:
        pc, vc = from_start([i for i, s in enumerate(states) if ch not in s])
        res[ch] = {
            "p_without": pc,
            "value_without": vc,
            "removal_effect": 1 - pc / prob if prob > 0 else 0.0,
            "removal_effect_value": 1 - vc / value if value > 0 else 0.0,
        }
    for col in ("removal_effect", "removal_effect_value"):
        total = sum(x[col] for x in res.values())
        for x in res.values():
            x["re_share" + col[len("removal_effect") :]] = x[col] / total if total > 0 else 0.0
    res["(chain)"] = {"states": float(m), "probability": prob, "value": value}
    return res


MARKOV_COLUMNS = (
    "p_without",
    "value_without",
    "removal_effect",
    "removal_effect_value",
    "re_share",
    "re_share_value",
)


def check_markov(rows: list[Row], order: int) -> list[str]:
    j = journeys_of(rows)
    fit = fit_markov(j, order)
    got = fit.removal_effects().set_index("channel")
    want = markov_oracle(rows, order, list(j.channels))
    problems = []
    for col in MARKOV_COLUMNS:
        problems += compare(
            f"order {order} {col}",
            got[col].to_dict(),
            {ch: x[col] for ch, x in want.items() if ch != "(chain)"},
        )
    p, v = fit.conversion_probability()
    chain = want["(chain)"]
    problems += compare(
        f"order {order} from start",
        {"p": p, "value": v},
        {"p": chain["probability"], "value": chain["value"]},
    )
    return problems


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", range(40))
def test_markov_matches_oracle(seed, order):
    rng = np.random.default_rng([seed, 4])
    rows = random_rows(rng, int(rng.integers(3, 6)), int(rng.integers(3, 60)))
    fail_with_rows("fit_markov", rows, check_markov, order)


MARKOV_EDGES: list[tuple[str, list[Row]]] = [
    ("no conversion", [(("a", "b"), 0, 1, 0.0), (("b",), 0, 2, 0.0)]),
    ("conversions without value", [(("a", "b"), 1, 0, 0.0), (("b",), 0, 2, 0.0)]),
    ("single touches", [(("a",), 1, 1, 5.0), (("b",), 0, 2, 0.0), (("c",), 2, 0, 8.0)]),
    ("loops", [(("a", "a", "a", "b"), 1, 0, 4.0), (("b", "a", "a"), 0, 1, 0.0)]),
    ("one path", [(("a", "b", "a", "c"), 2, 3, 10.0)]),
]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("case", MARKOV_EDGES, ids=lambda c: c[0])
def test_markov_edge_cases(case, order):
    """No conversion at all (removal effects read as 0: ``1 - 0 / 0`` is not defined, cjlib
    gives 0), conversions worth nothing, single-touch paths, self-loops, one path."""
    fail_with_rows(f"fit_markov[{case[0]}]", list(case[1]), check_markov, order)


def big_chain_rows(seed: int, n_channels: int, n_rows: int, lengths: tuple[int, int]):
    """Long journeys whose conversion depends on the channels: many distinct histories."""
    rng = np.random.default_rng([seed, 5])
    names = CHANNEL_POOL[:n_channels]
    rows: list[Row] = []
    for _ in range(n_rows):
        seq = tuple(str(names[i]) for i in rng.integers(0, n_channels, int(rng.integers(*lengths))))
        lift = 0.1 + 0.1 * sum(ch in ("email", "search") for ch in set(seq))
        c = int(rng.random() < lift)
        rows.append((seq, c, 1 - c, round(float(rng.uniform(5, 200)), 2) if c else 0.0))
    return rows


@pytest.mark.parametrize(
    ("order", "n_channels", "n_rows", "lengths"), [(3, 8, 1200, (3, 11)), (4, 7, 140, (4, 9))]
)
def test_markov_large_chain_iterative_path(order, n_channels, n_rows, lengths):
    """More than ``_DENSE_MAX`` states: cjlib iterates its series, the oracle solves densely."""
    rows = big_chain_rows(order, n_channels, n_rows, lengths)
    j = journeys_of(rows)
    fit = fit_markov(j, order)
    want = markov_oracle(rows, order, list(j.channels))
    n_states = int(want["(chain)"]["states"])
    assert n_states > markov_module._DENSE_MAX
    assert len(fit.design.states) == n_states
    problems = run_check(check_markov, rows, order)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("seed", range(3))
def test_many_channels_take_the_other_code_paths(seed):
    """70 channels: participation beyond the 62-bit channel masks; the rate game on 14 channels,
    more than ``max_exact`` = 12 (each channel set solved exactly on its own); Markov order 3
    with a large code base and order 4, whose history codes (71 ** 4) exceed the lookup table
    (sorted codes instead)."""
    rng = np.random.default_rng([seed, 8])
    rows = random_rows(rng, 70, 120, max_len=5)
    fail_with_rows("rule_credits (70 channels)", rows, check_rules, random_options(rng))
    small = random_rows(rng, 14, 30, max_len=5)
    fail_with_rows("shapley (14 channels)", small, check_shapley, 12, 3)
    for order in (3, 4):
        fail_with_rows(f"fit_markov (70 channels, order {order})", rows[:40], check_markov, order)


# -- attribute(): every model through the public entry point -------------------------------------
def check_attribute(rows: list[Row], opts: dict, order: int) -> list[str]:
    if sum(c for _, c, _, _ in rows) == 0:
        return []  # documented: nothing to attribute raises
    j = journeys_of(rows)
    res = attribute(
        j,
        models="all",
        n_boot=0,
        markov_order=order,
        direct_channels=opts["direct_channels"],
        position_weights=opts["position"],
        half_life=opts["half_life"],
    )
    credits = res.credits
    channels = list(j.channels)
    want: dict[str, tuple[dict, dict]] = {m: rule_oracle(rows, m, opts) for m in RULE_MODELS}
    want["shapley_simple"] = conversions_game_oracle(rows, channels)
    want["shapley"] = rate_game_oracle(rows)
    re = markov_oracle(rows, order, channels)
    total_c = sum(c for _, c, _, _ in rows)
    total_v = sum(v for _, _, _, v in rows)
    want["markov"] = (
        {ch: re[ch]["re_share"] * total_c for ch in channels},
        {ch: re[ch]["re_share_value"] * total_v for ch in channels},
    )
    problems = []
    for model, (wc, wv) in want.items():
        got = credits[credits["model"] == model].set_index("channel")
        problems += compare(f"attribute {model} conversions", got["conversions"].to_dict(), wc)
        problems += compare(f"attribute {model} value", got["value"].to_dict(), wv)
    return problems


@pytest.mark.parametrize("seed", range(16))
def test_attribute_matches_oracle(seed):
    rng = np.random.default_rng([seed, 6])
    rows = random_rows(rng, int(rng.integers(3, 6)), int(rng.integers(5, 30)))
    fail_with_rows("attribute", rows, check_attribute, random_options(rng), 1 + seed % 2)


# -- oracle: touch journeys from events ----------------------------------------------------------
T0 = pd.Timestamp("2026-03-01", tz="UTC")
EVENT_COLUMNS = ["customer_id", "timestamp", "event", "channel", "revenue"]


def random_events(seed: int) -> tuple[pd.DataFrame, dict]:
    """2-5 customers, 2-12 events each on an hour grid (many ties, exact lookback boundaries;
    one seed in four moves half the events off the grid by up to an hour, in microseconds):
    touches (some with an empty channel), purchases (some with a channel or no revenue), other
    events without a channel, a repeat purchase that is not the conversion event."""
    rng = np.random.default_rng([seed, 7])
    names = CHANNEL_POOL[: int(rng.integers(3, 6))]
    rows = []
    for c in range(int(rng.integers(2, 6))):
        span = int(rng.choice([12, 48, 120, 240]))
        used: set[int] = set()
        for _ in range(int(rng.integers(2, 13))):
            hour = int(rng.integers(0, span))
            kind = rng.random()
            if kind < 0.25:
                while hour in used:  # no two conversions of a customer at the same instant
                    hour += 1
                used.add(hour)
                revenue = None if rng.random() < 0.2 else round(float(rng.uniform(1, 90)), 2)
                channel = str(rng.choice(names)) if rng.random() < 0.2 else None
                event = ("purchase", channel, revenue)
            elif kind < 0.85:
                channel = "" if rng.random() < 0.07 else str(rng.choice(names))
                event = (str(rng.choice(["ad_impression", "page_view"])), channel, None)
            elif kind < 0.95:
                event = ("scroll", None, None)
            else:
                event = ("repeat_purchase", None, 25.0)
            at = T0 + pd.Timedelta(hours=hour)
            if seed % 4 == 3 and event[0] != "purchase" and rng.random() < 0.5:
                at += pd.Timedelta(microseconds=int(rng.integers(0, 3_600_000_000)))
            rows.append((f"c{c}", at, *event))
    df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    options = {
        "lookback_days": [0.5, 1, 2, 3, 30][int(rng.integers(0, 5))],
        "collapse_repeats": bool(rng.random() < 0.5),
        "half_life": [0.5, 1.0, 2.5, 7.0][int(rng.integers(0, 4))],
    }
    return df, options


def journeys_oracle(df: pd.DataFrame, options: dict):
    """``(journeys, unattributed)``: journeys as ``(path, converted, value, ages in days)``."""
    lookback = options["lookback_days"] * 86400.0
    journeys = []
    unattributed = {"conversions": 0.0, "value": 0.0}
    for _cust, events in df.groupby("customer_id", sort=True):
        items = []
        for r in events.itertuples():
            t = pd.Timestamp(r.timestamp)
            if r.event == "purchase":
                rev = 0.0 if r.revenue is None or pd.isna(r.revenue) else float(r.revenue)
                items.append((t, 1, "", rev))
            elif isinstance(r.channel, str) and r.channel != "":
                items.append((t, 0, r.channel, 0.0))
        # touches at the same instant as a conversion count before it; simultaneous touches
        # are ordered by channel name (not documented: cjlib's order)
        items.sort(key=lambda x: (x[0], x[1], x[2]))
        current: list[tuple[pd.Timestamp, str]] = []
        closed = []
        for t, is_conv, ch, rev in items:
            if is_conv:
                closed.append((current, t, rev))
                current = []
            else:
                current.append((t, ch))
        if current:
            closed.append((current, None, 0.0))
        for touches, conv_time, rev in closed:
            end = conv_time if conv_time is not None else max(t for t, _ in touches)
            kept = [(t, ch) for t, ch in touches if (end - t).total_seconds() <= lookback]
            if options["collapse_repeats"]:
                kept = [x for i, x in enumerate(kept) if i == 0 or kept[i - 1][1] != x[1]]
            if not kept:
                if conv_time is not None:
                    unattributed["conversions"] += 1
                    unattributed["value"] += rev
                continue
            ages = tuple((end - t).total_seconds() / 86400.0 for t, _ in kept)
            journeys.append((tuple(ch for _, ch in kept), conv_time is not None, rev, ages))
    return journeys, unattributed


def check_touch_journeys(df: pd.DataFrame, options: dict, engine) -> list[str]:
    if not (df["event"] == "purchase").any():
        return []  # documented: the conversion event must occur
    j = touch_journeys(cj.load_events(df, engine=engine), engine=engine, **options)
    journeys, unattributed = journeys_oracle(df, options)
    want: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for seq, converted, value, _ages in journeys:
        cell = want[" > ".join(seq)]
        cell[0] += 1
        cell[1] += converted
        cell[2] += value
        cell[3] += not converted
    frame = j.to_frame()
    problems = []
    for k, col in enumerate(("journeys", "conversions", "value", "nulls")):
        problems += compare(
            f"to_frame {col}",
            by_key(frame["path"], frame[col]),
            {p: cell[k] for p, cell in want.items()},
        )
    lengths = {p: len(p.split(" > ")) for p in want}
    problems += compare("length", by_key(frame["path"], frame["length"]), lengths)
    problems += compare("unattributed", j.unattributed, unattributed)
    if j.n_paths:
        rows = [(seq, int(c), int(not c), v) for seq, c, v, _ in journeys]
        ages = [a for *_, a in journeys]
        opts = {"position": "u", "direct_channels": ("direct",), **options}
        got = rule_credits(j, RULE_MODELS, half_life=options["half_life"])
        for model in RULE_MODELS:
            wc, wv = rule_oracle(rows, model, opts, ages if model == "time_decay" else None)
            gc, gv = got[model]
            problems += compare(f"{model} conversions", by_key(j.channels, gc), wc)
            problems += compare(f"{model} value", by_key(j.channels, gv), wv)
    return problems


def shrink_events(df: pd.DataFrame, fails: Callable[[pd.DataFrame], bool], budget: int = 120):
    """Greedy deletion of event rows while the log still fails."""
    calls = 0
    changed = True
    while changed and calls < budget:
        changed = False
        for i in range(len(df)):
            cand = df.drop(df.index[i])
            calls += 1
            if calls > budget:
                break
            if len(cand) and fails(cand):
                df, changed = cand, True
                break
    return df.reset_index(drop=True)


@pytest.mark.filterwarnings("ignore::cjlib.schema.DataQualityWarning")  # duplicate touches
@pytest.mark.parametrize("seed", range(36))
def test_touch_journeys_match_oracle(seed, engine):
    df, options = random_events(seed)
    problems = run_check(check_touch_journeys, df, options, engine)
    if not problems:
        return
    small = shrink_events(df, lambda d: bool(run_check(check_touch_journeys, d, options, engine)))
    detail = run_check(check_touch_journeys, small, options, engine)
    text = (
        f"touch_journeys differs from the oracle; options {options}; minimal events:\n"
        f"{small.to_string()}\n" + "\n".join(detail)
    )
    print(text)
    pytest.fail(text)


def edge_log() -> pd.DataFrame:
    """Hand-made log with the documented boundary cases: a touch exactly ``lookback_days``
    before its conversion (kept), a touch at the instant of the conversion (before it), a
    repeat whose first touch falls outside the window, simultaneous touches, a conversion with
    no touch, an empty channel, a purchase carrying a channel (not a touch), a purchase without
    revenue, a non-converting journey ending the log."""
    day = pd.Timedelta(days=1)
    rows = [
        ("e1", T0, "ad_impression", "email", None),
        ("e1", T0 + 20 * day, "ad_impression", "email", None),
        ("e1", T0 + 35 * day, "page_view", "search", None),
        ("e1", T0 + 35 * day, "purchase", None, 10.0),
        ("e2", T0, "ad_impression", "social", None),
        ("e2", T0, "ad_impression", "display", None),
        ("e2", T0 + 30 * day, "purchase", None, None),
        ("e2", T0 + 32 * day, "purchase", None, 5.0),
        ("e2", T0 + 33 * day, "page_view", "", None),
        ("e2", T0 + 34 * day, "purchase", "email", 7.0),
        ("e2", T0 + 40 * day, "page_view", "direct", None),
        ("e2", T0 + 42 * day, "page_view", "direct", None),
        ("e3", T0 + 1 * day, "scroll", None, None),
        ("e3", T0 + 2 * day, "repeat_purchase", None, 25.0),
    ]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


@pytest.mark.parametrize("collapse", [False, True])
def test_touch_journeys_edge_log(collapse, engine):
    options = {"lookback_days": 30, "collapse_repeats": collapse, "half_life": 7.0}
    df = edge_log()
    problems = run_check(check_touch_journeys, df, options, engine)
    assert not problems, "\n".join(problems)
    # the oracle's reading, spelled out: the window is applied before collapsing repeats
    journeys, unattributed = journeys_oracle(df, options)
    assert [" > ".join(s) for s, *_ in journeys] == [
        "email > search",
        "display > social",
        "direct" if collapse else "direct > direct",
    ]
    assert unattributed == {"conversions": 2.0, "value": 12.0}


def test_touch_weights_agree_with_rule_credits_on_event_journeys(engine):
    """``rule_credits`` documents that ``touch_weights`` "gives the same numbers touch by touch",
    for time decay only on journeys without touch times. On journeys built from events, time
    decay is by days (search 7 days before the purchase, email at its instant, half-life 7
    days: 1/3 and 2/3, as ``rule_credits`` gives); every other model must agree touch by
    touch. (Found: the docstring claimed time decay too; ``touch_weights`` counts touches.)"""
    from cjlib.attribution.heuristics import touch_weights

    df = pd.DataFrame(
        [
            ("y", T0, "ad_impression", "search", None),
            ("y", T0 + pd.Timedelta(days=7), "page_view", "email", None),
            ("y", T0 + pd.Timedelta(days=7), "purchase", None, 90.0),
        ],
        columns=EVENT_COLUMNS,
    )
    j = touch_journeys(cj.load_events(df, engine=engine), engine=engine, half_life=7.0)
    want, _ = rule_oracle(
        [(("search", "email"), 1, 0, 90.0)], "time_decay", {"half_life": 7.0}, [(7.0, 0.0)]
    )
    fast = by_key(j.channels, rule_credits(j, ["time_decay"], half_life=7.0)["time_decay"][0])
    assert not compare("rule_credits time_decay", fast, want)
    pid = j.path_ids
    for model in [m for m in RULE_MODELS if m != "time_decay"]:
        w = touch_weights(j, model, half_life=7.0)
        slow = np.bincount(j.codes, w * j.conversions[pid], len(j.channels))
        got = by_key(j.channels, rule_credits(j, [model], half_life=7.0)[model][0])
        per_touch = by_key(j.channels, slow)
        problems = [
            f"{model} {ch}: credits from touch_weights {float(per_touch[ch])!r}, "
            f"rule_credits {float(got[ch])!r}"
            for ch in j.channels
            if not close(per_touch[ch], got[ch])
        ]
        assert not problems, "\n".join(problems)


def test_touch_journeys_keeps_channel_names_with_digits_and_pipes(engine):
    """Channel names are any non-empty text without '>' (``Journeys.from_sequences``,
    ``touch_journeys``); a name holding nine digits and a pipe must come through unchanged."""
    df = pd.DataFrame(
        [
            ("a", T0, "ad_impression", "promo 123456789|tv", None),
            ("a", T0 + pd.Timedelta(days=1), "purchase", None, 3.0),
        ],
        columns=EVENT_COLUMNS,
    )
    options = {"lookback_days": 30, "collapse_repeats": False, "half_life": 7.0}
    problems = run_check(check_touch_journeys, df, options, engine)
    assert not problems, "\n".join(problems)


def test_simultaneous_conversions_do_not_depend_on_row_order(engine):
    """Found: two purchases of one customer at one instant (10 and 20) gave the journey's value
    to whichever row came first. Documented now: the smaller value closes the journey, the
    other conversion has no touches (unattributed), in any row order."""
    rows = [
        ("u", T0, "ad_impression", "search", None),
        ("u", T0 + pd.Timedelta(days=1), "purchase", None, 20.0),
        ("u", T0 + pd.Timedelta(days=1), "purchase", None, 10.0),
    ]
    for order in (rows, rows[::-1]):
        df = pd.DataFrame(order, columns=EVENT_COLUMNS)
        j = touch_journeys(cj.load_events(df, engine=engine), engine=engine)
        assert j.to_frame()[["path", "conversions", "value"]].values.tolist() == [
            ["search", 1.0, 10.0]
        ]
        assert j.summary()["unattributed_value"] == 20.0
