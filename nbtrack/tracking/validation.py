"""Checks on keys and values, done before anything is buffered or written.

Limits (as MLflow's, so runs move between the two):

=====================  ============================================================
key (param/metric/tag) 1 to 250 characters: letters, digits, ``_ - . / :`` and space;
                       a normal relative path: no leading ``/`` or ``..``, no trailing
                       ``/``, no ``//``, ``.`` or ``..`` part
param value            at most 6000 characters (any value is stored as ``str(value)``)
tag value              at most 8000 characters
run name               at most 250 characters
experiment name        1 to 500 characters, not only whitespace
metric value           a real number: int, float, bool, a numpy scalar, a 0-d array or tensor;
                       NaN and +/-inf are kept as they are
step                   an integer
=====================  ============================================================
"""

from __future__ import annotations

import math
import numbers
import operator
import posixpath
import re
import sys
from typing import Any

from ..exceptions import InvalidInputError, InvalidKeyError, ReservedTagError, ValueTooLongError
from .context import MLFLOW_TAGS

__all__ = [
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "RESERVED_PREFIX",
    "check_experiment_name",
    "check_key",
    "check_name",
    "check_param_value",
    "check_tag",
    "check_text",
    "metric_value",
    "step_value",
]

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
RESERVED_PREFIX = "nbtrack."
#: Reserved tags that users may set themselves.
USER_SETTABLE_RESERVED = frozenset({"nbtrack.note.content", "nbtrack.runName"})

_KEY_RE = re.compile(r"[\w\-. /:]+")
_valid_keys: set[str] = set()  # keys already checked: log_metric in a loop pays a set lookup


def check_key(key: Any, kind: str) -> str:
    """Return ``key`` if it is a valid param/metric/tag key, else raise InvalidKeyError."""
    if type(key) is str and key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise InvalidKeyError(f"{kind} key must be a string, got {type(key).__name__}: {key!r}")
    if not key:
        raise InvalidKeyError(f"{kind} key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"{kind} key {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY_LENGTH} allowed"
        )
    if not _KEY_RE.fullmatch(key):
        bad = sorted({c for c in key if not _KEY_RE.fullmatch(c)})
        raise InvalidKeyError(
            f"{kind} key {key!r} has characters not allowed ({''.join(bad)!r}); keys may hold "
            "letters, digits, underscores (_), dashes (-), periods (.), spaces, colons (:) and "
            "slashes (/)"
        )
    normal = posixpath.normpath(key)
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        raise InvalidKeyError(
            f"{kind} key {key!r} would be read as the path {normal!r}: keys must not start "
            "with '/' or '..', end with '/', or hold '//', '.' or '..' as a path part"
        )
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def check_text(text: str, what: str) -> str:
    """``text`` if it can be stored, else an error naming ``what``: a Python string may hold
    lone surrogates (what ``os.fsdecode`` makes of the undecodable bytes of a file name), and
    those are no text UTF-8, and so SQLite, can hold."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} holds {text[exc.start : exc.end]!r} at character {exc.start}, which UTF-8 "
            "cannot encode (a lone surrogate, such as Python makes of a file name's undecodable "
            "bytes); make it text first, e.g. os.fsencode(value).decode('utf-8', 'replace')"
        ) from None
    return text


def check_param_value(key: str, value: Any) -> str:
    text = check_text(str(value), f"the value of param {key!r}")
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise ValueTooLongError(
            f"param {key!r} has a value of {len(text)} characters; at most "
            f"{MAX_PARAM_VALUE_LENGTH} allowed (log long text with log_text instead)"
        )
    return text


def check_tag(key: Any, value: Any, *, internal: bool = False) -> tuple[str, str]:
    """The checked ``(key, text)`` of a tag; MLflow's ``mlflow.runName`` and
    ``mlflow.note.content`` become nbtrack's own keys for them."""
    check_key(key, "tag")
    if not internal and MLFLOW_TAGS.get(key) in USER_SETTABLE_RESERVED:
        key = MLFLOW_TAGS[key]
    if not internal and key.startswith(RESERVED_PREFIX) and key not in USER_SETTABLE_RESERVED:
        raise ReservedTagError(
            f"tag {key!r} uses the prefix {RESERVED_PREFIX!r}, which nbtrack keeps for its own "
            f"tags; choose another key (settable ones: {sorted(USER_SETTABLE_RESERVED)})"
        )
    text = str(value)
    if not text.isascii():  # (the fast path of check_text, inline: tags are set in loops too)
        if internal:  # nbtrack's own (a traceback may quote a file name): escaped, not refused
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        text = check_text(text, f"the value of tag {key!r}")
    if len(text) > MAX_TAG_VALUE_LENGTH:
        if internal:
            return key, text[-MAX_TAG_VALUE_LENGTH:]
        raise ValueTooLongError(
            f"tag {key!r} has a value of {len(text)} characters; at most "
            f"{MAX_TAG_VALUE_LENGTH} allowed"
        )
    return key, text


MAX_RUN_NAME_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 500


def check_name(name: Any, what: str, limit: int) -> str:
    """``name`` if it is a non-blank string of at most ``limit`` characters, else an error
    that says so (``what``: "experiment name", "registered model name", ...)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} must be a non-empty string; got {name!r}")
    if len(name) > limit:
        raise InvalidInputError(
            f"{what} {name[:40]!r}... is {len(name)} characters; at most {limit} allowed"
        )
    return check_text(name, what)


def check_experiment_name(name: Any) -> str:
    return check_name(name, "experiment name", MAX_EXPERIMENT_NAME_LENGTH)


def check_run_name(name: Any) -> None:
    if name is not None and (not isinstance(name, str) or len(name) > MAX_RUN_NAME_LENGTH):
        raise InvalidInputError(
            f"run_name must be a string of at most {MAX_RUN_NAME_LENGTH} characters; "
            f"got {name!r:.80}"
        )
    if name is not None:
        check_text(name, "run_name")


def metric_value(key: str, value: Any) -> float:
    """Coerce a metric value to float, or raise TypeError naming the key."""
    cls = type(value)
    try:
        if cls is float or cls is int:
            return float(value)
        if isinstance(value, numbers.Real):  # bool, numpy scalars, Fraction
            return float(value)
        decimal = sys.modules.get("decimal")  # not imported here: importing nbtrack stays quick
        if decimal is not None and isinstance(value, decimal.Decimal):  # a Number, not a Real
            if value.is_snan():
                raise TypeError(f"metric {key!r} is a signalling NaN: {value!r}")
            number = float(value)
            if math.isinf(number) and value.is_finite():
                raise OverflowError
            return number
    except OverflowError:
        raise InvalidInputError(
            f"metric {key!r} is too large for a 64-bit float (about ±1.8e308): {value!r:.40}"
        ) from None
    ndim = getattr(value, "ndim", None)
    if ndim is not None and hasattr(value, "item"):
        if ndim == 0:
            item = value.item()
            if isinstance(item, numbers.Real):
                return float(item)
        else:
            shape = tuple(getattr(value, "shape", ()))
            raise TypeError(
                f"metric {key!r} must be a single number; got a {type(value).__name__} of "
                f"shape {shape} (log one element, or a reduction such as .mean())"
            )
    raise TypeError(
        f"metric {key!r} must be a real number (int, float, numpy scalar, 0-d array or "
        f"tensor); got {type(value).__name__}: {value!r:.80}"
    )


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: 9999-12-31 23:59:59.999 UTC in milliseconds: the last time Python's datetime can show.
LAST_TIMESTAMP = 253_402_300_799_999


def _whole(value: Any) -> int | None:
    """An integer, or a float (numpy's too) or fraction with a whole value, as the exact int;
    else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Rational):  # Fraction: exact, however large
        return int(value.numerator) if value.denominator == 1 else None
    if isinstance(value, numbers.Real):
        try:
            number = float(value)
        except OverflowError:
            return None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    return None


def _shown(value: Any) -> str:
    """A number for a message, as given: its digits, or its size when it has too many to read
    (or for Python to print)."""
    whole = value if isinstance(value, numbers.Integral) else math.floor(value)
    if int(whole).bit_length() > 128:
        return f"of {int(whole).bit_length()} bits"
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))


def step_value(step: Any) -> int:
    """An integer step; a float with a whole value (``3.0``, as MLflow takes it) too."""
    if step is None:
        return 0
    value = _whole(step)
    if value is None:
        raise TypeError(
            f"step must be an integer (or a float with a whole value), got "
            f"{type(step).__name__}: {step!r}"
        )
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInputError(f"step {_shown(value)} is out of range; steps are 64-bit integers")
    return value


def timestamp_value(timestamp: Any) -> int:
    """Integer milliseconds since the epoch, checked; a float (``time.time() * 1000``) is cut
    to whole milliseconds, as MLflow does."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Real):
        raise TypeError(
            f"timestamp must be integer milliseconds since the epoch, got {timestamp!r}"
        )
    try:
        finite = math.isfinite(timestamp)
    except OverflowError:  # an int or fraction too large for a float: finite, and refused below
        finite = True
    if not finite:
        raise TypeError(
            f"timestamp must be integer milliseconds since the epoch, got {timestamp!r}"
        )
    value = operator.index(math.floor(timestamp))  # whole milliseconds: -0.5 is before 1970 too
    if value < 0:
        raise InvalidInputError(
            f"timestamp {_shown(timestamp)} is before 1970; use milliseconds since the epoch"
        )
    if value > LAST_TIMESTAMP:
        raise InvalidInputError(
            f"timestamp {_shown(timestamp)} is past the year 9999 as milliseconds since the "
            f"epoch (the largest is {LAST_TIMESTAMP}); if it is in microseconds or nanoseconds, "
            "divide it by 1000 or 1000000, as in int(time.time() * 1000) for now"
        )
    return value


def parse_experiment_id(experiment_id: Any) -> int | None:
    """An experiment id as the store's integer: from an int (not a bool) or a string of ASCII
    digits, within 64 bits; None for anything else (a float, ``'1e3'``, ``'\u0661'``)."""
    integral = isinstance(experiment_id, numbers.Integral) and not isinstance(experiment_id, bool)
    digits = isinstance(experiment_id, str) and experiment_id.isascii() and experiment_id.isdigit()
    if not (integral or digits):
        return None
    value = int(experiment_id)
    return value if 0 <= value <= INT64_MAX else None
