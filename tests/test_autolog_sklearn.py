"""scikit-learn autolog: what a fit records, where it goes, and that it never breaks training."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nbtrack
from nbtrack.autologging import sklearn as sk_autolog
from nbtrack.exceptions import InvalidInputError, NbtrackWarning


@pytest.fixture
def autolog(store_dir: Path) -> Iterator[None]:
    nbtrack.sklearn.autolog()
    yield
    nbtrack.autolog(disable=True)


@pytest.fixture
def iris() -> tuple:
    return load_iris(return_X_y=True, as_frame=True)


def _runs() -> list:
    return nbtrack.Client().search_runs(["0"], max_results=100)  # type: ignore[no-any-return]


def test_a_fit_outside_a_run_gets_its_own_run(autolog: None, iris: tuple) -> None:
    X, y = iris
    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    (run,) = _runs()
    assert run.info.run_name == "LogisticRegression" and run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5" and run.data.params["max_iter"] == "500"
    assert run.data.tags["nbtrack.autolog"] == "sklearn"
    assert set(run.data.metrics) == {
        "training_score", "training_accuracy_score", "training_precision_score",
        "training_recall_score", "training_f1_score", "training_log_loss", "training_roc_auc",
    }
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    assert run.data.tags["nbtrack.trainingData.shape"] == "150x4"
    loaded = nbtrack.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_regressor_metrics_and_the_pipeline_is_one_run(autolog: None) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    (run,) = _runs()  # the steps' own fits are not separate runs
    assert run.info.run_name == "Pipeline"
    assert "linearregression__fit_intercept" in run.data.params
    assert {"training_mean_squared_error", "training_root_mean_squared_error",
            "training_mean_absolute_error", "training_r2_score"} <= set(run.data.metrics)
    m = run.data.metrics
    assert m["training_root_mean_squared_error"] == pytest.approx(
        m["training_mean_squared_error"] ** 0.5)


def test_a_search_logs_best_params_and_bounded_child_runs(store_dir: Path, iris: tuple) -> None:
    X, y = iris
    nbtrack.sklearn.autolog(max_tuning_runs=2)
    try:
        search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.001, 0.1, 1, 10]}, cv=3)
        search.fit(X, y)
    finally:
        nbtrack.autolog(disable=True)
    runs = _runs()
    parent = next(r for r in runs if r.info.run_name == "GridSearchCV")
    children = [r for r in runs if r.data.tags.get("nbtrack.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    best_two = sorted(search.cv_results_["rank_test_score"])[:2]
    assert sorted(c.data.metrics["rank_test_score"] for c in children) == best_two
    # as MLflow: every candidate's scores, and the refitted best estimator beside the search
    import pandas as pd

    folder = Path(parent.info.artifact_uri)
    table = pd.read_csv(folder / "cv_results.csv")
    assert list(table["param_C"]) == [0.001, 0.1, 1, 10]
    assert list(table["rank_test_score"]) == list(search.cv_results_["rank_test_score"])
    best = nbtrack.sklearn.load_model(f"runs:/{parent.info.run_id}/best_estimator")
    assert isinstance(best, LogisticRegression) and search.best_params_["C"] == best.C
    assert (folder / "model").is_dir()  # the search itself, as before
    with pytest.raises(InvalidInputError, match="max_tuning_runs"):
        nbtrack.sklearn.autolog(max_tuning_runs=-1)


def test_inside_an_active_run_everything_goes_into_it(autolog: None, iris: tuple) -> None:
    X, y = iris
    with nbtrack.start_run(run_name="mine") as run:
        StandardScaler().fit(X)  # no y: params and fingerprint only
        LogisticRegression(max_iter=500).fit(X, y)
    (only,) = _runs()
    assert only.info.run_id == run.info.run_id
    assert "training_accuracy_score" in only.data.metrics
    # each fit's model kept: a logged model is never replaced
    folders = {p.split("/")[0] for p, _ in nbtrack.Client().list_artifact_files(run.info.run_id)}
    assert folders == {"model", "model-2"}


def test_a_tracked_cell_gets_the_fit(autolog: None, iris: tuple) -> None:
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext nbtrack", store_history=True)
    shell.user_ns.update(X=iris[0], y=iris[1], LogisticRegression=LogisticRegression)
    result = shell.run_cell("%%track -q\nmodel = LogisticRegression(max_iter=500).fit(X, y)",
                            store_history=True)
    assert result.error_in_exec is None
    (run,) = _runs()
    assert "training_accuracy_score" in run.data.metrics and run.data.params["max_iter"] == "500"


def test_the_fingerprint_tells_data_apart(autolog: None, iris: tuple) -> None:
    X, y = iris
    LogisticRegression(max_iter=500).fit(X, y)
    LogisticRegression(max_iter=500).fit(X, y)
    LogisticRegression(max_iter=500).fit(X.assign(**{X.columns[0]: X.iloc[:, 0] + 1}), y)
    digests = [r.data.tags["nbtrack.trainingData.digest"] for r in _runs()]
    assert len(set(digests)) == 2


def test_a_failing_hook_warns_and_training_goes_on(
    autolog: None, iris: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("metrics backend gone")

    monkeypatch.setattr(sk_autolog, "_log_metrics", broken)
    X, y = iris
    with pytest.warns(NbtrackWarning, match="metrics backend gone"):
        model = LogisticRegression(max_iter=500).fit(X, y)
    assert model.score(X, y) > 0.9
    nbtrack.sklearn.autolog(silent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(max_iter=500).fit(X, y)


def test_a_failing_fit_fails_its_run_and_raises(autolog: None) -> None:
    with pytest.raises(ValueError):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    (run,) = _runs()
    assert run.info.status == "FAILED" and "one class" in run.data.tags["nbtrack.error"]


def test_exclusive_stays_out_of_user_runs(store_dir: Path, iris: tuple) -> None:
    X, y = iris
    nbtrack.sklearn.autolog(exclusive=True)
    try:
        with nbtrack.start_run() as run:
            LogisticRegression(max_iter=500).fit(X, y)
        LogisticRegression(max_iter=500).fit(X, y)
    finally:
        nbtrack.autolog(disable=True)
    assert nbtrack.get_run(run.info.run_id).data.metrics == {}
    assert len(_runs()) == 2  # the user's, and the autolog run of the second fit


def test_disable_puts_the_originals_back(store_dir: Path, iris: tuple) -> None:
    original = LogisticRegression.__dict__["fit"]
    nbtrack.autolog()
    assert LogisticRegression.__dict__["fit"] is not original
    nbtrack.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original
    LogisticRegression(max_iter=500).fit(*iris)
    assert _runs() == []


def test_the_autolog_magic(store_dir: Path) -> None:
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext nbtrack", store_history=True)
    try:
        out = shell.run_line_magic("nbtrack", "autolog on sklearn")
        assert out is None
        assert "sklearn" in nbtrack.autologging.enabled_integrations()
        with pytest.raises(UsageError, match="unknown library tensorflow"):
            shell.run_line_magic("nbtrack", "autolog on tensorflow")
        with pytest.raises(UsageError, match=r"on\|off\|status"):
            shell.run_line_magic("nbtrack", "autolog maybe")
    finally:
        shell.run_line_magic("nbtrack", "autolog off")
    assert nbtrack.autologging.enabled_integrations() == []


def test_a_search_on_worker_threads_is_still_one_run(autolog: None, iris: tuple) -> None:
    from joblib import parallel_backend

    X, y = iris
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1, 10]}, cv=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)  # no param conflicts from candidates
        with parallel_backend("threading"):
            search.fit(X, y)
    runs = _runs()
    parent = next(r for r in runs if r.info.run_name == "GridSearchCV")
    assert parent.data.params["n_jobs"] == "2" and parent.data.params["estimator__C"] == "1.0"
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert len(runs) == 4  # the search and its three candidates, nothing logged from threads


def test_autolog_takes_mlflow_s_arguments(store_dir: Path, iris: tuple) -> None:
    X, y = iris
    try:
        on = nbtrack.autolog(
            log_input_examples=True, log_model_signatures=True, log_datasets=False,
            extra_tags={"team": "churn"}, exclude_flavors=["xgboost", "pytorch", "openai"],
            silent=True,
        )
        assert "sklearn" in on and "xgboost" not in on and "pytorch_lightning" not in on
        LogisticRegression(max_iter=300).fit(X, y)
        (run,) = _runs()
        assert run.data.tags["team"] == "churn"  # on every run autolog starts
        with nbtrack.start_run() as mine:
            LogisticRegression(max_iter=300).fit(X, y)
        assert "team" not in nbtrack.get_run(mine.info.run_id).data.tags  # not on the user's
    finally:
        nbtrack.autolog(disable=True)


_LATE_IMPORTS = """
import json, sys
import nbtrack

on = nbtrack.autolog(silent=True)
heavy = [m for m in ("sklearn", "xgboost", "lightgbm", "torch", "lightning", "keras", "optuna")
         if m in sys.modules]
{between}
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True))
import sklearn
last = nbtrack.last_active_run()
print(json.dumps({{"on": on, "heavy": heavy, "run": last and last.info.run_name,
                  "loader": type(sklearn.__spec__.loader).__name__}}))
"""


@pytest.mark.parametrize(
    ("between", "run"),
    [("", "LogisticRegression"), ("nbtrack.autolog(disable=True)", None),
     ("nbtrack.sklearn.autolog(disable=True)", None)],
)
def test_autolog_turns_a_library_on_when_it_is_imported(
    store_dir: Path, between: str, run: str | None
) -> None:
    """autolog() imports no library itself (torch, XGBoost... took seconds, and Keras found no
    backend chosen after it): each integration turns on as the notebook imports the library,
    which runs with its own loader; turned off before that, it stays off."""
    import json
    import os
    import subprocess
    import sys

    code = _LATE_IMPORTS.format(between=between)
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(store_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["heavy"] == [] and "sklearn" in seen["on"] and "xgboost" in seen["on"]
    assert seen["run"] == run
    assert seen["loader"] == "SourceFileLoader"


def test_a_hook_that_fails_does_not_fail_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What autolog meets when a library is imported is a warning; the import goes on, and the
    module keeps its loader's whole interface for find_spec's other callers."""
    import importlib.util
    import sys

    from nbtrack.autologging import post_import

    name = "nbtrack_hooked_module"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        post_import.when_imported(name, lambda: 1 / 0)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader.get_source(name) == "VALUE = 1\n"
        with pytest.warns(NbtrackWarning, match=f"after importing {name}: ZeroDivisionError"):
            module = importlib.import_module(name)
        assert module.VALUE == 1
        assert type(module.__spec__.loader).__name__ == "SourceFileLoader"
    finally:
        post_import.cancel(name)
        sys.modules.pop(name, None)
    with pytest.raises(InvalidInputError, match="max_tuning_runs"):
        nbtrack.autolog(max_tuning_runs=-1)  # said at once, not at the library's import


def test_the_sklearn_switch_takes_mlflow_s_keywords(store_dir: Path, iris: tuple) -> None:
    """``mlflow.sklearn.autolog(...)``'s keywords, each doing what it says."""
    from pathlib import Path as P

    X, y = iris
    try:
        with pytest.warns(UserWarning, match="post-training metrics"):
            nbtrack.sklearn.autolog(
                log_input_examples=False, log_model_signatures=True, log_datasets=False,
                registered_model_name="iris-clf", extra_tags={"team": "churn"},
                serialization_format="cloudpickle", disable_for_unsupported_versions=True,
                log_post_training_metrics=True, silent=True,
            )
        LogisticRegression(max_iter=300).fit(X, y)
        (run,) = _runs()
        assert run.data.tags["team"] == "churn"
        assert "nbtrack.trainingData.shape" not in run.data.tags  # log_datasets=False
        folder = P(run.info.artifact_uri) / "model"
        assert not (folder / "input_example.json").exists()  # log_input_examples=False
        version = nbtrack.Client().get_model_version("iris-clf", 1)
        assert version.run_id == run.info.run_id
        loaded = nbtrack.pyfunc.load_model("models:/iris-clf/1")
        assert loaded.metadata.signature is not None  # inferred from rows not saved
        with nbtrack.start_run() as mine:
            LogisticRegression(max_iter=300).fit(X, y)
        assert "team" not in nbtrack.get_run(mine.info.run_id).data.tags  # not on the user's
        # each call starts from the defaults: the example is saved again, no tags
        nbtrack.sklearn.autolog(log_model_signatures=False, silent=True)
        LogisticRegression(max_iter=300).fit(X, y)
        newest = _runs()[0]
        assert "team" not in newest.data.tags
        newest_folder = P(newest.info.artifact_uri) / "model"
        assert (newest_folder / "input_example.json").exists()
        assert nbtrack.pyfunc.load_model(str(newest_folder)).metadata.signature is None
        with pytest.raises(InvalidInputError, match="serialization_format must be one of"):
            nbtrack.sklearn.autolog(serialization_format="joblib")
        with pytest.raises(InvalidInputError, match="extra_tags must be a dict"):
            nbtrack.sklearn.autolog(extra_tags=["team"])  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            nbtrack.sklearn.autolog(no_such_option=True)  # type: ignore[call-arg]
    finally:
        nbtrack.autolog(disable=True)


def test_fits_that_scikit_learn_makes_itself_are_no_runs(autolog: None, iris: tuple) -> None:
    """classification_report, f1_score and log_loss fit label encoders of their own: no run
    of the user's, nor a model in the user's run."""
    from sklearn.metrics import classification_report, f1_score, log_loss
    from sklearn.model_selection import cross_val_score

    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    classification_report(y, model.predict(X))
    f1_score(y, model.predict(X), average="macro")
    log_loss(y, model.predict_proba(X))
    assert [r.info.run_name for r in _runs()] == ["LogisticRegression"]
    last = nbtrack.last_active_run()
    assert last is not None and last.info.run_name == "LogisticRegression"
    cross_val_score(LogisticRegression(max_iter=500), X, y, cv=2)  # the user's training
    assert len(_runs()) == 3


def test_a_library_switched_off_stays_off_under_autolog(store_dir: Path, iris: tuple) -> None:
    """MLflow's rule: nbtrack.sklearn.autolog(disable=True), then nbtrack.autolog()."""
    X, y = iris
    try:
        nbtrack.sklearn.autolog(disable=True)
        on = nbtrack.autolog(silent=True)
        assert "sklearn" not in on
        LogisticRegression(max_iter=300).fit(X, y)
        assert _runs() == []
        nbtrack.sklearn.autolog()  # its own switch turns it on again
        LogisticRegression(max_iter=300).fit(X, y)
        assert len(_runs()) == 1
    finally:
        nbtrack.autolog(disable=True)


def test_autolog_reports_a_library_that_cannot_load_once(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack import autologging

    broken = {"broken": ("json", "nbtrack.autologging.no_such_integration")}
    monkeypatch.setattr(autologging, "INTEGRATIONS", broken)
    monkeypatch.setattr(autologging, "_reported_broken", set())
    with pytest.warns(NbtrackWarning, match=r"autolog \(broken\) is off"):
        assert nbtrack.autolog() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nbtrack.autolog() == []  # said once is enough
    with pytest.warns(NbtrackWarning, match="is off"):  # asked for by name: said again
        autologging.library_autolog("broken", disable=False, exclusive=False, silent=False)
