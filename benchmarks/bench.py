"""nbtrack vs MLflow (SQLite backend) vs raw sqlite3, side by side in one run.

Usage::

    python benchmarks/bench.py                 # full sizes (a few minutes)
    python benchmarks/bench.py --quick         # small sizes, a smoke run of seconds
    python benchmarks/bench.py --only search_runs --only import --json out.json

Every nbtrack and MLflow part gets its own fresh temporary store. Each figure prints one line
with both sides, their ratio, the target and PASS/FAIL ("info" lines have no target). The exit
status is 0 whether or not targets are met (this is a report); it is 1 only when a figure could
not be measured at all (an exception or a failed consistency check).

See benchmarks/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Set before MLflow is imported (here or in a subprocess): no telemetry, no network, no async
# logging, no system metrics, no INFO chatter, no GitPython warnings.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}
# Variables that would point either tracker somewhere other than our temporary stores.
REDIRECT_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "NBTRACK_TRACKING_URI",
    "NBTRACK_EXPERIMENT_NAME",
    "NBTRACK_EXPERIMENT_ID",
)

FIGURES = (
    "log_metric",
    "log_batch",
    "search_runs",
    "get_metric_history",
    "start_run",
    "start_run_raw",
    "track_cell",
    "curves",
    "compare",
    "import",
    "autolog",
)

SEARCH_FILTER = "metrics.m0 > 0.5 AND params.p1 = 'b'"
SEARCH_ORDER = ["metrics.m1 DESC"]


@dataclass(frozen=True)
class Sizes:
    metric_keys: int  # figure 1: keys x steps points
    metric_steps: int
    metric_repeats: int
    mlflow_log_metric_points: int
    batch_points: int  # log_batch info figure
    batch_size: int
    batch_repeats: int
    search_runs: int
    search_repeats_nbtrack: int
    search_repeats_mlflow: int
    history_steps: int
    history_repeats: int
    start_run_repeats: int  # MLflow's, and the %%track cells'
    start_run_repeats_nbtrack: int  # several of its WAL checkpoints (one per ~430 runs)
    raw_run_repeats: int
    import_repeats: int
    import_warmup: bool
    blocks: int  # alternating blocks of nbtrack and MLflow calls (see paired)


FULL = Sizes(
    metric_keys=10,
    metric_steps=10_000,
    metric_repeats=3,
    mlflow_log_metric_points=1_000,
    batch_points=10_000,
    batch_size=1_000,
    batch_repeats=3,
    search_runs=2_000,
    search_repeats_nbtrack=30,
    search_repeats_mlflow=12,
    history_steps=10_000,
    history_repeats=6,
    start_run_repeats=150,
    start_run_repeats_nbtrack=1_500,
    raw_run_repeats=500,
    import_repeats=5,
    import_warmup=True,
    blocks=3,
)
QUICK = Sizes(
    metric_keys=10,
    metric_steps=1_000,
    metric_repeats=2,
    mlflow_log_metric_points=50,
    batch_points=1_000,
    batch_size=500,
    batch_repeats=2,
    search_runs=100,
    search_repeats_nbtrack=3,
    search_repeats_mlflow=2,
    history_steps=1_000,
    history_repeats=2,
    start_run_repeats=5,
    start_run_repeats_nbtrack=5,
    raw_run_repeats=50,
    import_repeats=1,
    import_warmup=False,
    blocks=1,
)


@dataclass
class Figure:
    name: str
    label: str
    nbtrack: float | None  # the nbtrack side, in `unit`
    other: float | None  # the baseline side, in `unit`
    other_name: str
    unit: str  # "pts/s" (higher is better) or "s" (lower is better)
    ratio: float | None
    ratio_text: str  # how the ratio is computed
    target: float | None  # None: an info line
    passed: bool | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


# -- helpers ----------------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "pts/s":
        return f"{value:,.0f} pts/s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} us"


def fmt_ratio(ratio: float | None, unit: str) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}" if unit == "pts/s" and ratio < 10 else f"{ratio:,.1f}x"


def fmt_target(target: float, unit: str) -> str:
    return f"{target:g}" if unit == "pts/s" and target < 10 else f"{target:g}x"


def print_figure(fig: Figure) -> None:
    if fig.error:
        print(f"{fig.label:<26} ERROR: {fig.error}", flush=True)
        return
    line = (
        f"{fig.label:<26} nbtrack {fmt_value(fig.nbtrack, fig.unit):>15}   "
        f"{fig.other_name} {fmt_value(fig.other, fig.unit):>15}   "
        f"ratio {fmt_ratio(fig.ratio, fig.unit):>7}"
    )
    if fig.target is None:
        line += "  (info)"
    else:
        verdict = "PASS" if fig.passed else "FAIL"
        line += f"  (target >= {fmt_target(fig.target, fig.unit)})  {verdict}"
    print(line, flush=True)


def timed(fn: Callable[[], Any], collect: bool = True) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result; ``collect``: gc.collect() first, untimed.

    Used as is (garbage collector on) for the long loops (log_metric, log_batch): their
    allocations and the collections they cause are part of what a user pays.
    """
    if collect:
        gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def series(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Seconds of each of ``repeats`` calls of ``fn``, and the last result.

    Like :mod:`timeit`, with the garbage collector off (one gc.collect() before): once MLflow,
    pandas and nbtrack share the process, a full collection walks ~300 k objects (~0.2 s), and
    whether a quick call happens to trigger one says more about the heap than about the call
    (it made MLflow's get_metric_history swing between 0.1 and 0.35 s). Off for both sides.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        times, result = [], None
        for _ in range(repeats):
            seconds, result = timed(fn, collect=False)
            times.append(seconds)
    finally:
        if was_enabled:
            gc.enable()
    return times, result


#: Untimed calls open each block of :func:`paired` for at least this long.
BLOCK_WARMUP_S = 0.05


def paired(
    fn_a: Callable[[], Any],
    repeats_a: int,
    fn_b: Callable[[], Any],
    repeats_b: int,
    blocks: int,
) -> tuple[tuple[list[float], Any], tuple[list[float], Any]]:
    """:func:`series` of two functions in alternating blocks (a a a, b b b, a a a, ...), so that
    a slow spell of the shared machine lands on both sides rather than on one.

    Each block starts with untimed calls for at least :data:`BLOCK_WARMUP_S` (one call at
    least): the first calls after the other library has run (or after a pause) find cold CPU
    caches and interpreter caches the other library's calls displaced. On this machine the
    first call of a 3.5 ms search cost 4.5 ms and the next three 3.7-3.9 ms; one untimed call
    left those three in the median, which taxed the quicker side far more than the slower one
    (one 77 ms MLflow call warms itself). Both sides are then timed in their steady state.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    try:
        for block in range(blocks):
            for side, (fn, repeats) in enumerate(((fn_a, repeats_a), (fn_b, repeats_b))):
                count = repeats // blocks + (1 if block < repeats % blocks else 0)
                if count == 0:
                    continue
                warm_until = time.perf_counter() + BLOCK_WARMUP_S
                fn()  # untimed: warms the caches for this side
                while time.perf_counter() < warm_until:
                    fn()
                for _ in range(count):
                    seconds, results[side] = timed(fn, collect=False)
                    times[side].append(seconds)
    finally:
        if was_enabled:
            gc.enable()
    return (times[0], results[0]), (times[1], results[1])


class Dirs:
    """Fresh temporary directories, all under one root removed at the end."""

    def __init__(self, keep: bool):
        self.root = Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
        self.keep = keep
        self._n = 0

    def new(self, name: str) -> Path:
        self._n += 1
        path = self.root / f"{self._n:03d}-{name}"
        path.mkdir()
        return path

    def cleanup(self) -> None:
        if self.keep:
            print(f"stores kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# -- nbtrack side ------------------------------------------------------------------------------


@contextmanager
def nbtrack_store(dirs: Dirs, name: str) -> Iterator[tuple[Path, str]]:
    """A fresh nbtrack store made current, with an experiment set; no run left active after."""
    import nbtrack

    nbtrack.end_run()
    path = dirs.new(f"nbtrack-{name}")
    nbtrack.set_tracking_uri(str(path))
    experiment = nbtrack.set_experiment(f"bench-{name}")
    try:
        yield path, experiment.experiment_id
    finally:
        nbtrack.end_run()
        nbtrack.flush()


def nbtrack_metric_rows(path: Path, run_id: str) -> int:
    """Metric points nbtrack stored for a run (its history is kept in packed blocks)."""
    import nbtrack

    return nbtrack.Client(str(path)).store.metric_point_count(run_id)


# -- MLflow side -------------------------------------------------------------------------------


class MLflowSide:
    """MLflow imported once; fresh stores are copies of one freshly migrated template."""

    def __init__(self, dirs: Dirs):
        self.dirs = dirs
        t0 = time.perf_counter()
        import mlflow
        from mlflow import MlflowClient

        self.mlflow = mlflow
        self.MlflowClient = MlflowClient
        self.import_s = time.perf_counter() - t0
        template = dirs.new("mlflow-template")
        uri = f"sqlite:///{template / 'mlflow.db'}"
        t0 = time.perf_counter()
        # Creating the store runs MLflow's migrations (2-4 s): done once, outside any timing.
        MlflowClient(uri).search_experiments()
        self.migrate_s = time.perf_counter() - t0
        self.template = template

    @contextmanager
    def store(self, name: str) -> Iterator[tuple[Path, Any, str]]:
        """A fresh MLflow store (copy of the migrated template), made current, with an
        experiment whose artifacts stay in the temporary directory."""
        mlflow = self.mlflow
        mlflow.end_run()
        path = self.dirs.new(f"mlflow-{name}")
        for suffix in ("", "-wal"):
            src = self.template / f"mlflow.db{suffix}"
            if src.exists():
                shutil.copy(src, path / src.name)
        uri = f"sqlite:///{path / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        client = self.MlflowClient(uri)
        # The throwaway experiment opens the store before anything is timed.
        client.create_experiment("throwaway", artifact_location=(path / "throwaway").as_uri())
        experiment_id = client.create_experiment(
            f"bench-{name}", artifact_location=(path / "artifacts").as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment_id)
        try:
            yield path, client, experiment_id
        finally:
            mlflow.end_run()


# -- figure 1: log_metric ----------------------------------------------------------------------


#: The baseline: a table with a row per point, as a tracker without batching would keep, indexed
#: for reading one metric's history back in step order.
RAW_METRICS_DDL = [
    "CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,"
    " timestamp INTEGER NOT NULL, value REAL)",
    "CREATE INDEX metrics_by_run_key_step ON metrics (run_id, key, step)",
]


def raw_log_metric(
    dirs: Dirs, ddl: list[str], rows: list[tuple[str, str, int, int, float]]
) -> float:
    """Seconds for one executemany of ``rows`` into a fresh WAL database (commit included)."""
    path = dirs.new("raw-metrics") / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in ddl:
        conn.execute(statement)

    def work() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")

    seconds, _ = timed(work)
    count = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
    conn.close()
    assert count == len(rows), (count, len(rows))
    return seconds


def nbtrack_log_metric(dirs: Dirs, keys: list[str], values: list[list[float]]) -> float:
    import nbtrack

    with nbtrack_store(dirs, "log-metric") as (path, _):
        run_id = nbtrack.start_run(run_name="log-metric").info.run_id
        log_metric = nbtrack.log_metric

        def work() -> None:
            for step, row in enumerate(values):
                for key, value in zip(keys, row, strict=True):
                    log_metric(key, value, step=step)
            nbtrack.flush()

        seconds, _ = timed(work)
        nbtrack.end_run()
        count = nbtrack_metric_rows(path, run_id)
    assert count == len(keys) * len(values), (count, len(keys) * len(values))
    return seconds


def fig_log_metric(ctx: Context) -> list[Figure]:
    s = ctx.sizes
    rng = random.Random(1)
    keys = [f"metric_{k}" for k in range(s.metric_keys)]
    values = [[rng.random() for _ in keys] for _ in range(s.metric_steps)]
    n = s.metric_keys * s.metric_steps
    run_id = "0123456789abcdef0123456789abcdef"
    ts = time.time_ns() // 1_000_000
    raw_rows = [
        (run_id, key, step, ts, value)
        for step, row in enumerate(values)
        for key, value in zip(keys, row, strict=True)
    ]
    ddl = RAW_METRICS_DDL
    nb_times, raw_times = [], []
    for _ in range(s.metric_repeats):  # interleaved, so drift on a noisy machine hits both
        nb_times.append(nbtrack_log_metric(ctx.dirs, keys, values))
        raw_times.append(raw_log_metric(ctx.dirs, ddl, raw_rows))
    nb_rate = n / statistics.median(nb_times)
    raw_rate = n / statistics.median(raw_times)
    ctx.nbtrack_log_metric_rate = nb_rate
    label = f"log_metric {n // 1000}k"
    figures = [
        Figure(
            "log_metric", label, nb_rate, raw_rate, "raw sqlite3", "pts/s",
            nb_rate / raw_rate, "nbtrack / raw sqlite3 throughput", 0.35,
            details={"points": n, "nbtrack_s": nb_times, "raw_s": raw_times,
                     "raw_schema": ddl},
        )
    ]

    # MLflow's fluent log_metric, on far fewer points (it manages ~100-150 per second).
    ml = ctx.mlflow()
    m = s.mlflow_log_metric_points
    ml_keys = keys[: min(10, m)]
    ml_steps = m // len(ml_keys)
    ml_n = ml_steps * len(ml_keys)
    with ml.store("log-metric") as (_, client, _exp):
        run_id = ml.mlflow.start_run(run_name="log-metric").info.run_id
        log_metric = ml.mlflow.log_metric

        def ml_work() -> None:
            for step in range(ml_steps):
                for key, value in zip(ml_keys, values[step], strict=False):
                    log_metric(key, value, step=step)

        ml_seconds, _ = timed(ml_work)
        ml.mlflow.end_run()
        got = len(client.get_metric_history(run_id, ml_keys[0]))
    assert got == ml_steps, (got, ml_steps)
    ml_rate = ml_n / ml_seconds
    figures.append(
        Figure(
            "log_metric", f"log_metric mlflow {ml_n:,}", nb_rate, ml_rate, "mlflow", "pts/s",
            nb_rate / ml_rate, "nbtrack (100k run) / mlflow throughput", None,
            details={"mlflow_points": ml_n, "mlflow_s": ml_seconds},
        )
    )
    return figures


# -- log_batch (info) --------------------------------------------------------------------------


def fig_log_batch(ctx: Context) -> list[Figure]:
    import nbtrack

    s = ctx.sizes
    rng = random.Random(2)
    n = s.batch_points
    ts = time.time_ns() // 1_000_000
    triples = [(f"metric_{i % 10}", rng.random(), i // 10) for i in range(n)]
    nb_batches = [
        [nbtrack.Metric(k, v, ts, st) for k, v, st in triples[i : i + s.batch_size]]
        for i in range(0, n, s.batch_size)
    ]

    nb_times = []
    for _ in range(s.batch_repeats):
        with nbtrack_store(ctx.dirs, "log-batch") as (path, experiment_id):
            client = nbtrack.Client()
            run_id = client.create_run(experiment_id, run_name="log-batch").info.run_id

            def nb_work(client: Any = client, run_id: str = run_id) -> None:
                for batch in nb_batches:
                    client.log_batch(run_id, metrics=batch)

            seconds, _ = timed(nb_work)
            client.set_terminated(run_id)
            assert nbtrack_metric_rows(path, run_id) == n
            nb_times.append(seconds)

    ml = ctx.mlflow()
    from mlflow.entities import Metric as MLMetric

    ml_batches = [
        [MLMetric(k, v, ts, st) for k, v, st in triples[i : i + s.batch_size]]
        for i in range(0, n, s.batch_size)
    ]
    with ml.store("log-batch") as (_, ml_client, experiment_id):
        run_id = ml_client.create_run(experiment_id).info.run_id

        def ml_work() -> None:
            for batch in ml_batches:
                ml_client.log_batch(run_id, metrics=batch)

        ml_seconds, _ = timed(ml_work)
        ml_client.set_terminated(run_id)
        got = len(ml_client.get_metric_history(run_id, "metric_0"))
    assert got == n // 10, (got, n // 10)
    nb_rate = n / statistics.median(nb_times)
    ml_rate = n / ml_seconds
    return [
        Figure(
            "log_batch", f"log_batch {n // 1000}k/{s.batch_size}", nb_rate, ml_rate, "mlflow",
            "pts/s", nb_rate / ml_rate, "nbtrack / mlflow throughput", None,
            details={"points": n, "batch_size": s.batch_size, "nbtrack_s": nb_times,
                     "mlflow_s": ml_seconds},
        )
    ]


# -- figure 2: search_runs ---------------------------------------------------------------------


def search_dataset(n_runs: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    """Params and metrics of each run; p0 is the run's index, so results can be compared."""
    rng = random.Random(3)
    runs = []
    for i in range(n_runs):
        params = {
            "p0": str(i),
            "p1": rng.choice("abcd"),
            "p2": str(rng.randint(1, 10)),
            "p3": rng.choice(["adam", "sgd", "rmsprop"]),
            "p4": f"{rng.random():.4f}",
        }
        metrics = {f"m{j}": rng.random() for j in range(5)}
        runs.append((params, metrics))
    return runs


def fig_search_runs(ctx: Context) -> list[Figure]:
    import nbtrack

    s = ctx.sizes
    data = search_dataset(s.search_runs)
    ts = time.time_ns() // 1_000_000
    ml = ctx.mlflow()
    from mlflow.entities import Metric as MLMetric
    from mlflow.entities import Param as MLParam

    with (
        nbtrack_store(ctx.dirs, "search") as (_, nb_exp),
        ml.store("search") as (_, ml_client, ml_exp),
    ):
        client = nbtrack.Client()
        t0 = time.perf_counter()
        for i, (params, metrics) in enumerate(data):
            run_id = client.create_run(nb_exp, run_name=f"run-{i}").info.run_id
            client.log_batch(
                run_id,
                metrics=[nbtrack.Metric(k, v, ts, 0) for k, v in metrics.items()],
                params=[nbtrack.Param(k, v) for k, v in params.items()],
            )
            client.set_terminated(run_id)
        nb_build = time.perf_counter() - t0

        t0 = time.perf_counter()
        for i, (params, metrics) in enumerate(data):
            run_id = ml_client.create_run(ml_exp, run_name=f"run-{i}").info.run_id
            ml_client.log_batch(
                run_id,
                metrics=[MLMetric(k, v, ts, 0) for k, v in metrics.items()],
                params=[MLParam(k, v) for k, v in params.items()],
            )
            ml_client.set_terminated(run_id)
        ml_build = time.perf_counter() - t0

        def nb_search() -> Any:
            return nbtrack.search_runs(
                experiment_ids=[nb_exp], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER
            )

        def ml_search() -> Any:
            return ml.mlflow.search_runs(
                experiment_ids=[ml_exp], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER
            )

        nb_search()  # warm-ups (first use of pandas and of each query layer)
        ml_search()
        (nb_times, nb_df), (ml_times, ml_df) = paired(
            nb_search, s.search_repeats_nbtrack, ml_search, s.search_repeats_mlflow, s.blocks
        )

    assert len(nb_df) == len(ml_df), f"nbtrack returned {len(nb_df)} rows, mlflow {len(ml_df)}"
    assert len(nb_df) > 0, "the filter matched no run"
    same_order = list(nb_df["params.p0"]) == list(ml_df["params.p0"])
    if not same_order:
        print("  note: search_runs returned the same number of rows in a different order",
              flush=True)
    nb_s = statistics.median(nb_times)
    ml_s = statistics.median(ml_times)
    return [
        Figure(
            "search_runs", f"search_runs {s.search_runs} runs", nb_s, ml_s, "mlflow", "s",
            ml_s / nb_s, "mlflow time / nbtrack time", 20.0,
            details={"runs": s.search_runs, "rows": len(nb_df), "same_order": same_order,
                     "nbtrack_s": nb_times, "mlflow_s": ml_times,
                     "nbtrack_build_s": nb_build, "mlflow_build_s": ml_build},
        )
    ]


# -- figure 3: get_metric_history --------------------------------------------------------------


def fig_get_metric_history(ctx: Context) -> list[Figure]:
    import nbtrack

    s = ctx.sizes
    rng = random.Random(4)
    n = s.history_steps
    values = [rng.random() for _ in range(n)]
    ts = time.time_ns() // 1_000_000
    key = "loss"
    ml = ctx.mlflow()
    from mlflow.entities import Metric as MLMetric

    with (
        nbtrack_store(ctx.dirs, "history"),
        ml.store("history") as (_, ml_client, ml_exp),
    ):
        with nbtrack.start_run(run_name="history") as run:
            for step, value in enumerate(values):
                nbtrack.log_metric(key, value, step=step)
        nb_run_id = run.info.run_id
        client = nbtrack.Client()

        ml_run_id = ml_client.create_run(ml_exp, run_name="history").info.run_id
        for i in range(0, n, 1000):
            ml_client.log_batch(
                ml_run_id,
                metrics=[MLMetric(key, values[st], ts, st) for st in range(i, min(i + 1000, n))],
            )
        ml_client.set_terminated(ml_run_id)

        def nb_history() -> Any:
            return client.get_metric_history(nb_run_id, key)

        def ml_history() -> Any:
            return ml_client.get_metric_history(ml_run_id, key)

        nb_history()  # warm-ups
        ml_history()
        (nb_times, nb_hist), (ml_times, ml_hist) = paired(
            nb_history, s.history_repeats, ml_history, s.history_repeats, s.blocks
        )

    assert len(nb_hist) == len(ml_hist) == n, (len(nb_hist), len(ml_hist), n)
    nb_s = statistics.median(nb_times)
    ml_s = statistics.median(ml_times)
    return [
        Figure(
            "get_metric_history", f"get_metric_history {n // 1000}k", nb_s, ml_s, "mlflow", "s",
            ml_s / nb_s, "mlflow time / nbtrack time", 30.0,
            details={"steps": n, "nbtrack_s": nb_times, "mlflow_s": ml_times},
        )
    ]


# -- figure 4: start_run + end_run -------------------------------------------------------------


def fig_start_run(ctx: Context) -> list[Figure]:
    import nbtrack

    s = ctx.sizes

    def nb_once() -> None:
        with nbtrack.start_run():
            pass

    ml = ctx.mlflow()

    def ml_once() -> None:
        with ml.mlflow.start_run():
            pass

    with nbtrack_store(ctx.dirs, "start-run"), ml.store("start-run"):
        nb_once()  # warm-ups (the first run computes cached context, on both sides)
        ml_once()
        (nb_times, _), (ml_times, _) = paired(
            nb_once, s.start_run_repeats_nbtrack, ml_once, s.start_run_repeats, s.blocks
        )

    nb_s = statistics.mean(nb_times)
    ml_s = statistics.mean(ml_times)
    ctx.nbtrack_start_run_s = nb_s
    return [
        Figure(
            "start_run", f"start_run+end_run x{s.start_run_repeats_nbtrack}/{s.start_run_repeats}",
            nb_s, ml_s, "mlflow", "s",
            ml_s / nb_s, "mlflow mean / nbtrack mean", 50.0,
            details={"nbtrack_s": nb_times, "mlflow_s": ml_times,
                     "nbtrack_median_s": statistics.median(nb_times),
                     "mlflow_median_s": statistics.median(ml_times)},
        )
    ]


# -- figure 6 (info): raw sqlite3 floor of start_run + end_run ---------------------------------


def fig_start_run_raw(ctx: Context) -> list[Figure]:
    s = ctx.sizes
    path = ctx.dirs.new("raw-runs") / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL,"
        " run_name TEXT, status TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER,"
        " lifecycle_stage TEXT NOT NULL DEFAULT 'active', deleted_time INTEGER,"
        " parent_run_id TEXT, user TEXT, host TEXT, pid INTEGER, source TEXT, artifact_uri TEXT)"
    )
    conn.execute(
        "CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time)"
    )
    conn.execute("CREATE INDEX runs_by_status ON runs (status)")
    import uuid

    def once() -> None:
        run_id = uuid.uuid4().hex
        now = time.time_ns() // 1_000_000
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, user, host,"
            " pid, source, artifact_uri) VALUES (?, 1, 'raw', 'RUNNING', ?, 'u', 'h', 1, 's', ?)",
            (run_id, now, f"1/{run_id}"),
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE runs SET status = 'FINISHED', end_time = ? WHERE run_id = ?", (now, run_id)
        )
        conn.execute("COMMIT")

    once()
    times, _ = series(once, s.raw_run_repeats)
    conn.close()
    raw_s = statistics.mean(times)
    nb_s = ctx.nbtrack_start_run_s
    return [
        Figure(
            "start_run_raw", "start_run raw floor", nb_s, raw_s, "raw sqlite3", "s",
            None if nb_s is None else nb_s / raw_s, "nbtrack mean / raw mean (cost over floor)",
            None,
            details={"raw_s_mean": raw_s, "raw_s_median": statistics.median(times),
                     "repeats": s.raw_run_repeats},
        )
    ]


# -- figure 5: import --------------------------------------------------------------------------


def import_seconds(module: str, env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, cwd=cwd, check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def fig_import(ctx: Context) -> list[Figure]:
    env = {k: v for k, v in os.environ.items() if k not in REDIRECT_ENV}
    env.update(QUIET_ENV)
    cwd = ctx.dirs.new("import")
    # Both libraries import from byte-code caches the warm-up writes into one temporary folder,
    # as from an installed package. Without this, a machine that sets PYTHONDONTWRITEBYTECODE
    # compiled nbtrack (an editable install: no caches) from source on every import, while
    # MLflow used the caches pip wrote at install time.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ctx.dirs.new("pycache"))
    if ctx.sizes.import_warmup:
        for module in ("nbtrack", "mlflow"):  # warm-up: byte-code and OS file caches
            import_seconds(module, env, cwd)
    nb_times, ml_times = [], []
    for _ in range(ctx.sizes.import_repeats):
        nb_times.append(import_seconds("nbtrack", env, cwd))
        ml_times.append(import_seconds("mlflow", env, cwd))
    nb_s = statistics.median(nb_times)
    ml_s = statistics.median(ml_times)
    return [
        Figure(
            "import", "import (subprocess)", nb_s, ml_s, "mlflow", "s",
            ml_s / nb_s, "mlflow median / nbtrack median (interpreter start included)", 10.0,
            details={"nbtrack_s": nb_times, "mlflow_s": ml_times},
        )
    ]


# -- driver ------------------------------------------------------------------------------------


class Context:
    def __init__(self, sizes: Sizes, dirs: Dirs):
        self.sizes = sizes
        self.dirs = dirs
        self._mlflow: MLflowSide | None = None
        self.nbtrack_log_metric_rate: float | None = None
        self.nbtrack_start_run_s: float | None = None

    def mlflow(self) -> MLflowSide:
        if self._mlflow is None:
            self._mlflow = MLflowSide(self.dirs)
            print(
                f"(mlflow: imported in {self._mlflow.import_s:.2f} s; fresh-store migrations "
                f"{self._mlflow.migrate_s:.2f} s, done once and copied, not timed)",
                flush=True,
            )
        return self._mlflow


# -- figure 7 (info): what %%track adds to a cell ------------------------------------------------


def fig_track_cell(ctx: Context) -> list[Figure]:
    """A ``%%track`` cell holding ``pass`` against a plain ``pass`` cell, in a real IPython shell
    with history on (each tracked run stores its history snapshot; the environment snapshot is
    cached after the first)."""
    from IPython.core.interactiveshell import InteractiveShell

    s = ctx.sizes
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext nbtrack", store_history=True)

    def plain() -> None:
        shell.run_cell("pass", store_history=True)

    def tracked() -> None:
        shell.run_cell("%%track --quiet\npass", store_history=True)

    with nbtrack_store(ctx.dirs, "track-cell"):
        tracked()  # warm-up: reads the installed packages once for the environment snapshot
        plain()
        (tr_times, _), (pl_times, _) = paired(
            tracked, s.start_run_repeats, plain, s.start_run_repeats, s.blocks
        )
    tr_s = statistics.median(tr_times)
    pl_s = statistics.median(pl_times)
    return [
        Figure(
            "track_cell", f"%%track pass, +{(tr_s - pl_s) * 1e3:.2f} ms", tr_s, pl_s,
            "plain cell", "s", tr_s / pl_s, "tracked / plain cell time", None,
            details={"tracked_s": tr_times, "plain_s": pl_times,
                     "overhead_s": tr_s - pl_s},
        )
    ]


# -- figure 8 (info): building metric curves for the browser ------------------------------------


def fig_curves(ctx: Context) -> list[Figure]:
    """nbtrack_widgets.curves for 20 runs x 10 k steps: the time to build the widget in
    Python, and the size of the figure state sent to the browser (against the raw points)."""
    import json

    import nbtrack
    from nbtrack_widgets import MetricCurves

    runs, steps = 20, ctx.sizes.history_steps  # 10 k steps (--quick: fewer)
    with nbtrack_store(ctx.dirs, "curves"):
        client = nbtrack.Client()
        ids = []
        for r in range(runs):
            run_id = client.create_run("0", run_name=f"run-{r}").info.run_id
            client.log_batch(
                run_id,
                metrics=[nbtrack.Metric("loss", 1.0 / (1 + s + r), 1_000_000 + s, s)
                         for s in range(steps)],
            )
            ids.append(run_id)
        times, widget = series(lambda: MetricCurves(ids, client=client), 3)
    state = len(json.dumps(widget.figure.to_plotly_json(), default=str))
    raw = runs * steps * 2 * 8  # x and y as 8-byte numbers, before any downsampling
    return [
        Figure(
            "curves", f"curves {runs}x{steps // 1000}k, state {state / 1e6:.2f} MB",
            statistics.median(times), None, "-", "s", None,
            f"figure state {state:,} bytes vs {raw:,} bytes of raw points", None,
            details={"build_s": times, "state_bytes": state, "raw_bytes": raw},
        )
    ]


# -- figure 9 (info): building the comparison table ------------------------------------------------


def fig_compare(ctx: Context) -> list[Figure]:
    """nbtrack_widgets.RunTable over 1000 runs x 20 columns (5 params, 15 metrics): the time to
    build it in Python, and the size of the widget state sent to the browser (one page)."""
    import json

    import nbtrack
    from nbtrack_widgets import RunTable

    runs = 1000 if ctx.sizes.search_runs >= 1000 else 200
    rng = random.Random(9)
    with nbtrack_store(ctx.dirs, "compare") as (_, experiment_id):
        client = nbtrack.Client()
        for r in range(runs):
            run_id = client.create_run(experiment_id, run_name=f"run-{r}").info.run_id
            client.log_batch(
                run_id,
                metrics=[nbtrack.Metric(f"m{k}", rng.random(), 1, 0) for k in range(15)],
                params=[nbtrack.Param(f"p{k}", str(rng.randint(0, 3))) for k in range(5)],
                synchronous=False,
            )
        client.flush()
        name = client.get_experiment(experiment_id).name
        times, table = series(lambda: RunTable(experiment=name, max_runs=runs), 3)
    state = sum(len(json.dumps(w.get_state(), default=str)) for w in table.grid.children)
    return [
        Figure(
            "compare", f"compare {runs} runs x 20 cols, page state {state / 1e3:.0f} kB",
            statistics.median(times), None, "-", "s", None,
            f"{len(table.grid.children)} widgets on the first page, {state:,} bytes of state",
            None, details={"build_s": times, "page_state_bytes": state, "runs": runs},
        )
    ]


def fig_autolog(ctx: Context) -> list[Figure]:
    """Figure 11 (info): fits with autolog against the same fits without (autolog_bench.py)."""
    import autolog_bench

    figures = autolog_bench.sklearn_figures(ctx, Figure, nbtrack_store)
    try:
        figures.append(autolog_bench.lightning_figure(ctx, Figure, nbtrack_store))
    except Exception as exc:  # Lightning needs torch, which installs on Python 3.11 here
        figures.append(Figure("autolog_lightning", "Lightning 100 steps, autolog", None, None,
                              "no autolog", "s", None, "", None,
                              error=f"{type(exc).__name__}: {exc}"))
    return figures


RUNNERS: dict[str, Callable[[Context], list[Figure]]] = {
    "log_metric": fig_log_metric,
    "log_batch": fig_log_batch,
    "search_runs": fig_search_runs,
    "get_metric_history": fig_get_metric_history,
    "start_run": fig_start_run,
    "start_run_raw": fig_start_run_raw,
    "track_cell": fig_track_cell,
    "curves": fig_curves,
    "compare": fig_compare,
    "import": fig_import,
    "autolog": fig_autolog,
}
TARGETED = {"log_metric", "search_runs", "get_metric_history", "start_run", "import"}


def versions() -> dict[str, str]:
    import nbtrack

    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "mlflow": dist("mlflow"),
        "nbtrack": nbtrack.__version__,
        "pandas": dist("pandas"),
        "numpy": dist("numpy"),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only", action="append", choices=FIGURES, metavar="NAME",
        help=f"run only this figure (repeatable): {', '.join(FIGURES)}",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in REDIRECT_ENV:
        os.environ.pop(name, None)
    os.environ.update(QUIET_ENV)
    sizes = QUICK if args.quick else FULL
    selected = [f for f in FIGURES if not args.only or f in args.only]
    info = versions()
    print(
        f"nbtrack benchmark ({'quick' if args.quick else 'full'}): Python {info['python']}, "
        f"SQLite {info['sqlite']}, MLflow {info['mlflow']}, nbtrack {info['nbtrack']}, "
        f"pandas {info['pandas']}, numpy {info['numpy']}, {info['cpus']} CPUs, "
        f"{info['platform']}",
        flush=True,
    )
    dirs = Dirs(args.keep)
    ctx = Context(sizes, dirs)
    figures: list[Figure] = []
    errors = 0
    t_start = time.perf_counter()
    try:
        for name in selected:
            t_fig = time.perf_counter()
            try:
                results = RUNNERS[name](ctx)
            except Exception as exc:
                errors += 1
                traceback.print_exc()
                results = [
                    Figure(name, name, None, None, "", "s", None, "", 1.0 if name in TARGETED
                           else None, passed=False, error=f"{type(exc).__name__}: {exc}")
                ]
            wall = time.perf_counter() - t_fig
            for fig in results:
                fig.details.setdefault("wall_s", round(wall, 2))
                if fig.target is not None and fig.error is None:
                    assert fig.ratio is not None
                    fig.passed = fig.ratio >= fig.target
                print_figure(fig)
                figures.append(fig)
    finally:
        import nbtrack

        nbtrack.end_run()
        if ctx._mlflow is not None:
            ctx._mlflow.mlflow.end_run()
        dirs.cleanup()
    targeted = [f for f in figures if f.target is not None]
    met = sum(1 for f in targeted if f.passed)
    elapsed = time.perf_counter() - t_start
    print(f"{met} of {len(targeted)} targets met  ({elapsed:.0f} s)", flush=True)
    if args.json:
        payload = {
            "mode": "quick" if args.quick else "full",
            "versions": info,
            "sizes": asdict(sizes),
            "figures": [asdict(f) for f in figures],
            "targets_met": met,
            "targets_total": len(targeted),
            "elapsed_s": elapsed,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
