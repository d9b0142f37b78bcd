"""The objects the tracking API returns, shaped like MLflow's.

``run.info.run_id``, ``run.info.status``, ``run.data.params`` (strings), ``run.data.metrics``
(latest values), ``run.data.tags``: code written against MLflow reads them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..exceptions import InvalidInputError
from .context import MLFLOW_TAGS

__all__ = [
    "ActiveRun",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "PagedList",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunOperations",
    "RunTag",
    "ViewType",
]


class RunStatus:
    """The statuses a run can have (strings, as MLflow's)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    ALL = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
    TERMINATED = ("FINISHED", "FAILED", "KILLED")

    @classmethod
    def is_terminated(cls, status: str) -> bool:
        return status in cls.TERMINATED

    @classmethod
    def to_string(cls, status: str) -> str:
        """MLflow's spelling; statuses are strings here already."""
        return cls.from_string(status)

    @classmethod
    def from_string(cls, status: str) -> str:
        if status not in cls.ALL:
            raise ValueError(f"status must be one of {', '.join(cls.ALL)}; got {status!r}")
        return status


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class PagedList(list[Any]):
    """A page of results, as MLflow's ``PagedList``: a list, and the ``token`` that asks for
    the next page (None on the last)."""

    def __init__(self, items: Any = (), token: str | None = None):
        super().__init__(items)
        self.token = token


class ViewType:
    """Which runs or experiments a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def stages(cls, view_type: int) -> tuple[str, ...]:
        if view_type == cls.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if view_type == cls.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        if view_type == cls.ALL:
            return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)
        raise InvalidInputError(
            f"run_view_type must be ViewType.ACTIVE_ONLY (1), DELETED_ONLY (2) or ALL (3); "
            f"got {view_type!r}"
        )


class _AsDictionary:
    """MLflow's ``to_dictionary()``: the fields as a plain dict."""

    __slots__ = ()

    def to_dictionary(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(slots=True)
class Metric(_AsDictionary):
    """One logged value of a metric (``run_id``: of the run it came from, in a history). Not
    frozen: building 10 k of them must stay cheap."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    run_id: str | None = field(default=None, compare=False)  # == compares the point itself


@dataclass(frozen=True)
class Param(_AsDictionary):
    key: str
    value: str


@dataclass(frozen=True)
class RunTag(_AsDictionary):
    key: str
    value: str


@dataclass(frozen=True)
class FileInfo(_AsDictionary):
    """One entry of a run's artifact folder, as :meth:`nbtrack.Client.list_artifacts` lists
    them: ``path`` from the run's artifact root, and ``file_size`` in bytes (None for a
    folder)."""

    path: str
    is_dir: bool
    file_size: int | None


@dataclass(frozen=True)
class Experiment(_AsDictionary):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True)
class RunInfo(_AsDictionary):
    run_id: str
    experiment_id: str
    run_name: str | None
    user_id: str | None
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id


class RunTags(dict[str, str]):
    """A run's tags, which also answer to MLflow's names for nbtrack's own: ``tags.get(
    "mlflow.runName")``, ``tags["mlflow.parentRunId"]`` and ``"mlflow.user" in tags`` read the
    ``nbtrack.`` tag unless a tag of the MLflow name was set itself (as filters read them).
    Listing them (``keys()``, ``items()``, ``dict(tags)``) shows each tag once, under the name
    it is stored under."""

    __slots__ = ()

    def _own_name(self, key: Any) -> Any:
        """The key a lookup of ``key`` reads: ``key`` itself if present, else the nbtrack tag
        MLflow's name stands for."""
        if not isinstance(key, str) or dict.__contains__(self, key):
            return key
        return MLFLOW_TAGS.get(key, key)

    def __missing__(self, key: str) -> str:
        own = self._own_name(key)
        if own != key and dict.__contains__(self, own):
            return dict.__getitem__(self, own)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._own_name(key))

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, self._own_name(key), default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return dict.setdefault(self, self._own_name(key), default)

    def pop(self, key: str, *default: Any) -> Any:
        own = self._own_name(key)
        if not default and not dict.__contains__(self, own):
            raise KeyError(key)
        return dict.pop(self, own, *default)

    def __delitem__(self, key: str) -> None:
        own = self._own_name(key)
        if not dict.__contains__(self, own):
            raise KeyError(key)
        dict.__delitem__(self, own)

    def copy(self) -> RunTags:
        return RunTags(self)


@dataclass(frozen=True)
class RunData(_AsDictionary):
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=RunTags)

    def __post_init__(self) -> None:
        if not isinstance(self.tags, RunTags):
            object.__setattr__(self, "tags", RunTags(self.tags))


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "info": dict(self.info.__dict__),
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
        }


class ActiveRun(Run):
    """The run :func:`nbtrack.start_run` returns; as a context manager it ends the run.

    On leaving the ``with`` block the run ends FINISHED, or FAILED if an exception escaped it
    (the traceback is kept in the ``nbtrack.error`` tag), or KILLED on ``KeyboardInterrupt``.
    """

    def __init__(self, run: Run):
        object.__setattr__(self, "info", run.info)
        object.__setattr__(self, "data", run.data)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from .fluent import _end_run_with_exception

        _end_run_with_exception(self.info.run_id, exc_type, exc, tb)


class RunOperations:
    """What a log call with ``synchronous=False`` returns, as in MLflow: the rows are buffered
    (as every log call's are), and :meth:`wait` returns once they are written."""

    __slots__ = ("_write",)

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write

    def wait(self) -> None:
        """Write what is buffered now, and return when it is stored."""
        self._write()
