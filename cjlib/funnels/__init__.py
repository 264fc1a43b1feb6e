"""Funnels and the stage drop-off study: definition, engine expressions, timing, segments,
trends, drivers and the journey-stage view.

>>> import cjlib as cj
>>> from cjlib import funnels
>>> f = funnels.funnel(events, ["product_view", "add_to_cart", "purchase"], window="7D")
>>> f.steps        # customers, in progress, dropped, conversion with Wilson intervals per step
>>> funnels.funnel_segments(events, f, funnels.first_channel_segments(events))
"""

from __future__ import annotations

from cjlib.funnels.core import FunnelResult, funnel
from cjlib.funnels.describe import METHODS, describe_funnel, headline, opportunities
from cjlib.funnels.drivers import DriverResult, dropoff_drivers
from cjlib.funnels.segments import (
    SegmentResult,
    attribute_segments,
    first_channel_segments,
    funnel_segments,
    persona_segments,
    segment_source,
    variant_segments,
)
from cjlib.funnels.spec import FunnelSpec, Step, funnel_spec
from cjlib.funnels.stage_view import INDUSTRY_REFERENCES, StageView, dwell_times, stage_view
from cjlib.funnels.trends import TrendResult, funnel_trends

__all__ = [
    "INDUSTRY_REFERENCES",
    "METHODS",
    "DriverResult",
    "FunnelResult",
    "FunnelSpec",
    "SegmentResult",
    "StageView",
    "Step",
    "TrendResult",
    "attribute_segments",
    "describe_funnel",
    "dropoff_drivers",
    "dwell_times",
    "first_channel_segments",
    "funnel",
    "funnel_segments",
    "funnel_spec",
    "funnel_trends",
    "headline",
    "opportunities",
    "persona_segments",
    "segment_source",
    "stage_view",
    "variant_segments",
]
