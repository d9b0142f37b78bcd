"""Where a search of the SQLite store starts: from the runs of the experiments searched, or from
the runs that have a param value the filter requires.

SQLite plans without statistics here (nobody runs ``ANALYZE`` on a store beside a notebook), so
given an index on params' key and value it may start from ``params.model = 'rf'`` even when
every one of 100 000 runs across 50 experiments has ``model = 'rf'`` and the experiment
searched holds 2000 of them, or when the first 10 runs in time order are all it needs. So the
store decides, and writes its plan into the SQL:

- by default the search starts from the experiments, as it did before the index existed: each
  param is looked up by its run (``INDEXED BY`` the primary key), and SQLite is free to start
  from the experiment index, or from ``runs.run_id`` for a filter on it;
- it starts from a param (``params kN INDEXED BY params_by_value CROSS JOIN runs r``; SQLite
  keeps the left table of a ``CROSS JOIN`` outside) only when counts show that under half as
  many runs have the value as the search would otherwise look at, and the filter names no run
  ids.

The counts are capped so that they cost less than the search they may save: the runs in scope
are counted up to what the search needs (``offset + limit``) when the order is the default one,
which SQLite reads from the experiment index and stops early; with order keys the search must
look at every run in scope anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..query.sql import CompiledSearch, Probe

__all__ = ["MAX_PROBE_VALUES", "MIN_RUNS_TO_PROBE", "search_source"]

#: Below this many runs in scope the counts would cost as much as they could save.
MIN_RUNS_TO_PROBE = 200
#: An ``IN`` list longer than this is not a starting point (its values would be bound twice).
MAX_PROBE_VALUES = 100
#: Looking a param up by its run, never by its value: SQLite's name for the primary key of
#: the ``params`` table (a ``WITHOUT ROWID`` table's first unique index).
_PARAMS_BY_RUN = {"params": "INDEXED BY sqlite_autoindex_params_1"}

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
#: ``(from_sql, from_args, where_sql, where_args)``: see :func:`search_source`.
Source = tuple[str, list[Any], str, list[Any]]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _runs_in_scope(
    query: Query, experiment_ids: Sequence[int], stages: Sequence[str], cap: int
) -> int:
    """How many runs the search covers, counting to ``cap`` at most (-1: no cap)."""
    sql = (
        "SELECT count(*) FROM (SELECT 1 FROM runs INDEXED BY runs_by_experiment"
        f" WHERE experiment_id IN ({_marks(len(experiment_ids)) or 'NULL'})"
        f" AND lifecycle_stage IN ({_marks(len(stages))}) LIMIT ?)"
    )
    return int(query(sql, [*experiment_ids, *stages, cap])[0][0])


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
    needed: int,
) -> Source:
    """``(from_sql, from_args, where_sql, where_args)`` for a search of ``runs r`` that returns
    its first ``needed`` matches (``offset + limit``).

    ``from_sql`` replaces ``FROM runs r`` and the search's joins; ``where_sql`` is ANDed to the
    search's own conditions (it is ``"1"`` when there is nothing to add). A run is in the result
    either way: the probe's condition is one every match meets, and (run, key) is unique in
    ``params``, so starting from it neither adds nor repeats a run.
    """
    joins, join_args = search.joins_except(None, _PARAMS_BY_RUN)
    scoped: Source = (f"FROM runs r {joins}", join_args, "1", [])
    probes = [p for p in search.probes if len(p.values) <= MAX_PROBE_VALUES]
    if not probes or search.by_run_id:  # the runs' own key finds them quickest
        return scoped
    # What the search from the experiments looks at: every run in scope with order keys; in
    # the default order, at least its first `needed` runs (fewer than that in scope: all).
    looked_at = _runs_in_scope(query, experiment_ids, stages, -1 if search.ordered else needed)
    if looked_at < MIN_RUNS_TO_PROBE:
        return scoped
    # Per run, starting from the param costs about what going through the experiment index
    # does (measured: 1.4-1.9 us against 0.6-1.4 us): worth it only when it leaves at most half
    # the runs to look at. (In the default order, fewer than `needed` runs with the value also
    # means the other search finds fewer than it needs, so it looks at every run in scope.)
    best, fewest = None, looked_at // 2
    for probe in probes:
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
