"""Compile filter and order-by ASTs (see :mod:`nbtrack.query.filter`) to SQLite SQL.

The SQL is an expression about the ``runs`` table aliased ``r``; use it as::

    where, where_args = compile_filter(parse_filter(text))
    order, order_args = compile_order_by(parse_order_by(order_by))
    conn.execute(f"SELECT r.run_id FROM runs r WHERE {where} ORDER BY {order}",
                 [*where_args, *order_args])

Safety: no text that comes from the user (no key, no value) is ever put into the SQL string.
Every key and value is bound as a ``?`` parameter; table, alias, column and operator text comes
only from the fixed mappings of this module, so an unknown kind, attribute or operator in a
hand-built AST raises :class:`~nbtrack.exceptions.FilterSyntaxError` instead of reaching SQL.

Semantics (MLflow's, made explicit):

- a run that lacks a metric, param or tag never matches a comparison on it, not even ``!=``;
  ``IS NULL`` means "lacks the key" and ``IS NOT NULL`` "has the key";
- ``latest_metrics.value`` is NULL for NaN: ``= NaN`` matches runs whose latest value is NaN,
  ``!= NaN`` runs whose latest value is a number, any other comparison with NaN matches nothing,
  and a NaN value never matches a comparison with a number (as in Python);
- ``LIKE`` is case-sensitive (compiled to ``GLOB`` with :func:`like_to_glob`), ``ILIKE`` is
  ``lower(col) LIKE lower(?)`` (SQLite folds ASCII letters only);
- in ``ORDER BY`` missing values sort last in both directions, then ``r.start_time DESC`` and
  ``r.run_id`` break ties.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbtrack.exceptions import FilterSyntaxError
from nbtrack.query.filter import BoolOp, Comparison, FilterNode, OrderKey

__all__ = ["compile_filter", "compile_order_by", "like_to_glob"]

#: Attribute name (canonical or alias) -> column of ``runs r``. The only source of column text.
_ATTRIBUTE_COLUMNS: dict[str, str] = {
    "run_id": "r.run_id",
    "run_name": "r.run_name",
    "status": "r.status",
    "start_time": "r.start_time",
    "created": "r.start_time",
    "end_time": "r.end_time",
    "artifact_uri": "r.artifact_uri",
    "user_id": "r.user",
    "user": "r.user",
}
_NUMERIC_COLUMNS = frozenset({"r.start_time", "r.end_time"})

#: Kind -> (table, alias) of the per-run key/value tables.
_KEYED_TABLES: dict[str, tuple[str, str]] = {
    "metric": ("latest_metrics", "m"),
    "param": ("params", "p"),
    "tag": ("tags", "t"),
}

#: Filter operator -> SQL operator for plain binary comparisons.
_COMPARE_SQL: dict[str, str] = {
    "=": "=",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})

_TRUE = "1"
_FALSE = "0"


def like_to_glob(pattern: str) -> str:
    """Translate a SQL ``LIKE`` pattern into an equivalent (case-sensitive) ``GLOB`` pattern.

    Parameters
    ----------
    pattern : str
        A LIKE pattern: ``%`` matches any run of characters, ``_`` exactly one character, and
        every other character itself (there is no escape character, as in MLflow).

    Returns
    -------
    str
        The GLOB pattern: ``%`` -> ``*``, ``_`` -> ``?``, and GLOB's own metacharacters ``*``,
        ``?`` and ``[`` made literal as ``[*]``, ``[?]`` and ``[[]``.

    Examples
    --------
    >>> like_to_glob("a%b_c*[d]?")
    'a*b?c[*][[]d][?]'
    """
    out: list[str] = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _invalid(message: str) -> FilterSyntaxError:
    return FilterSyntaxError(f"invalid filter AST: {message}")


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _as_number(node: Comparison) -> float:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"{node.kind} {node.key!r} needs a number, got {value!r}")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _as_string(node: Comparison) -> str:
    if not isinstance(node.value, str):
        raise _invalid(f"{node.op} on {node.kind} {node.key!r} needs a str, got {node.value!r}")
    return node.value


def _as_strings(node: Comparison) -> tuple[str, ...]:
    value = node.value
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{node.op} on {node.kind} {node.key!r} needs a tuple of str")
    return value


def _string_condition(column: str, node: Comparison, args: list[object]) -> str:
    """Condition on a text ``column`` for =, !=, LIKE, ILIKE, IN, NOT IN (non-empty lists)."""
    op = node.op
    if op in ("=", "!="):
        args.append(_as_string(node))
        return f"{column} {_COMPARE_SQL[op]} ?"
    if op == "LIKE":
        args.append(like_to_glob(_as_string(node)))
        return f"{column} GLOB ?"
    if op == "ILIKE":
        args.append(_as_string(node))
        return f"lower({column}) LIKE lower(?)"
    items = _as_strings(node)
    args.extend(items)
    negation = "NOT " if op == "NOT IN" else ""
    return f"{column} {negation}IN ({_placeholders(len(items))})"


def _numeric_condition(column: str, node: Comparison, args: list[object]) -> str:
    """Condition on a numeric ``column`` (NULL meaning NaN for metrics)."""
    sql_op = _COMPARE_SQL.get(node.op)
    if sql_op is None:
        raise _invalid(f"operator {node.op!r} is not allowed on {node.kind} {node.key!r}")
    value = _as_number(node)
    if isinstance(value, float) and math.isnan(value):
        if node.op == "=":
            return f"{column} IS NULL"
        if node.op == "!=":
            return f"{column} IS NOT NULL"
        return _FALSE
    args.append(value)
    return f"{column} {sql_op} ?"


def _compile_keyed(node: Comparison, args: list[object]) -> str:
    """A comparison on a metric, param or tag: an (NOT) EXISTS over its table."""
    table, alias = _KEYED_TABLES[node.kind]
    head = f"SELECT 1 FROM {table} {alias} WHERE {alias}.run_id = r.run_id AND {alias}.key = ?"
    if node.op == "IS NULL":
        args.append(node.key)
        return f"NOT EXISTS ({head})"
    if node.op == "IS NOT NULL":
        args.append(node.key)
        return f"EXISTS ({head})"
    column = f"{alias}.value"
    key_args: list[object] = [node.key]
    if node.kind == "metric":
        condition = _numeric_condition(column, node, key_args)
    else:
        if node.op not in _STRING_OPS:
            raise _invalid(f"operator {node.op!r} is not allowed on {node.kind} {node.key!r}")
        if node.op in ("IN", "NOT IN") and not _as_strings(node):
            # An empty list: IN matches nothing; NOT IN matches every run that has the key.
            condition = _FALSE if node.op == "IN" else _TRUE
        else:
            condition = _string_condition(column, node, key_args)
    if condition == _FALSE:
        return _FALSE
    args.extend(key_args)
    if condition == _TRUE:
        return f"EXISTS ({head})"
    return f"EXISTS ({head} AND {condition})"


def _compile_attribute(node: Comparison, args: list[object]) -> str:
    """A comparison on a column of ``runs``."""
    column = _ATTRIBUTE_COLUMNS.get(node.key)
    if column is None:
        raise _invalid(f"unknown attribute {node.key!r}")
    if node.op == "IS NULL":
        return f"{column} IS NULL"
    if node.op == "IS NOT NULL":
        return f"{column} IS NOT NULL"
    if column in _NUMERIC_COLUMNS:
        return _numeric_condition(column, node, args)
    if node.op not in _STRING_OPS:
        raise _invalid(f"operator {node.op!r} is not allowed on attribute {node.key!r}")
    if node.op in ("IN", "NOT IN") and not _as_strings(node):
        return _FALSE if node.op == "IN" else f"{column} IS NOT NULL"
    return _string_condition(column, node, args)


def _compile(node: FilterNode, args: list[object]) -> str:
    if isinstance(node, BoolOp):
        if node.op not in ("AND", "OR"):
            raise _invalid(f"unknown boolean operator {node.op!r}")
        if not node.items:
            return _TRUE if node.op == "AND" else _FALSE
        joiner = " AND " if node.op == "AND" else " OR "
        return "(" + joiner.join(_compile(item, args) for item in node.items) + ")"
    if not isinstance(node, Comparison):
        raise _invalid(f"not a filter node: {node!r}")
    if node.op not in _COMPARE_SQL and node.op not in _STRING_OPS and node.op not in _NULL_OPS:
        raise _invalid(f"unknown operator {node.op!r}")
    if node.kind == "attribute":
        return _compile_attribute(node, args)
    if node.kind in _KEYED_TABLES:
        return _compile_keyed(node, args)
    raise _invalid(f"unknown kind {node.kind!r}")


def compile_filter(node: FilterNode | None) -> tuple[str, list[object]]:
    """Compile a filter AST to a boolean SQLite expression about ``runs r``.

    Parameters
    ----------
    node : FilterNode or None
        The AST from :func:`~nbtrack.query.filter.parse_filter`; None means "every run".

    Returns
    -------
    sql : str
        A boolean expression (``"1"`` for None) referring to the runs table as ``r``. It holds
        no user text: every key and value is a ``?`` placeholder.
    args : list of object
        The values of the placeholders, in order.

    Raises
    ------
    FilterSyntaxError
        If a hand-built AST has an unknown kind, attribute or operator, or a value of the
        wrong type.
    """
    if node is None:
        return _TRUE, []
    args: list[object] = []
    sql = _compile(node, args)
    return sql, args


def _order_expression(key: OrderKey, args: list[object]) -> str:
    if key.kind == "attribute":
        column = _ATTRIBUTE_COLUMNS.get(key.key)
        if column is None:
            raise _invalid(f"unknown attribute {key.key!r}")
        return column
    table_alias = _KEYED_TABLES.get(key.kind)
    if table_alias is None:
        raise _invalid(f"unknown kind {key.kind!r}")
    table, _ = table_alias
    args.append(key.key)
    return f"(SELECT o.value FROM {table} o WHERE o.run_id = r.run_id AND o.key = ?)"


def compile_order_by(keys: Sequence[OrderKey]) -> tuple[str, list[object]]:
    """Compile order keys to the body of an ``ORDER BY`` clause (without the words ORDER BY).

    Parameters
    ----------
    keys : sequence of OrderKey
        From :func:`~nbtrack.query.filter.parse_order_by`, in order of priority.

    Returns
    -------
    sql : str
        For each key ``<expr> IS NULL, <expr> ASC|DESC`` (so runs lacking the value, or whose
        latest metric is NaN, sort last in both directions), then the tie-breakers
        ``r.start_time DESC, r.run_id``. Metric, param and tag keys are bound, twice each.
    args : list of object
        The values of the placeholders, in order.

    Raises
    ------
    FilterSyntaxError
        If a hand-built key has an unknown kind or attribute.
    """
    args: list[object] = []
    parts: list[str] = []
    for key in keys:
        null_expr = _order_expression(key, args)
        value_expr = _order_expression(key, args)
        direction = "ASC" if key.ascending else "DESC"
        parts.append(f"{null_expr} IS NULL, {value_expr} {direction}")
    parts.append("r.start_time DESC, r.run_id")
    return ", ".join(parts), args
