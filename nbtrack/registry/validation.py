"""Checks on registry input: names, versions, stages, aliases; each error says what is allowed."""

from __future__ import annotations

import re
from typing import Any

from ..exceptions import InvalidInputError
from ..tracking.validation import check_name
from .entities import ModelVersionStage

__all__ = ["check_alias", "check_model_name", "check_stage", "check_version"]

MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
_NAME_RE = re.compile(r"[\w\-. ]+")
_ALIAS_RE = re.compile(r"[\w\-]+")
_VERSION_LIKE = re.compile(r"v\d+", re.IGNORECASE)


def check_model_name(name: Any) -> str:
    check_name(name, "registered model name", MAX_NAME_LENGTH)
    if not _NAME_RE.fullmatch(name) or "/" in name or "@" in name:
        raise InvalidInputError(
            f"registered model name {name!r} has characters not allowed: use letters, digits, "
            "'_', '-', '.' and spaces (no '/' or '@', which model URIs use)"
        )
    return name


def check_version(version: Any) -> int:
    """A version number (int or its string, as MLflow passes them) as an int >= 1."""
    if isinstance(version, bool):
        version = None
    try:
        number = int(str(version).strip())
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise InvalidInputError(
            f"a model version is a positive whole number like 1 or '3'; got {version!r}"
        )
    return number


def check_stage(stage: Any) -> str:
    """The canonical spelling of a stage (case-insensitive input)."""
    if isinstance(stage, str):
        for known in ModelVersionStage.ALL:
            if stage.strip().lower() == known.lower():
                return known
    raise InvalidInputError(
        f"stage must be one of {', '.join(ModelVersionStage.ALL)} (any case); got {stage!r}"
    )


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not alias:
        raise InvalidInputError(f"an alias must be a non-empty string; got {alias!r}")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidInputError(f"alias is {len(alias)} characters; at most {MAX_ALIAS_LENGTH}")
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidInputError(
            f"alias {alias!r} has characters not allowed: use letters, digits, '_' and '-'"
        )
    if alias.lower() == "latest" or _VERSION_LIKE.fullmatch(alias):
        raise InvalidInputError(
            f"alias {alias!r} is reserved: 'latest' and 'v<number>' already name versions in "
            "model URIs; choose another, like 'champion'"
        )
    return alias
