"""``search_runs``: MLflow's filter language (plus OR and parentheses) over the store.

The filter and ``order_by`` are parsed into an AST (:mod:`.filter`) and compiled into SQL whose
every key and value is a bound parameter (:mod:`.sql`); the text of a filter never becomes SQL.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from ..exceptions import FilterSyntaxError, InvalidInputError, NbtrackWarning
from ..tracking.entities import Run, ViewType
from ..tracking.validation import INT64_MAX, parse_experiment_id
from .filter import parse_filter, parse_order_by
from .frame import BASE_COLUMNS, runs_frame
from .sql import compile_search

if TYPE_CHECKING:
    import pandas as pd

    from ..tracking.client import Client

__all__ = ["search_run_ids", "search_runs"]

DEFAULT_MAX_RESULTS = 100_000


def _experiment_ids(client: Client, ids: Sequence[str | int] | str | int) -> list[int]:
    if isinstance(ids, (str, int)):
        ids = [ids]
    out = []
    for i in ids:
        value = parse_experiment_id(i)
        if value is None:
            raise InvalidInputError(
                f"experiment ids are numbers like '0' or '3'; got {i!r} "
                "(pass experiment_names=[...] to search by name)"
            )
        out.append(value)
    return out


def search_run_ids(
    client: Client,
    experiment_ids: Sequence[str | int] | str | int,
    filter_string: str | None = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = DEFAULT_MAX_RESULTS,
    order_by: Sequence[str] | str | None = None,
) -> list[str]:
    """Ids of matching runs, ordered. FilterSyntaxError on a malformed filter."""
    with matching_rows(
        client, experiment_ids, filter_string, run_view_type, max_results, order_by, ("run_id",)
    ) as rows:
        return [row[0] for row in rows]


@contextmanager
def matching_rows(
    client: Client,
    experiment_ids: Sequence[str | int] | str | int,
    filter_string: str | None,
    run_view_type: int,
    max_results: int,
    order_by: Sequence[str] | str | None,
    columns: Sequence[str],
    offset: int = 0,
) -> Iterator[list[tuple[Any, ...]]]:
    """The ``columns`` of the matching runs' rows, ordered, inside a snapshot of the store:
    reads in the ``with`` block (the runs' params, metrics and tags) see the same state as
    the search did. What this process buffered is written first; nothing may be written
    inside the block."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0:
        raise InvalidInputError(
            f"max_results must be an integer of 0 or more; got {max_results!r}"
        )
    if filter_string is not None and not isinstance(filter_string, str):
        raise InvalidInputError(f"filter_string must be a string; got {filter_string!r}")
    search = compile_search(parse_filter(filter_string or ""), parse_order_by(order_by))
    stages = ViewType.stages(run_view_type)
    ids = _experiment_ids(client, experiment_ids)
    client._write_buffered()
    client.store.mark_dead_runs(wait=False)  # not now if another process is writing
    with client.store.snapshot():
        try:
            limit = min(max_results, INT64_MAX)  # SQLite's LIMIT is 64-bit
            rows = client.store.search_runs(ids, stages, search, limit, columns, offset)
        except sqlite3.OperationalError as exc:
            if "too large" not in str(exc) and "too many" not in str(exc):
                raise
            raise FilterSyntaxError(
                f"the filter is too large for SQLite ({exc}); write long lists of values as "
                "key IN ('a', 'b', ...) rather than many ORed comparisons"
            ) from None
        yield rows


def search_runs(
    experiment_ids: Sequence[str | int] | str | int | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = DEFAULT_MAX_RESULTS,
    order_by: Sequence[str] | str | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | str | None = None,
) -> pd.DataFrame | list[Run]:
    """Search runs and return them as a pandas DataFrame (or a list of Run objects).

    Parameters
    ----------
    experiment_ids, experiment_names
        Where to search. Default: the active experiment (``set_experiment``), or every
        experiment with ``search_all_experiments=True``.
    filter_string
        MLflow's language: ``metrics.acc > 0.9 AND params.model = 'rf'``, ``tags.team ILIKE
        '%ml%'``, ``attributes.status = 'FINISHED'``, ``params.opt IN ('adam', 'sgd')``,
        backquoted keys (``metrics.`f1 score` >= 0.8``). nbtrack adds ``OR`` and parentheses:
        ``(metrics.acc > 0.9 OR metrics.f1 > 0.8) AND params.model = 'rf'``.
    order_by
        Columns such as ``["metrics.acc DESC", "params.lr"]``; missing values sort last, a
        metric's NaN just before them (as in MLflow).
    output_format
        ``"pandas"`` (default) or ``"list"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, experiment_id, run_name, status, artifact_uri, start_time, end_time``
        (times as UTC datetimes), then ``metrics.*`` (latest values), ``params.*``, ``tags.*``.
    """
    from ..tracking.fluent import _active_experiment_id, _client

    if output_format not in ("pandas", "list"):
        raise InvalidInputError(f"output_format must be 'pandas' or 'list'; got {output_format!r}")
    client = _client()
    # As in MLflow, an empty list means "not given".
    if isinstance(experiment_ids, (list, tuple)) and not experiment_ids:
        experiment_ids = None
    if isinstance(experiment_names, (list, tuple)) and not experiment_names:
        experiment_names = None
    if experiment_names is not None:
        names = [experiment_names] if isinstance(experiment_names, str) else experiment_names
        ids: list[str | int] = []
        for name in names:
            exp = client.get_experiment_by_name(name)
            if exp is None:  # as in MLflow, left out (a script may run before it exists)
                known = ", ".join(repr(e.name) for e in client.search_experiments(ViewType.ALL))
                warnings.warn(
                    f"no experiment named {name!r}: it adds no runs (experiments: {known})",
                    NbtrackWarning,
                    stacklevel=2,
                )
                continue
            ids.append(exp.experiment_id)
        if experiment_ids is not None:
            ids.extend(
                [experiment_ids] if isinstance(experiment_ids, (str, int)) else experiment_ids
            )
        experiment_ids = ids
    elif experiment_ids is None:
        if search_all_experiments:
            experiment_ids = [e.experiment_id for e in client.search_experiments()]
        else:
            experiment_ids = [_active_experiment_id(client)]
    if output_format == "list":
        if max_results == 0:  # as in MLflow; Client.search_runs pages, so it needs 1 or more
            return []
        return client.search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by
        )
    with matching_rows(
        client, experiment_ids, filter_string, run_view_type, max_results, order_by, BASE_COLUMNS
    ) as rows:
        children = _children(client, [row[0] for row in rows])
    return runs_frame(client, rows, children)  # pandas work: the store is free meanwhile


class _Children(NamedTuple):
    """What a search's frame needs of the runs' own tables (see :meth:`run_children` and
    :meth:`run_columns` of the store)."""

    metrics: list[tuple[int, str, Any]]
    params: dict[str, list[Any]]
    tags: dict[str, list[Any]]


def _children(client: Client, run_ids: list[str]) -> _Children:
    """The latest metrics, params and tags of these runs; inside :func:`matching_rows`, so
    that they come from the state the search saw."""
    store = client.store
    return _Children(
        store.run_children(run_ids, "latest_metrics"),
        store.run_columns(run_ids, "params"),  # None where a run lacks the key
        store.run_columns(run_ids, "tags"),
    )
