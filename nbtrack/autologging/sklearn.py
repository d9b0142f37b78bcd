"""scikit-learn autolog: every ``fit`` of an estimator, a pipeline or a search is recorded.

Logged for the outermost ``fit`` (a pipeline's steps and a search's candidates are fitted
inside it, unlogged):

- params: ``get_params(deep=True)`` (a pipeline's nested params as ``clf__C``), objects shown
  by their repr;
- metrics on the training data: ``training_score``, and for classifiers accuracy, precision,
  recall, f1 (weighted), log loss and ROC AUC where the estimator has ``predict_proba``; for
  regressors mse, rmse, mae and r2;
- tags ``nbtrack.trainingData.shape``, ``.dtypes``, ``.digest``: the data's
  fingerprint (see :mod:`nbtrack.autologging.fingerprint`);
- searches (GridSearchCV, RandomizedSearchCV): ``best_*`` params and ``best_cv_score`` on the
  run, every candidate's scores as ``cv_results.csv``, and one child run per candidate for
  the ``max_tuning_runs`` best (default 5);
- the fitted model as the artifact ``model`` (``log_models=False`` to skip), and a search's
  refitted best estimator as ``best_estimator``.
"""

from __future__ import annotations

import math
import sys
from types import FrameType
from typing import Any

from .fingerprint import log_fingerprint
from .patching import call_safely, patch, unpatch, warn
from .scope import (
    check_max_tuning_runs,
    child_run,
    configure,
    example_and_signature,
    fit_run,
    log_params,
    model_artifact_path,
    param_value,
    run_logged,
)

__all__ = ["disable", "enable"]

INTEGRATION = "sklearn"
#: The settings of the last ``enable``; each call starts from these defaults.
_DEFAULTS: dict[str, Any] = {
    "log_models": True,
    "max_tuning_runs": 5,
    "log_input_examples": True,
    "log_model_signatures": True,
    "log_datasets": True,
    "serialization_format": None,
    "registered_model_name": None,
    "pos_label": None,
}
_config: dict[str, Any] = dict(_DEFAULTS)


def _fit_owners() -> list[tuple[type, str]]:
    """(class, method) pairs to patch: where each estimator's fit/fit_transform/fit_predict is
    defined (once per defining class)."""
    from sklearn.utils import all_estimators

    found: dict[tuple[type, str], None] = {}
    for _, cls in all_estimators():
        for method in ("fit", "fit_transform", "fit_predict"):
            for klass in cls.__mro__:
                if method in klass.__dict__:
                    if klass.__module__.startswith("sklearn."):
                        found[(klass, method)] = None
                    break
    return list(found)


def enable(log_models: bool = True, max_tuning_runs: int = 5, **options: Any) -> None:
    """``options``: the other keys of ``_config`` (see ``nbtrack.sklearn.autolog``)."""
    check_max_tuning_runs(max_tuning_runs)
    configure(INTEGRATION, _config, _DEFAULTS, log_models=log_models,
              max_tuning_runs=max_tuning_runs, **options)
    for owner, method in _fit_owners():
        patch(INTEGRATION, owner, method, _hook)


def disable() -> None:
    unpatch(INTEGRATION)


def _split_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    X = args[0] if args else kwargs.get("X", kwargs.get("raw_documents"))
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    return X, y


def _made_by_sklearn_itself() -> bool:
    """Whether the fit being hooked was called by scikit-learn's own code rather than the
    user's: a metric's label encoder (``classification_report``, ``f1_score``), a scorer's.
    Those are no training of the user's, and no run. (The fold fits of ``cross_validate``
    and the like, in ``sklearn.model_selection``, are the user's training, as in MLflow.)"""
    caller: FrameType | None = sys._getframe(1)
    while caller is not None and _module_of(caller).startswith("nbtrack."):
        caller = caller.f_back  # past the hook and the patch's wrappers, however many
    module = "" if caller is None else _module_of(caller)
    return module.startswith("sklearn.") and not module.startswith("sklearn.model_selection")


def _module_of(frame: Any) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _hook(integration: str, original: Any, estimator: Any, args: tuple, kwargs: dict) -> Any:
    if _made_by_sklearn_itself():
        return original(estimator, *args, **kwargs)

    def finish(client: Any, run_id: str, result: Any) -> None:
        X, y = _split_args(args, kwargs)
        call_safely(integration, "logging params", log_params, integration, client, run_id,
                    estimator.get_params(deep=True))
        if _config["log_datasets"]:
            call_safely(integration, "logging the data fingerprint", log_fingerprint, client,
                        run_id, X)
        call_safely(integration, "computing training metrics", _log_metrics, client, run_id,
                    estimator, X, y)
        if hasattr(estimator, "cv_results_"):
            call_safely(integration, "logging the search", _log_search, client, run_id,
                        estimator)
        if _config["log_models"]:
            call_safely(integration, "logging the model", _log_model, estimator, X)
            if hasattr(estimator, "cv_results_") and hasattr(estimator, "best_estimator_"):
                call_safely(integration, "logging the best estimator", _log_model,
                            estimator.best_estimator_, X, "best_estimator")

    return run_logged(
        integration, fit_run(integration, type(estimator).__name__),
        lambda _: original(estimator, *args, **kwargs), finish=finish,
    )


def _classifier_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(X)
    pos_label = _config["pos_label"]
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y, predicted, zero_division=0,
        **({"average": "weighted"} if pos_label is None
           else {"average": "binary", "pos_label": pos_label}),
    )
    out = {
        "training_accuracy_score": metrics.accuracy_score(y, predicted),
        "training_precision_score": precision,
        "training_recall_score": recall,
        "training_f1_score": f1,
    }
    if hasattr(estimator, "predict_proba"):
        try:
            proba = estimator.predict_proba(X)
        except Exception:  # e.g. SVC(probability=False) exposes the method but refuses
            return out
        labels = getattr(estimator, "classes_", None)
        out["training_log_loss"] = metrics.log_loss(y, proba, labels=labels)
        if proba.shape[1] == 2:
            out["training_roc_auc"] = metrics.roc_auc_score(y, proba[:, 1])
        else:
            out["training_roc_auc"] = metrics.roc_auc_score(
                y, proba, multi_class="ovr", labels=labels)
    return out


def _regressor_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(X)
    mse = metrics.mean_squared_error(y, predicted)
    return {
        "training_mean_squared_error": mse,
        "training_root_mean_squared_error": math.sqrt(mse),
        "training_mean_absolute_error": metrics.mean_absolute_error(y, predicted),
        "training_r2_score": metrics.r2_score(y, predicted),
    }


def _log_metrics(client: Any, run_id: str, estimator: Any, X: Any, y: Any) -> None:
    from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

    if X is None or y is None or not hasattr(estimator, "predict"):
        return
    values: dict[str, float] = {}
    score = getattr(type(estimator), "score", None)
    if is_classifier(estimator):
        values.update(_classifier_metrics(estimator, X, y))
        if score is ClassifierMixin.score:  # accuracy: computed already
            values["training_score"] = values["training_accuracy_score"]
    elif is_regressor(estimator):
        values.update(_regressor_metrics(estimator, X, y))
        if score is RegressorMixin.score:  # r2: computed already
            values["training_score"] = values["training_r2_score"]
    if "training_score" not in values and score is not None:
        values["training_score"] = float(estimator.score(X, y))
    client.log_metrics(run_id, {k: float(v) for k, v in values.items()})


def _log_search(client: Any, run_id: str, search: Any) -> None:
    """Best params on the run; the best ``max_tuning_runs`` candidates as child runs."""
    import numpy as np

    from ..exceptions import ParamConflictError

    try:
        client.log_params(run_id, {f"best_{k}": param_value(v)
                                   for k, v in search.best_params_.items()})
    except (ParamConflictError, AttributeError) as exc:
        warn(INTEGRATION, f"best params not logged: {exc}")
    if hasattr(search, "best_score_"):
        client.log_metric(run_id, "best_cv_score", float(search.best_score_))
    results = search.cv_results_
    import pandas as pd

    # every candidate's scores, as MLflow logs them
    client.log_text(run_id, pd.DataFrame(results).to_csv(index=False), "cv_results.csv")
    ranks = np.asarray(results.get("rank_test_score", np.arange(1, len(results["params"]) + 1)))
    order = np.argsort(ranks, kind="stable")[: _config["max_tuning_runs"]]
    name = type(search.estimator).__name__
    for i in order:
        child = child_run(client, run_id, f"{name}-candidate-{int(i)}", INTEGRATION)
        client.log_params(child, {k: param_value(v) for k, v in results["params"][i].items()})
        metrics = {
            key: float(results[key][i])
            for key in results
            if key.startswith(("mean_", "std_", "rank_")) and np.isscalar(results[key][i])
        }
        client.log_metrics(child, metrics)
        client.set_terminated(child)


def _log_model(estimator: Any, X: Any, name: str = "model") -> None:
    from ..models.flavors.sklearn import log_model

    example = None
    if X is not None:
        try:
            example = X[:5] if not hasattr(X, "iloc") else X.iloc[:5]
        except Exception:
            example = None
    method = next((m for m in ("predict", "transform") if hasattr(estimator, m)), None)
    if method is None:  # nothing a pyfunc could call (a clustering without predict, say)
        return
    example, signature = example_and_signature(_config, example, getattr(estimator, method))
    log_model(estimator, model_artifact_path(name), input_example=example,
              pyfunc_predict_fn=method, signature=signature,
              serialization_format=_config["serialization_format"],
              registered_model_name=_config["registered_model_name"])
