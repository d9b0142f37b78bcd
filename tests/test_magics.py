"""``%%track`` and ``%nbtrack`` in a real IPython shell (and once in a real kernel)."""

from __future__ import annotations

import ast
import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output

import nbtrack
from nbtrack import tracked_cell
from nbtrack.snapshot import load_snapshot
from nbtrack.snapshot.notebook import set_notebook_path
from nbtrack.summary import RunSummary
from nbtrack.tracking import fluent


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    sh = InteractiveShell.instance()
    assert sh.run_cell("%load_ext nbtrack", store_history=True).success
    assert sh.run_cell("import nbtrack", store_history=True).success
    yield sh


@pytest.fixture
def ip(
    shell: InteractiveShell, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    """The shell with a fresh store, no notebook file known, and the names a test made removed."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    set_notebook_path(None)
    tracked_cell._last_run_of_cell.clear()
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        if not name.startswith("_"):
            del shell.user_ns[name]
    set_notebook_path(None)
    tracked_cell._last_run_of_cell.clear()


def run(shell: InteractiveShell, source: str) -> tuple[ExecutionResult, CapturedIO]:
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    return result, captured


def ok(shell: InteractiveShell, source: str) -> tuple[ExecutionResult, CapturedIO]:
    result, captured = run(shell, source)
    assert result.error_before_exec is None, captured.stdout
    assert result.error_in_exec is None, captured.stdout
    return result, captured


def runs(experiment: str | None = None) -> pd.DataFrame:
    frame: Any = nbtrack.search_runs(
        experiment_names=[experiment] if experiment else None,
        search_all_experiments=experiment is None,
        order_by=["attributes.start_time ASC"],
    )
    return frame


def last_run() -> nbtrack.Run:
    run = nbtrack.last_active_run()
    assert run is not None
    return run


def summaries(captured: CapturedIO) -> list[str]:
    return [
        o.data["text/plain"]
        for o in captured.outputs
        if "details" in o.data.get("text/plain", "") and "%nbtrack show" in o.data["text/plain"]
    ]


def db_rows(store_dir: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# -- the spec's example -------------------------------------------------------------------------

BODY = """\
import numpy as np
n_estimators = 200
max_depth = 8
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)
weights = np.linalg.lstsq(X, y, rcond=None)[0]
pred = (X @ weights > 0.5).astype(int)
acc = float((pred == y).mean())
"""
BODY_NAMES = ("n_estimators", "max_depth", "rng", "X", "y", "weights", "pred", "acc")


def test_spec_example(ip: InteractiveShell) -> None:
    ok(ip, BODY)  # without the magic: the reference globals
    plain = {k: ip.user_ns.pop(k) for k in BODY_NAMES}

    result, captured = ok(ip, "%%track --experiment churn --name rf-baseline\n" + BODY)
    assert result.result is None  # the last statement is an assignment

    frame = runs("churn")
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["run_name"] == "rf-baseline"
    assert row["status"] == "FINISHED"
    run = nbtrack.get_run(row["run_id"])
    assert run.data.params == {"n_estimators": "200", "max_depth": "8"}
    assert set(run.data.metrics) == {"acc"}
    assert run.data.metrics["acc"] == pytest.approx(plain["acc"])
    assert nbtrack.active_run() is None

    kinds = nbtrack.Client().store.run_snapshots(run.info.run_id)
    assert {"history", "environment"} <= set(kinds)
    history = load_snapshot(nbtrack.Client(), run.info.run_id, "history")
    assert history["cells"][-1]["source"].startswith("%%track --experiment churn")
    assert history["cells"][-1]["execution_count"] == ip.execution_count - 1
    env = load_snapshot(nbtrack.Client(), run.info.run_id, "environment")
    assert "nbtrack" in {k.lower() for k in env["packages"]}

    # the same globals as without the magic
    for name in BODY_NAMES:
        if name == "rng":
            assert type(ip.user_ns[name]) is type(plain[name])
        else:
            np.testing.assert_array_equal(ip.user_ns[name], plain[name])
    assert ip.user_ns["np"] is np
    assert len(summaries(captured)) == 1


def test_globals_are_the_user_namespace(ip: InteractiveShell) -> None:
    ok(ip, "trk_base = 10\ndef trk_f(v):\n    return v + trk_base")
    ok(ip, "%%track -q\ntrk_g = trk_f(1)\ndef trk_h():\n    return trk_g * 2\ntrk_i = trk_h()")
    assert ip.user_ns["trk_g"] == 11
    assert ip.user_ns["trk_i"] == 22
    ok(ip, "trk_j = trk_h()")  # functions defined in the cell see the notebook's globals
    assert ip.user_ns["trk_j"] == 22


def test_ipython_syntax_is_transformed_and_capture_still_works(ip: InteractiveShell) -> None:
    _, captured = ok(
        ip,
        "%%track -q\n!echo shell-says-hi\nlr = 0.1\n%time trk_t = 1\nacc = 0.8\n"
        "trk_files = !echo a",
    )
    assert "shell-says-hi" in captured.stdout
    assert ip.user_ns["trk_t"] == 1
    assert list(ip.user_ns["trk_files"]) == ["a"]
    run = last_run()
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {"acc": 0.8}


def test_ast_transformers_and_future_imports_apply(ip: InteractiveShell) -> None:
    class Double(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            if type(node.value) is int:
                return ast.copy_location(ast.Constant(node.value * 2), node)
            return node

    transformer = Double()
    ip.ast_transformers.append(transformer)
    try:
        ok(ip, "trk_plain = 21")
        ok(ip, "%%track -q\ntrk_tracked = 21")
    finally:
        ip.ast_transformers.remove(transformer)
    assert ip.user_ns["trk_tracked"] == ip.user_ns["trk_plain"] == 42

    flags = ip.compile.flags
    try:
        ok(ip, "from __future__ import annotations")
        ok(ip, "%%track -q\ndef trk_f(x: nowhere) -> None: ...\ntrk_ann = trk_f.__annotations__")
    finally:
        ip.compile.flags = flags
    assert ip.user_ns["trk_ann"] == {"x": "nowhere", "return": "None"}


# -- the cell's value ---------------------------------------------------------------------------


def test_last_expression_is_the_result(ip: InteractiveShell) -> None:
    result, captured = ok(ip, "%%track -q\ntrk_x = 21\ntrk_x * 2")
    count = ip.execution_count - 1
    assert result.result == 42
    assert ip.user_ns["_"] == 42
    assert ip.user_ns["Out"][count] == 42
    assert f"Out[{count}]: 42" in captured.stdout

    ok(ip, "trk_y = _ + 1")  # `_` refers to the tracked cell's value
    assert ip.user_ns["trk_y"] == 43

    result, captured = ok(ip, "%%track -q\ntrk_x * 3;")  # `;` hides it, as in any cell
    assert result.result is None
    assert "Out[" not in captured.stdout
    assert ip.user_ns["_"] == 42

    result, _ = ok(ip, "%%track -q\nprint('printed')")
    assert result.result is None

    result, _ = ok(ip, "%%track -q\nif True:\n    trk_z = 1")
    assert result.result is None


AWAITING = """\
import asyncio
lr = 0.5
async def trk_double(v):
    await asyncio.sleep(0)
    return v * 2
trk_got = [await trk_double(i) for i in range(3)]
async with asyncio.timeout(5) if hasattr(asyncio, "timeout") else asyncio.Lock():
    acc = await trk_double(0.25)
await trk_double(21)
"""


def test_top_level_await_runs_as_in_a_plain_cell(ip: InteractiveShell) -> None:
    plain, _ = ok(ip, AWAITING)
    assert plain.result == 42 and ip.user_ns["trk_got"] == [0, 2, 4]
    del ip.user_ns["trk_got"]
    result, captured = ok(ip, "%%track --name awaits\n" + AWAITING)
    count = ip.execution_count - 1
    assert result.result == 42 and ip.user_ns["Out"][count] == 42
    assert f"Out[{count}]: 42" in captured.stdout
    assert ip.user_ns["trk_got"] == [0, 2, 4]
    run_ = last_run()
    assert run_.info.run_name == "awaits" and run_.info.status == "FINISHED"
    assert run_.data.params == {"lr": "0.5"} and run_.data.metrics == {"acc": 0.5}
    assert len(summaries(captured)) == 1
    assert nbtrack.active_run() is None

    result, captured = ok(ip, "%%track -q\nawait asyncio.sleep(0)")  # a value of None: no Out
    assert result.result is None and "Out[" not in captured.stdout
    assert last_run().info.status == "FINISHED"


def test_a_replay_leaves_other_threads_logging_to_the_real_store(ip: InteractiveShell) -> None:
    import threading

    outer = nbtrack.start_run(run_name="outer").info.run_id
    go, done = threading.Event(), threading.Event()

    def background() -> None:  # a logger started before the replay, on a thread of its own
        go.wait(30)
        nbtrack.Client().log_metric(outer, "background", 1.0)
        done.set()

    thread = threading.Thread(target=background)
    thread.start()
    ip.user_ns.update(trk_go=go, trk_done=done)
    ok(ip, "%%track --replay\ntrk_go.set()\ntrk_done.wait(30)\nnbtrack.log_metric('inside', 1)")
    thread.join(30)
    nbtrack.end_run()
    assert nbtrack.get_run(outer).data.metrics == {"background": 1.0}
    assert list(runs()["run_name"]) == ["outer"]


def test_replay_of_an_awaiting_cell_awaits_it_and_makes_no_run(ip: InteractiveShell) -> None:
    result, captured = ok(ip, "%%track --replay\n" + AWAITING + "nbtrack.log_metric('x', 1)\n42")
    assert result.result == 42 and ip.user_ns["trk_got"] == [0, 2, 4]
    assert f"Out[{ip.execution_count - 1}]: 42" in captured.stdout
    assert runs().empty and nbtrack.active_run() is None


def test_an_awaiting_cell_that_raises_or_is_cancelled(ip: InteractiveShell) -> None:
    result, captured = run(ip, "%%track -q\nimport asyncio\nawait asyncio.sleep(0)\n1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "ZeroDivisionError" in captured.stdout
    assert last_run().info.status == "FAILED"
    # how a Jupyter kernel interrupts a cell that awaits: its task is cancelled
    result, _ = run(ip, "%%track -q\nawait asyncio.sleep(0)\nraise asyncio.CancelledError")
    assert isinstance(result.error_in_exec, asyncio.CancelledError)
    run_ = last_run()
    assert run_.info.status == "KILLED"
    assert run_.data.tags["nbtrack.killedReason"] == "interrupted (CancelledError)"
    assert nbtrack.active_run() is None


def test_without_autoawait_await_is_a_syntax_error_as_in_a_plain_cell(
    ip: InteractiveShell,
) -> None:
    ok(ip, "%autoawait off")
    try:
        plain, _ = run(ip, "import asyncio\nawait asyncio.sleep(0)")
        result, _ = run(ip, "%%track -q\nimport asyncio\nawait asyncio.sleep(0)")
    finally:
        ok(ip, "%autoawait on")
    assert isinstance(plain.error_in_exec or plain.error_before_exec, SyntaxError)
    assert isinstance(result.error_before_exec, SyntaxError)
    assert nbtrack.last_active_run() is None and runs().empty


def test_value_is_shown_before_the_summary(ip: InteractiveShell) -> None:
    result, captured = ok(ip, "%%track\n'the value'")
    assert result.result == "the value"
    assert len(summaries(captured)) == 1


# -- what is and is not captured ------------------------------------------------------------------


def test_not_captured(ip: InteractiveShell) -> None:
    ok(ip, "acc = 0.99\nprecision = 0.5")  # globals from before the cell
    ok(
        ip,
        "%%track -q\n"
        "import numpy as np\n"
        "n = len([1, 2, 3])\n"  # computed: not a param
        "arr = np.arange(3)\n"
        "depth = 4 + 1\n"
        "name = 'x' * 2\n"
        "val_loss = 1\n"  # a metric-like literal: a metric, not a param
        "train_acc = 0.75\n"
        "loss_curve = [0.5, 0.4]\n"  # metric-like name, not a number: a param
        "score_vec = np.array([0.1, 0.2])\n"
        "error_flag = True\n"
        "f1_text = 'high'\n"
        "auc_one = np.array([0.7])\n"
        "seed = 3\n",  # a literal: a param
    )
    run = last_run()
    # literals that are not single numbers are params even under metric-like names
    assert run.data.params == {
        "seed": "3",
        "loss_curve": "[0.5, 0.4]",
        "error_flag": "True",
        "f1_text": "high",
    }
    assert run.data.metrics == {"val_loss": 1.0, "train_acc": 0.75}
    assert "acc" not in run.data.metrics and "precision" not in run.data.metrics


def test_numpy_scalars_and_0d_arrays_are_metrics(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q\nimport numpy as np\nrmse = np.float32(0.5)\nauc = np.array(0.25)\nf1 = 1")
    assert last_run().data.metrics == {"rmse": 0.5, "auc": 0.25, "f1": 1.0}


def test_metrics_assigned_inside_loops_are_captured(ip: InteractiveShell) -> None:
    ok(
        ip,
        "%%track -q\n"
        "best_acc = 0\n"
        "for epoch in range(3):\n"
        "    val_acc = 0.5 + epoch / 10\n"
        "    if val_acc > best_acc:\n"
        "        best_acc = val_acc\n"
        "def helper():\n"
        "    inner_loss = 5.0\n"
        "    return inner_loss\n"
        "helper()",
    )
    run = last_run()
    assert run.data.metrics == {"best_acc": pytest.approx(0.7), "val_acc": pytest.approx(0.7)}
    assert run.data.params == {}


def test_no_capture(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --no-capture\nn_estimators = 200\nacc = 0.5")
    run = last_run()
    assert run.data.params == {}
    assert run.data.metrics == {}
    assert run.info.status == "FINISHED"
    assert ip.user_ns["acc"] == 0.5


def test_no_capture_still_honours_explicit_lists(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --no-capture --params n --metrics acc\nn = 3\nacc = 0.5\nlr = 0.1")
    run = last_run()
    assert run.data.params == {"n": "3"}
    assert run.data.metrics == {"acc": 0.5}


def test_custom_metric_patterns(ip: InteractiveShell) -> None:
    ok(ip, "%config TrackMagics.metric_patterns = ['throughput*']")
    try:
        ok(ip, "%%track -q\nthroughput_s = 12.5\nacc = 0.5")
        run = last_run()
        assert run.data.metrics == {"throughput_s": 12.5}
        assert run.data.params == {"acc": "0.5"}  # no longer a metric-like name
    finally:
        from nbtrack.cellvars import METRIC_PATTERNS

        ok(ip, f"%config TrackMagics.metric_patterns = {list(METRIC_PATTERNS)!r}")


def test_params_and_metrics_options(ip: InteractiveShell) -> None:
    _, captured = ok(
        ip,
        "%%track --params total,cfg,missing_p --metrics best,missing_m,vec,label\n"
        "total = sum(range(10))\n"
        "cfg = {'k': [1, 2]}\n"
        "best = max([1, 3])\n"
        "vec = [1, 2]\n"
        "label = 'yes'\n",
    )
    run = last_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"total": "45", "cfg": "{'k': [1, 2]}"}
    assert run.data.metrics == {"best": 3.0}
    (text,) = summaries(captured)
    assert "--params missing_p: no such variable after the cell" in text
    assert "--metrics missing_m: no such variable after the cell" in text
    assert "--metrics vec: list is not a single number" in text
    assert "--metrics label: str is not a single number" in text


def test_params_option_takes_the_value_the_cell_computed(ip: InteractiveShell) -> None:
    _, captured = ok(ip, "%%track --params lr\nlr = 0.1\nlr = lr * 2")
    run = last_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.2"}  # computed in the cell: taken by --params after it
    (text,) = summaries(captured)
    assert "--params lr:" not in text


def test_params_option_with_an_unprintable_value_is_a_note(ip: InteractiveShell) -> None:
    _, captured = ok(
        ip,
        "%%track --params bad\n"
        "class Unprintable:\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('no str')\n"
        "bad = Unprintable()",
    )
    assert last_run().info.status == "FINISHED"
    assert nbtrack.active_run() is None
    (text,) = summaries(captured)
    assert "--params bad: no str" in text


def test_explicit_log_metric_goes_to_the_run_and_wins(ip: InteractiveShell) -> None:
    ok(
        ip,
        "%%track -q\n"
        "for i in range(5):\n"
        "    loss = 1.0 / (i + 1)\n"
        "    nbtrack.log_metric('loss', loss, step=i)\n"
        "nbtrack.log_param('explicit', 'yes')\n"
        "acc = 0.9\n",
    )
    run = last_run()
    history = nbtrack.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert run.data.metrics == {"loss": 0.2, "acc": 0.9}
    assert run.data.params == {"explicit": "yes"}
    assert nbtrack.get_metric_history(run.info.run_id, "acc")[0].step == 0


def test_cell_that_ends_the_run_itself(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --name self-ending\nacc = 0.5\nnbtrack.end_run()")
    frame = runs()
    assert list(frame["run_name"]) == ["self-ending"]  # no stray run for the captured metric
    assert nbtrack.active_run() is None
    run = nbtrack.get_run(frame["run_id"][0])
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"acc": 0.5}


def test_replay_makes_no_run_and_throws_its_tracking_calls_away(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ok(ip, "trk_outer = nbtrack.start_run(run_name='outer')")
    _, captured = ok(
        ip,
        "%%track --replay --name again\n"
        "lr = 0.1\n"
        "for i in range(3):\n"
        "    nbtrack.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "with nbtrack.start_run(nested=True, run_name='child'):\n"
        "    nbtrack.log_param('depth', 3)\n"
        "nbtrack.set_experiment('elsewhere')\n"
        "acc = 0.5\n"
        "acc",
    )
    assert ip.user_ns["lr"] == 0.1 and ip.user_ns["acc"] == 0.5  # the code ran as usual
    assert captured.stdout.strip() == f"Out[{ip.execution_count - 1}]: 0.5"
    # no run, no metric of the outer run: no log call reached the store
    outer = nbtrack.active_run()
    assert outer is not None and outer.info.run_id == ip.user_ns["trk_outer"].info.run_id
    nbtrack.end_run()
    frame = runs()
    assert list(frame["run_name"]) == ["outer"]
    assert nbtrack.get_run(frame["run_id"][0]).data.metrics == {}
    # the experiment the cell chose is chosen in the real store, as when the cell first ran:
    # the runs of the cells after it go there
    assert runs("elsewhere").empty and nbtrack.get_experiment_by_name("elsewhere") is not None
    ok(ip, "%%track --name later\nlr = 0.3")
    assert list(runs("elsewhere")["run_name"]) == ["later"]
    assert list(scratch.iterdir()) == []  # the throwaway store is gone
    # an exception reaches the user, and leaves no run behind either
    result, _ = run(ip, "%%track --replay\nnbtrack.log_metric('x', 1)\nraise ValueError('no')")
    assert isinstance(result.error_in_exec, ValueError)
    assert nbtrack.active_run() is None and len(runs()) == 2
    assert list(scratch.iterdir()) == []
    # a replay inside a replay: the outer one's throwaway store is back after the inner one
    ok(ip, "%%track --replay\n"
           "get_ipython().run_cell_magic('track', '--replay', 'nbtrack.log_metric(\"x\", 1)')\n"
           "nbtrack.log_metric('y', 1)")
    assert len(runs()) == 2 and nbtrack.active_run() is None
    assert list(scratch.iterdir()) == []


# -- options --------------------------------------------------------------------------------------


def test_tags_and_name(ip: InteractiveShell) -> None:
    ok(
        ip,
        '%%track -q --name "my run" --tags team=ml "note=two words" empty= path=C:\\data\\x\nx = 1',
    )
    run = last_run()
    assert run.info.run_name == "my run"
    assert run.data.tags["team"] == "ml"
    assert run.data.tags["note"] == "two words"
    assert run.data.tags["empty"] == ""
    assert run.data.tags["path"] == "C:\\data\\x"  # backslashes are kept
    assert run.data.tags["nbtrack.cell.key"].startswith("sha256:")


@pytest.mark.parametrize("tags", ["novalue", "=v", "team=ml novalue", "nbtrack.mine=1"])
def test_bad_tags_are_a_usage_error_and_start_no_run(ip: InteractiveShell, tags: str) -> None:
    result, captured = run(ip, f"%%track --tags {tags}\ntrk_bad = 1")
    assert isinstance(result.error_in_exec, UsageError)
    assert "--tags" in str(result.error_in_exec)
    assert "Traceback" not in captured.stdout
    assert len(runs()) == 0
    assert nbtrack.active_run() is None
    assert "trk_bad" not in ip.user_ns  # the cell did not run


def test_unknown_option_is_a_usage_error(ip: InteractiveShell) -> None:
    result, _ = run(ip, "%%track --no-such-option\nx = 1")
    assert isinstance(result.error_in_exec, UsageError)
    assert len(runs()) == 0


def test_nested_under_an_outer_active_run(ip: InteractiveShell) -> None:
    ok(ip, "trk_outer = nbtrack.start_run(run_name='outer')")
    outer_id = ip.user_ns["trk_outer"].info.run_id
    ok(ip, "%%track -q --nested --name child\nacc = 0.5")
    child = last_run()  # the outer run is active again: last_active_run is the outer one
    assert child.info.run_id == outer_id
    frame = runs()
    child_row = frame[frame["run_name"] == "child"].iloc[0]
    assert child_row["status"] == "FINISHED"
    assert child_row["tags.nbtrack.parentRunId"] == outer_id
    active = nbtrack.active_run()
    assert active is not None and active.info.run_id == outer_id
    nbtrack.end_run()


def test_nested_inside_a_with_block(ip: InteractiveShell) -> None:
    ok(
        ip,
        "with nbtrack.start_run(run_name='outer-with') as trk_o:\n"
        "    get_ipython().run_cell_magic('track', '-q --nested --name inner', 'acc = 0.25')\n"
        "    trk_active = nbtrack.active_run().info.run_id",
    )
    outer_id = ip.user_ns["trk_o"].info.run_id
    assert ip.user_ns["trk_active"] == outer_id  # the outer run is active again after the cell
    frame = runs()
    inner = frame[frame["run_name"] == "inner"].iloc[0]
    assert inner["tags.nbtrack.parentRunId"] == outer_id
    assert inner["metrics.acc"] == 0.25
    assert set(frame["status"]) == {"FINISHED"}
    assert nbtrack.active_run() is None


def test_without_nested_an_outer_run_is_ended_with_a_warning(ip: InteractiveShell) -> None:
    ok(ip, "trk_outer = nbtrack.start_run(run_name='outer')")
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="ending the active run"):
        ok(ip, "%%track -q --name plain\nx = 1")
    frame = runs()
    assert set(frame["status"]) == {"FINISHED"}
    plain = frame[frame["run_name"] == "plain"].iloc[0]
    assert "tags.nbtrack.parentRunId" not in frame or pd.isna(plain["tags.nbtrack.parentRunId"])
    assert nbtrack.active_run() is None


# -- failures -------------------------------------------------------------------------------------


def test_exception_fails_the_run_and_reaches_the_user(ip: InteractiveShell) -> None:
    result, captured = run(
        ip,
        "%%track --name boom\n"
        "lr = 0.5\n"
        "nbtrack.log_metric('loss', 0.3)\n"
        "trk_before = int('1')\n"
        "raise ValueError('boom')\n"
        "trk_after = int('2')\n",
    )
    error = result.error_in_exec
    assert type(error) is ValueError and error.args == ("boom",)
    assert "ValueError" in captured.stdout and "boom" in captured.stdout  # the traceback shown
    assert nbtrack.active_run() is None
    run_ = last_run()
    assert run_.info.status == "FAILED"
    assert run_.info.end_time is not None
    tag = run_.data.tags["nbtrack.error"]
    assert "Traceback" in tag and "ValueError: boom" in tag
    assert "tracked_cell" not in tag  # from the cell on: see the test below
    assert run_.data.params == {"lr": "0.5"}  # captured before the failure: kept
    assert run_.data.metrics == {"loss": 0.3}
    assert ip.user_ns["trk_before"] == 1 and "trk_after" not in ip.user_ns
    (text,) = summaries(captured)
    assert "FAILED" in text


def _cells_numbered_alike(text: str) -> str:
    return re.sub(r"In\[\d+\]", "In[n]", text)


@pytest.mark.parametrize(
    "code",
    [
        "x = (\n",  # does not parse
        "trk_ran = 1\nif trk_ran:\n    return 5\ntrk_after = 2\n",  # parses, does not compile
    ],
)
def test_a_syntax_error_makes_no_run_and_shows_as_a_plain_cell_s(
    ip: InteractiveShell, code: str
) -> None:
    plain, shown = run(ip, code)
    ip.user_ns.pop("trk_ran", None)  # a plain cell runs the statements before the bad one
    count = ip.execution_count
    result, captured = run(ip, "%%track --name never\n" + code)
    error, expected = result.error_before_exec, plain.error_before_exec
    assert isinstance(error, SyntaxError) and isinstance(expected, SyntaxError)
    where = (error.msg, error.lineno, error.offset)
    assert where == (expected.msg, expected.lineno, expected.offset)
    assert _cells_numbered_alike(captured.stdout) == _cells_numbered_alike(shown.stdout)
    assert "Traceback" not in captured.stdout and "tracked_cell" not in captured.stdout
    assert ip.execution_count == count + 1  # one number per cell, as for a plain cell
    assert "trk_ran" not in ip.user_ns  # none of it ran
    assert nbtrack.last_active_run() is None and runs().empty


def test_a_syntax_error_the_check_leaves_to_the_magic_makes_no_run(ip: InteractiveShell) -> None:
    # two statements on one line: IPython, given the line, would run the first one
    result, _ = run(ip, "%%track --name never\ntrk_ran = 1; return 5\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert "trk_ran" not in ip.user_ns
    assert nbtrack.last_active_run() is None and runs().empty


@pytest.mark.parametrize("awaits", ["", "import asyncio\nawait asyncio.sleep(0)\n"])
def test_the_kept_traceback_starts_at_the_cell(ip: InteractiveShell, awaits: str) -> None:
    ok(ip, "def trk_inner():\n    raise KeyError('deep')")
    run(ip, "%%track -q\n" + awaits + "trk_a = 1\ntrk_inner()")
    tag = last_run().data.tags["nbtrack.error"]
    assert tag.startswith("Traceback (most recent call last):\n")
    frames = [line for line in tag.splitlines() if line.startswith('  File "')]
    line = len(awaits.splitlines()) + 2
    assert len(frames) == 2, tag  # the cell's, then the function's: none of the magic's
    assert frames[0].endswith(f"line {line}, in <module>")
    assert frames[1].endswith("line 2, in trk_inner")
    assert tag.rstrip().endswith("KeyError: 'deep'")


def test_keyboard_interrupt_kills_the_run(ip: InteractiveShell) -> None:
    result, _ = run(ip, "%%track -q\nn_estimators = 5\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    run_ = last_run()
    assert run_.info.status == "KILLED"
    assert run_.data.tags["nbtrack.killedReason"] == "interrupted (KeyboardInterrupt)"
    assert "nbtrack.error" not in run_.data.tags
    assert run_.data.params == {"n_estimators": "5"}
    assert nbtrack.active_run() is None


def test_the_next_cell_after_a_failure_is_fine(ip: InteractiveShell) -> None:
    run(ip, "%%track -q\n1 / 0")
    ok(ip, "%%track -q\nacc = 1.0")
    assert list(runs()["status"]) == ["FAILED", "FINISHED"]


# -- linking re-runs ------------------------------------------------------------------------------


def test_rerun_of_a_cell_links_to_its_previous_run(ip: InteractiveShell) -> None:
    cell = "%%track -q\ntrk_rerun = 1"
    ok(ip, cell)
    first = last_run()
    ok(ip, cell)
    second = last_run()
    ok(ip, "%%track -q\ntrk_other = 2")
    other = last_run()
    ok(ip, cell)
    third = last_run()
    assert len({first.info.run_id, second.info.run_id, third.info.run_id}) == 3
    assert "nbtrack.cell.previousRunId" not in first.data.tags
    assert second.data.tags["nbtrack.cell.previousRunId"] == first.info.run_id
    assert third.data.tags["nbtrack.cell.previousRunId"] == second.info.run_id
    assert "nbtrack.cell.previousRunId" not in other.data.tags
    assert first.data.tags["nbtrack.cell.key"] == second.data.tags["nbtrack.cell.key"]
    assert other.data.tags["nbtrack.cell.key"] != first.data.tags["nbtrack.cell.key"]


def test_front_end_cell_id_links_an_edited_cell(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ipykernel's shell has the execute request as parent_header; JupyterLab sends the cell id
    monkeypatch.setattr(ip, "parent_header", {"metadata": {"cellId": "cell-7"}}, raising=False)
    ok(ip, "%%track -q\nlr = 0.1")
    first = last_run()
    ok(ip, "%%track -q\nlr = 0.2")  # edited, same cell
    second = last_run()
    assert first.data.tags["nbtrack.cell.key"] == "id:cell-7"
    assert second.data.tags["nbtrack.cell.previousRunId"] == first.info.run_id


def test_links_do_not_cross_stores(ip: InteractiveShell, tmp_path: Path) -> None:
    cell = "%%track -q\ntrk_cross = 1"
    ok(ip, cell)
    ok(ip, f"%nbtrack uri {tmp_path / 'other'}")
    ok(ip, cell)
    assert "nbtrack.cell.previousRunId" not in last_run().data.tags


# -- snapshots ------------------------------------------------------------------------------------


def test_history_snapshot_follows_execution_order(ip: InteractiveShell) -> None:
    ok(ip, "trk_a = 1")
    a = ip.execution_count - 1
    ok(ip, "trk_b = trk_a + 1")
    b = ip.execution_count - 1
    ok(ip, "%%track -q\ntrk_a = 1")
    c = ip.execution_count - 1
    history = load_snapshot(nbtrack.Client(), last_run().info.run_id, "history")
    assert history["cells"][-3:] == [
        {"execution_count": a, "source": "trk_a = 1"},
        {"execution_count": b, "source": "trk_b = trk_a + 1"},
        {"execution_count": c, "source": "%%track -q\ntrk_a = 1"},
    ]


def test_environment_snapshot_is_stored_once(ip: InteractiveShell, store_dir: Path) -> None:
    for _ in range(100):
        ok(ip, "%%track -q\ntrk_same = 1")
    assert len(runs()) == 100
    assert db_rows(store_dir, "SELECT count(*) FROM snapshots WHERE kind = 'environment'") == [(1,)]
    assert db_rows(
        store_dir,
        "SELECT count(*), count(DISTINCT sha256) FROM run_snapshots WHERE kind = 'environment'",
    ) == [(100, 1)]
    # the history grows with every cell, so each run has its own
    assert db_rows(
        store_dir, "SELECT count(DISTINCT sha256) FROM run_snapshots WHERE kind = 'history'"
    ) == [(100,)]

    before = db_rows(store_dir, "SELECT count(*) FROM snapshots")
    for _ in range(5):
        ok(ip, "%%track -q --no-snapshot\ntrk_same = 1")
    assert db_rows(store_dir, "SELECT count(*) FROM snapshots") == before
    assert db_rows(store_dir, "SELECT count(*) FROM run_snapshots") == [(200,)]


def test_no_snapshot(ip: InteractiveShell) -> None:
    _, captured = ok(ip, "%%track --no-snapshot\nacc = 0.5")
    run_ = last_run()
    assert nbtrack.Client().store.run_snapshots(run_.info.run_id) == {}
    assert "nbtrack.snapshot.note" not in run_.data.tags
    (text,) = summaries(captured)
    assert "snapshot" not in text.split("details")[0]


def test_api_runs_still_take_their_own_snapshots(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --no-snapshot\nx = 1")
    assert nbtrack.Client().store.run_snapshots(last_run().info.run_id) == {}
    ok(ip, "with nbtrack.start_run() as trk_api:\n    pass")  # start_run's own snapshots
    assert "history" in nbtrack.Client().store.run_snapshots(ip.user_ns["trk_api"].info.run_id)


# -- the summary ----------------------------------------------------------------------------------


def test_quiet_shows_nothing(ip: InteractiveShell) -> None:
    _, captured = ok(ip, "%%track --quiet\nacc = 0.5")
    assert captured.outputs == []
    assert captured.stdout == ""
    _, captured = ok(ip, "%%track -q\nacc = 0.5\nacc")
    assert captured.outputs == []
    assert "Out[" in captured.stdout


def test_summary_text(ip: InteractiveShell) -> None:
    _, captured = ok(
        ip, "%%track --experiment churn --name rf-baseline\nn_estimators = 200\nacc = 0.875"
    )
    (text,) = summaries(captured)
    run_ = last_run()
    lines = dict(line.split(None, 1) for line in text.splitlines())
    assert lines["run"] == f"rf-baseline  ({run_.info.run_id})"
    assert lines["experiment"] == "churn"
    assert lines["status"].startswith("FINISHED  in ")
    assert lines["params"] == "n_estimators=200"
    assert lines["metrics"] == "acc=0.875"
    assert lines["captured"] == "params n_estimators; metrics acc (from the cell's variables)"
    assert lines["snapshot"].startswith("environment ")
    assert "history " in lines["snapshot"]
    assert lines["details"] == f"%nbtrack show {run_.info.run_id[:8]}"
    assert "notebook file not found" not in text  # the note is a tag, not a summary line
    html = next(o for o in captured.outputs if "text/html" in o.data).data["text/html"]
    assert "rf-baseline" in html and "FINISHED" in html


# -- the notebook file ----------------------------------------------------------------------------


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("acc = 0.5\nacc", execution_count=3)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "0.5"}, execution_count=3)
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    nbformat.write(nb, path)
    return path


def test_notebook_found_from_jupyter_session(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _notebook(tmp_path / "analysis.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    ok(ip, "%%track -q\nx = 1")
    run_ = last_run()
    assert run_.data.tags["nbtrack.notebook.path"] == str(path.resolve())
    assert "nbtrack.snapshot.note" not in run_.data.tags
    text = load_snapshot(nbtrack.Client(), run_.info.run_id, "notebook")
    nb = nbformat.reads(text, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert nb.cells[1].source == "acc = 0.5\nacc"
    assert nb.cells[1].outputs == []
    assert nb.cells[1].execution_count is None

    ok(ip, "%%track -q --keep-outputs\nx = 1")
    kept = nbformat.reads(
        load_snapshot(nbtrack.Client(), last_run().info.run_id, "notebook"), as_version=4
    )
    assert kept.cells[1].outputs[0]["data"]["text/plain"] == "0.5"
    assert kept.cells[1].execution_count == 3


def test_notebook_path_relative_to_the_server_root(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    path = _notebook(tmp_path / "sub" / "nb.ipynb")
    monkeypatch.chdir(tmp_path / "sub")  # the kernel starts in the notebook's folder
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/nb.ipynb")
    ok(ip, "%%track -q\nx = 1")
    tags = last_run().data.tags
    assert tags["nbtrack.notebook.path"] == str(path.resolve())
    # and the run's source is that notebook, as when the front end names it
    assert (tags["nbtrack.source.name"], tags["nbtrack.source.type"]) == (
        str(path.resolve()), "NOTEBOOK"
    )


def test_notebook_found_from_vs_code(ip: InteractiveShell, tmp_path: Path) -> None:
    path = _notebook(tmp_path / "vscode.ipynb")
    ip.user_ns["__vsc_ipynb_file__"] = str(path)  # VS Code sets it in the kernel's __main__
    try:
        ok(ip, "%%track -q\nx = 1")
    finally:
        del ip.user_ns["__vsc_ipynb_file__"]
    assert last_run().data.tags["nbtrack.notebook.path"] == str(path.resolve())


def test_no_notebook_file_is_a_note_not_a_failure(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q\nx = 1")
    run_ = last_run()
    assert run_.info.status == "FINISHED"
    assert "notebook file not found" in run_.data.tags["nbtrack.snapshot.note"]
    assert "nbtrack.notebook.path" not in run_.data.tags
    assert set(nbtrack.Client().store.run_snapshots(run_.info.run_id)) == {
        "history",
        "environment",
    }


def test_unreadable_notebook_is_a_note_not_a_failure(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{ half saved")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    ok(ip, "%%track -q\nx = 1")
    run_ = last_run()
    assert run_.info.status == "FINISHED"
    assert "could not read notebook" in run_.data.tags["nbtrack.snapshot.note"]


def test_nbtrack_notebook_sets_the_path(ip: InteractiveShell, tmp_path: Path) -> None:
    path = _notebook(tmp_path / "explicit.ipynb")
    result, captured = ok(ip, f"%nbtrack notebook {path}")
    assert str(path) in captured.stdout
    ok(ip, "%%track -q\nx = 1")
    run_ = last_run()
    assert run_.data.tags["nbtrack.notebook.path"] == str(path.resolve())
    assert "notebook" in nbtrack.Client().store.run_snapshots(run_.info.run_id)

    result, _ = run(ip, f"%nbtrack notebook {tmp_path / 'missing.ipynb'}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no notebook file" in str(result.error_in_exec)
    result, _ = run(ip, "%nbtrack notebook")
    assert isinstance(result.error_in_exec, UsageError)


def test_nbtrack_notebook_path_with_spaces(ip: InteractiveShell, tmp_path: Path) -> None:
    path = _notebook(tmp_path / "my notebook.ipynb")
    ok(ip, f"%nbtrack notebook '{path}'")
    ok(ip, "%%track -q\nx = 1")
    tags = last_run().data.tags
    assert tags["nbtrack.notebook.path"] == str(path.resolve())
    # and the run's source is that notebook, as when the front end names it
    assert (tags["nbtrack.source.name"], tags["nbtrack.source.type"]) == (
        str(path.resolve()), "NOTEBOOK"
    )


# -- %nbtrack -------------------------------------------------------------------------------------


def test_nbtrack_usage(ip: InteractiveShell) -> None:
    result, captured = ok(ip, "%nbtrack")
    assert result.result is None
    assert captured.stdout.startswith("usage: %nbtrack SUBCOMMAND")
    for word in ("experiment NAME", "uri PATH", "runs [FILTER]", "show RUN_ID", "notebook PATH"):
        assert word in captured.stdout


def test_nbtrack_experiment(ip: InteractiveShell) -> None:
    result, captured = ok(ip, "%nbtrack experiment churn")
    assert "'churn'" in captured.stdout
    ok(ip, "%%track -q\nacc = 0.5")
    assert len(runs("churn")) == 1
    assert len(runs()) == 1
    result, _ = run(ip, "%nbtrack experiment")
    assert isinstance(result.error_in_exec, UsageError)


def test_nbtrack_uri(ip: InteractiveShell, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    _, captured = ok(ip, f"%nbtrack uri {target}")
    assert "runs go to" in captured.stdout
    ok(ip, "%%track -q --name moved\nacc = 0.5")
    conn = sqlite3.connect(target / "nbtrack.db")
    try:
        assert conn.execute("SELECT run_name FROM runs").fetchall() == [("moved",)]
    finally:
        conn.close()


def test_nbtrack_runs_and_filters(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --name low\nmodel = 'lin'\nacc = 0.25")
    ok(ip, "%%track -q --name high\nmodel = 'rf'\nacc = 0.75")
    result, _ = ok(ip, "%nbtrack runs")
    frame = result.result
    assert isinstance(frame, pd.DataFrame)
    assert set(frame["run_name"]) == {"low", "high"}
    assert {"run_id", "run_name", "status", "start_time", "metrics.acc", "params.model"} <= set(
        frame.columns
    )
    assert not any(c.startswith("tags.") for c in frame.columns)

    result, _ = ok(ip, "%nbtrack runs metrics.acc > 0.5")
    assert list(result.result["run_name"]) == ["high"]
    result, _ = ok(ip, "%nbtrack runs params.model = 'lin'")  # the quotes are kept
    assert list(result.result["run_name"]) == ["low"]
    result, _ = ok(ip, '%nbtrack runs params.model = "rf" OR metrics.acc < 0.3')
    assert set(result.result["run_name"]) == {"low", "high"}


def test_an_empty_runs_table_says_which_experiments_have_runs(ip: InteractiveShell) -> None:
    """After ``%%track --experiment churn`` (for that cell only) the active experiment is
    still Default: the empty table says where the run went."""
    ok(ip, "%%track -q --experiment churn --name first\nacc = 0.5")
    result, captured = ok(ip, "%nbtrack runs")
    assert result.result.empty
    assert "no runs to show in the active experiment 'Default'" in captured.stdout
    assert "'churn' (1 run)" in captured.stdout
    assert "set_experiment" in captured.stdout
    result, captured = ok(ip, "%nbtrack runs metrics.acc > 2")
    assert "no run matches the filter in the active experiment 'Default'" in captured.stdout


@pytest.mark.parametrize(
    "line",
    ["runs metrics.acc >", "runs params.model = 'unterminated", "runs nonsense", "bogus", "show"],
)
def test_nbtrack_usage_errors(ip: InteractiveShell, line: str) -> None:
    result, captured = run(ip, f"%nbtrack {line}")
    assert isinstance(result.error_in_exec, UsageError), repr(result.error_in_exec)
    assert "Traceback" not in captured.stdout


def test_nbtrack_unknown_subcommand_lists_the_known_ones(ip: InteractiveShell) -> None:
    result, _ = run(ip, "%nbtrack bogus")
    assert "unknown %nbtrack subcommand 'bogus'" in str(result.error_in_exec)
    assert "experiment" in str(result.error_in_exec)


def test_nbtrack_show(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --experiment churn --name shown\nn_estimators = 10\nacc = 0.5")
    run_id = last_run().info.run_id
    result, _ = ok(ip, f"%nbtrack show {run_id[:6]}")
    summary = result.result
    assert isinstance(summary, RunSummary)
    assert summary.run.info.run_id == run_id
    assert summary.experiment == "churn"
    assert {"history", "environment"} <= set(summary.snapshots)
    text = repr(summary)
    assert "shown" in text and "n_estimators=10" in text and "acc=0.5" in text

    result, _ = run(ip, "%nbtrack show zzzz")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no run id starts with 'zzzz'" in str(result.error_in_exec)


def test_nbtrack_show_ambiguous_prefix(ip: InteractiveShell) -> None:
    ids = set()
    while True:  # run ids are random hex: 17 runs always share a first character
        ok(ip, "%%track -q --no-snapshot\nx = 1")
        run_id = last_run().info.run_id
        if any(i[0] == run_id[0] for i in ids):
            break
        ids.add(run_id)
    result, _ = run(ip, f"%nbtrack show {run_id[0]}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "matches several runs" in str(result.error_in_exec)


def test_nbtrack_status(ip: InteractiveShell) -> None:
    ok(ip, "%nbtrack experiment churn")
    _, captured = ok(ip, "%nbtrack status")
    assert "experiment: churn" in captured.stdout
    assert "active run: -" in captured.stdout
    assert "notebook:   not found" in captured.stdout


def test_nbtrack_status_tells_where_runs_really_go(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_EXPERIMENT_NAME", "from-env")
    _, captured = ok(ip, "%nbtrack status")
    assert "experiment: from-env (NBTRACK_EXPERIMENT_NAME)" in captured.stdout
    ok(ip, "%%track -q\nx = 1")
    assert len(runs("from-env")) == 1
    ok(ip, "%nbtrack experiment churn")  # set_experiment wins over the environment, as in MLflow
    _, captured = ok(ip, "%nbtrack status")
    assert "experiment: churn\n" in captured.stdout
    ok(ip, "%%track -q\nx = 2")
    assert len(runs("churn")) == 1
    fluent._experiment = None
    monkeypatch.delenv("NBTRACK_EXPERIMENT_NAME")
    monkeypatch.setenv("NBTRACK_EXPERIMENT_ID", "999")
    _, captured = ok(ip, "%nbtrack status")
    assert "NBTRACK_EXPERIMENT_ID=999 names no experiment" in captured.stdout
    ok(ip, "trk_r = nbtrack.start_run(experiment_id='0', run_name='active-one')")
    _, captured = ok(ip, "%nbtrack status")
    assert "active run: active-one (" in captured.stdout
    nbtrack.end_run()


# -- a real kernel --------------------------------------------------------------------------------


def test_end_to_end_in_a_kernel(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbtrack"),
        nbformat.v4.new_code_cell(
            "%%track --experiment e2e --name good --tags origin=kernel\n"
            "import numpy as np\n"
            "n_estimators = 50\n"
            "acc = float(np.mean([1, 0, 1, 1]))\n"
            "acc * 100"
        ),
        nbformat.v4.new_code_cell(
            "%%track --experiment e2e --name bad\nlr = 0.1\nraise RuntimeError('in the kernel')",
            metadata={"tags": ["raises-exception"]},
        ),
        nbformat.v4.new_code_cell("print(n_estimators, acc)"),
    ]
    notebook = tmp_path / "e2e.ipynb"
    nbformat.write(nb, notebook)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    good_cell, bad_cell, last_cell = nb.cells[1], nb.cells[2], nb.cells[3]
    results = [o for o in good_cell.outputs if o.output_type == "execute_result"]
    assert results[0]["data"]["text/plain"] == "75.0"
    assert any("text/html" in o.get("data", {}) for o in good_cell.outputs)  # the summary
    assert any(o.output_type == "error" and o.ename == "RuntimeError" for o in bad_cell.outputs)
    assert last_cell.outputs[0]["text"] == "50 0.75\n"

    nbtrack.set_tracking_uri(store_dir)
    frame = runs("e2e")
    by_name = {r["run_name"]: r for _, r in frame.iterrows()}
    assert set(by_name) == {"good", "bad"}
    good, bad = by_name["good"], by_name["bad"]
    assert good["status"] == "FINISHED"
    assert good["params.n_estimators"] == "50"
    assert good["metrics.acc"] == 0.75
    assert good["tags.origin"] == "kernel"
    assert bad["status"] == "FAILED"
    assert bad["params.lr"] == "0.1"
    assert "RuntimeError: in the kernel" in bad["tags.nbtrack.error"]
    store = nbtrack.Client().store
    assert {"history", "environment"} <= set(store.run_snapshots(good["run_id"]))
    history = load_snapshot(nbtrack.Client(), good["run_id"], "history")
    assert [c["source"].splitlines()[0] for c in history["cells"]][-2:] == [
        "%load_ext nbtrack",
        "%%track --experiment e2e --name good --tags origin=kernel",
    ]


def test_await_and_a_syntax_error_in_a_kernel(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel, an event loop is already running: a cell that awaits must run on it."""
    from nbclient import NotebookClient

    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbtrack\nimport asyncio"),
        nbformat.v4.new_code_cell("trk_task = asyncio.ensure_future(asyncio.sleep(0, 'kernel'))"),
        nbformat.v4.new_code_cell(
            "%%track --experiment k --name awaits\n"
            "lr = 0.1\n"
            "trk_from_task = await trk_task  # made on the kernel's loop, by another cell\n"
            "acc = 0.75\n"
            "(await asyncio.sleep(0.01, acc)) * 100"
        ),
        nbformat.v4.new_code_cell(
            "%%track --experiment k --name never\nx = (", metadata={"tags": ["raises-exception"]}
        ),
        nbformat.v4.new_code_cell("print(trk_from_task)"),
    ]
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    awaits, bad, last = nb.cells[2], nb.cells[3], nb.cells[4]
    results = [o for o in awaits.outputs if o.output_type == "execute_result"]
    assert results[0]["data"]["text/plain"] == "75.0"
    (error,) = [o for o in bad.outputs if o.output_type == "error"]
    assert error.ename == "SyntaxError"
    assert len(error.traceback) == 1 and "tracked_cell" not in error.traceback[0]  # short
    assert last.outputs[0]["text"] == "kernel\n"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4, 5]

    nbtrack.set_tracking_uri(store_dir)
    frame = runs("k")
    assert list(frame["run_name"]) == ["awaits"]  # the cell with a SyntaxError made no run
    assert frame["status"][0] == "FINISHED"
    assert frame["params.lr"][0] == "0.1" and frame["metrics.acc"][0] == 0.75


def test_nbtrack_export_and_diff_subcommands(ip: InteractiveShell, tmp_path: Path) -> None:
    ok(ip, "%%track --name a\nlr = 0.1\nacc = 0.5")
    first = last_run().info.run_id
    ok(ip, "%%track --name b\nlr = 0.2\nacc = 0.7")
    second = last_run().info.run_id
    out = tmp_path / "exported.ipynb"
    ok(ip, f"%nbtrack export {first[:8]} {out}")
    assert out.exists() and (tmp_path / "requirements.txt").exists()
    result = ip.run_cell(f"%nbtrack diff {first[:8]} {second[:8]}", store_history=True)
    assert result.error_in_exec is None
    assert result.result.params_changed == {"lr": ("0.1", "0.2")}
    for bad in (
        "%nbtrack export",
        f"%nbtrack export {first} x.ipynb source",
        f"%nbtrack diff {first}",
        "%nbtrack diff zzzz yyyy",
    ):
        result = ip.run_cell(bad, store_history=True)
        assert isinstance(result.error_in_exec, UsageError), bad
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a file where the export's folder should be
    result = ip.run_cell(f"%nbtrack export {first[:8]} {blocked}/x.ipynb", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    assert f"cannot write {blocked}/x.ipynb" in str(result.error_in_exec)


def test_diff_of_two_cells_of_one_kernel_compares_the_run_cells(ip: InteractiveShell) -> None:
    ok(ip, "%%track --name a\nlr = 0.1\nacc = 0.5")
    first = last_run().info.run_id
    ok(ip, "%%track --name b\nlr = 0.2\nacc = 0.7")
    second = last_run().info.run_id
    d = nbtrack.diff_runs(first, second)
    (changed,) = d.cells_changed
    assert "--- a (run cell)" in changed and "+++ b (run cell)" in changed
    assert "-lr = 0.1" in changed and "+lr = 0.2" in changed
    # b's history also holds a's cell, which ran before it
    assert d.cells_added == ["%%track --name a\nlr = 0.1\nacc = 0.5"]
    assert not d.cells_removed


def test_non_numeric_literals_with_metric_like_names_are_params(ip: InteractiveShell) -> None:
    ok(ip, "%%track\nuse_focal_loss = True\nprecision = 'bf16'\nacc = 0.5")
    run = last_run()
    assert run.data.params == {"use_focal_loss": "True", "precision": "bf16"}
    assert run.data.metrics == {"acc": 0.5}


def test_a_cell_with_ipython_syntax_still_gives_its_params(ip: InteractiveShell) -> None:
    """A shell escape or a line magic in the cell (``%matplotlib inline`` at its top) does not
    hide its literal assignments."""
    ok(ip, "%%track -q\n!true\nlr = 0.25\nfiles = !echo a\n%time steps = 3\nloss = 0.5")
    run = last_run()
    assert run.data.params == {"lr": "0.25"}  # files is a command's output, steps a magic's
    assert run.data.metrics == {"loss": 0.5}


def test_a_bad_start_is_a_usage_error_and_the_cell_does_not_run(ip: InteractiveShell) -> None:
    result, _ = run(ip, "%%track --name " + "x" * 300 + "\nran_anyway = 1")
    assert isinstance(result.error_in_exec, UsageError)
    assert "the cell was not run" in str(result.error_in_exec)
    assert "ran_anyway" not in ip.user_ns
    nbtrack.delete_experiment(nbtrack.create_experiment("old"))
    result, _ = run(ip, "%%track --experiment old\nran_anyway = 1")
    assert isinstance(result.error_in_exec, UsageError) and "deleted" in str(result.error_in_exec)
    assert "ran_anyway" not in ip.user_ns


@pytest.mark.parametrize("name", ["''", '""', "'  '"])
def test_an_empty_experiment_name_is_a_usage_error(ip: InteractiveShell, name: str) -> None:
    result, _ = run(ip, f"%%track --experiment {name}\nran_anyway = 1")
    error = result.error_in_exec
    assert isinstance(error, UsageError)
    assert "experiment name must be a non-empty string" in str(error)
    assert "the cell was not run" in str(error)
    assert "ran_anyway" not in ip.user_ns
    assert nbtrack.last_active_run() is None and runs().empty


def test_quiet_still_warns_about_notes(ip: InteractiveShell) -> None:
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="no such variable"):
        ok(ip, "%%track --quiet --metrics missing_metric\nx = 1")


@pytest.mark.filterwarnings("ignore:To exit:UserWarning")  # IPython's own hint on sys.exit
def test_sys_exit_zero_ends_the_run_finished(ip: InteractiveShell) -> None:
    run(ip, "%%track\nimport sys\nsys.exit(0)")
    assert last_run().info.status == "FINISHED"
    run(ip, "%%track\nimport sys\nsys.exit(3)")
    assert last_run().info.status == "FAILED"


def test_nbtrack_compare(ip: InteractiveShell) -> None:
    from nbtrack_widgets import Comparison

    ok(ip, "%nbtrack experiment cmp")
    ok(ip, "%%track -q\nlr = 0.1\nacc = 0.5")
    ok(ip, "%%track -q\nlr = 0.2\nacc = 0.7")
    result, _ = ok(ip, "%nbtrack compare")
    assert isinstance(result.result, Comparison) and len(result.result.table.rows) == 2
    result, _ = ok(ip, "%nbtrack compare cmp metrics.acc > 0.6")
    assert [r["params.lr"] for r in result.result.table.rows] == ["0.2"]
    result, _ = ok(ip, "%nbtrack compare metrics.acc < 0.6")
    assert [r["params.lr"] for r in result.result.table.rows] == ["0.1"]


def test_nbtrack_compare_shows_a_bad_filter_as_a_message(ip: InteractiveShell) -> None:
    from nbtrack_widgets import Comparison

    ok(ip, "%nbtrack experiment cmp")
    ok(ip, "%%track -q\nlr = 0.1\nacc = 0.5")
    for line, experiment, text in [
        ("cmp metrics.acc >", "cmp", "metrics.acc >"),  # an experiment, then a bad filter
        ("metrics.acc >", "cmp", "metrics.acc >"),  # a bad filter of the active experiment
        ("params.lr = 0.1", "cmp", "params.lr = 0.1"),  # a param compares with strings
    ]:
        result, captured = ok(ip, f"%nbtrack compare {line}")
        view = result.result
        assert isinstance(view, Comparison)
        assert view.table.experiment == experiment and view.table.filter.value == text
        assert view.table.message.value and view.table.rows == []
        assert "Traceback" not in captured.stdout + captured.stderr
        assert view.table.message.value in view._repr_mimebundle_()["text/html"]


def test_nbtrack_compare_names_an_unknown_experiment(ip: InteractiveShell) -> None:
    ok(ip, "%nbtrack experiment cmp")
    for line in ("nosuchexp", "nosuchexp metrics.acc > 0.5", "nosuchexp metrics.acc >"):
        result, _ = run(ip, f"%nbtrack compare {line}")
        error = result.error_in_exec
        assert isinstance(error, UsageError), line
        assert "no experiment named 'nosuchexp'" in str(error)
        assert "'cmp'" in str(error) and "'Default'" in str(error)  # the known ones
        assert "quotes" in str(error)


def test_nbtrack_compare_an_experiment_named_with_spaces(ip: InteractiveShell) -> None:
    ok(ip, "%%track -q --experiment 'my exp'\nlr = 0.1\nacc = 0.5")
    ok(ip, "%%track -q --experiment 'my exp'\nlr = 0.2\nacc = 0.7")
    result, _ = ok(ip, "%nbtrack compare 'my exp'")
    assert result.result.table.experiment == "my exp" and len(result.result.table.rows) == 2
    result, _ = ok(ip, "%nbtrack compare \"my exp\" params.lr = '0.2'")  # the filter as typed
    assert [r["params.lr"] for r in result.result.table.rows] == ["0.2"]
    result, _ = run(ip, "%nbtrack compare my exp")  # unquoted: the first word, unknown
    assert isinstance(result.error_in_exec, UsageError)
    assert "no experiment named 'my'" in str(result.error_in_exec)
    assert "'my exp'" in str(result.error_in_exec)
    result, _ = run(ip, "%nbtrack compare 'my exp")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no closing quotation" in str(result.error_in_exec)


def test_nbtrack_compare_says_how_to_install_the_widgets(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nbtrack_widgets", None)  # as if not installed
    result, _ = run(ip, "%nbtrack compare")
    assert isinstance(result.error_in_exec, UsageError)
    assert "pip install nbtrack-widgets" in str(result.error_in_exec)
