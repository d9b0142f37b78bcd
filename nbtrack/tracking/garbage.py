"""What ``nbtrack gc`` may remove: purged runs' rows, and artifact folders no run refers to.

A folder is removed only when it provably belongs to this store and to no run of it:

- the folder of a run purged here, wherever its artifacts live (an experiment may have an
  ``artifact_location`` of its own);
- under the store's artifact root, a ``<experiment id>/<run id>`` folder (both parts shaped as
  nbtrack makes them, the experiment one of this store's) whose run the store does not hold:
  left behind by a purge that could not remove it, or by rows deleted by hand.

Anything else under the root is left alone: the folders of an experiment whose own
``artifact_location`` lies inside the root, and everything when another store shares the root
(``runs.db`` and ``runs.sqlite`` side by side both keep artifacts in ``runs-artifacts/``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Collection", "collect", "stores_sharing_artifacts"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Collection:
    """What a collection purged (or, dry, would purge) and removed."""

    runs: list[str]
    folders: list[Path]
    shared_with: list[Path] = field(default_factory=list)
    #: Deleted runs kept, with the registered model versions that come from them.
    kept_for_models: dict[str, list[str]] = field(default_factory=dict)


def stores_sharing_artifacts(db_path: Path, artifact_root: Path) -> list[Path]:
    """Other SQLite databases beside ``db_path`` whose artifacts go to the same folder: any
    file of the same stem (``runs.db``, ``runs.sqlite``, ``runs``, ``runs.data``; ``RUNS.db``
    too where the file system ignores case)."""
    if db_path.parent / f"{db_path.stem}-artifacts" != artifact_root:
        return []  # a directory store (nbtrack.db and artifacts/): its folder is its own
    stem = db_path.stem.casefold()
    return sorted(
        p
        for p in db_path.parent.iterdir()
        if p.stem.casefold() == stem
        and not _same_file(p, db_path)
        and _same_file(db_path.parent / f"{p.stem}-artifacts", artifact_root)
        and _may_be_sqlite(p)
    )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder (``RUNS.db`` is ``runs.db`` on macOS)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _may_be_sqlite(path: Path) -> bool:
    """Whether ``path`` is a SQLite database file (not its -wal or -shm, nor a folder, pipe or
    other file), or a file that cannot be read, which might be one."""
    if path.is_dir():
        return False
    try:
        # Non-blocking: opening a named pipe to read would wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return True
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return os.read(fd, 16) == b"SQLite format 3\x00"
    except OSError:
        return True
    finally:
        os.close(fd)


def _candidates(root: Path) -> list[Path]:
    """``<digits>/<run id>`` folders under the artifact root."""
    if not root.is_dir():
        return []
    return [
        run_dir
        for exp_dir in root.iterdir()
        if exp_dir.name.isdigit() and exp_dir.is_dir()
        for run_dir in exp_dir.iterdir()
        if _RUN_ID.fullmatch(run_dir.name) and run_dir.is_dir()
    ]


def _run_folders(client: Client, run_ids: list[str]) -> dict[str, Path]:
    """The artifact folder of each of these runs, wherever it is."""
    rows = client.store.get_run_rows(run_ids)
    return {row["run_id"]: Path(client.artifact_uri(str(row["artifact_uri"]))) for row in rows}


def collect(client: Client, dry_run: bool = False) -> Collection:
    """Purge the deleted runs of ``client``'s store and remove the artifact folders that
    belong to no run of it (see the module's text). ``dry_run``: change nothing, and say
    what would go."""
    store = client.store
    shared = stores_sharing_artifacts(store.db_path, store.artifact_root)
    # Folders are listed before the runs are read: a run's row is written before its folder,
    # so a run created meanwhile by another process is either known below or its folder not
    # listed.
    candidates = [] if shared else _candidates(store.artifact_root)
    deleted = store.deleted_run_ids()
    own_folders = _run_folders(client, deleted)
    if dry_run:
        purged, keep = deleted, store.all_run_ids() - set(deleted)
    else:  # in one transaction: a run restored meanwhile is not purged
        purged = store.purge_deleted_runs()
        keep = store.all_run_ids()
    experiments = {str(e["experiment_id"]) for e in store.list_experiments(("active", "deleted"))}
    folders = {d for d in candidates if d.name not in keep and d.parent.name in experiments}
    folders.update(own_folders[r] for r in purged if r in own_folders and own_folders[r].is_dir())
    if not dry_run:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    kept: dict[str, list[str]] = {}
    for run_id, name, version in store.deleted_runs_kept_for_models():
        kept.setdefault(run_id, []).append(f"{name} v{version}")
    return Collection(list(purged), sorted(folders), shared, kept)
