"""The planted ground truth (`SynthTruth`) and the data container (`SynthData`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import params
from .params import (
    AOV_SIGMA,
    CHANNELS,
    CHUNK,
    COST,
    DEVICES,
    EFF_C,
    EFF_P,
    GENDERS,
    LIFT_CONV,
    LIFT_REV,
    PERSONA,
    PERSONAS,
    REGIONS,
    REPEAT_VIEW_P,
    SECOND_SURVEY_P,
    SESSION_GAP,
    STAT_KEYS,
    SURVEY_P,
    Z_AOV,
    Z_CONS,
    Z_PURCH,
)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records"))


@dataclass(frozen=True)
class SynthTruth:
    """The planted ground truth of a synthetic data set (undefined rates are ``None``).

    Attributes
    ----------
    personas : pandas.DataFrame
        One row per persona: share, demographics, device/channel mixes (``device_*``, ``aw_*``
        awareness and ``co_*`` consideration channel shares), touch means,
        ``conversion_multiplier`` (log-odds shift of both stage probabilities), rates, means.
    channel_effects : pandas.DataFrame
        ``channel, effect_consideration, effect_purchase`` (log-odds per touch), ``cost_per_touch``.
    stage_rates : dict
        Targets, expected (mean individual probability) and realised stage conversion rates.
    experiment : dict
        Design, planted lifts, expected and realised conversion per variant, covariate correlation.
    customer_persona : pandas.DataFrame
        ``customer_id, persona``: the hidden labels (empty when written to disk separately).
    params : dict
        Generation parameters and model constants.
    """

    personas: pd.DataFrame
    channel_effects: pd.DataFrame
    stage_rates: dict
    experiment: dict
    customer_persona: pd.DataFrame
    params: dict

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (data frames as lists of records)."""
        return {
            "personas": _records(self.personas),
            "channel_effects": _records(self.channel_effects),
            "stage_rates": self.stage_rates,
            "experiment": self.experiment,
            "customer_persona": _records(self.customer_persona),
            "params": self.params,
        }


@dataclass(frozen=True)
class SynthData:
    """Synthetic tables (see the module docstring) and their planted truth."""

    events: pd.DataFrame
    customers: pd.DataFrame
    experiments: pd.DataFrame
    surveys: pd.DataFrame
    costs: pd.DataFrame
    truth: SynthTruth


def build_truth(stats: np.ndarray, run_params: dict, customer_persona: pd.DataFrame) -> SynthTruth:
    """Assemble the truth from the accumulated chunk statistics (see ``STAT_KEYS``)."""
    s = {k: float(v) for k, v in zip(STAT_KEYS, stats, strict=True)}
    ratio = lambda a, b: s[a] / s[b] if s[b] else None  # noqa: E731
    m = s["real_cons"] or 1.0
    var_x, var_y = s["sxx"] / m - (s["sx"] / m) ** 2, s["syy"] / m - (s["sy"] / m) ** 2
    cov = s["sxy"] / m - s["sx"] * s["sy"] / m**2
    corr = float(cov / np.sqrt(var_x * var_y)) if var_x > 0 and var_y > 0 else None
    cols: dict[str, Any] = {"persona": list(PERSONAS)}
    for key in (
        "share",
        "age_mean",
        "age_sd",
        "nps_mean",
        "csat_mean",
        "conversion_multiplier",
        "awareness_touch_mean",
        "consideration_touch_mean",
        "regression_rate",
        "onboarding_rate",
        "churn_rate",
        "upgrade_rate",
        "advocacy_shift",
        "aov_mean",
    ):
        cols[key] = PERSONA[key]
    for key, names in (
        ("gender", GENDERS),
        ("region", REGIONS),
        ("device", DEVICES),
        ("aw", CHANNELS),
        ("co", CHANNELS),
    ):
        cols.update({f"{key}_{name}": PERSONA[key][:, j] for j, name in enumerate(names)})
    exp_t, exp_c = ratio("pp_t", "n_t"), ratio("pp_c", "n_c")
    return SynthTruth(
        personas=pd.DataFrame(cols),
        channel_effects=pd.DataFrame(
            {
                "channel": list(CHANNELS),
                "effect_consideration": EFF_C,
                "effect_purchase": EFF_P,
                "cost_per_touch": COST,
            }
        ),
        stage_rates={
            "awareness_to_consideration": ratio("sum_pc", "n"),
            "consideration_to_purchase": ratio("sum_pp", "n_cons"),
            "awareness_to_consideration_realised": ratio("real_cons", "n"),
            "consideration_to_purchase_realised": ratio("real_buy", "real_cons"),
            "awareness_to_consideration_target": 0.62,
            "consideration_to_purchase_target": 0.71,
            "base_consideration_logit": params.BASE_C,
            "base_purchase_logit": params.BASE_P,
            "calibration": "fixed intercepts: Newton steps on the mean probability, 400,000 "
            "customers, seed 0",
        },
        experiment={
            "name": "checkout_redesign",
            "variants": ["control", "treatment"],
            "split": 0.5,
            "relative_lift_conversion": LIFT_CONV,
            "relative_lift_revenue": LIFT_REV,
            "n_assigned": {"control": int(s["n_c"]), "treatment": int(s["n_t"])},
            "expected_conversion_rate": {"control": exp_c, "treatment": exp_t},
            "expected_relative_lift_conversion": exp_t / exp_c - 1 if exp_c and exp_t else None,
            "realised_conversion_rate": {
                "control": ratio("buy_c", "n_c"),
                "treatment": ratio("buy_t", "n_t"),
            },
            "covariate": "pre_period_sessions",
            "covariate_correlation_with_conversion": corr,
        },
        customer_persona=customer_persona,
        params={
            **run_params,
            "chunk_size": CHUNK,
            "z_effect_consideration": Z_CONS,
            "z_effect_purchase": Z_PURCH,
            "z_effect_order_value": Z_AOV,
            "covariate_model": "Poisson(exp(1 + 0.6 z))",
            "aov_sigma": AOV_SIGMA,
            "session_gap_seconds": SESSION_GAP,
            "repeat_view_rate": REPEAT_VIEW_P,
            "survey_rate": SURVEY_P,
            "second_survey_rate": SECOND_SURVEY_P,
            "window": "first touch uniform over the first half of [start, end + 1 day); "
            "events at or after end + 1 day are dropped",
        },
    )
