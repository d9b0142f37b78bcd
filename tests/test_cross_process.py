"""Two processes on one run: what one process changed is not overwritten by the other's buffer.

Each test lets this process cache what it knows of a run (its params, that it is writable),
changes the run from a real second process, then logs here. The store refuses the rows that
became wrong; the next flush raises the error that names them, and every other row is written.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrack
from nbtrack.exceptions import ParamConflictError, RunNotFoundError, RunStateError


def other_process(store: Path, code: str, *args: str) -> None:
    """Run ``code`` (with ``client``, a Client of ``store``, and ``argv``) in a new process."""
    script = f"import sys, nbtrack\nclient = nbtrack.Client({str(store)!r})\nargv = sys.argv[1:]\n"
    done = subprocess.run(
        [sys.executable, "-c", script + code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def cached_run() -> str:
    """A new active run whose params this process has read (so it believes it knows them)."""
    run_id = nbtrack.start_run().info.run_id
    nbtrack.log_param("seed", 1)
    nbtrack.flush()
    return run_id


def test_a_param_stored_first_by_another_process_is_refused_at_the_next_flush(
    store_dir: Path,
) -> None:
    run_id = cached_run()
    other_process(store_dir, "client.log_param(argv[0], 'lr', '0.1'); client.flush()", run_id)

    nbtrack.log_param("lr", 0.2)  # this process does not know of lr yet
    nbtrack.log_metric("loss", 0.5)
    nbtrack.set_tag("team", "vision")
    with pytest.raises(ParamConflictError, match=r"'lr'.*'0\.1' by another process; '0\.2'"):
        nbtrack.flush()

    run = nbtrack.get_run(run_id)
    assert run.data.params == {"seed": "1", "lr": "0.1"}  # the first value stays
    assert run.data.metrics == {"loss": 0.5}  # the rest of the batch was written
    assert run.data.tags["team"] == "vision"
    # The error is raised once; this process now knows the stored value.
    nbtrack.flush()
    with pytest.raises(ParamConflictError, match=r"already '0\.1'; cannot change it to '0\.2'"):
        nbtrack.log_param("lr", 0.2)
    nbtrack.log_param("lr", "0.1")  # the same value again is fine
    nbtrack.end_run()
    assert nbtrack.get_run(run_id).info.status == "FINISHED"


def test_a_run_ends_even_when_some_of_its_rows_were_refused(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, "client.log_param(argv[0], 'lr', '0.1'); client.flush()", run_id)
    nbtrack.log_param("lr", 0.2)
    with pytest.raises(ParamConflictError):
        nbtrack.end_run()
    assert nbtrack.active_run() is None
    assert nbtrack.get_run(run_id).info.status == "FINISHED"


def test_a_with_block_raises_the_refusal_and_still_ends_the_run(store_dir: Path) -> None:
    with pytest.raises(ParamConflictError), nbtrack.start_run() as run:
        nbtrack.log_param("seed", 1)
        nbtrack.flush()
        other_process(
            store_dir,
            "client.log_param(argv[0], 'lr', '0.1'); client.flush()",
            run.info.run_id,
        )
        nbtrack.log_param("lr", 0.2)
    assert nbtrack.active_run() is None
    assert nbtrack.get_run(run.info.run_id).info.status == "FINISHED"


def test_rows_for_a_run_another_process_deleted_are_refused(store_dir: Path) -> None:
    run_id = cached_run()
    nbtrack.log_metric("loss", 1.0, step=0)
    nbtrack.flush()
    other_process(store_dir, "client.delete_run(argv[0])", run_id)

    nbtrack.log_metric("loss", 0.5, step=1)  # this process still takes the run for writable
    with pytest.raises(RunStateError, match=r"deleted by another process.*1 metric point"):
        nbtrack.flush()
    client = nbtrack.Client()
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0]
    # Known now: the next log call is refused at once, naming the way back.
    with pytest.raises(RunStateError, match="restore_run"):
        nbtrack.log_metric("loss", 0.25, step=2)
    nbtrack.end_run()


def test_rows_for_a_run_another_process_purged_are_refused(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(
        store_dir,
        "client.delete_run(argv[0])\n"
        "from nbtrack.cli import cli\n"
        f"cli(['--store', {str(store_dir)!r}, 'gc'], standalone_mode=False)",
        run_id,
    )
    nbtrack.log_metric("loss", 0.5)
    nbtrack.set_tag("team", "vision")
    with pytest.raises(RunNotFoundError, match=r"no longer exists.*1 metric point.*1 tag"):
        nbtrack.flush()
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:  # no orphan rows left behind
        for table in ("latest_metrics", "metric_blocks", "tags", "params"):
            count = conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,))
            assert count.fetchone()[0] == 0, table
    with pytest.raises(RunNotFoundError):  # the run is gone: it cannot be ended ...
        nbtrack.end_run()
    assert nbtrack.active_run() is None  # ... but it is no longer the active run either
