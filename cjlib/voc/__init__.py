"""Voice of the customer: NPS and CSAT with intervals by stage, touchpoint, channel, persona and
survey wave, wave-to-wave tests, and the terms that set detractors' comments apart.

>>> from cjlib import voc
>>> v = voc.voc_scores(surveys, events=events, persona="customer_persona.csv")
>>> v.table("stage")          # NPS (points) and CSAT share per stage, 95 % intervals
>>> v.waves                   # month-to-month changes with Holm-adjusted p-values
>>> voc.distinguishing_terms(surveys).terms
"""

from __future__ import annotations

from cjlib.voc.breakdown import DIMENSIONS, WAVES, VocResult, prepare_surveys, voc_scores
from cjlib.voc.describe import METHODS, describe_voc
from cjlib.voc.scores import (
    csat_difference,
    csat_share,
    mean_interval,
    nps_difference,
    nps_interval,
)
from cjlib.voc.terms import TermsResult, distinguishing_terms, log_odds_terms, redact, tokenize

__all__ = [
    "DIMENSIONS",
    "METHODS",
    "WAVES",
    "TermsResult",
    "VocResult",
    "csat_difference",
    "csat_share",
    "describe_voc",
    "distinguishing_terms",
    "log_odds_terms",
    "mean_interval",
    "nps_difference",
    "nps_interval",
    "prepare_surveys",
    "redact",
    "tokenize",
    "voc_scores",
]
