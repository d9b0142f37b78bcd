"""Model serving: request parsing, the scoring server over real HTTP, batch scoring from the CLI.

The server tests run uvicorn on 127.0.0.1 (a free port) around a real fitted scikit-learn model
and talk to it with urllib, as any client would: first the estimator in a small wrapper that
checks its input, then the same estimator saved as a model folder and loaded by
``nbtrack.pyfunc``, served in a process of its own by ``serve()``.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import nbtrack
from nbtrack.exceptions import InvalidInputError, ModelNotFoundError, ModelSchemaError
from nbtrack.models import serving
from nbtrack.models.serving import (
    INPUT_KEYS,
    ParsedRequest,
    build_app,
    format_predictions,
    parse_request,
    predict_parsed,
)
from nbtrack.models.serving.commands import predict_command, serve_command

JSON = "application/json"
CSV = "text/csv"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL_URI = "models:/iris/1"
MAX_BODY = 32 * 1024  # the test server's body limit: iris fits easily, 413 is cheap to reach


# -- the model ---------------------------------------------------------------------------------


def iris_features() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = FEATURES
    return X, y


class IrisModel:
    """A fitted LogisticRegression that checks its input as a loaded model does.

    ``params={"proba": True}`` returns class probabilities; ``params={"fail": True}`` raises.
    """

    def __init__(self) -> None:
        X, y = iris_features()
        self.estimator = LogisticRegression(max_iter=1000).fit(X, y)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        params = params or {}
        if params.get("fail"):
            raise RuntimeError("the model failed on purpose")
        if isinstance(data, dict):
            data = pd.DataFrame({name: np.ravel(values) for name, values in data.items()})
        if isinstance(data, np.ndarray):
            if data.ndim != 2 or data.shape[1] != len(FEATURES):
                raise ModelSchemaError(
                    f"expected rows of {len(FEATURES)} values, got an array of shape {data.shape}"
                )
            data = pd.DataFrame(data, columns=FEATURES)
        missing = [name for name in FEATURES if name not in data.columns]
        if missing:
            raise ModelSchemaError(f"missing column(s): {', '.join(missing)}")
        if params.get("proba"):
            return self.estimator.predict_proba(data[FEATURES])
        return self.estimator.predict(data[FEATURES])


@pytest.fixture(scope="module")
def model() -> IrisModel:
    return IrisModel()


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    features, _ = iris_features()
    return features.iloc[::7].reset_index(drop=True)  # 22 rows, every class


@pytest.fixture(scope="module")
def expected(model: IrisModel, X: pd.DataFrame) -> list[int]:
    return [int(label) for label in model.estimator.predict(X)]


# -- parse_request: every format -----------------------------------------------------------------


def test_dataframe_split() -> None:
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, None]]}}
    parsed = parse_request(json.dumps(body).encode(), JSON)
    assert isinstance(parsed, ParsedRequest)
    assert parsed.params is None
    expected = pd.DataFrame({"a": [1, 3], "b": [2.5, np.nan]})
    assert isinstance(parsed.data, pd.DataFrame)
    pd.testing.assert_frame_equal(parsed.data, expected)


def test_dataframe_split_with_index_and_without_columns() -> None:
    body = {"dataframe_split": {"index": ["r1", "r2"], "data": [[1, 2], [3, 4]]}}
    data = parse_request(json.dumps(body), JSON).data
    assert isinstance(data, pd.DataFrame)
    assert list(data.index) == ["r1", "r2"]
    assert list(data.columns) == [0, 1]
    assert data.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_dataframe_records() -> None:
    body = {"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2}]}
    data = parse_request(json.dumps(body).encode(), JSON).data
    assert isinstance(data, pd.DataFrame)
    assert list(data.columns) == ["a", "b"]
    assert data["a"].tolist() == [1, 2]
    assert data["b"].iloc[0] == "x" and pd.isna(data["b"].iloc[1])


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_instances_list_is_an_ndarray(key: str) -> None:
    data = parse_request(json.dumps({key: [[1, 2], [3, 4]]}).encode(), JSON).data
    assert isinstance(data, np.ndarray)
    assert data.shape == (2, 2) and data.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_instances_nulls_are_nan(key: str) -> None:
    data = parse_request(json.dumps({key: [[1, None], [3.5, 4]]}).encode(), JSON).data
    assert isinstance(data, np.ndarray)
    assert data.dtype == np.float64
    assert np.isnan(data[0, 1]) and data[1].tolist() == [3.5, 4.0]


def test_instances_of_strings_stay_strings() -> None:
    data = parse_request(b'{"instances": ["a", "b"]}', JSON).data
    assert isinstance(data, np.ndarray)
    assert data.tolist() == ["a", "b"]


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_instances_of_objects_are_a_dataframe(key: str) -> None:
    data = parse_request(json.dumps({key: [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}), JSON).data
    assert isinstance(data, pd.DataFrame)
    assert data.to_dict(orient="list") == {"a": [1, 3], "b": [2, 4]}


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_named_inputs_are_a_dict_of_arrays(key: str) -> None:
    data = parse_request(json.dumps({key: {"x": [[1, 2], [3, 4]], "y": ["a", "b"]}}), JSON).data
    assert isinstance(data, dict)
    assert set(data) == {"x", "y"}
    assert isinstance(data["x"], np.ndarray) and data["x"].shape == (2, 2)
    assert data["y"].tolist() == ["a", "b"]


def test_params_are_returned_separately() -> None:
    body = {"instances": [1, 2], "params": {"temperature": 0.5, "top": [1, 2]}}
    parsed = parse_request(json.dumps(body).encode(), JSON)
    assert parsed.params == {"temperature": 0.5, "top": [1, 2]}
    assert isinstance(parsed.data, np.ndarray) and parsed.data.tolist() == [1, 2]


def test_csv() -> None:
    data = parse_request(b"a,b,name\n1,2.5,x\n3,4,y\n", CSV).data
    expected = pd.DataFrame({"a": [1, 3], "b": [2.5, 4.0], "name": ["x", "y"]})
    assert isinstance(data, pd.DataFrame)
    pd.testing.assert_frame_equal(data, expected)


def test_csv_short_row_has_missing_values() -> None:
    data = parse_request(b"a,b\n1,2\n3\n", CSV).data
    assert isinstance(data, pd.DataFrame)
    assert data["a"].tolist() == [1, 3] and np.isnan(data["b"].iloc[1])


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "Application/JSON; Charset=UTF-8",
        'application/json;charset="utf-8"',
    ],
)
def test_content_type_case_and_parameters(content_type: str) -> None:
    data = parse_request('{"instances": ["caf\u00e9"]}'.encode(), content_type).data
    assert isinstance(data, np.ndarray) and data.tolist() == ["caf\u00e9"]


def test_declared_charset_is_used() -> None:
    body = '{"instances": ["caf\u00e9"]}'.encode("latin-1")
    data = parse_request(body, "application/json; charset=latin-1").data
    assert isinstance(data, np.ndarray) and data.tolist() == ["caf\u00e9"]


def test_csv_with_charset() -> None:
    data = parse_request("city\nK\u00f6ln\n".encode(), "text/csv; charset=utf-8").data
    assert isinstance(data, pd.DataFrame) and data["city"].tolist() == ["K\u00f6ln"]


# -- parse_request: every malformed body ---------------------------------------------------------

SPLIT = "dataframe_split"
MALFORMED_JSON = [
    ("not JSON", b'{"instances": [1, 2', "not valid JSON"),
    ("empty", b"", "empty"),
    ("blank", b"  \n", "empty"),
    ("a list", b"[[1, 2]]", "must be an object"),
    ("a number", b"3", "must be an object"),
    ("no input key", b'{"params": {"a": 1}}', "no input"),
    ("empty object", b"{}", "no input"),
    ("two input keys", b'{"instances": [1], "inputs": [1]}', "exactly one"),
    ("unknown key", b'{"instances": [1], "data": [1]}', "unknown key(s) 'data'"),
    ("misspelt key", b'{"dataframe_split_": {"data": [[1]]}}', "unknown key"),
    ("params not an object", b'{"instances": [1], "params": [1]}', "'params' must be"),
    ("split not an object", b'{"dataframe_split": [[1, 2]]}', "must be an object"),
    ("split without data", b'{"dataframe_split": {"columns": ["a"]}}', "no 'data'"),
    ("split unknown key", b'{"dataframe_split": {"data": [[1]], "rows": 1}}', "'rows'"),
    ("split data not a list", b'{"dataframe_split": {"data": {"a": 1}}}', "list of rows"),
    ("split data empty", b'{"dataframe_split": {"columns": ["a"], "data": []}}', "empty"),
    ("split row not a list", b'{"dataframe_split": {"data": [1, 2]}}', "row 0"),
    ("split ragged rows", b'{"dataframe_split": {"data": [[1, 2], [3]]}}', "row 1"),
    (
        "split row wider than columns",
        b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}',
        "'columns' names 1",
    ),
    (
        "split columns not names",
        b'{"dataframe_split": {"columns": "a", "data": [[1]]}}',
        "list of column names",
    ),
    (
        "split columns twice",
        b'{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}',
        "twice: a",
    ),
    (
        "split index of the wrong length",
        b'{"dataframe_split": {"index": [0], "data": [[1], [2]]}}',
        "one label per row (2)",
    ),
    ("records not a list", b'{"dataframe_records": {"a": 1}}', "list of objects"),
    ("records empty", b'{"dataframe_records": []}', "empty"),
    ("record not an object", b'{"dataframe_records": [{"a": 1}, [2]]}', "record 1"),
    ("instances ragged", b'{"instances": [[1, 2], [3]]}', "ragged"),
    ("instances mixed", b'{"instances": [1, [2, 3]]}', "ragged"),
    ("instances empty", b'{"instances": []}', "empty"),
    ("instances a number", b'{"instances": 3}', "must be a list"),
    ("inputs empty object", b'{"inputs": {}}', "empty object"),
    ("inputs ragged", b'{"inputs": {"x": [[1], [2, 3]]}}', "'inputs.x' is ragged"),
    ("instances objects and values", b'{"instances": [{"a": 1}, 2]}', "record 1"),
    ("not utf-8", b'{"instances": ["\xff"]}', "not valid utf-8"),
]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [case[1:] for case in MALFORMED_JSON],
    ids=[case[0] for case in MALFORMED_JSON],
)
def test_malformed_json_is_refused_clearly(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_request(body, JSON)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "body", [b"{}", b'{"params": {}}', b'{"instances": [1], "inputs": [1]}', b"[1]"]
)
def test_messages_name_the_accepted_keys(body: bytes) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_request(body, JSON)
    for key in INPUT_KEYS:
        assert repr(key) in str(caught.value)


MALFORMED_CSV = [
    ("empty", b"", "empty"),
    ("blank lines", b"\n\n", "empty"),
    ("header only", b"a,b\n", "no rows"),
    ("first row too long", b"a,b\n1,2,3\n", "Expected 2 fields in line 2, saw 3"),
    ("rows too long", b"a,b\n0,1,2\n1,3,4\n", "Expected 2 fields in line 2, saw 3"),
    ("row too long after a blank", b"a,b\n\n1,2,3\n", "Expected 2 fields in line 3, saw 3"),
    ("later row too long", b"a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
    ("open quote", b'a,b\n"1,2\n', "malformed CSV"),
    ("not utf-8", b"a\n\xff\n", "not valid utf-8"),
]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [case[1:] for case in MALFORMED_CSV],
    ids=[case[0] for case in MALFORMED_CSV],
)
def test_malformed_csv_is_refused_clearly(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_request(body, CSV)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/x-www-form-urlencoded", "application/jsonl", "csv"],
)
def test_unsupported_content_type_names_the_accepted_ones(content_type: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_request(b'{"instances": [1]}', content_type)
    assert "application/json" in str(caught.value) and "text/csv" in str(caught.value)


def test_unknown_charset() -> None:
    with pytest.raises(InvalidInputError, match="unknown charset 'klingon'"):
        parse_request(b'{"instances": [1]}', "application/json; charset=klingon")


def test_declared_utf8_refuses_other_bytes() -> None:
    with pytest.raises(InvalidInputError, match="not valid utf-8"):
        parse_request('{"instances": ["caf\u00e9"]}'.encode("latin-1"), JSON)


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
_KEYS = st.sampled_from([*INPUT_KEYS, "params", "columns", "data", "index", "x"])
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=3))
def test_any_json_body_parses_or_is_refused_clearly(document: dict[str, Any]) -> None:
    try:
        parsed = parse_request(json.dumps(document).encode(), JSON)
    except InvalidInputError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed.data, pd.DataFrame | np.ndarray | dict)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=list('ab1,."\n\r \t'), max_size=40))
def test_any_csv_body_parses_or_is_refused_clearly(text: str) -> None:
    try:
        parsed = parse_request(text.encode(), CSV)
    except InvalidInputError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed.data, pd.DataFrame) and len(parsed.data) > 0


# -- format_predictions and predict_parsed ------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (np.array([0, 2, 1]), [0, 2, 1]),
        (np.array([1.5, np.nan, np.inf, -np.inf]), [1.5, None, None, None]),
        (np.array([[0.25, 0.75], [np.nan, 1.0]]), [[0.25, 0.75], [None, 1.0]]),
        (np.array([True, False]), [True, False]),
        (np.array(["a", "b"]), ["a", "b"]),
        (pd.Series([1.0, np.nan], name="y"), [1.0, None]),
        (pd.Series(["a", None]), ["a", None]),
        (
            pd.DataFrame({"label": ["x", "y"], "score": [0.5, np.nan]}),
            [{"label": "x", "score": 0.5}, {"label": "y", "score": None}],
        ),
        ([np.int64(3), np.float32(0.5), float("nan"), None], [3, 0.5, None, None]),
        ((1, 2), [1, 2]),
        ({"a": np.array([1, 2]), "b": np.float64(0.5)}, {"a": [1, 2], "b": 0.5}),
        (np.float64(2.5), 2.5),
        (np.int32(7), 7),
        (3, 3),
        ("yes", "yes"),
        (pd.Series(pd.to_datetime(["2024-05-01", "NaT"])), ["2024-05-01T00:00:00", None]),
        (pd.NA, None),
    ],
)
def test_format_predictions(result: Any, expected: Any) -> None:
    formatted = format_predictions(result)
    assert formatted == {"predictions": expected}
    json.dumps(formatted, allow_nan=False)  # valid JSON: no NaN or Infinity left


def test_format_predictions_refuses_what_has_no_json_form() -> None:
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        format_predictions(object())


def test_predict_parsed_passes_params_only_when_given() -> None:
    calls: list[tuple[Any, ...]] = []

    class WithParams:
        def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
            calls.append((data, params))
            return data

    class WithKwargs:
        def predict(self, data: Any, **kwargs: Any) -> Any:
            calls.append((data, kwargs))
            return data

    class Plain:
        def predict(self, data: Any) -> Any:
            return data

    array = np.array([1])
    predict_parsed(WithParams(), ParsedRequest(array))
    predict_parsed(WithParams(), ParsedRequest(array, {"k": 1}))
    predict_parsed(WithKwargs(), ParsedRequest(array, {"k": 2}))
    assert [c[1] for c in calls] == [None, {"k": 1}, {"params": {"k": 2}}]
    assert predict_parsed(Plain(), ParsedRequest(array)) is array
    with pytest.raises(InvalidInputError, match="takes no params"):
        predict_parsed(Plain(), ParsedRequest(array, {"k": 1}))


def test_build_app_checks_its_arguments(model: IrisModel) -> None:
    with pytest.raises(TypeError, match="predict"):
        build_app(object())
    with pytest.raises(InvalidInputError, match="positive"):
        build_app(model, max_body_bytes=0)


def test_public_names() -> None:
    for name in serving.__all__:
        assert getattr(serving, name) is not None
    with pytest.raises(AttributeError):
        _ = serving.no_such_name


# -- the real server ---------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def http(
    url: str,
    data: bytes | Iterator[bytes] | None = None,
    content_type: str | None = None,
    method: str | None = None,
) -> tuple[int, bytes]:
    """One HTTP request; returns the status and the body, errors included."""
    request = urllib.request.Request(url, data=data, method=method)
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def score(base: str, body: bytes | str, content_type: str = JSON) -> tuple[int, Any]:
    """POST /invocations; returns the status and the decoded JSON answer."""
    raw = body.encode() if isinstance(body, str) else body
    status, answer = http(f"{base}/invocations", raw, content_type)
    return status, json.loads(answer)


def wait_until_up(base: str, alive: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll GET /ping until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped before answering /ping")
        try:
            if http(f"{base}/ping")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base}/ping did not answer within {timeout} s")


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until_up(base, thread.is_alive)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def server(model: IrisModel) -> Iterator[str]:
    with running(build_app(model, max_body_bytes=MAX_BODY)) as base:
        yield base


def bodies(X: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """The same rows in every accepted format."""
    split = {"columns": list(X.columns), "data": X.to_numpy().tolist()}
    records = X.to_dict(orient="records")
    return {
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), JSON),
        "dataframe_records": (json.dumps({"dataframe_records": records}).encode(), JSON),
        "instances rows": (json.dumps({"instances": X.to_numpy().tolist()}).encode(), JSON),
        "instances objects": (json.dumps({"instances": records}).encode(), JSON),
        "inputs rows": (json.dumps({"inputs": X.to_numpy().tolist()}).encode(), JSON),
        "inputs named": (json.dumps({"inputs": X.to_dict(orient="list")}).encode(), JSON),
        "csv": (X.to_csv(index=False).encode(), CSV),
        "csv with charset": (X.to_csv(index=False).encode(), "text/csv; charset=utf-8"),
        "json with charset": (
            json.dumps({"dataframe_split": split}).encode(),
            "application/json; charset=utf-8",
        ),
    }


FORMATS = list(bodies(iris_features()[0].head(1)))


def good_request(base: str, X: pd.DataFrame, expected: list[int]) -> None:
    status, answer = score(base, *bodies(X)["dataframe_split"])
    assert (status, answer) == (200, {"predictions": expected})


def test_ping_health_version(server: str) -> None:
    assert http(f"{server}/ping") == (200, b"\n")
    assert http(f"{server}/health") == (200, b"\n")
    assert http(f"{server}/version") == (200, nbtrack.__version__.encode())


@pytest.mark.parametrize("form", FORMATS)
def test_every_format_predicts_like_the_model(
    server: str, X: pd.DataFrame, expected: list[int], form: str
) -> None:
    body, content_type = bodies(X)[form]
    status, answer = score(server, body, content_type)
    assert status == 200, answer
    assert answer == {"predictions": expected}


def test_params_reach_predict(server: str, model: IrisModel, X: pd.DataFrame) -> None:
    body = {"dataframe_records": X.to_dict(orient="records"), "params": {"proba": True}}
    status, answer = score(server, json.dumps(body))
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], model.estimator.predict_proba(X))


BAD_REQUESTS = [
    ("not JSON", b'{"dataframe_split": ', JSON, "not valid JSON"),
    ("no input key", b'{"rows": [[1, 2, 3, 4]]}', JSON, "'dataframe_split'"),
    ("two input keys", b'{"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}', JSON, "one"),
    ("ragged", b'{"instances": [[1, 2, 3, 4], [1, 2]]}', JSON, "ragged"),
    ("empty CSV", b"", CSV, "empty"),
    ("ragged CSV", b"a,b\n1,2\n1,2,3\n", CSV, "Expected 2 fields"),
    (
        "missing column (ModelSchemaError)",
        b'{"dataframe_records": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]}',
        JSON,
        "missing column(s): petal_width",
    ),
    ("wrong width (ModelSchemaError)", b'{"instances": [[1, 2, 3]]}', JSON, "4 values"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_400_and_the_server_keeps_serving(
    server: str,
    X: pd.DataFrame,
    expected: list[int],
    body: bytes,
    content_type: str,
    fragment: str,
) -> None:
    status, answer = score(server, body, content_type)
    assert status == 400
    assert answer["error_code"] == "BAD_REQUEST"
    assert fragment in answer["message"]
    good_request(server, X, expected)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml"])
@pytest.mark.parametrize("size", [100, 10 * MAX_BODY])
def test_unsupported_content_type_gets_415(
    server: str, X: pd.DataFrame, expected: list[int], content_type: str | None, size: int
) -> None:
    # urllib sends application/x-www-form-urlencoded when no content type is given
    body = b'{"instances": [' + b"1," * (size // 2) + b"1]}"
    status, answer = http(f"{server}/invocations", body, content_type)
    assert status == 415
    message = json.loads(answer)["message"]
    assert "application/json" in message and "text/csv" in message
    good_request(server, X, expected)


def test_predict_failure_gets_400_logged_and_the_server_keeps_serving(
    server: str, X: pd.DataFrame, expected: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """As MLflow: an error the model's predict raises on the input is the request's (400), not
    the server's (it was a 500 INTERNAL_ERROR)."""
    body = {"instances": X.to_numpy().tolist(), "params": {"fail": True}}
    with caplog.at_level(logging.WARNING, logger="nbtrack.models.serving.app"):
        status, answer = score(server, json.dumps(body))
    assert status == 400
    assert answer == {
        "error_code": "BAD_REQUEST",
        "message": "the model's predict failed on the input: RuntimeError: the model failed on "
                   "purpose",
    }
    logged = [r for r in caplog.records if r.name == "nbtrack.models.serving.app"]
    assert logged and logged[0].exc_info is not None
    assert "the model failed on purpose" in caplog.text
    assert "Traceback" in caplog.text
    good_request(server, X, expected)


def test_a_server_fault_gets_500_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Predictions the server cannot write as JSON are its own fault, not the request's."""

    class NoJSON:
        def predict(self, data: Any) -> Any:
            return object()

    with caplog.at_level(logging.ERROR, logger="nbtrack.models.serving.app"), \
            running(build_app(NoJSON())) as base:
        status, answer = score(base, json.dumps({"instances": [[1.0]]}))
    assert status == 500 and answer["error_code"] == "INTERNAL_ERROR"
    assert "cannot be written as JSON" in answer["message"] and "Traceback" in caplog.text


@pytest.mark.parametrize("size", [MAX_BODY + 100, 40 * MAX_BODY])
def test_body_over_the_limit_gets_413(
    server: str, X: pd.DataFrame, expected: list[int], size: int
) -> None:
    big = b'{"instances": [' + b"1," * (size // 2) + b"1]}"
    status, answer = score(server, big)  # Content-Length says it is too big
    assert status == 413
    assert answer["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert str(MAX_BODY) in answer["message"]
    good_request(server, X, expected)

    chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))
    status, raw = http(f"{server}/invocations", chunks, JSON)  # chunked: no Content-Length
    assert status == 413
    assert json.loads(raw)["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    good_request(server, X, expected)


def test_expect_100_continue_is_refused_before_the_body_is_sent(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    head = (
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * MAX_BODY}\r\nExpect: 100-continue\r\n\r\n"
    )
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(head.encode())
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_chunked_body_under_the_limit(server: str, X: pd.DataFrame, expected: list[int]) -> None:
    body, _ = bodies(X)["csv"]
    chunks = (body[i : i + 100] for i in range(0, len(body), 100))
    status, raw = http(f"{server}/invocations", chunks, CSV)
    assert (status, json.loads(raw)) == (200, {"predictions": expected})


def test_wrong_method_and_unknown_route(server: str) -> None:
    assert http(f"{server}/invocations")[0] == 405
    assert http(f"{server}/ping", b"", JSON, method="POST")[0] == 405
    assert http(f"{server}/nothing")[0] == 404


def test_concurrent_requests(server: str, model: IrisModel, X: pd.DataFrame) -> None:
    slices = [X.iloc[i : i + 3] for i in range(0, len(X), 3)]

    def one(part: pd.DataFrame) -> tuple[int, Any]:
        return score(server, json.dumps({"dataframe_records": part.to_dict(orient="records")}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, slices))
    for part, (status, answer) in zip(slices, answers, strict=True):
        assert status == 200
        assert answer["predictions"] == model.estimator.predict(part).tolist()


def test_a_plain_estimator_without_params(
    model: IrisModel, X: pd.DataFrame, expected: list[int]
) -> None:
    with running(build_app(model.estimator)) as base:
        status, answer = score(base, json.dumps({"dataframe_split": X.to_dict(orient="split")}))
        assert (status, answer) == (200, {"predictions": expected})
        body = {"dataframe_records": X.to_dict(orient="records"), "params": {"proba": True}}
        status, answer = score(base, json.dumps(body))
        assert status == 400
        assert "takes no params" in answer["message"]


# -- a saved model, loaded by nbtrack.pyfunc --------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(
    tmp_path_factory: pytest.TempPathFactory, model: IrisModel, X: pd.DataFrame
) -> Path:
    """The iris estimator saved as an nbtrack model folder (signature from an input example)."""
    import nbtrack.sklearn

    path = tmp_path_factory.mktemp("models") / "iris"
    nbtrack.sklearn.save_model(model.estimator, path, input_example=X.head(3))
    return path


def test_a_saved_model_served(saved_model: Path, X: pd.DataFrame, expected: list[int]) -> None:
    with running(build_app(serving.load_model(str(saved_model)))) as base:
        for form, (body, content_type) in bodies(X).items():
            status, answer = score(base, body, content_type)
            assert (status, answer) == (200, {"predictions": expected}), form
        status, answer = score(base, json.dumps({"dataframe_records": [{"sepal_length": 1.0}]}))
        assert status == 400
        assert answer["error_code"] == "BAD_REQUEST" and "petal_width" in answer["message"]
        # A NaN the estimator refuses: the request's fault, a 400 with scikit-learn's reason.
        row = {**X.iloc[0].to_dict(), "petal_width": None}
        status, answer = score(base, json.dumps({"dataframe_records": [row]}))
        assert (status, answer["error_code"]) == (400, "BAD_REQUEST")
        assert "ValueError" in answer["message"] and "NaN" in answer["message"]
        good_request(base, X, expected)


SERVE_SCRIPT = textwrap.dedent(
    """
    from nbtrack.models.serving import serve
    serve({uri!r}, port=0, log_level="warning")
    """
)


def test_serve_in_a_process(saved_model: Path, X: pd.DataFrame, expected: list[int]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT.format(uri=str(saved_model))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        seen: list[str] = []
        url = None
        pattern = re.compile(
            rf"Serving {re.escape(str(saved_model))} at (http://127\.0\.0\.1:\d+) "
        )
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "".join(seen)
                continue
            seen.append(line)
            found = pattern.search(line)
            url = found.group(1) if found else None
        assert url is not None, "".join(seen)
        wait_until_up(url, lambda: process.poll() is None)
        for form in ("dataframe_split", "csv"):
            status, answer = score(url, *bodies(X)[form])
            assert (status, answer) == (200, {"predictions": expected})
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_predict_command_with_a_saved_model(
    saved_model: Path, tmp_path: Path, X: pd.DataFrame, expected: list[int]
) -> None:
    X.to_csv(tmp_path / "batch.csv", index=False)
    out = tmp_path / "predictions.csv"
    args = [str(saved_model), "-i", str(tmp_path / "batch.csv"), "-o", str(out)]
    result = CliRunner().invoke(predict_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["prediction"].tolist() == expected


# -- the commands and serve(), with a stand-in loader ----------------------------------------


@pytest.fixture
def fake_pyfunc(monkeypatch: pytest.MonkeyPatch, model: IrisModel, tmp_path: Path) -> list[str]:
    """``nbtrack.pyfunc.load_model`` loading the iris model for MODEL_URI; returns the URIs.
    The commands look ``models:/`` URIs up in a store, which must exist: an empty one."""
    loaded: list[str] = []
    nbtrack.Client(tmp_path / "store")  # made now
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "store"))

    def load_model(uri: str) -> IrisModel:
        loaded.append(uri)
        if uri != MODEL_URI:
            raise ModelNotFoundError(f"no saved model at {uri}")
        return model

    module = types.ModuleType("nbtrack.pyfunc")
    module.load_model = load_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nbtrack.pyfunc", module)
    return loaded


def test_serve_refuses_a_taken_port(fake_pyfunc: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            serving.serve(MODEL_URI, port=port)


@pytest.mark.parametrize(("port", "log_level"), [(70000, "info"), (-1, "info"), (0, "loud")])
def test_serve_checks_its_arguments(fake_pyfunc: list[str], port: int, log_level: str) -> None:
    with pytest.raises(InvalidInputError):
        serving.serve(MODEL_URI, port=port, log_level=log_level)


def predict(*args: str) -> Any:
    return CliRunner().invoke(predict_command, list(args), catch_exceptions=False)


def test_predict_csv_to_csv(
    fake_pyfunc: list[str], tmp_path: Path, X: pd.DataFrame, expected: list[int]
) -> None:
    X.to_csv(tmp_path / "batch.csv", index=False)
    out = tmp_path / "predictions.csv"
    result = predict(MODEL_URI, "-i", str(tmp_path / "batch.csv"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert fake_pyfunc == [MODEL_URI]
    written = pd.read_csv(out)
    assert list(written.columns) == ["prediction"]
    assert written["prediction"].tolist() == expected


def test_predict_csv_to_stdout(
    fake_pyfunc: list[str], tmp_path: Path, X: pd.DataFrame, expected: list[int]
) -> None:
    X.to_csv(tmp_path / "batch.csv", index=False)
    result = predict(MODEL_URI, "--input-path", str(tmp_path / "batch.csv"))
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.StringIO(result.output))["prediction"].tolist() == expected


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances rows"])
def test_predict_json_to_json(
    fake_pyfunc: list[str], tmp_path: Path, X: pd.DataFrame, expected: list[int], form: str
) -> None:
    (tmp_path / "batch.json").write_bytes(bodies(X)[form][0])
    out = tmp_path / "predictions.json"
    result = predict(MODEL_URI, "-i", str(tmp_path / "batch.json"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"predictions": expected}


def test_predict_json_params_to_csv_columns(
    fake_pyfunc: list[str], tmp_path: Path, model: IrisModel, X: pd.DataFrame
) -> None:
    body = {"dataframe_records": X.to_dict(orient="records"), "params": {"proba": True}}
    (tmp_path / "batch.data").write_text(json.dumps(body))
    out = tmp_path / "proba.csv"
    result = predict(MODEL_URI, "-i", str(tmp_path / "batch.data"), "-o", str(out), "-t", "json")
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert list(written.columns) == ["prediction_0", "prediction_1", "prediction_2"]
    np.testing.assert_allclose(written.to_numpy(), model.estimator.predict_proba(X))


def test_predict_dataframe_result_keeps_its_columns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Labeller:
        def predict(self, data: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"label": ["small" if v < 2 else "big" for v in data["x"]]})

    module = types.ModuleType("nbtrack.pyfunc")
    module.load_model = lambda uri: Labeller()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nbtrack.pyfunc", module)
    (tmp_path / "in.csv").write_text("x\n1\n3\n")
    result = predict("m", "-i", str(tmp_path / "in.csv"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["label", "small", "big"]


def test_predict_errors_are_clear(fake_pyfunc: list[str], tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    result = predict(MODEL_URI, "-i", str(tmp_path / "empty.csv"))
    assert result.exit_code == 1
    assert "empty.csv" in result.output and "CSV body is empty" in result.output

    (tmp_path / "bad.json").write_text('{"rows": []}')
    result = predict(MODEL_URI, "-i", str(tmp_path / "bad.json"))
    assert result.exit_code == 1 and "'dataframe_split'" in result.output

    (tmp_path / "batch.txt").write_text("a\n1\n")
    result = predict(MODEL_URI, "-i", str(tmp_path / "batch.txt"))
    assert result.exit_code == 2 and "--content-type" in result.output

    (tmp_path / "short.csv").write_text("sepal_length\n1\n")
    result = predict(MODEL_URI, "-i", str(tmp_path / "short.csv"))
    assert result.exit_code == 1 and "missing column(s)" in result.output

    result = predict("models:/nope/1", "-i", str(tmp_path / "short.csv"))
    assert result.exit_code == 1 and "no saved model at models:/nope/1" in result.output

    result = predict(MODEL_URI, "-i", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output

    result = predict(MODEL_URI)
    assert result.exit_code == 2 and "--input-path" in result.output

    result = predict(MODEL_URI, "-i", str(tmp_path / "short.csv"), "-t", "xml")
    assert result.exit_code == 2 and "'csv', 'json'" in result.output


def test_serve_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, str, int]] = []
    nbtrack.Client(tmp_path / "store")  # where models:/ URIs are looked up
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "store"))

    def fake_serve(model_uri: str, host: str = "127.0.0.1", port: int = 5001) -> None:
        calls.append((model_uri, host, port))
        if port == 5002:
            raise OSError("cannot listen on 127.0.0.1:5002: Address already in use")

    monkeypatch.setattr("nbtrack.models.serving.server.serve", fake_serve)
    runner = CliRunner()
    assert runner.invoke(serve_command, [MODEL_URI]).exit_code == 0
    result = runner.invoke(serve_command, [MODEL_URI, "--host", "0.0.0.0", "-p", "8080"])
    assert result.exit_code == 0
    assert calls == [(MODEL_URI, "127.0.0.1", 5001), (MODEL_URI, "0.0.0.0", 8080)]

    result = runner.invoke(serve_command, [MODEL_URI, "--port", "5002"])
    assert result.exit_code == 1 and "Address already in use" in result.output
    result = runner.invoke(serve_command, [MODEL_URI, "--port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output
