"""Seeded synthetic customer journeys with a planted ground truth.

`generate` returns the tables in memory; `write` streams them to disk in blocks of customers.
Both run the same block code, so ``generate(n)`` and ``write(n)`` give the same rows.

Seeding
    All randomness derives from ``numpy.random.SeedSequence(random_state)``. Customers are
    simulated in fixed chunks of ``CHUNK`` customers; chunk ``i`` uses the child seed
    ``SeedSequence(random_state).spawn(2)[0].spawn(i + 1)[i]`` and the cost noise uses
    ``spawn(2)[1]``, so the data never depend on the block size (memory) used to produce them.

Calibration
    The stage intercepts ``params.BASE_C`` and ``params.BASE_P`` are fixed constants, found once
    by Newton steps on the mean individual probability of 400,000 customers (seed 0), so that
    the population expectations are P(consideration | awareness) ~ 0.62 and
    P(purchase | consideration) ~ 0.71 (about 38% and 29% lost, the industry figures of the
    issue). `SynthTruth.stage_rates` reports the expected and realised rates of each data set.

Tables
    ``events``, ``customers``, ``experiments``, ``surveys``, ``costs`` (see `SynthData`); the
    hidden persona labels are in ``truth.customer_persona`` (``customer_persona`` file on disk).
"""

from __future__ import annotations

from .api import generate, write
from .params import CHANNELS, CHUNK, EVENTS, PERSONAS, STAGES
from .truth import SynthData, SynthTruth

__all__ = [
    "CHANNELS",
    "CHUNK",
    "EVENTS",
    "PERSONAS",
    "STAGES",
    "SynthData",
    "SynthTruth",
    "generate",
    "write",
]
