"""The per-process write buffer.

``log_metric`` in a training loop must cost microseconds, not a transaction. Metrics, params and
tags are appended to in-memory queues; one writer moves them to the store in a single transaction:

- when a queue reaches ``FLUSH_AT`` rows (the writer thread is woken; the caller does not wait),
- every ``INTERVAL_S`` seconds, on a daemon thread,
- whenever the API is about to read (so a read sees everything logged before it), at ``end_run``,
  on :func:`nbtrack.flush`, and at interpreter exit.

A process that dies abruptly (SIGKILL, power loss) loses at most what was logged in the last
``INTERVAL_S`` seconds. Worker processes (forked, or started by :mod:`multiprocessing`) write
each log call at once instead: they often end without running exit handlers (``os._exit``
after a fork, a pool's ``terminate``), which would lose what they logged last. If a queue grows
past ``BLOCK_AT`` rows (the store cannot keep up), the caller flushes itself: memory stays
bounded.

A background flush that fails keeps its rows and retries; the next flush made on behalf of the
user (``flush()``, ``end_run``, any read) retries too and raises if it still fails, so an error is
never swallowed and no row is dropped.

Rows can also be refused for good by the store: a param that another process stored first with
another value, or the rows of a run purged meanwhile. They are the only rows never written. The
error that says which, and why, waits with the run it concerns: ending that run raises it (once
the run has ended), as does an explicit ``flush()``; reads and log calls never do, so neither a
widget polling a run nor a training loop's next ``log_metric`` meets another call's error.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar

from ..exceptions import NbtrackError, NbtrackWarning
from ..store.base import BatchOutcome

__all__ = ["BLOCK_AT", "FLUSH_AT", "INTERVAL_S", "WriteBuffer", "flush_all"]

INTERVAL_S = 0.5
#: How long a flush of the writer thread waits for another process's write lock before it
#: gives up until the next tick (a flush made for the caller waits the whole busy timeout).
#: The store's lock is held meanwhile, and a fork of this process waits for it.
BACKGROUND_WAIT_S = 1.0
FLUSH_AT = 20_000
BLOCK_AT = 500_000

MetricRow = tuple[str, str, float, int, int]
KeyValueRow = tuple[str, str, str]
_Row = TypeVar("_Row")


#: Whether each log call is written at once (in worker processes; see above).
_write_through = False


def _in_a_worker() -> bool:
    """Whether this process was started by :mod:`multiprocessing` (any start method)."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


class BatchWriter(Protocol):
    def write_batch(
        self,
        metrics: list[MetricRow],
        params: list[KeyValueRow],
        tags: list[KeyValueRow],
        wait: bool | float = True,
    ) -> BatchOutcome: ...

    def checkpoint(self) -> None: ...


class WriteBuffer:
    """Queues of pending rows for one store, drained by :meth:`flush`."""

    def __init__(
        self, store: BatchWriter, on_outcome: Callable[[BatchOutcome], None] | None = None
    ):
        self.store = store
        self.on_outcome = on_outcome  # told what a write refused or learnt, to fix caches
        self._refused: dict[str, list[Exception]] = {}  # run id -> errors not yet raised
        self.metrics: deque[MetricRow] = deque()
        self.params: deque[KeyValueRow] = deque()
        self.tags: deque[KeyValueRow] = deque()
        self._flush_lock = threading.Lock()
        _live_buffers.add(self)
        _writer.start()
        if _in_a_worker():
            global _write_through
            _write_through = True
        #: Write each log call at once (a worker process's buffer; see the module's text).
        self.write_through = _write_through

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def add_metric(self, row: MetricRow) -> None:
        metrics = self.metrics
        metrics.append(row)
        if len(metrics) >= FLUSH_AT:
            if len(metrics) >= BLOCK_AT:
                self.flush()
            else:
                _writer.wake()

    def add_param(self, row: KeyValueRow) -> None:
        self.params.append(row)
        _writer.ensure_soon()

    def add_tag(self, row: KeyValueRow) -> None:
        self.tags.append(row)
        _writer.ensure_soon()

    def settle(self) -> None:
        """The end of one log call: in a worker process, write what it queued now (in one
        transaction); elsewhere nothing (the writer thread will).

        A worker's log call waits for another writer's lock at most ``BACKGROUND_WAIT_S`` and
        never raises: rows it could not write stay queued for the next call or tick. Rows the
        store refused are reported at once, as a warning (a worker seldom ends its runs, where
        they would be raised otherwise)."""
        if not self.write_through:
            return
        self.flush(background=True)
        for error in self.take_refused():
            warnings.warn(str(error), NbtrackWarning, stacklevel=3)

    def flush(self, *, background: bool = False) -> None:
        """Write everything queued so far.

        On failure the rows stay queued; a user-facing flush raises the error, a background one
        keeps quiet and the next flush retries. Rows the store refused for good are not
        raised here: see :meth:`take_refused`.
        """
        with self._flush_lock:
            try:
                self._drain(BACKGROUND_WAIT_S if background else True)
            except Exception:
                if not background:
                    raise

    def checkpoint(self) -> None:
        """Move what was committed into the database file, off the callers' threads (see
        :meth:`SQLiteStore.checkpoint`). Quiet on failure: nothing is lost, the next tick (or
        a commit, once the WAL is long) checkpoints again."""
        with contextlib.suppress(Exception):
            self.store.checkpoint()

    def close(self) -> None:
        """Leave the writer thread's rounds (the store is being closed)."""
        _live_buffers.discard(self)

    def take_refused(self, run_id: str | None = None) -> list[Exception]:
        """The errors of rows the store refused (of one run, or of all), each given once."""
        if run_id is None:
            return [e for errors in self.take_all_refused().values() for e in errors]
        with self._flush_lock:
            return self._refused.pop(run_id, [])

    def take_all_refused(self) -> dict[str, list[Exception]]:
        """Every run's refusals not yet raised, taken away (to hand to another buffer)."""
        with self._flush_lock:
            found, self._refused = self._refused, {}
            return found

    def give_back_all_refused(self, refused: dict[str, list[Exception]]) -> None:
        for run_id, errors in refused.items():
            self.give_back_refused(run_id, errors)

    def give_back_refused(self, run_id: str, errors: list[Exception]) -> None:
        """Put back errors taken by :meth:`take_refused` that could not be raised yet."""
        if errors:
            with self._flush_lock:
                self._refused[run_id] = errors + self._refused.get(run_id, [])

    def _drain(self, wait: bool | float) -> None:
        metrics = _take(self.metrics)
        params = _take(self.params)
        tags = _take(self.tags)
        if not (metrics or params or tags):
            return
        try:
            outcome = self.store.write_batch(metrics, params, tags, wait)
        except BaseException:
            # Put the rows back in front, in order, so nothing is lost and a retry can succeed.
            self.metrics.extendleft(reversed(metrics))
            self.params.extendleft(reversed(params))
            self.tags.extendleft(reversed(tags))
            raise
        if outcome:
            for run_id, error in outcome.refused:
                self._refused.setdefault(run_id, []).append(error)
            if self.on_outcome is not None:
                self.on_outcome(outcome)


def combined(errors: list[Exception]) -> Exception:
    """One error for several: the error itself when alone; else one of the nearest class they
    all are (two kinds of not-found: ``NotFoundError``; a param conflict and a purged run:
    ``NbtrackError``), whose message holds every message and whose ``errors`` lists them."""
    if len(errors) == 1:
        return errors[0]
    kind = next(
        (
            c
            for c in type(errors[0]).__mro__
            if issubclass(c, NbtrackError) and all(isinstance(e, c) for e in errors)
        ),
        NbtrackError,
    )
    error = kind(f"{len(errors)} errors: " + "; ".join(str(e) for e in errors))
    error.errors = list(errors)  # type: ignore[attr-defined]
    return error


def _take(queue: deque[_Row]) -> list[_Row]:
    # popleft is atomic: rows appended meanwhile by other threads stay for the next flush.
    n = len(queue)
    pop = queue.popleft
    return [pop() for _ in range(n)]


class _Writer:
    """The one daemon thread that flushes every live buffer on a timer."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="nbtrack-writer", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._event.set()

    def ensure_soon(self) -> None:
        # The timer already covers it; this exists so a forked child restarts its writer.
        if self._thread is None or not self._thread.is_alive():
            self.start()

    def _run(self) -> None:
        while True:
            self._event.wait(INTERVAL_S)
            self._event.clear()
            for buffer in list(_live_buffers):
                if len(buffer):
                    buffer.flush(background=True)
                buffer.checkpoint()


_live_buffers: weakref.WeakSet[WriteBuffer] = weakref.WeakSet()
_writer = _Writer()


def wake_writer() -> None:
    """Have the writer thread go its round now (flush, checkpoint) rather than at its timer."""
    _writer.wake()


def _reset_after_fork() -> None:
    """In a forked child the writer thread does not exist and its locks may be held by a thread
    that is gone. The parent's buffers stay the parent's: the child must neither write them
    again nor touch the parent's SQLite connection. Its clients get fresh buffers."""
    global _writer, _write_through
    _writer = _Writer()
    _live_buffers.clear()
    _write_through = True  # a worker (a pool's, a data loader's): see the module's text


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def flush_all() -> None:
    """Flush every buffer of this process, then raise the first write error met (after trying
    all), else the errors of every row refused so far, as one."""
    first: BaseException | None = None
    for buffer in list(_live_buffers):
        try:
            buffer.flush()
        except BaseException as exc:
            first = first or exc
    if first is not None:
        raise first
    refused = [e for buffer in list(_live_buffers) for e in buffer.take_refused()]
    if refused:
        raise combined(refused)


def _flush_at_exit() -> None:
    import sys

    for buffer in list(_live_buffers):
        try:
            buffer.flush()
        except Exception as exc:  # nothing above us to raise to any more
            print(f"nbtrack: could not write buffered rows at exit: {exc}", file=sys.stderr)
        for error in buffer.take_refused():
            print(f"nbtrack: {error}", file=sys.stderr)


atexit.register(_flush_at_exit)
