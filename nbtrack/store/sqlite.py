"""The embedded SQLite store.

One :class:`SQLiteStore` per database file and process. It holds one connection guarded by a lock:
reads and writes of this process are serialised, other processes are handled by SQLite itself (WAL
mode, so readers never block the writer, and a busy timeout so that writers queue instead of failing
with "database is locked"). Every write is one short ``BEGIN IMMEDIATE`` transaction: taking the
write lock up front means the busy handler, not an error, resolves contention.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import sqlite3
import threading
import time
import weakref
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import now_ms as _now_ms
from ..exceptions import (
    InvalidInputError,
    ParamConflictError,
    RunNotFoundError,
    SchemaVersionError,
    StoreError,
)
from ..query.sql import placeholders
from .base import BatchOutcome, Release
from .blocks import pack, unpack
from .plan import search_source
from .process import pid_alive, process_alive
from .schema import CURRENT_VERSION, MIGRATIONS, RUN_COLUMNS

if TYPE_CHECKING:
    from ..query.sql import CompiledSearch

__all__ = ["BUSY_TIMEOUT_S", "SQLiteStore"]

#: How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 60.0
#: WAL pages (4 kB each) past which a commit checkpoints in the committing thread itself.
#: The writer thread checkpoints after every tick that wrote (:meth:`SQLiteStore.checkpoint`),
#: so this is reached only when writes outpace it; SQLite's default is 1000 pages.
FOREGROUND_CHECKPOINT_PAGES = 4000
#: Commits after which :attr:`SQLiteStore.wake_checkpointer` is called (some 900 WAL pages at
#: start_run's 3.4 a commit): a loop of quick runs has the writer thread checkpoint as it goes,
#: rather than wait for its timer and meet FOREGROUND_CHECKPOINT_PAGES itself.
WAKE_CHECKPOINT_COMMITS = 256

_RUN_SELECT = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
#: Runs per query of :meth:`SQLiteStore.run_columns`.
_COLUMN_CHUNK = 1000

MetricRow = tuple[str, str, float, int, int]  # run_id, key, value, timestamp, step
KeyValueRow = tuple[str, str, str]  # run_id, key, value


#: Every store open (or being opened) in this process, for the fork guard below.
_open_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
#: Per forking thread, the locks its fork in progress holds.
_held_at_fork: dict[int, list[threading.Lock | threading.RLock]] = {}


def _before_fork() -> None:
    """Fork only while no thread of ours is inside SQLite on a store. SQLite keeps its lock
    bookkeeping per process, and a child inherits the parent's as it was at the fork: forked
    in the middle of the writer thread's transaction, a child that logged found the store
    "locked" for ever (or hung on a lock of a thread that does not exist in it).

    Each forking thread takes every store's locks itself; when one is not free within a
    moment it gives back all it took and tries again a little later, so that two forks at
    once, or a fork from a thread that is inside a store call, never wait on each other in a
    circle. Interrupted (Ctrl-C while waiting), it lets go of what it took: Python cannot stop
    the fork, but no lock is left held."""
    held = _held_at_fork.setdefault(threading.get_ident(), [])
    try:
        while not _take_every_lock(held):
            time.sleep(random.uniform(0.0, 0.01))
    except BaseException:
        _after_fork_in_parent()
        raise


def _take_every_lock(held: list[threading.Lock | threading.RLock]) -> bool:
    for store in sorted(_open_stores, key=id):
        for lock in (store._lock, store._checkpoint_lock):
            if not lock.acquire(timeout=0.05):
                while held:
                    held.pop().release()
                return False
            held.append(lock)
    return True


def _after_fork_in_parent() -> None:
    for lock in reversed(_held_at_fork.pop(threading.get_ident(), [])):
        lock.release()


def _after_fork_in_child() -> None:
    """The child's one thread is the forking one: release what it took. Locks other threads
    held belong to stores the child never uses (it opens its own)."""
    _after_fork_in_parent()
    _held_at_fork.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def _killed_reason(pid: int, start: str | None, host: str) -> str:
    """The note on a run marked KILLED because its process (``pid``, started at ``start``)
    was found gone."""
    reused = start is not None and pid_alive(pid)
    return (
        f"process {pid} on {host} had exited without ending the run"
        + (f" (pid {pid} is another process's now)" if reused else "")
        + "; marked KILLED when nbtrack next opened the store or read the run"
    )


class SQLiteStore:
    """Runs, params, metrics, tags and the artifact index in one SQLite file.

    Parameters
    ----------
    db_path
        The database file; created (with its folder) if missing.
    artifact_root
        The folder under which run artifacts live.
    """

    def __init__(self, db_path: str | os.PathLike[str], artifact_root: str | os.PathLike[str]):
        self.db_path = Path(db_path).absolute()  # a later os.chdir must not move it
        self.artifact_root = Path(artifact_root).absolute()
        self._lock = threading.RLock()
        self._busy_s = BUSY_TIMEOUT_S  # the connection's busy timeout, read once
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._committed = False  # since the last checkpoint
        #: Called every WAKE_CHECKPOINT_COMMITS commits: the writer thread's wake-up.
        self.wake_checkpointer: Callable[[], None] | None = None
        self._commits = 0
        self._closed = False
        with self._lock:  # a fork waits for the opening transaction too
            _open_stores.add(self)
            try:
                self._open()
            except BaseException:
                _open_stores.discard(self)
                raise

    def _open(self) -> None:
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.db_path),
                timeout=self._busy_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the nbtrack store at {self.db_path}: {exc}") from exc
        self.conn = conn
        self._db: Any = None
        try:
            self._refuse_newer_schema()
            self._enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            # Up to 32 MB of pages (SQLite's default is 2 MB): a search over a few thousand runs
            # then finds its index and row pages in memory on the next call.
            conn.execute("PRAGMA cache_size = -32000")
            conn.execute(f"PRAGMA wal_autocheckpoint = {FOREGROUND_CHECKPOINT_PAGES}")
            conn.create_function(
                "nbtrack_artifact_uri",
                1,
                _artifact_uri_function(str(self.artifact_root) + os.sep),
                deterministic=True,
            )
            self._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "readonly" in str(exc):
                raise StoreError(
                    f"cannot open the nbtrack store at {self.db_path}: even to read it, SQLite "
                    "must write a little (switch it to WAL mode, or create its -wal and -shm "
                    f"files beside it) and could not (SQLite said: {exc}). Copy the store to a "
                    "folder you can write to."
                ) from exc
            raise StoreError(
                f"{self.db_path} is not a usable nbtrack store (SQLite said: {exc})"
            ) from exc
        except BaseException:
            conn.close()
            raise

    # -- connection plumbing ------------------------------------------------------------------

    @property
    def db(self) -> Any:
        """A :class:`sqlite_utils.Database` on the same connection, for maintenance work.

        Imported on first use only: sqlite-utils imports pandas and numpy at import time, which
        would cost every ``import nbtrack`` and every first log call half a second.
        """
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _enable_wal(self) -> None:
        # Switching to WAL needs an exclusive lock for a moment; retry while another process
        # holds it (the busy handler does not cover this pragma on every SQLite version).
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    self.conn.execute("PRAGMA journal_mode = wal")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _refuse_newer_schema(self) -> None:
        # Checked before anything is written (even the switch to WAL changes the file header).
        tables = {
            row[0]
            for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables and "schema_version" not in tables:
            hint = (
                " (it looks like an MLflow store: nbtrack keeps its own file; point it at"
                " another path)"
                if {"alembic_version", "experiments", "runs"} <= tables
                else "; point nbtrack at another file"
            )
            raise StoreError(
                f"{self.db_path} is a SQLite database but not an nbtrack store (it holds tables"
                f" {', '.join(sorted(tables)[:5])}{', ...' if len(tables) > 5 else ''}){hint}."
                " Nothing was changed."
            )
        if "schema_version" in tables:
            self._check_version(self._read_version() or 0)

    def _read_version(self) -> int | None:
        try:
            row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:  # a new file: no table yet
            return None
        return None if row is None or row[0] is None else int(row[0])

    def _check_version(self, version: int) -> None:
        if version > CURRENT_VERSION:
            raise SchemaVersionError(
                f"{self.db_path} was written by a newer nbtrack (schema version {version}; "
                f"this nbtrack knows versions up to {CURRENT_VERSION}). "
                "Upgrade nbtrack (pip install -U nbtrack) to open it; nothing was changed."
            )

    def _migrate(self) -> None:
        if self._read_version() == CURRENT_VERSION:
            return  # the usual open: no write, so no wait on another process's write lock
        with self.write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            self._check_version(version)
            for target in range(version, CURRENT_VERSION):
                MIGRATIONS[target](conn)
            if version < CURRENT_VERSION:
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version VALUES (?)", (CURRENT_VERSION,))

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    @contextlib.contextmanager
    def write(self, wait: bool | float = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error).

        ``wait``: how long to wait for another writer's lock before StoreError: the busy
        timeout (True), not at all (False), or that many seconds (for writes that can wait for
        a later chance: while this waits, the store's lock is held, and a fork waits for it).
        """
        custom = wait is not True
        with self._lock:
            conn = self.conn
            if custom:
                conn.execute(f"PRAGMA busy_timeout = {int(float(wait) * 1000)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "readonly" in str(exc):
                    raise self._read_only(exc) from exc
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                waited = f"{self._busy_s if wait is True else float(wait):g} s"
                raise StoreError(
                    f"the nbtrack store at {self.db_path} stayed locked by another writer for "
                    f"{waited} (SQLite said: {exc}); nothing of this write was stored "
                    "(buffered metrics, params and tags stay queued for the next flush)"
                ) from exc
            finally:
                if custom:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._busy_s * 1000)}")
            try:
                yield conn
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
                    raise self._read_only(exc) from exc
                if isinstance(exc, UnicodeEncodeError):
                    raise _unencodable(exc) from None
                raise
            conn.execute("COMMIT")
            self._committed = True
            self._commits += 1
            if self._commits >= WAKE_CHECKPOINT_COMMITS and self.wake_checkpointer is not None:
                self._commits = 0
                self.wake_checkpointer()

    def _read_only(self, exc: sqlite3.OperationalError) -> StoreError:
        return StoreError(
            f"the nbtrack store at {self.db_path} can be read but not written (SQLite said: "
            f"{exc}); nothing of this write was stored. Check the permissions of the file and "
            "its folder, or point nbtrack at a copy."
        )

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self.conn
            except UnicodeEncodeError as exc:
                raise _unencodable(exc) from None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads made inside all see the store as it was at the first of them (one read
        transaction), so that another process's commit cannot land between, say, a search
        and the params of the runs it found. Read only; this store waits for it, so keep it
        short. Inside a transaction already (a nested snapshot), it adds nothing."""
        with self._lock:
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN")  # deferred: the first read takes the snapshot
            try:
                yield
            finally:
                self.conn.execute("COMMIT")  # a read transaction: nothing to write

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only statement with bound parameters and return all rows."""
        with self.read() as conn:
            return conn.execute(sql, params).fetchall()

    def checkpoint(self) -> None:
        """Copy what was committed since the last call from the WAL into the database file.

        Called by the writer thread, on a connection of its own, so that no read or write of
        this process waits for it: with SQLite's automatic checkpoint, one commit in every
        few hundred paid for copying the pages of all the others. PASSIVE: it neither waits
        for nor blocks other connections, and copies what it can; what it could not (another
        connection reading an older state, or checkpointing itself) is left for the next call.
        """
        if not self._committed:
            return
        self._committed = False
        done = False
        try:
            with self._checkpoint_lock:
                if self._closed:
                    return
                if self._checkpointer is None:
                    self._checkpointer = sqlite3.connect(
                        str(self.db_path), isolation_level=None, check_same_thread=False
                    )
                busy, log, copied = self._checkpointer.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
                done = not busy and copied >= log
        finally:
            if not done and not self._closed:
                self._committed = True  # the next call tries again

    def close(self) -> None:
        with self._checkpoint_lock:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        with self._lock:
            self.conn.close()

    # -- experiments --------------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None, tags: dict[str, str]
    ) -> int:
        now = _now_ms()
        with self.write() as conn:
            cur = conn.execute(
                "INSERT INTO experiments (name, artifact_location, creation_time, last_update_time)"
                " VALUES (?, ?, ?, ?)",
                (name, artifact_location, now, now),
            )
            experiment_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO experiment_tags VALUES (?, ?, ?)",
                [(experiment_id, k, v) for k, v in tags.items()],
            )
        return experiment_id

    def get_or_create_experiment(self, name: str) -> int:
        """The id of the experiment ``name``, created if missing; safe across processes."""
        now = _now_ms()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO experiments (name, creation_time, last_update_time) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, now, now),
            )
            row = conn.execute(
                "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
            ).fetchone()
        return int(row[0])

    def ensure_default_experiment(self) -> None:
        """Experiment 0, "Default", as MLflow has it."""
        if self.get_experiment(0) is not None:
            return  # no write when it exists: opening a store never waits for another writer
        with self.write() as conn:
            now = _now_ms()
            conn.execute(
                "INSERT OR IGNORE INTO experiments (experiment_id, name, creation_time,"
                " last_update_time) VALUES (0, 'Default', ?, ?)",
                (now, now),
            )

    def get_experiment(
        self, experiment_id: int | None = None, name: str | None = None
    ) -> dict[str, Any] | None:
        with self.read() as conn:
            if name is not None:
                cur = conn.execute("SELECT * FROM experiments WHERE name = ?", (name,))
            else:
                cur = conn.execute(
                    "SELECT * FROM experiments WHERE experiment_id = ?", (experiment_id,)
                )
            row = cur.fetchone()
            if row is None:
                return None
            exp = dict(zip([d[0] for d in cur.description], row, strict=True))
            exp["tags"] = dict(
                conn.execute(
                    "SELECT key, value FROM experiment_tags WHERE experiment_id = ?",
                    (exp["experiment_id"],),
                ).fetchall()
            )
        return exp

    def list_experiments(self, lifecycle_stages: Sequence[str]) -> list[dict[str, Any]]:
        marks = placeholders(len(lifecycle_stages))
        with self.read() as conn:
            cur = conn.execute(
                f"SELECT * FROM experiments WHERE lifecycle_stage IN ({marks})"
                " ORDER BY experiment_id",
                list(lifecycle_stages),
            )
            cols = [d[0] for d in cur.description]
            out = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
            tags: dict[int, dict[str, str]] = {}
            for eid, key, value in conn.execute("SELECT * FROM experiment_tags").fetchall():
                tags.setdefault(eid, {})[key] = value
        for exp in out:
            exp["tags"] = tags.get(exp["experiment_id"], {})
        return out

    def update_experiment(self, experiment_id: int, **fields: Any) -> None:
        allowed = {"name", "lifecycle_stage", "artifact_location"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"can update only {sorted(allowed)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.write() as conn:
            conn.execute(
                f"UPDATE experiments SET {sets}, last_update_time = ? WHERE experiment_id = ?",
                [*fields.values(), _now_ms(), experiment_id],
            )

    def delete_experiment(self, experiment_id: int) -> bool:
        """Mark an active experiment and its active runs deleted, in one write, with one time:
        the experiment's ``last_update_time`` and the runs' ``deleted_time``. False, changing
        nothing, unless the experiment was active.

        That time is later than any run of the experiment deleted before (by a millisecond if
        need be): :meth:`restore_experiment` tells the runs deleted with the experiment by it."""
        with self.write() as conn:
            before = conn.execute(
                "SELECT max(deleted_time) FROM runs WHERE experiment_id = ?"
                " AND lifecycle_stage = 'deleted'",
                (experiment_id,),
            ).fetchone()[0]
            now = _now_ms() if before is None else max(_now_ms(), int(before) + 1)
            cur = conn.execute(
                "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ?"
                " WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                (now, experiment_id),
            )
            if cur.rowcount != 1:
                return False
            conn.execute(
                "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?"
                " WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                (now, experiment_id),
            )
        return True

    def restore_experiment(self, experiment_id: int) -> bool:
        """Undo :meth:`delete_experiment`: the experiment, and the runs deleted with it or since
        (not those deleted before it, nor those purged meanwhile). False, changing nothing,
        unless the experiment was deleted."""
        with self.write() as conn:
            row = conn.execute(
                "SELECT last_update_time FROM experiments WHERE experiment_id = ?"
                " AND lifecycle_stage = 'deleted'",
                (experiment_id,),
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL"
                " WHERE experiment_id = ? AND lifecycle_stage = 'deleted' AND deleted_time >= ?",
                (experiment_id, row[0]),
            )
            conn.execute(
                "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ?"
                " WHERE experiment_id = ?",
                (_now_ms(), experiment_id),
            )
        return True

    def delete_experiment_tag(self, experiment_id: int, key: str) -> bool:
        """Remove an experiment's tag; False if it had none of that key."""
        with self.write() as conn:
            cur = conn.execute(
                "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
                (experiment_id, key),
            )
        return cur.rowcount > 0

    def set_experiment_tag(self, experiment_id: int, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO experiment_tags VALUES (?, ?, ?)"
                " ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                (experiment_id, key, value),
            )

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        run: dict[str, Any],
        tags: dict[str, str],
        snapshots: Sequence[tuple[str, str, int, bytes]] = (),
    ) -> bool:
        """Insert a run with its tags and, in the same transaction, its snapshots given as
        ``(kind, sha256, size, zlib-compressed content)`` (stored once per sha256).

        Returns False, writing nothing, unless the run's experiment exists and is active.
        """
        if snapshots:
            run = {**run, "snapshots": json.dumps({kind: d for kind, d, _, _ in snapshots})}
        cols = [c for c in RUN_COLUMNS if c in run]
        now = _now_ms()
        try:
            self._insert_run(run, cols, tags, snapshots, now)
        except _NoSuchExperiment:
            return False
        return True

    def _insert_run(
        self,
        run: dict[str, Any],
        cols: list[str],
        tags: dict[str, str],
        snapshots: Sequence[tuple[str, str, int, bytes]],
        now: int,
    ) -> None:
        with self.write() as conn:
            cur = conn.execute(
                f"INSERT INTO runs ({', '.join(cols)}) SELECT {placeholders(len(cols))}"
                " WHERE EXISTS (SELECT 1 FROM experiments WHERE experiment_id = ?"
                " AND lifecycle_stage = 'active')",
                [*(run[c] for c in cols), run["experiment_id"]],
            )
            if cur.rowcount != 1:
                raise _NoSuchExperiment  # rolls the transaction back
            if snapshots:
                # Content already stored is left alone (the primary key says so); content
                # missing, even if another process's gc purged it, is stored again.
                conn.executemany(
                    "INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    [(digest, kind, size, data, now) for kind, digest, size, data in snapshots],
                )
            conn.executemany(
                "INSERT INTO tags VALUES (?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                [(run["run_id"], k, v) for k, v in tags.items()],
            )

    def experiment_stage(self, experiment_id: int) -> str | None:
        """The lifecycle stage of an experiment, or None if there is no such experiment."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?", (experiment_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def update_run(self, run_id: str, **fields: Any) -> bool:
        """Update a run's columns; False if there is no such run. ``pid`` may be a
        :class:`~nbtrack.store.base.Release`."""
        allowed = {"status", "end_time", "run_name", "lifecycle_stage", "deleted_time", "pid"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"can update only {sorted(allowed)}")
        sets: list[str] = []
        args: list[Any] = []
        for key, value in fields.items():
            if key == "pid" and isinstance(value, Release):
                held = "pid IS ? AND host IS ? AND process_start IS ?"
                sets.append(f"pid = CASE WHEN {held} THEN NULL ELSE pid END")
                sets.append(f"process_start = CASE WHEN {held} THEN NULL ELSE process_start END")
                args.extend([*value, *value])
            else:
                sets.append(f"{key} = ?")
                args.append(value)
        with self.write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*args, run_id]
            )
        return cur.rowcount > 0

    def reopen_run(self, run_id: str, host: str, pid: int, start: str | None) -> bool:
        """Set a run RUNNING again, owned by this process (so it is not taken for a dead one):
        its ``host``, ``pid`` and ``start`` (see :func:`~nbtrack.store.process.own_start`).
        Drop the note of an earlier kill; False if there is no such run."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = 'RUNNING', end_time = NULL, host = ?, pid = ?,"
                " process_start = ? WHERE run_id = ?",
                (host, pid, start, run_id),
            )
            # set again: a start given as it was (this process resuming its run again) was
            # cleared by the trigger of schema 10, which takes it for an older nbtrack's resume
            conn.execute("UPDATE runs SET process_start = ? WHERE run_id = ?", (start, run_id))
            conn.execute(
                "DELETE FROM tags WHERE run_id = ? AND key = 'nbtrack.killedReason'", (run_id,)
            )
        return cur.rowcount > 0

    def get_run_row(self, run_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_SELECT} FROM runs r WHERE r.run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else dict(zip(RUN_COLUMNS, row, strict=True))

    def get_run_rows(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Rows of the given runs, in the order given (missing ids are skipped)."""
        rows = self.query(
            f"SELECT {_RUN_SELECT} FROM runs r WHERE r.run_id IN (SELECT value FROM json_each(?))",
            (_json_list(run_ids),),
        )
        by_id = {row[0]: dict(zip(RUN_COLUMNS, row, strict=True)) for row in rows}
        return [by_id[i] for i in run_ids if i in by_id]

    def search_runs(
        self,
        experiment_ids: Sequence[int],
        lifecycle_stages: Sequence[str],
        search: CompiledSearch,
        max_results: int,
        columns: Sequence[str] = ("run_id",),
        offset: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Rows (the ``columns`` of ``runs`` asked for) of the runs matching a compiled search,
        in its order, from the ``offset``-th."""
        unknown = set(columns) - set(RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run columns {sorted(unknown)}")
        exp_marks = placeholders(len(experiment_ids)) or "NULL"
        stage_marks = placeholders(len(lifecycle_stages))
        needed = min(offset + max_results, 2**63 - 1)  # SQLite's LIMIT is 64-bit
        source, source_args, start, start_args = search_source(
            self.query, experiment_ids, lifecycle_stages, search, needed
        )
        sql = (
            f"SELECT {', '.join(f'r.{c}' for c in columns)} {source}"
            f" WHERE {start} AND r.experiment_id IN ({exp_marks})"
            f" AND r.lifecycle_stage IN ({stage_marks}) AND ({search.where})"
            f" ORDER BY {search.order} LIMIT ? OFFSET ?"
        )
        args = [
            *source_args,
            *start_args,
            *experiment_ids,
            *lifecycle_stages,
            *search.where_args,
            *search.order_args,
            max_results,
            offset,
        ]
        return self.query(sql, args)

    def run_children(self, run_ids: Sequence[str], table: str) -> list[tuple[int, str, Any]]:
        """``(index in run_ids, key, value)`` rows of params, tags or latest_metrics."""
        if table not in {"params", "tags", "latest_metrics"}:
            raise ValueError(f"unknown table {table!r}")
        return self.query(
            f"SELECT j.key, t.key, t.value FROM json_each(?) j JOIN {table} t"
            " ON t.run_id = j.value",
            (_json_list(run_ids),),
        )

    def run_columns(self, run_ids: Sequence[str], table: str) -> dict[str, list[Any]]:
        """Per key of params or tags, the values of these runs in the order given, None where
        a run lacks the key (as MLflow's frame has it): the columns of a search's DataFrame.
        (Metrics come row by row, :meth:`run_children`: SQLite's JSON would round REAL values
        to 15 digits.)"""
        if table not in {"params", "tags"}:
            raise ValueError(f"unknown table {table!r}")
        n = len(run_ids)
        columns: dict[str, list[Any]] = {}
        # Text values travel losslessly as JSON: one row per key instead of one per value. In
        # chunks of runs, so that no aggregate nears SQLite's string limit (1 GB by default; a
        # chunk of 8000-character values escaped at 6 bytes a character stays under 50 MB).
        for start in range(0, n, _COLUMN_CHUNK):
            rows = self.query(
                "SELECT t.key, json_group_array(j.key), json_group_array(t.value)"
                f" FROM json_each(?) j JOIN {table} t ON t.run_id = j.value GROUP BY t.key",
                (_json_list(run_ids[start : start + _COLUMN_CHUNK]),),
            )
            every = list(range(min(_COLUMN_CHUNK, n - start)))
            for key, positions, values in rows:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = [None] * n
                indexes, texts = json.loads(positions), json.loads(values)
                if indexes == every:  # the usual case: every run has the key
                    column[start : start + len(every)] = texts
                    continue
                for index, value in zip(indexes, texts, strict=True):
                    column[start + index] = value
        return columns

    def delete_tag(self, run_id: str, key: str) -> bool:
        with self.write() as conn:
            cur = conn.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))
        return cur.rowcount > 0

    def get_params(self, run_id: str) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM params WHERE run_id = ?", (run_id,)))

    # -- batched writes -----------------------------------------------------------------------

    def write_batch(
        self,
        metrics: Sequence[MetricRow],
        params: Sequence[KeyValueRow],
        tags: Sequence[KeyValueRow],
        wait: bool | float = True,
    ) -> BatchOutcome:
        """Write metrics (history blocks and latest values), params and tags in one
        transaction (``wait``: as :meth:`write`).

        Rows that another process made wrong since they were checked are left out and told
        of in the outcome (see :class:`~nbtrack.store.base.BatchOutcome`).
        """
        by_key: dict[tuple[str, str], list[MetricRow]] = {}
        for row in metrics:
            group = by_key.get((row[0], row[1]))
            if group is None:
                by_key[(row[0], row[1])] = [row]
            else:
                group.append(row)
        block_rows = []
        latest = []
        for (run_id, key), group in by_key.items():
            for block in pack(group):  # sorts the group by step, then time
                block_rows.append((run_id, key, *block))
            latest.append(group[-1])
        outcome = BatchOutcome()
        with self.write(wait) as conn:
            points: Counter[str] = Counter()
            for (run_id, _), group in by_key.items():  # per run and key: cheaper than per row
                points[run_id] += len(group)
            gone = _check_runs(conn, points, params, tags, outcome)
            if gone:
                block_rows = [r for r in block_rows if r[0] not in gone]
                latest = [r for r in latest if r[0] not in gone]
                params = [r for r in params if r[0] not in gone]
                tags = [r for r in tags if r[0] not in gone]
            if params:
                params = _without_param_conflicts(conn, params, outcome)
            if block_rows:
                conn.executemany(
                    "INSERT INTO metric_blocks (run_id, key, first_step, last_step, n, steps,"
                    ' timestamps, "values") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    block_rows,
                )
                conn.executemany(
                    "INSERT INTO latest_metrics (run_id, key, value, timestamp, step)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET"
                    " value = excluded.value, timestamp = excluded.timestamp, step = excluded.step"
                    " WHERE excluded.step > latest_metrics.step OR (excluded.step ="
                    " latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)",
                    latest,
                )
            if params:
                # A param never changes: the first value stays (conflicts are left out above).
                conn.executemany("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", params)
            if tags:
                conn.executemany(
                    "INSERT INTO tags VALUES (?, ?, ?)"
                    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                    tags,
                )
        return outcome

    def metric_history(self, run_id: str, key: str) -> tuple[list[int], list[int], list[float]]:
        """Steps, timestamps and values of one metric, by step then time."""
        return unpack(
            self.query(
                'SELECT steps, timestamps, "values" FROM metric_blocks'
                " WHERE run_id = ? AND key = ? ORDER BY first_step, rowid",
                (run_id, key),
            )
        )

    def metric_point_count(self, run_id: str | None = None) -> int:
        """How many metric points are stored (for one run, or in all)."""
        if run_id is None:
            rows = self.query("SELECT coalesce(sum(n), 0) FROM metric_blocks")
        else:
            rows = self.query(
                "SELECT coalesce(sum(n), 0) FROM metric_blocks WHERE run_id = ?", (run_id,)
            )
        return int(rows[0][0])

    # -- snapshots ----------------------------------------------------------------------------

    def put_snapshot(self, run_id: str, kind: str, data: bytes) -> str:
        """Store ``data`` once under its sha256 and link it to the run; returns the hash."""
        digest = hashlib.sha256(data).hexdigest()
        with self.write() as conn:
            exists = conn.execute("SELECT 1 FROM snapshots WHERE sha256 = ?", (digest,)).fetchone()
            if not exists:
                conn.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    (digest, kind, len(data), zlib.compress(data, 6), _now_ms()),
                )
            conn.execute(
                "UPDATE runs SET snapshots = json_set(coalesce(snapshots, '{}'), '$.' || ?, ?)"
                " WHERE run_id = ?",
                (kind, digest, run_id),
            )
        return digest

    def put_blobs(self, kind: str, items: Sequence[bytes]) -> list[str]:
        """Store each item once under its sha256 (no run link); returns the hashes in order."""
        digests = [hashlib.sha256(data).hexdigest() for data in items]
        if not digests:
            return digests
        with self.write() as conn:
            stored = {
                row[0]
                for row in conn.execute(
                    "SELECT sha256 FROM snapshots WHERE sha256 IN (SELECT value FROM json_each(?))",
                    (json.dumps(digests),),
                )
            }
            now = _now_ms()
            new = {}
            for digest, data in zip(digests, items, strict=True):
                if digest not in stored and digest not in new:
                    new[digest] = (digest, kind, len(data), zlib.compress(data, 6), now)
            conn.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)", list(new.values()))
        return digests

    def get_blobs(self, digests: Sequence[str]) -> dict[str, bytes]:
        """``sha256 -> content`` of those of ``digests`` that are stored."""
        rows = self.query(
            "SELECT sha256, content FROM snapshots"
            " WHERE sha256 IN (SELECT value FROM json_each(?))",
            (json.dumps(list(digests)),),
        )
        return {digest: zlib.decompress(content) for digest, content in rows}

    def get_snapshot(self, digest: str) -> bytes | None:
        rows = self.query("SELECT content FROM snapshots WHERE sha256 = ?", (digest,))
        return zlib.decompress(rows[0][0]) if rows else None

    def run_snapshots(self, run_id: str) -> dict[str, str]:
        """``kind -> sha256`` of the snapshots of a run."""
        rows = self.query("SELECT snapshots FROM runs WHERE run_id = ?", (run_id,))
        return dict(json.loads(rows[0][0])) if rows and rows[0][0] else {}

    # -- artifacts index ----------------------------------------------------------------------

    def index_artifacts(self, run_id: str, entries: Iterable[tuple[str, int]]) -> None:
        now = _now_ms()
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?) ON CONFLICT (run_id, path)"
                " DO UPDATE SET size = excluded.size, created_time = excluded.created_time",
                [(run_id, path, size, now) for path, size in entries],
            )

    def list_artifacts(self, run_id: str) -> list[tuple[str, int]]:
        return self.query(
            "SELECT path, size FROM artifacts WHERE run_id = ? ORDER BY path", (run_id,)
        )

    # -- housekeeping -------------------------------------------------------------------------

    def mark_dead_runs(self, wait: bool = True) -> list[str]:
        """Mark KILLED the RUNNING runs of this host whose process is gone; their ids. So is
        a run whose pid another process took since (this one, say: a job restarted in a
        container is pid 1 again), when the run's row says when its process started.

        ``wait=False``: when another writer holds the lock, mark nothing now (and return [])
        rather than wait for it; a later call marks them. Reads use it: a read must neither
        fail nor stall for this."""
        host = socket.gethostname()
        rows = self.query(
            "SELECT run_id, pid, process_start FROM runs"
            " WHERE status = 'RUNNING' AND host = ? AND pid IS NOT NULL",
            (host,),
        )
        dead = [row for row in rows if row[1] and not process_alive(row[1], row[2])]
        if not dead:
            return []
        now = _now_ms()
        try:
            return self._mark_killed(dead, host, now, wait)
        except StoreError:
            if wait:
                raise
            return []

    def _mark_killed(
        self, dead: list[tuple[str, int, str | None]], host: str, now: int, wait: bool
    ) -> list[str]:
        with self.write(wait) as conn:
            for run_id, pid, start in dead:
                last = conn.execute(
                    "SELECT max(timestamp) FROM latest_metrics WHERE run_id = ?", (run_id,)
                ).fetchone()[0]
                cur = conn.execute(  # metrics logged with earlier timestamps: not before
                    "UPDATE runs SET status = 'KILLED', end_time = max(start_time, ?)"
                    " WHERE run_id = ? AND status = 'RUNNING' AND pid IS ? AND process_start IS ?",
                    (last or now, run_id, pid, start),  # not if resumed since it was read
                )
                if cur.rowcount:
                    conn.execute(
                        "INSERT OR REPLACE INTO tags VALUES (?, 'nbtrack.killedReason', ?)",
                        (run_id, _killed_reason(pid, start, host)),
                    )
        return [run_id for run_id, _, _ in dead]

    def purge_deleted_runs(self, run_ids: Sequence[str] | None = None) -> list[str]:
        """Remove deleted runs (all, or those given) and their rows for good. A run that a
        registered model version comes from is kept: its artifacts hold the model."""
        with self.write() as conn:
            if run_ids is None:
                ids = [r[0] for r in conn.execute(self._PURGEABLE).fetchall()]
            else:
                wanted = set(run_ids)
                ids = [r[0] for r in conn.execute(self._PURGEABLE).fetchall() if r[0] in wanted]
            for table in (
                "metric_blocks",
                "latest_metrics",
                "params",
                "tags",
                "artifacts",
                "runs",
            ):
                conn.execute(
                    f"DELETE FROM {table} WHERE run_id IN (SELECT value FROM json_each(?))",
                    (_json_list(ids),),
                )
            conn.execute(
                "DELETE FROM snapshots WHERE kind != 'cell'"
                " AND sha256 NOT IN (SELECT sha256 FROM run_snapshots)"
            )
            # Cells are referenced from inside the history snapshots that remain.
            used: set[str] = set()
            for (content,) in conn.execute(
                "SELECT content FROM snapshots WHERE kind = 'history'"
            ).fetchall():
                try:
                    cells = json.loads(zlib.decompress(content)).get("cells", [])
                except (ValueError, AttributeError):
                    continue  # not a history document of ours: it references no cells
                used.update(c["sha256"] for c in cells if isinstance(c, dict) and "sha256" in c)
            conn.execute(
                "DELETE FROM snapshots WHERE kind = 'cell'"
                " AND sha256 NOT IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(used)),),
            )
        return ids

    def experiment_run_counts(self) -> dict[int, tuple[int, int | None]]:
        """``experiment_id -> (runs, latest start time)``: its active runs, or for a deleted
        experiment the runs deleted with it (which restoring it brings back)."""
        rows = self.query(
            "SELECT r.experiment_id, count(*), max(r.start_time) FROM runs r"
            " JOIN experiments e ON e.experiment_id = r.experiment_id"
            " WHERE r.lifecycle_stage = 'active' OR (e.lifecycle_stage = 'deleted'"
            " AND r.deleted_time >= e.last_update_time) GROUP BY r.experiment_id"
        )
        return {int(eid): (int(n), last) for eid, n, last in rows}

    #: A registered version comes from a run when it records the run's id, or when its source
    #: names the run (``runs:/<id>/model``, or a folder under the run's artifacts, as
    #: ``create_model_version`` and ``register_model`` of a path leave them, with no run id).
    _FROM_RUN = "(v.run_id = {run} OR instr(v.source, {run}) > 0)"
    _PURGEABLE = (
        "SELECT run_id FROM runs WHERE lifecycle_stage = 'deleted' AND NOT EXISTS"
        f" (SELECT 1 FROM model_versions v WHERE {_FROM_RUN.format(run='runs.run_id')})"
    )

    def deleted_run_ids(self) -> list[str]:
        """Deleted runs that ``gc`` may purge (not those registered model versions use)."""
        return [r[0] for r in self.query(self._PURGEABLE)]

    def deleted_runs_kept_for_models(self) -> list[tuple[str, str, int]]:
        """``(run id, model name, version)`` of the deleted runs ``gc`` keeps because a
        registered model version comes from them."""
        return self.query(
            "SELECT r.run_id, v.name, v.version FROM runs r JOIN model_versions v"
            f" ON {self._FROM_RUN.format(run='r.run_id')} WHERE r.lifecycle_stage = 'deleted'"
            " ORDER BY r.run_id, v.name, v.version"
        )

    def run_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Run ids starting with ``prefix`` (hex), through the primary key's index."""
        return [
            r[0]
            for r in self.query(
                "SELECT run_id FROM runs WHERE run_id GLOB ? LIMIT ?", (prefix + "*", limit)
            )
        ]

    def compact(self) -> None:
        """VACUUM, then checkpoint: in WAL mode VACUUM writes the compacted database into the
        -wal file, which must be moved back and truncated for the file to shrink."""
        with self._lock:
            self.db.vacuum()
            # Another connection's checkpoint (a writer thread's, ours included) makes this one
            # return busy at once rather than wait: try again for a while.
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                if time.monotonic() > deadline:
                    break  # the next checkpoint shrinks the file
                time.sleep(0.02)

    def all_run_ids(self) -> set[str]:
        return {r[0] for r in self.query("SELECT run_id FROM runs")}


class _NoSuchExperiment(Exception):
    """Internal: the run's experiment is missing or deleted (the insert is rolled back)."""


def _check_runs(
    conn: sqlite3.Connection,
    points: Counter[str],
    params: Sequence[KeyValueRow],
    tags: Sequence[KeyValueRow],
    outcome: BatchOutcome,
) -> set[str]:
    """The runs among these rows that no longer exist (their rows cannot be stored), noted in
    ``outcome`` with those deleted meanwhile (their rows are stored all the same)."""
    run_ids = set(points) | {r[0] for r in params} | {r[0] for r in tags}
    if not run_ids:
        return set()
    stages = dict(
        conn.execute(
            "SELECT run_id, lifecycle_stage FROM runs WHERE run_id IN (SELECT value FROM"
            " json_each(?))",
            (_json_list(run_ids),),
        ).fetchall()
    )
    gone = set()
    for run_id in sorted(run_ids):
        stage = stages.get(run_id)
        if stage == "deleted":
            outcome.deleted.add(run_id)
        elif stage is None:
            gone.add(run_id)
            n_params = sum(1 for r in params if r[0] == run_id)
            n_tags = sum(1 for r in tags if r[0] == run_id)
            error = RunNotFoundError(
                f"run {run_id} no longer exists (it was purged, by nbtrack gc or another "
                f"process, after these rows were logged); {points[run_id]} metric point(s), "
                f"{n_params} param(s) and {n_tags} tag(s) logged to it were not stored"
            )
            outcome.refused.append((run_id, error))
    return gone


def _without_param_conflicts(
    conn: sqlite3.Connection, params: Sequence[KeyValueRow], outcome: BatchOutcome
) -> list[KeyValueRow]:
    """The params that do not contradict a value stored (or earlier in this batch); the
    others are refused in ``outcome``. The first value of a param stays."""
    run_ids = {r[0] for r in params}
    known: dict[tuple[str, str], str] = {
        (run_id, key): value
        for run_id, key, value in conn.execute(
            "SELECT run_id, key, value FROM params WHERE run_id IN (SELECT value FROM"
            " json_each(?))",
            (_json_list(run_ids),),
        ).fetchall()
    }
    kept = []
    for row in params:
        run_id, key, value = row
        old = known.get((run_id, key))
        if old is None:
            known[(run_id, key)] = value
            kept.append(row)
        elif old != value:
            outcome.stored_params[(run_id, key)] = old
            error = ParamConflictError(
                f"param {key!r} of run {run_id} is {old!r} (it was logged first, by another "
                f"process or thread); {value!r}, logged here, was not stored. Params are fixed "
                "once logged: start a new run for new values."
            )
            outcome.refused.append((run_id, error))
    return kept


def _json_list(items: Iterable[Any]) -> str:
    return json.dumps(list(items))


def absolute_artifact_uri(prefix: str, stored: str) -> str:
    """The absolute artifact folder of a run from the ``artifact_uri`` its row holds: a run
    under the store's own ``artifacts/`` holds ``<exp>/<run>``, relative (so the store can be
    moved with its folder), to which ``prefix`` (that folder and a separator) is put."""
    return stored if os.path.isabs(stored) else prefix + stored


def _artifact_uri_function(prefix: str) -> Callable[[str | None], str | None]:
    """``nbtrack_artifact_uri(r.artifact_uri)``: filters and order_by on ``artifact_uri`` see
    the absolute folder that runs and search frames show."""

    def artifact_uri(stored: str | None) -> str | None:
        return None if stored is None else absolute_artifact_uri(prefix, stored)

    return artifact_uri


def _unencodable(exc: UnicodeEncodeError) -> InvalidInputError:
    """The error for text SQLite was given and UTF-8 cannot encode (a lone surrogate): the
    checks of what users log catch it first; this is for what reaches the store otherwise
    (a name looked up, say). Nothing of the statement was stored."""
    bad = exc.object[exc.start : exc.end]
    return InvalidInputError(
        f"text holding {bad!r}, which UTF-8 cannot encode (a lone surrogate, such as Python "
        "makes of a file name's undecodable bytes), cannot be stored or looked up; make it "
        "text first, e.g. os.fsencode(value).decode('utf-8', 'replace')"
    )
