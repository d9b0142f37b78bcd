"""``search_experiments`` filters, evaluated over the experiments themselves.

A store holds a handful of experiments, not thousands of runs: reading them all and testing each
in Python is as fast as SQL would be, and keeps one meaning for LIKE and ILIKE (the one the run
filters compile to).
"""

from __future__ import annotations

import fnmatch
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .filter import BoolOp, Comparison, FilterNode, parse_experiment_filter
from .sql import like_to_glob

if TYPE_CHECKING:
    from ..tracking.entities import Experiment

__all__ = ["filter_experiments"]


def filter_experiments(experiments: Sequence[Experiment], text: str) -> list[Experiment]:
    """The experiments that match ``text``, such as ``name LIKE 'vision-%' AND tags.team =
    'cv'`` (see :func:`~nbtrack.query.filter.parse_experiment_filter`)."""
    node = parse_experiment_filter(text)
    if node is None:
        return list(experiments)
    return [e for e in experiments if _matches(node, e)]


def _matches(node: FilterNode, experiment: Experiment) -> bool:
    if isinstance(node, BoolOp):
        found = (_matches(item, experiment) for item in node.items)
        return all(found) if node.op == "AND" else any(found)
    value = (
        experiment.tags.get(node.key) if node.kind == "tag" else getattr(experiment, node.key)
    )
    if node.op == "IS NULL":
        return value is None
    if node.op == "IS NOT NULL":
        return value is not None
    if value is None:  # as in SQL: a missing value matches no comparison
        return False
    return _compare(node, value)


def _compare(node: Comparison, value: Any) -> bool:
    op, wanted = node.op, node.value
    if op == "=":
        return bool(value == wanted)
    if op == "!=":
        return bool(value != wanted)
    if op == "<":
        return bool(value < wanted)
    if op == "<=":
        return bool(value <= wanted)
    if op == ">":
        return bool(value > wanted)
    if op == ">=":
        return bool(value >= wanted)
    if op == "IN":
        return value in wanted  # type: ignore[operator]
    if op == "NOT IN":
        return value not in wanted  # type: ignore[operator]
    pattern = like_to_glob(str(wanted))
    if op == "ILIKE":  # SQLite's lower() and LIKE fold ASCII letters only; so does this
        return fnmatch.fnmatchcase(value.translate(_ASCII_LOWER), pattern.translate(_ASCII_LOWER))
    return fnmatch.fnmatchcase(value, pattern)  # LIKE


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
