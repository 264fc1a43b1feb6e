"""Tests of `cjlib.synth`: determinism, files on disk, data contract, planted truth recovered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cjlib import synth
from cjlib.synth import blocks, generate, write

TABLES = ("events", "customers", "experiments", "surveys", "costs")
COLUMNS = {
    "events": ["customer_id", "timestamp", "event", "channel", "revenue", "session_id", "device"],
    "customers": [
        "customer_id",
        "age",
        "gender",
        "region",
        "device",
        "signup_date",
        "acquisition_channel",
    ],
    "experiments": ["customer_id", "experiment", "variant", "assigned_at", "pre_period_sessions"],
    "surveys": ["customer_id", "timestamp", "stage", "touchpoint", "nps", "csat", "comment"],
    "costs": ["channel", "period", "spend"],
}
AWARENESS = {"ad_impression", "content_view", "first_visit"}
CONSIDERATION = {"product_view", "compare_products", "add_to_cart", "begin_checkout"}
REVENUE_EVENTS = {"purchase", "repeat_purchase", "upgrade"}
TIME_COLUMNS = ("timestamp", "assigned_at")


@pytest.fixture(scope="module")
def big() -> synth.SynthData:
    return generate(20_000, random_state=7)


@pytest.fixture(scope="module")
def small() -> synth.SynthData:
    return generate(2_000, random_state=3)


def _assert_same(a: synth.SynthData, b: synth.SynthData) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Bring a frame read back from disk to the dtypes of `generate`."""
    df = df.copy()
    for col in TIME_COLUMNS:
        if col in df:
            df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[s, UTC]")
    if "signup_date" in df:
        df["signup_date"] = pd.to_datetime(df["signup_date"]).astype("datetime64[s]")
    return df


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    a, b = generate(1_500, random_state=11), generate(1_500, random_state=11)
    _assert_same(a, b)
    assert json.dumps(a.truth.to_dict(), sort_keys=True) == json.dumps(
        b.truth.to_dict(), sort_keys=True
    )
    c = generate(1_500, random_state=12)
    assert not a.events.equals(c.events)
    assert not a.customers.equals(c.customers)


def test_chunk_seed_is_a_spawned_child() -> None:
    """The chunk seeds built from spawn keys are the documented ``spawn`` children."""
    child = np.random.SeedSequence(5).spawn(2)[0].spawn(3)[2]
    built = np.random.SeedSequence(5, spawn_key=(0, 2))
    assert np.array_equal(child.generate_state(4), built.generate_state(4))


def test_csv_write_is_byte_identical_and_equals_generate(tmp_path: Path) -> None:
    n = 6_000  # two seeded chunks
    a = write(tmp_path / "a", n, random_state=5, fmt="csv", progress=False)
    b = write(tmp_path / "b", n, random_state=5, fmt="csv", progress=False, block_size=5_000)
    assert set(a) == {*TABLES, "customer_persona", "truth"}
    for name, path in a.items():
        assert path.read_bytes() == b[name].read_bytes(), name
    data = generate(n, random_state=5)
    for name in TABLES:
        back = _normalise(pd.read_csv(a[name]))
        pd.testing.assert_frame_equal(
            back, getattr(data, name), check_exact=False, rtol=0, atol=1e-9
        )
    text = a["events"].read_text().splitlines()
    assert text[0] == ",".join(COLUMNS["events"])
    stamp, revenue = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), re.compile(r"\d+\.\d\d")
    rows = [line.split(",") for line in text[1:2_000]]
    assert all(stamp.fullmatch(r[1]) for r in rows)
    assert all(revenue.fullmatch(r[4]) for r in rows if r[4])
    truth = json.loads(a["truth"].read_text())
    expected = data.truth.to_dict()
    expected["customer_persona"] = {"file": "customer_persona.csv"}
    assert truth == json.loads(json.dumps(expected))
    persona = pd.read_csv(a["customer_persona"])
    pd.testing.assert_frame_equal(persona, data.truth.customer_persona)


def test_parquet_write_appends_row_groups_per_block(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    paths = write(
        tmp_path / "p", 12_000, random_state=2, fmt="parquet", progress=False, block_size=5_000
    )
    assert pq.ParquetFile(paths["events"]).num_row_groups == 3
    data = generate(12_000, random_state=2)
    for name in TABLES:
        back = _normalise(pd.read_parquet(paths[name]))
        pd.testing.assert_frame_equal(back, getattr(data, name))


def test_block_size_does_not_change_rows() -> None:
    """Memory boundedness: blocks are independent seeded units, the block size is irrelevant."""
    default, blocked = (
        generate(12_000, random_state=9),
        generate(12_000, random_state=9, block_size=5_000),
    )
    _assert_same(default, blocked)
    ids = blocked.customers["customer_id"]
    assert ids.is_unique and ids.is_monotonic_increasing and len(ids) == 12_000
    assert blocked.experiments["customer_id"].is_unique
    assert set(blocked.events["customer_id"]) == set(ids)


def test_planted_stage_rates_recovered(big: synth.SynthData) -> None:
    """Targets 0.62 and 0.71 are the issue's industry figures (38% / 29% lost per stage)."""
    ev = big.events
    considered = set(ev.loc[ev["event"].isin(CONSIDERATION), "customer_id"])
    bought = set(ev.loc[ev["event"] == "purchase", "customer_id"])
    p_consider = len(considered) / len(big.customers)
    p_buy = len(bought & considered) / len(considered)
    assert abs(p_consider - 0.62) < 0.03
    assert abs(p_buy - 0.71) < 0.03
    assert bought <= considered
    rates = big.truth.stage_rates
    assert abs(rates["awareness_to_consideration_realised"] - p_consider) < 1e-12
    assert abs(rates["awareness_to_consideration"] - 0.62) < 0.02


def test_experiment_lift_and_covariate(big: synth.SynthData) -> None:
    """Realised treatment/control conversion ratio within 3.5 binomial standard errors.

    The standard error of log(p_t / p_c) is sqrt((1-p_t)/(n_t p_t) + (1-p_c)/(n_c p_c)),
    about 0.012 here; the planted lift is +10% (slightly less after clipping at 0.99, which the
    truth reports as the expected lift).
    """
    ex = big.experiments
    bought = big.events.loc[big.events["event"] == "purchase", "customer_id"]
    conv = ex["customer_id"].isin(set(bought)).to_numpy(float)
    treat = (ex["variant"] == "treatment").to_numpy()
    p_t, p_c, n_t, n_c = conv[treat].mean(), conv[~treat].mean(), treat.sum(), (~treat).sum()
    se = np.sqrt((1 - p_t) / (n_t * p_t) + (1 - p_c) / (n_c * p_c))
    truth = big.truth.experiment
    assert abs(truth["expected_relative_lift_conversion"] - 0.10) < 0.01
    expected_lift = truth["expected_relative_lift_conversion"]
    assert abs(np.log(p_t / p_c) - np.log(1 + expected_lift)) < 3.5 * se
    assert abs(n_t / (n_t + n_c) - 0.5) < 0.02
    corr = np.corrcoef(ex["pre_period_sessions"], conv)[0, 1]
    assert corr > 0.1
    assert abs(corr - truth["covariate_correlation_with_conversion"]) < 1e-9
    # +5% first-order value for treatment, within 3 standard errors of the ratio of means
    first = big.events[big.events["event"] == "purchase"].set_index("customer_id")["revenue"]
    rev = ex.set_index("customer_id").join(first, how="inner")
    r_t, r_c = (rev.loc[rev["variant"] == v, "revenue"] for v in ("treatment", "control"))
    se_r = np.sqrt(r_t.var() / len(r_t) / r_t.mean() ** 2 + r_c.var() / len(r_c) / r_c.mean() ** 2)
    assert abs(np.log(r_t.mean() / r_c.mean()) - np.log(1.05)) < 3 * se_r


def test_personas_differ_as_planted(big: synth.SynthData) -> None:
    truth = big.truth
    labels = truth.customer_persona
    assert "persona" not in big.customers.columns
    planted = truth.personas.set_index("persona")
    nps = big.surveys.merge(labels, on="customer_id").groupby("persona")["nps"].mean()
    assert list(nps.sort_values().index) == list(planted["nps_mean"].sort_values().index)
    cust = big.customers.merge(labels, on="customer_id")
    mix = pd.crosstab(cust["persona"], cust["acquisition_channel"], normalize="index")
    for persona, row in mix.iterrows():
        aw = planted.loc[persona, [f"aw_{c}" for c in synth.CHANNELS]]
        assert row.idxmax() == aw.idxmax().removeprefix("aw_")
    tv = [
        0.5 * (mix.loc[a] - mix.loc[b]).abs().sum() for a in mix.index for b in mix.index if a < b
    ]
    assert min(tv) > 0.2
    mobile = (cust["device"] == "mobile").groupby(cust["persona"]).mean()
    assert mobile["Mobile impulse buyers"] > 0.8 > mobile["Careful researchers"]
    shares = labels["persona"].value_counts(normalize=True)
    assert np.allclose(shares[planted.index], planted["share"], atol=0.02)


def test_data_contract(small: synth.SynthData) -> None:
    d = small
    for name, cols in COLUMNS.items():
        assert list(getattr(d, name).columns) == cols, name
    ev = d.events
    assert str(ev["timestamp"].dtype) == "datetime64[s, UTC]"
    assert str(d.experiments["assigned_at"].dtype) == "datetime64[s, UTC]"
    for name, col in (("events", "customer_id"), ("events", "channel"), ("surveys", "comment")):
        assert pd.api.types.is_string_dtype(getattr(d, name)[col])
    assert ev["revenue"].dtype == np.float64 and d.surveys["nps"].dtype == np.int64
    assert ev["customer_id"].str.fullmatch(r"C\d{4}").all()
    assert set(ev["channel"].dropna()) <= set(synth.CHANNELS)
    assert set(ev["event"]) <= set(synth.EVENTS)
    # revenue only and always on revenue events, never negative; channel only on touches
    assert (ev["revenue"].notna() == ev["event"].isin(REVENUE_EVENTS)).all()
    assert (ev["revenue"].dropna() >= 0).all()
    assert (ev["channel"].notna() == ev["event"].isin(AWARENESS | CONSIDERATION)).all()
    order = ev.sort_values(["customer_id", "timestamp"], kind="stable")
    assert order.index.equals(ev.index)
    lo, hi = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2027-01-01", tz="UTC")
    assert ev["timestamp"].between(lo, hi, inclusive="left").all()
    # sessions: a new one when the gap from the previous event exceeds 30 minutes
    gap = ev.groupby("customer_id")["timestamp"].diff()
    new = gap.isna() | (gap > pd.Timedelta(minutes=30))
    number = new.astype(int).groupby(ev["customer_id"]).cumsum()
    expected = ev["customer_id"] + "-S" + number.astype(str).str.zfill(3)
    assert (ev["session_id"] == expected).all()
    # customers: signup date and acquisition channel come from the first event (a touch)
    first = ev.groupby("customer_id").first()
    cust = d.customers.set_index("customer_id")
    assert (first["event"].isin(AWARENESS)).all()
    assert (cust["acquisition_channel"] == first["channel"]).all()
    assert (cust["signup_date"] == first["timestamp"].dt.tz_localize(None).dt.floor("D")).all()
    assert set(cust["gender"]) <= {"female", "male", "other"} and cust["age"].ge(18).all()
    # surveys
    s = d.surveys
    assert s["nps"].between(0, 10).all() and s["csat"].between(1, 5).all()
    assert set(s["stage"]) <= set(synth.STAGES)
    assert set(s["touchpoint"]) <= {*synth.CHANNELS, "support", "checkout"}
    answered = s["customer_id"].value_counts()
    assert 0.25 < len(answered) / len(d.customers) < 0.33 and (answered == 2).any()
    # experiment customers have a consideration event at assigned_at and none before
    cons = ev[ev["event"].isin(CONSIDERATION)].groupby("customer_id")["timestamp"].min()
    ex = d.experiments.set_index("customer_id")
    assert (cons.reindex(ex.index) <= ex["assigned_at"]).all()
    assert (cons.reindex(ex.index) == ex["assigned_at"]).all()
    assert set(ex["variant"]) == {"control", "treatment"}
    # regressions: consideration -> awareness, and product_view right before repeat_purchase
    stage = np.where(
        ev["event"].isin(AWARENESS), 0, np.where(ev["event"].isin(CONSIDERATION), 1, 2)
    )
    same = ev["customer_id"].eq(ev["customer_id"].shift())
    assert (same & (pd.Series(stage).shift().eq(1)) & (stage == 0)).any()
    prev = ev["event"].shift()
    assert (same & (ev["event"] == "repeat_purchase") & (prev == "product_view")).any()


def test_costs_follow_touches(small: synth.SynthData) -> None:
    costs, ev = small.costs, small.events
    assert len(costs) == 9 * 12 and not costs.duplicated(["channel", "period"]).any()
    assert sorted(costs["period"].unique()) == [f"2026-{m:02d}" for m in range(1, 13)]
    touches = (
        ev.dropna(subset=["channel"])
        .assign(period=lambda x: x["timestamp"].dt.strftime("%Y-%m"))
        .groupby(["channel", "period"])
        .size()
    )
    cost = small.truth.channel_effects.set_index("channel")["cost_per_touch"]
    merged = costs.set_index(["channel", "period"]).join(touches.rename("n")).fillna({"n": 0})
    planned = merged["n"] * cost.reindex(merged.index.get_level_values(0)).to_numpy()
    ok = planned > 10
    ratio = merged.loc[ok, "spend"] / planned[ok]
    assert ratio.between(np.exp(-0.25), np.exp(0.25)).all()  # 5 sd of the lognormal noise
    assert (merged.loc[merged["n"] == 0, "spend"] == 0).all()


def test_truth_is_json_able_and_consistent(small: synth.SynthData) -> None:
    t = small.truth
    back = json.loads(json.dumps(t.to_dict()))
    assert len(back["customer_persona"]) == len(small.customers)
    shares = t.personas["share"]
    assert abs(shares.sum() - 1) < 1e-12 and len(shares) == 4
    eff = t.channel_effects.set_index("channel")
    assert eff.loc["display", "effect_purchase"] == 0
    assert min(eff.loc["referral", "effect_purchase"], eff.loc["store", "effect_purchase"]) > 0.3
    assert t.params["n_customers"] == 2_000 and t.params["seed"] == 3


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"n_customers": True}, "n_customers"),
        ({"random_state": -1}, "random_state"),
        ({"start": "not a date"}, "start"),
        ({"end": "2025-01-01"}, "end"),
        ({"block_size": 1_234}, "block_size"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, param: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=param) as info:
        generate(**{"n_customers": 10, **kwargs})
    assert "got" in str(info.value)
    with pytest.raises(ValueError, match=param):
        write(tmp_path / "out", **{"n_customers": 10, **kwargs})
    with pytest.raises(ValueError, match="fmt"):
        write(tmp_path / "out", 10, fmt="xlsx")
    assert not any(tmp_path.iterdir())


def test_zero_message_is_clear() -> None:
    with pytest.raises(ValueError, match=r"n_customers must be an int >= 1, got 0"):
        generate(0)


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = blocks.simulate_chunk, []

    def failing(*args: object, **kwargs: object) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(blocks, "simulate_chunk", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(tmp_path / "out", 12_000, fmt="parquet", progress=False, block_size=5_000)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        write(out, 50, progress=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    paths = write(out, 50, progress=False, overwrite=True)
    assert not (out / "keep.txt").exists() and paths["events"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
