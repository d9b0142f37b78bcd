"""Each thread has its own active run, as in MLflow: runs in a thread pool keep to themselves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbtrack
from nbtrack import Client


def test_runs_started_in_parallel_threads_neither_end_nor_log_into_each_other(
    store_dir: Path,
) -> None:
    started = threading.Barrier(4)

    def work(i: int) -> str:
        with nbtrack.start_run(run_name=f"t{i}") as run:
            started.wait(timeout=30)  # every thread has a run active at once
            nbtrack.log_param("i", i)
            for step in range(3):
                nbtrack.log_metric("m", float(i), step=step)
                time.sleep(0.01)
        return run.info.run_id

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(work, range(4)))

    client = Client()
    for i, run_id in enumerate(ids):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.run_name == f"t{i}"
        assert run.data.params == {"i": str(i)}
        history = client.get_metric_history(run_id, "m")
        assert [(p.step, p.value) for p in history] == [(s, float(i)) for s in range(3)]


def test_a_thread_does_not_see_or_end_the_main_thread_s_run(store_dir: Path) -> None:
    seen = []
    with nbtrack.start_run(run_name="main") as main:

        def other() -> None:
            seen.append(nbtrack.active_run())
            with nbtrack.start_run(run_name="worker") as worker:
                seen.append(worker.info.run_id)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        active = nbtrack.active_run()
        assert active is not None and active.info.run_id == main.info.run_id
        nbtrack.log_metric("after", 1.0)
    assert seen[0] is None
    worker = nbtrack.get_run(seen[1])
    assert worker.info.status == "FINISHED"
    assert "nbtrack.parentRunId" not in worker.data.tags  # a run of its own, not a child
    assert nbtrack.get_run(main.info.run_id).data.metrics == {"after": 1.0}


def test_the_process_s_exit_ends_the_runs_threads_left_active(tmp_path: Path) -> None:
    """A finished thread's forgotten run ends FINISHED; a daemon thread still at work when the
    process exits has its run KILLED."""
    store = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import threading, time, nbtrack
        nbtrack.set_tracking_uri({str(store)!r})
        done = threading.Event()

        def forgetful():
            nbtrack.start_run(run_name="forgotten")
            nbtrack.log_metric("x", 1.0)

        def busy():
            nbtrack.start_run(run_name="busy")
            done.set()
            time.sleep(60)

        t = threading.Thread(target=forgetful)
        t.start(); t.join()
        threading.Thread(target=busy, daemon=True).start()
        done.wait(30)
        nbtrack.start_run(run_name="main")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    runs = Client(store).search_runs(["0"])
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {"forgotten": "FINISHED", "busy": "KILLED", "main": "FINISHED"}
    forgotten = next(r for r in runs if r.info.run_name == "forgotten")
    assert forgotten.data.metrics == {"x": 1.0}


def test_last_active_run_is_the_run_this_thread_ended(store_dir: Path) -> None:
    with nbtrack.start_run(run_name="main-run"):
        pass

    def other() -> None:
        with nbtrack.start_run(run_name="worker-run"):
            pass

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    last = nbtrack.last_active_run()
    assert last is not None and last.info.run_name == "main-run"


def test_a_child_forked_while_another_thread_holds_the_registry_lock_does_not_hang(
    store_dir: Path,
) -> None:
    from nbtrack.tracking import fluent

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with fluent._stack._registry_lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    result: list[int] = []

    def fork_from_a_new_thread() -> None:  # a thread that never used the API
        pid = os.fork()
        if pid == 0:
            with nbtrack.start_run():
                pass
            os._exit(0)
        result.append(pid)

    forker = threading.Thread(target=fork_from_a_new_thread)
    forker.start()
    forker.join()
    release.set()
    holder.join()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(result[0], os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.05)
    else:
        os.kill(result[0], 9)
        raise AssertionError("the forked child hung")
