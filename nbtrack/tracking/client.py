"""`Client`: the explicit tracking API, by run and experiment id (MLflow's ``MlflowClient``).

The fluent functions (:mod:`nbtrack.tracking.fluent`) are built on it. One store and one write
buffer are shared by every client of the same database in a process.
"""

from __future__ import annotations

import itertools
import math
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..clock import now_ms as _now_ms
from ..exceptions import (
    AlreadyExistsError,
    ExperimentNotFoundError,
    InvalidInputError,
    NotFoundError,
    ParamConflictError,
    ReservedTagError,
    RunNotFoundError,
    RunStateError,
)
from ..registry.client import RegistryMethods
from ..store.base import BatchOutcome, Release
from ..store.process import own_start, process_alive, this_process
from ..store.schema import COLUMN_TAGS, column_tags
from ..store.sqlite import SQLiteStore, absolute_artifact_uri
from . import context
from .artifacts import ArtifactWriter, check_artifact_path, list_folder
from .buffer import WriteBuffer, combined, wake_writer
from .entities import (
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunOperations,
    RunStatus,
    RunTag,
    ViewType,
)
from .names import generate_run_name
from .paging import offset_of, token_at
from .uri import StoreLocation, resolve, uri_scheme
from .validation import (
    INT64_MAX,
    check_experiment_name,
    check_key,
    check_param_value,
    check_run_name,
    check_tag,
    metric_value,
    parse_experiment_id,
    step_value,
    timestamp_value,
)

__all__ = ["Client"]

DEFAULT_EXPERIMENT_ID = "0"


class _Backend:
    """The store, write buffer and caches of one database, shared within a process."""

    def __init__(self, location: StoreLocation):
        self.location = location
        self.store = SQLiteStore(location.db_path, location.artifact_root)
        self.store.ensure_default_experiment()
        self.store.mark_dead_runs(wait=False)  # not now if another process is writing
        self.buffer = WriteBuffer(self.store, self.learn)
        self.store.wake_checkpointer = wake_writer  # a loop of quick runs: checkpoint as it goes
        self.buffer.give_back_all_refused(_waiting_refusals.pop(location.db_path, {}))
        self.writable_runs: set[str] = set()
        self.params: dict[str, dict[str, str]] = {}  # run_id -> params known to be stored/queued
        self.artifact_locations: dict[int, str] = {}  # experiment -> its own folder, or ""
        self.lock = threading.RLock()

    def learn(self, outcome: BatchOutcome) -> None:
        """Correct what this process believes of runs from what a write found in the store:
        a run deleted or purged by another process is no longer taken for writable (the next
        log call to it checks, and says so), and a param stored first elsewhere is known by its
        stored value (logging that value again is fine, another one is refused at once)."""
        with self.lock:
            for run_id in outcome.deleted:
                self.writable_runs.discard(run_id)
            for run_id, error in outcome.refused:
                if isinstance(error, RunNotFoundError):
                    self.writable_runs.discard(run_id)
                    self.params.pop(run_id, None)
            for (run_id, key), value in outcome.stored_params.items():
                known = self.params.get(run_id)
                if known is not None:
                    known[key] = value


_backends: dict[tuple[int, Path], _Backend] = {}
_backends_lock = threading.Lock()
_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_inherited: list[_Backend] = []  # a parent's SQLite handles: never used, never closed, in a child


def _rebind_after_fork() -> None:
    """In a forked child, give every client a backend (connection, buffer) of its own."""
    global _backends_lock
    _backends_lock = threading.Lock()
    _inherited.extend(_backends.values())
    _backends.clear()
    _waiting_refusals.clear()  # the parent's to raise, not the child's
    for client in list(_live_clients):
        # Opened on first use: a child that never logs (a data-loader worker, a pool process)
        # must not wait on the database, or write to it, just for having been forked.
        client._b = _Unopened(client)


class _Unopened:
    """Stands in for a forked client's backend until first use, then puts the real one in
    its place (so logging calls keep reading a plain attribute)."""

    def __init__(self, client: Client):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        client = self._client
        real = client._b = backend(client._location)
        return getattr(real, name)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rebind_after_fork)


def backend(location: StoreLocation) -> _Backend:
    key = (os.getpid(), location.db_path)  # a forked child must not share its parent's handle
    found = _backends.get(key)
    if found is None:
        with _backends_lock:
            found = _backends.get(key)
            if found is None:
                found = _backends[key] = _Backend(location)
    return found


def _close_stores(keep: Iterable[tuple[int, Path]] = ()) -> None:
    """Write what is buffered, then close every store this process has open (but the ``keep``
    keys of ``_backends``): their connections and files. A client used afterwards opens its
    store again, and refusals not yet raised wait for it (its runs' ends raise them). For
    processes that go through many stores, such as a test suite: each open store holds half a
    dozen file descriptors. Not while other threads log to those stores: a row logged while
    this runs may miss the flush. A failed write is raised once all are closed (its rows are
    lost: the store it was for is closed)."""
    kept = set(keep)
    with _backends_lock:
        closing = {key: b for key, b in _backends.items() if key not in kept}
        for key in closing:
            del _backends[key]
    gone = set(map(id, closing.values()))
    for client in list(_live_clients):
        if id(client._b) in gone:
            client._b = _Unopened(client)
    first: Exception | None = None
    for key, b in closing.items():
        try:
            b.buffer.flush()
        except Exception as exc:  # close the others all the same, then say so
            first = first or exc
        refused = b.buffer.take_all_refused()
        if refused:
            _waiting_refusals.setdefault(key[1], {}).update(refused)
        b.buffer.close()
        b.store.close()
    if first is not None:
        raise first


#: Refusals of closed stores, per database file, handed to the store's next buffer.
_waiting_refusals: dict[Path, dict[str, list[Exception]]] = {}


_MLFLOW_PARENT = "mlflow.parentRunId"


def _owned_by_a_live_process(row: Mapping[str, Any]) -> bool:
    """Whether a run is RUNNING for a process that is still there (or on another host, where
    it cannot be checked): the process that will end it, or be found gone."""
    if row["status"] != RunStatus.RUNNING or not row.get("pid"):
        return False
    if row.get("host") != context.host():
        return True
    return process_alive(int(row["pid"]), row.get("process_start"))


def _experiment_id(experiment_id: Any) -> int:
    value = parse_experiment_id(experiment_id)
    if value is None:
        raise InvalidInputError(
            f"experiment id must be a number like '0' or '3'; got {experiment_id!r}"
        )
    return value


def _undeletable(key: str, column_tag: str) -> ReservedTagError:
    """The error for deleting a reserved tag the run's row holds (see ``COLUMN_TAGS``)."""
    hint = "; rename the run instead" if column_tag == context.RUN_NAME else ""
    return ReservedTagError(
        f"tag {key!r} is nbtrack's record of the run ({COLUMN_TAGS[column_tag]}); it cannot "
        f"be deleted{hint}"
    )


class Client(RegistryMethods):
    """Explicit access to a tracking store.

    Parameters
    ----------
    tracking_uri
        A directory, ``.db`` path or ``sqlite:///`` URI; default: the tracking URI in force.

    Examples
    --------
    >>> client = nbtrack.Client()                                     # doctest: +SKIP
    >>> run = client.create_run(experiment_id="0", run_name="manual")  # doctest: +SKIP
    >>> client.log_metric(run.info.run_id, "loss", 0.3, step=1)       # doctest: +SKIP
    >>> client.set_terminated(run.info.run_id)                        # doctest: +SKIP
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        registry_uri: str | os.PathLike[str] | None = None,
    ):
        self._location = resolve(tracking_uri)
        if registry_uri is not None and resolve(registry_uri).db_path != self._location.db_path:
            raise InvalidInputError(
                f"registry_uri {os.fspath(registry_uri)!r} names another store than the tracking "
                f"URI ({self._location.uri}): nbtrack keeps the model registry in the tracking "
                "store; leave registry_uri out, or give the same store"
            )
        self._b: _Backend | _Unopened = backend(self._location)
        self._artifact_prefix = str(self._location.artifact_root) + os.sep
        _live_clients.add(self)

    @property
    def store(self) -> SQLiteStore:
        return self._b.store

    @property
    def tracking_uri(self) -> str:
        return self._location.uri

    def flush(self) -> None:
        """Write everything buffered for this store now; raise the errors of rows the store
        refused (a param another process stored first, a run purged meanwhile), if any."""
        buffer = self._b.buffer
        buffer.flush()
        refused = buffer.take_refused()
        if refused:
            raise combined(refused)

    def _written(self, synchronous: bool | None) -> RunOperations | None:
        """MLflow's ``synchronous`` flag of a log call: True returns once the rows are written;
        False returns an object to ``wait()`` on; None (the default) leaves them buffered."""
        if synchronous:
            self._write_buffered()
        elif synchronous is not None:
            return RunOperations(self._write_buffered)
        return None

    def _write_buffered(self) -> None:
        """Write everything buffered before a read or a change: the errors of refused rows
        wait for the run they concern (its end) or an explicit :meth:`flush`."""
        self._b.buffer.flush()

    # -- experiments --------------------------------------------------------------------------

    def _experiment(self, row: dict[str, Any]) -> Experiment:
        location = row["artifact_location"] or str(
            self._location.artifact_root / str(row["experiment_id"])
        )
        return Experiment(
            experiment_id=str(row["experiment_id"]),
            name=row["name"],
            artifact_location=location,
            lifecycle_stage=row["lifecycle_stage"],
            tags=row["tags"],
            creation_time=row["creation_time"],
            last_update_time=row["last_update_time"],
        )

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        """Create an experiment and return its id (a string, as MLflow's)."""
        check_experiment_name(name)
        existing = self.store.get_experiment(name=name)
        if existing is not None:
            state = (
                " (deleted; restore it with restore_experiment)"
                if (existing["lifecycle_stage"] == LifecycleStage.DELETED)
                else ""
            )
            raise AlreadyExistsError(
                f"experiment {name!r} already exists with id {existing['experiment_id']}{state}"
            )
        if artifact_location is not None:
            artifact_location = _local_artifact_location(artifact_location)
        clean_tags = dict(check_tag(k, v) for k, v in (tags or {}).items())
        try:
            return str(self.store.create_experiment(name, artifact_location, clean_tags))
        except sqlite3.IntegrityError:  # created by another process since the check above
            raise AlreadyExistsError(f"experiment {name!r} already exists") from None

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment ``name``, created if missing (safe when processes race to create it)."""
        check_experiment_name(name)
        return self.get_experiment(self.store.get_or_create_experiment(name))

    def get_experiment(self, experiment_id: str | int) -> Experiment:
        row = self.store.get_experiment(_experiment_id(experiment_id))
        if row is None:
            raise ExperimentNotFoundError(f"no experiment with id {experiment_id!r}")
        return self._experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        row = self.store.get_experiment(name=name)
        return None if row is None else self._experiment(row)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Experiments, newest first (MLflow's default ``order_by``: ``creation_time DESC``,
        then ``experiment_id``): a page of at most ``max_results`` (all by default), whose
        ``token`` asks for the next (None on the last), as in MLflow.

        ``filter_string`` is the run filter language over ``name``, ``experiment_id``,
        ``creation_time``, ``last_update_time`` and ``tags.<key>``, with AND, OR and parentheses:
        ``name LIKE 'vision-%' AND tags.team = 'cv'``.
        """
        rows = self.store.list_experiments(ViewType.stages(view_type))
        experiments = [self._experiment(r) for r in rows]
        if filter_string:
            from ..query.experiments import filter_experiments

            experiments = filter_experiments(experiments, filter_string)
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
        ):
            raise InvalidInputError(f"max_results must be a positive integer; got {max_results!r}")
        if isinstance(order_by, str):
            order_by = [order_by]
        if not order_by:
            order_by = ["creation_time DESC", "experiment_id ASC"]
        if order_by:
            for clause in reversed(order_by):
                field, _, direction = clause.strip().partition(" ")
                field = field.removeprefix("attributes.").removeprefix("attribute.")
                if field not in {"name", "experiment_id", "creation_time", "last_update_time"}:
                    raise InvalidInputError(
                        f"cannot order experiments by {field!r}; use name, experiment_id, "
                        "creation_time or last_update_time"
                    )
                if direction.strip().upper() not in ("", "ASC", "DESC"):
                    raise InvalidInputError(
                        f"order_by {clause!r}: the direction must be ASC or DESC; "
                        f"got {direction.strip()!r}"
                    )

                def sort_key(e: Experiment, f: str = field) -> Any:
                    value = getattr(e, f)
                    return int(value) if f == "experiment_id" else value

                experiments.sort(key=sort_key, reverse=direction.strip().upper() == "DESC")
        offset = offset_of(page_token)
        if max_results is None:
            return PagedList(experiments[offset:], None)
        end = offset + max_results
        more = end < len(experiments)
        return PagedList(experiments[offset:end], token_at(end) if more else None)

    def delete_experiment(self, experiment_id: str | int) -> None:
        """Mark an experiment deleted, and its runs with it, as MLflow does: they leave
        searches, and logging to them is refused. restore_experiment undoes both; ``nbtrack
        gc`` purges the runs."""
        experiment = self.get_experiment(experiment_id)
        if _experiment_id(experiment_id) == int(DEFAULT_EXPERIMENT_ID):
            raise InvalidInputError("the Default experiment (id 0) cannot be deleted")
        self._write_buffered()
        if not self.store.delete_experiment(_experiment_id(experiment_id)):
            raise RunStateError(f"experiment {experiment.name!r} is deleted already")
        self._b.writable_runs.clear()  # its runs are not writable any more: check again

    def restore_experiment(self, experiment_id: str | int) -> None:
        """Make a deleted experiment active again, with the runs deleted with it (not those
        deleted before it)."""
        experiment = self.get_experiment(experiment_id)
        if not self.store.restore_experiment(_experiment_id(experiment_id)):
            raise RunStateError(f"experiment {experiment.name!r} is not deleted")

    def rename_experiment(self, experiment_id: str | int, new_name: str) -> None:
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise RunStateError(
                f"experiment {experiment.name!r} is deleted: restore it before renaming it "
                f"(nbtrack.Client().restore_experiment({experiment.experiment_id!r}))"
            )
        check_experiment_name(new_name)
        other = self.store.get_experiment(name=new_name)
        if other is not None and str(other["experiment_id"]) != str(experiment_id):
            raise AlreadyExistsError(f"experiment {new_name!r} already exists")
        self.store.update_experiment(_experiment_id(experiment_id), name=new_name)

    def set_experiment_tag(self, experiment_id: str | int, key: str, value: Any) -> None:
        self.get_experiment(experiment_id)
        key, text = check_tag(key, value)
        self.store.set_experiment_tag(_experiment_id(experiment_id), key, text)

    def delete_experiment_tag(self, experiment_id: str | int, key: str) -> None:
        """Remove a tag from an experiment (an error if it has no tag ``key``)."""
        experiment = self.get_experiment(experiment_id)
        if not self.store.delete_experiment_tag(_experiment_id(experiment_id), key):
            raise InvalidInputError(f"experiment {experiment.name!r} has no tag {key!r}")

    def get_parent_run(self, run_id: str) -> Run | None:
        """The parent of a nested run, or None for a top-level one (the ``mlflow.parentRunId``
        tag first, as filters read it)."""
        tags = self.get_run(run_id).data.tags
        parent = tags.get(_MLFLOW_PARENT)  # else nbtrack's own (RunTags reads it so)
        return None if parent is None else self.get_run(parent)

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | int = DEFAULT_EXPERIMENT_ID,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        description: str | None = None,
        snapshots: Sequence[tuple[str, str, int, bytes]] = (),
        *,
        _ended_by_this_process: bool = False,
    ) -> Run:
        """Create a RUNNING run; everything is checked before anything is written.

        ``snapshots`` (``(kind, sha256, size, zlib content)``) are stored with it, atomically.
        The run stays RUNNING until :meth:`set_terminated`, whichever process calls it: as in
        MLflow, a launcher may create a run for a worker to log to and end. (Runs of
        ``start_run``, which this process ends, are marked KILLED if it dies first.)
        """
        exp_id = _experiment_id(experiment_id)
        check_run_name(run_name)
        user_tags = dict(row[1:] for row in _tag_rows("", (tags or {}).items()))
        # MLflow's client makes a child run with this tag; a parent given as such wins, as
        # the real parent overrides the tag in MLflow's start_run(nested=True).
        tagged_parent = user_tags.pop(_MLFLOW_PARENT, None)
        if parent_run_id is None:
            parent_run_id = tagged_parent
        if parent_run_id is not None:
            self._run_row(parent_run_id)
        # MLflow's names for the origin tags set the run's own record, as MLflow takes the run's
        # user from mlflow.user: start_run(tags={"mlflow.user": "alice"}) is alice's run.
        for key in [k for k in user_tags if context.MLFLOW_TAGS.get(k) in COLUMN_TAGS]:
            user_tags[context.MLFLOW_TAGS[key]] = user_tags.pop(key)
        name = run_name or user_tags.get(context.RUN_NAME) or generate_run_name()
        run_id = uuid.uuid4().hex
        all_tags = context.run_context_tags()
        all_tags.update(user_tags)
        all_tags[context.RUN_NAME] = name
        if parent_run_id:
            all_tags[context.PARENT_RUN_ID] = parent_run_id
        if description is not None:
            all_tags[context.NOTE] = check_tag(context.NOTE, description)[1]
        row = {
            "run_id": run_id,
            "experiment_id": exp_id,
            "run_name": name,
            "status": RunStatus.RUNNING,
            "start_time": _now_ms() if start_time is None else timestamp_value(start_time),
            "parent_run_id": parent_run_id,
            "user": all_tags[context.USER],
            "host": context.host(),
            "pid": os.getpid() if _ended_by_this_process else None,  # None: never marked
            "process_start": own_start() if _ended_by_this_process else None,
            "source": all_tags.get(context.SOURCE_NAME),
            "artifact_uri": self._new_artifact_uri(exp_id, run_id),
            "source_type": all_tags.get(context.SOURCE_TYPE),
            "git_commit": all_tags.get(context.GIT_COMMIT),
            "git_branch": all_tags.get(context.GIT_BRANCH),
        }
        # The reserved tags of the run's origin are columns of its row (see COLUMN_TAGS).
        rows = {k: v for k, v in all_tags.items() if k not in COLUMN_TAGS}
        if not self.store.create_run(row, rows, snapshots):
            # Checked in the insert itself (one statement less per run); say why it failed.
            self.check_experiment_open(experiment_id)
            raise RunStateError(f"experiment {experiment_id!r} is not open for new runs")
        self._b.writable_runs.add(run_id)
        self._b.params[run_id] = {}
        return self._make_run(
            {**row, "end_time": None, "lifecycle_stage": LifecycleStage.ACTIVE},
            {},
            {},
            all_tags,
        )

    def _run_row(self, run_id: str) -> dict[str, Any]:
        if not isinstance(run_id, str):
            raise RunNotFoundError(f"run id must be a string; got {run_id!r}")
        row = self.store.get_run_row(run_id)
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r} in {self._location.db_path}")
        return row

    def _new_artifact_uri(self, exp_id: int, run_id: str) -> str:
        """Where a new run's artifacts go: under the experiment's own ``artifact_location``
        when it has one (an absolute folder), else ``<exp>/<run>`` under the store's
        ``artifacts/`` (relative, so the store can be moved with its folder)."""
        location = self._b.artifact_locations.get(exp_id)
        if location is None:
            row = self.store.get_experiment(exp_id)
            location = (row or {}).get("artifact_location") or ""
            location = location.removeprefix("file://")
            self._b.artifact_locations[exp_id] = location
        return os.path.join(location, run_id) if location else f"{exp_id}/{run_id}"

    def artifact_uri(self, stored: str) -> str:
        """The absolute artifact folder of a run from the ``artifact_uri`` its row holds."""
        return absolute_artifact_uri(self._artifact_prefix, stored)

    def artifact_uris(self, stored: Sequence[str]) -> list[str]:
        """:meth:`artifact_uri` of many rows (a search's column)."""
        prefix, isabs = self._artifact_prefix, os.path.isabs
        return [uri if isabs(uri) else prefix + uri for uri in stored]

    def _artifact_dir(self, row: dict[str, Any]) -> Path:
        return Path(self.artifact_uri(str(row["artifact_uri"])))

    def _make_run(
        self,
        row: dict[str, Any],
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
    ) -> Run:
        info = RunInfo(
            run_id=row["run_id"],
            experiment_id=str(row["experiment_id"]),
            run_name=row["run_name"],
            user_id=row["user"],
            status=row["status"],
            start_time=row["start_time"],
            end_time=row["end_time"],
            artifact_uri=self.artifact_uri(row["artifact_uri"]),
            lifecycle_stage=row["lifecycle_stage"],
        )
        tags = {**tags, **column_tags(row)}  # the reserved tags its row holds
        return Run(info, RunData(metrics=metrics, params=params, tags=tags))

    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics and tags (everything logged so far)."""
        self._write_buffered()
        with self.store.snapshot():  # the row and its children from one state of the store
            row = self._run_row(run_id)
            if not (
                row["status"] == RunStatus.RUNNING
                and not this_process(row["pid"], row["process_start"])
                and row["host"] == context.host()
            ):
                return self._run_with_children(row)
        # Its process may have died since the store opened: mark it if the lock is free.
        self.store.mark_dead_runs(wait=False)
        with self.store.snapshot():
            return self._run_with_children(self._run_row(run_id))

    def _run_with_children(self, row: dict[str, Any]) -> Run:
        kids = self._run_children([row["run_id"]])[row["run_id"]]
        return self._make_run(row, kids["params"], kids["latest_metrics"], kids["tags"])

    def _run_children(self, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Per run id: its ``params``, ``latest_metrics`` (NaN restored) and ``tags``."""
        children: dict[str, dict[str, dict[str, Any]]] = {
            r: {"params": {}, "latest_metrics": {}, "tags": {}} for r in run_ids
        }
        for table in ("params", "latest_metrics", "tags"):
            for index, key, value in self.store.run_children(run_ids, table):
                if table == "latest_metrics" and value is None:
                    value = math.nan
                children[run_ids[index]][table][key] = value
        return children

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Several runs at once, in the order given (missing ids are skipped)."""
        self._write_buffered()
        with self.store.snapshot():
            return self._runs(run_ids)

    def _runs(self, run_ids: Sequence[str]) -> list[Run]:
        """:meth:`get_runs` without writing what is buffered first: for use inside a
        snapshot (see :meth:`~nbtrack.store.sqlite.SQLiteStore.snapshot`)."""
        rows = self.store.get_run_rows(run_ids)
        children = self._run_children([r["run_id"] for r in rows])
        return [
            self._make_run(
                r,
                children[r["run_id"]]["params"],
                children[r["run_id"]]["latest_metrics"],
                children[r["run_id"]]["tags"],
            )
            for r in rows
        ]

    def find_run_id(self, prefix: str) -> str:
        """The full id of the run whose id is ``prefix`` or starts with it (as printed by
        ``nbtrack runs``); RunNotFoundError if none, InvalidInputError if several."""
        if not isinstance(prefix, str) or not prefix:
            raise RunNotFoundError(f"a run id (or a prefix of one) is needed; got {prefix!r}")
        given, prefix = prefix, prefix.lower()  # as copied from a tool that prints upper case
        if not all(c in "0123456789abcdef" for c in prefix):
            raise RunNotFoundError(f"no run id starts with {given!r} (run ids are hex)")
        rows = self.store.run_ids_with_prefix(prefix, limit=6)
        if not rows:
            raise RunNotFoundError(f"no run id starts with {prefix!r}")
        if len(rows) > 1:
            shown = ", ".join(rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise InvalidInputError(
                f"{prefix!r} matches several runs ({shown}); give more characters"
            )
        return rows[0]

    def check_experiment_open(self, experiment_id: str | int) -> None:
        """Raise unless runs can be added to this experiment (it exists and is not deleted)."""
        exp_id = _experiment_id(experiment_id)
        stage = self.store.experiment_stage(exp_id)
        if stage is None:
            raise ExperimentNotFoundError(f"no experiment with id {experiment_id!r}")
        if stage == LifecycleStage.DELETED:
            raise RunStateError(
                f"experiment {self.get_experiment(exp_id).name!r} is deleted; "
                "restore it before adding runs"
            )

    def _writable(self, run_id: str) -> None:
        """Raise unless ``run_id`` names a run that may be logged to (cached once known)."""
        if run_id in self._b.writable_runs:
            return
        row = self._run_row(run_id)
        if row["lifecycle_stage"] == LifecycleStage.DELETED:
            exp_id = row["experiment_id"]
            if self.store.experiment_stage(exp_id) == LifecycleStage.DELETED:
                raise RunStateError(
                    f"run {run_id} is deleted with its experiment "
                    f"{self.get_experiment(exp_id).name!r}; restore_experiment('{exp_id}') "
                    "before logging to it"
                )
            raise RunStateError(
                f"run {run_id} is deleted; restore_run({run_id!r}) before logging to it"
            )
        self._b.writable_runs.add(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        row = self._run_row(run_id)
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = _check_status(status)
            # As MLflow: an end time when it ends, none while it runs (again).
            fields["end_time"] = _now_ms() if RunStatus.is_terminated(status) else None
            if not RunStatus.is_terminated(status) and not _owned_by_a_live_process(row):
                # Running again, for whoever ends it: not KILLED when its old process is found
                # gone. Only if that is still the process it belongs to (not a process that
                # resumed it meanwhile).
                fields["pid"] = Release(row["pid"], row["host"], row["process_start"])
        if name is not None:
            check_run_name(name)
            fields["run_name"] = name
        if fields:
            refused = None
            if fields.get("end_time") is not None:  # ending: as set_terminated, refusals follow
                refused = self._terminate(run_id, **fields)
            else:
                self._write_buffered()
                self.store.update_run(run_id, **fields)
            if refused is not None:
                raise refused

    def reopen_run(self, run_id: str) -> None:
        """Make an ended run RUNNING again in this process (``start_run(run_id=...)``)."""
        self._write_buffered()
        if not self.store.reopen_run(run_id, context.host(), os.getpid(), own_start()):
            raise RunNotFoundError(f"no run with id {run_id!r} in {self._location.db_path}")

    def set_terminated(
        self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        """End a run: flush what it logged, then set its status and end time.

        Buffered rows of this run that the store refused (a param another process stored
        first, say) raise their error once the run has ended.
        """
        refused = self._terminate(run_id, status, end_time)
        if refused is not None:
            raise refused

    def _terminate(
        self, run_id: str, status: str, end_time: int | None = None, **fields: Any
    ) -> Exception | None:
        """``set_terminated`` (with any other ``fields`` of the run in the same write),
        returning (not raising) the error of rows the store refused."""
        _check_status(status)
        end = _now_ms() if end_time is None else timestamp_value(end_time)
        buffer = self._b.buffer
        buffer.flush()
        refused = buffer.take_refused(run_id)  # those rows are gone for good; the run still ends
        try:
            found = self.store.update_run(run_id, status=status, end_time=end, **fields)
        except BaseException:
            buffer.give_back_refused(run_id, refused)  # for the next try to raise
            raise
        if not found:
            also = "".join(f"; {e}" for e in refused)  # the refusals say what was lost
            raise RunNotFoundError(f"no run with id {run_id!r} in {self._location.db_path}{also}")
        return combined(refused) if refused else None

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted: hidden from searches, kept until ``nbtrack gc``."""
        self._run_row(run_id)
        self._write_buffered()
        self.store.update_run(
            run_id, lifecycle_stage=LifecycleStage.DELETED, deleted_time=_now_ms()
        )
        self._b.writable_runs.discard(run_id)

    def restore_run(self, run_id: str) -> None:
        self._run_row(run_id)
        self.store.update_run(run_id, lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)

    # -- params, metrics, tags ----------------------------------------------------------------

    def _known_params(self, run_id: str) -> dict[str, str]:
        known = self._b.params.get(run_id)
        if known is None:
            known = self._b.params[run_id] = self.store.get_params(run_id)
        return known

    def _check_params(self, run_id: str, items: dict[str, str]) -> list[tuple[str, str, str]]:
        """Rows to queue for new params; raise on a conflicting value (nothing queued then)."""
        known = self._known_params(run_id)
        rows = []
        for key, text in items.items():
            old = known.get(key)
            if old is None:
                rows.append((run_id, key, text))
            elif old != text:
                raise ParamConflictError(
                    f"param {key!r} of run {run_id} is already {old!r}; cannot change it to "
                    f"{text!r}. Params are fixed once logged: start a new run for new values, "
                    "or log a changing quantity as a metric."
                )
        return rows

    def log_param(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> Any:
        """Log a param (stored as ``str(value)``); returns ``value`` as MLflow does.
        ``synchronous=True`` returns once it is written (otherwise it is buffered); a value the
        store refuses (another process stored the param first) is reported where the run
        ends."""
        self.log_params(run_id, {key: value})
        return self._written(synchronous) or value

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        _check_mapping("log_params", "params", params)
        self._writable(run_id)
        items = {check_key(k, "param"): check_param_value(k, v) for k, v in params.items()}
        with self._b.lock:
            rows = self._check_params(run_id, items)
            known = self._known_params(run_id)
            for row in rows:
                known[row[1]] = row[2]
                self._b.buffer.add_param(row)
        self._b.buffer.settle()

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Log one value of a metric (buffered; costs microseconds). ``synchronous=True``
        returns once it is written."""
        if run_id not in self._b.writable_runs:
            self._writable(run_id)
        buffer = self._b.buffer
        buffer.add_metric(
            (
                run_id,
                check_key(key, "metric"),
                metric_value(key, value),
                _now_ms() if timestamp is None else timestamp_value(timestamp),
                0 if step is None else step_value(step),
            )
        )
        if synchronous is None and not buffer.write_through:  # a training loop's: done
            return None
        if not synchronous:  # (synchronous=True writes everything just below)
            buffer.settle()
        return self._written(synchronous)

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, Any],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        _check_mapping("log_metrics", "metrics", metrics)
        self._writable(run_id)
        ts = _now_ms() if timestamp is None else timestamp_value(timestamp)
        st = step_value(step)
        rows = [
            (run_id, check_key(k, "metric"), metric_value(k, v), ts, st) for k, v in metrics.items()
        ]
        for row in rows:
            self._b.buffer.add_metric(row)
        self._b.buffer.settle()

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> RunOperations | None:
        """Set a tag; setting ``nbtrack.runName`` renames the run, as in MLflow.
        ``synchronous=True`` returns once it is written."""
        self.set_tags(run_id, {key: value})
        return self._written(synchronous)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        _check_mapping("set_tags", "tags", tags)
        self._writable(run_id)
        rows = _tag_rows(run_id, tags.items())
        self._queue_tags(rows)
        self._b.buffer.settle()

    def _queue_tags(self, rows: list[tuple[str, str, str]]) -> None:
        """Queue checked tag rows; a ``nbtrack.runName`` row also renames the run now."""
        for row in rows:
            if row[1] == context.RUN_NAME:
                self.update_run(row[0], name=row[2])  # queues the tag itself
            else:
                self._b.buffer.add_tag(row)

    def _set_internal_tag(self, run_id: str, key: str, value: Any) -> None:
        self._b.buffer.add_tag((run_id, *check_tag(key, value, internal=True)))
        self._b.buffer.settle()

    def delete_tag(self, run_id: str, key: str) -> None:
        if key in COLUMN_TAGS:
            raise _undeletable(key, key)
        self._writable(run_id)
        self._write_buffered()
        if self.store.delete_tag(run_id, key):
            return
        alias = context.MLFLOW_TAGS.get(key)  # mlflow.runName and the like name nbtrack's tags
        if alias in COLUMN_TAGS:
            raise _undeletable(key, alias)
        if alias is None or not self.store.delete_tag(run_id, alias):
            raise InvalidInputError(f"run {run_id} has no tag {key!r}")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = True,
    ) -> RunOperations | None:
        """Log many metrics, params and tags; all are checked before any is queued."""
        metrics = _batch_list("metrics", metrics, Metric, "Metric('loss', 0.5, timestamp, step)")
        params = _batch_list("params", params, Param, "Param('lr', '0.1')")
        tags = _batch_list("tags", tags, RunTag, "RunTag('team', 'ml')")
        self._writable(run_id)
        metric_rows = [
            (
                run_id,
                check_key(m.key, "metric"),
                metric_value(m.key, m.value),
                timestamp_value(m.timestamp) if m.timestamp is not None else _now_ms(),
                step_value(m.step),
            )
            for m in metrics
        ]
        keys = [p.key for p in params]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise InvalidInputError(
                f"log_batch got the param(s) {duplicated} more than once; each key once per batch"
            )
        items = {check_key(p.key, "param"): check_param_value(p.key, p.value) for p in params}
        tag_rows = _tag_rows(run_id, ((t.key, t.value) for t in tags))
        with self._b.lock:
            param_rows = self._check_params(run_id, items)
            known = self._known_params(run_id)
            for row in param_rows:
                known[row[1]] = row[2]
            buffer = self._b.buffer
            buffer.metrics.extend(metric_rows)
            buffer.params.extend(param_rows)
        self._queue_tags(tag_rows)
        if not synchronous:  # (synchronous=True writes everything just below)
            self._b.buffer.settle()
        return self._written(synchronous)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of a metric, by step then time."""
        self._write_buffered()
        steps, stamps, values = self.store.metric_history(run_id, key)
        if not steps:
            self._run_row(run_id)  # an unknown run is an error, a run without the key is not
        keys, run_ids = itertools.repeat(key, len(steps)), itertools.repeat(run_id, len(steps))
        return list(map(Metric, keys, values, stamps, steps, run_ids))

    def get_metric_series(
        self, run_id: str, key: str
    ) -> tuple[list[int], list[int], list[float]]:
        """A metric's history as three lists, ``(steps, timestamps, values)``, by step then
        time: what plots want, without building a Metric object per point."""
        self._write_buffered()
        series = self.store.metric_history(run_id, key)
        if not series[0]:
            self._run_row(run_id)
        return series

    # -- artifacts ----------------------------------------------------------------------------

    def _artifacts(self, run_id: str) -> ArtifactWriter:
        self._writable(run_id)
        return ArtifactWriter(self._artifact_dir(self._run_row(run_id)))

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a file into the run's artifacts (under ``artifact_path`` if given)."""
        self.store.index_artifacts(
            run_id, self._artifacts(run_id).copy_file(local_path, artifact_path)
        )

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a directory's files into the run's artifacts."""
        self.store.index_artifacts(
            run_id, self._artifacts(run_id).copy_dir(local_dir, artifact_path)
        )

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.store.index_artifacts(run_id, self._artifacts(run_id).write_text(text, artifact_file))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Save a dict as JSON (or YAML for a .yaml/.yml name, with PyYAML installed)."""
        self.store.index_artifacts(
            run_id, self._artifacts(run_id).write_dict(dictionary, artifact_file)
        )

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Save a matplotlib or Plotly figure (PNG/SVG/PDF; Plotly also .html and .json);
        ``save_kwargs`` go to ``savefig`` (or Plotly's ``write_*``)."""
        self.store.index_artifacts(
            run_id, self._artifacts(run_id).write_figure(figure, artifact_file, save_kwargs)
        )

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Save a DataFrame (or a dict of columns) as a JSON table, MLflow's format; a table
        file the run has already gets the rows appended, as in MLflow."""
        from .tables import table_json

        if not isinstance(artifact_file, str) or not artifact_file.endswith(".json"):
            raise InvalidInputError(
                f"a table's artifact_file must end in .json; got {artifact_file!r}"
            )
        writer = self._artifacts(run_id)
        existing = writer.root / check_artifact_path(artifact_file, "artifact_file")
        before = existing.read_text(encoding="utf-8") if existing.is_file() else None
        text = table_json(data, before, f"{artifact_file} of run {run_id}")
        self.store.index_artifacts(run_id, writer.write_text(text, artifact_file))

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: Sequence[str] | None = None,
        extra_columns: Sequence[str] | None = None,
    ) -> Any:
        """The table ``artifact_file`` of each run that has it (of ``run_ids``, else of every
        run of the experiment), as one DataFrame; ``extra_columns=["run_id"]`` adds the run's
        id to each row."""
        import pandas as pd

        from .tables import read_table

        columns = list(extra_columns or [])
        if set(columns) - {"run_id"}:
            raise InvalidInputError(f"extra_columns may hold 'run_id' only; got {columns!r}")
        sub = check_artifact_path(artifact_file, "artifact_file")
        if run_ids:
            rows = self.store.get_run_rows([self.find_run_id(r) for r in run_ids])
            folders = {row["run_id"]: self.artifact_uri(str(row["artifact_uri"])) for row in rows}
        else:  # as in MLflow, none given (or []) means every run of the experiment
            from ..query.search import matching_rows

            with matching_rows(
                self, [experiment_id], "", ViewType.ACTIVE_ONLY, INT64_MAX, None,
                ("run_id", "artifact_uri"),
            ) as found:  # the two columns of every run, not whole runs
                folders = {run_id: self.artifact_uri(str(uri)) for run_id, uri in found}
        frames = []
        for run_id, folder in folders.items():
            file = Path(folder) / sub
            if file.is_file():
                frame = read_table(file.read_text(encoding="utf-8"), str(file))
                if columns:  # next to a run_id column of the table's own, as MLflow does
                    frame["run_id_" if "run_id" in frame.columns else "run_id"] = run_id
                frames.append(frame)
        if not frames:
            raise NotFoundError(f"no run has a table {artifact_file!r}")
        return pd.concat(frames, ignore_index=True)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Save a PIL image or NumPy array as a PNG: at ``artifact_file``, or as step ``step``
        of the series ``key`` (``images/<key>/step-<step>.png``)."""
        from .tables import image_bytes, image_series_file

        del timestamp, synchronous  # the file is written at once either way
        if (artifact_file is None) == (key is None):
            raise InvalidInputError("give artifact_file, or key (and step) for a series")
        if key is not None:
            artifact_file = image_series_file(check_key(key, "image"), step_value(step))
        elif step is not None:
            raise InvalidInputError("step goes with key, for a series of images")
        assert artifact_file is not None
        writer = self._artifacts(run_id)
        data = image_bytes(image, artifact_file)
        self.store.index_artifacts(run_id, writer.write_bytes(data, artifact_file))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly in the run's artifact folder ``path`` (its root by
        default), as MLflow lists them: :class:`FileInfo` entries, sorted by path, whose
        ``path`` starts from the run's root. A file's path, or one with nothing, lists
        nothing. What is on disk is listed, as in MLflow, including files written into the
        folder directly; every file nbtrack logged, at any depth: :meth:`list_artifact_files`.
        """
        row = self._run_row(run_id)
        return list_folder(self._artifact_dir(row), check_artifact_path(path))

    def list_artifact_files(self, run_id: str, path: str | None = None) -> list[tuple[str, int]]:
        """``(path, size in bytes)`` of every artifact file of the run, at any depth, or only
        of ``path`` and the files under it."""
        self._run_row(run_id)
        prefix = check_artifact_path(path)
        rows = self.store.list_artifacts(run_id)
        if prefix:
            rows = [r for r in rows if r[0] == prefix or r[0].startswith(prefix + "/")]
        return rows

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy a run's artifact file or folder (``path``; '' for all) into ``dst_path`` (a new
        temporary folder by default) and return the local path of the copy, as MLflow does."""
        import shutil
        import tempfile

        source = Path(self.get_artifact_uri(run_id, path))
        if not source.exists():
            known = ", ".join(repr(p) for p, _ in self.list_artifact_files(run_id)[:10])
            known = known or "none"
            raise InvalidInputError(
                f"run {run_id} has no artifact {path!r}; its artifacts: {known}"
            )
        dest_dir = Path(tempfile.mkdtemp(prefix="nbtrack-artifacts-") if dst_path is None
                        else dst_path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / source.name if check_artifact_path(path) else dest_dir
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        return str(target)

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        root = self._artifact_dir(self._run_row(run_id))
        sub = check_artifact_path(artifact_path)
        return str(root / sub) if sub else str(root)

    # -- search -------------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str | int] | str | int,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Runs matching ``filter_string`` as Run objects (see :func:`nbtrack.search_runs`), a
        page of at most ``max_results``; its ``token`` asks for the next page (None on the
        last), as MLflow's ``MlflowClient.search_runs``::

            page = client.search_runs(["0"], max_results=100)
            while page.token:
                page = client.search_runs(["0"], max_results=100, page_token=page.token)
        """
        from ..query.search import matching_rows

        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise InvalidInputError(f"max_results must be a positive integer; got {max_results!r}")
        offset = offset_of(page_token)
        ask = max_results + 1  # one more than asked: is there a next page?
        with matching_rows(
            self, experiment_ids, filter_string, run_view_type, ask, order_by, ("run_id",), offset
        ) as rows:
            runs = self._runs([row[0] for row in rows[:max_results]])
        more = len(rows) > max_results
        return PagedList(runs, token_at(offset + max_results) if more else None)


def _check_mapping(function: str, what: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{function} takes a dict of {what} (key -> value); got {type(value).__name__}: "
            f"{value!r:.60}"
        )


def _batch_list(what: str, items: Any, kind: type, example: str) -> list[Any]:
    """log_batch's ``what`` as a list, each item with the fields of a ``kind`` (as in
    ``example``): an nbtrack entity, or one of MLflow's, read by field name as MLflow does."""
    expected = f"log_batch takes {what} as a list of nbtrack.{kind.__name__}, e.g. [{example}]"
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise InvalidInputError(f"{expected}; got {type(items).__name__}: {items!r:.60}")
    listed = list(items)
    fields = ("key", "value", "timestamp", "step") if kind is Metric else ("key", "value")
    for item in listed:
        if not isinstance(item, kind) and not all(hasattr(item, f) for f in fields):
            raise InvalidInputError(
                f"{expected}; got an item of type {type(item).__name__}: {item!r:.60}"
            )
    return listed


def _local_artifact_location(location: Any) -> str:
    """An experiment's own artifact folder, made absolute; remote URIs are refused."""
    text = os.fspath(location)
    scheme = uri_scheme(text)
    if scheme is not None and scheme != "file":
        raise InvalidInputError(
            f"artifact_location {text!r}: nbtrack stores artifacts in local (or mounted) "
            "folders; give a path such as /data/artifacts or file:///data/artifacts, "
            f"not a {scheme}:// URI"
        )
    return os.path.abspath(os.path.expanduser(text.removeprefix("file://")))


def _check_status(status: str) -> str:
    if status not in RunStatus.ALL:
        raise InvalidInputError(f"status must be one of {', '.join(RunStatus.ALL)}; got {status!r}")
    return status


def _tag_rows(run_id: str, tags: Iterable[tuple[str, Any]]) -> list[tuple[str, str, str]]:
    """Checked ``(run_id, key, text)`` rows; a ``nbtrack.runName`` value is a run name, held to
    the run-name limit."""
    rows = []
    for key, value in tags:
        key, text = check_tag(key, value)
        if key == context.RUN_NAME:
            check_run_name(text)
        rows.append((run_id, key, text))
    return rows
