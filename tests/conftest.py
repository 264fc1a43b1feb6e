"""Shared fixtures: small hand-made tables and the DuckDB engine."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from statistics import NormalDist

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "datasets"
Z95 = NormalDist().inv_cdf(0.975)


class Shrinker:
    """Delta debugging (Zeller & Hildebrandt 2002) for the oracle tests: ``ddmin(items, test)``
    drops ever smaller chunks of ``items`` while ``test`` still fails; every pass shares one
    budget of ``test`` calls, so shrinking a slow case stays bounded. ``nonempty``: never try
    an empty list."""

    def __init__(self, budget: int, *, nonempty: bool = False) -> None:
        self.budget, self.calls, self.nonempty = budget, 0, nonempty

    def ddmin(self, items: list, test) -> list:
        size = max(len(items) // 2, 1)
        while True:
            i = 0
            while i < len(items) and self.calls < self.budget:
                trial = items[:i] + items[i + size :]
                self.calls += 1
                if (trial or not self.nonempty) and test(trial):
                    items = trial
                else:
                    i += size
            if size == 1 or self.calls >= self.budget:
                return items
            size //= 2


def wilson_by_hand(k: float, n: float) -> tuple[float, float]:
    """95 % Wilson score interval from its formula (Wilson 1927), for the reference tests."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.fixture
def engine():
    from cjlib.engine import Engine

    return Engine.duckdb()


@pytest.fixture(scope="session")
def spark_engine():
    """One local Spark session for the whole test run (start-up costs ~5-10 s)."""
    pytest.importorskip("pyspark", reason="the spark extra is installed by `make test`")
    from cjlib.engine import Engine

    engine = Engine.spark(master="local[2]", shuffle_partitions=2)
    yield engine
    engine.con._session.stop()


@pytest.fixture
def tiny_events() -> pd.DataFrame:
    """Three customers; c1 goes back from consideration to awareness before buying."""
    rows = [
        ("c1", "2026-01-01T09:00:00Z", "ad_impression", "display", None),
        ("c1", "2026-01-01T09:05:00Z", "content_view", "social", None),
        ("c1", "2026-01-02T10:00:00Z", "product_view", "search", None),
        ("c1", "2026-01-03T10:00:00Z", "ad_impression", "video", None),
        ("c1", "2026-01-04T10:00:00Z", "add_to_cart", "email", None),
        ("c1", "2026-01-04T10:10:00Z", "purchase", None, 40.0),
        ("c2", "2026-01-01T12:00:00Z", "first_visit", "direct", None),
        ("c2", "2026-01-05T12:00:00Z", "purchase", None, 15.5),
        ("c2", "2026-02-05T12:00:00Z", "repeat_purchase", None, 20.0),
        ("c2", "2026-02-06T12:00:00Z", "review_submitted", None, None),
        ("c3", "2026-01-07T08:00:00Z", "ad_impression", "display", None),
        ("c3", "2026-01-07T08:01:00Z", "mystery_event", None, None),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "event", "channel", "revenue"])


@pytest.fixture
def write_csv(tmp_path):
    def _write(df: pd.DataFrame, name: str = "table.csv") -> Path:
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _write


def pytest_configure(config):
    warnings.filterwarnings("ignore", module=r"pyspark\..*")
