"""Seeded synthetic customer journeys with a planted ground truth.

`generate` returns the tables in memory, `write` streams them to disk in blocks of customers.
Randomness comes only from ``numpy.random.SeedSequence(random_state)``: customers are simulated
in fixed seeded chunks of ``CHUNK`` customers, chunk ``i`` using the child seed
``SeedSequence(random_state).spawn(2)[0].spawn(i + 1)[i]``, so the data never depend on
the block size (memory) used to produce them. Cost noise uses ``spawn(2)[1]``.

The stage intercepts ``BASE_C`` and ``BASE_P`` are fixed constants, calibrated once (bisection
on 200,000 simulated customers) so that the population expectations are
P(consideration | awareness) ~ 0.62 and P(purchase | consideration) ~ 0.71, the industry figures
of the issue (38% lost before consideration, 29% lost before purchase).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["CHANNELS", "EVENTS", "STAGES", "SynthData", "SynthTruth", "generate", "write"]

CHANNELS = ("search", "social", "display", "video", "email", "affiliate", "referral", "direct",
            "store")
EVENTS = ("ad_impression", "content_view", "first_visit", "product_view", "compare_products",
          "add_to_cart", "begin_checkout", "purchase", "onboarding_completed", "repeat_purchase",
          "upgrade", "review_submitted", "referral_sent")
STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy")
EVENT_STAGE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 4, 4])
DEVICES, GENDERS = ("mobile", "desktop", "tablet"), ("female", "male", "other")
REGIONS = ("north", "south", "east", "west", "central")
TOUCHPOINTS = (*CHANNELS, "support", "checkout")
CHUNK = 5_000  # customers per seeded chunk (the unit of randomness)
BASE_C, BASE_P = -0.0425, -0.3105  # calibrated stage intercepts (log-odds), see module docstring
Z_CONS, Z_PURCH, Z_AOV = 0.4, 0.5, 0.15  # engagement z effects
LIFT_CONV, LIFT_REV, SESSION_GAP = 0.10, 0.05, 1800
REPEAT_VIEW_P, SURVEY_P, SECOND_SURVEY_P = 0.35, 0.30, 0.20

# channel -> (effect_consideration, effect_purchase, cost_per_touch, awareness events (2 options))
_CH = np.array([[0.25, 0.15, 1.20, 1, 2], [0.10, 0.05, 0.40, 0, 1], [0.00, 0.00, 0.15, 0, 0],
                [0.05, 0.02, 0.60, 0, 0], [0.20, 0.20, 0.05, 1, 1], [0.15, 0.10, 0.90, 1, 1],
                [0.55, 0.45, 0.30, 1, 1], [0.30, 0.25, 0.02, 2, 2], [0.50, 0.40, 2.50, 2, 2]])
EFF_C, EFF_P, COST, AW_EVENT = _CH[:, 0], _CH[:, 1], _CH[:, 2], _CH[:, 3:].astype(np.int8)

PERSONAS = ("Deal seekers", "Loyal enthusiasts", "Careful researchers", "Mobile impulse buyers")
_P: dict[str, np.ndarray] = {k: np.array(v, dtype=float) for k, v in {
    "share": [0.30, 0.20, 0.25, 0.25],
    "age_mean": [36, 46, 55, 26], "age_sd": [9, 10, 9, 5],
    "nps_mean": [5.8, 8.8, 7.4, 6.5], "csat_mean": [3.4, 4.5, 4.0, 3.7],
    "conversion_multiplier": [-0.3, 0.6, -0.1, 0.1],
    "awareness_touch_mean": [3.5, 2.0, 4.5, 1.6], "consideration_touch_mean": [3.0, 2.0, 4.5, 1.5],
    "regression_rate": [0.25, 0.10, 0.35, 0.15], "onboarding_rate": [0.5, 0.85, 0.75, 0.4],
    "churn_rate": [0.45, 0.15, 0.30, 0.55], "upgrade_rate": [0.05, 0.30, 0.15, 0.08],
    "advocacy_shift": [-2.0, 0.0, -1.0, -1.5], "aov_mean": [45, 120, 95, 40],
    "gender": [[.55, .42, .03], [.45, .52, .03], [.40, .57, .03], [.60, .35, .05]],
    "region": [[.15, .35, .20, .15, .15], [.30, .15, .15, .20, .20], [.20, .15, .30, .20, .15],
               [.15, .20, .15, .20, .30]],
    "device": [[.55, .35, .10], [.35, .55, .10], [.20, .55, .25], [.90, .05, .05]],
    "aw": [[.15, .15, .25, .05, .05, .30, .02, .02, .01], [.10, .05, .05, .05, .30, .02, .18, .15, .10],
           [.40, .05, .05, .10, .08, .10, .12, .05, .05], [.08, .40, .12, .30, .02, .04, .02, .01, .01]],
    "co": [[.30, 0, 0, 0, .10, .40, .05, .10, .05], [.10, 0, 0, 0, .35, .02, .13, .30, .10],
           [.45, 0, 0, 0, .10, .10, .15, .10, .10], [.35, 0, 0, 0, .05, .15, .10, .30, .05]],
    "co_event": [[.45, .30, .20, .05], [.55, .05, .30, .10], [.45, .40, .12, .03],
                 [.50, .05, .35, .10]],
    # NPS shift by stage (awareness, consideration, purchase, retention, advocacy)
    "stage_nps": [[0, 0, -.8, -.3, .5], [0, .2, .2, .3, .6], [0, -.6, 0, .2, .5],
                  [0, 0, -1.2, -.4, .5]],
}.items()}
_CUM = {k: np.cumsum(_P[k], axis=1) for k in ("gender", "region", "device", "aw", "co", "co_event")}
for _c in _CUM.values():
    _c[:, -1] = 1.0
AOV_SIGMA = 0.5
_COMMENTS = np.array([  # [sentiment: detractor, passive, promoter][stage][2 options]
    [["Too many ads everywhere", "Did not find what I was looking for"],
     ["Hard to compare products", "Product pages lack detail"],
     ["Checkout was confusing", "Payment failed twice"],
     ["Delivery was late", "Support never answered"], ["Would not recommend", "Quality went down"]],
    [["The ads were fine", "Found the site by chance"],
     ["Decent range but pricey", "Comparison tool is okay"],
     ["Checkout was okay", "Shipping costs are high"], ["Product is fine", "Onboarding took a while"],
     ["Might recommend to a friend", "Good but not great"]],
    [["Great first impression", "Loved the campaign"],
     ["Great product selection", "Easy to compare options"],
     ["Smooth checkout", "Fast delivery - will buy again"],
     ["Fast delivery - will buy again", "Support was very helpful"],
     ["Love this brand", "Already told my friends"]],
]).reshape(-1)
# slots: awareness, consideration 1, regression touch, consideration 2, purchase, onboarding,
# repeat cycles (pairs: product_view, repeat_purchase), upgrade, review, referral
AW, CO1, REG, CO2, PUR, ONB, REP, UPG, REV, REF = range(10)
_DAY, _MIN = 86_400.0, 60.0
# per slot: probability the gap from the previous event is in-session, mean long gap (s)
_SESS = np.array([0.25, 0.7, 0.2, 0.7, 0.75, 0.1, 0.0, 0.0, 0.05, 0.05])
_LONG = np.array([2, 1, 0.5, 1, 1, 2, 35, 20, 7, 10]) * _DAY
_STAT_KEYS = ("n", "sum_pc", "n_cons", "sum_pp", "real_cons", "real_buy", "n_t", "n_c", "pp_t",
              "pp_c", "buy_t", "buy_c", "sx", "sy", "sxx", "syy", "sxy")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per row from the cumulative probability table ``cum[rows]``."""
    u = rng.random(len(rows))
    return np.minimum((u[:, None] >= cum[rows]).sum(1), cum.shape[1] - 1).astype(np.int8)


def _lognormal(rng: np.random.Generator, mean: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Order values with the given mean, raised by engagement z, rounded to cents."""
    mu = np.log(mean) - AOV_SIGMA**2 / 2 - Z_AOV**2 / 2 + Z_AOV * z
    return np.round(np.exp(mu + AOV_SIGMA * rng.standard_normal(len(z))), 2)


def _simulate_chunk(seed: np.random.SeedSequence, offset: int, n: int, t: tuple[int, int, int],
                    months0: int, n_months: int) -> dict[str, Any]:
    """Simulate ``n`` customers (global indices ``offset..offset+n-1``) as arrays of codes."""
    rng, idx, (t_lo, t_mid, t_end) = np.random.default_rng(seed), np.arange(n), t
    persona = rng.choice(4, size=n, p=_P["share"])
    z = rng.standard_normal(n)
    age = np.clip(np.rint(rng.normal(_P["age_mean"][persona], _P["age_sd"][persona])), 18, 90)
    gender, region, device = (_draw(rng, _CUM[k], persona) for k in ("gender", "region", "device"))
    t0 = rng.integers(t_lo, t_mid, size=n)
    shift = _P["conversion_multiplier"][persona]
    # awareness -> consideration
    n_aw = 1 + rng.poisson(_P["awareness_touch_mean"][persona] - 1)
    c_aw = np.repeat(idx, n_aw)
    ch_aw = _draw(rng, _CUM["aw"], persona[c_aw])
    p_c = _sigmoid(BASE_C + shift + Z_CONS * z + np.bincount(c_aw, EFF_C[ch_aw], n))
    cons = rng.random(n) < p_c
    n_co = np.where(cons, 1 + rng.poisson(_P["consideration_touch_mean"][persona] - 1), 0)
    reg = cons & (n_co >= 2) & (rng.random(n) < _P["regression_rate"][persona])
    split = 1 + np.floor(rng.random(n) * np.maximum(n_co - 1, 1)).astype(np.int64)
    n_co1 = np.where(reg, split, n_co)
    c_reg, c_co1, c_co2 = idx[reg], np.repeat(idx, n_co1), np.repeat(idx, n_co - n_co1)
    ch_reg = _draw(rng, _CUM["aw"], persona[c_reg])
    ch_co1, ch_co2 = _draw(rng, _CUM["co"], persona[c_co1]), _draw(rng, _CUM["co"], persona[c_co2])
    eff_p = sum(np.bincount(c, EFF_P[ch], n) for c, ch in
                ((c_aw, ch_aw), (c_reg, ch_reg), (c_co1, ch_co1), (c_co2, ch_co2)))
    # consideration -> purchase, with the experiment among considering customers
    treat = cons & (rng.random(n) < 0.5)
    p_p = _sigmoid(BASE_P + shift + Z_PURCH * z + eff_p)
    p_p = np.where(treat, np.minimum(p_p * (1 + LIFT_CONV), 0.99), p_p)
    buy = cons & (rng.random(n) < p_p)
    pre_sessions = rng.poisson(np.exp(1 + 0.6 * z))
    rev_first = np.round(_lognormal(rng, _P["aov_mean"][persona], z) * (1 + LIFT_REV * treat), 2)
    onb = buy & (rng.random(n) < _P["onboarding_rate"][persona])
    k_rep = np.where(buy, np.minimum(rng.geometric(_P["churn_rate"][persona]) - 1, 12), 0)
    upg = buy & (rng.random(n) < _P["upgrade_rate"][persona])
    nps_lat = _P["nps_mean"][persona] + 0.4 * z + 1.2 * rng.standard_normal(n)
    adv = _P["advocacy_shift"][persona]
    review = buy & (rng.random(n) < _sigmoid(adv + 0.6 * (nps_lat - 7)))
    refer = buy & (rng.random(n) < _sigmoid(adv - 1 + 0.8 * (nps_lat - 7)))
    # expand slots into events (customer-major, slot order within customer)
    counts = np.stack([n_aw, n_co1, reg, n_co - n_co1, buy, onb, 2 * k_rep, upg, review, refer],
                      axis=1).astype(np.int64).ravel()
    slot = np.repeat(np.tile(np.arange(10), n), counts)
    cust = np.repeat(idx, counts.reshape(n, 10).sum(1))
    m = len(slot)
    pos = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)
    event, channel = np.zeros(m, np.int8), np.full(m, -1, np.int8)
    revenue = np.full(m, np.nan)
    for s, ch in ((AW, ch_aw), (REG, ch_reg), (CO1, ch_co1), (CO2, ch_co2)):
        sel = slot == s
        channel[sel] = ch
        if s in (AW, REG):
            event[sel] = AW_EVENT[ch, rng.integers(0, 2, len(ch))]
        else:
            event[sel] = 3 + _draw(rng, _CUM["co_event"], persona[cust[sel]])
    pur = np.flatnonzero(slot == PUR)
    event[pur - 1] = 6  # the touch right before a purchase is begin_checkout
    event[pur], revenue[pur] = 7, rev_first[buy]
    event[slot == ONB] = 8
    rep = slot == REP
    view, rep_buy = rep & (pos % 2 == 0), rep & (pos % 2 == 1)
    keep_view = rng.random(int(view.sum())) < REPEAT_VIEW_P
    event[view], channel[view] = 3, _draw(rng, _CUM["co"], persona[cust[view]])
    event[rep_buy] = 9
    revenue[rep_buy] = _lognormal(rng, 0.8 * _P["aov_mean"][persona[cust[rep_buy]]],
                                  z[cust[rep_buy]])
    sel = slot == UPG
    event[sel], revenue[sel] = 10, _lognormal(rng, 0.6 * _P["aov_mean"][persona[upg]], z[upg])
    event[slot == REV], event[slot == REF] = 11, 12
    # gaps: in-session (minutes) or stage-dependent long gaps (hours to days)
    p_sess, mean_long = _SESS[slot], _LONG[slot]
    first_in_slot = ((slot == CO1) | (slot == CO2)) & (pos == 0)
    p_sess[first_in_slot], mean_long[first_in_slot] = 0.3, 1.5 * _DAY
    follows_view = np.zeros(m, bool)
    follows_view[np.flatnonzero(view)[keep_view] + 1] = True
    p_sess[follows_view] = 1.0
    in_sess = rng.random(m) < p_sess
    gap = np.where(in_sess, 5 + rng.exponential(4 * _MIN, m), rng.exponential(mean_long))
    keep = np.ones(m, bool)
    keep[np.flatnonzero(view)[~keep_view]] = False
    slot, pos, cust, event, channel, revenue, gap = (
        a[keep] for a in (slot, pos, cust, event, channel, revenue, np.rint(gap).astype(np.int64)))
    start = np.cumsum(np.bincount(cust, minlength=n)) - np.bincount(cust, minlength=n)
    gap[start] = 0
    cs = np.cumsum(gap)
    ts = t0[cust] + cs - cs[start][cust]
    keep = ts < t_end  # right-censoring at the end of the window
    slot, pos, cust, event, channel, revenue, ts, gap = (
        a[keep] for a in (slot, pos, cust, event, channel, revenue, ts, gap))
    cnt = np.bincount(cust, minlength=n)
    start = np.cumsum(cnt) - cnt
    new = gap > SESSION_GAP
    new[start] = True
    cn = np.cumsum(new)
    session = cn - cn[start][cust] + 1
    # experiment: customers whose first consideration event is observed
    first_co = (slot == CO1) & (pos == 0)
    assigned = np.zeros(n, bool)
    assigned[cust[first_co]] = True
    bought = np.zeros(n, bool)
    bought[cust[event == 7]] = True
    a_t, a_c = assigned & treat, assigned & ~treat
    x, y = pre_sessions[assigned].astype(float), bought[assigned].astype(float)
    stats = np.array([n, p_c.sum(), cons.sum(), p_p[cons].sum(), assigned.sum(), y.sum(),
                      a_t.sum(), a_c.sum(), p_p[a_t].sum(), p_p[a_c].sum(), bought[a_t].sum(),
                      bought[a_c].sum(), x.sum(), y.sum(), x @ x, y @ y, x @ y], dtype=float)
    # surveys: a random observed event of ~30% of customers, some answer twice
    n_s = (rng.random(n) < SURVEY_P) * (1 + (rng.random(n) < SECOND_SURVEY_P))
    sc = np.repeat(idx, n_s)
    ev = start[sc] + np.floor(rng.random(len(sc)) * cnt[sc]).astype(np.int64)
    s_ts = ts[ev] + 60 + np.rint(rng.exponential(3 * 3600.0, len(sc))).astype(np.int64)
    stage = EVENT_STAGE[event[ev]]
    tp = np.where(channel[ev] >= 0, channel[ev], np.where(np.isin(event[ev], (7, 9, 10)), 10, 9))
    adj, sp = _P["stage_nps"][persona[sc], stage], persona[sc]
    nps = np.clip(np.rint(nps_lat[sc] + adj + rng.standard_normal(len(sc))), 0, 10)
    csat = _P["csat_mean"][sp] + 0.3 * (nps_lat[sc] - _P["nps_mean"][sp]) + 0.4 * adj
    csat = np.clip(np.rint(csat + 0.5 * rng.standard_normal(len(sc))), 1, 5)
    sentiment = (nps >= 7).astype(np.int64) + (nps >= 9)
    comment = (sentiment * 5 + stage) * 2 + rng.integers(0, 2, len(sc))
    order = np.lexsort((s_ts, sc))
    order = order[s_ts[order] < t_end]
    # touches per channel and month, for the cost table
    month = (ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) - months0)
    touch = channel >= 0
    touches = np.bincount(channel[touch].astype(np.int64) * n_months + month[touch],
                          minlength=len(CHANNELS) * n_months)
    g = offset + idx
    return {
        "events": dict(cust=offset + cust, ts=ts, event=event, channel=channel, revenue=revenue,
                       session=session, device=device[cust]),
        "customers": dict(cust=g, age=age.astype(np.int64), gender=gender, region=region,
                          device=device, signup=(t0 // 86_400).astype(np.int32),
                          acq=ch_aw[np.cumsum(n_aw) - n_aw]),
        "experiments": dict(cust=g[assigned], variant=treat[assigned].astype(np.int8),
                            ts=ts[first_co], pre=pre_sessions[assigned].astype(np.int64)),
        "surveys": dict(cust=offset + sc[order], ts=s_ts[order], stage=stage[order],
                        touchpoint=tp[order], nps=nps[order].astype(np.int64),
                        csat=csat[order].astype(np.int64), comment=comment[order]),
        "customer_persona": dict(cust=g, persona=persona.astype(np.int8)),
        "stats": stats, "touches": touches,
    }
