"""cjlib: customer-journey analytics. Every number the notebooks show comes from here.

Importing is light: the engine (Ibis, DuckDB, Spark), scipy and scikit-learn load on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cjlib")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# public name -> module that defines it (loaded on first access)
_EXPORTS = {
    "SchemaError": "cjlib.schema",
    "DataQualityWarning": "cjlib.schema",
    "TABLES": "cjlib.schema",
    "COLUMN_MAPS": "cjlib.schema",
    "StageModel": "cjlib.stages",
    "five_stage": "cjlib.stages",
    "seven_stage": "cjlib.stages",
    "Engine": "cjlib.engine",
    "get_engine": "cjlib.engine",
    "set_engine": "cjlib.engine",
    "use_engine": "cjlib.engine",
    "LoadedTable": "cjlib.io",
    "LoadReport": "cjlib.io",
    "load_table": "cjlib.io",
    "load_events": "cjlib.io",
    "load_customers": "cjlib.io",
    "load_experiments": "cjlib.io",
    "load_surveys": "cjlib.io",
    "load_costs": "cjlib.io",
    "load_sample": "cjlib.io",
    "sample_path": "cjlib.io",
    "with_stages": "cjlib.journeys",
    "stage_steps": "cjlib.journeys",
    "stage_sequences": "cjlib.journeys",
    "stage_paths": "cjlib.journeys",
    "stage_transitions": "cjlib.journeys",
    "furthest_stage": "cjlib.journeys",
    "stage_coverage": "cjlib.journeys",
    "glue": "cjlib.report",
    "attribute": "cjlib.attribution",
    "attribute_segments": "cjlib.attribution",
    "touch_journeys": "cjlib.attribution",
    "read_path_table": "cjlib.attribution",
    "AttributionResult": "cjlib.attribution",
    "analyze": "cjlib.experiments",
    "ExperimentResult": "cjlib.experiments",
    "metrics_from_roles": "cjlib.experiments",
    "funnel": "cjlib.funnels",
    "funnel_spec": "cjlib.funnels",
    "FunnelSpec": "cjlib.funnels",
    "FunnelResult": "cjlib.funnels",
    "funnel_segments": "cjlib.funnels",
    "funnel_trends": "cjlib.funnels",
    "dropoff_drivers": "cjlib.funnels",
    "stage_view": "cjlib.funnels",
    "customer_features": "cjlib.personas",
    "prepare_features": "cjlib.personas",
    "fit_clusters": "cjlib.personas",
    "select_k": "cjlib.personas",
    "bootstrap_stability": "cjlib.personas",
    "persona_cards": "cjlib.personas",
    "find_personas": "cjlib.personas",
    "PersonaModel": "cjlib.personas",
    "PersonaResult": "cjlib.personas",
    "rfm_segments": "cjlib.personas",
    "read_assignment": "cjlib.personas",
    "VocResult": "cjlib.voc",
    "voc_scores": "cjlib.voc",
    "nps_interval": "cjlib.voc",
    "distinguishing_terms": "cjlib.voc",
    "JourneyMap": "cjlib.journeymap",
    "journey_map": "cjlib.journeymap",
    "stage_metrics": "cjlib.journeymap",
}

__all__ = sorted([*_EXPORTS, "__version__"])


_SUBMODULES = {
    "schema",
    "stages",
    "engine",
    "io",
    "checks",
    "journeys",
    "stats",
    "plots",
    "report",
    "progress",
    "synth",
    "attribution",
    "experiments",
    "voc",
    "journeymap",
    "funnels",
    "personas",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"cjlib.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cjlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
