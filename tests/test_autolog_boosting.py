"""Autolog for XGBoost and LightGBM, against the real libraries: the native ``train`` functions
and the scikit-learn wrappers, metrics per iteration, early stopping, feature importance, the
model, the run scope rules, failures that stay warnings, and disable."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

import nbtrack
from nbtrack.autologging import scope
from nbtrack.exceptions import NbtrackWarning

XGB_BINARY = {"objective": "binary:logistic", "max_depth": 3, "eval_metric": ["logloss", "error"]}
LGB_BINARY = {"objective": "binary", "num_leaves": 7, "verbose": -1}


@pytest.fixture(autouse=True)
def autolog_off() -> Iterator[None]:
    """Patches are global: every test leaves autolog off, as it found it."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbtrack.xgboost.autolog(disable=True)
        nbtrack.lightgbm.autolog(disable=True)
        nbtrack.sklearn.autolog(disable=True)
    for name in ("xgboost", "lightgbm", "sklearn"):
        scope.exclusive.discard(name)


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return X[:400], y[:400], X[400:], y[400:]


def _runs() -> list[Any]:
    return list(nbtrack.search_runs(output_format="list"))


def _only_run() -> Any:
    runs = _runs()
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return nbtrack.get_run(runs[0].info.run_id)


def _steps(run: Any, key: str) -> list[int]:
    return [m.step for m in nbtrack.Client().get_metric_history(run.info.run_id, key)]


def _artifacts(run: Any) -> set[str]:
    return {path for path, _ in nbtrack.Client().list_artifact_files(run.info.run_id)}


def _artifact(run: Any, path: str) -> Path:
    return Path(nbtrack.Client().get_artifact_uri(run.info.run_id, path))


# -- XGBoost ------------------------------------------------------------------------------------


def test_xgboost_train_logs_params_metric_steps_and_data(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    dtrain, dvalid = xgb.DMatrix(X, y), xgb.DMatrix(Xv, yv)
    seen: list[int] = []

    class Count(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            seen.append(epoch)
            return False

    nbtrack.xgboost.autolog()
    # every argument by keyword, as people often write it
    booster = xgb.train(params=XGB_BINARY, dtrain=dtrain, num_boost_round=7,
                        evals=[(dtrain, "train"), (dvalid, "eval")], verbose_eval=False,
                        callbacks=[Count()])
    assert seen == list(range(7))  # the user's callback still runs
    run = _only_run()
    assert run.info.run_name == "xgboost.train"
    assert run.info.status == "FINISHED"
    assert run.data.tags["nbtrack.autolog"] == "xgboost"
    assert run.data.params["objective"] == "binary:logistic"
    assert run.data.params["max_depth"] == "3"
    assert run.data.params["num_boost_round"] == "7"
    assert "early_stopping_rounds" not in run.data.params
    for key in ("train-logloss", "train-error", "eval-logloss", "eval-error"):
        assert _steps(run, key) == list(range(7)), key
    assert run.data.metrics["eval-logloss"] == pytest.approx(
        float(booster.eval(dvalid).split("eval-logloss:")[1].split()[0]), rel=1e-5)
    assert "best_iteration" not in run.data.metrics
    assert run.data.tags["nbtrack.trainingData.shape"] == "400x30"
    assert run.data.tags["nbtrack.trainingData.dtypes"] == "float32"
    assert len(run.data.tags["nbtrack.trainingData.digest"]) == 16


def test_xgboost_early_stopping_records_the_best_iteration(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.xgboost.autolog()
    booster = xgb.train({"objective": "binary:logistic", "eta": 0.9}, xgb.DMatrix(X, y), 200,
                        evals=[(xgb.DMatrix(Xv, yv), "eval")], early_stopping_rounds=3,
                        verbose_eval=False)
    run = _only_run()
    assert run.data.params["early_stopping_rounds"] == "3"
    assert run.data.metrics["best_iteration"] == booster.best_iteration
    assert run.data.metrics["best_score"] == pytest.approx(booster.best_score)
    ran = booster.num_boosted_rounds()
    assert ran < 200
    assert _steps(run, "eval-logloss") == list(range(ran))


def test_xgboost_metric_names_are_made_valid_keys(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.xgboost.autolog()
    xgb.train({"objective": "binary:logistic", "eval_metric": "error@0.7"}, xgb.DMatrix(X, y),
              3, evals=[(xgb.DMatrix(Xv, yv), "eval")], verbose_eval=False)
    assert _steps(_only_run(), "eval-error_at_0.7") == [0, 1, 2]


def test_xgboost_wrapper_is_logged_once_as_the_wrapper(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.xgboost.autolog()
    model = xgb.XGBClassifier(n_estimators=6, max_depth=2)
    model.fit(X, y, eval_set=[(X, y), (Xv, yv)], verbose=False)
    run = _only_run()  # not a second run for the train call inside fit
    assert run.info.run_name == "XGBClassifier"
    assert run.data.params["n_estimators"] == "6"
    assert run.data.params["max_depth"] == "2"
    assert _steps(run, "validation_0-logloss") == list(range(6))
    assert _steps(run, "validation_1-logloss") == list(range(6))
    assert run.data.tags["nbtrack.trainingData.shape"] == "400x30"
    assert run.data.tags["nbtrack.trainingData.dtypes"] == "float64"


@pytest.mark.parametrize(
    ("make", "objective"),
    [
        (lambda: xgb.XGBClassifier(n_estimators=2), "multi:softprob"),
        (lambda: lgb.LGBMClassifier(n_estimators=2, verbose=-1), "multiclass"),
    ],
)
def test_a_wrapper_logs_the_objective_its_fit_settled(
    store_dir: Path, make: Any, objective: str
) -> None:
    """For three classes the fit trains ``multi:softprob`` / ``multiclass`` with ``num_class``,
    where ``get_params()`` said ``binary:logistic`` / None before it; logged as MLflow does."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    nbtrack.xgboost.autolog()
    nbtrack.lightgbm.autolog()
    make().fit(X, y)
    params = _only_run().data.params
    assert (params["objective"], params["num_class"]) == (objective, "3")


def test_xgboost_rf_wrapper_nested_fit_is_logged_once(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog()
    xgb.XGBRFClassifier(n_estimators=3, max_depth=2).fit(X, y)  # fit calls XGBClassifier.fit
    assert _only_run().info.run_name == "XGBRFClassifier"


def test_xgboost_wrapper_early_stopping(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.xgboost.autolog()
    model = xgb.XGBClassifier(n_estimators=200, learning_rate=0.9, early_stopping_rounds=3)
    model.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    run = _only_run()
    assert run.data.params["early_stopping_rounds"] == "3"
    assert run.data.metrics["best_iteration"] == model.best_iteration
    assert run.data.metrics["best_score"] == pytest.approx(model.best_score)


def test_xgboost_feature_importance_tables_and_plot(store_dir: Path, data: Any) -> None:
    import pandas as pd

    X, y, _, _ = data
    frame = pd.DataFrame(X, columns=[f"feature {i}" for i in range(X.shape[1])])
    nbtrack.xgboost.autolog()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(frame, y), 5)
    run = _only_run()
    assert {"feature_importance_weight.json", "feature_importance_gain.json",
            "feature_importance_cover.json", "feature_importance.png"} <= _artifacts(run)
    for kind in ("weight", "gain", "cover"):
        table = json.loads(_artifact(run, f"feature_importance_{kind}.json").read_text())
        assert set(table) == set(frame.columns)  # unused features are there, at 0
        values = list(table.values())
        assert values == sorted(values, reverse=True)
        for name, score in booster.get_score(importance_type=kind).items():
            assert table[name] == pytest.approx(score)
    assert _artifact(run, "feature_importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_xgboost_gblinear_has_weight_importance_only(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)  # a missing type is no failure
        xgb.train({"objective": "binary:logistic", "booster": "gblinear"}, xgb.DMatrix(X, y), 3)
    artifacts = _artifacts(_only_run())
    assert "feature_importance_weight.json" in artifacts
    assert "feature_importance_gain.json" not in artifacts


def test_no_plot_without_matplotlib(store_dir: Path, data: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    X, y, _, _ = data
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    nbtrack.xgboost.autolog()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)
        xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 2)
    artifacts = _artifacts(_only_run())
    assert "feature_importance_gain.json" in artifacts
    assert "feature_importance.png" not in artifacts


def test_xgboost_models_load_back(store_dir: Path, data: Any) -> None:
    X, y, Xv, _ = data
    nbtrack.xgboost.autolog()
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 4)
    model = xgb.XGBRegressor(n_estimators=4).fit(X, y)
    first, second = sorted(_runs(), key=lambda r: r.info.start_time)
    loaded = nbtrack.load_model(f"runs:/{first.info.run_id}/model")
    assert isinstance(loaded, xgb.Booster)
    assert np.allclose(loaded.predict(xgb.DMatrix(Xv)), booster.predict(xgb.DMatrix(Xv)))
    loaded = nbtrack.load_model(f"runs:/{second.info.run_id}/model")
    assert isinstance(loaded, xgb.XGBRegressor)
    assert np.allclose(loaded.predict(Xv), model.predict(Xv))
    assert "model/input_example.json" in _artifacts(second)


def test_log_models_false_logs_no_model(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog(log_models=False)
    nbtrack.lightgbm.autolog(log_models=False)
    xgb.XGBClassifier(n_estimators=2).fit(X, y)
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    for run in _runs():
        assert not any(path.startswith("model/") for path in _artifacts(run))
        assert "feature_importance.png" in _artifacts(run)


def test_the_xgboost_switch_takes_mlflow_s_keywords(store_dir: Path, data: Any) -> None:
    from nbtrack.exceptions import InvalidInputError

    X, y, _, _ = data
    nbtrack.xgboost.autolog(
        importance_types=["gain"], log_input_examples=False, log_model_signatures=True,
        log_datasets=False, registered_model_name="xgb-clf", model_format="json",
        extra_tags={"team": "risk"}, disable_for_unsupported_versions=True,
    )
    xgb.XGBClassifier(n_estimators=2).fit(X, y)
    run = _only_run()
    assert run.data.tags["team"] == "risk"
    assert "nbtrack.trainingData.shape" not in run.data.tags
    files = _artifacts(run)
    assert "feature_importance_gain.json" in files and "feature_importance_weight.json" not in files
    assert "model/input_example.json" not in files and "model/model.json" in files
    version = nbtrack.Client().get_model_version("xgb-clf", 1)
    assert version.run_id == run.info.run_id
    assert nbtrack.pyfunc.load_model("models:/xgb-clf/1").metadata.signature is not None
    for bad in ({"importance_types": "gain"}, {"importance_types": ["heavy"]},
                {"model_format": "pickle"}, {"extra_tags": "team"}):
        with pytest.raises(InvalidInputError):
            nbtrack.xgboost.autolog(**bad)  # type: ignore[arg-type]


def test_a_failed_training_ends_its_run_failed(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog()
    with pytest.raises(xgb.core.XGBoostError):
        xgb.train({"objective": "no:such-objective"}, xgb.DMatrix(X, y), 2)
    assert _only_run().info.status == "FAILED"


# -- LightGBM -----------------------------------------------------------------------------------


def test_lightgbm_train_logs_params_metric_steps_and_data(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    train_set = lgb.Dataset(X, y)
    seen: list[int] = []
    nbtrack.lightgbm.autolog()
    lgb.train(params=LGB_BINARY, train_set=train_set, num_boost_round=5,
              valid_sets=[train_set, lgb.Dataset(Xv, yv, reference=train_set)],
              callbacks=[lambda env: seen.append(env.iteration)])
    assert seen == list(range(5))
    run = _only_run()
    assert run.info.run_name == "lightgbm.train"
    assert run.data.tags["nbtrack.autolog"] == "lightgbm"
    assert run.data.params["objective"] == "binary"
    assert run.data.params["num_leaves"] == "7"
    assert run.data.params["num_boost_round"] == "5"
    assert _steps(run, "training-binary_logloss") == list(range(5))
    assert _steps(run, "valid_1-binary_logloss") == list(range(5))
    assert "best_iteration" not in run.data.metrics
    assert run.data.tags["nbtrack.trainingData.shape"] == "400x30"  # read before LightGBM frees it


def test_lightgbm_early_stopping_records_the_best_iteration(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    train_set = lgb.Dataset(X, y)
    nbtrack.lightgbm.autolog()
    booster = lgb.train({**LGB_BINARY, "learning_rate": 0.9}, train_set, 200,
                        valid_sets=[lgb.Dataset(Xv, yv, reference=train_set)],
                        callbacks=[lgb.early_stopping(3, verbose=False)])
    run = _only_run()
    assert 0 < booster.best_iteration < 200
    assert run.data.metrics["best_iteration"] == booster.best_iteration
    assert run.data.metrics["best_valid_0-binary_logloss"] == pytest.approx(
        booster.best_score["valid_0"]["binary_logloss"])
    # the iteration at which early stopping ended the training is logged too
    assert _steps(run, "valid_0-binary_logloss") == list(range(booster.best_iteration + 3))


def test_lightgbm_wrapper_is_logged_once_as_the_wrapper(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.lightgbm.autolog()
    model = lgb.LGBMClassifier(n_estimators=6, num_leaves=5, verbose=-1)
    model.fit(X, y, eval_X=(Xv,), eval_y=(yv,))
    run = _only_run()
    assert run.info.run_name == "LGBMClassifier"
    assert run.data.params["n_estimators"] == "6"
    assert run.data.params["num_leaves"] == "5"
    assert _steps(run, "valid_0-binary_logloss") == list(range(6))
    assert run.data.tags["nbtrack.trainingData.shape"] == "400x30"


def test_lightgbm_feature_importance_tables_and_plot(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.lightgbm.autolog()
    booster = lgb.train(LGB_BINARY, lgb.Dataset(X, y), 5)
    run = _only_run()
    assert {"feature_importance_split.json", "feature_importance_gain.json",
            "feature_importance.png"} <= _artifacts(run)
    for kind in ("split", "gain"):
        table = json.loads(_artifact(run, f"feature_importance_{kind}.json").read_text())
        expected = dict(zip(booster.feature_name(),
                            booster.feature_importance(importance_type=kind), strict=True))
        assert table == pytest.approx(expected)
        assert list(table.values()) == sorted(table.values(), reverse=True)
    assert _artifact(run, "feature_importance.png").read_bytes()[:4] == b"\x89PNG"


def test_lightgbm_models_load_back(store_dir: Path, data: Any) -> None:
    X, y, Xv, _ = data
    nbtrack.lightgbm.autolog()
    booster = lgb.train(LGB_BINARY, lgb.Dataset(X, y), 4)
    model = lgb.LGBMRegressor(n_estimators=4, verbose=-1).fit(X, y)
    first, second = sorted(_runs(), key=lambda r: r.info.start_time)
    loaded = nbtrack.load_model(f"runs:/{first.info.run_id}/model")
    assert isinstance(loaded, lgb.Booster)
    assert np.allclose(loaded.predict(Xv), booster.predict(Xv))
    assert "model/input_example.json" in _artifacts(first)
    loaded = nbtrack.load_model(f"runs:/{second.info.run_id}/model")
    assert isinstance(loaded, lgb.LGBMRegressor)
    assert np.allclose(loaded.predict(Xv), model.predict(Xv))



def _fingerprinted(run: Any) -> bool:
    return any(key.startswith("nbtrack.trainingData.") for key in run.data.tags)


def _signature(run: Any) -> Any:
    return nbtrack.pyfunc.load_model(f"runs:/{run.info.run_id}/model").metadata.signature


def test_the_lightgbm_switch_takes_mlflow_s_keywords(store_dir: Path, data: Any) -> None:
    """``mlflow.lightgbm.autolog(...)``'s keywords, each doing what it says, for
    ``lightgbm.train`` and a wrapper's ``fit``."""
    X, y, _, _ = data
    nbtrack.lightgbm.autolog(
        log_input_examples=False, log_model_signatures=True, log_datasets=False,
        registered_model_name="lgb-clf", extra_tags={"team": "risk"},
        disable_for_unsupported_versions=True,
    )
    lgb.train(LGB_BINARY, lgb.Dataset(X, y), 3)
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    trained, fitted = sorted(_runs(), key=lambda r: r.info.start_time)
    for number, run in enumerate((trained, fitted), start=1):
        assert run.data.tags["team"] == "risk"  # extra_tags
        assert not _fingerprinted(run)  # log_datasets=False
        files = _artifacts(run)
        assert "model/input_example.json" not in files  # log_input_examples=False
        version = nbtrack.Client().get_model_version("lgb-clf", number)  # registered_model_name
        assert version.run_id == run.info.run_id
        # log_model_signatures=True: inferred from the rows, though they are not saved
        assert nbtrack.pyfunc.load_model(f"models:/lgb-clf/{number}").metadata.signature
    assert isinstance(nbtrack.lightgbm.load_model("models:/lgb-clf/1"), lgb.Booster)
    assert isinstance(nbtrack.lightgbm.load_model("models:/lgb-clf/2"), lgb.LGBMClassifier)
    with nbtrack.start_run() as mine:
        lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    assert "team" not in nbtrack.get_run(mine.info.run_id).data.tags  # not on the user's run


def test_each_lightgbm_switch_call_starts_from_the_defaults(store_dir: Path,
                                                            data: Any) -> None:
    X, y, _, _ = data
    nbtrack.lightgbm.autolog(log_input_examples=True, registered_model_name="lgb-clf",
                             extra_tags={"team": "risk"}, log_datasets=False)
    lgb.train(LGB_BINARY, lgb.Dataset(X, y), 2)
    (first,) = _runs()
    assert "model/input_example.json" in _artifacts(first) and _signature(first) is not None
    # the next call says only log_model_signatures: no tags, no registering, fingerprinted
    nbtrack.lightgbm.autolog(log_model_signatures=False)
    lgb.train(LGB_BINARY, lgb.Dataset(X, y), 2)
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    later = [r for r in _runs() if r.info.run_id != first.info.run_id]
    assert len(later) == 2
    for run in later:
        assert "team" not in run.data.tags
        assert _fingerprinted(run)
        assert "model/input_example.json" in _artifacts(run)  # saved, with no signature
        assert _signature(run) is None
    versions = nbtrack.search_model_versions(filter_string="name = 'lgb-clf'")
    assert [v.version for v in versions] == ["1"]  # only the first call's model registered
    # neither rows nor signature
    nbtrack.lightgbm.autolog(log_input_examples=False, log_model_signatures=False)
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    newest = max(_runs(), key=lambda r: r.info.start_time)
    assert "model/input_example.json" not in _artifacts(newest)
    assert _signature(newest) is None


def test_the_lightgbm_switch_rejects_bad_keywords(store_dir: Path) -> None:
    from nbtrack.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="extra_tags must be a dict"):
        nbtrack.lightgbm.autolog(extra_tags="team")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        nbtrack.lightgbm.autolog(extra_tags={"": "risk"})  # no empty tag key
    with pytest.raises(TypeError):
        nbtrack.lightgbm.autolog(importance_types=["gain"])  # type: ignore[call-arg]

# -- the rules both follow ----------------------------------------------------------------------


def test_inside_a_user_run_everything_goes_into_it(store_dir: Path, data: Any) -> None:
    X, y, Xv, yv = data
    nbtrack.xgboost.autolog()
    nbtrack.lightgbm.autolog()
    with nbtrack.start_run() as run:
        xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 3,
                  evals=[(xgb.DMatrix(Xv, yv), "eval")], verbose_eval=False)
        train_set = lgb.Dataset(X, y)
        # a second training in the same run cannot change params already logged: a warning
        with pytest.warns(NbtrackWarning, match="param not logged: param 'objective'"):
            lgb.train(LGB_BINARY, train_set, 3,
                      valid_sets=[lgb.Dataset(Xv, yv, reference=train_set)])
    runs = _runs()
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    logged = nbtrack.get_run(run.info.run_id)
    assert "nbtrack.autolog" not in logged.data.tags
    assert _steps(logged, "eval-logloss") == [0, 1, 2]
    assert _steps(logged, "valid_0-binary_logloss") == [0, 1, 2]
    assert "feature_importance_cover.json" in _artifacts(logged)  # from XGBoost
    assert "feature_importance_split.json" in _artifacts(logged)  # from LightGBM


def test_wrappers_inside_a_user_run_make_no_extra_runs(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog()
    nbtrack.lightgbm.autolog()
    with nbtrack.start_run() as run:
        xgb.XGBClassifier(n_estimators=2).fit(X, y)
    with nbtrack.start_run() as other:
        lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    assert {r.info.run_id for r in _runs()} == {run.info.run_id, other.info.run_id}
    assert nbtrack.get_run(run.info.run_id).data.params["n_estimators"] == "2"


def test_exclusive_logs_nothing_into_a_user_run(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    nbtrack.xgboost.autolog(exclusive=True)
    nbtrack.lightgbm.autolog(exclusive=True)
    with nbtrack.start_run() as run:
        booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 2)
        lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    assert booster.num_boosted_rounds() == 2
    logged = nbtrack.get_run(run.info.run_id)
    assert [r.info.run_id for r in _runs()] == [run.info.run_id]
    assert logged.data.params == {}
    assert logged.data.metrics == {}
    assert not any(k.startswith("nbtrack.trainingData.") for k in logged.data.tags)
    assert _artifacts(logged) == set()
    xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 2)  # outside: its own run
    assert len(_runs()) == 2


def test_an_error_in_logging_is_a_warning_and_training_goes_on(
        store_dir: Path, data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbtrack.autologging.lightgbm as lgb_autolog
    import nbtrack.autologging.xgboost as xgb_autolog

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    X, y, Xv, yv = data
    monkeypatch.setattr(xgb_autolog, "log_importance", boom)
    monkeypatch.setattr(xgb_autolog, "log_iteration", boom)
    monkeypatch.setattr(lgb_autolog, "log_iteration", boom)
    nbtrack.xgboost.autolog()
    nbtrack.lightgbm.autolog()
    with pytest.warns(NbtrackWarning) as caught:
        booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 5,
                            evals=[(xgb.DMatrix(Xv, yv), "eval")], verbose_eval=False)
    messages = [str(w.message) for w in caught]
    assert any("feature importance failed" in m and "boom" in m for m in messages)
    assert sum("per-iteration metrics stopped at iteration 0" in m for m in messages) == 1
    assert booster.num_boosted_rounds() == 5
    assert booster.predict(xgb.DMatrix(Xv)).shape == (len(Xv),)
    run = _only_run()
    assert run.info.status == "FINISHED"
    assert "model/MLmodel.json" in _artifacts(run)  # the rest was logged

    model = lgb.LGBMClassifier(n_estimators=4, verbose=-1)
    with pytest.warns(NbtrackWarning, match="per-iteration metrics stopped"):
        model.fit(X, y, eval_X=(Xv,), eval_y=(yv,))
    assert model.booster_.current_iteration() == 4
    assert model.predict(Xv).shape == (len(Xv),)


def test_silent_hides_the_warnings(store_dir: Path, data: Any,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import nbtrack.autologging.xgboost as xgb_autolog

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    X, y, _, _ = data
    monkeypatch.setattr(xgb_autolog, "log_importance", boom)
    nbtrack.xgboost.autolog(silent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)
        xgb.XGBClassifier(n_estimators=2).fit(X, y)
    assert len(_runs()) == 1


def _patched_names() -> dict[str, Any]:
    import lightgbm.engine
    import lightgbm.sklearn
    import xgboost.sklearn
    import xgboost.training

    found = {
        "xgboost.train": xgb.__dict__["train"],
        "xgboost.training.train": xgboost.training.__dict__["train"],
        "xgboost.sklearn.train": xgboost.sklearn.__dict__["train"],
        "lightgbm.train": lgb.__dict__["train"],
        "lightgbm.engine.train": lightgbm.engine.__dict__["train"],
        "lightgbm.sklearn.train": lightgbm.sklearn.__dict__["train"],
    }
    for cls in (xgboost.sklearn.XGBModel, xgb.XGBClassifier, xgb.XGBRanker,
                xgb.XGBRFClassifier, xgb.XGBRFRegressor, lightgbm.sklearn.LGBMModel,
                lgb.LGBMClassifier, lgb.LGBMRegressor, lgb.LGBMRanker):
        if "fit" in cls.__dict__:
            found[f"{cls.__name__}.fit"] = cls.__dict__["fit"]
    return found


def test_disable_puts_the_originals_back(store_dir: Path, data: Any) -> None:
    X, y, _, _ = data
    before = _patched_names()
    nbtrack.xgboost.autolog()
    nbtrack.lightgbm.autolog()
    nbtrack.xgboost.autolog()  # twice: still patched once
    patched = _patched_names()
    unchanged = {name for name in before if patched[name] is before[name]}
    assert unchanged == {"lightgbm.sklearn.train"}  # the wrappers' fit is patched instead
    xgb.XGBClassifier(n_estimators=2).fit(X, y)
    assert len(_runs()) == 1
    nbtrack.xgboost.autolog(disable=True)
    nbtrack.lightgbm.autolog(disable=True)
    after = _patched_names()
    assert all(after[name] is before[name] for name in before)
    xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 2)
    xgb.XGBClassifier(n_estimators=2).fit(X, y)
    lgb.train(LGB_BINARY, lgb.Dataset(X, y), 2)
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)
    assert len(_runs()) == 1  # nothing new


def test_a_booster_inside_a_logged_sklearn_fit_is_left_to_it(store_dir: Path,
                                                             data: Any) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _, _ = data
    nbtrack.sklearn.autolog(log_models=False)
    nbtrack.xgboost.autolog()
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=2)).fit(X, y)
    run = _only_run()
    assert run.data.tags["nbtrack.autolog"] == "sklearn"
    assert not any(key.startswith("validation") for key in run.data.metrics)
    assert "feature_importance.png" not in _artifacts(run)
