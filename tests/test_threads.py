"""Each thread has its own active run, as in MLflow: runs in a thread pool keep to themselves."""

from __future__ import annotations

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
