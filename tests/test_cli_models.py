"""``nbtrack models``: the registry from a terminal, and gc keeping what registered models use."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import nbtrack
from nbtrack.cli import cli


@pytest.fixture
def registered(store_dir: Path) -> list[str]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    run_ids = []
    for c in (1.0, 0.1):
        with nbtrack.start_run() as run:
            nbtrack.log_model(LogisticRegression(C=c, max_iter=500).fit(X, y), "model",
                              registered_model_name="iris")
        run_ids.append(run.info.run_id)
    return run_ids


def _run(store: Path, *args: str) -> tuple[int, str]:
    # env= makes the runner restore the variable afterwards (the models group sets it).
    result = CliRunner().invoke(
        cli, ["--store", str(store), "models", *args], env={"NBTRACK_TRACKING_URI": str(store)}
    )
    return result.exit_code, result.output


def test_stage_alias_versions_list_and_history(store_dir: Path, registered: list[str]) -> None:
    assert _run(store_dir, "stage", "iris", "1", "production", "-m", "launch") == (
        0, "iris version 1 is now in Production\n"
    )
    code, out = _run(store_dir, "stage", "iris", "2", "Production", "--archive-existing")
    assert code == 0
    assert _run(store_dir, "alias", "iris", "champion", "2")[0] == 0
    code, out = _run(store_dir, "versions", "iris")
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["2", "Production", "champion"]
    assert lines[2].split()[:2] == ["1", "Archived"]
    code, out = _run(store_dir, "list")
    assert "Production: v2" in out and "@champion: v2" in out
    code, out = _run(store_dir, "history", "iris")
    assert "None -> Production" in out and "launch" in out and "Production -> Archived" in out
    code, out = _run(store_dir, "history", "iris", "-v", "1")
    assert "alias:champion" not in out
    assert _run(store_dir, "alias", "iris", "champion", "--delete")[0] == 0
    assert nbtrack.Client().get_registered_model("iris").aliases == {}


def test_bad_input_exits_1_with_the_reason(store_dir: Path, registered: list[str]) -> None:
    code, out = _run(store_dir, "stage", "iris", "1", "Live")
    assert code == 1 and "None, Staging, Production, Archived" in out
    code, out = _run(store_dir, "versions", "nope")
    assert code == 1 and "no registered model named 'nope'" in out
    code, out = _run(store_dir, "alias", "iris", "latest", "1")
    assert code == 1 and "reserved" in out
    code, out = _run(store_dir, "alias", "iris", "champion")
    assert code == 2 and "VERSION" in out
    assert "Traceback" not in out


def test_delete_asks_for_force(store_dir: Path, registered: list[str]) -> None:
    _run(store_dir, "stage", "iris", "1", "Production")
    code, out = _run(store_dir, "delete", "iris", "--version", "1")
    assert code == 1 and "--force" in out
    assert _run(store_dir, "delete", "iris", "--version", "1", "--force")[0] == 0
    code, out = _run(store_dir, "delete", "iris")
    assert code == 1 and "1 version(s)" in out
    assert _run(store_dir, "delete", "iris", "--force")[0] == 0
    assert _run(store_dir, "list")[1] == "(none)\n"


def test_gc_keeps_deleted_runs_that_registered_versions_use(
    store_dir: Path, registered: list[str]
) -> None:
    client = nbtrack.Client()
    with nbtrack.start_run() as spare:
        nbtrack.log_param("x", 1)
    for run_id in [*registered, spare.info.run_id]:
        client.delete_run(run_id)
    client.delete_model_version("iris", 2)  # run 2's model is no longer registered
    result = CliRunner().invoke(cli, ["--store", str(store_dir), "gc"])
    assert result.exit_code == 0, result.output
    assert "purged 2 deleted run(s)" in result.output
    # The run kept is named, with the version that keeps it.
    assert f"kept deleted run {registered[0]}: registered model version(s) iris v1" in (
        result.output
    )
    assert nbtrack.load_model("models:/iris/1").C == 1.0


def test_gc_keeps_runs_a_version_names_only_by_its_source(store_dir: Path) -> None:
    """Registered from the run's model folder, or by create_model_version with a runs:/ URI,
    a version records no run id; its run's files must survive gc all the same."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    client = nbtrack.Client()
    runs = []
    for c in (1.0, 0.5):
        with nbtrack.start_run() as run:
            nbtrack.log_model(LogisticRegression(C=c, max_iter=500).fit(X, y), "model")
        runs.append(run.info.run_id)
    folder = nbtrack.get_run(runs[0]).info.artifact_uri + "/model"
    nbtrack.register_model(folder, "by-folder")
    client.create_registered_model("by-uri")
    client.create_model_version("by-uri", f"runs:/{runs[1]}/model")
    assert client.get_model_version("by-folder", 1).run_id is None  # as MLflow leaves them
    for run_id in runs:
        client.delete_run(run_id)
    result = CliRunner().invoke(cli, ["--store", str(store_dir), "gc"])
    assert result.exit_code == 0, result.output
    assert "purged 0 deleted run(s)" in result.output
    assert f"kept deleted run {runs[0]}: registered model version(s) by-folder v1" in result.output
    assert nbtrack.load_model("models:/by-folder/1").C == 1.0
    assert nbtrack.load_model("models:/by-uri/1").C == 0.5


def test_predict_scores_a_csv_with_a_registered_model(
    store_dir: Path, registered: list[str], tmp_path: Path
) -> None:
    X, _ = load_iris(return_X_y=True, as_frame=True)
    X[:4].to_csv(tmp_path / "batch.csv", index=False)
    _run(store_dir, "alias", "iris", "champion", "1")
    code, out = _run(store_dir, "predict", "models:/iris@champion", "-i",
                      str(tmp_path / "batch.csv"), "-o", str(tmp_path / "scored.csv"))
    assert code == 0, out
    scored = (tmp_path / "scored.csv").read_text().split()
    expected = nbtrack.load_model("models:/iris/1").predict(X[:4])
    assert scored == ["prediction", *map(str, expected)]
    code, out = _run(store_dir, "predict", "models:/iris/Production", "-i",
                     str(tmp_path / "batch.csv"))
    assert code == 1 and "no version in stage 'Production'" in out


def test_predict_with_a_model_folder_needs_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `models` passes --store on in the environment: restored after the test
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "none"))
    X, y = load_iris(return_X_y=True, as_frame=True)
    nbtrack.sklearn.save_model(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "model")
    X[:3].to_csv(tmp_path / "batch.csv", index=False)
    result = CliRunner().invoke(
        cli,
        ["--store", str(tmp_path / "none"), "models", "predict", str(tmp_path / "model"), "-i",
         str(tmp_path / "batch.csv")],
    )
    assert result.exit_code == 0, result.output
    assert result.output.split()[0] == "prediction"
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("command", ["predict", "serve"])
@pytest.mark.parametrize("uri", ["models:/iris/1", "runs:/0123abcd/model"])
def test_a_store_uri_with_a_mistyped_store_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, uri: str
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "typo"))
    (tmp_path / "batch.csv").write_text("a\n1\n")
    extra = ["-i", str(tmp_path / "batch.csv")] if command == "predict" else ["--port", "0"]
    result = CliRunner().invoke(
        cli, ["--store", str(tmp_path / "typo"), "models", command, uri, *extra]
    )
    assert result.exit_code == 1
    assert "no nbtrack store at" in result.output and "--store" in result.output
    assert not (tmp_path / "typo").exists()
