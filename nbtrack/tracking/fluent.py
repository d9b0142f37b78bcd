"""The fluent API: module-level functions on "the active run", as in MLflow.

Rules that differ from MLflow, because notebooks re-run cells:

- ``start_run()`` while a run is active does not fail with "already active". Without
  ``nested=True`` the active run (and any nested runs under it) is ended as FINISHED first, with
  an :class:`~nbtrack.exceptions.NbtrackWarning` saying so; with ``nested=True`` the new run
  becomes a child of the active one.
- ``start_run(run_id=...)`` of the run that is already active returns it unchanged.
- A run left active when the interpreter exits is ended FINISHED, or FAILED when the script died
  of an uncaught exception (MLflow marks both FINISHED).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from ..exceptions import InvalidInputError, NbtrackWarning, RunNotFoundError, RunStateError
from . import context
from .buffer import combined
from .client import Client
from .entities import ActiveRun, Experiment, Metric, Run, RunOperations, RunStatus, ViewType
from .uri import (
    _EXPERIMENT_MARK,
    EXPERIMENT_ID_VAR,
    EXPERIMENT_NAME_VAR,
    _current_uri_text,
    export_experiment,
    uri_scheme,
)
from .validation import check_run_name, check_tag

__all__ = [
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_parent_run",
    "get_run",
    "last_active_run",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "start_run",
]


#: This process's id, set again in a forked child (os.getpid is a system call, and every
#: start_run and end_run asks each frame of the stack).
_pid = os.getpid()


@dataclass
class _Frame:
    run: ActiveRun
    client: Client
    observers: list[Any] = field(default_factory=list)  # live curves watching this run
    pid: int = field(default_factory=lambda: _pid)  # a forked child inherits the frame, not the run

    @property
    def inherited(self) -> bool:
        """The frame came with a fork: its run is the parent process's."""
        return self.pid != _pid


class _ThreadStacks:
    """The active-run stack of the calling thread, used like a list.

    As in MLflow, each thread has its own active run: runs started in parallel threads (a
    sweep in a thread pool) neither end nor log into each other, and a new thread starts with
    none. All stacks stay reachable, so that the process's exit ends every thread's runs.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[tuple[weakref.ref[threading.Thread], list[_Frame]]] = []
        self._registry_lock = threading.Lock()

    def _mine(self) -> list[_Frame]:
        stack: list[_Frame] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
            with self._registry_lock:  # forget the empty stacks of threads that are gone
                self._all = [(t, s) for t, s in self._all if s or _alive(t)]
                self._all.append((weakref.ref(threading.current_thread()), stack))
        return stack

    def others(self) -> list[tuple[weakref.ref[threading.Thread], list[_Frame]]]:
        """The stacks of the other threads that have runs."""
        mine = self._mine()
        with self._registry_lock:
            return [(t, s) for t, s in self._all if s and s is not mine]

    def top_of(self, thread_id: int) -> _Frame | None:
        """The active run's frame of the live thread ``thread_id`` (None: it has none)."""
        with self._registry_lock:
            for thread, stack in self._all:
                found = thread()
                if found is not None and found.ident == thread_id and stack:
                    return stack[-1]
        return None

    def only_this_thread(self) -> None:
        """After a fork: the child has one thread, the one that forked. (Another thread may
        have held the registry's lock at the fork: it is replaced, never taken.)"""
        self._registry_lock = threading.Lock()
        mine: list[_Frame] | None = getattr(self._local, "stack", None)
        if mine is None:
            mine = self._local.stack = []
        self._all = [(weakref.ref(threading.current_thread()), mine)]

    def swap(self, stack: list[_Frame]) -> list[_Frame]:
        """Make ``stack`` this thread's stack for a while; returns the one it stands in for,
        to be put back."""
        mine = self._mine()
        self._local.stack = stack
        return mine

    @property
    def last(self) -> tuple[str, Client] | None:
        """The run this thread ended last (``last_active_run``), and its client."""
        last: tuple[str, Client] | None = getattr(self._local, "last", None)
        return last

    @last.setter
    def last(self, value: tuple[str, Client] | None) -> None:
        self._local.last = value

    def __len__(self) -> int:
        return len(self._mine())

    def __bool__(self) -> bool:
        return bool(self._mine())

    def __iter__(self) -> Iterator[_Frame]:
        return iter(self._mine())

    def __getitem__(self, index: int) -> _Frame:
        return self._mine()[index]

    def append(self, frame: _Frame) -> None:
        self._mine().append(frame)

    def pop(self) -> _Frame:
        return self._mine().pop()


def _alive(thread: weakref.ref[threading.Thread]) -> bool:
    found = thread()
    return found is not None and found.is_alive()


_stack = _ThreadStacks()
_stack_lock = threading.RLock()
# (uri text, experiment name, experiment id) of the experiment set by set_experiment
_experiment: tuple[str, str, str] | None = None
_clients: dict[str, Client] = {}


def _new_lock_after_fork() -> None:
    # Another thread of the parent may have held the lock at the fork; in the child that
    # thread is gone and the lock would never be released.
    global _stack_lock, _pid
    _pid = os.getpid()
    _stack_lock = threading.RLock()
    _stack.only_this_thread()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _store_key() -> str:
    """The tracking URI in force, made absolute when it is a relative path (the default
    ``.nbtrack`` means another store after ``os.chdir``)."""
    text = _current_uri_text().strip()  # as resolve() reads it
    prefix = ""
    if text[:10].lower() == "sqlite:///":  # sqlite:///runs.db is relative, like runs.db
        prefix, text = text[:10], text[10:]
    elif uri_scheme(text) == "file" and not urlparse(text).netloc:  # file:runs, file:///x
        text = unquote(urlparse(text).path)
    elif uri_scheme(text) is not None:  # one resolve() refuses
        return text
    text = os.path.expanduser(text)
    if os.path.isabs(text):
        return prefix + text
    return prefix + os.path.join(os.getcwd(), text)


def _client() -> Client:
    """A client for the tracking URI in force (cached per store)."""
    key = _store_key()
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = Client(key)
    return client


# -- experiments ------------------------------------------------------------------------------


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active for new runs, creating it (by name) if it does not exist."""
    global _experiment
    client = _client()
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInputError("give exactly one of experiment_name or experiment_id")
    if experiment_name is not None:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            experiment = client.get_or_create_experiment(experiment_name)
    else:
        experiment = client.get_experiment(experiment_id)  # type: ignore[arg-type]
    if experiment.lifecycle_stage == "deleted":
        raise RunStateError(
            f"experiment {experiment.name!r} is deleted; "
            f"restore it with nbtrack.Client().restore_experiment({experiment.experiment_id!r})"
        )
    _experiment = (_store_key(), experiment.name, experiment.experiment_id)
    export_experiment(experiment.experiment_id, experiment.name)
    return experiment


def _active_experiment_id(client: Client) -> str:
    """set_experiment's experiment, else NBTRACK_EXPERIMENT_ID, else NBTRACK_EXPERIMENT_NAME,
    else "0" (Default): MLflow's order."""
    if _experiment:
        if _experiment[0] == _store_key():
            return _experiment[2]  # create_run checks that it still exists and is not deleted
        name: str | None = _experiment[1]  # the same experiment name in the store now in force
    else:
        env_id = os.environ.get(EXPERIMENT_ID_VAR)
        name = os.environ.get(EXPERIMENT_NAME_VAR)
        if env_id and not (name and env_id == os.environ.get(_EXPERIMENT_MARK)):
            return env_id  # set from outside: MLflow's rule, the id wins
        if env_id and _exported_id_names(client, env_id, name):
            return env_id
        # Exported with its name by the process that started this one, for a store this one
        # does not use (a relative URI from another working directory): found by name here.
    if name:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            experiment = client.get_or_create_experiment(name)
        return experiment.experiment_id
    return "0"


def _exported_id_names(client: Client, experiment_id: str, name: str | None) -> bool:
    """Whether ``experiment_id`` (exported by the process that started this one) is, in this
    process's store, the experiment ``name`` it was exported with."""
    key = (_store_key(), experiment_id, name)
    known = _exported_checked.get(key)
    if known is None:
        row = client.store.get_experiment(int(experiment_id)) if experiment_id.isdigit() else None
        known = _exported_checked[key] = row is not None and row.get("name") == name
    return known


#: ``(store, exported id, exported name)`` -> whether the id is that experiment in that store.
_exported_checked: dict[tuple[str, str, str | None], bool] = {}


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment and return its id; an existing name is an error."""
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with this id (ExperimentNotFoundError if none)."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with this name, or None."""
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
) -> list[Experiment]:
    """Experiments, by id; ``filter_string`` is the run filter language over ``name``,
    ``experiment_id``, ``creation_time``, ``last_update_time`` and ``tags.<key>``."""
    return _client().search_experiments(view_type, max_results, filter_string, order_by)


def delete_experiment(experiment_id: str) -> None:
    """Mark an experiment deleted; its runs are hidden, not removed."""
    _client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the active experiment (that of :func:`set_experiment`, else Default)."""
    set_experiment_tags({key: value})


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Tag the active experiment; every tag is checked before any is written."""
    if not isinstance(tags, dict):
        raise InvalidInputError(f"set_experiment_tags takes a dict; got {type(tags).__name__}")
    checked = [check_tag(key, value) for key, value in tags.items()]
    client = _client()
    experiment_id = _active_experiment_id(client)
    for key, text in checked:
        client.set_experiment_tag(experiment_id, key, text)


def delete_experiment_tag(key: str) -> None:
    """Remove a tag from the active experiment."""
    client = _client()
    client.delete_experiment_tag(_active_experiment_id(client), key)


def restore_experiment(experiment_id: str) -> None:
    """Make a deleted experiment active again, with the runs deleted with it."""
    _client().restore_experiment(experiment_id)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run, or None for a top-level one."""
    return _client_for(run_id).get_parent_run(run_id)


# -- runs -------------------------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
    live: bool | None = None,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it the active run.

    Parameters
    ----------
    run_id
        Resume this existing run instead of creating one (its status goes back to RUNNING).
    experiment_id
        Default: the experiment of :func:`set_experiment`, else ``NBTRACK_EXPERIMENT_NAME`` /
        ``NBTRACK_EXPERIMENT_ID``, else "Default" (id "0"). With ``run_id``, the run's own
        experiment is used; an ``experiment_id`` that names another one is an error.
    run_name
        Default: a generated name such as ``brave-otter-417``.
    nested
        Start the run as a child of the active run. Without it an active run is ended first.
    tags, description
        Tags to set at creation; ``description`` becomes the ``nbtrack.note.content`` tag.
    live
        Draw the run's stepped metrics under the cell while it trains (with nbtrack-widgets
        installed). Default: on for a top-level run started in a Jupyter kernel, off for nested
        runs, scripts and terminals; ``%%track`` cells have their own ``--no-live``.

    Returns
    -------
    ActiveRun
        Use it in a ``with`` block to end the run (FINISHED, FAILED on an exception, KILLED on
        KeyboardInterrupt) when the block is left.
    """
    del log_system_metrics  # accepted for MLflow compatibility
    with _stack_lock:
        for frame in _stack:
            if run_id is not None and frame.run.info.run_id == run_id and frame.inherited:
                raise RunStateError(
                    f"run {run_id} is the active run of process {frame.pid}, which forked this "
                    "one: log to it (nbtrack.log_metric and the rest reach it) rather than "
                    "resuming it here"
                )
        if _stack and run_id is not None and _stack[-1].run.info.run_id == run_id:
            active = _stack[-1].run
            _check_own_experiment(run_id, active.info.experiment_id, experiment_id)
            return active
        client = _client()
        # Everything is checked before the active run is ended or anything is written.
        check_run_name(run_name)
        for key, value in (tags or {}).items():
            check_tag(key, value)
        if description is not None:
            check_tag(context.NOTE, description)
        if parent_run_id is not None:
            client.get_run(parent_run_id)
        exp = None
        if run_id is not None:
            existing = client.get_run(run_id)
            if existing.info.lifecycle_stage == "deleted":
                raise RunStateError(f"run {run_id} is deleted; restore_run it first")
            _check_own_experiment(run_id, existing.info.experiment_id, experiment_id)
        else:
            exp = experiment_id if experiment_id is not None else _active_experiment_id(client)
            if _stack and not nested:  # the active run is about to end: check first
                client.check_experiment_open(exp)  # (otherwise the insert itself checks)
        if _stack and not nested:
            own = [f for f in _stack if not f.inherited]
            if own:
                names = ", ".join(repr(f.run.info.run_name) for f in own)
                warnings.warn(
                    f"ending the active run {names} (FINISHED) to start a new one; pass "
                    "nested=True to start a child run instead",
                    NbtrackWarning,
                    stacklevel=2,
                )
            _end_all(RunStatus.FINISHED)
        if nested and _stack and parent_run_id is None:
            parent_run_id = _stack[-1].run.info.run_id
        if run_id is not None:
            if tags:
                client.set_tags(run_id, tags)
            if description is not None:
                client.set_tag(run_id, context.NOTE, description)
            client.reopen_run(run_id)
            if run_name is not None:
                client.update_run(run_id, name=run_name)
            run = client.get_run(run_id)
        else:
            assert exp is not None
            run = create_run_with_code(
                client, exp, run_name=run_name, tags=tags, parent_run_id=parent_run_id,
                description=description,
            )
        active = ActiveRun(run)
        frame = _Frame(active, client)
        _stack.append(frame)
        _install_exit_hooks()
        if _wants_live(live, parent_run_id):
            from ..cell_observers import start_observers

            frame.observers = start_observers(client, run.info.run_id)
        return active


def _wants_live(live: bool | None, parent_run_id: str | None) -> bool:
    """Live curves for a run started by the API: asked for, or a top-level run in a kernel."""
    if live is False or _suppress_snapshots.get():  # %%track watches its own runs
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if shell is None:
        return False
    if live:
        return True
    return parent_run_id is None and getattr(shell, "kernel", None) is not None


def create_run_with_code(
    client: Client,
    experiment_id: str,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
    description: str | None = None,
) -> Run:
    """A new run (not made active) with the code version ``start_run`` records: the script's
    snapshot (stored with the run), or in IPython the executed cells, the notebook and the
    environment. Autolog's loggers and callbacks start their own runs with it."""
    name, kind = context.source()
    run = client.create_run(
        experiment_id,
        tags=tags,
        run_name=run_name,
        parent_run_id=parent_run_id,
        description=description,
        snapshots=_script_snapshots(name) if kind == "SCRIPT" else (),
        _ended_by_this_process=True,  # its exit hooks end it, unless the process dies
    )
    if kind != "SCRIPT" and not _suppress_snapshots.get():
        _interactive_snapshots(client, run.info.run_id)
    return run


#: Set by ``%%track``, which takes the snapshots itself (with its own options).
_suppress_snapshots: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "nbtrack_suppress_snapshots", default=False
)


def _script_snapshots(script: str) -> tuple[tuple[str, str, int, bytes], ...]:
    if os.environ.get("NBTRACK_SNAPSHOTS", "1") == "0":
        return ()
    from ..snapshot.process import script_snapshots

    return script_snapshots(script)


def _interactive_snapshots(client: Client, run_id: str) -> None:
    """In IPython: the executed history, the notebook file and the environment."""
    if os.environ.get("NBTRACK_SNAPSHOTS", "1") == "0":
        return
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if shell is None:
        return
    from ..snapshot import capture_snapshots

    try:
        capture_snapshots(client, run_id, shell=shell)
    except Exception as exc:  # a snapshot must never cost the user their run
        client._set_internal_tag(run_id, "nbtrack.snapshot.note", f"snapshot failed: {exc}")


def _check_own_experiment(run_id: str, own: str, asked: str | int | None) -> None:
    if asked is not None and str(asked) != own:
        raise InvalidInputError(
            f"run {run_id} belongs to experiment {own}, not {asked!r}; leave experiment_id out "
            "to resume it"
        )


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run (the innermost, when runs are nested). No-op when none is active.

    ``status`` is FINISHED (default), FAILED or KILLED. If the store refused some of the run's
    buffered rows (a param another process stored first with another value), the run still
    ends, and then their error is raised.
    """
    if not isinstance(status, str) or not RunStatus.is_terminated(status):
        ended = ", ".join(RunStatus.TERMINATED)
        raise InvalidInputError(f"end_run status must be one of {ended}; got {status!r}")
    refused = _end_top(status, inherited_too=True)
    if refused is not None:
        raise refused


def _end_top(
    status: str, inherited_too: bool = False, stack: _ThreadStacks | list[_Frame] = _stack
) -> Exception | None:
    """End the innermost active run (of this thread, or of ``stack``); return (not raise)
    the error of its refused rows.

    A run that a forked child inherited from its parent is the parent's to end: unless the
    child's code asks for it by name (``end_run``), it is only let go of here."""
    with _stack_lock:
        if not stack:
            return None
        frame = stack[-1]
        inherited = frame.inherited
        if inherited and not inherited_too:
            stack.pop()
            return None
        if frame.observers and not inherited:  # a parent's widgets are the parent's
            from ..cell_observers import stop_observers

            stop_observers(frame.observers)
            frame.observers = []
        try:
            refused = frame.client._terminate(frame.run.info.run_id, status)
        except RunNotFoundError:
            stack.pop()  # purged by another process: nothing is left to end or to log to
            raise
        stack.pop()
        if stack is _stack:
            _stack.last = (frame.run.info.run_id, frame.client)
    return refused


def _end_all(status: str) -> None:
    """End every active run, innermost first, for a reason other than the user's ``end_run``
    (a new run, the end of the process): refused rows are reported, and every run ends."""
    refused: list[Exception] = []
    try:
        _end_while(lambda: bool(_stack), status, refused)
    finally:
        _report(refused)


def _end_while(
    more: Callable[[], bool],
    status: str,
    refused: list[Exception],
    stack: _ThreadStacks | list[_Frame] = _stack,
) -> None:
    """End the innermost run while ``more()``, gathering the errors of refused rows (a run
    purged meanwhile included: :func:`_end_top` lets go of it)."""
    while more():
        try:
            error = _end_top(status, stack=stack)
        except RunNotFoundError as gone:
            error = gone
        if error is not None:
            refused.append(error)


def _report(refused: list[Exception], exc: BaseException | None = None) -> None:
    """Warn of refused rows without ever raising: when warnings are errors, the refusal goes
    into a note of the exception on its way (``exc``; Python prints notes, except those of
    ``SystemExit``), or to stderr."""
    for error in refused:
        try:
            warnings.warn(str(error), NbtrackWarning, stacklevel=4)
            continue
        except Exception:
            pass
        if hasattr(exc, "add_note") and not isinstance(exc, SystemExit):
            exc.add_note(f"nbtrack: {error}")  # type: ignore[union-attr]
            continue
        with contextlib.suppress(Exception):  # stderr may be closed at exit
            print(f"nbtrack: {error}", file=sys.stderr)


def _interrupt(exc_type: type[BaseException]) -> bool:
    """Whether the code was interrupted rather than failed: ``KeyboardInterrupt`` (Ctrl-C, a
    kernel's interrupt), or the cancellation of the asyncio task running it (how a Jupyter
    kernel interrupts a cell that awaits)."""
    asyncio = sys.modules.get("asyncio")  # not imported: nothing can have been cancelled
    return issubclass(exc_type, KeyboardInterrupt) or (
        asyncio is not None and issubclass(exc_type, asyncio.CancelledError)
    )


def _end_run_with_exception(run_id: str, exc_type: Any, exc: Any, tb: Any) -> None:
    """End ``run_id`` (and any run nested under it) as an exception, or its absence, says.

    Without an exception, the error of refused rows is raised (as ``end_run`` would); with
    one (``sys.exit()`` too), it is only warned of: the user's exception goes on unchanged."""
    raising = exc_type is None
    if exc_type is None or (
        issubclass(exc_type, SystemExit) and getattr(exc, "code", None) in (None, 0)
    ):
        status = RunStatus.FINISHED  # sys.exit() and sys.exit(0) are a normal end
        exc_type = None
    elif _interrupt(exc_type):
        status = RunStatus.KILLED
    else:
        status = RunStatus.FAILED
    refused: list[Exception] = []
    with _stack_lock:
        ids = [f.run.info.run_id for f in _stack]
        if run_id not in ids:
            return  # already ended by hand
        frame = _stack[ids.index(run_id)]
        # a forked child's error or interrupt is not its parent's run's
        if exc_type is not None and not frame.inherited:
            if status == RunStatus.KILLED:
                reason = f"interrupted ({exc_type.__name__})"
                frame.client._set_internal_tag(run_id, context.KILLED_REASON, reason)
            else:
                text = "".join(traceback.format_exception(exc_type, exc, tb))
                frame.client._set_internal_tag(run_id, context.ERROR, text)
        try:
            _end_while(lambda: run_id in [f.run.info.run_id for f in _stack], status, refused)
        except BaseException:  # ending failed (a locked store): still tell of what was refused
            _report(refused, exc)
            raise
    if not refused:
        return
    if raising:
        raise combined(refused)
    _report(refused, exc)


def active_run() -> ActiveRun | None:
    """The active run, or None."""
    return _stack[-1].run if _stack else None


def last_active_run() -> Run | None:
    """The active run, else the run this thread ended most recently, read fresh."""
    if _stack:
        frame = _stack[-1]
        return frame.client.get_run(frame.run.info.run_id)
    if _stack.last is None:
        return None
    run_id, client = _stack.last
    return client.get_run(run_id)


def _frame() -> _Frame:
    """The active run's frame; a run is started if none is active (as MLflow does)."""
    if _stack:
        return _stack[-1]
    start_run()
    return _stack[-1]


def _target(run_id: str | None) -> tuple[Client, str]:
    """The client and run a logging call goes to: ``run_id`` if given, else the active run."""
    if run_id is not None:
        return _client_for(run_id), run_id
    f = _frame()
    return f.client, f.run.info.run_id


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param of the active run. Re-logging the same value is fine; another value raises.
    Returns ``value`` (with ``synchronous=False``, an object to ``wait()`` on), as MLflow does."""
    client, run_id = _target(None)
    return client.log_param(run_id, key, value, synchronous)


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    """Log several params (of the active run, or of ``run_id``); all are checked first."""
    client, target = _target(run_id)
    client.log_params(target, params)
    return client._written(synchronous)


def log_metric(
    key: str,
    value: Any,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> RunOperations | None:
    """Log a metric value of the active run, or of ``run_id`` (buffered: microseconds a call).

    The signature is MLflow's: ``step``, ``synchronous`` (True waits until it is stored),
    ``timestamp`` (ms since the epoch), ``run_id``.
    """
    if run_id is None and _stack:  # the training loop's: no detours
        f = _stack[-1]
        return f.client.log_metric(f.run.info.run_id, key, value, timestamp, step, synchronous)
    client, target = _target(run_id)
    return client.log_metric(target, key, value, timestamp, step, synchronous)


def log_metrics(
    metrics: dict[str, Any],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
) -> RunOperations | None:
    """Log several metrics (of the active run, or of ``run_id``) at one step; all are checked
    before any is written."""
    client, target = _target(run_id)
    client.log_metrics(target, metrics, step, timestamp)
    return client._written(synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    """Set a tag of the active run (keys under ``nbtrack.`` are reserved)."""
    client, run_id = _target(None)
    return client.set_tag(run_id, key, value, synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    """Set several tags of the active run; all are checked before any is written."""
    client, run_id = _target(None)
    client.set_tags(run_id, tags)
    return client._written(synchronous)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run."""
    f = _frame()
    f.client.delete_tag(f.run.info.run_id, key)


def log_artifact(
    local_path: str | os.PathLike[str],
    artifact_path: str | None = None,
    run_id: str | None = None,
) -> None:
    """Copy a file into the artifacts of the active run, or of ``run_id`` (under
    ``artifact_path`` if given)."""
    client, target = _target(run_id)
    client.log_artifact(target, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str],
    artifact_path: str | None = None,
    run_id: str | None = None,
) -> None:
    """Copy a directory's files into the artifacts of the active run, or of ``run_id``."""
    client, target = _target(run_id)
    client.log_artifacts(target, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Save a string as an artifact file of the active run, or of ``run_id``."""
    client, target = _target(run_id)
    client.log_text(target, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a dict as JSON (or YAML for .yaml/.yml) in the artifacts of the active run, or of
    ``run_id``."""
    client, target = _target(run_id)
    client.log_dict(target, dictionary, artifact_file)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a DataFrame (or a dict of columns) as a JSON table in the artifacts of the active
    run, or of ``run_id``; an existing table file gets the rows appended, as in MLflow."""
    client, target = _target(run_id)
    client.log_table(target, data, artifact_file)


def load_table(
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> Any:
    """The table ``artifact_file`` of the given runs (default: every run of the active
    experiment that has it) as one DataFrame; ``extra_columns=["run_id"]`` says whose rows."""
    client = _client()
    return client.load_table(_active_experiment_id(client), artifact_file, run_ids, extra_columns)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    """Save a PIL image or NumPy array as a PNG in the artifacts of the active run: at
    ``artifact_file``, or as step ``step`` of the series ``key``."""
    client, target = _target(None)
    client.log_image(target, image, artifact_file, key, step, timestamp, synchronous)


def log_figure(
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Save a matplotlib or Plotly figure in the artifacts of the active run, or of
    ``run_id``; ``save_kwargs`` go to ``savefig`` (or Plotly's ``write_*``)."""
    client, target = _target(run_id)
    client.log_figure(target, figure, artifact_file, save_kwargs=save_kwargs)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The local folder of the active run's artifacts (or of a path inside it)."""
    f = _frame()
    return f.client.get_artifact_uri(f.run.info.run_id, artifact_path)


def _client_for(run_id: str) -> Client:
    for f in _stack:
        if f.run.info.run_id == run_id:
            return f.client
    return _client()


def get_run(run_id: str) -> Run:
    """A run with its params, latest metrics and tags, including everything logged so far."""
    return _client_for(run_id).get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every logged value of a run's metric, by step then time."""
    return _client_for(run_id).get_metric_history(run_id, key)


def delete_run(run_id: str) -> None:
    """Mark a run deleted (hidden from searches until restored or purged by gc)."""
    with _stack_lock:
        if any(f.run.info.run_id == run_id for f in _stack):
            raise RunStateError(f"run {run_id} is active; end_run() before deleting it")
    _client_for(run_id).delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring a deleted run back."""
    _client_for(run_id).restore_run(run_id)


def flush() -> None:
    """Write everything buffered, in every store of this process, now."""
    from .buffer import flush_all

    flush_all()


def flush_async_logging() -> None:
    """MLflow's name for :func:`flush`: every log call is buffered, as MLflow's asynchronous
    logging is."""
    flush()


# -- replaying a tracked cell -----------------------------------------------------------------


@contextlib.contextmanager
def _throwaway_store() -> Iterator[None]:
    """While in the block, the tracking URI in force is a new store in a temporary folder,
    removed after the block with all that was logged there, and this thread has no active run:
    how an exported notebook replays a tracked cell that made another run (``%%track
    --replay``), so that its ``log_metric`` calls start no run of the real store, nor reach its
    active run. The runs started in the block are ended with it; the active run, the last one
    and the active experiment are then as they were. (Processes the block starts inherit the
    real store in ``NBTRACK_TRACKING_URI``, and log there as they did.)"""
    import tempfile
    from pathlib import Path

    from . import client as client_module
    from . import uri

    last, experiment = _stack.last, _experiment
    names = (EXPERIMENT_ID_VAR, EXPERIMENT_NAME_VAR, _EXPERIMENT_MARK)
    variables = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="nbtrack-replay-") as folder:
        active = _stack.swap([])  # the active run is out of reach: the block has none
        throwaway = uri._throwaway.set(folder)  # a replay inside a replay nests
        suppressed = _suppress_snapshots.set(True)  # no snapshots, no live curves
        try:
            yield
        finally:
            _suppress_snapshots.reset(suppressed)
            # An experiment the cell chose (set_experiment) is chosen in the real store too,
            # by name, as when the cell first ran: the runs of later cells go there.
            chosen = _experiment[1] if _experiment not in (None, experiment) else None
            try:
                _end_while(lambda: bool(_stack), RunStatus.FINISHED, [])
            finally:
                _stack.swap(active)
                uri._throwaway.reset(throwaway)
                _restore(last, experiment, variables)
                for key in [key for key in _clients if key.startswith(folder)]:
                    del _clients[key]
                inside = Path(folder).resolve()
                kept = [
                    key
                    for key in client_module._backends
                    if not Path(key[1]).resolve().is_relative_to(inside)
                ]
                with contextlib.suppress(Exception):  # what it could not write is thrown away
                    client_module._close_stores(keep=kept)
        if chosen is not None:
            set_experiment(chosen)


def _restore(
    last: tuple[str, Client] | None,
    experiment: tuple[str, str, str] | None,
    variables: dict[str, str | None],
) -> None:
    global _experiment
    _stack.last, _experiment = last, experiment
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# -- process exit ------------------------------------------------------------------------------

_hooks_installed = False
_uncaught: list[BaseException] = []


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        _uncaught.append(exc)
        try:
            with _stack_lock:
                own = [f for f in _stack if not f.inherited]
                if own:
                    _end_run_with_exception(own[0].run.info.run_id, exc_type, exc, tb)
        except Exception as error:  # the hooks after ours must still see the exception
            print(f"nbtrack: could not end the active run: {error}", file=sys.stderr)
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_runs_at_exit)


def _end_runs_at_exit() -> None:
    status = RunStatus.FAILED if _uncaught else RunStatus.FINISHED
    try:
        _end_all(status)
    except Exception as exc:
        print(f"nbtrack: could not end the active run at exit: {exc}", file=sys.stderr)
    # Other threads' runs: those of threads still running (daemons) were cut short.
    for thread, stack in _stack.others():
        refused: list[Exception] = []
        try:
            cut = RunStatus.KILLED if _alive(thread) else status
            _end_while(lambda s=stack: bool(s), cut, refused, stack)  # type: ignore[misc]
        except Exception as exc:
            print(f"nbtrack: could not end a thread's run at exit: {exc}", file=sys.stderr)
        _report(refused)
