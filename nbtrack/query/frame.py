"""The pandas DataFrame of a search, built column by column from the store's rows (no per-run
objects): MLflow's columns, in MLflow's types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from ..store.schema import COLUMN_TAGS
from ..tracking.context import MLFLOW_TAGS

if TYPE_CHECKING:
    import pandas as pd

    from ..tracking.client import Client
    from .search import _Children

__all__ = ["BASE_COLUMNS", "runs_frame"]

#: The columns of ``runs`` a search reads for its frame, in this order: the frame's own, then
#: those holding reserved tags (the run name is both).
BASE_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "artifact_uri",
    "start_time",
    "end_time",
    *(column for column in COLUMN_TAGS.values() if column != "run_name"),
)


def runs_frame(client: Client, rows: list[tuple[Any, ...]], children: _Children) -> pd.DataFrame:
    """MLflow's search_runs DataFrame for these runs (rows of :data:`BASE_COLUMNS`) and their
    ``children``, built column by column (no per-run objects)."""
    import numpy as np
    import pandas as pd

    n = len(rows)
    by_column = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in BASE_COLUMNS]
    by_name = dict(zip(BASE_COLUMNS, by_column, strict=True))
    run_ids, experiment_ids, run_names, statuses, artifact_uris, starts, ends = (
        by_name[c]
        for c in ("run_id", "experiment_id", "run_name", "status", "artifact_uri", "start_time",
                  "end_time")
    )
    # The reserved tags that the runs' rows hold (see COLUMN_TAGS), beside the tags table's.
    tags = dict(children.tags)
    for key, column in COLUMN_TAGS.items():
        if any(value is not None for value in by_name[column]):  # none has it: no column
            tags[key] = by_name[column]
    _add_mlflow_names(tags)
    text = _once_per_list(_text_column())
    columns: dict[str, Any] = {
        "run_id": text(run_ids),
        "experiment_id": text([str(e) for e in experiment_ids]),
        "run_name": text(run_names),
        "status": text(statuses),
        "artifact_uri": text(client.artifact_uris(artifact_uris)),
    }
    not_a_time = np.iinfo(np.int64).min  # NaT once viewed as datetime64
    utc = pd.DatetimeTZDtype("us", "UTC")  # microseconds, as MLflow's frame has them
    for col, values in (("start_time", starts), ("end_time", ends)):
        ms = np.array([not_a_time if v is None else v for v in values], dtype=np.int64)
        # Past what microseconds hold (year 294,000; only another tool writes such): NaT.
        shown = (ms != not_a_time) & (np.abs(ms) < 2**63 // 1000)
        us = np.where(shown, ms * 1000, not_a_time)
        columns[col] = pd.array(us.view("datetime64[us]"), dtype=utc)
    metrics = _metric_columns(children.metrics, n)
    for key in sorted(metrics):
        columns[f"metrics.{key}"] = metrics[key]
    for table, by_key in (("params", children.params), ("tags", tags)):
        for key in sorted(by_key):
            columns[f"{table}.{key}"] = text(by_key[key])
    if n == 0:  # keep the text columns text-typed when nothing matched
        for col in ("run_id", "experiment_id", "run_name", "status", "artifact_uri"):
            columns[col] = pd.Series([], dtype=object)
    return pd.DataFrame(columns, copy=False)  # the columns are fresh: no need to copy them


def _add_mlflow_names(tags: dict[str, list[Any]]) -> None:
    """Columns under MLflow's names for nbtrack's tags (``tags.mlflow.runName``, ...), as MLflow
    code reads its frame: per run, the tag of that name a user set, else nbtrack's own, which
    is the value filters on ``tags.mlflow.*`` compare."""
    for mlflow_key, own_key in MLFLOW_TAGS.items():
        own = tags.get(own_key)
        if own is None:
            continue
        set_by_user = tags.get(mlflow_key)
        tags[mlflow_key] = (
            own
            if set_by_user is None
            else [mine if mine is not None else o for mine, o in zip(set_by_user, own, strict=True)]
        )


def _once_per_list(
    make: Callable[[Sequence[str | None]], Any],
) -> Callable[[Sequence[str | None]], Any]:
    """``make``, run once per list: a list shown under two names (``tags.nbtrack.user`` and
    ``tags.mlflow.user``) is converted once, and the second column is a copy, which costs
    nothing for an Arrow-backed array (its buffers are immutable) and keeps the columns
    apart when one is edited."""
    made: dict[int, tuple[Sequence[str | None], Any]] = {}  # the list kept: its id stays its

    def column(values: Sequence[str | None]) -> Any:
        key = id(values)
        if key in made:
            return made[key][1].copy()
        result = make(values)
        made[key] = (values, result)
        return result

    return column


def _metric_columns(rows: list[tuple[int, str, float | None]], n: int) -> dict[str, Any]:
    """Per key, the float64 column of its latest values from ``(run index, key, value)`` rows:
    NaN where a run lacks the key, and for NaN itself (stored as NULL). Filled as one
    key-by-run matrix in numpy: row by row in Python it cost more than the query."""
    import numpy as np
    import pandas as pd

    if not rows:
        return {}
    index, keys, values = zip(*rows, strict=True)
    codes, names = pd.factorize(np.array(keys, dtype=object))
    matrix = np.full((len(names), n), np.nan)
    matrix[codes, np.array(index, dtype=np.intp)] = np.array(values, dtype=np.float64)
    return dict(zip(names, matrix, strict=True))


@cache
def _text_column() -> Callable[[Sequence[str | None]], Any]:
    """A function making the column pandas would make of a list of str and None.

    With pandas' Arrow-backed ``str`` dtype (the default from pandas 3) it builds the Arrow
    array itself: pandas would first scan every value to infer the dtype, which took a fifth
    of the frame's time. With any other default the list goes to pandas as it is. (The values
    are text or None: SQLite turns numbers into text in these columns, and the store's JSON
    grouping refuses a BLOB.)
    """
    import numpy as np
    import pandas as pd

    dtype = pd.Series(["x"]).dtype
    if not (
        isinstance(dtype, pd.StringDtype)
        and dtype.storage == "pyarrow"
        and dtype.na_value is np.nan
    ):
        return lambda values: values
    import pyarrow as pa
    from pandas.arrays import ArrowStringArray

    def column(values: Sequence[str | None]) -> Any:
        array = pa.array(values, type=pa.large_string())
        if array.null_count == len(values):  # pandas infers object for None alone
            return values
        # (pandas-stubs lack the dtype keyword of pandas 3's ArrowStringArray)
        return ArrowStringArray(array, dtype=dtype)  # type: ignore[call-arg]

    return column
