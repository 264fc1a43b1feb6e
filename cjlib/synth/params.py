"""Planted parameters of the synthetic journeys: vocabularies, channels, personas, constants.

Everything here is ground truth that later analyses should recover; `SynthTruth` reports it.
"""

from __future__ import annotations

import numpy as np

CHANNELS = (
    "search",
    "social",
    "display",
    "video",
    "email",
    "affiliate",
    "referral",
    "direct",
    "store",
)
EVENTS = (
    "ad_impression",
    "content_view",
    "first_visit",
    "product_view",
    "compare_products",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "onboarding_completed",
    "repeat_purchase",
    "upgrade",
    "review_submitted",
    "referral_sent",
)
STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy")
EVENT_STAGE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 4, 4])
DEVICES, GENDERS = ("mobile", "desktop", "tablet"), ("female", "male", "other")
REGIONS = ("north", "south", "east", "west", "central")
TOUCHPOINTS = (*CHANNELS, "support", "checkout")
CHUNK = 5_000  # customers per seeded chunk (the unit of randomness)
BASE_C, BASE_P = 0.0010, -0.3002  # calibrated stage intercepts (log-odds), see module docstring
Z_CONS, Z_PURCH, Z_AOV = 0.4, 0.6, 0.15  # engagement z effects
LIFT_CONV, LIFT_REV, SESSION_GAP = 0.10, 0.05, 1800
REPEAT_VIEW_P, SURVEY_P, SECOND_SURVEY_P = 0.35, 0.30, 0.20

# channel -> (effect_consideration, effect_purchase, cost_per_touch, awareness events (2 options))
# awareness event codes: 0 ad_impression, 1 content_view, 2 first_visit
_CH = np.array(
    [
        [0.25, 0.15, 1.20, 1, 2],  # search
        [0.10, 0.05, 0.40, 0, 1],  # social
        [0.00, 0.00, 0.15, 0, 0],  # display
        [0.05, 0.02, 0.60, 0, 0],  # video
        [0.20, 0.20, 0.05, 1, 1],  # email
        [0.15, 0.10, 0.90, 1, 1],  # affiliate
        [0.55, 0.45, 0.30, 1, 1],  # referral
        [0.30, 0.25, 0.02, 2, 2],  # direct
        [0.50, 0.40, 2.50, 2, 2],  # store
    ]
)
EFF_C, EFF_P, COST, AW_EVENT = _CH[:, 0], _CH[:, 1], _CH[:, 2], _CH[:, 3:].astype(np.int8)

PERSONAS = ("Deal seekers", "Loyal enthusiasts", "Careful researchers", "Mobile impulse buyers")
PERSONA: dict[str, np.ndarray] = {
    k: np.array(v, dtype=float)
    for k, v in {
        "share": [0.30, 0.20, 0.25, 0.25],
        "age_mean": [34, 47, 60, 24],
        "age_sd": [6, 7, 7, 3.5],
        "nps_mean": [5.8, 8.8, 7.4, 6.5],
        "csat_mean": [3.4, 4.5, 4.0, 3.7],
        "conversion_multiplier": [-0.1, 0.35, -0.6, 0.2],
        "awareness_touch_mean": [3.5, 1.6, 5.0, 1.4],
        "consideration_touch_mean": [3.0, 2.0, 5.5, 1.3],
        "regression_rate": [0.25, 0.10, 0.35, 0.15],
        "onboarding_rate": [0.5, 0.85, 0.75, 0.4],
        "churn_rate": [0.45, 0.15, 0.30, 0.55],
        "upgrade_rate": [0.05, 0.30, 0.15, 0.08],
        "advocacy_shift": [-2.0, 0.0, -1.0, -1.5],
        "aov_mean": [45, 120, 95, 40],
        "gender": [[0.55, 0.42, 0.03], [0.45, 0.52, 0.03], [0.40, 0.57, 0.03], [0.60, 0.35, 0.05]],
        "region": [
            [0.15, 0.35, 0.20, 0.15, 0.15],
            [0.30, 0.15, 0.15, 0.20, 0.20],
            [0.20, 0.15, 0.30, 0.20, 0.15],
            [0.15, 0.20, 0.15, 0.20, 0.30],
        ],
        "device": [[0.60, 0.30, 0.10], [0.25, 0.70, 0.05], [0.10, 0.55, 0.35], [0.95, 0.03, 0.02]],
        "aw": [
            [0.12, 0.05, 0.25, 0.02, 0.05, 0.45, 0.02, 0.03, 0.01],
            [0.05, 0.02, 0.02, 0.01, 0.45, 0.02, 0.20, 0.15, 0.08],
            [0.55, 0.02, 0.05, 0.10, 0.05, 0.05, 0.12, 0.03, 0.03],
            [0.05, 0.55, 0.10, 0.25, 0.01, 0.02, 0.01, 0.01, 0.00],
        ],
        "co": [
            [0.25, 0, 0, 0, 0.05, 0.55, 0.05, 0.05, 0.05],
            [0.05, 0, 0, 0, 0.45, 0.02, 0.13, 0.25, 0.10],
            [0.55, 0, 0, 0, 0.05, 0.05, 0.15, 0.05, 0.15],
            [0.30, 0, 0, 0, 0.02, 0.08, 0.05, 0.55, 0.00],
        ],
        "co_event": [
            [0.45, 0.30, 0.20, 0.05],
            [0.55, 0.05, 0.30, 0.10],
            [0.45, 0.40, 0.12, 0.03],
            [0.50, 0.05, 0.35, 0.10],
        ],
        # NPS shift by stage (awareness, consideration, purchase, retention, advocacy)
        "stage_nps": [
            [0, 0, -0.8, -0.3, 0.5],
            [0, 0.2, 0.2, 0.3, 0.6],
            [0, -0.6, 0, 0.2, 0.5],
            [0, 0, -1.2, -0.4, 0.5],
        ],
    }.items()
}
CUM = {
    k: np.cumsum(PERSONA[k], axis=1) for k in ("gender", "region", "device", "aw", "co", "co_event")
}
for _c in CUM.values():
    _c[:, -1] = 1.0
AOV_SIGMA = 0.5
COMMENTS = np.array(
    [  # [sentiment: detractor, passive, promoter][stage][2 options]
        [
            ["Too many ads everywhere", "Did not find what I was looking for"],
            ["Hard to compare products", "Product pages lack detail"],
            ["Checkout was confusing", "Payment failed twice"],
            ["Delivery was late", "Support never answered"],
            ["Would not recommend", "Quality went down"],
        ],
        [
            ["The ads were fine", "Found the site by chance"],
            ["Decent range but pricey", "Comparison tool is okay"],
            ["Checkout was okay", "Shipping costs are high"],
            ["Product is fine", "Onboarding took a while"],
            ["Might recommend to a friend", "Good but not great"],
        ],
        [
            ["Great first impression", "Loved the campaign"],
            ["Great product selection", "Easy to compare options"],
            ["Smooth checkout", "Fast delivery - will buy again"],
            ["Fast delivery - will buy again", "Support was very helpful"],
            ["Love this brand", "Already told my friends"],
        ],
    ]
).reshape(-1)
# slots: awareness, consideration 1, regression touch, consideration 2, purchase, onboarding,
# repeat cycles (pairs: product_view, repeat_purchase), upgrade, review, referral
AW, CO1, REG, CO2, PUR, ONB, REP, UPG, REV, REF = range(10)
DAY, MINUTE = 86_400.0, 60.0
# per slot: probability the gap from the previous event is in-session, mean long gap (s)
SESSION_P = np.array([0.25, 0.7, 0.2, 0.7, 0.75, 0.1, 0.0, 0.0, 0.05, 0.05])
LONG_GAP = np.array([2, 1, 0.5, 1, 1, 2, 35, 20, 7, 10]) * DAY
STAT_KEYS = (
    "n",
    "sum_pc",
    "n_cons",
    "sum_pp",
    "real_cons",
    "real_buy",
    "n_t",
    "n_c",
    "pp_t",
    "pp_c",
    "buy_t",
    "buy_c",
    "sx",
    "sy",
    "sxx",
    "syy",
    "sxy",
)
