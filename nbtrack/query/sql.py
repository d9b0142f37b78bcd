"""Compile filter and order-by ASTs (see :mod:`nbtrack.query.filter`) to SQLite SQL.

The SQL is about the ``runs`` table aliased ``r``: each metric, param or tag a filter compares,
or an order key names, becomes a ``LEFT JOIN`` of its table on ``(run_id, key)`` (the primary
key, so at most one row), and the filter an expression on the joined columns. Use it as::

    q = compile_search(parse_filter(text), parse_order_by(order_by))
    conn.execute(f"SELECT r.run_id FROM runs r {q.joins} WHERE {q.where} ORDER BY {q.order}",
                 [*q.join_args, *q.where_args, *q.order_args])

A join is one index probe per candidate run, cheaper than the correlated ``EXISTS`` subquery
it replaces; past :data:`MAX_JOINS` further comparisons fall back to ``EXISTS`` (and values
of MLflow's system tags, and order keys, to scalar subqueries), so a filter of any size
compiles, and plans quickly.

Safety: no text that comes from the user (no key, no value) is ever put into the SQL string.
Every key and value is bound as a ``?`` parameter; table, alias, column and operator text comes
only from the fixed mappings of this module, so an unknown kind, attribute or operator in a
hand-built AST raises :class:`~nbtrack.exceptions.FilterSyntaxError` instead of reaching SQL.

Semantics (MLflow's, made explicit):

- a run that lacks a metric, param or tag never matches a comparison on it, not even ``!=``;
  ``IS NULL`` means "lacks the key" and ``IS NOT NULL`` "has the key";
- ``latest_metrics.value`` is NULL for NaN: ``= NaN`` matches runs whose latest value is NaN,
  ``!= NaN`` runs whose latest value is a number, any other comparison with NaN matches nothing;
  a NaN value matches ``!=`` a number and no other comparison with a number (as in Python);
- ``LIKE`` is case-sensitive (compiled to ``GLOB`` with :func:`like_to_glob`), ``ILIKE`` is
  ``lower(col) LIKE lower(?)`` (SQLite folds ASCII letters only);
- in ``ORDER BY`` missing values sort last in both directions, a metric's NaN just before
  them (as MLflow sorts: numbers, NaN, missing), then ``r.start_time DESC`` and ``r.run_id``
  break ties.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbtrack.exceptions import FilterSyntaxError
from nbtrack.query.filter import BoolOp, Comparison, FilterNode, OrderKey
from nbtrack.store.schema import COLUMN_TAGS
from nbtrack.tracking.context import MLFLOW_TAGS

__all__ = ["MAX_JOINS", "CompiledSearch", "Probe", "compile_search", "like_to_glob", "placeholders"]

#: Attribute name (canonical or alias) -> column of ``runs r``. The only source of column text.
_ATTRIBUTE_COLUMNS: dict[str, str] = {
    "run_id": "r.run_id",
    "run_name": "r.run_name",
    "status": "r.status",
    "start_time": "r.start_time",
    "created": "r.start_time",
    "end_time": "r.end_time",
    # the absolute folder, as runs show it (see SQLiteStore: the row may hold a relative one)
    "artifact_uri": "nbtrack_artifact_uri(r.artifact_uri)",
    "user_id": "r.user",
    "user": "r.user",
}
_NUMERIC_COLUMNS = frozenset({"r.start_time", "r.end_time"})

#: Kind -> the per-run key/value table.
_KEYED_TABLES: dict[str, str] = {
    "metric": "latest_metrics",
    "param": "params",
    "tag": "tags",
}
#: Joins one search may add to ``runs``. SQLite allows 64 tables in a join, but once it turns
#: the LEFT JOINs of ANDed comparisons into inner joins it weighs their orders: planning takes
#: ~2 ms at 16 joins and ~60 ms at 48, while the EXISTS form plans in well under 1 ms.
MAX_JOINS = 16

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


def placeholders(count: int) -> str:
    """``?, ?, ?``: the bound parameters of an ``IN`` list of ``count`` values."""
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
    return f"{column} {negation}IN ({placeholders(len(items))})"


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


@dataclass
class _Joins:
    """The ``LEFT JOIN`` clauses of one search, numbered ``k0, k1, ...`` in order of need.

    Each has a rank; :meth:`sql` lists them by rank (stable). SQLite probes the joined tables in
    the order written when it has nothing better to go on, so the comparisons that usually
    reject most runs (``=`` and ``IN``) come first and the joins only ordered by come last:
    fewer probes per run. The order of LEFT JOINs on ``r`` alone never changes the result.
    """

    joins: list[tuple[int, str, str, str]] = field(default_factory=list)  # rank, alias, ...
    #: The alias joined for each comparison (by identity), for :func:`_probes`.
    aliases: dict[int, str] = field(default_factory=dict)

    def add(self, table: str, key: str, rank: int = 1) -> str | None:
        """Join ``table`` on ``(r.run_id, key)``; its alias, or None when the budget is spent."""
        if len(self.joins) >= MAX_JOINS:
            return None
        alias = f"k{len(self.joins)}"
        self.joins.append((rank, alias, table, key))
        return alias

    def clauses(self) -> tuple[tuple[str, str, object], ...]:
        """``(alias, table, key)`` of each join, by rank (stable)."""
        ranked = sorted(self.joins, key=lambda join: join[0])
        return tuple((alias, table, key) for _, alias, table, key in ranked)


def _keyed_condition(node: Comparison, column: str, args: list[object]) -> str:
    """The condition on a joined ``value`` column for a comparison that needs the row to exist
    (the caller ensures that); ``_TRUE`` or ``_FALSE`` for the constant cases."""
    if node.kind == "metric":
        condition = _numeric_condition(column, node, args)
        if node.op == "!=" and condition == f"{column} != ?":  # NaN (NULL) differs too
            return f"({column} != ? OR {column} IS NULL)"
        return condition
    if node.op not in _STRING_OPS:
        raise _invalid(f"operator {node.op!r} is not allowed on {node.kind} {node.key!r}")
    if node.op in ("IN", "NOT IN") and not _as_strings(node):
        # An empty list: IN matches nothing; NOT IN matches every run that has the key.
        return _FALSE if node.op == "IN" else _TRUE
    return _string_condition(column, node, args)


def _compile_keyed(node: Comparison, joins: _Joins, args: list[object]) -> str:
    """A comparison on a metric, param or tag: a condition on its joined row (a missing row
    has NULL columns), or an (NOT) EXISTS over its table once the joins are spent."""
    table = _KEYED_TABLES[node.kind]
    # Checked (and the node validated) before joining, so a constant false costs no join.
    if node.op not in _NULL_OPS and _keyed_condition(node, "value", []) == _FALSE:
        return _FALSE
    alias = joins.add(table, node.key, 0 if node.op in ("=", "IN") else 1)
    if alias is not None:
        joins.aliases[id(node)] = alias
    if alias is None:
        head = f"SELECT 1 FROM {table} e WHERE e.run_id = r.run_id AND e.key = ?"
        args.append(node.key)
        if node.op == "IS NULL":
            return f"NOT EXISTS ({head})"
        if node.op == "IS NOT NULL":
            return f"EXISTS ({head})"
        condition = _keyed_condition(node, "e.value", args)
        return f"EXISTS ({head})" if condition == _TRUE else f"EXISTS ({head} AND {condition})"
    # A joined row exists iff its key column is not NULL (keys are NOT NULL in the tables).
    if node.op == "IS NULL":
        return f"{alias}.key IS NULL"
    if node.op == "IS NOT NULL":
        return f"{alias}.key IS NOT NULL"
    condition = _keyed_condition(node, f"{alias}.value", args)
    exists = f"{alias}.key IS NOT NULL"
    if condition == _TRUE:  # NOT IN (): every run that has the key
        return exists
    if "IS NULL" in condition:  # true for NaN (NULL): a missing row has a NULL value too
        return f"({exists} AND {condition})"
    # Any other condition is NULL, so false, on a missing row, as EXISTS would be.
    return condition


def _value_expr(
    table: str, names: Sequence[str], joins: _Joins, rank: int
) -> tuple[str, list[object]]:
    """An expression for the value of the first of ``names`` a run has in ``table`` (NULL if
    it has none), and the arguments it binds, in the order they appear in it."""
    values: list[str] = []
    bound: list[object] = []
    for name in names:
        if table == "tags" and name in COLUMN_TAGS:  # a reserved tag the run's row holds
            values.append(f"r.{COLUMN_TAGS[name]}")
            continue
        alias = joins.add(table, name, rank)
        if alias is not None:
            values.append(f"{alias}.value")
        else:  # the joins are spent: a subquery
            where = "o.run_id = r.run_id AND o.key = ?"
            values.append(f"(SELECT o.value FROM {table} o WHERE {where})")
            bound.append(name)
    if len(values) == 1:
        return values[0], bound
    return f"coalesce({', '.join(values)})", bound


def _mlflow_tag_names(key: str) -> list[str]:
    """``tags.mlflow.user`` and the like name one value: the tag under MLflow's name, as a user
    may have set it, else nbtrack's own; filters and order_by both see that one."""
    return [key, MLFLOW_TAGS[key]] if key in MLFLOW_TAGS else [key]


def _compile_mlflow_tag(node: Comparison, joins: _Joins, args: list[object]) -> str:
    """A comparison on one of MLflow's system tags (see :func:`_mlflow_tag_names`), or on a
    reserved tag that the run's row holds (see :data:`~nbtrack.store.schema.COLUMN_TAGS`)."""
    if node.op not in _NULL_OPS and _keyed_condition(node, "value", []) == _FALSE:
        return _FALSE
    rank = 0 if node.op in ("=", "IN") else 1
    expr, bound = _value_expr("tags", _mlflow_tag_names(node.key), joins, rank)
    args.extend(bound)  # the expression comes first in every condition below, and only once
    if node.op == "IS NULL":
        return f"{expr} IS NULL"
    if node.op == "IS NOT NULL":
        return f"{expr} IS NOT NULL"
    condition = _keyed_condition(node, expr, args)
    return f"{expr} IS NOT NULL" if condition == _TRUE else condition


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


def _compile(node: FilterNode, joins: _Joins, args: list[object]) -> str:
    if isinstance(node, BoolOp):
        if node.op not in ("AND", "OR"):
            raise _invalid(f"unknown boolean operator {node.op!r}")
        if not node.items:
            return _TRUE if node.op == "AND" else _FALSE
        joiner = " AND " if node.op == "AND" else " OR "
        return "(" + joiner.join(_compile(item, joins, args) for item in node.items) + ")"
    if not isinstance(node, Comparison):
        raise _invalid(f"not a filter node: {node!r}")
    if node.op not in _COMPARE_SQL and node.op not in _STRING_OPS and node.op not in _NULL_OPS:
        raise _invalid(f"unknown operator {node.op!r}")
    if node.kind == "attribute":
        return _compile_attribute(node, args)
    if node.kind == "tag" and (node.key in MLFLOW_TAGS or node.key in COLUMN_TAGS):
        return _compile_mlflow_tag(node, joins, args)
    if node.kind in _KEYED_TABLES:
        return _compile_keyed(node, joins, args)
    raise _invalid(f"unknown kind {node.kind!r}")


@dataclass(frozen=True)
class Probe:
    """A condition every matching run must meet: it has the param ``key`` with one of
    ``values``. A store may find the candidate runs through it (an index on the param's key
    and value) rather than go through every run of the experiments searched. ``alias``: the
    join of ``params`` that the filter compares for it (None if it compares in a subquery)."""

    key: str
    values: tuple[str, ...]
    alias: str | None


@dataclass(frozen=True)
class CompiledSearch:
    """SQL fragments of one search over ``runs r``; the args of each fragment are separate
    because the caller's own conditions sit between them. ``probes``: the param conditions
    (``=`` and ``IN``) ANDed at the top of the filter, which every match meets; ``ordered``:
    whether order keys were given (else the order is the tie-breakers' alone); ``narrowing``
    (with ``narrowing_args``): the conditions ANDed at the top of the filter that only compare
    columns of ``runs`` a store can look up (run id, start time), ``"1"`` if none, so that a
    store can count the runs a search goes through."""

    where: str
    where_args: list[object]
    order: str
    order_args: list[object]
    join_clauses: tuple[tuple[str, str, object], ...] = ()  # (alias, table, key)
    probes: tuple[Probe, ...] = ()
    ordered: bool = False
    narrowing: str = "1"
    narrowing_args: list[object] = field(default_factory=list)

    @property
    def joins(self) -> str:
        """The ``LEFT JOIN`` clauses to write after ``FROM runs r``."""
        return self.joins_except(None)[0]

    @property
    def join_args(self) -> list[object]:
        """The arguments of :attr:`joins`, in order."""
        return self.joins_except(None)[1]

    def joins_except(
        self, alias: str | None, hints: dict[str, str] | None = None
    ) -> tuple[str, list[object]]:
        """The join clauses but the one of ``alias`` (for a store that selects from that
        table itself, under that alias), and their arguments. ``hints``: per table, SQL to
        write after its alias (a store's ``INDEXED BY``)."""
        hints = hints or {}
        clauses, args = [], []
        for name, table, key in self.join_clauses:
            if name == alias:
                continue
            hint = f" {hints[table]}" if table in hints else ""
            clauses.append(
                f"LEFT JOIN {table} {name}{hint} ON {name}.run_id = r.run_id AND {name}.key = ?"
            )
            args.append(key)
        return " ".join(clauses), args


#: Columns of ``runs`` that its indexes find without reading the runs' rows (the key, and the
#: start time in the experiment index), and the operators they serve. (Not the status: counting
#: the runs of one would read every row of the experiment.)
_LOOKED_UP = {
    "run_id": frozenset({"=", "IN"}),
    "start_time": frozenset({"=", "<", "<=", ">", ">="}),
    "created": frozenset({"=", "<", "<=", ">", ">="}),
}


def _looks_up_runs(node: FilterNode) -> bool:
    """Whether every comparison under ``node`` is one :data:`_LOOKED_UP` serves."""
    if isinstance(node, BoolOp):
        return all(_looks_up_runs(item) for item in node.items)
    return (
        isinstance(node, Comparison)
        and node.kind == "attribute"
        and node.op in _LOOKED_UP.get(node.key, frozenset())
    )


def _conjuncts(node: FilterNode | None) -> list[FilterNode]:
    """The parts the whole filter ANDs, through nested ANDs (an OR is one part)."""
    if node is None:
        return []
    if isinstance(node, BoolOp) and node.op == "AND":
        return [part for item in node.items for part in _conjuncts(item)]
    return [node]


def _narrowing(node: FilterNode | None) -> tuple[str, list[object]]:
    """The filter's top-level conjuncts that only look runs up (see :data:`_LOOKED_UP`),
    compiled: ``"1"`` when there are none."""
    parts = [part for part in _conjuncts(node) if _looks_up_runs(part)]
    if not parts:
        return _TRUE, []
    args: list[object] = []
    return " AND ".join(_compile(part, _Joins(), args) for part in parts), args


def _probes(node: FilterNode | None, joins: _Joins) -> list[Probe]:
    """The :class:`Probe` of each param ``=`` or ``IN`` that the whole filter ANDs."""
    probes = []
    for part in _conjuncts(node):
        if not isinstance(part, Comparison) or part.kind != "param":
            continue
        alias = joins.aliases.get(id(part))
        if part.op == "=" and isinstance(part.value, str):
            probes.append(Probe(part.key, (part.value,), alias))
        elif part.op == "IN" and isinstance(part.value, tuple) and part.value:
            probes.append(Probe(part.key, part.value, alias))
    return probes


def _order_term(key: OrderKey, joins: _Joins, args: list[object]) -> str:
    """``<expr> IS NULL, <expr> ASC|DESC`` for one order key: missing values last either way."""
    direction = "ASC" if key.ascending else "DESC"
    if key.kind == "attribute":
        column = _ATTRIBUTE_COLUMNS.get(key.key)
        if column is None:
            raise _invalid(f"unknown attribute {key.key!r}")
        return f"{column} IS NULL, {column} {direction}"
    table = _KEYED_TABLES.get(key.kind)
    if table is None:
        raise _invalid(f"unknown kind {key.kind!r}")
    if key.kind == "metric":
        return _metric_order_term(key.key, direction, joins, args)
    names = _mlflow_tag_names(key.key) if key.kind == "tag" else [key.key]
    expr, bound = _value_expr(table, names, joins, 2)
    args.extend(bound * 2)  # the expression is written twice
    return f"{expr} IS NULL, {expr} {direction}"


def _metric_order_term(key: str, direction: str, joins: _Joins, args: list[object]) -> str:
    """A metric's order key: numbers, then NaN (a row whose value is NULL), then runs without
    the metric (no row), as MLflow sorts them."""
    alias = joins.add("latest_metrics", key, 2)
    if alias is not None:
        return f"{alias}.value IS NULL, {alias}.key IS NULL, {alias}.value {direction}"
    where = "o.run_id = r.run_id AND o.key = ?"
    value = f"(SELECT o.value FROM latest_metrics o WHERE {where})"
    args.extend([key] * 3)  # in the order written below
    return f"{value} IS NULL, NOT EXISTS (SELECT 1 FROM latest_metrics o WHERE {where}), " + (
        f"{value} {direction}"
    )


def compile_search(
    node: FilterNode | None, order_keys: Sequence[OrderKey] = ()
) -> CompiledSearch:
    """Compile a filter AST and order keys to SQL about ``runs r``.

    Parameters
    ----------
    node : FilterNode or None
        The AST from :func:`~nbtrack.query.filter.parse_filter`; None means "every run".
    order_keys : sequence of OrderKey
        From :func:`~nbtrack.query.filter.parse_order_by`, in order of priority.

    Returns
    -------
    CompiledSearch
        ``joins``: the ``LEFT JOIN`` clauses to put after ``FROM runs r``; ``where``: a boolean
        expression (``"1"`` for None); ``order``: the body of an ``ORDER BY`` clause, for each
        key ``<expr> IS NULL, <expr> ASC|DESC`` (runs lacking the value sort last in both
        directions; for a metric, a NaN comes just before them), then the tie-breakers
        ``r.start_time DESC, r.run_id``; ``probes``: see :class:`CompiledSearch`. No fragment
        holds user text: every key and value is a ``?`` placeholder, bound by the matching
        ``*_args`` list.

    Raises
    ------
    FilterSyntaxError
        If a hand-built AST or key has an unknown kind, attribute or operator, or a value of
        the wrong type.
    """
    joins = _Joins()
    where_args: list[object] = []
    where = _TRUE if node is None else _compile(node, joins, where_args)
    order_args: list[object] = []
    parts = [_order_term(key, joins, order_args) for key in order_keys]
    parts.append("r.start_time DESC, r.run_id")
    probes = tuple(_probes(node, joins))
    narrowing, narrowing_args = _narrowing(node)
    return CompiledSearch(
        where,
        where_args,
        ", ".join(parts),
        order_args,
        joins.clauses(),
        probes,
        ordered=bool(order_keys),
        narrowing=narrowing,
        narrowing_args=narrowing_args,
    )
