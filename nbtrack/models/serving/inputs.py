"""Request bodies in, predictions out: MLflow's scoring-server formats.

A request body is JSON or CSV. JSON holds exactly one of these keys, plus an optional ``params``
object that is passed on to ``predict``:

``dataframe_split``
    ``{"columns": [...], "data": [[...], ...], "index": [...]}`` (``columns`` and ``index``
    optional), a :class:`pandas.DataFrame`.
``dataframe_records``
    ``[{"column": value, ...}, ...]``, a :class:`pandas.DataFrame`.
``instances`` / ``inputs``
    a list (a :class:`numpy.ndarray`), a list of objects (a DataFrame), or an object of
    name -> list (a dict of ndarrays).

CSV (``text/csv``) is read by :func:`pandas.read_csv`, its first line the header; a row
with fewer fields than the header has its last values missing (NaN), a row with more is refused.

Predictions go back as ``{"predictions": ...}``: arrays, Series and lists as lists, a DataFrame
as records, NaN and infinities as ``null``.
"""

from __future__ import annotations

import codecs
import datetime
import inspect
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from ...exceptions import InvalidInputError

__all__ = [
    "CONTENT_TYPES",
    "INPUT_KEYS",
    "ModelInput",
    "ParsedRequest",
    "accepts_params",
    "format_predictions",
    "parse_content_type",
    "parse_request",
    "predict_parsed",
]

#: The media types a request body may have.
CONTENT_TYPES = ("application/json", "text/csv")

#: The keys of a JSON body that hold the data; a body has exactly one of them.
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

_SPLIT_KEYS = ("columns", "data", "index")

ModelInput: TypeAlias = pd.DataFrame | np.ndarray | dict[str, np.ndarray]
"""What :func:`parse_request` hands to a model's ``predict``."""


@dataclass(frozen=True)
class ParsedRequest:
    """A parsed request body.

    Attributes
    ----------
    data : pandas.DataFrame, numpy.ndarray or dict of str to numpy.ndarray
        The model input.
    params : dict or None
        The body's top-level ``params`` object (JSON only), for ``predict(data, params=...)``;
        None when the body has none.
    """

    data: ModelInput
    params: dict[str, Any] | None = None


def parse_content_type(content_type: str) -> tuple[str, str]:
    """Split a ``Content-Type`` header into its media type and charset.

    Parameters
    ----------
    content_type : str
        The header, e.g. ``"application/json; charset=utf-8"``.

    Returns
    -------
    tuple of str
        The media type, lower case (one of :data:`CONTENT_TYPES`), and the charset (``"utf-8"``
        when the header names none).

    Raises
    ------
    InvalidInputError
        The media type is not one of :data:`CONTENT_TYPES`, or the charset is unknown.
    """
    media_type, *parameters = (part.strip() for part in (content_type or "").split(";"))
    media_type = media_type.lower()
    if media_type not in CONTENT_TYPES:
        shown = f"{content_type!r}" if content_type else "none"
        raise InvalidInputError(
            f"unsupported content type {shown}: send one of "
            f"{', '.join(CONTENT_TYPES)} (e.g. the header 'Content-Type: application/json')"
        )
    charset = "utf-8"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            try:
                codecs.lookup(charset)
            except LookupError:
                raise InvalidInputError(
                    f"unknown charset {charset!r} in the content type: use utf-8"
                ) from None
    return media_type, charset


def parse_request(body: bytes | str, content_type: str) -> ParsedRequest:
    """Parse a scoring request body into what a model's ``predict`` takes.

    Parameters
    ----------
    body : bytes or str
        The request body.
    content_type : str
        Its ``Content-Type``: ``application/json`` or ``text/csv``, with an optional
        ``charset`` parameter (utf-8 by default).

    Returns
    -------
    ParsedRequest
        The model input (a DataFrame, an ndarray, or a dict of ndarrays) and the ``params``.

    Raises
    ------
    InvalidInputError
        The content type is not supported, or the body is malformed; the message says what is
        wrong and what is accepted.

    Examples
    --------
    >>> body = b'{"dataframe_split": {"columns": ["x", "y"], "data": [[1, 2], [3, 4]]}}'
    >>> parse_request(body, "application/json").data
       x  y
    0  1  2
    1  3  4
    """
    media_type, charset = parse_content_type(content_type)
    if isinstance(body, bytes):
        try:
            text = body.decode(charset)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"the body is not valid {charset} text ({exc.reason} at byte {exc.start})"
            ) from None
    else:
        text = body
    if media_type == "text/csv":
        return ParsedRequest(_parse_csv(text))
    return _parse_json(text)


def predict_parsed(model: Any, request: ParsedRequest) -> Any:
    """Call ``model.predict`` on a parsed request, passing ``params`` only when there are some.

    Parameters
    ----------
    model : object
        Anything with ``predict(data)`` or ``predict(data, params=None)``.
    request : ParsedRequest
        What :func:`parse_request` returned.

    Returns
    -------
    object
        What ``predict`` returned.

    Raises
    ------
    InvalidInputError
        The request has ``params`` but ``model.predict`` takes none.
    """
    if request.params is None:
        return model.predict(request.data)
    if not accepts_params(model):
        raise InvalidInputError(
            "this model's predict takes no params: remove 'params' from the request"
        )
    return model.predict(request.data, params=request.params)


def accepts_params(model: Any) -> bool:
    """Whether ``model.predict`` takes a ``params`` keyword argument (or ``**kwargs``)."""
    try:
        signature = inspect.signature(model.predict)
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return True
    return any(
        name == "params" or parameter.kind is inspect.Parameter.VAR_KEYWORD
        for name, parameter in signature.parameters.items()
    )


# -- CSV ---------------------------------------------------------------------------------------


def _parse_csv(text: str) -> pd.DataFrame:
    if not text.strip():
        raise InvalidInputError(
            "the CSV body is empty: send a header line of column names and at least one row"
        )
    try:
        # The first two lines alone, without a header: a first row longer than the header is
        # refused here ("Expected 2 fields in line 2, saw 3"), where a full read would take
        # its first field as an index and shift every column.
        pd.read_csv(io.StringIO(text), header=None, nrows=2, dtype=str)
        frame = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as exc:
        raise InvalidInputError(f"malformed CSV: {exc}".strip()) from None
    except (pd.errors.EmptyDataError, ValueError) as exc:
        raise InvalidInputError(f"malformed CSV: {exc}") from None
    if frame.empty:
        raise InvalidInputError(
            "the CSV body has a header but no rows: send at least one row after the header"
        )
    return frame


# -- JSON --------------------------------------------------------------------------------------


def _accepted() -> str:
    return ", ".join(repr(key) for key in INPUT_KEYS)


def _parse_json(text: str) -> ParsedRequest:
    if not text.strip():
        raise InvalidInputError(
            f"the JSON body is empty: send an object with one of the keys {_accepted()}"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidInputError("the JSON body is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"the JSON body must be an object with one of the keys {_accepted()}, "
            f"not {_json_type(document)}; e.g. "
            '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'
        )
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInputError(
            f"'params' must be a JSON object of name -> value, not {_json_type(params)}"
        )
    found = [key for key in INPUT_KEYS if key in document]
    unknown = sorted(key for key in document if key not in INPUT_KEYS and key != "params")
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in the JSON body: "
            f"the accepted keys are {_accepted()} (exactly one) and 'params'"
        )
    if not found:
        raise InvalidInputError(
            f"the JSON body has no input: give exactly one of the keys {_accepted()}"
        )
    if len(found) > 1:
        raise InvalidInputError(
            f"the JSON body has {len(found)} inputs ({', '.join(map(repr, found))}): "
            f"give exactly one of the keys {_accepted()}"
        )
    key = found[0]
    value = document[key]
    data: ModelInput
    if key == "dataframe_split":
        data = _dataframe_split(value)
    elif key == "dataframe_records":
        data = _dataframe_records(value, key)
    else:
        data = _instances(value, key)
    return ParsedRequest(data, params)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _dataframe_split(value: Any) -> pd.DataFrame:
    example = '{"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}'
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"'dataframe_split' must be an object like {example}, not {_json_type(value)}"
        )
    unknown = sorted(set(value) - set(_SPLIT_KEYS))
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in 'dataframe_split': "
            "the accepted keys are 'columns', 'data' (required) and 'index'"
        )
    if "data" not in value:
        raise InvalidInputError(f"'dataframe_split' has no 'data': give it like {example}")
    rows = value["data"]
    if not isinstance(rows, list):
        raise InvalidInputError(
            f"'dataframe_split.data' must be a list of rows, not {_json_type(rows)}"
        )
    if not rows:
        raise InvalidInputError("'dataframe_split.data' is empty: send at least one row")
    columns = value.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(
            isinstance(c, str | int | float) and not isinstance(c, bool) for c in columns
        ):
            raise InvalidInputError(
                "'dataframe_split.columns' must be a list of column names (strings)"
            )
        duplicated = sorted(str(c) for c, n in Counter(columns).items() if n > 1)
        if duplicated:
            raise InvalidInputError(
                f"'dataframe_split.columns' names a column twice: {', '.join(duplicated)}"
            )
    width = len(columns) if columns is not None else None
    for number, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInputError(
                f"row {number} of 'dataframe_split.data' is {_json_type(row)}: "
                "each row must be a list of values, one per column"
            )
        if width is None:
            width = len(row)
        if len(row) != width:
            expected = f"'columns' names {width}" if columns is not None else f"row 0 has {width}"
            raise InvalidInputError(
                f"row {number} of 'dataframe_split.data' has {len(row)} values but "
                f"{expected}: every row needs one value per column"
            )
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise InvalidInputError(
            f"'dataframe_split.index' must be a list with one label per row ({len(rows)})"
        )
    return pd.DataFrame(rows, columns=columns, index=index)


def _dataframe_records(value: Any, key: str) -> pd.DataFrame:
    if not isinstance(value, list):
        raise InvalidInputError(
            f"'{key}' must be a list of objects like "
            f'[{{"a": 1, "b": 2}}, {{"a": 3, "b": 4}}], not {_json_type(value)}'
        )
    if not value:
        raise InvalidInputError(f"'{key}' is empty: send at least one record")
    for number, record in enumerate(value):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"record {number} of '{key}' is {_json_type(record)}: "
                "each record must be an object of column -> value"
            )
    return pd.DataFrame.from_records(value)


def _instances(value: Any, key: str) -> ModelInput:
    if isinstance(value, dict):
        if not value:
            raise InvalidInputError(f"'{key}' is an empty object: give at least one named input")
        arrays = {name: _array(item, f"{key}.{name}") for name, item in value.items()}
        return arrays
    if not isinstance(value, list):
        raise InvalidInputError(
            f"'{key}' must be a list (of values, rows or objects) or an object of "
            f"name -> list, not {_json_type(value)}"
        )
    if not value:
        raise InvalidInputError(f"'{key}' is empty: send at least one instance")
    if any(isinstance(item, dict) for item in value):
        return _dataframe_records(value, key)
    return _array(value, key)


def _array(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInputError(
            f"'{where}' is ragged: every row must have the same length (and nested lists the "
            "same shape)"
        ) from None
    if array.dtype == object:
        flat = list(array.flat)
        if any(isinstance(item, list | dict) for item in flat):
            raise InvalidInputError(
                f"'{where}' mixes values with lists or objects: give rows of the same shape"
            )
        if all(
            item is None or (isinstance(item, int | float) and not isinstance(item, bool))
            for item in flat
        ):
            numbers = [np.nan if item is None else item for item in flat]
            array = np.array(numbers, dtype=float).reshape(array.shape)
    return array


# -- predictions -------------------------------------------------------------------------------


def format_predictions(result: Any) -> dict[str, Any]:
    """Put a model's predictions in MLflow's response shape.

    Parameters
    ----------
    result : numpy.ndarray, pandas.Series, pandas.DataFrame, list, dict or scalar
        What ``predict`` returned.

    Returns
    -------
    dict
        ``{"predictions": ...}``: an array, a Series or a list as a (nested) list, a DataFrame
        as a list of records, a dict as an object, a scalar as itself. NaN, infinities, ``NA``
        and ``NaT`` become ``None`` (JSON ``null``); dates become ISO 8601 strings.

    Raises
    ------
    TypeError
        ``result`` holds something that has no JSON form.

    Examples
    --------
    >>> format_predictions(np.array([1.5, np.nan]))
    {'predictions': [1.5, None]}
    """
    return {"predictions": _jsonable(result)}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu":
            return value.tolist()
        if value.dtype.kind == "f" and np.isfinite(value).all():
            return value.tolist()
        return [_jsonable(item) for item in value]
    if isinstance(value, pd.DataFrame):
        return [_jsonable(record) for record in value.to_dict(orient="records")]
    if isinstance(value, pd.Series | pd.Index):
        if value.dtype.kind == "M":  # datetimes: as Timestamps, for their ISO form
            return [_jsonable(item) for item in value.astype(object)]
        return _jsonable(value.to_numpy())
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    raise TypeError(
        f"predictions of type {type(value).__name__} cannot be written as JSON: return a "
        "numpy array, a pandas DataFrame or Series, a list, a dict or a number"
    )
