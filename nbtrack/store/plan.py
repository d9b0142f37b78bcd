"""Where a search of the SQLite store starts: from the runs of the experiments searched, or from
the runs that have a param value the filter requires.

SQLite plans without statistics here (nobody runs ``ANALYZE`` on a store beside a notebook), so
given an index on params' key and value it would start from ``params.model = 'rf'`` whenever it
can, even when every one of 100 000 runs across 50 experiments has ``model = 'rf'`` and the
experiment searched holds 2000 of them. Instead the store counts both sides first, each count
capped at the size of the other (so that the counts cost less than the search), and writes the
plan into the SQL: ``INDEXED BY`` the experiment index, or the param's index ``CROSS JOIN``
``runs`` (SQLite keeps the left table of a ``CROSS JOIN`` outside).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..query.sql import CompiledSearch, Probe

__all__ = ["MIN_RUNS_TO_PROBE", "search_source"]

#: Below this many runs in scope the counts would cost as much as they could save.
MIN_RUNS_TO_PROBE = 200

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
#: ``(from_sql, from_args, where_sql, where_args)``: see :func:`search_source`.
Source = tuple[str, list[Any], str, list[Any]]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _runs_in_scope(query: Query, experiment_ids: Sequence[int], stages: Sequence[str]) -> int:
    sql = (
        "SELECT count(*) FROM runs INDEXED BY runs_by_experiment"
        f" WHERE experiment_id IN ({_marks(len(experiment_ids)) or 'NULL'})"
        f" AND lifecycle_stage IN ({_marks(len(stages))})"
    )
    return int(query(sql, [*experiment_ids, *stages])[0][0])


def _runs_with(query: Query, probe: Probe, cap: int) -> int:
    """How many runs of the whole store have the probe's value, counting to ``cap`` at most."""
    sql = (
        "SELECT count(*) FROM (SELECT 1 FROM params INDEXED BY params_by_value"
        f" WHERE key = ? AND value IN ({_marks(len(probe.values))}) LIMIT ?)"
    )
    return int(query(sql, [probe.key, *probe.values, cap])[0][0])


def search_source(
    query: Query,
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    search: CompiledSearch,
) -> Source:
    """``(from_sql, from_args, where_sql, where_args)`` for a search of ``runs r``.

    ``from_sql`` replaces ``FROM runs r`` and the search's joins; ``where_sql`` is ANDed to the
    search's own conditions (it is ``"1"`` when there is nothing to add). A run is in the result
    either way: the probe's condition is one every match meets, and (run, key) is unique in
    ``params``, so starting from it neither adds nor repeats a run.
    """
    joins, join_args = search.joins_except(None)
    scoped: Source = (f"FROM runs r INDEXED BY runs_by_experiment {joins}", join_args, "1", [])
    if not search.probes:
        return scoped
    in_scope = _runs_in_scope(query, experiment_ids, stages)
    if in_scope < MIN_RUNS_TO_PROBE:
        return scoped
    # Starting from the param costs about as much per run as starting from the experiment:
    # worth it only when it leaves clearly fewer runs to look at.
    best, fewest = None, in_scope // 2
    for probe in search.probes:
        count = _runs_with(query, probe, fewest)
        if count < fewest:
            best, fewest = probe, count
    if best is None:
        return scoped
    # The probe's own join becomes the table the search starts from, under the same alias.
    alias = best.alias or "d"
    joins, join_args = search.joins_except(best.alias)
    return (
        f"FROM params {alias} INDEXED BY params_by_value CROSS JOIN runs r {joins}",
        join_args,
        f"{alias}.key = ? AND {alias}.value IN ({_marks(len(best.values))})"
        f" AND r.run_id = {alias}.run_id",
        [best.key, *best.values],
    )
