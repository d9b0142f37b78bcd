"""Two processes on one run: what one process changed is not overwritten by the other's buffer.

Each test lets this process cache what it knows of a run (its params, that it is writable),
changes the run from a real second process, then logs here. The store refuses the rows that
became wrong (a param stored first elsewhere, the rows of a purged run); their error waits for
the end of that run or an explicit flush, and every other row is written.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import nbtrack
from nbtrack.exceptions import (
    NbtrackWarning,
    ParamConflictError,
    RunNotFoundError,
    RunStateError,
)
from nbtrack.store.base import BatchOutcome


def other_process(store: Path, code: str, *args: str) -> None:
    """Run ``code`` (with ``client``, a Client of ``store``, and ``argv``) in a new process."""
    script = f"import sys, nbtrack\nclient = nbtrack.Client({str(store)!r})\nargv = sys.argv[1:]\n"
    done = subprocess.run(
        [sys.executable, "-c", script + code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def run_script(script: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """Run a Python script file with ``store`` as its tracking URI."""
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(store)}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


def run_text(text: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the Python script ``text`` with ``args``, from a file under ``tmp_path``."""
    script = tmp_path / "script.py"
    script.write_text(text)
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )


def cached_run() -> str:
    """A new active run whose params this process has read (so it believes it knows them)."""
    run_id = nbtrack.start_run().info.run_id
    nbtrack.log_param("seed", 1)
    nbtrack.flush()
    return run_id


CONFLICT = "client.log_param(argv[0], 'lr', '0.1'); client.flush()"
PURGE = (
    "client.delete_run(argv[0])\n"
    "from nbtrack.cli import cli\n"
    "cli(['--store', client.store.db_path.parent.as_posix(), 'gc'], standalone_mode=False)"
)


def test_a_param_stored_first_by_another_process_is_refused_at_flush(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, CONFLICT, run_id)

    nbtrack.log_param("lr", 0.2)  # this process does not know of lr yet
    nbtrack.log_metric("loss", 0.5)
    nbtrack.set_tag("team", "vision")
    with pytest.raises(ParamConflictError, match=r"'lr'.* is '0\.1' .*; '0\.2', logged here"):
        nbtrack.flush()

    run = nbtrack.get_run(run_id)
    assert run.data.params == {"seed": "1", "lr": "0.1"}  # the first value stays
    assert run.data.metrics == {"loss": 0.5}  # the rest of the batch was written
    assert run.data.tags["team"] == "vision"
    nbtrack.flush()  # each error is raised once
    # This process now knows the stored value: another is refused at once, the same is fine.
    with pytest.raises(ParamConflictError, match=r"already '0\.1'; cannot change it to '0\.2'"):
        nbtrack.log_param("lr", 0.2)
    nbtrack.log_param("lr", "0.1")
    nbtrack.end_run()
    assert nbtrack.get_run(run_id).info.status == "FINISHED"


def test_reads_leave_the_error_to_the_end_of_its_run(store_dir: Path) -> None:
    """A widget polling runs (or any read) must not swallow a refusal, nor get another run's."""
    run_id = cached_run()
    other_process(store_dir, CONFLICT, run_id)
    nbtrack.log_param("lr", 0.2)
    other = nbtrack.Client().create_run("0").info.run_id
    nbtrack.get_run(other)
    nbtrack.get_run(run_id)
    nbtrack.search_runs()
    assert nbtrack.get_run(run_id).data.params["lr"] == "0.1"  # written (refused) already
    with pytest.raises(ParamConflictError, match="'lr'"):
        nbtrack.end_run()
    assert nbtrack.active_run() is None
    assert nbtrack.get_run(run_id).info.status == "FINISHED"  # ended all the same


def test_a_with_block_raises_the_refusal_and_still_ends_the_run(store_dir: Path) -> None:
    with pytest.raises(ParamConflictError), nbtrack.start_run() as run:
        nbtrack.log_param("seed", 1)
        nbtrack.flush()
        other_process(store_dir, CONFLICT, run.info.run_id)
        nbtrack.log_param("lr", 0.2)
    assert nbtrack.active_run() is None
    assert nbtrack.get_run(run.info.run_id).info.status == "FINISHED"


def test_the_users_own_exception_is_not_replaced_by_a_refusal(store_dir: Path) -> None:
    refused = pytest.warns(NbtrackWarning, match="'lr'")
    with pytest.raises(ValueError, match="boom"), refused, nbtrack.start_run() as run:
        nbtrack.log_param("seed", 1)
        nbtrack.flush()
        other_process(store_dir, CONFLICT, run.info.run_id)
        nbtrack.log_param("lr", 0.2)
        raise ValueError("boom")
    assert nbtrack.get_run(run.info.run_id).info.status == "FAILED"


def test_a_new_run_ends_the_old_one_and_warns_of_its_refused_rows(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, CONFLICT, run_id)
    nbtrack.log_param("lr", 0.2)
    ending = pytest.warns(NbtrackWarning, match="ending the active run")
    with ending, pytest.warns(NbtrackWarning, match="'lr'"):
        new = nbtrack.start_run()
    assert nbtrack.get_run(run_id).info.status == "FINISHED"
    assert nbtrack.active_run().info.run_id == new.info.run_id  # type: ignore[union-attr]
    nbtrack.end_run()


def test_logging_to_a_run_another_process_deleted(store_dir: Path) -> None:
    """Rows logged before this process could know are kept with the (soft-)deleted run, which
    can be restored; logging after that is refused at once, naming the way back."""
    run_id = cached_run()
    nbtrack.log_metric("loss", 1.0, step=0)
    nbtrack.flush()
    other_process(store_dir, "client.delete_run(argv[0])", run_id)

    nbtrack.log_metric("loss", 0.5, step=1)  # this process still takes the run for writable
    nbtrack.flush()  # stored, and the run is known to be deleted now
    with pytest.raises(RunStateError, match="restore_run"):
        nbtrack.log_metric("loss", 0.25, step=2)
    client = nbtrack.Client()
    client.restore_run(run_id)
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 0.5]
    nbtrack.end_run()


def test_rows_for_a_run_another_process_purged_are_refused(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, PURGE, run_id)
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


def test_an_uncaught_exception_still_reaches_the_other_hooks(
    store_dir: Path, tmp_path: Path
) -> None:
    """A script dying with a run open: the run FAILS, the refusal is reported, and Python's own
    hook still prints the user's traceback."""
    script = tmp_path / "train.py"
    script.write_text(
        "import subprocess, sys, nbtrack\n"
        "run = nbtrack.start_run()\n"
        "nbtrack.log_param('seed', 1); nbtrack.flush()\n"
        "code = f'import nbtrack; c = nbtrack.Client(); c.log_param({run.info.run_id!r}, "
        "\"lr\", \"0.1\"); c.flush()'\n"
        "subprocess.run([sys.executable, '-c', code], check=True)\n"
        "nbtrack.log_param('lr', 0.2)\n"
        "print(run.info.run_id, flush=True)\n"
        "raise ValueError('boom')\n"
    )
    done = run_script(script, store_dir)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError: boom" in done.stderr
    assert "Error in sys.excepthook" not in done.stderr
    assert "'lr'" in done.stderr  # the refusal, reported
    run = nbtrack.Client().get_run(done.stdout.strip())
    assert run.info.status == "FAILED" and run.data.params["lr"] == "0.1"


def test_a_batch_keeps_the_first_value_of_a_param_and_refuses_the_next(store_dir: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    outcome = client.store.write_batch([], [(run_id, "k", "1"), (run_id, "k", "2")], [])
    assert client.get_run(run_id).data.params == {"k": "1"}
    assert [type(e) for _, e in outcome.refused] == [ParamConflictError]
    assert outcome.stored_params == {(run_id, "k"): "1"}


def test_learning_of_a_refusal_keeps_what_is_still_queued(store_dir: Path) -> None:
    """The writer thread learns of a refused param while other params of the run may still be
    queued: it corrects the one param, and forgets nothing else, so a different value for a
    queued param is still refused at once rather than slipping through."""
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "queued", "1")  # known to this process, not yet written
    client._b.learn(
        BatchOutcome(
            refused=[(run_id, ParamConflictError("lr"))], stored_params={(run_id, "lr"): "0.1"}
        )
    )
    with pytest.raises(ParamConflictError, match="already '1'"):
        client.log_param(run_id, "queued", "2")
    with pytest.raises(ParamConflictError, match=r"already '0\.1'"):
        client.log_param(run_id, "lr", "0.2")


def test_ending_a_run_through_update_run_raises_its_refusals(store_dir: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "seed", 1, synchronous=True)
    other_process(store_dir, CONFLICT, run_id)
    client.log_param(run_id, "lr", 0.2)
    with pytest.raises(ParamConflictError, match="'lr'"):
        client.update_run(run_id, status="FINISHED")
    assert client.get_run(run_id).info.status == "FINISHED"


def test_log_calls_never_raise_a_refusal_so_a_training_loop_goes_on(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, CONFLICT, run_id)
    nbtrack.log_param("lr", 0.2)
    nbtrack.get_run(run_id)  # the rows are written and the refusal learnt
    for step in range(3):
        nbtrack.log_metric("loss", 1.0 / (step + 1), step=step)  # never the lr error
    nbtrack.Client().log_batch(run_id, metrics=[nbtrack.Metric("acc", 0.5, 0, 0)])
    history = nbtrack.Client().get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]
    with pytest.raises(ParamConflictError, match="'lr'"):
        nbtrack.end_run()


def test_a_refusal_for_a_run_already_ended_waits_for_an_explicit_flush(store_dir: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "seed", 1, synchronous=True)
    client.set_terminated(run_id)
    other_process(store_dir, CONFLICT, run_id)
    client.log_param(run_id, "lr", 0.2)
    client.get_run(run_id)
    client.log_metric(run_id, "m", 1.0)
    with pytest.raises(ParamConflictError, match="'lr'"):
        client.flush()
    assert client.get_run(run_id).data.metrics == {"m": 1.0}


def test_a_rename_that_ends_a_run_is_one_write_and_keeps_refusals_for_a_retry(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.exceptions import StoreError
    from nbtrack.store.sqlite import SQLiteStore

    client = nbtrack.Client()
    run_id = client.create_run("0", run_name="before").info.run_id
    client.log_param(run_id, "seed", 1, synchronous=True)
    other_process(store_dir, CONFLICT, run_id)
    client.log_param(run_id, "lr", 0.2)
    real = SQLiteStore.update_run

    def locked(self: SQLiteStore, run_id: str, **fields: object) -> bool:
        raise StoreError("locked")

    monkeypatch.setattr(SQLiteStore, "update_run", locked)
    with pytest.raises(StoreError):
        client.update_run(run_id, status="FINISHED", name="after")
    monkeypatch.setattr(SQLiteStore, "update_run", real)
    assert client.get_run(run_id).info.run_name == "before"  # nothing half-done
    with pytest.raises(ParamConflictError, match="'lr'"):  # the refusal was kept for this
        client.update_run(run_id, status="FINISHED", name="after")
    run = client.get_run(run_id)
    assert (run.info.status, run.info.run_name) == ("FINISHED", "after")


def test_warnings_as_errors_neither_leave_runs_open_nor_hide_the_users_error(
    store_dir: Path,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)
        with pytest.raises(ValueError, match="boom") as caught, nbtrack.start_run() as outer:
            inner = nbtrack.start_run(nested=True)
            nbtrack.log_param("seed", 1)
            nbtrack.flush()
            other_process(store_dir, CONFLICT, inner.info.run_id)
            nbtrack.log_param("lr", 0.2)
            raise ValueError("boom")
    if sys.version_info >= (3, 11):  # the refusal rides along as a note of the user's error
        assert any("'lr'" in note for note in caught.value.__notes__)
    client = nbtrack.Client()
    assert client.get_run(inner.info.run_id).info.status == "FAILED"
    assert client.get_run(outer.info.run_id).info.status == "FAILED"
    assert nbtrack.active_run() is None


def test_a_purged_runs_end_still_says_what_was_not_stored(store_dir: Path) -> None:
    run_id = cached_run()
    other_process(store_dir, PURGE, run_id)
    nbtrack.log_metric("loss", 0.5)
    with pytest.raises(RunNotFoundError, match=r"no run with id .*1 metric point"):
        nbtrack.end_run()


FORKED = """
import os, sys, nbtrack
run = nbtrack.start_run()
nbtrack.log_metric("m", 1.0)
pid = os.fork()
if pid == 0:
    CHILD
os.waitpid(pid, 0)
print(nbtrack.get_run(run.info.run_id).info.status, run.info.run_id, flush=True)
"""


@pytest.mark.parametrize(
    "child",
    [
        "sys.exit(0)  # a worker done: exit hooks run in the child",
        "nbtrack.log_metric('from_child', 1.0); sys.exit(0)",
        "nbtrack.start_run(); sys.exit(0)  # a run of its own, not nested",
        "nbtrack.start_run(nested=True); raise ValueError('child boom')",
    ],
)
def test_a_forked_child_leaving_does_not_end_its_parents_run(
    store_dir: Path, tmp_path: Path, child: str
) -> None:
    script = tmp_path / "fork.py"
    script.write_text(FORKED.replace("CHILD", child))
    done = run_script(script, store_dir)
    assert done.returncode == 0, done.stderr
    status, run_id = done.stdout.split()
    assert status == "RUNNING"  # the parent's run was still its own while the parent ran
    client = nbtrack.Client()
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"  # ended at the parent's exit
    assert "nbtrack.error" not in parent.data.tags
    if "from_child" in child:
        assert parent.data.metrics["from_child"] == 1.0  # a worker may log to the run
    others = [r for r in client.search_runs(["0"]) if r.info.run_id != run_id]
    if "start_run" in child:  # the child's own run was ended by the child
        expected = "FAILED" if "raise" in child else "FINISHED"
        assert [r.info.status for r in others] == [expected]


def test_sys_exit_with_warnings_as_errors_still_reports_a_refusal(
    store_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "exit.py"
    script.write_text(
        "import subprocess, sys, warnings, nbtrack\n"
        "warnings.simplefilter('error', nbtrack.exceptions.NbtrackWarning)\n"
        "with nbtrack.start_run() as run:\n"
        "    nbtrack.log_param('seed', 1); nbtrack.flush()\n"
        "    code = f'import nbtrack; c = nbtrack.Client(); c.log_param({run.info.run_id!r}, "
        "\"lr\", \"0.1\"); c.flush()'\n"
        "    subprocess.run([sys.executable, '-c', code], check=True)\n"
        "    nbtrack.log_param('lr', 0.2)\n"
        "    sys.exit(0)\n"
    )
    done = run_script(script, store_dir)
    assert done.returncode == 0, done.stderr
    assert "'lr'" in done.stderr


def test_a_forked_child_may_not_resume_its_parents_active_run(
    store_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "resume.py"
    script.write_text(
        "import os, sys, nbtrack\n"
        "outer = nbtrack.start_run()\n"
        "inner = nbtrack.start_run(nested=True)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    for run in (outer, inner):\n"
        "        try:\n"
        "            nbtrack.start_run(run_id=run.info.run_id)\n"
        "        except nbtrack.exceptions.RunStateError as exc:\n"
        "            assert 'forked this one' in str(exc), exc\n"
        "        else:\n"
        "            os._exit(3)\n"
        "    sys.exit(0)\n"
        "_, code = os.waitpid(pid, 0)\n"
        "print(code, nbtrack.get_run(outer.info.run_id).info.status, flush=True)\n"
    )
    done = run_script(script, store_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "RUNNING"]


def test_a_forked_child_exits_even_if_another_thread_held_the_run_lock_at_the_fork(
    store_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "lock.py"
    script.write_text(
        "import os, sys, threading, time, nbtrack\n"
        "from nbtrack.tracking import fluent\n"
        "run = nbtrack.start_run()\n"
        "held = threading.Event()\n"
        "def hold():\n"
        "    with fluent._stack_lock:\n"
        "        held.set(); time.sleep(3)\n"
        "threading.Thread(target=hold, daemon=True).start()\n"
        "held.wait()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    sys.exit(0)  # the exit hooks take the lock\n"
        "for _ in range(200):\n"
        "    done, _ = os.waitpid(pid, os.WNOHANG)\n"
        "    if done:\n"
        "        print('exited', flush=True); break\n"
        "    time.sleep(0.1)\n"
        "else:\n"
        "    os.kill(pid, 9); print('hung', flush=True)\n"
    )
    done = run_script(script, store_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exited"


FORK_WHILE_WRITING = """
import os, sys, threading, time
import nbtrack
from nbtrack.store import sqlite as sqlite_store
sqlite_store.BUSY_TIMEOUT_S = 5.0  # a child that finds the store locked says so in 5 s
nbtrack.start_run()
stop = threading.Event()
def log_all_the_time():  # keeps the writer thread in transactions
    step = 0
    while not stop.is_set():
        nbtrack.log_metric("p", float(step), step=step)
        step += 1
        if step % 500 == 0:
            time.sleep(0.001)
threading.Thread(target=log_all_the_time, daemon=True).start()
children = []
for k in range(CHILDREN):
    time.sleep(0.01)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with nbtrack.start_run(run_name=f"child-{k}"):
                nbtrack.log_metric("c", 1.0)
        except BaseException as exc:
            print("child error:", exc, file=sys.stderr)
            code = 1
        sys.exit(code)
    children.append(pid)
hung = failed = 0
deadline = time.monotonic() + 60
for pid in children:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            failed += os.waitstatus_to_exitcode(status) != 0
            break
        if time.monotonic() > deadline:
            hung += 1
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
stop.set()
nbtrack.end_run()
print(hung, failed, len(nbtrack.search_runs(filter_string="run_name LIKE 'child-%'")))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_children_forked_while_the_writer_thread_writes_can_log(
    store_dir: Path, tmp_path: Path
) -> None:
    """A fork in the middle of the parent's write used to leave SQLite's lock bookkeeping of
    that write in the child: a child that logged found the store locked for ever, or hung
    (a few children in a hundred, with a parent logging all the time)."""
    children = 60
    script = tmp_path / "storm.py"
    script.write_text(FORK_WHILE_WRITING.replace("CHILDREN", str(children)))
    done = run_script(script, store_dir)
    assert done.returncode == 0, done.stderr
    hung, failed, child_runs = map(int, done.stdout.split())
    assert (hung, failed) == (0, 0), done.stderr
    assert child_runs == children


def test_refusals_of_several_kinds_come_as_their_nearest_common_kind_and_each_is_kept() -> None:
    from nbtrack.exceptions import ExperimentNotFoundError, NbtrackError, NotFoundError
    from nbtrack.tracking.buffer import combined

    conflict_a, conflict_b = ParamConflictError("a"), ParamConflictError("b")
    purged = RunNotFoundError("gone")
    assert combined([purged]) is purged
    same = combined([conflict_a, conflict_b])
    assert type(same) is ParamConflictError and same.errors == [conflict_a, conflict_b]
    assert "2 errors: a; b" in str(same)
    found = combined([purged, ExperimentNotFoundError("no exp")])
    assert type(found) is NotFoundError
    mixed = combined([conflict_a, purged])
    assert type(mixed) is NbtrackError and mixed.errors == [conflict_a, purged]


FORK_WHILE_OPENING = """
import os, sys, threading, time
from nbtrack.store import schema, sqlite as sqlite_store
path = sys.argv[1]
inside = threading.Event()
last = schema.MIGRATIONS[-1]
def slow_last(conn):  # holds the opening transaction of a new store open for a second
    last(conn)
    inside.set()
    time.sleep(1.0)
sqlite_store.MIGRATIONS[-1] = slow_last
opener = threading.Thread(target=lambda: sqlite_store.SQLiteStore(path, path + "-artifacts"))
opener.start()
inside.wait()
pid = os.fork()
if pid == 0:
    sqlite_store.BUSY_TIMEOUT_S = 3.0
    sqlite_store.MIGRATIONS[-1] = last
    try:
        sqlite_store.SQLiteStore(path, path + "-artifacts").get_or_create_experiment("child")
        print("child wrote", flush=True)
        os._exit(0)
    except BaseException as exc:
        print("child failed:", exc, flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
opener.join()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_while_another_thread_opens_a_store_can_write(tmp_path: Path) -> None:
    done = run_text(FORK_WHILE_OPENING, tmp_path, str(tmp_path / "new.db"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "child wrote" in done.stdout


def test_refusals_wait_for_their_run_through_closing_the_stores(store_dir: Path) -> None:
    from nbtrack.tracking import client as client_module

    run_id = cached_run()
    other_process(store_dir, CONFLICT, run_id)
    nbtrack.log_param("lr", 0.5)
    client_module._close_stores()  # writes the row: refused, and the store closes
    with pytest.raises(ParamConflictError, match="'lr'"):
        nbtrack.end_run()  # on the store opened again
    assert nbtrack.Client().get_run(run_id).data.params["lr"] == "0.1"


REFUSAL_ACROSS_FORK = """
import os, sqlite3, sys, nbtrack
from nbtrack.tracking import client as client_module
path = sys.argv[1]
client = nbtrack.Client(path)
run_id = client.create_run("0").info.run_id
client.log_param(run_id, "lr", "0.1")  # buffered
with sqlite3.connect(path + "/nbtrack.db") as other:  # another process stores lr first
    other.execute("INSERT INTO params VALUES (?, 'lr', '0.2')", (run_id,))
client_module._close_stores()  # the refusal waits for the store to be opened again
pid = os.fork()
if pid == 0:  # a worker with a run of its own: the parent's refusal is not its to raise
    child = nbtrack.Client(path)
    own = child.create_run("0").info.run_id
    try:
        child.set_terminated(own)
        child.flush()
        print("child: nothing raised", flush=True)
    except Exception as exc:
        print("child raised:", type(exc).__name__, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
try:
    client.set_terminated(run_id)
    print("parent: nothing raised")
except Exception as exc:
    print("parent raised:", type(exc).__name__)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_refusal_waiting_for_a_closed_store_stays_the_parents(tmp_path: Path) -> None:
    done = run_text(REFUSAL_ACROSS_FORK, tmp_path, str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "child: nothing raised",
        "parent raised: ParamConflictError",
    ]


def test_a_run_made_with_create_run_outlives_the_process_that_made_it(tmp_path: Path) -> None:
    """A launcher creates the run and exits; a worker logs to it and ends it (MLflow's way)."""
    store = tmp_path / "store"
    ids = tmp_path / "run_id.txt"
    other_process(store, "open(argv[0], 'w').write(client.create_run('0').info.run_id)", str(ids))
    run_id = ids.read_text()
    client = nbtrack.Client(store)
    assert [r.info.status for r in client.search_runs(["0"])] == ["RUNNING"]
    assert client.get_run(run_id).info.status == "RUNNING"
    other_process(
        store,
        "client.log_metric(argv[0], 'loss', 0.5); client.set_terminated(argv[0])",
        run_id,
    )
    run = nbtrack.Client(store).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert "nbtrack.killedReason" not in run.data.tags
    assert run.data.metrics == {"loss": 0.5}


def test_a_live_process_s_run_set_running_is_still_killed_when_it_dies(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = tmp_path / "run_id.txt"
    other_process(
        store,
        "import os\nnbtrack.set_tracking_uri(client.tracking_uri)\nrun = nbtrack.start_run()\n"
        "client.update_run(run.info.run_id, status='RUNNING')\nnbtrack.flush()\n"
        "open(argv[0], 'w').write(run.info.run_id)\nos._exit(0)",  # dies without ending it
        str(ids),
    )
    run = nbtrack.Client(store).get_run(ids.read_text())
    assert run.info.status == "KILLED"
    assert "nbtrack.killedReason" in run.data.tags


def test_a_run_set_running_again_by_another_process_stays_running(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = tmp_path / "run_id.txt"
    other_process(
        store,
        "import nbtrack\nnbtrack.set_tracking_uri(client.tracking_uri)\n"
        "with nbtrack.start_run() as run: pass\nopen(argv[0], 'w').write(run.info.run_id)",
        str(ids),
    )
    client = nbtrack.Client(store)
    run_id = ids.read_text()
    client.update_run(run_id, status="RUNNING")  # the process that ran it has exited
    run = client.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("RUNNING", None)
    assert [r.info.status for r in client.search_runs(["0"])] == ["RUNNING"]


WORKERS = """
import multiprocessing as mp, os, sys, nbtrack

def evaluate(args):
    run_id, fold = args
    nbtrack.MlflowClient().log_metric(run_id, "fold_acc", 0.9 + fold / 100, step=fold)
    nbtrack.MlflowClient().set_tag(run_id, f"fold{fold}", "done")

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with nbtrack.start_run() as run:
        jobs = [(run.info.run_id, k) for k in range(3)]
        if sys.argv[2] == "process":
            procs = [ctx.Process(target=evaluate, args=(job,)) for job in jobs]
            [p.start() for p in procs]
            [p.join() for p in procs]
        else:  # a pool left by its with block: terminate() kills the workers
            with ctx.Pool(2) as pool:
                pool.map(evaluate, jobs)
    print(run.info.run_id)
"""


@pytest.mark.parametrize("how", ["process", "pool"])
def test_what_forked_workers_log_is_there_when_they_are_gone(
    store_dir: Path, tmp_path: Path, how: str
) -> None:
    """A forked worker leaves through os._exit, and a pool's with block kills its workers:
    neither runs exit handlers, so workers write each log call at once."""
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(store_dir)}
    done = subprocess.run(
        [sys.executable, str(script), "fork", how], capture_output=True, text=True, env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = nbtrack.Client().get_run(done.stdout.split()[-1])
    assert run.data.tags.keys() >= {"fold0", "fold1", "fold2"}
    history = nbtrack.Client().get_metric_history(run.info.run_id, "fold_acc")
    assert sorted(m.step for m in history) == [0, 1, 2]


INHERIT = """
import os, subprocess, sys, nbtrack

CHILD = "import nbtrack\\nwith nbtrack.start_run(): nbtrack.log_metric('rmse', 0.5)"
# A child that picks a store of its own (without a warning): it wins over the inherited one.
OWN = "import sys, nbtrack\\nnbtrack.set_tracking_uri(sys.argv[1])\\n" + CHILD
nbtrack.set_tracking_uri(sys.argv[1])
nbtrack.set_experiment("ridge")
subprocess.run([sys.executable, "-c", CHILD], check=True, cwd=os.path.dirname(sys.argv[1]))
subprocess.run([sys.executable, "-W", "error", "-c", OWN, sys.argv[3]], check=True)
nbtrack.set_tracking_uri(sys.argv[2])  # another store: the child finds "ridge" by name there
subprocess.run([sys.executable, "-c", CHILD], check=True)
print(len(nbtrack.search_runs(experiment_names=["ridge"])))
"""


def test_processes_started_after_set_tracking_uri_and_set_experiment_use_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in MLflow: a joblib or multiprocessing worker, or any subprocess, inherits them."""
    monkeypatch.delenv("NBTRACK_TRACKING_URI", raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_NAME", raising=False)
    (tmp_path / "work").mkdir()
    first, second = tmp_path / "work" / "first", tmp_path / "second"
    own = tmp_path / "own"
    done = run_text(INHERIT, tmp_path, str(first), str(second), str(own))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]
    # A child that picks a store of its own: its run is there, in "ridge" (found by name).
    mine = nbtrack.Client(own)
    ridge = mine.get_experiment_by_name("ridge")
    assert ridge is not None and len(mine.search_runs([ridge.experiment_id])) == 1
    for store in (first, second):
        found = nbtrack.Client(store).search_runs(
            [nbtrack.Client(store).get_experiment_by_name("ridge").experiment_id]  # type: ignore[union-attr]
        )
        assert [r.data.metrics for r in found] == [{"rmse": 0.5}]
    assert not (tmp_path / "work" / ".nbtrack").exists()


RELATIVE = """
import os, subprocess, sys, nbtrack

os.chdir(os.path.dirname(os.path.abspath(__file__)))
nbtrack.set_tracking_uri("sub.db")  # relative: in a child, relative to the child's folder
nbtrack.set_experiment("inh")
with nbtrack.start_run():
    pass
os.mkdir("child")
CHILD = "import nbtrack\\nwith nbtrack.start_run(): nbtrack.log_metric('rmse', 0.5)"
subprocess.run([sys.executable, "-c", CHILD], check=True, cwd="child")
"""


def test_a_child_in_another_folder_finds_the_experiment_by_name_in_its_own_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative URI names another store in a child started elsewhere; the experiment id the
    parent exported means nothing there (it used to fail with "no experiment with id")."""
    monkeypatch.delenv("NBTRACK_TRACKING_URI", raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_NAME", raising=False)
    done = run_text(RELATIVE, tmp_path)
    assert done.returncode == 0, done.stderr
    child = nbtrack.Client(tmp_path / "child" / "sub.db")
    inh = child.get_experiment_by_name("inh")
    assert inh is not None
    assert [r.data.metrics for r in child.search_runs([inh.experiment_id])] == [{"rmse": 0.5}]


def test_an_experiment_id_set_from_outside_still_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's rule for a variable the user set: the id, not a name, and an error if the
    store has no such experiment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBTRACK_EXPERIMENT_NAME", "by-name")
    monkeypatch.setenv("NBTRACK_EXPERIMENT_ID", "42")
    with pytest.raises(nbtrack.exceptions.ExperimentNotFoundError, match="42"):
        nbtrack.start_run()


def test_a_tracking_uri_variable_set_outside_still_wins_and_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.tracking import uri

    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "outside"))
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="takes precedence"):
        nbtrack.set_tracking_uri(tmp_path / "inside")
    try:
        assert os.environ["NBTRACK_TRACKING_URI"] == str(tmp_path / "outside")
        assert nbtrack.get_tracking_uri().endswith("outside/nbtrack.db")
    finally:
        uri.reset_tracking_uri()
    assert os.environ["NBTRACK_TRACKING_URI"] == str(tmp_path / "outside")
    # The same store spelt another way (as a worker inherits it from its parent): no warning.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBTRACK_TRACKING_URI", nbtrack.Client(tmp_path / "outside").tracking_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbtrack.set_tracking_uri("outside")
    uri.reset_tracking_uri()


LOCKED = """
import multiprocessing as mp, sqlite3, sys, time, nbtrack

def worker(run_id, out):
    started = time.monotonic()
    try:
        nbtrack.MlflowClient().log_metric(run_id, "m", 1.0)
        out.put(("ok", time.monotonic() - started))
    except Exception as exc:
        out.put((repr(exc), time.monotonic() - started))

if __name__ == "__main__":
    with nbtrack.start_run() as run:
        pass
    other = sqlite3.connect(sys.argv[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the store
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=worker, args=(run.info.run_id, out))
    p.start()
    print(*out.get(timeout=60))
    p.join()
    other.execute("ROLLBACK")
"""


def test_a_worker_s_log_call_neither_raises_nor_waits_out_a_held_lock(
    store_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "locked.py"
    script.write_text(LOCKED)
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(store_dir)}
    done = subprocess.run(
        [sys.executable, str(script), str(store_dir / "nbtrack.db")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome, seconds = done.stdout.split()
    assert outcome == "ok"
    assert float(seconds) < 30  # the store's busy timeout is 60 s
