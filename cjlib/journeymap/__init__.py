"""Journey map: stage success metrics, ranked pain points and the stage x row map with an
emotion track, for everyone or one persona.

>>> from cjlib import journeymap
>>> jm = journeymap.journey_map(events, surveys, persona="customer_persona.csv")
>>> jm.table          # the map: rows (actions, channels, reach, conversion, dwell, emotion, pain)
>>> jm.metrics        # stage success metrics with intervals; "not available" where data lacks
>>> jm.pain_points    # drop-offs, low satisfaction, slow stages, complained touchpoints, ranked
"""

from __future__ import annotations

from cjlib.journeymap.build import ROWS, JourneyMap, journey_map
from cjlib.journeymap.describe import (
    METHODS,
    describe_journey_map,
    format_metrics,
    persona_maps,
)
from cjlib.journeymap.metrics import REFERRAL_EVENTS, REVIEW_EVENTS, median_interval, stage_metrics
from cjlib.journeymap.painpoints import pain_points, slow_steps

__all__ = [
    "METHODS",
    "REFERRAL_EVENTS",
    "REVIEW_EVENTS",
    "ROWS",
    "JourneyMap",
    "describe_journey_map",
    "format_metrics",
    "journey_map",
    "median_interval",
    "pain_points",
    "persona_maps",
    "slow_steps",
    "stage_metrics",
]
