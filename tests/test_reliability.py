"""Reliability with real processes on a real SQLite file: contention, crashes, exits, schema.

Every scenario runs child interpreters (``python -c SCRIPT``) against one store and checks the
file afterwards. Children that must act at the same moment wait at a file barrier: each touches
``ready-<name>-<i>`` when it gets there; once all have, the test writes a start time a moment
ahead into the file ``<name>`` and every child spins until that time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.exceptions import SchemaVersionError
from nbtrack.store.schema import CURRENT_VERSION
from nbtrack.store.sqlite import SQLiteStore
from nbtrack.tracking import context

TIMEOUT_S = 60.0
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process starts are read from /proc (Linux)"
)

# Prepended to every child script: ``barrier(i)`` waits for the test's go signal.
PRELUDE = """
import json, os, sys, time
from pathlib import Path
import nbtrack

BARRIER = Path(os.environ["NBTRACK_TEST_BARRIER"])

def barrier(i, name="go"):
    (BARRIER / f"ready-{name}-{i}").touch()
    deadline = time.monotonic() + 60
    while not (BARRIER / name).exists():
        if time.monotonic() > deadline:
            sys.exit(f"child {i}: no {name!r} signal within 60 s")
        time.sleep(0.002)
    start = float((BARRIER / name).read_text())
    while time.time() < start:  # spin for the last moment: all start within microseconds
        pass
"""


@dataclass
class Done:
    """A finished child process."""

    returncode: int
    stdout: str
    stderr: str


def child_env(store: Path | None, barrier: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    if store is not None:
        env["NBTRACK_TRACKING_URI"] = str(store)
    env["NBTRACK_TEST_BARRIER"] = str(barrier)
    return env


def spawn(
    script: str, args: Sequence[str], store: Path | None, barrier: Path, stdin: int | None = None
) -> subprocess.Popen[str]:
    """Start ``python -c PRELUDE+script args...`` with the store in its environment."""
    barrier.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(store, barrier),
        cwd=barrier,
    )


def finish(procs: Sequence[subprocess.Popen[str]], timeout: float = TIMEOUT_S) -> list[Done]:
    """Wait for every child (killing all on a timeout) and collect its output."""
    deadline = time.monotonic() + timeout
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            done.append(Done(p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return done


def kill_all(procs: Sequence[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()


def release(
    barrier: Path, procs: Sequence[subprocess.Popen[str]], name: str, timeout: float = TIMEOUT_S
) -> bool:
    """Once every child waits at the barrier ``name``, let them all go at one moment.

    False (and nobody released) if a child exited before reaching it.
    """
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob(f"ready-{name}-*"))) < len(procs):
        if any(p.poll() is not None for p in procs):
            return False
        if time.monotonic() > deadline:
            pytest.fail(f"children did not reach the barrier {name!r} within {timeout} s")
        time.sleep(0.005)
    signal_file = barrier / f"{name}.tmp"
    signal_file.write_text(repr(time.time() + 0.1))  # the common start time
    signal_file.replace(barrier / name)
    return True


def run_together(
    script: str,
    store: Path | None,
    barrier: Path,
    children: Sequence[Sequence[str]],
    rounds: Sequence[str] = ("go",),
    timeout: float = TIMEOUT_S,
) -> list[Done]:
    """One child per argument list, released together at each barrier of ``rounds``."""
    procs = [spawn(script, args, store, barrier) for args in children]
    try:
        for name in rounds:
            if not release(barrier, procs, name):
                kill_all(procs)  # the others would wait at the barrier in vain
                break
    except BaseException:
        kill_all(procs)
        raise
    return finish(procs, timeout)


def assert_clean(results: Sequence[Done]) -> None:
    """Every child exited 0 with nothing alarming on stderr."""
    problems = [
        f"child {i} exited {d.returncode}:\n{d.stderr}"
        for i, d in enumerate(results)
        if d.returncode != 0 or d.stderr.strip()
    ]
    assert not problems, "\n".join(problems)
    for done in results:  # redundant with the above; spelled out for the reader
        assert "database is locked" not in done.stderr
        assert "Traceback" not in done.stderr


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited ({proc.returncode}) early: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)
    return path.read_text()


def wait_for_rows(
    db: Path, run_id: str, rows: int, proc: subprocess.Popen[str], timeout: float = TIMEOUT_S
) -> None:
    """Wait until ``run_id`` has ``rows`` metric rows (read with plain sqlite3, not nbtrack)."""
    deadline = time.monotonic() + timeout
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        while (
            conn.execute(
                "SELECT coalesce(sum(n), 0) FROM metric_blocks WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            < rows
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the child did not store {rows} rows: {proc.communicate()[1]}")
            time.sleep(0.02)
    finally:
        conn.close()


def fresh_client(store: Path) -> nbtrack.Client:
    """A Client of ``store``: the first one of this process is a "next open" of the file."""
    return nbtrack.Client(str(store))


def loss(worker: int, step: int) -> float:
    """The value worker ``worker`` logs at ``step`` (exactly representable, distinct)."""
    return worker * 10_000 + step / 4


# -- many writers at once ---------------------------------------------------------------------

STEPS = 5_000

LOGGER = f"""
i = int(sys.argv[1])
nbtrack.set_experiment("contention")
barrier(i)
with nbtrack.start_run(run_name=f"worker-{{i}}") as run:
    nbtrack.log_param("worker", i)
    nbtrack.set_tag("pid", os.getpid())
    for step in range({STEPS}):
        nbtrack.log_metric("loss", i * 10_000 + step / 4, step=step)
        if step % 250 == 249:  # many write transactions, interleaved with the other writers
            nbtrack.flush()
        if step % 1000 == 999:  # and reads, and time for the background writer
            assert nbtrack.get_run(run.info.run_id).data.metrics["loss"] == i * 10_000 + step / 4
            time.sleep(0.02)
print(run.info.run_id)
"""


def test_four_processes_log_5000_points_each_at_once(store_dir: Path, tmp_path: Path) -> None:
    client = fresh_client(store_dir)
    experiment_id = client.create_experiment("contention")

    results = run_together(LOGGER, store_dir, tmp_path / "barrier", [["0"], ["1"], ["2"], ["3"]])

    assert_clean(results)
    run_ids = [done.stdout.strip() for done in results]
    assert len(set(run_ids)) == 4
    for worker, run_id in enumerate(run_ids):
        run = client.get_run(run_id)
        assert run.info.run_name == f"worker-{worker}"
        assert run.info.experiment_id == experiment_id
        assert run.info.status == "FINISHED"
        assert run.info.end_time is not None
        assert run.data.params == {"worker": str(worker)}
        assert run.data.tags["pid"].isdigit()
        history = client.get_metric_history(run_id, "loss")
        assert [m.step for m in history] == list(range(STEPS))
        assert [m.value for m in history] == [loss(worker, s) for s in range(STEPS)]
        assert run.data.metrics == {"loss": loss(worker, STEPS - 1)}
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        assert conn.execute("SELECT sum(n) FROM metric_blocks").fetchone()[0] == 4 * STEPS
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


RUNS_EACH = 50

MANY_RUNS = f"""
i = int(sys.argv[1])
experiment_id = nbtrack.get_experiment_by_name("many").experiment_id
barrier(i)
for j in range({RUNS_EACH}):
    nbtrack.start_run(experiment_id=experiment_id, run_name=f"w{{i}}-r{{j}}")
    nbtrack.log_param("j", j)
    nbtrack.log_metric("m", i * 1000 + j)
    nbtrack.end_run()
"""


def test_four_processes_make_many_small_runs_at_once(store_dir: Path, tmp_path: Path) -> None:
    client = fresh_client(store_dir)
    experiment_id = client.create_experiment("many")

    results = run_together(MANY_RUNS, store_dir, tmp_path / "barrier", [["0"], ["1"], ["2"], ["3"]])

    assert_clean(results)
    runs = client.search_runs([experiment_id], max_results=1000)
    expected = {f"w{i}-r{j}" for i in range(4) for j in range(RUNS_EACH)}
    assert sorted(r.info.run_name for r in runs) == sorted(expected)
    for run in runs:
        i, j = (int(part[1:]) for part in run.info.run_name.split("-"))
        assert run.info.status == "FINISHED"
        assert run.info.end_time is not None
        assert run.data.params == {"j": str(j)}
        assert run.data.metrics == {"m": i * 1000 + j}


SAME_EXPERIMENT_ROUNDS = 8
SAME_EXPERIMENT = f"""
i = int(sys.argv[1])
for k in range({SAME_EXPERIMENT_ROUNDS}):
    barrier(i, f"go{{k}}")
    nbtrack.set_experiment(f"shared-{{k}}")
    with nbtrack.start_run():
        nbtrack.log_metric("m", 1.0)
"""


def test_processes_setting_the_same_new_experiment(store_dir: Path, tmp_path: Path) -> None:
    fresh_client(store_dir)  # the store exists; only the experiments are new
    rounds = [f"go{k}" for k in range(SAME_EXPERIMENT_ROUNDS)]
    children = [[str(i)] for i in range(4)]
    results = run_together(SAME_EXPERIMENT, store_dir, tmp_path / "barrier", children, rounds)
    assert_clean(results)


# -- a process killed mid-run -----------------------------------------------------------------

FLUSHED = 300

DOOMED = f"""
run = nbtrack.start_run(run_name="doomed")
for step in range({FLUSHED}):
    nbtrack.log_metric("x", step * 1.5, step=step)
nbtrack.flush()
marker = BARRIER / "ready.json"
tmp = marker.with_suffix(".tmp")
tmp.write_text(json.dumps({{"run_id": run.info.run_id, "pid": os.getpid()}}))
tmp.replace(marker)
step = {FLUSHED}
while True:
    nbtrack.log_metric("x", step * 1.5, step=step)
    step += 1
    if step % 100 == 0:
        time.sleep(0.001)
"""

STATUS = """
client = nbtrack.Client()
run = client.get_run(sys.argv[1])
steps = [m.step for m in client.get_metric_history(sys.argv[1], "x")]
print(json.dumps({"status": run.info.status, "start_time": run.info.start_time,
                  "end_time": run.info.end_time, "tags": run.data.tags, "steps": steps}))
"""


def status_from_subprocess(store: Path, barrier: Path, run_id: str) -> dict[str, Any]:
    """What a fresh process opening the store sees of the run."""
    [done] = finish([spawn(STATUS, [run_id], store, barrier)])
    assert_clean([done])
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def status_in_this_process(store: Path, run_id: str) -> dict[str, Any]:
    client = fresh_client(store)
    run = client.get_run(run_id)
    return {
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "tags": run.data.tags,
        "steps": [m.step for m in client.get_metric_history(run_id, "x")],
    }


def check_killed(seen: dict[str, Any], pid: int) -> None:
    assert seen["status"] == "KILLED"
    assert f"process {pid} " in seen["tags"][context.KILLED_REASON]
    assert seen["end_time"] is not None
    assert seen["start_time"] <= seen["end_time"] <= time.time() * 1000 + 1
    # Everything flushed before the marker is there; what followed is a gap-free prefix.
    steps = seen["steps"]
    assert steps[:FLUSHED] == list(range(FLUSHED))
    assert steps == list(range(len(steps)))


@POSIX_ONLY
@pytest.mark.parametrize("first_open", ["test process", "subprocess"])
def test_sigkill_mid_run(store_dir: Path, tmp_path: Path, first_open: str) -> None:
    barrier = tmp_path / "barrier"
    proc = spawn(DOOMED, [], store_dir, barrier)
    try:
        marker = json.loads(wait_for_file(barrier / "ready.json", proc))
        # Let it log on until the background writer has stored more, then kill it mid-stream.
        wait_for_rows(store_dir / "nbtrack.db", marker["run_id"], FLUSHED + 2_000, proc)
        assert proc.poll() is None, proc.communicate()[1]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT_S)  # reap it: a zombie's pid still answers kill(pid, 0)
    assert proc.returncode == -signal.SIGKILL
    run_id, pid = marker["run_id"], marker["pid"]

    # Whichever process opens the store first marks the run; both must then see the same.
    if first_open == "subprocess":
        first = status_from_subprocess(store_dir, barrier, run_id)
        second = status_in_this_process(store_dir, run_id)
    else:
        first = status_in_this_process(store_dir, run_id)
        second = status_from_subprocess(store_dir, barrier, run_id)
    check_killed(first, pid)
    assert second == first  # the verdict is in the file, not just in one process

    assert len(first["steps"]) >= FLUSHED + 2_000  # what the background writer stored
    client = fresh_client(store_dir)
    history = client.get_metric_history(run_id, "x")
    assert [m.value for m in history] == [s * 1.5 for s in first["steps"]]
    assert client.get_run(run_id).data.metrics == {"x": (len(history) - 1) * 1.5}
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@POSIX_ONLY
def test_a_store_already_open_sees_the_kill_on_get_run(store_dir: Path, tmp_path: Path) -> None:
    """A notebook that opened the store before the training process died (and does not search)
    is told the truth by get_run, not RUNNING for ever."""
    client = fresh_client(store_dir)
    barrier = tmp_path / "barrier"
    proc = spawn(DOOMED, [], store_dir, barrier)
    try:
        marker = json.loads(wait_for_file(barrier / "ready.json", proc))
        assert client.get_run(marker["run_id"]).info.status == "RUNNING"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT_S)  # reap it: a zombie's pid still answers kill(pid, 0)
    run = client.get_run(marker["run_id"])
    assert run.info.status == "KILLED"
    assert f"process {marker['pid']} " in run.data.tags[context.KILLED_REASON]


@contextlib.contextmanager
def a_dead_run_on_a_locked_store(store_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The marker of a run whose process was SIGKILLed, while another connection holds the
    store's write lock (released when the block ends)."""
    barrier = tmp_path / "barrier"
    proc = spawn(DOOMED, [], store_dir, barrier)
    try:
        marker = json.loads(wait_for_file(barrier / "ready.json", proc))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT_S)  # reap it: a zombie's pid still answers kill(pid, 0)
    locker = sqlite3.connect(store_dir / "nbtrack.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        yield marker
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@POSIX_ONLY
def test_get_run_of_a_dead_run_on_a_locked_store_still_reads(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marking a dead run is a write; on a store another writer keeps locked, get_run reads
    the run as it is (RUNNING) rather than failing or waiting out the busy timeout (a widget
    polls it), and marks it on a later read."""
    from nbtrack.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 20.0)  # for the connection opened below
    client = fresh_client(store_dir)
    with a_dead_run_on_a_locked_store(store_dir, tmp_path) as marker:
        started = time.monotonic()
        assert client.get_run(marker["run_id"]).info.status == "RUNNING"
        assert time.monotonic() - started < 10.0  # not the 20 s busy timeout
    assert client.get_run(marker["run_id"]).info.status == "KILLED"
    timeout_ms = client.store.query("PRAGMA busy_timeout")[0][0]
    assert timeout_ms == 20_000  # writes wait again as long as they should


# -- how a script ends ------------------------------------------------------------------------

NORMAL_EXIT = """
run = nbtrack.start_run(run_name="left-open")
nbtrack.log_metric("m", 2.5, step=3)
nbtrack.log_param("p", "v")
print(run.info.run_id)
"""

UNCAUGHT = """
outer = nbtrack.start_run(run_name="outer")
inner = nbtrack.start_run(run_name="inner", nested=True)
print(outer.info.run_id, inner.info.run_id, flush=True)
nbtrack.log_metric("m", 1.0)
def train():
    raise ValueError("boom 42")
train()
"""

INTERRUPTED = """
with nbtrack.start_run(run_name="interrupted") as run:
    print(run.info.run_id, flush=True)
    nbtrack.log_metric("m", 1.0)
    raise KeyboardInterrupt
"""

EXIT_CODE = """
run = nbtrack.start_run(run_name="sys-exit")
print(run.info.run_id, flush=True)
sys.exit(0)
"""


def run_script(script: str, store: Path, barrier: Path) -> Done:
    [done] = finish([spawn(script, [], store, barrier)])
    return done


def test_script_ending_with_a_run_open_finishes_it(store_dir: Path, tmp_path: Path) -> None:
    done = run_script(NORMAL_EXIT, store_dir, tmp_path / "barrier")
    assert_clean([done])
    run = fresh_client(store_dir).get_run(done.stdout.strip())
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None
    assert run.data.metrics == {"m": 2.5}  # buffered rows were written at exit
    assert run.data.params == {"p": "v"}
    assert context.ERROR not in run.data.tags
    assert context.KILLED_REASON not in run.data.tags


ABANDONED = """
run = nbtrack.start_run(run_name="abandoned")
nbtrack.flush()
print(run.info.run_id, flush=True)
os._exit(0)  # no exit hooks: the run is left RUNNING
"""


@POSIX_ONLY
def test_resuming_a_killed_run_makes_it_this_process_s(store_dir: Path, tmp_path: Path) -> None:
    """A run resumed with start_run(run_id=...) belongs to the resuming process: it is not
    taken for the dead one's again, and the old kill note goes."""
    done = run_script(ABANDONED, store_dir, tmp_path / "barrier")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    killed = fresh_client(store_dir).search_runs(["0"], "attributes.run_name = 'abandoned'")
    assert killed[0].info.status == "KILLED"
    assert context.KILLED_REASON in killed[0].data.tags
    nbtrack.set_tracking_uri(str(store_dir))
    with nbtrack.start_run(run_id=run_id):
        nbtrack.log_metric("after", 1.0)
        # another open of the store meanwhile must not take the run for a dead one
        store = SQLiteStore(store_dir / "nbtrack.db", store_dir / "artifacts")
        try:
            assert store.mark_dead_runs() == []
        finally:
            store.close()
        run = nbtrack.get_run(run_id)
        assert run.info.status == "RUNNING"
        assert context.KILLED_REASON not in run.data.tags
    assert nbtrack.get_run(run_id).info.status == "FINISHED"


# -- a pid another process took -----------------------------------------------------------------

LIVING = """
run = nbtrack.start_run(run_name="living")
nbtrack.flush()
print(run.info.run_id, flush=True)
sys.stdin.read()  # lives until the test closes its stdin
os._exit(0)
"""


def earlier(start: str) -> str:
    """The start of a process that had the same pid before the one that started at ``start``."""
    boot, ticks = start.rsplit(":", 1)
    return f"{boot}:{int(ticks) - 1}"


def set_start(store: Path, run_id: str, start: str) -> None:
    """Write the start of a run's process into its row, as that process would have."""
    with sqlite3.connect(store / "nbtrack.db") as conn:
        conn.execute("UPDATE runs SET process_start = ? WHERE run_id = ?", (start, run_id))
    conn.close()


def check_taken_pid(run: nbtrack.Run, pid: int) -> None:
    assert run.info.status == "KILLED"
    reason = run.data.tags[context.KILLED_REASON]
    assert reason.startswith(f"process {pid} on {context.host()} had exited")
    assert f"(pid {pid} is another process's now)" in reason


@LINUX_PROC
def test_a_run_whose_pid_another_process_took_is_killed(store_dir: Path, tmp_path: Path) -> None:
    """A run of a live process is left alone while that process is the one that started it;
    once its pid is another process's (the row's start is of an earlier one), it is KILLED,
    with a note that says so."""
    proc = spawn(LIVING, [], store_dir, tmp_path / "barrier", stdin=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.communicate()[1]
        client = fresh_client(store_dir)
        row = client.store.get_run_row(run_id)
        assert row is not None and row["pid"] == proc.pid and row["process_start"]
        assert [r.info.status for r in client.search_runs(["0"])] == ["RUNNING"]
        assert client.get_run(run_id).info.status == "RUNNING"
        assert client.store.mark_dead_runs() == []

        set_start(store_dir, run_id, earlier(row["process_start"]))
        check_taken_pid(client.get_run(run_id), proc.pid)
        assert proc.poll() is None  # the process with that pid lives on
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(TIMEOUT_S)


@LINUX_PROC
def test_runs_of_this_pid_started_by_an_earlier_process_are_killed(store_dir: Path) -> None:
    """A job restarted in a container is pid 1 again under the same hostname: the runs its
    earlier self left RUNNING are not taken for its own, by a search or a get_run."""
    from nbtrack.store.process import own_start

    client = fresh_client(store_dir)
    mine, read, searched = (
        client.create_run("0", _ended_by_this_process=True).info.run_id for _ in range(3)
    )
    start = own_start()
    assert start is not None
    row = client.store.get_run_row(mine)
    assert row is not None and (row["pid"], row["process_start"]) == (os.getpid(), start)
    set_start(store_dir, read, earlier(start))
    check_taken_pid(client.get_run(read), os.getpid())
    set_start(store_dir, searched, earlier(start))
    found = client.search_runs(["0"], f"attributes.run_id != '{read}'")
    assert {r.info.run_id: r.info.status for r in found} == {mine: "RUNNING", searched: "KILLED"}
    check_taken_pid(client.get_run(searched), os.getpid())
    assert client.get_run(mine).info.status == "RUNNING"
    assert client.store.mark_dead_runs() == []


@LINUX_PROC
def test_a_run_resumed_by_an_older_nbtrack_still_running_is_not_killed(store_dir: Path) -> None:
    """A process that opened the store before schema 10 resumes a run as it did then: the
    run's host and pid, no start. The start of the process that had the run goes with its
    pid, so the live older process's run is not taken for a dead one; once it is gone, it is."""
    client = fresh_client(store_dir)
    run_id = client.create_run("0", _ended_by_this_process=True).info.run_id
    client.set_terminated(run_id)
    older = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with sqlite3.connect(store_dir / "nbtrack.db") as conn:  # its reopen_run
            conn.execute(
                "UPDATE runs SET status = 'RUNNING', end_time = NULL, host = ?, pid = ?"
                " WHERE run_id = ?",
                (context.host(), older.pid, run_id),
            )
        conn.close()
        row = client.store.get_run_row(run_id)
        assert row is not None and row["process_start"] is None
        assert client.store.mark_dead_runs() == []
        assert client.get_run(run_id).info.status == "RUNNING"
    finally:
        assert older.stdin is not None
        older.stdin.close()
        older.wait(TIMEOUT_S)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert f"process {older.pid} " in run.data.tags[context.KILLED_REASON]


def test_sys_exit_finishes_the_run(store_dir: Path, tmp_path: Path) -> None:
    done = run_script(EXIT_CODE, store_dir, tmp_path / "barrier")
    assert_clean([done])
    assert fresh_client(store_dir).get_run(done.stdout.strip()).info.status == "FINISHED"


def test_uncaught_exception_fails_the_run(store_dir: Path, tmp_path: Path) -> None:
    done = run_script(UNCAUGHT, store_dir, tmp_path / "barrier")
    assert done.returncode == 1
    assert "ValueError: boom 42" in done.stderr  # Python's own report still appears
    assert "nbtrack:" not in done.stderr
    outer_id, inner_id = done.stdout.split()
    client = fresh_client(store_dir)
    outer, inner = client.get_run(outer_id), client.get_run(inner_id)
    assert outer.info.status == "FAILED"
    assert inner.info.status == "FAILED"
    assert outer.info.end_time is not None and inner.info.end_time is not None
    error = outer.data.tags[context.ERROR]
    assert error.startswith("Traceback (most recent call last)")
    assert "in train" in error
    assert error.rstrip().endswith("ValueError: boom 42")
    assert outer.data.metrics == {}
    assert inner.data.metrics == {"m": 1.0}
    assert context.KILLED_REASON not in outer.data.tags


def test_keyboard_interrupt_kills_the_run(store_dir: Path, tmp_path: Path) -> None:
    done = run_script(INTERRUPTED, store_dir, tmp_path / "barrier")
    assert done.returncode != 0
    assert "KeyboardInterrupt" in done.stderr
    run = fresh_client(store_dir).get_run(done.stdout.strip())
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None
    assert run.data.metrics == {"m": 1.0}
    assert context.ERROR not in run.data.tags
    # ended by the run itself, not found dead by a later open of the store
    assert run.data.tags[context.KILLED_REASON] == "interrupted (KeyboardInterrupt)"


# -- opening stores ---------------------------------------------------------------------------

ROUNDS = 6

OPENER = f"""
i = int(sys.argv[1])
root = Path(sys.argv[2])
for k in range({ROUNDS}):
    barrier(i, f"go{{k}}")
    client = nbtrack.Client(str(root / f"store{{k}}"))
    client.create_experiment(f"proc-{{i}}")
    run = client.create_run("0", run_name=f"proc-{{i}}")
    client.log_metric(run.info.run_id, "m", float(i))
    client.set_terminated(run.info.run_id)
"""


def test_two_processes_create_the_same_store_at_once(tmp_path: Path) -> None:
    barrier, root = tmp_path / "barrier", tmp_path / "stores"
    root.mkdir()
    rounds = [f"go{k}" for k in range(ROUNDS)]
    results = run_together(OPENER, None, barrier, [["0", str(root)], ["1", str(root)]], rounds)
    assert_clean(results)
    assert sorted(p.name for p in root.iterdir()) == [f"store{k}" for k in range(ROUNDS)]
    for k in range(ROUNDS):
        conn = sqlite3.connect(root / f"store{k}" / "nbtrack.db")
        try:
            assert conn.execute("SELECT version FROM schema_version").fetchall() == [
                (CURRENT_VERSION,)
            ]
            names = sorted(r[0] for r in conn.execute("SELECT name FROM experiments"))
            assert names == ["Default", "proc-0", "proc-1"]
            statuses = conn.execute("SELECT run_name, status FROM runs ORDER BY run_name")
            assert statuses.fetchall() == [("proc-0", "FINISHED"), ("proc-1", "FINISHED")]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()


def write_newer_store(directory: Path) -> Path:
    """A store made by this nbtrack, then stamped with a schema version from the future."""
    db = directory / "nbtrack.db"
    store = SQLiteStore(db, directory / "artifacts")
    store.ensure_default_experiment()
    store.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (CURRENT_VERSION + 1,))
    conn.close()
    return db


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def versions(db: Path) -> list[tuple[int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT version FROM schema_version").fetchall()
    finally:
        conn.close()


def test_newer_store_is_refused_and_left_alone(store_dir: Path) -> None:
    db = write_newer_store(store_dir)
    before = digest(db)
    for _ in range(2):  # the failed open is not cached as a half-open store
        with pytest.raises(SchemaVersionError) as info:
            nbtrack.Client(str(store_dir))
        message = str(info.value).lower()
        assert "newer" in message
        assert "upgrade" in message
        assert f"schema version {CURRENT_VERSION + 1}" in message
    with pytest.raises(SchemaVersionError):
        nbtrack.start_run()
    assert nbtrack.active_run() is None
    assert digest(db) == before
    assert versions(db) == [(CURRENT_VERSION + 1,)]


def test_newer_store_in_rollback_journal_mode_is_left_alone(tmp_path: Path) -> None:
    db = write_newer_store(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = delete")
    conn.close()
    before = digest(db)
    with pytest.raises(SchemaVersionError):
        nbtrack.Client(str(tmp_path))
    assert versions(db) == [(CURRENT_VERSION + 1,)]
    assert digest(db) == before


def test_a_store_locked_past_the_busy_timeout_is_a_store_error_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.exceptions import StoreError
    from nbtrack.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.2)  # for the connection opened below
    client = nbtrack.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id
    locker = sqlite3.connect(tmp_path / "store" / "nbtrack.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        client.log_metric(run_id, "m", 1.5, step=7)
        with pytest.raises(StoreError, match="stayed locked by another writer"):
            client.flush()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    client.flush()  # the rows were kept for this retry
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == [(7, 1.5)]




def test_the_writer_thread_does_not_hold_the_store_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a store another process keeps locked (a long ``nbtrack gc``, say), a background
    flush gives up after BACKGROUND_WAIT_S and tries again next tick, rather than holding this
    process's store (which a fork, or any read, would wait for) for the whole busy timeout."""
    from nbtrack.store import sqlite as sqlite_store
    from nbtrack.tracking import buffer

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 30.0)  # for the connection opened below
    client = nbtrack.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id
    store = client.store
    locker = sqlite3.connect(tmp_path / "store" / "nbtrack.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        client.log_metric(run_id, "m", 1.5, step=7)
        buffer._writer.wake()
        time.sleep(buffer.INTERVAL_S)  # the writer thread is in its flush, waiting
        free = store._lock.acquire(timeout=buffer.BACKGROUND_WAIT_S + 3 * buffer.INTERVAL_S)
        assert free, "the writer thread kept the store for the busy timeout"
        store._lock.release()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    deadline = time.monotonic() + 20 * buffer.INTERVAL_S
    while store.query("SELECT count(*) FROM latest_metrics")[0][0] == 0:  # no flush of ours
        assert time.monotonic() < deadline, "the rows were not written once the lock was free"
        time.sleep(buffer.INTERVAL_S / 5)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == [(7, 1.5)]


@POSIX_ONLY
def test_opening_and_searching_a_locked_store_do_not_wait_to_mark_dead_runs(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an up-to-date store writes nothing, and a search marks dead runs only if the
    lock is free: while another process holds a long write, a notebook can still open the
    store and search it (the dead run reads RUNNING until a later read marks it)."""
    from nbtrack.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 20.0)
    with a_dead_run_on_a_locked_store(store_dir, tmp_path) as marker:
        started = time.monotonic()
        client = fresh_client(store_dir)  # this process's first open of the store
        found = client.search_runs(["0"], f"attributes.run_id = '{marker['run_id']}'")
        assert [r.info.status for r in found] == ["RUNNING"]
        assert time.monotonic() - started < 10.0  # not the 20 s busy timeout
    found = client.search_runs(["0"], f"attributes.run_id = '{marker['run_id']}'")
    assert [r.info.status for r in found] == ["KILLED"]
