"""Vectorised simulation of one seeded chunk of customers (arrays of integer codes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import params
from .params import (
    AOV_SIGMA,
    AW,
    AW_EVENT,
    CHANNELS,
    CO1,
    CO2,
    CUM,
    DAY,
    EFF_C,
    EFF_P,
    EVENT_STAGE,
    LIFT_CONV,
    LIFT_REV,
    LONG_GAP,
    MINUTE,
    ONB,
    PUR,
    REF,
    REG,
    REP,
    REPEAT_VIEW_P,
    REV,
    SECOND_SURVEY_P,
    SESSION_GAP,
    SESSION_P,
    SURVEY_P,
    UPG,
    Z_AOV,
    Z_CONS,
    Z_PURCH,
)
from .params import PERSONA as _P


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


def simulate_chunk(
    seed: np.random.SeedSequence,
    offset: int,
    n: int,
    t: tuple[int, int, int],
    months0: int,
    n_months: int,
) -> dict[str, Any]:
    """Simulate ``n`` customers (global indices ``offset..offset+n-1``) as arrays of codes."""
    rng, idx, (t_lo, t_mid, t_end) = np.random.default_rng(seed), np.arange(n), t
    persona = rng.choice(4, size=n, p=_P["share"])
    z = rng.standard_normal(n)
    age = np.clip(np.rint(rng.normal(_P["age_mean"][persona], _P["age_sd"][persona])), 18, 90)
    gender, region, device = (_draw(rng, CUM[k], persona) for k in ("gender", "region", "device"))
    t0 = rng.integers(t_lo, t_mid, size=n)
    shift = _P["conversion_multiplier"][persona]
    # awareness -> consideration
    n_aw = 1 + rng.poisson(_P["awareness_touch_mean"][persona] - 1)
    c_aw = np.repeat(idx, n_aw)
    ch_aw = _draw(rng, CUM["aw"], persona[c_aw])
    p_c = _sigmoid(params.BASE_C + shift + Z_CONS * z + np.bincount(c_aw, EFF_C[ch_aw], n))
    cons = rng.random(n) < p_c
    n_co = np.where(cons, 1 + rng.poisson(_P["consideration_touch_mean"][persona] - 1), 0)
    reg = cons & (n_co >= 2) & (rng.random(n) < _P["regression_rate"][persona])
    split = 1 + np.floor(rng.random(n) * np.maximum(n_co - 1, 1)).astype(np.int64)
    n_co1 = np.where(reg, split, n_co)
    c_reg, c_co1, c_co2 = idx[reg], np.repeat(idx, n_co1), np.repeat(idx, n_co - n_co1)
    ch_reg = _draw(rng, CUM["aw"], persona[c_reg])
    ch_co1, ch_co2 = _draw(rng, CUM["co"], persona[c_co1]), _draw(rng, CUM["co"], persona[c_co2])
    eff_p = sum(
        np.bincount(c, EFF_P[ch], n)
        for c, ch in ((c_aw, ch_aw), (c_reg, ch_reg), (c_co1, ch_co1), (c_co2, ch_co2))
    )
    # consideration -> purchase, with the experiment among considering customers
    treat = cons & (rng.random(n) < 0.5)
    p_p = _sigmoid(params.BASE_P + shift + Z_PURCH * z + eff_p)
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
    counts = (
        np.stack([n_aw, n_co1, reg, n_co - n_co1, buy, onb, 2 * k_rep, upg, review, refer], axis=1)
        .astype(np.int64)
        .ravel()
    )
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
            event[sel] = 3 + _draw(rng, CUM["co_event"], persona[cust[sel]])
    pur = np.flatnonzero(slot == PUR)
    event[pur - 1] = 6  # the touch right before a purchase is begin_checkout
    event[pur], revenue[pur] = 7, rev_first[buy]
    event[slot == ONB] = 8
    rep = slot == REP
    view, rep_buy = rep & (pos % 2 == 0), rep & (pos % 2 == 1)
    keep_view = rng.random(int(view.sum())) < REPEAT_VIEW_P
    event[view], channel[view] = 3, _draw(rng, CUM["co"], persona[cust[view]])
    event[rep_buy] = 9
    revenue[rep_buy] = _lognormal(
        rng, 0.8 * _P["aov_mean"][persona[cust[rep_buy]]], z[cust[rep_buy]]
    )
    sel = slot == UPG
    event[sel], revenue[sel] = 10, _lognormal(rng, 0.6 * _P["aov_mean"][persona[upg]], z[upg])
    event[slot == REV], event[slot == REF] = 11, 12
    # gaps: in-session (minutes) or stage-dependent long gaps (hours to days)
    p_sess, mean_long = SESSION_P[slot], LONG_GAP[slot]
    first_in_slot = ((slot == CO1) | (slot == CO2)) & (pos == 0)
    p_sess[first_in_slot], mean_long[first_in_slot] = 0.3, 1.5 * DAY
    follows_view = np.zeros(m, bool)
    follows_view[np.flatnonzero(view)[keep_view] + 1] = True
    p_sess[follows_view] = 1.0
    in_sess = rng.random(m) < p_sess
    gap = np.where(in_sess, 5 + rng.exponential(4 * MINUTE, m), rng.exponential(mean_long))
    keep = np.ones(m, bool)
    keep[np.flatnonzero(view)[~keep_view]] = False
    slot, pos, cust, event, channel, revenue, gap = (
        a[keep] for a in (slot, pos, cust, event, channel, revenue, np.rint(gap).astype(np.int64))
    )
    start = np.cumsum(np.bincount(cust, minlength=n)) - np.bincount(cust, minlength=n)
    gap[start] = 0
    cs = np.cumsum(gap)
    ts = t0[cust] + cs - cs[start][cust]
    keep = ts < t_end  # right-censoring at the end of the window
    slot, pos, cust, event, channel, revenue, ts, gap = (
        a[keep] for a in (slot, pos, cust, event, channel, revenue, ts, gap)
    )
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
    stats = np.array(
        [
            n,
            p_c.sum(),
            cons.sum(),
            p_p[cons].sum(),
            assigned.sum(),
            y.sum(),
            a_t.sum(),
            a_c.sum(),
            p_p[a_t].sum(),
            p_p[a_c].sum(),
            bought[a_t].sum(),
            bought[a_c].sum(),
            x.sum(),
            y.sum(),
            x @ x,
            y @ y,
            x @ y,
        ],
        dtype=float,
    )
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
    month = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) - months0
    touch = channel >= 0
    touches = np.bincount(
        channel[touch].astype(np.int64) * n_months + month[touch],
        minlength=len(CHANNELS) * n_months,
    )
    g = offset + idx
    return {
        "events": dict(
            cust=offset + cust,
            ts=ts,
            event=event,
            channel=channel,
            revenue=revenue,
            session=session,
            device=device[cust],
        ),
        "customers": dict(
            cust=g,
            age=age.astype(np.int64),
            gender=gender,
            region=region,
            device=device,
            signup=(t0 // 86_400).astype(np.int32),
            acq=ch_aw[np.cumsum(n_aw) - n_aw],
        ),
        "experiments": dict(
            cust=g[assigned],
            variant=treat[assigned].astype(np.int8),
            ts=ts[first_co],
            pre=pre_sessions[assigned].astype(np.int64),
        ),
        "surveys": dict(
            cust=offset + sc[order],
            ts=s_ts[order],
            stage=stage[order],
            touchpoint=tp[order],
            nps=nps[order].astype(np.int64),
            csat=csat[order].astype(np.int64),
            comment=comment[order],
        ),
        "customer_persona": dict(cust=g, persona=persona.astype(np.int8)),
        "stats": stats,
        "touches": touches,
    }
