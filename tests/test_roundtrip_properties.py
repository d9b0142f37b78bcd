"""Property tests: whatever valid param or metric goes in comes back out unchanged."""

from __future__ import annotations

import math
import posixpath
import string
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack import Client
from nbtrack.tracking.validation import MAX_PARAM_VALUE_LENGTH

keys = st.text(
    alphabet=string.ascii_letters + string.digits + "_-. :/", min_size=1, max_size=40
).filter(  # keys that read as a different path are refused, as MLflow refuses them
    lambda k: posixpath.normpath(k) == k and k != "." and not k.startswith(("..", "/"))
)
param_values = st.one_of(
    st.text(max_size=200),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=5),
).filter(lambda v: len(str(v)) <= MAX_PARAM_VALUE_LENGTH)
metric_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(2**53), max_value=2**53),
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(params=st.dictionaries(keys, param_values, max_size=8))
def test_params_round_trip_as_strings(store_dir: Path, params: dict[str, object]) -> None:
    client = Client()
    run = client.create_run("0")
    client.log_params(run.info.run_id, params)
    got = client.get_run(run.info.run_id).data.params
    assert got == {k: str(v) for k, v in params.items()}
    # the search DataFrame carries them unchanged too (each column, run by run)
    client.set_tag(run.info.run_id, "other", "x")
    other = client.create_run("0").info.run_id
    client.log_param(other, "only-here", "y")
    frame = nbtrack.search_runs(["0"], order_by=["attributes.run_id"])
    row = frame.index[frame["run_id"] == run.info.run_id][0]
    for key, value in params.items():
        assert frame.loc[row, f"params.{key}"] == str(value)
    assert frame.loc[row, "tags.other"] == "x"
    # missing: None, as in MLflow's frame; pandas 3's text columns show it as NaN
    assert pd.isna(frame.loc[row, "params.only-here"])
    client.delete_run(run.info.run_id)
    client.delete_run(other)


@SETTINGS
@given(
    series=st.lists(
        st.tuples(st.integers(min_value=-(2**31), max_value=2**31), metric_values),
        min_size=1,
        max_size=30,
    )
)
def test_metric_history_round_trips_exactly(
    store_dir: Path, series: list[tuple[int, float]]
) -> None:
    client = Client()
    rid = client.create_run("0").info.run_id
    for i, (step, value) in enumerate(series):
        client.log_metric(rid, "m", value, timestamp=1000 + i, step=step)
    history = client.get_metric_history(rid, "m")
    expected = sorted(
        ((step, 1000 + i, float(v)) for i, (step, v) in enumerate(series)),
        key=lambda t: (t[0], t[1]),
    )
    assert [(m.step, m.timestamp) for m in history] == [(s, t) for s, t, _ in expected]
    for m, (_, _, v) in zip(history, expected, strict=True):
        assert (math.isnan(m.value) and math.isnan(v)) or m.value == v
    latest = client.get_run(rid).data.metrics["m"]
    best = max(expected, key=lambda t: (t[0], t[1]))[2]
    assert (math.isnan(latest) and math.isnan(best)) or latest == best
    nbtrack.flush()
