"""The fluent tracking API, as an MLflow user writes it."""

from __future__ import annotations

import base64
import math
import pickle
import sqlite3
import subprocess
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from dependencies import needs

import nbtrack as mlflow
from nbtrack import Client, RunStatus
from nbtrack.entities import FileInfo
from nbtrack.exceptions import (
    ExperimentNotFoundError,
    InvalidInputError,
    NbtrackWarning,
    RunNotFoundError,
    RunStateError,
)
from nbtrack.query.sql import MAX_JOINS
from nbtrack.tracking import context, fluent


def test_mlflow_style_run_round_trip(store_dir: Path) -> None:
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="rf", tags={"team": "ml"}, description="baseline") as run:
        mlflow.log_params({"n_estimators": 200, "max_depth": 8})
        mlflow.log_param("criterion", "gini")
        for step in range(10):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.91, "f1": 0.88})
        mlflow.set_tags({"stage": "dev"})
        assert mlflow.active_run() is not None
        assert mlflow.active_run().info.run_id == run.info.run_id
    assert mlflow.active_run() is None

    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == RunStatus.FINISHED
    assert got.info.run_name == "rf"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.info.experiment_id == mlflow.get_experiment_by_name("churn").experiment_id
    assert got.data.params == {"n_estimators": "200", "max_depth": "8", "criterion": "gini"}
    assert got.data.metrics == {"loss": 0.1, "acc": 0.91, "f1": 0.88}
    assert got.data.tags["team"] == "ml"
    assert got.data.tags["stage"] == "dev"
    assert got.data.tags["nbtrack.note.content"] == "baseline"
    assert got.data.tags["nbtrack.runName"] == "rf"
    assert got.data.tags["nbtrack.user"]
    history = mlflow.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(10))
    assert history[3].value == pytest.approx(0.25)
    assert mlflow.last_active_run().info.run_id == run.info.run_id


def test_run_ids_are_mlflow_shaped_and_differ_in_their_first_characters(
    store_dir: Path,
) -> None:
    """Ids are random UUIDs in MLflow's form, so the short prefix `nbtrack runs` prints names
    one run even among runs started in the same second."""
    import uuid

    ids = [Client().create_run("0").info.run_id for _ in range(20)]
    for run_id in ids:
        assert len(run_id) == 32 and run_id == uuid.UUID(run_id).hex
    assert len({run_id[:8] for run_id in ids}) == len(ids)


def test_reads_see_everything_logged_before_them(store_dir: Path) -> None:
    run = mlflow.start_run()
    mlflow.log_metric("m", 1.0)
    mlflow.log_param("p", "x")
    mlflow.set_tag("t", "y")
    got = mlflow.get_run(run.info.run_id)  # no flush, no end_run: still visible
    assert got.data.metrics == {"m": 1.0}
    assert got.data.params == {"p": "x"}
    assert got.data.tags["t"] == "y"
    df = mlflow.search_runs()
    assert df.loc[0, "metrics.m"] == 1.0
    mlflow.end_run()


def test_search_times_are_utc_datetimes_and_not_yet_ended_is_nat(store_dir: Path) -> None:
    import pandas as pd

    with mlflow.start_run() as done:
        pass
    running = mlflow.start_run()
    df = mlflow.search_runs(order_by=["attributes.start_time"]).set_index("run_id")
    mlflow.end_run()
    for col in ("start_time", "end_time"):
        assert str(df[col].dtype) == "datetime64[us, UTC]"  # as MLflow's
    finished = mlflow.get_run(done.info.run_id).info
    for col, ms in (("start_time", finished.start_time), ("end_time", finished.end_time)):
        assert df.loc[done.info.run_id, col] == pd.Timestamp(ms, unit="ms", tz="UTC")
    assert pd.isna(df.loc[running.info.run_id, "end_time"])


def test_search_takes_keys_in_any_script_and_sorts_nan_before_missing(store_dir: Path) -> None:
    """As MLflow: ``params.métrica`` needs no backquotes; ordering on a metric gives numbers,
    then NaN, then runs without it, in both directions."""
    ids = {}
    for name, loss in [("a", 0.5), ("nan", math.nan), ("none", None), ("b", 0.1)]:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("métrica", "sí" if name in ("a", "b") else "no")
            if loss is not None:
                mlflow.log_metric("損失", loss)
        ids[name] = run.info.run_id
    found = mlflow.search_runs(filter_string="params.métrica = 'sí' AND metrics.損失 < 1")
    assert set(found["run_name"]) == {"a", "b"}
    for order, numbers in [("ASC", ["b", "a"]), ("DESC", ["a", "b"])]:
        frame = mlflow.search_runs(order_by=[f"metrics.損失 {order}"])
        assert list(frame["run_name"]) == [*numbers, "nan", "none"]


def test_artifact_uri_filters_see_the_folder_runs_show(store_dir: Path, tmp_path: Path) -> None:
    """A run under the store's artifacts/ keeps its folder relative in its row; filters and
    order_by compare the absolute folder that runs and frames show, as MLflow's do."""
    elsewhere = mlflow.create_experiment("elsewhere", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(run_name="here"):
        pass
    with mlflow.start_run(run_name="there", experiment_id=elsewhere):
        pass
    frame = mlflow.search_runs(search_all_experiments=True).set_index("run_name")
    for name in ("here", "there"):
        uri = frame.loc[name, "artifact_uri"]
        found = mlflow.search_runs(
            filter_string=f"attributes.artifact_uri = '{uri}'", search_all_experiments=True
        )
        assert list(found["run_name"]) == [name]
    assert frame.loc["here", "artifact_uri"].startswith(str(store_dir))
    pattern = f"{store_dir}%"
    found = mlflow.search_runs(
        filter_string=f"artifact_uri LIKE '{pattern}'", search_all_experiments=True
    )
    assert list(found["run_name"]) == ["here"]
    ordered = mlflow.search_runs(search_all_experiments=True, order_by=["artifact_uri DESC"])
    assert list(ordered["artifact_uri"]) == sorted(frame["artifact_uri"], reverse=True)


def test_search_metric_columns_are_exact_floats_with_nan_where_missing(store_dir: Path) -> None:
    values = {
        "tiny": 5e-324,
        "odd": 7.359616053730589e-299,
        "third": 1 / 3,
        "big": 1.7976931348623157e308,
    }
    ids = []
    for i, (key, value) in enumerate(values.items()):
        with mlflow.start_run() as run:
            mlflow.log_metrics({key: value, "shared": float(i), "inf": -math.inf})
            if i == 0:
                mlflow.log_metric("nan", math.nan)
        ids.append(run.info.run_id)
    df = mlflow.search_runs(order_by=["metrics.shared"]).set_index("run_id")
    assert list(df.index) == ids
    for run_id, (key, value) in zip(ids, values.items(), strict=True):
        row = df.loc[run_id]
        assert row[f"metrics.{key}"] == value  # exact: not rounded to 15 digits
        others = [k for k in values if k != key]
        assert all(math.isnan(row[f"metrics.{k}"]) for k in others)  # missing: NaN
        assert row["metrics.inf"] == -math.inf
    assert math.isnan(df.loc[ids[0], "metrics.nan"])
    assert list(df["metrics.shared"]) == [0.0, 1.0, 2.0, 3.0]
    assert all(str(df[c].dtype) == "float64" for c in df.columns if c.startswith("metrics."))


def _commit_between_reads(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path, run_id: str
) -> list[int]:
    """Make another connection (as another process would) rename the run and change its
    param in one transaction, just before the store's first read of runs' children."""
    store = fluent._client().store
    read_children = store.run_children
    commits: list[int] = []

    def run_children(run_ids: Any, table: str) -> Any:
        if not commits:
            with sqlite3.connect(store_dir / "nbtrack.db") as other:
                other.execute("UPDATE runs SET run_name = 'renamed' WHERE run_id = ?", (run_id,))
                other.execute("UPDATE params SET value = 'new' WHERE run_id = ?", (run_id,))
            other.close()
            commits.append(1)
        return read_children(run_ids, table)

    monkeypatch.setattr(store, "run_children", run_children)
    return commits


@pytest.mark.parametrize("read", ["get_run", "search_runs", "search_runs_list", "client_search"])
def test_a_read_sees_one_state_of_the_store_even_when_another_process_commits_meanwhile(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("p", "old")
    run_id = run.info.run_id
    commits = _commit_between_reads(monkeypatch, store_dir, run_id)
    if read == "search_runs":
        df = mlflow.search_runs()
        name, param = df["run_name"][0], df["params.p"][0]
    else:
        if read == "get_run":
            found = mlflow.get_run(run_id)
        elif read == "search_runs_list":
            [found] = mlflow.search_runs(output_format="list")
        else:
            [found] = Client().search_runs([run.info.experiment_id])
        name, param = found.info.run_name, found.data.params["p"]
    assert commits  # the other connection did commit in the middle of the read
    assert (name, param) == ("first", "old")  # not half old, half new
    assert mlflow.get_run(run_id).data.params["p"] == "new"  # the next read sees the commit


def test_latest_metric_is_highest_step_not_last_logged(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 5.0, step=10)
        mlflow.log_metric("m", 1.0, step=2)
        mlflow.flush()
        mlflow.log_metric("m", 2.0, step=3)  # a later batch, still a lower step
    assert mlflow.get_run(run.info.run_id).data.metrics["m"] == 5.0
    assert [m.step for m in mlflow.get_metric_history(run.info.run_id, "m")] == [2, 3, 10]


def test_metric_values_nan_inf_numpy_and_tensors(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("pinf", math.inf)
        mlflow.log_metric("ninf", -math.inf)
        mlflow.log_metric("int", 3)
        mlflow.log_metric("np32", np.float32(0.5))
        mlflow.log_metric("npint", np.int64(7))
        mlflow.log_metric("zero_d", np.array(2.5))
        mlflow.log_metric("bool", np.bool_(True))
    m = mlflow.get_run(run.info.run_id).data.metrics
    assert math.isnan(m["nan"])
    assert m["pinf"] == math.inf and m["ninf"] == -math.inf
    assert m["int"] == 3.0 and m["np32"] == 0.5 and m["npint"] == 7.0
    assert m["zero_d"] == 2.5 and m["bool"] == 1.0
    assert math.isnan(mlflow.get_metric_history(run.info.run_id, "nan")[0].value)


def test_torch_scalar_tensor_is_a_metric(store_dir: Path) -> None:
    torch = needs("torch")  # a test dependency where its CPU build installs (3.11)
    with mlflow.start_run() as run:
        mlflow.log_metric("t", torch.tensor(0.25))
        with pytest.raises(TypeError, match="'t2'"):
            mlflow.log_metric("t2", torch.tensor([1.0, 2.0]))
    assert mlflow.get_run(run.info.run_id).data.metrics == {"t": 0.25}


@pytest.mark.parametrize("bad", ["0.5", None, [1.0], {"a": 1}, 1 + 2j, np.array([1.0, 2.0])])
def test_non_numeric_metric_is_a_type_error_naming_the_key(store_dir: Path, bad: object) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("ok", 1.0)
        with pytest.raises(TypeError, match="'val_loss'"):
            mlflow.log_metric("val_loss", bad)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"ok": 1.0}


def test_param_relog_same_value_is_fine_different_value_names_both(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"lr": "0.01", "batch": 32})
        with pytest.raises(mlflow.exceptions.ParamConflictError, match=r"'0\.01'.*'0\.1'"):
            mlflow.log_param("lr", 0.1)
        with pytest.raises(ValueError):  # also a ValueError, as MLflow users catch
            mlflow.log_params({"new": 1, "lr": 0.5})
    got = mlflow.get_run(run.info.run_id).data.params
    assert got == {"lr": "0.01", "batch": "32"}  # the failed batch wrote nothing, not even "new"


def test_start_run_while_active_ends_the_previous_with_a_warning(store_dir: Path) -> None:
    first = mlflow.start_run(run_name="first")
    with pytest.warns(NbtrackWarning, match="first"):
        second = mlflow.start_run(run_name="second")
    assert mlflow.get_run(first.info.run_id).info.status == RunStatus.FINISHED
    assert mlflow.active_run().info.run_id == second.info.run_id
    mlflow.end_run()


def test_nested_runs(store_dir: Path) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("x", 1)
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    got = mlflow.get_run(child.info.run_id)
    assert got.data.tags["nbtrack.parentRunId"] == parent.info.run_id
    df = mlflow.search_runs(filter_string=f"tags.nbtrack.parentRunId = '{parent.info.run_id}'")
    assert list(df.run_name) == ["child"]


def test_exception_marks_failed_with_traceback_interrupt_marks_killed(store_dir: Path) -> None:
    with pytest.raises(ZeroDivisionError), mlflow.start_run() as failed:
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), mlflow.start_run() as killed:
        raise KeyboardInterrupt
    f = mlflow.get_run(failed.info.run_id)
    assert f.info.status == "FAILED"
    assert "ZeroDivisionError" in f.data.tags["nbtrack.error"]
    assert "nbtrack.killedReason" not in f.data.tags
    k = mlflow.get_run(killed.info.run_id)
    assert k.info.status == "KILLED"
    assert k.data.tags["nbtrack.killedReason"] == "interrupted (KeyboardInterrupt)"
    assert "nbtrack.error" not in k.data.tags


def test_a_cancelled_task_s_run_is_killed(store_dir: Path) -> None:
    import asyncio

    async def train() -> None:
        with mlflow.start_run(run_name="cancelled"):
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(train())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    run = mlflow.last_active_run()
    assert run is not None and run.info.run_name == "cancelled"
    assert run.info.status == "KILLED"
    assert run.data.tags["nbtrack.killedReason"] == "interrupted (CancelledError)"
    assert "nbtrack.error" not in run.data.tags


def test_resume_run_by_id(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1, step=0)
    with mlflow.start_run(run_id=run.info.run_id):
        assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("m", 2, step=1)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics["m"] == 2
    with pytest.raises(RunNotFoundError):
        mlflow.start_run(run_id="0" * 32)


def test_the_run_name_tag_renames_the_run(store_dir: Path) -> None:
    """As in MLflow, setting the run-name tag renames the run, by every path, within the
    run-name limit."""
    client = mlflow.Client()
    with mlflow.start_run(run_name="orig") as run:
        mlflow.set_tag("nbtrack.runName", "by-fluent")
        assert mlflow.get_run(run.info.run_id).info.run_name == "by-fluent"
    run_id = run.info.run_id
    client.set_tags(run_id, {"nbtrack.runName": "by-set-tags", "other": "1"})
    assert client.get_run(run_id).info.run_name == "by-set-tags"
    client.log_batch(run_id, tags=[mlflow.RunTag("nbtrack.runName", "by-batch")])
    got = client.get_run(run_id)
    assert got.info.run_name == got.data.tags["nbtrack.runName"] == "by-batch"
    assert list(mlflow.search_runs(filter_string="run_name = 'by-batch'")["run_id"]) == [run_id]
    with pytest.raises(InvalidInputError, match="at most 250"):
        client.set_tag(run_id, "nbtrack.runName", "x" * 251)
    with pytest.raises(InvalidInputError, match="at most 250"):
        client.create_run("0", tags={"nbtrack.runName": "x" * 251})
    created = client.create_run("0", tags={"nbtrack.runName": "from-tags"})
    assert created.info.run_name == "from-tags"
    assert client.get_run(run_id).info.run_name == "by-batch"  # the bad ones changed nothing


def test_log_without_active_run_starts_one(store_dir: Path) -> None:
    mlflow.log_metric("auto", 1.0)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"auto": 1.0}


def test_delete_and_restore_run(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        pass
    mlflow.delete_run(run.info.run_id)
    assert mlflow.search_runs().empty
    assert len(mlflow.search_runs(run_view_type=mlflow.ViewType.DELETED_ONLY)) == 1
    with pytest.raises(RunStateError, match="restore_run"):
        Client().log_metric(run.info.run_id, "m", 1.0)
    mlflow.restore_run(run.info.run_id)
    assert len(mlflow.search_runs()) == 1
    Client().log_metric(run.info.run_id, "m", 1.0)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_deleting_the_active_run_is_refused(store_dir: Path) -> None:
    run = mlflow.start_run()
    with pytest.raises(RunStateError, match="active"):
        mlflow.delete_run(run.info.run_id)
    mlflow.end_run()


def test_delete_tag(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.set_tag("a", "1")
        mlflow.delete_tag("a")
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="no tag 'b'"):
            mlflow.delete_tag("b")
    assert "a" not in mlflow.get_run(run.info.run_id).data.tags


def test_the_tags_of_a_run_s_origin_live_in_its_row(store_dir: Path) -> None:
    """The reserved tags of where a run came from are columns of its row, not rows of
    ``tags``: a run, a search's frame, filters and order_by all show them as tags, and they
    cannot be deleted (the run name is changed by renaming)."""
    from nbtrack.store.schema import COLUMN_TAGS

    with (
        mlflow.start_run(run_name="parent") as parent,
        mlflow.start_run(run_name="child", nested=True) as child,
    ):
        mlflow.set_tag("team", "ml")
    client = Client()
    store = client.store
    rows = {key for (key,) in store.query("SELECT key FROM tags WHERE run_id = ?",
                                           (child.info.run_id,))}
    assert "team" in rows and not rows & set(COLUMN_TAGS)
    tags = client.get_run(child.info.run_id).data.tags
    assert tags["nbtrack.runName"] == "child"
    assert tags["nbtrack.parentRunId"] == parent.info.run_id
    assert tags["nbtrack.source.type"] in ("SCRIPT", "INTERACTIVE", "NOTEBOOK")
    assert {"nbtrack.user", "nbtrack.source.name", "team"} <= set(tags)
    assert "nbtrack.parentRunId" not in client.get_run(parent.info.run_id).data.tags
    frame = mlflow.search_runs(order_by=["tags.nbtrack.runName"])
    assert list(frame["tags.nbtrack.runName"]) == ["child", "parent"]
    assert list(frame["tags.nbtrack.parentRunId"].isna()) == [False, True]
    assert list(frame["tags.team"].isna()) == [False, True]
    assert set(frame["tags.nbtrack.user"]) == {tags["nbtrack.user"]}
    found = mlflow.search_runs(filter_string="tags.mlflow.runName = 'parent'")
    assert list(found.run_id) == [parent.info.run_id]
    found = mlflow.search_runs(filter_string="tags.nbtrack.parentRunId IS NULL")
    assert list(found.run_id) == [parent.info.run_id]
    for key in COLUMN_TAGS:
        with pytest.raises(mlflow.exceptions.ReservedTagError, match="cannot be deleted"):
            client.delete_tag(child.info.run_id, key)
    with pytest.raises(mlflow.exceptions.ReservedTagError, match="rename the run"):
        client.delete_tag(child.info.run_id, "nbtrack.runName")
    client.set_tag(child.info.run_id, "mlflow.runName", "renamed")
    assert store.query("SELECT count(*) FROM tags WHERE key = 'nbtrack.runName'") == [(0,)]
    assert client.get_run(child.info.run_id).data.tags["mlflow.runName"] == "renamed"
    assert client.get_run(child.info.run_id).data.tags == {**tags, "nbtrack.runName": "renamed"}


def test_origin_tags_under_mlflow_s_names(store_dir: Path) -> None:
    """``start_run(tags={"mlflow.user": ...})`` sets the run's user, as in MLflow; deleting an
    origin tag by MLflow's name is refused as by nbtrack's; the description is deletable."""
    given = {"mlflow.user": "alice", "mlflow.source.name": "train.py", "mlflow.source.type": "JOB"}
    with mlflow.start_run(tags=given, description="first try") as run:
        pass
    client = Client()
    got = client.get_run(run.info.run_id)
    assert got.info.user_id == "alice"
    assert {key: got.data.tags[key] for key in given} == given
    assert got.data.tags["nbtrack.source.type"] == "JOB"
    found = mlflow.search_runs(filter_string="attributes.user_id = 'alice'")
    assert list(found.run_id) == [run.info.run_id]
    assert client.store.query("SELECT count(*) FROM tags WHERE key LIKE 'mlflow.%'") == [(0,)]
    for key in ("mlflow.user", "mlflow.source.name", "mlflow.runName"):
        with pytest.raises(mlflow.exceptions.ReservedTagError, match="cannot be deleted"):
            client.delete_tag(run.info.run_id, key)
    with pytest.raises(mlflow.exceptions.ReservedTagError, match="rename the run"):
        client.delete_tag(run.info.run_id, "mlflow.runName")
    client.delete_tag(run.info.run_id, "mlflow.note.content")
    assert "mlflow.note.content" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(mlflow.exceptions.InvalidInputError, match=r"has no tag 'mlflow\.note"):
        client.delete_tag(run.info.run_id, "mlflow.note.content")
    assert client.get_run(run.info.run_id).info.user_id == "alice"  # nothing else changed


def test_search_frame_has_mlflow_s_tag_columns(store_dir: Path) -> None:
    """MLflow code reads ``tags.mlflow.runName`` and the like from the frame: each holds the tag
    of that name a user set, else nbtrack's own, the value a filter on it compares."""
    import pandas as pd

    with (
        mlflow.start_run(run_name="parent", description="about it") as parent,
        mlflow.start_run(run_name="child", nested=True) as child,
    ):
        mlflow.set_tag("mlflow.source.name", "given.py")  # a user's own, kept as a tag
    frame = mlflow.search_runs().set_index("run_name")
    assert frame.loc["child", "tags.mlflow.runName"] == "child"
    assert frame.loc["child", "tags.mlflow.parentRunId"] == parent.info.run_id
    assert pd.isna(frame.loc["parent", "tags.mlflow.parentRunId"])
    assert frame.loc["parent", "tags.mlflow.note.content"] == "about it"
    assert list(frame["tags.mlflow.user"]) == list(frame["tags.nbtrack.user"])
    names = frame["tags.mlflow.source.name"]
    assert names["child"] == "given.py" != frame.loc["child", "tags.nbtrack.source.name"]
    assert names["parent"] == frame.loc["parent", "tags.nbtrack.source.name"]
    found = mlflow.search_runs(filter_string="tags.mlflow.source.name = 'given.py'")
    assert list(found.run_id) == [child.info.run_id]
    frame.loc["child", "tags.mlflow.runName"] = "edited"  # columns are separate arrays
    assert frame.loc["child", "tags.nbtrack.runName"] == "child"


def test_experiments(store_dir: Path) -> None:
    exp = mlflow.set_experiment("a")
    assert exp.name == "a" and exp.experiment_id != "0"
    assert mlflow.set_experiment("a").experiment_id == exp.experiment_id
    b = mlflow.create_experiment("b", tags={"k": "v"})
    assert mlflow.get_experiment(b).tags == {"k": "v"}
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="already exists"):
        mlflow.create_experiment("b")
    names = sorted(e.name for e in mlflow.search_experiments())
    assert names == ["Default", "a", "b"]
    assert [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'b%'")] == ["b"]
    mlflow.delete_experiment(b)
    assert sorted(e.name for e in mlflow.search_experiments()) == ["Default", "a"]
    with pytest.raises(RunStateError, match="deleted"):
        mlflow.set_experiment("b")
    with pytest.raises(ExperimentNotFoundError):
        mlflow.get_experiment("999")
    with pytest.raises(mlflow.exceptions.InvalidInputError):
        mlflow.set_experiment()


def test_runs_land_in_the_active_experiment(store_dir: Path) -> None:
    mlflow.set_experiment("x")
    with mlflow.start_run():
        pass
    mlflow.set_experiment("y")
    with mlflow.start_run():
        pass
    assert len(mlflow.search_runs(experiment_names=["x"])) == 1
    assert len(mlflow.search_runs(experiment_names=["x", "y"])) == 2
    assert len(mlflow.search_runs()) == 1  # the active experiment only, as MLflow
    assert len(mlflow.search_runs(search_all_experiments=True)) == 2


def test_artifacts(store_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "model.txt"
    src.write_text("weights")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2")
    (folder / "sub" / "b.csv").write_text("3,4")
    with mlflow.start_run() as run:
        mlflow.log_artifact(src)
        mlflow.log_artifact(src, artifact_path="models")
        mlflow.log_artifacts(folder, artifact_path="plots")
        mlflow.log_text("hello", "notes/readme.md")
        mlflow.log_dict({"a": [1, 2], "arr": np.arange(3)}, "config.json")
        root = Path(mlflow.get_artifact_uri())
    assert (root / "model.txt").read_text() == "weights"
    assert (root / "models" / "model.txt").exists()
    assert (root / "plots" / "sub" / "b.csv").read_text() == "3,4"
    assert (root / "notes" / "readme.md").read_text() == "hello"
    assert '"arr": [\n    0,' in (root / "config.json").read_text()
    listed = [p for p, _ in Client().list_artifact_files(run.info.run_id)]
    assert listed == sorted(
        [
            "model.txt",
            "models/model.txt",
            "plots/a.csv",
            "plots/sub/b.csv",
            "notes/readme.md",
            "config.json",
        ]
    )
    assert [p for p, _ in Client().list_artifact_files(run.info.run_id, "plots")] == [
        "plots/a.csv",
        "plots/sub/b.csv",
    ]
    # MLflow's listing: one folder's entries, folders marked, paths from the run's root
    client = Client()
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)] == [
        ("config.json", False), ("model.txt", False), ("models", True), ("notes", True),
        ("plots", True),
    ]  # fmt: skip
    assert client.list_artifacts(run.info.run_id, "plots") == [
        FileInfo("plots/a.csv", False, (root / "plots" / "a.csv").stat().st_size),
        FileInfo("plots/sub", True, None),
    ]
    assert [f.path for f in client.list_artifacts(run.info.run_id, "plots/sub/")] == [
        "plots/sub/b.csv"
    ]
    assert client.list_artifacts(run.info.run_id, "model.txt") == []  # a file: nothing in it
    assert client.list_artifacts(run.info.run_id, "nowhere") == []
    assert client.list_artifacts(run.info.run_id)[0].to_dictionary() == {
        "path": "config.json", "is_dir": False,
        "file_size": (root / "config.json").stat().st_size,
    }  # fmt: skip
    assert root.is_relative_to(store_dir / "artifacts")


def test_log_figure_matplotlib_and_plotly(store_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with mlflow.start_run():
        mlflow.log_figure(fig, "curve.png")
        mlflow.log_figure(go.Figure(go.Scatter(y=[1, 3, 2])), "curve.html")
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="matplotlib or Plotly"):
            mlflow.log_figure(object(), "x.png")
        root = Path(mlflow.get_artifact_uri())
    plt.close(fig)
    assert (root / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plotly" in (root / "curve.html").read_text().lower()
    assert not (root / "x.png").exists()


@pytest.mark.parametrize("bad", ["/abs/path", "../escape", "a/../../b", "~/x"])
def test_artifact_paths_must_stay_inside_the_run(store_dir: Path, bad: str) -> None:
    with (
        mlflow.start_run(),
        pytest.raises(mlflow.exceptions.InvalidInputError, match="relative path"),
    ):
        mlflow.log_text("x", bad)


def test_missing_artifact_source_is_a_clear_error(store_dir: Path, tmp_path: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="does not exist"):
            mlflow.log_artifact(tmp_path / "nope.txt")
        file = tmp_path / "file.txt"
        file.write_text("x")
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="use log_artifact"):
            mlflow.log_artifacts(file)


def test_client_explicit_api(store_dir: Path) -> None:
    client = Client(store_dir)
    exp = client.create_experiment("explicit")
    run = client.create_run(exp, run_name="manual")
    rid = run.info.run_id
    client.log_batch(
        rid,
        metrics=[mlflow.Metric("m", 0.5, 1000, 0), mlflow.Metric("m", 0.7, 2000, 1)],
        params=[mlflow.Param("p", "1")],
        tags=[mlflow.RunTag("t", "v")],
    )
    client.set_terminated(rid, "KILLED")
    got = client.get_run(rid)
    assert got.info.status == "KILLED"
    assert got.data.metrics == {"m": 0.7}
    assert [m.timestamp for m in client.get_metric_history(rid, "m")] == [1000, 2000]
    client.update_run(rid, name="renamed")
    assert client.get_run(rid).info.run_name == "renamed"
    assert [r.info.run_id for r in client.search_runs([exp], "params.p = '1'")] == [rid]
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="FINISHED"):
        client.set_terminated(rid, "DONE")
    with pytest.raises(RunNotFoundError):
        client.get_run("nope")


def test_unended_runs_warn_nothing_when_ended_in_with(store_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            with mlflow.start_run():
                mlflow.log_metric("m", 1)


# Python 3.12+ warns that forking a process with threads (here nbtrack's writer) may deadlock;
# that is the case this test makes sure nbtrack handles.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_logs_through_its_own_connection(store_dir: Path) -> None:
    import multiprocessing

    with mlflow.start_run() as run:
        mlflow.log_metric("parent", 1.0)
        mlflow.flush()
        ctx = multiprocessing.get_context("fork")
        parent_store = id(fluent._stack[-1].client.store)
        child = ctx.Process(target=_child_logs, args=(run.info.run_id, parent_store))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        mlflow.log_metric("parent", 2.0, step=1)
    got = mlflow.get_run(run.info.run_id).data
    assert got.metrics == {"parent": 2.0, "child": 3.0}
    assert got.params == {"from_child": "yes"}


def _child_logs(run_id: str, parent_store: int) -> None:
    # SQLite handles must not cross a fork: the child opened its own.
    assert id(fluent._stack[-1].client.store) != parent_store
    mlflow.log_metric("child", 3.0)  # the inherited active run
    mlflow.log_param("from_child", "yes")
    mlflow.flush()
    assert mlflow.active_run().info.run_id == run_id


def test_runs_from_a_script_keep_the_script_once(store_dir: Path, tmp_path: Path) -> None:
    import sqlite3
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(
        "import nbtrack\n"
        f"nbtrack.set_tracking_uri({str(store_dir)!r})\n"
        "for i in range(3):\n"
        "    with nbtrack.start_run():\n"
        "        nbtrack.log_metric('x', i)\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    client = Client(store_dir)
    runs = client.search_runs(["0"])
    assert len(runs) == 3
    links = [client.store.run_snapshots(r.info.run_id) for r in runs]
    assert all(set(link) == {"script", "environment"} for link in links)
    assert len({link["script"] for link in links}) == 1
    from nbtrack.snapshot import load_snapshot

    assert load_snapshot(client, runs[0].info.run_id, "script") == script.read_text()
    env = load_snapshot(client, runs[0].info.run_id, "environment")
    assert "nbtrack" in {name.lower() for name in env["packages"]}
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 2
    conn.close()


def test_deleting_an_experiment_deletes_its_runs_and_restoring_it_brings_them_back(
    store_dir: Path,
) -> None:
    """As in MLflow: the runs leave searches and refuse logging; restored with it, except a
    run deleted on its own before."""
    client = Client()
    exp = client.create_experiment("scratch")
    kept, dropped = (client.create_run(exp).info.run_id for _ in range(2))
    client.log_metric(kept, "acc", 0.5)
    client.delete_run(dropped)
    time.sleep(0.002)  # the experiment's deletion comes a millisecond later
    with mlflow.start_run(experiment_id=exp) as active:
        mlflow.log_metric("acc", 0.1)
        client.delete_experiment(exp)
        assert client.get_run(kept).info.lifecycle_stage == "deleted"
        assert mlflow.search_runs([exp]).empty
        with pytest.raises(RunStateError, match="restore_experiment"):
            mlflow.log_metric("acc", 0.2)
        with pytest.raises(RunStateError, match="restore_experiment"):
            client.log_metric(kept, "acc", 0.6)
        with pytest.raises(RunStateError, match="restore it before renaming"):
            client.rename_experiment(exp, "other")
    with pytest.raises(RunStateError, match="deleted already"):
        client.delete_experiment(exp)  # nothing changed: the restore below still works
    client.restore_experiment(exp)
    with pytest.raises(RunStateError, match="is not deleted"):
        client.restore_experiment(exp)
    found = mlflow.search_runs([exp])
    assert set(found.run_id) == {kept, active.info.run_id}
    assert client.get_run(dropped).info.lifecycle_stage == "deleted"
    client.log_metric(kept, "acc", 0.6)
    assert client.get_run(kept).data.metrics == {"acc": 0.6}


def test_a_run_deleted_in_the_same_millisecond_as_its_experiment_stays_deleted(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cleanup script deletes a run, then its experiment, at once: the restore still tells
    the run deleted on its own from those deleted with the experiment."""
    from nbtrack.store import sqlite
    from nbtrack.tracking import client as client_module

    client = Client()
    exp = client.create_experiment("cleanup")
    kept, dropped = (client.create_run(exp).info.run_id for _ in range(2))
    frozen = 1_800_000_000_000
    monkeypatch.setattr(sqlite, "_now_ms", lambda: frozen)  # one millisecond for both
    monkeypatch.setattr(client_module, "_now_ms", lambda: frozen)
    client.delete_run(dropped)
    client.delete_experiment(exp)
    client.restore_experiment(exp)
    assert client.get_run(kept).info.lifecycle_stage == "active"
    assert client.get_run(dropped).info.lifecycle_stage == "deleted"


def test_create_run_in_a_missing_or_deleted_experiment_writes_nothing(store_dir: Path) -> None:
    client = Client()
    exp = client.create_experiment("gone")
    client.delete_experiment(exp)
    with pytest.raises(RunStateError, match="'gone' is deleted"):
        client.create_run(exp, tags={"t": "v"})
    with pytest.raises(ExperimentNotFoundError, match="'999'"):
        client.create_run("999")
    assert client.store.query("SELECT count(*) FROM runs") == [(0,)]
    assert client.store.query("SELECT count(*) FROM tags") == [(0,)]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_write_the_parents_buffer_again(store_dir: Path) -> None:
    import os
    import time

    with mlflow.start_run() as run:
        for step in range(5):
            mlflow.log_metric("m", step, step=step)  # buffered, not yet written
        pid = os.fork()
        if pid == 0:  # the child outlives a writer interval, then leaves without cleanup
            time.sleep(1.2)
            os._exit(0)
        os.waitpid(pid, 0)
    assert [m.step for m in mlflow.get_metric_history(run.info.run_id, "m")] == [0, 1, 2, 3, 4]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_that_never_logs_never_waits_on_the_store(store_dir: Path) -> None:
    """Forking (a data-loader worker, a process pool) opens nothing: a child that does not log
    exits even while another connection holds the store's write lock."""
    import os
    import sqlite3
    import time

    with mlflow.start_run():
        mlflow.log_metric("m", 1.0)
        mlflow.flush()
        locker = sqlite3.connect(store_dir / "nbtrack.db", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # held until the child is gone
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            deadline = time.monotonic() + 30  # the busy timeout is 60 s
            while (status := os.waitpid(pid, os.WNOHANG)) == (0, 0):
                assert time.monotonic() < deadline, "the forked child waited on the store"
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status[1]) == 0
        finally:
            locker.execute("ROLLBACK")
            locker.close()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"step": 2**63}, mlflow.exceptions.InvalidInputError),
        ({"step": -(2**63) - 1}, mlflow.exceptions.InvalidInputError),
        ({"timestamp": -1}, mlflow.exceptions.InvalidInputError),
        ({"timestamp": 2**63}, mlflow.exceptions.InvalidInputError),
        ({"timestamp": 1_763_900_000_000_000}, mlflow.exceptions.InvalidInputError),  # in µs
        ({"step": 10**400}, mlflow.exceptions.InvalidInputError),
        ({"step": Fraction(10**400)}, mlflow.exceptions.InvalidInputError),
        ({"timestamp": 10**5000}, mlflow.exceptions.InvalidInputError),  # too long to print
        ({"timestamp": Fraction(10**400, 3)}, mlflow.exceptions.InvalidInputError),
        ({"timestamp": -0.5}, mlflow.exceptions.InvalidInputError),
    ],
)
def test_out_of_range_steps_and_timestamps_are_refused(
    store_dir: Path, kwargs: dict[str, int], error: type[Exception]
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        with pytest.raises(error, match=r"out of range|before 1970|past the year 9999"):
            mlflow.log_metric("loss", 0.4, **kwargs)
        mlflow.log_metric("loss", 0.3)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.1"} and got.data.metrics == {"loss": 0.3}


def test_a_time_in_microseconds_is_refused_with_how_to_fix_it(store_dir: Path) -> None:
    micro = int(time.time() * 1e6)
    client = Client()
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="divide it by 1000"):
        client.create_run("0", start_time=micro)
    run_id = client.create_run("0").info.run_id
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="past the year 9999"):
        client.set_terminated(run_id, end_time=micro)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert len(mlflow.search_runs(experiment_ids=["0"])) == 1


@pytest.mark.parametrize("spelling", ["0", 0, "00", np.int64(0)])
def test_the_default_experiment_cannot_be_deleted_however_its_id_is_spelt(
    store_dir: Path, spelling: Any
) -> None:
    client = Client()
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="cannot be deleted"):
        client.delete_experiment(spelling)
    assert client.get_experiment("0").lifecycle_stage == "active"


@pytest.mark.parametrize("bad", [" 0", 0.0, 1.9, True, "\u0661", "1e3", 10**30, -1])
def test_experiment_ids_are_digits_or_integers(store_dir: Path, bad: Any) -> None:
    client = Client()
    client.create_experiment("one")  # id 1
    # An input error (also a ValueError), as in search_runs: not "no such experiment".
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="number like"):
        client.get_experiment(bad)
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="number like"):
        client.delete_experiment(bad)
    with pytest.raises(ValueError, match="number like"):
        mlflow.start_run(experiment_id=bad)
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="numbers like"):
        mlflow.search_runs(experiment_ids=[bad])
    assert [e.lifecycle_stage for e in client.search_experiments()] == ["active"] * 2


def test_log_artifact_takes_a_folder_and_a_missing_file_is_a_file_not_found_error(
    store_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(folder))
        mlflow.log_artifact(str(folder), "under")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            mlflow.log_artifact(str(tmp_path / "missing.txt"))
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="does not exist"):
            mlflow.log_artifacts(str(tmp_path / "missing"))
    paths = [p for p, _ in Client().list_artifact_files(run.info.run_id)]
    assert paths == ["plots/a.txt", "plots/sub/b.txt", "under/plots/a.txt", "under/plots/sub/b.txt"]


def test_mlflow_s_system_tags_name_the_run_and_are_found_by_filters(store_dir: Path) -> None:
    with mlflow.start_run(run_name="orig") as parent:
        mlflow.set_tag("mlflow.runName", "renamed")
        mlflow.set_tag("mlflow.note.content", "hello")
        with mlflow.start_run(nested=True) as child:
            pass
    with mlflow.start_run(tags={"mlflow.runName": "from-tag"}) as tagged:
        pass
    got = mlflow.get_run(parent.info.run_id)
    assert got.info.run_name == "renamed"
    assert got.data.tags["nbtrack.note.content"] == "hello"
    assert mlflow.get_run(tagged.info.run_id).info.run_name == "from-tag"
    found = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert list(found.run_id) == [child.info.run_id]
    named = mlflow.search_runs(
        filter_string="tags.`mlflow.runName` IN ('renamed', 'from-tag')",
        order_by=["tags.mlflow.runName"],
    )
    assert list(named.run_name) == ["from-tag", "renamed"]
    user = mlflow.search_runs(filter_string="tags.mlflow.user != ''")
    assert len(user) == 3


def test_tags_set_under_mlflow_s_names_are_found_under_them(store_dir: Path) -> None:
    client = Client()
    parent = client.create_run("0", run_name="parent").info.run_id
    child = client.create_run("0", tags={"mlflow.parentRunId": parent}).info.run_id
    other = client.create_run("0").info.run_id
    client.set_tag(other, "mlflow.user", "alice")
    client.set_tag(other, "mlflow.parentRunId", parent)  # linked by hand, as MLflow allows
    found = client.search_runs(["0"], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.info.run_id for r in found) == sorted([child, other])
    def ids(text: str) -> set[str]:
        return {r.info.run_id for r in client.search_runs(["0"], text)}

    assert ids("tags.mlflow.user = 'alice'") == {other}
    # One value per run, the tag under MLflow's name first: `other` is not also "not alice"
    # because nbtrack's own user tag holds the login name.
    assert ids("tags.mlflow.user != 'alice'") == {parent, child}
    assert ids("tags.mlflow.user NOT IN ('alice')") == {parent, child}
    assert ids(f"tags.mlflow.user = '{context.user()}'") == {parent, child}
    assert ids("tags.mlflow.parentRunId IS NULL") == {parent}
    assert ids("tags.mlflow.parentRunId IS NOT NULL") == {child, other}
    # The same past the join budget, where the comparisons become subqueries.
    padding = " AND ".join(f"params.p{i} IS NULL" for i in range(MAX_JOINS))
    assert ids(f"{padding} AND tags.mlflow.user != 'alice'") == {parent, child}
    assert ids(f"{padding} AND tags.mlflow.parentRunId IS NULL") == {parent}
    client.set_tag(parent, "mlflow.user", "zoe")
    ordered = client.search_runs(["0"], order_by=["tags.mlflow.user DESC"])
    users = {parent: "zoe", other: "alice", child: context.user()}
    assert [r.info.run_id for r in ordered] == sorted(users, key=users.__getitem__, reverse=True)
    got = mlflow.get_parent_run(child)
    assert got is not None and got.info.run_id == parent
    assert mlflow.get_parent_run(other).info.run_id == parent  # type: ignore[union-attr]


def test_a_run_s_tags_answer_to_mlflow_s_names(store_dir: Path) -> None:
    """MLflow code reads the description, name and parent of a run from run.data.tags under
    MLflow's names; each tag is still listed once, under its own name."""
    with (
        mlflow.start_run(run_name="parent", description="first try") as parent,
        mlflow.start_run(nested=True) as child,
    ):
        mlflow.set_tag("mlflow.user", "zoe")  # set under MLflow's name: that one wins
    tags = mlflow.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert tags.get("mlflow.user") == "zoe" and tags["nbtrack.user"] == context.user()
    assert "mlflow.source.type" in tags
    assert tags["mlflow.source.type"] == tags["nbtrack.source.type"]
    assert tags.get("mlflow.note.content") is None and "mlflow.note.content" not in tags
    assert tags.get("mlflow.source.git.commit", "none") == tags.get("nbtrack.git.commit", "none")
    assert tags.get("mlflow.nothing", "none") == "none"
    with pytest.raises(KeyError):
        tags["mlflow.note.content"]
    (listed,) = mlflow.search_runs(filter_string="tags.mlflow.runName = 'parent'",
                                   output_format="list")  # fmt: skip
    assert listed.data.tags["mlflow.note.content"] == "first try"
    assert listed.data.tags.get("mlflow.runName") == "parent"
    assert not any(k.startswith("mlflow.") for k in listed.data.tags)
    assert listed.to_dictionary()["data"]["tags"] == dict(listed.data.tags)
    # The dict's other ways of reading and changing it agree with those lookups.
    copied = listed.data.tags.copy()
    assert copied["mlflow.runName"] == "parent" and copied == listed.data.tags
    assert copied.setdefault("mlflow.note.content", "fallback") == "first try"
    with pytest.raises(KeyError, match=r"'mlflow\.parentRunId'"):
        copied["mlflow.parentRunId"]  # the run has no parent: the error names the key asked
    assert copied.setdefault("mlflow.parentRunId", "p") == "p"
    assert copied["nbtrack.parentRunId"] == "p"  # stored under nbtrack's name, as MLflow's
    assert copied.pop("mlflow.note.content") == "first try" and "nbtrack.note.content" not in copied
    assert copied.pop("mlflow.note.content", None) is None
    with pytest.raises(KeyError, match=r"'mlflow\.note\.content'"):
        copied.pop("mlflow.note.content")
    del copied["mlflow.runName"]
    assert "nbtrack.runName" not in copied
    with pytest.raises(KeyError, match=r"'mlflow\.runName'"):
        del copied["mlflow.runName"]
    assert pickle.loads(pickle.dumps(listed)).data.tags["mlflow.runName"] == "parent"


def test_a_parent_given_as_such_wins_over_an_mlflow_parent_tag(store_dir: Path) -> None:
    """As MLflow's start_run(nested=True), which sets the tag to the real parent."""
    client = Client()
    first = client.create_run("0").info.run_id
    second = client.create_run("0").info.run_id
    made = client.create_run("0", parent_run_id=first, tags={"mlflow.parentRunId": second})
    assert made.data.tags["nbtrack.parentRunId"] == first
    assert "mlflow.parentRunId" not in dict(made.data.tags)  # not stored apart
    assert made.data.tags["mlflow.parentRunId"] == first
    tagged = {"mlflow.parentRunId": second}
    with mlflow.start_run() as outer, mlflow.start_run(nested=True, tags=tagged) as inner:
        pass
    parent = mlflow.get_parent_run(inner.info.run_id)
    assert parent is not None and parent.info.run_id == outer.info.run_id


def test_get_parent_run_reads_the_parent_as_filters_do(store_dir: Path) -> None:
    client = Client()
    with mlflow.start_run() as outer, mlflow.start_run(nested=True) as child:
        pass
    other = client.create_run("0").info.run_id
    client.set_tag(child.info.run_id, "mlflow.parentRunId", other)  # relinked by hand
    found = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{other}'")
    assert list(found.run_id) == [child.info.run_id]
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == other  # type: ignore[union-attr]
    assert outer.info.run_id != other


def test_client_search_runs_pages_with_tokens_as_mlflow(store_dir: Path) -> None:
    client = Client()
    made = []
    for i in range(5):
        run = client.create_run("0", run_name=f"r{i}", start_time=1_700_000_000_000 + i)
        made.append(run.info.run_id)
    pages = [client.search_runs(["0"], max_results=2, order_by=["attributes.start_time"])]
    while pages[-1].token:
        pages.append(
            client.search_runs(
                ["0"], max_results=2, order_by=["attributes.start_time"], page_token=pages[-1].token
            )
        )
    assert [[r.info.run_id for r in page] for page in pages] == [made[:2], made[2:4], made[4:]]
    assert client.search_runs(["0"], max_results=5).token is None
    for count in (0, -1, True, 1.5):
        with pytest.raises(mlflow.exceptions.InvalidInputError, match=f"got {count!r}"):
            client.search_runs(["0"], max_results=count)  # type: ignore[arg-type]
    huge = base64.urlsafe_b64encode(b'{"offset": 9223372036854775808}').decode()  # 2**63
    for bad in ("nonsense", "e30=", huge):  # not base64 JSON; JSON without an offset; too far
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="page_token"):
            client.search_runs(["0"], page_token=bad)


def test_experiment_tags_and_the_parent_run_through_the_fluent_api(store_dir: Path) -> None:
    exp = mlflow.set_experiment("tagged")
    mlflow.set_experiment_tag("team", "cv")
    mlflow.set_experiment_tags({"stage": "dev", "mlflow.note.content": "about"})
    with pytest.raises(mlflow.exceptions.InvalidKeyError):
        mlflow.set_experiment_tags({"ok": "1", "bad key!": "2"})  # nothing of it written
    tags = mlflow.get_experiment(exp.experiment_id).tags
    assert tags == {"team": "cv", "stage": "dev", "nbtrack.note.content": "about"}
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        pass
    found = mlflow.get_parent_run(child.info.run_id)
    assert found is not None and found.info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None


def test_update_run_back_to_running_clears_the_end_time(store_dir: Path) -> None:
    client = Client()
    run_id = client.create_run("0").info.run_id
    client.set_terminated(run_id)
    assert client.get_run(run_id).info.end_time is not None
    client.update_run(run_id, status="RUNNING")
    run = client.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("RUNNING", None)
    client.update_run(run_id, status="FAILED")
    assert client.get_run(run_id).info.end_time is not None


def test_experiments_come_newest_first_as_in_mlflow(store_dir: Path) -> None:
    mlflow.search_experiments()  # the store, and its Default experiment, are made now
    time.sleep(0.002)
    for name in ("zeta", "alpha", "beta"):
        mlflow.create_experiment(name)
        time.sleep(0.002)
    assert [e.name for e in mlflow.search_experiments()] == ["beta", "alpha", "zeta", "Default"]
    assert [e.name for e in mlflow.search_experiments(max_results=1)] == ["beta"]


def test_an_empty_list_of_experiments_searches_as_if_none_were_given(store_dir: Path) -> None:
    mlflow.set_experiment("a")
    with mlflow.start_run():
        pass
    mlflow.set_experiment("b")
    with mlflow.start_run(run_name="in-b"):
        pass
    assert list(mlflow.search_runs(experiment_ids=[]).run_name) == ["in-b"]
    assert list(mlflow.search_runs(experiment_names=[]).run_name) == ["in-b"]
    assert len(mlflow.search_runs(experiment_ids=[], search_all_experiments=True)) == 2


def test_search_checks_the_view_type_and_takes_any_max_results(store_dir: Path) -> None:
    with mlflow.start_run():
        pass
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="ACTIVE_ONLY"):
        mlflow.search_runs(run_view_type=99)
    assert len(mlflow.search_runs(max_results=10**20)) == 1


def test_a_killed_run_does_not_end_before_it_started(store_dir: Path) -> None:
    client = Client()
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=1_600_000_000_000, step=1)  # a replay
    client.flush()
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (_dead_pid(), run_id))
    conn.close()
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.info.end_time == run.info.start_time  # not 2020, years before it started


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_key_with_a_trailing_newline_is_refused(store_dir: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(mlflow.exceptions.InvalidKeyError):
            mlflow.log_metric("loss\n", 1.0)
        with pytest.raises(mlflow.exceptions.InvalidKeyError, match="string"):
            mlflow.log_metric(["unhashable"], 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"run_id": "0" * 32},
        {"experiment_id": "999"},
        {"run_name": "x" * 300},
        {"tags": {"nbtrack.user": "me"}},
        {"parent_run_id": "nope"},
        {"description": "d" * 9000},
    ],
)
def test_a_bad_start_run_leaves_the_active_run_alone(
    store_dir: Path, kwargs: dict[str, object]
) -> None:
    active = mlflow.start_run(run_name="keep")
    with pytest.raises(mlflow.NbtrackError):
        mlflow.start_run(**kwargs)  # type: ignore[arg-type]
    assert mlflow.active_run().info.run_id == active.info.run_id
    assert mlflow.get_run(active.info.run_id).info.status == "RUNNING"
    mlflow.end_run()
    assert len(mlflow.search_runs()) == 1


def test_resuming_with_a_bad_argument_changes_nothing(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        pass
    with pytest.raises(mlflow.exceptions.InvalidInputError):
        mlflow.start_run(run_id=run.info.run_id, tags={"team": "ml"}, run_name="x" * 300)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and "team" not in got.data.tags
    assert mlflow.active_run() is None


def test_resuming_into_another_experiment_is_refused(store_dir: Path) -> None:
    other = mlflow.create_experiment("other")
    with mlflow.start_run() as run:
        pass
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="belongs to experiment 0"):
        mlflow.start_run(run_id=run.info.run_id, experiment_id=other)
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
    assert mlflow.active_run() is None
    with mlflow.start_run(run_id=run.info.run_id, experiment_id="0"):  # its own: fine
        pass


@pytest.mark.parametrize("name", ["", "   ", "x" * 501, 7])
def test_bad_experiment_names_are_refused_everywhere(store_dir: Path, name: object) -> None:
    client = Client()
    exp = client.create_experiment("kept")
    calls = [
        lambda: client.create_experiment(name),
        lambda: client.rename_experiment(exp, name),
        lambda: mlflow.set_experiment(name),
    ]
    for call in calls:
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="experiment name"):
            call()
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "kept"]


def test_a_500_character_experiment_name_is_fine(store_dir: Path) -> None:
    assert mlflow.set_experiment("x" * 500).name == "x" * 500


def test_times_given_to_the_client_are_checked(store_dir: Path) -> None:
    client = Client()
    with pytest.raises(TypeError, match="milliseconds"):
        client.create_run("0", start_time="yesterday")  # type: ignore[arg-type]
    run_id = client.create_run("0").info.run_id
    with pytest.raises(TypeError, match="milliseconds"):
        client.set_terminated(run_id, end_time=math.nan)  # type: ignore[arg-type]
    assert client.get_run(run_id).info.status == "RUNNING"
    assert len(mlflow.search_runs()) == 1


def test_steps_times_and_values_take_what_mlflow_takes(store_dir: Path) -> None:
    """A whole float step (``epoch / 1``), a float time (``time.time() * 1000``) and a Decimal
    value are logged, as MLflow logs them; a fractional step is refused."""
    from decimal import Decimal

    with mlflow.start_run() as run:
        mlflow.log_metric("m", Decimal("1.5"), step=np.float64(2.0), timestamp=1.7e12 + 0.9)
        with pytest.raises(TypeError, match="whole value"):
            mlflow.log_metric("m", 1.0, step=2.5)
        with pytest.raises(TypeError, match="signalling NaN"):
            mlflow.log_metric("m", Decimal("sNaN"))
        with pytest.raises(mlflow.exceptions.InvalidInputError, match="too large"):
            mlflow.log_metric("m", Decimal("1e400"))
        mlflow.log_metric("exact", 1.0, step=Fraction(2**53 + 1))  # not rounded by a float
    [point] = Client().get_metric_history(run.info.run_id, "m")
    assert (point.value, point.step, point.timestamp) == (1.5, 2, 1_700_000_000_000)
    assert isinstance(point.step, int) and isinstance(point.timestamp, int)
    assert Client().get_metric_history(run.info.run_id, "exact")[0].step == 2**53 + 1


def test_set_experiment_wins_over_the_environment(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_EXPERIMENT_NAME", "from-env")
    with mlflow.start_run():
        pass
    mlflow.set_experiment("mine")
    with mlflow.start_run():
        pass
    assert len(mlflow.search_runs(experiment_names=["from-env"])) == 1
    assert len(mlflow.search_runs(experiment_names=["mine"])) == 1


def test_the_default_store_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.tracking import uri

    monkeypatch.delenv(uri.ENV_VAR, raising=False)
    uri.reset_tracking_uri()
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        with mlflow.start_run():
            pass
        assert (tmp_path / name / ".nbtrack" / "nbtrack.db").exists()
        assert len(mlflow.search_runs()) == 1
    fluent._clients.clear()


def test_a_sqlite_file_that_is_not_a_store_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "mlflow.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE alembic_version (v TEXT); CREATE TABLE experiments (id INTEGER);"
        "CREATE TABLE runs (id TEXT);"
    )
    conn.close()
    before = path.read_bytes()
    with pytest.raises(mlflow.exceptions.StoreError, match="looks like an MLflow store"):
        Client(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "mlflow.db-wal").exists()


def test_mlflow_keyword_arguments(store_dir: Path) -> None:
    other = Client().create_run("0").info.run_id
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0, step=3, synchronous=True, timestamp=1234, run_id=other)
        mlflow.log_metrics({"a": 1, "b": 2}, step=1, synchronous=False, run_id=other)
        mlflow.log_params({"p": 1}, run_id=other)
        mlflow.log_param("q", 2, synchronous=True)
        mlflow.set_tag("t", "v", synchronous=True)
        mlflow.set_tags({"u": "w"}, synchronous=False)
    got = mlflow.get_run(other)
    assert got.data.metrics == {"m": 1.0, "a": 1.0, "b": 2.0} and got.data.params == {"p": "1"}
    assert mlflow.get_metric_history(other, "m")[0].timestamp == 1234
    mine = mlflow.get_run(run.info.run_id)
    assert mine.data.params == {"q": "2"} and mine.data.metrics == {}
    assert mlflow.RunStatus.from_string("FINISHED") == "FINISHED"
    with pytest.raises(ValueError, match="RUNNING"):
        mlflow.RunStatus.to_string("DONE")


def test_log_batch_refuses_a_param_given_twice(store_dir: Path) -> None:
    client = Client()
    run_id = client.create_run("0").info.run_id
    with pytest.raises(mlflow.exceptions.InvalidInputError, match="'p'"):
        client.log_batch(
            run_id,
            params=[mlflow.Param("p", "1"), mlflow.Param("p", "2")],
            metrics=[mlflow.Metric("m", 1.0, 1, 0)],
        )
    assert client.get_run(run_id).data.params == {}
    assert client.get_run(run_id).data.metrics == {}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"params": {"a": 1}}, r"params as a list of nbtrack\.Param.*got dict"),
        ({"metrics": {"m": 1.0}}, r"metrics as a list of nbtrack\.Metric.*got dict"),
        ({"tags": {"t": "v"}}, r"tags as a list of nbtrack\.RunTag.*got dict"),
        ({"tags": "t"}, r"tags as a list of nbtrack\.RunTag.*got str"),
        ({"metrics": 1.0}, r"list of nbtrack\.Metric.*got float"),
        ({"params": [("a", "1")]}, r"list of nbtrack\.Param.*item of type tuple"),
        ({"metrics": [mlflow.Param("m", "1")]}, r"list of nbtrack\.Metric.*item of type Param"),
        ({"tags": [mlflow.RunTag("t", "v"), ("p", "1")]}, r"item of type tuple"),
    ],
)
def test_log_batch_names_the_types_it_takes_and_writes_nothing_else(
    store_dir: Path, arguments: dict[str, Any], message: str
) -> None:
    client = Client()
    run_id = client.create_run("0").info.run_id
    fine = {
        "metrics": [mlflow.Metric("m", 1.0, 1, 0)],
        "params": [mlflow.Param("p", "1")],
        "tags": [mlflow.RunTag("t", "v")],
    }
    with pytest.raises(InvalidInputError, match=message):
        client.log_batch(run_id, **{**fine, **arguments})
    data = client.get_run(run_id).data
    assert (data.metrics, data.params) == ({}, {}) and "t" not in data.tags
    client.log_batch(run_id, **{k: tuple(v) for k, v in fine.items()})  # any sequence will do
    data = client.get_run(run_id).data
    assert (data.metrics, data.params, data.tags["t"]) == ({"m": 1.0}, {"p": "1"}, "v")
    # another library's entities (MLflow's) are read by their fields, as MLflow reads them
    other = SimpleNamespace(key="other", value=2.0, timestamp=1, step=3)
    client.log_batch(run_id, metrics=[other], params=[SimpleNamespace(key="q", value="2")])
    assert client.get_metric_history(run_id, "other")[0].step == 3
    assert client.get_run(run_id).data.params == {"p": "1", "q": "2"}


def test_search_experiments_like_is_sql_like(store_dir: Path) -> None:
    for name in ("ab", "a[b]c", "A_x"):
        mlflow.create_experiment(name)
    assert [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'a[b]%'")] == [
        "a[b]c"
    ]
    assert [e.name for e in mlflow.search_experiments(filter_string="name ILIKE 'a_x'")] == ["A_x"]


def test_search_experiments_filters_on_tags_times_and_ids_with_and_or(store_dir: Path) -> None:
    cv = mlflow.create_experiment("vision-a", tags={"team": "cv"})
    mlflow.create_experiment("vision-b", tags={"team": "nlp"})
    time.sleep(0.005)  # a later creation time for the last one
    nlp = mlflow.create_experiment("text", tags={"team": "nlp", "prod": "yes"})

    def names(text: str) -> list[str]:
        found = mlflow.search_experiments(filter_string=text, order_by=["experiment_id"])
        return [e.name for e in found]

    assert names("name LIKE 'vision-%' AND tags.team = 'nlp'") == ["vision-b"]
    assert names("tags.team = 'cv' OR tags.prod = 'yes'") == ["vision-a", "text"]
    assert names("tags.prod IS NULL AND (name = 'text' OR tags.team ILIKE 'CV')") == ["vision-a"]
    assert names(f"attributes.experiment_id IN ('{cv}', '{nlp}')") == ["vision-a", "text"]
    assert names("tags.team != 'cv'") == ["vision-b", "text"]  # no team tag: not matched
    created = mlflow.get_experiment(nlp).creation_time
    assert names(f"creation_time >= {created} AND name != 'Default'") == ["text"]
    assert names("last_update_time > 0 AND experiment_id = '0'") == ["Default"]
    # ILIKE folds ASCII letters only, as it does for runs (SQLite's lower() and LIKE)
    mlflow.create_experiment("ÉCOLE-Vision")
    assert names("name ILIKE 'école-vision'") == []
    assert names("name ILIKE 'École-vision'") == ["ÉCOLE-Vision"]
    with mlflow.start_run():
        mlflow.set_tag("school", "ÉCOLE-Vision")
    assert len(mlflow.search_runs(filter_string="tags.school ILIKE 'école-vision'")) == 0
    assert len(mlflow.search_runs(filter_string="tags.school ILIKE 'École-vision'")) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc > 1", "experiments have no metrics"),
        ("params.lr = '1'", "experiments have no params"),
        ("status = 'RUNNING'", "unknown attribute 'status'"),
        ("run.name = 'a'", "unknown prefix 'run'"),
        ("creation_time > 'yesterday'", "creation_time is a number"),
        ("name > 'a'", "> is not allowed on name"),
        ("name = 'a' AND", "such as tags.team or an attribute like name"),
    ],
)
def test_bad_experiment_filters_point_at_the_problem(
    store_dir: Path, text: str, message: str
) -> None:
    with pytest.raises(mlflow.exceptions.FilterSyntaxError, match=message):
        mlflow.search_experiments(filter_string=text)


def test_an_experiment_artifact_location_is_where_its_runs_keep_files(
    store_dir: Path, tmp_path: Path
) -> None:
    exp = mlflow.create_experiment("elsewhere", artifact_location=str(tmp_path / "shared"))
    assert mlflow.get_experiment(exp).artifact_location == str(tmp_path / "shared")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_text("hi", "note.txt")
    assert (tmp_path / "shared" / run.info.run_id / "note.txt").read_text() == "hi"
    assert mlflow.get_run(run.info.run_id).info.artifact_uri == str(
        tmp_path / "shared" / run.info.run_id
    )
    assert mlflow.search_runs(experiment_ids=[exp]).artifact_uri[0] == str(
        tmp_path / "shared" / run.info.run_id
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"artifact_location": "s3://bucket/path"}, InvalidInputError, "local .*s3://"),
        ({"artifact_location": "gs://b/p"}, InvalidInputError, "gs://"),
        ({"tags": {"nbtrack.user": "me"}}, mlflow.exceptions.ReservedTagError, "nbtrack."),
        ({"tags": {"t": "v" * 8001}}, mlflow.exceptions.ValueTooLongError, "at most 8000"),
        ({"tags": {"bad key!": "v"}}, InvalidInputError, "bad key"),
    ],
)
def test_create_experiment_refuses_bad_input_and_creates_nothing(
    store_dir: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = [e.name for e in mlflow.search_experiments(mlflow.ViewType.ALL)]
    with pytest.raises(error, match=message):
        mlflow.create_experiment("refused", **kwargs)
    assert [e.name for e in mlflow.search_experiments(mlflow.ViewType.ALL)] == before


def test_search_experiments_checks_order_and_max_results(store_dir: Path) -> None:
    for name in ("b", "a"):
        mlflow.create_experiment(name)
    names = [e.name for e in mlflow.search_experiments(order_by=["name DESC"])]
    assert names == ["b", "a", "Default"]
    first = mlflow.search_experiments(order_by="name", max_results=1)
    assert [e.name for e in first] == ["Default"]
    with pytest.raises(InvalidInputError, match=r"ASC or DESC.*SIDEWAYS"):
        mlflow.search_experiments(order_by=["name SIDEWAYS"])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="positive integer"):
            mlflow.search_experiments(max_results=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["RUNNING", "SCHEDULED", "DONE", None])
def test_end_run_takes_only_an_ending_status(store_dir: Path, status: Any) -> None:
    run = mlflow.start_run()
    with pytest.raises(InvalidInputError, match="FINISHED, FAILED, KILLED"):
        mlflow.end_run(status)
    assert mlflow.active_run() is not None  # still active, still RUNNING
    assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
    mlflow.end_run("KILLED")
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"


def _bad_logging_calls() -> list[tuple[str, Any, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    return [
        ("log_params list", lambda: mlflow.log_params([("a", 1)]), "dict of params"),
        ("log_metrics None", lambda: mlflow.log_metrics(None), "dict of metrics"),
        ("set_tags list", lambda: mlflow.set_tags(["a"]), "dict of tags"),
        ("huge int", lambda: mlflow.log_metric("big", 10**400), "'big' is too large"),
        ("text into a folder name", lambda: mlflow.log_text("x", "notes/"), "name a file"),
        ("text onto a folder", lambda: mlflow.log_text("x", "kept"), "is a folder"),
        ("yaml of an object", lambda: mlflow.log_dict({"a": object()}, "c.yaml"), "YAML"),
        ("axes", lambda: mlflow.log_figure(ax, "a.png"), r"ax\.figure"),
        ("unknown format", lambda: mlflow.log_figure(fig, "c.xyz"), r"\.png"),
        # a lone surrogate (a file name's undecodable byte): no text UTF-8 or SQLite can hold
        ("surrogate param", lambda: mlflow.log_param("f", "caf\udce9.csv"), "param 'f'"),
        ("surrogate params", lambda: mlflow.log_params({"g": 1, "h": "\udce9"}), "'h'.*UTF-8"),
        ("surrogate tag", lambda: mlflow.set_tag("t", "caf\udce9"), "tag 't'.*surrogate"),
        ("surrogate text", lambda: mlflow.log_text("caf\udce9", "s.txt"), "log_text's text"),
        ("surrogate lookup", lambda: mlflow.get_experiment_by_name("\udce9"), "surrogate"),
    ]


def test_bad_logging_input_names_the_problem_and_writes_nothing(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("kept", "kept/file.txt")
        mlflow.flush()
        before = mlflow.get_run(run.info.run_id)
        artifacts = Client().list_artifact_files(run.info.run_id)
        for _label, call, message in _bad_logging_calls():
            with pytest.raises(InvalidInputError, match=message):
                call()
        mlflow.flush()
        after = mlflow.get_run(run.info.run_id)
        assert after.data == before.data
        assert Client().list_artifact_files(run.info.run_id) == artifacts
        root = Path(after.info.artifact_uri)
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
            "kept", "kept/file.txt"
        ]


def test_an_error_quoting_an_undecodable_file_name_is_recorded_escaped(store_dir: Path) -> None:
    """nbtrack's own tags (the traceback of a FAILED run) escape a lone surrogate rather than
    refuse it: the run still ends FAILED, and logging goes on."""
    with pytest.raises(ValueError), mlflow.start_run() as run:
        raise ValueError("cannot read caf\udce9.csv")
    failed = mlflow.get_run(run.info.run_id)
    assert failed.info.status == "FAILED"
    assert "cannot read caf\\udce9.csv" in failed.data.tags["nbtrack.error"]
    with mlflow.start_run() as after:
        mlflow.log_param("p", "café")
    assert mlflow.get_run(after.info.run_id).data.params == {"p": "café"}


def test_artifact_calls_take_run_id_and_download(store_dir: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with mlflow.start_run() as other:
        pass
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("a")
    fig, _ = plt.subplots()
    with mlflow.start_run() as active:  # run_id targets another run than the active one
        rid = other.info.run_id
        mlflow.log_artifact(source / "sub" / "a.txt", "files", run_id=rid)
        mlflow.log_artifacts(source, "tree", run_id=rid)
        mlflow.log_text("t", "t.txt", run_id=rid)
        mlflow.log_dict({"k": 1}, "d.json", run_id=rid)
        mlflow.log_figure(fig, "f.png", save_kwargs={"dpi": 20}, run_id=rid)
    client = Client()
    assert client.list_artifact_files(active.info.run_id) == []
    paths = sorted(p for p, _ in client.list_artifact_files(rid))
    assert paths == ["d.json", "f.png", "files/a.txt", "t.txt", "tree/sub/a.txt"]
    small = (tmp_path / "small.png")
    fig.savefig(small, dpi=20)
    assert Path(client.get_artifact_uri(rid, "f.png")).stat().st_size == small.stat().st_size
    one = client.download_artifacts(rid, "t.txt", tmp_path / "dl")
    assert Path(one) == tmp_path / "dl" / "t.txt" and Path(one).read_text() == "t"
    tree = Path(client.download_artifacts(rid, "tree"))
    assert (tree / "sub" / "a.txt").read_text() == "a"
    everything = Path(client.download_artifacts(rid))
    assert sorted(p.name for p in everything.iterdir()) == ["d.json", "f.png", "files", "t.txt",
                                                            "tree"]
    with pytest.raises(InvalidInputError, match=r"no artifact 'nope'.*d\.json"):
        client.download_artifacts(rid, "nope")



def test_client_synchronous_writes_are_stored_before_returning(store_dir: Path) -> None:
    import sqlite3

    client = Client()
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.5, synchronous=True)
    client.log_param(run_id, "p", "v", synchronous=True)
    client.set_tag(run_id, "t", "w", synchronous=True)
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:  # another reader: no flush on read
        assert conn.execute("SELECT value FROM latest_metrics").fetchall() == [(1.5,)]
        assert conn.execute("SELECT value FROM params").fetchall() == [("v",)]
        assert ("t", "w") in conn.execute("SELECT key, value FROM tags").fetchall()


def test_fluent_synchronous_flag_is_the_clients(store_dir: Path) -> None:
    """The fluent calls hand MLflow's ``synchronous`` to the client: True writes before
    returning, False returns something to ``wait()`` on, and log_param returns its value."""
    import sqlite3

    with mlflow.start_run():
        assert mlflow.log_metric("m", 1.5, synchronous=True) is None
        assert mlflow.log_param("p", "v", synchronous=True) == "v"
        assert mlflow.set_tag("t", "w", synchronous=True) is None
        with sqlite3.connect(store_dir / "nbtrack.db") as conn:  # no flush on this read
            assert conn.execute("SELECT value FROM latest_metrics").fetchall() == [(1.5,)]
            assert conn.execute("SELECT value FROM params").fetchall() == [("v",)]
            assert ("t", "w") in conn.execute("SELECT key, value FROM tags").fetchall()
        pending = mlflow.log_metric("n", 2.0, synchronous=False)
        pending.wait()
        with sqlite3.connect(store_dir / "nbtrack.db") as conn:
            assert ("n", 2.0) in conn.execute("SELECT key, value FROM latest_metrics").fetchall()


def test_close_stores_writes_what_is_buffered_and_reopens_on_next_use(store_dir: Path) -> None:
    import os

    from nbtrack.tracking import client as client_module

    client = mlflow.Client()
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.5)
    db = store_dir / "nbtrack.db"

    def open_here() -> int:  # descriptors of this process on the store's files
        return sum(
            os.readlink(f"/proc/self/fd/{fd}").startswith(str(db))
            for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")
        )

    assert open_here() >= 3
    client_module._close_stores()
    assert open_here() == 0
    with sqlite3.connect(db) as conn:  # the buffered point was written first
        assert conn.execute("SELECT value FROM latest_metrics").fetchall() == [(1.5,)]
    assert client.get_run(run_id).data.metrics == {"m": 1.5}  # opened again
    assert open_here() >= 3


def test_update_run_to_running_frees_a_run_only_from_a_process_that_still_holds_it(
    store_dir: Path,
) -> None:
    from nbtrack.store.base import Release

    client = Client()
    run_id = client.create_run("0", _ended_by_this_process=True).info.run_id
    store = client.store
    # A run of another host: its process cannot be checked from here, so it keeps it.
    with store.write() as conn:
        conn.execute("UPDATE runs SET host = 'otherbox', pid = 4242 WHERE run_id = ?", (run_id,))
    client.update_run(run_id, status="RUNNING")
    assert store.get_run_row(run_id)["pid"] == 4242  # type: ignore[index]
    # Freed only from the process it was read with: one that resumed it meanwhile keeps it.
    store.update_run(run_id, status="RUNNING", pid=Release(999, "otherbox"))
    assert store.get_run_row(run_id)["pid"] == 4242  # type: ignore[index]
    store.update_run(run_id, status="RUNNING", pid=Release(4242, "otherbox"))
    assert store.get_run_row(run_id)["pid"] is None  # type: ignore[index]


def test_a_missing_experiment_name_and_max_results_0_give_no_runs_as_in_mlflow(
    store_dir: Path,
) -> None:
    with mlflow.start_run():
        mlflow.log_metric("m", 1.0)
    with pytest.warns(mlflow.exceptions.NbtrackWarning, match="no experiment named 'later'"):
        found = mlflow.search_runs(experiment_names=["later"])
    assert found.empty and "run_id" in found.columns
    with pytest.warns(mlflow.exceptions.NbtrackWarning, match="'later'"):
        assert len(mlflow.search_runs(experiment_names=["later", "Default"])) == 1
    assert mlflow.search_runs(max_results=0).empty
    assert mlflow.search_runs(max_results=0, output_format="list") == []
    with pytest.raises(InvalidInputError, match="0 or more"):
        mlflow.search_runs(max_results=-1)


def test_mlflow_s_module_paths_and_entity_dictionaries(store_dir: Path) -> None:
    from nbtrack.client import MlflowClient as FromClient
    from nbtrack.entities import Metric, Param, RunStatus, RunTag, ViewType
    from nbtrack.tracking import MlflowClient as FromTracking

    assert FromClient is FromTracking is mlflow.MlflowClient
    assert (ViewType, RunStatus, Metric, Param, RunTag) == (
        mlflow.ViewType, mlflow.RunStatus, mlflow.Metric, mlflow.Param, mlflow.RunTag
    )
    try:  # the create-or-get pattern of MLflow scripts
        mlflow.create_experiment("churn")
        mlflow.create_experiment("churn")
    except mlflow.exceptions.MlflowException as exc:
        assert isinstance(exc, mlflow.exceptions.NbtrackError)
        assert exc.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(mlflow.exceptions.MlflowException) as missing:
        mlflow.get_run("f" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5, step=3)
        mlflow.log_param("lr", 0.1)
    [point] = FromClient().get_metric_history(run.info.run_id, "loss")
    assert point.run_id == run.info.run_id
    assert point.to_dictionary() == {
        "key": "loss", "value": 0.5, "timestamp": point.timestamp, "step": 3,
        "run_id": run.info.run_id,
    }
    got = mlflow.get_run(run.info.run_id)
    assert got.data.to_dictionary()["params"] == {"lr": "0.1"}
    assert got.info.to_dictionary()["run_id"] == run.info.run_id
    assert Param("a", "1").to_dictionary() == {"key": "a", "value": "1"}


def test_more_of_mlflow_s_client_and_fluent_names(store_dir: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=str(store_dir), registry_uri=str(store_dir))
    with pytest.raises(InvalidInputError, match="registry_uri"):
        mlflow.MlflowClient(tracking_uri=str(store_dir), registry_uri=str(store_dir / "other"))
    client.search_experiments()  # the store, and its Default experiment, are made now
    for name in ("a", "b", "c"):
        time.sleep(0.002)  # each a millisecond later: "newest first" is well defined
        client.create_experiment(name)
    pages = [client.search_experiments(max_results=2)]
    while pages[-1].token:
        pages.append(client.search_experiments(max_results=2, page_token=pages[-1].token))
    assert [[e.name for e in page] for page in pages] == [["c", "b"], ["a", "Default"]]
    mlflow.set_experiment("a")
    mlflow.set_experiment_tag("team", "cv")
    mlflow.delete_experiment_tag("team")
    assert "team" not in mlflow.get_experiment_by_name("a").tags  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="no tag 'team'"):
        mlflow.delete_experiment_tag("team")
    b = client.get_experiment_by_name("b").experiment_id  # type: ignore[union-attr]
    mlflow.delete_experiment(b)
    mlflow.restore_experiment(b)
    assert mlflow.get_experiment(b).lifecycle_stage == "active"
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        ops = mlflow.log_metric("m", 1.0, synchronous=False)
        assert ops is not None
        ops.wait()
        assert mlflow.log_params({"p": 1}, synchronous=False) is not None
        assert mlflow.log_metric("m", 2.0) is None
        assert mlflow.log_param("q", 2) == 2
        mlflow.log_param("r", 3, synchronous=False).wait()
        run_id = child.info.run_id
        for ops in (
            client.log_metric(run_id, "n", 1.0, synchronous=False),
            client.log_param(run_id, "s", 1, synchronous=False),
            client.set_tag(run_id, "t", 1, synchronous=False),
            client.log_batch(run_id, [mlflow.Metric("n", 2.0, 0, 1)], synchronous=False),
        ):
            ops.wait()  # type: ignore[union-attr]
    assert client.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id  # type: ignore[union-attr]
    assert mlflow.is_tracking_uri_set()
    mlflow.flush_async_logging()
    with pytest.raises(mlflow.MlflowException):
        mlflow.get_run("0" * 32)
    raised = mlflow.MlflowException("custom", error_code="INVALID_PARAMETER_VALUE")
    assert (raised.message, raised.error_code) == ("custom", "INVALID_PARAMETER_VALUE")


def test_mlflow_s_artifacts_module(store_dir: Path, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_dict({"lr": 0.1}, "config.json")
        mlflow.log_dict({"depth": 3}, "conf/model.yaml")
        mlflow.log_text("hello", "notes/readme.txt")
        local = mlflow.get_artifact_uri("notes/readme.txt")
    run_id = run.info.run_id
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"lr": 0.1}
    assert mlflow.artifacts.load_dict(f"runs:/{run_id[:8]}/conf/model.yaml") == {"depth": 3}
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.txt") == "hello"
    assert mlflow.artifacts.load_text(Path(local).as_uri()) == "hello"
    assert mlflow.artifacts.load_text(local) == "hello"
    copied = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="notes", dst_path=tmp_path / "out"
    )
    assert Path(copied, "readme.txt").read_text() == "hello"
    assert mlflow.artifacts.list_artifacts(run_id=run_id) == [
        FileInfo("conf", True, None),
        FileInfo("config.json", False, len((Path(local).parents[1] / "config.json").read_bytes())),
        FileInfo("notes", True, None),
    ]
    assert [f.path for f in mlflow.artifacts.list_artifacts(f"runs:/{run_id}/notes")] == [
        "notes/readme.txt"
    ]
    # As MLflow: a URI's last part is listed inside its parent, paths from the parent.
    for uri, listed in (
        (f"runs:/{run_id}/notes/", ["readme.txt"]),
        (f"runs://{run_id}/notes/", ["readme.txt"]),  # read as load_text reads it
        (f"runs:/{run_id}/conf", ["conf/model.yaml"]),
        (f"runs:/{run_id}/notes/readme.txt", []),
        (str(Path(local).parent) + "/", ["readme.txt"]),
        (Path(local).parent.as_uri(), ["notes/readme.txt"]),
    ):
        assert [f.path for f in mlflow.artifacts.list_artifacts(uri)] == listed, uri
    # What is on disk, as MLflow lists it: a file written into the folder, an empty folder.
    Path(local).with_name("draft.txt").write_text("x")
    Path(local).with_name("empty").mkdir()
    assert mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="notes") == [
        FileInfo("notes/draft.txt", False, 1),
        FileInfo("notes/empty", True, None),
        FileInfo("notes/readme.txt", False, 5),
    ]
    with pytest.raises(InvalidInputError, match="not both"):
        mlflow.artifacts.download_artifacts(f"runs:/{run_id}/x", run_id=run_id)
    with pytest.raises(InvalidInputError, match="no artifact file"):
        mlflow.artifacts.load_text(f"runs:/{run_id}/missing.txt")
    with pytest.raises(InvalidInputError, match="runs:/<run_id>/<path>, models:/"):
        mlflow.artifacts.load_text("s3://bucket/key")
    # A registered version's files, through the registry
    Client().create_registered_model("notes")
    version = Client().create_model_version("notes", f"runs:/{run_id}/notes", run_id)
    copied = mlflow.artifacts.download_artifacts(
        f"models:/notes/{version.version}", dst_path=tmp_path / "reg"
    )
    assert Path(copied, "readme.txt").read_text() == "hello"
    listed = mlflow.artifacts.list_artifacts(f"models:/notes/{version.version}")
    assert [f.path for f in listed] == ["draft.txt", "empty", "readme.txt"]  # as MLflow


def test_tables_and_images_as_mlflow_logs_them(store_dir: Path) -> None:
    import pandas as pd
    from PIL import Image

    ids = []
    for i in range(2):
        with mlflow.start_run() as run:
            mlflow.log_table({"q": ["a", "b"], "score": [i, i + 0.5]}, "eval.json")
            mlflow.log_table(pd.DataFrame({"q": ["c"], "score": [9.0]}), "eval.json")  # appended
            ids.append(run.info.run_id)
    with mlflow.start_run():
        pass  # a run without the table: left out
    table = mlflow.load_table("eval.json", extra_columns=["run_id"])
    assert sorted(table.columns) == ["q", "run_id", "score"]
    assert len(table) == 6 and set(table.run_id) == set(ids)
    mine = mlflow.load_table("eval.json", run_ids=[ids[0]])
    assert list(mine.q) == ["a", "b", "c"] and list(mine.score) == [0, 0.5, 9.0]
    with pytest.raises(InvalidInputError, match=r"end in \.json"):
        mlflow.log_table({"a": [1]}, "eval.csv", run_id=ids[0])
    with pytest.raises(InvalidInputError, match="one length"):
        mlflow.log_table({"a": [1], "b": [1, 2]}, "bad.json", run_id=ids[0])
    with pytest.raises(mlflow.exceptions.NotFoundError, match="no run has a table"):
        mlflow.load_table("other.json")
    with mlflow.start_run() as own:  # a table of its own run_id column; scalars make a row
        mlflow.log_table({"run_id": "theirs", "v": 1}, "ids.json")
    both = mlflow.load_table("ids.json", run_ids=[own.info.run_id], extra_columns=["run_id"])
    assert both.to_dict("records") == [{"run_id": "theirs", "v": 1, "run_id_": own.info.run_id}]
    with pytest.raises(InvalidInputError, match="holds images"):
        mlflow.log_table({"img": [Image.new("RGB", (2, 2))]}, "im.json", run_id=ids[0])

    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[:, :, 0] = 255
    with mlflow.start_run() as run:
        mlflow.log_image(pixels, "red.png")
        for step in range(2):
            mlflow.log_image(np.full((3, 3), step / 2), key="mask", step=step)
        with pytest.warns(mlflow.exceptions.NbtrackWarning, match="scaled to 0-1"):
            mlflow.log_image(np.array([[-1.0, 1.0]]), "normalized.png")  # as MLflow: rescaled
        mlflow.log_image(np.array([[True, False]]), "mask.png")
        mlflow.log_image(pixels, "red.jpg")
        with pytest.raises(InvalidInputError, match="1, 3 or 4 channels"):
            mlflow.log_image(np.zeros((2, 2, 5)), "bad.png")
        with pytest.raises(InvalidInputError, match="image format"):
            mlflow.log_image(pixels, "noext")
        with pytest.raises(InvalidInputError, match="artifact_file, or key"):
            mlflow.log_image(pixels)
    files = {p for p, _ in Client().list_artifact_files(run.info.run_id)}
    assert files == {"red.png", "red.jpg", "mask.png", "normalized.png",
                     "images/mask/step-0.png", "images/mask/step-1.png"}

    def opened(name: str) -> Any:
        return Image.open(Path(Client().get_artifact_uri(run.info.run_id, name)))

    assert opened("red.png").size == (6, 4) and opened("red.png").getpixel((0, 0)) == (255, 0, 0)
    assert opened("red.jpg").format == "JPEG"
    assert [opened("mask.png").getpixel((x, 0)) for x in (0, 1)] == [255, 0]
    assert [opened("normalized.png").getpixel((x, 0)) for x in (0, 1)] == [0, 255]
