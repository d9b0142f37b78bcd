"""Filters of ``search_registered_models`` and ``search_model_versions`` (MLflow's syntax).

Clauses joined by ``AND``; each is ``key op value`` where ``op`` is ``=``, ``!=``, ``LIKE``,
``ILIKE`` (``%`` and ``_`` wildcards), ``IN ('a', 'b')`` or ``NOT IN (...)``, and values are
quoted strings (a version number may be bare); a version number also compares with ``<``,
``<=``, ``>`` and ``>=``::

    name LIKE 'churn%' AND tags.team = 'ml'
    name = 'churn-rf' AND run_id IN ('3f2a...', '9c1b...')
    name = 'churn-rf' AND version_number >= 3

A registry holds tens or hundreds of versions, so filters are evaluated on the rows in Python.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import FilterSyntaxError

__all__ = ["MODEL_KEYS", "VERSION_KEYS", "compile_registry_filter"]

#: Filter key -> row field, per kind of object.
MODEL_KEYS = {"name": "name"}
VERSION_KEYS = {
    "name": "name",
    "version": "version",
    "version_number": "version",
    "run_id": "run_id",
    "source": "source",
    "source_path": "source",
    "current_stage": "current_stage",
    "stage": "current_stage",
}

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|(?P<op>!=|<>|==|<=|>=|=|<|>)"
    r"|(?P<punct>[(),])|(?P<word>[\w.`\-]+))"
)

Predicate = Callable[[dict[str, Any]], bool]

_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text[:pos]) + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise FilterSyntaxError(f"unexpected character {text[start]!r}", text, start)
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return out


def compile_registry_filter(text: str | None, keys: dict[str, str]) -> Predicate:
    """A predicate on registry rows (dicts with the fields of ``keys`` and ``tags``)."""
    if not text or not text.strip():
        return lambda row: True
    tokens = _tokens(text)
    allowed = ", ".join([*keys, "tags.<key>"])
    clauses: list[Predicate] = []
    i = 0

    def need(index: int, what: str) -> tuple[str, str, int]:
        if index >= len(tokens):
            raise FilterSyntaxError(f"expected {what} at the end", text, len(text))
        return tokens[index]

    while True:
        kind, key, at = need(i, "a key")
        key = key.replace("`", "")
        if kind != "word" or not (key in keys or key.startswith(("tags.", "tag."))):
            raise FilterSyntaxError(f"unknown key {key!r}; allowed: {allowed}", text, at)
        kind, op, at = need(i + 1, "an operator")
        op = op.upper()
        if op == "NOT" and i + 2 < len(tokens) and tokens[i + 2][1].upper() == "IN":
            op, i = "NOT IN", i + 1
        op = {"==": "=", "<>": "!="}.get(op, op)
        numeric = keys.get(key) == "version"
        allowed_ops = "=, !=, LIKE, ILIKE, IN, NOT IN" + (", <, <=, >, >=" if numeric else "")
        if op not in allowed_ops.split(", "):
            raise FilterSyntaxError(f"unknown operator {op!r}; allowed: {allowed_ops}", text, at)
        if op in ("IN", "NOT IN"):
            values, i = _in_list(tokens, i + 2, text)
        else:
            values, i = [_value(need(i + 2, "a quoted value"), text)], i + 3
        if op in ("<", "<=", ">", ">=") and not values[0].isdigit():
            raise FilterSyntaxError(
                f"a version number compares with a whole number; got {values[0]!r}", text, at
            )
        clauses.append(_clause(key, keys, op, values))
        if i >= len(tokens):
            break
        kind, word, at = tokens[i]
        if word.upper() != "AND":
            raise FilterSyntaxError(f"expected AND between clauses, got {word!r}", text, at)
        i += 1
    return lambda row: all(clause(row) for clause in clauses)


def _value(token: tuple[str, str, int], text: str) -> str:
    kind, raw, at = token
    if kind == "str":
        return raw[1:-1].replace(raw[0] * 2, raw[0])
    if kind == "word" and raw.isdigit():
        return raw
    raise FilterSyntaxError(f"expected a quoted value like 'churn', got {raw!r}", text, at)


def _in_list(tokens: Sequence[tuple[str, str, int]], i: int, text: str) -> tuple[list[str], int]:
    if i >= len(tokens) or tokens[i][1] != "(":
        raise FilterSyntaxError("IN needs a list like ('a', 'b')", text,
                                tokens[i][2] if i < len(tokens) else len(text))
    values, i = [], i + 1
    while True:
        if i >= len(tokens):
            raise FilterSyntaxError("unclosed IN list", text, len(text))
        values.append(_value(tokens[i], text))
        if i + 1 >= len(tokens):
            raise FilterSyntaxError("unclosed IN list", text, len(text))
        punct = tokens[i + 1][1]
        if punct == ")":
            return values, i + 2
        if punct != ",":
            raise FilterSyntaxError("expected ',' or ')' in the IN list", text, tokens[i + 1][2])
        i += 2


def _clause(key: str, keys: dict[str, str], op: str, values: list[str]) -> Predicate:
    if key in keys:
        field = keys[key]

        def get(row: dict[str, Any]) -> str | None:
            value = row.get(field)
            return None if value is None else str(value)
    else:
        tag = key.split(".", 1)[1]

        def get(row: dict[str, Any]) -> str | None:
            return row.get("tags", {}).get(tag)

    if op in ("LIKE", "ILIKE"):
        pattern = _like(values[0], op == "ILIKE")
        return lambda row: (v := get(row)) is not None and pattern.fullmatch(v) is not None
    if op == "IN":
        wanted = set(values)
        return lambda row: get(row) in wanted
    if op == "NOT IN":
        unwanted = set(values)
        return lambda row: (v := get(row)) is not None and v not in unwanted
    if op in _COMPARE:
        bound, compare = int(values[0]), _COMPARE[op]
        return lambda row: (v := get(row)) is not None and compare(int(v), bound)
    if op == "!=":
        return lambda row: (v := get(row)) is not None and v != values[0]
    return lambda row: get(row) == values[0]
