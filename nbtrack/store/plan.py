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
  keeps the left table of a ``CROSS JOIN`` outside) only when counts show that at most half as
  many runs have the value as the search would otherwise go through.

What the search would otherwise go through is counted with the filter's conditions on looked-up
columns of ``runs`` (run ids, a start-time range), so that a search those make short is neither
lengthened nor outweighed by the counts. In the default order (newest first) from one
experiment, SQLite reads the experiment index in order and stops after the page (``offset +
limit``); such a search goes through all of its scope only when no more runs than the page have
the value, so the counts there stop at the page's size, or when the runs that have it are older
than most: in a large scope, the newest runs are looked at first, by a count that also stops at
the page's size. Otherwise the rows must be sorted, all of them are gone through, and counting
them costs a fraction of that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..query.sql import placeholders

if TYPE_CHECKING:
    from ..query.sql import CompiledSearch, Probe

__all__ = ["MAX_PROBE_VALUES", "MIN_RUNS_TO_PROBE", "NEWEST_RUNS_LOOKED_AT", "search_source"]

#: Below this many runs in scope the counts would cost as much as they could save.
MIN_RUNS_TO_PROBE = 200
#: An ``IN`` list longer than this is not a starting point (its values would be bound twice).
MAX_PROBE_VALUES = 100
#: A short page in time order looks at this many of the newest runs (20 per row of the page,
#: if more) to tell a value of older runs from one spread over time.
NEWEST_RUNS_LOOKED_AT = 1000
#: ... and starts from such a value only when fewer runs than this have it.
MAX_RUNS_TO_START_FROM = 100_000
#: Looking a param up by its run, never by its value: SQLite's name for the primary key of
#: the ``params`` table (a ``WITHOUT ROWID`` table's first unique index).
_PARAMS_BY_RUN = {"params": "INDEXED BY sqlite_autoindex_params_1"}

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
#: ``(from_sql, from_args, where_sql, where_args)``: see :func:`search_source`.
Source = tuple[str, list[Any], str, list[Any]]


def _runs_in_scope(
    query: Query,
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    search: CompiledSearch,
    cap: int,
) -> int:
    """How many runs the search goes through, counting to ``cap`` at most (-1: no cap): those
    of its experiments and stages that meet the filter's conditions on looked-up columns of
    ``runs`` (run ids, a start-time range), which SQLite counts in an index."""
    sql = (
        "SELECT count(*) FROM (SELECT 1 FROM runs r"
        f" WHERE r.experiment_id IN ({placeholders(len(experiment_ids)) or 'NULL'})"
        f" AND r.lifecycle_stage IN ({placeholders(len(stages))}) AND ({search.narrowing}) LIMIT ?)"
    )
    return int(query(sql, [*experiment_ids, *stages, *search.narrowing_args, cap])[0][0])


def _runs_with(query: Query, probe: Probe, cap: int) -> int:
    """How many runs of the whole store have the probe's value, counting to ``cap`` at most."""
    sql = (
        "SELECT count(*) FROM (SELECT 1 FROM params INDEXED BY params_by_value"
        f" WHERE key = ? AND value IN ({placeholders(len(probe.values))}) LIMIT ?)"
    )
    return int(query(sql, [probe.key, *probe.values, cap])[0][0])


def _held_by_older_runs(
    query: Query,
    experiment_id: int,
    stage: str,
    search: CompiledSearch,
    probes: list[Probe],
    needed: int,
) -> Probe | None:
    """The probe to start from when the newest runs of the scope rarely have its value, though
    more than ``needed`` runs of the store do (a value of older runs: reading in time order
    would go through the newer ones first), if few enough runs have it; else None.

    Looked at only when the scope holds more than :data:`NEWEST_RUNS_LOOKED_AT` runs: counting
    the probe's runs among those newest ones stops at ``needed``, which a value spread over
    time reaches early."""
    window = max(NEWEST_RUNS_LOOKED_AT, 20 * needed)
    edge = query(
        "SELECT start_time FROM runs INDEXED BY runs_by_experiment"
        " WHERE experiment_id = ? AND lifecycle_stage = ? ORDER BY start_time DESC"
        " LIMIT 1 OFFSET ?",
        [experiment_id, stage, window],
    )
    if not edge:
        return None  # a scope this small is read quickly in any order
    best, fewest = None, MAX_RUNS_TO_START_FROM
    for probe in probes:
        newest = query(
            "SELECT count(*) FROM (SELECT 1 FROM runs r INDEXED BY runs_by_experiment"
            " JOIN params p INDEXED BY sqlite_autoindex_params_1 ON p.run_id = r.run_id"
            f" AND p.key = ? AND p.value IN ({placeholders(len(probe.values))})"
            " WHERE r.experiment_id = ? AND r.lifecycle_stage = ? AND r.start_time >= ?"
            f" AND ({search.narrowing}) LIMIT ?)",
            [probe.key, *probe.values, experiment_id, stage, edge[0][0],
             *search.narrowing_args, needed],
        )[0][0]
        if newest >= needed:
            continue  # the page is among the newest runs
        holders = _runs_with(query, probe, fewest)
        if holders < fewest:
            best, fewest = probe, holders
    if best is None:
        return None
    # As above: worth it when at most half as many runs have it as the scope holds.
    in_scope = _runs_in_scope(query, [experiment_id], [stage], search, 2 * fewest + 1)
    return best if in_scope > 2 * fewest else None


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
    if not probes:
        return scoped

    def rarest(cap: int) -> tuple[Probe | None, int]:
        """The probe fewest runs of the store have, if under ``cap``, and how many."""
        best, fewest = None, cap
        for probe in probes:
            count = _runs_with(query, probe, fewest)
            if count < fewest:
                best, fewest = probe, count
        return best, fewest

    # Per run, starting from a param value costs about what going through the experiment does
    # (measured: 1.4-1.9 us against 0.6-1.4 us): it is chosen only when at most half as many
    # runs have the value as the other way goes through.
    # That way goes through every run in scope when the rows must be sorted (order keys, or
    # several experiments or stages, whose index entries are not in one order) ...
    everything = search.ordered or len(experiment_ids) != 1 or len(stages) != 1
    in_scope = _runs_in_scope(query, experiment_ids, stages, search, -1 if everything else needed)
    if everything or in_scope < needed:  # ... or when the scope holds fewer than the page
        if in_scope < MIN_RUNS_TO_PROBE:
            return scoped
        best, fewest = rarest(in_scope // 2)
    else:
        # In time order, reading the experiment index stops after `needed` matches; it goes
        # through every run in scope only when no more than `needed` runs have the value ...
        best, fewest = rarest(needed + 1)
        enough = max(2 * fewest + 1, MIN_RUNS_TO_PROBE)  # runs in scope that make it worth it
        if best is not None and in_scope < enough:  # (counted up to `needed` so far)
            in_scope = _runs_in_scope(query, experiment_ids, stages, search, enough)
            if in_scope < enough:
                return scoped
        if best is None:  # ... or when the runs that have it are older than most
            best = _held_by_older_runs(query, experiment_ids[0], stages[0], search, probes, needed)
    if best is None:
        return scoped
    # The probe's own join becomes the table the search starts from, under the same alias.
    alias = best.alias or "d"
    joins, join_args = search.joins_except(best.alias)
    return (
        f"FROM params {alias} INDEXED BY params_by_value CROSS JOIN runs r {joins}",
        join_args,
        f"{alias}.key = ? AND {alias}.value IN ({placeholders(len(best.values))})"
        f" AND r.run_id = {alias}.run_id",
        [best.key, *best.values],
    )
