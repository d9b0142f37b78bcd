"""XGBoost autolog: ``xgboost.train`` and the scikit-learn wrappers' ``fit``.

Logged for each training (a wrapper's ``fit`` is logged once, as the wrapper: it reaches the
booster through ``xgboost.sklearn.train``, which is not logged on its own):

- params: the ``params`` dict given to ``xgboost.train`` with ``num_boost_round`` (and
  ``early_stopping_rounds``, ``maximize`` when given); for a wrapper its ``get_params()``,
  objects shown by their repr;
- metrics, each iteration as a step (0, 1, ...): ``<eval name>-<metric>`` for every eval set
  and metric, as MLflow names them (``validation_0-logloss``, ``eval-rmse``); characters a
  metric key cannot hold are replaced (``ndcg@5`` becomes ``ndcg_at_5``). The callback that
  logs them is added after yours; none of yours is dropped;
- after early stopping: the metrics ``best_iteration`` (0-based, as XGBoost counts) and
  ``best_score``;
- feature importance: ``feature_importance_<type>.json`` for each of ``weight``, ``gain`` and
  ``cover`` that the booster has (a gblinear booster has only ``weight``), ``{feature:
  importance}`` from the most important down, unused features at 0; and one bar chart of the
  top 20 features per type, ``feature_importance.png`` (only when matplotlib is installed);
- tags ``nbtrack.trainingData.shape``, ``.dtypes``, ``.digest``: the training
  data's fingerprint (see :mod:`nbtrack.autologging.fingerprint`);
- the trained Booster or wrapper as the artifact ``model`` (``log_models=False`` to skip).

The helpers below :func:`disable` are generic: :mod:`nbtrack.autologging.lightgbm` uses them
too.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from .boosting import (
    argument,
    bind,
    call_with_callback,
    input_example,
    log_importance,
    log_iteration,
    metric_key,
    other_integration_running,
    patch_train,
    run_logged,
    settled_by_fit,
    wrapper_classes,
)
from .fingerprint import log_fingerprint
from .patching import call_safely, patch, unpatch, warn
from .scope import log_params, model_artifact_path

__all__ = ["disable", "enable"]

INTEGRATION = "xgboost"
#: The key the wrappers' own ``train`` (``xgboost.sklearn.train``) is patched under: its hook
#: only hands the wrapper's metric callback to the booster, and must run inside the wrapper's
#: patched ``fit`` (a call nested in the same integration would run plain).
_WRAPPED_TRAIN = "xgboost.sklearn.train"
IMPORTANCE_TYPES = ("weight", "gain", "cover")
#: Features drawn per importance type in ``feature_importance.png``.

#: The settings of the last ``enable``; each call starts from these defaults.
_DEFAULTS: dict[str, Any] = {
    "log_models": True,
    "importance_types": IMPORTANCE_TYPES,
    "log_input_examples": True,
    "log_model_signatures": True,
    "log_datasets": True,
    "registered_model_name": None,
    "model_format": "ubj",
}
_config: dict[str, Any] = dict(_DEFAULTS)
_pending = threading.local()  # .logger: the metric callback a wrapper's fit hands to its train


def enable(log_models: bool = True, **options: Any) -> None:
    """``options``: the other keys of ``_DEFAULTS``, and ``extra_tags`` (see
    ``nbtrack.xgboost.autolog``)."""
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    from .scope import configure

    configure(INTEGRATION, _config, _DEFAULTS, log_models=log_models, **options)
    for module in (xgboost, xgboost.training):
        patch_train(INTEGRATION, module, _train_hook)
    patch_train(_WRAPPED_TRAIN, xgboost.sklearn, _wrapped_train_hook)
    for cls in wrapper_classes("xgboost.sklearn", "XGBModel"):
        patch(INTEGRATION, cls, "fit", _fit_hook)


def disable() -> None:
    unpatch(INTEGRATION)
    unpatch(_WRAPPED_TRAIN)


# -- the hooks --------------------------------------------------------------------------------


def _train_hook(integration: str, original: Any, params: Any, args: tuple, kwargs: dict) -> Any:
    """``xgboost.train(params, dtrain, ...)``, logged as the run ``xgboost.train``."""
    call = bind(original, (params, *args), kwargs)
    if call is None or other_integration_running(INTEGRATION):
        return original(params, *args, **kwargs)

    def start(client: Any, run_id: str) -> Any:
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    _train_params(call))
        if _config["log_datasets"]:
            call_safely(INTEGRATION, "logging the data fingerprint", _log_dmatrix_fingerprint,
                        client, run_id, call.arguments.get("dtrain"))
        return call_safely(INTEGRATION, "setting up metric logging", _metric_logger,
                           client, run_id)

    def train(logger: Any) -> Any:
        return call_with_callback(original, call, logger)

    def finish(client: Any, run_id: str, booster: Any) -> None:
        _log_results(client, run_id, booster, booster, None)

    return run_logged(INTEGRATION, "xgboost.train", start, train, finish)


def _fit_hook(integration: str, original: Any, model: Any, args: tuple, kwargs: dict) -> Any:
    """A wrapper's ``fit(X, y, ...)``, logged as a run named after its class."""
    if other_integration_running(INTEGRATION):
        return original(model, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")

    def start(client: Any, run_id: str) -> Any:
        params = {k: v for k, v in model.get_params().items() if k != "objective"}  # see finish
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    params)
        if _config["log_datasets"]:
            call_safely(INTEGRATION, "logging the data fingerprint", log_fingerprint,
                        client, run_id, X)
        return call_safely(INTEGRATION, "setting up metric logging", _metric_logger,
                           client, run_id)

    def train(logger: Any) -> Any:
        _pending.logger = logger
        try:
            return original(model, *args, **kwargs)
        finally:
            _pending.logger = None

    def finish(client: Any, run_id: str, _: Any) -> None:
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    settled_by_fit(model.get_params().get("objective"), model))
        _log_results(client, run_id, model, model.get_booster(), input_example(X))

    return run_logged(INTEGRATION, type(model).__name__, start, train, finish)


def _wrapped_train_hook(integration: str, original: Any, params: Any, args: tuple,
                        kwargs: dict) -> Any:
    """``xgboost.sklearn.train`` inside a logged wrapper fit: add the fit's metric callback."""
    logger = getattr(_pending, "logger", None)
    if logger is None:
        return original(params, *args, **kwargs)
    _pending.logger = None  # for this one training only
    kwargs = {**kwargs, "callbacks": [*(kwargs.get("callbacks") or ()), logger]}
    return original(params, *args, **kwargs)


def _train_params(call: inspect.BoundArguments) -> dict[str, Any]:
    """The booster params (a dict, or XGBoost's list of pairs) and the training settings."""
    raw = argument(call, "params") or {}
    params: dict[str, Any] = {}
    for key, value in (raw.items() if isinstance(raw, dict) else raw):
        if key in params:  # [("eval_metric", "auc"), ("eval_metric", "logloss")]
            earlier = params[key]
            params[key] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
        else:
            params[key] = value
    params["num_boost_round"] = argument(call, "num_boost_round")
    for name in ("early_stopping_rounds", "maximize"):
        if argument(call, name) is not None:
            params[name] = argument(call, name)
    return params


def _log_results(client: Any, run_id: str, model: Any, booster: Any, example: Any) -> None:
    call_safely(INTEGRATION, "logging the best iteration", _log_best, client, run_id, booster)
    call_safely(INTEGRATION, "logging feature importance", log_importance, client, run_id,
                _importance_tables(booster), "XGBoost")
    if _config["log_models"]:
        call_safely(INTEGRATION, "logging the model", _log_model, model, example)


def _metric_logger(client: Any, run_id: str) -> Any:
    return _logger_class()(client, run_id)


@functools.cache
def _logger_class() -> type:
    import xgboost

    class MetricLogger(xgboost.callback.TrainingCallback):
        """Each iteration's eval results as metrics ``<eval>-<metric>``, step = iteration."""

        def __init__(self, client: Any, run_id: str) -> None:
            super().__init__()
            self.client = client
            self.run_id = run_id
            self.keys: dict[tuple[str, str], str] = {}
            self.failed = False

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if self.failed:
                return False
            try:
                for data, metrics in evals_log.items():
                    for metric, history in metrics.items():
                        key = self.keys.get((data, metric))
                        if key is None:
                            key = self.keys[data, metric] = metric_key(data, metric)
                        log_iteration(self.client, self.run_id, key, history[-1], epoch)
            except Exception as exc:  # never stop the training: warn once, log no more
                self.failed = True
                warn(INTEGRATION, f"per-iteration metrics stopped at iteration {epoch}: "
                                  f"{type(exc).__name__}: {exc}")
            return False

    return MetricLogger


def _log_best(client: Any, run_id: str, booster: Any) -> None:
    best = booster.attr("best_iteration")
    if best is None:  # no early stopping
        return
    metrics: dict[str, float] = {"best_iteration": int(best)}
    score = booster.attr("best_score")
    if score is not None:
        metrics["best_score"] = float(score)
    client.log_metrics(run_id, metrics)


def _importance_tables(booster: Any) -> dict[str, dict[str, Any]]:
    import xgboost

    names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
    tables: dict[str, dict[str, Any]] = {}
    for kind in _config["importance_types"]:
        try:
            scores = booster.get_score(importance_type=kind)
        except xgboost.core.XGBoostError:  # gblinear: weight only
            continue
        table = {name: scores.get(name, 0.0) for name in names}
        tables[kind] = dict(sorted(table.items(), key=_importance_order))
    return tables


def _importance_order(item: tuple[str, Any]) -> float:
    value = item[1]
    return -float(value) if isinstance(value, (int, float)) else 0.0


def _log_dmatrix_fingerprint(client: Any, run_id: str, dmatrix: Any) -> None:
    """A DMatrix's fingerprint: of all its rows, or of an evenly spaced sample of them."""
    import hashlib

    import numpy as np
    import xgboost

    from .fingerprint import MAX_ROWS, fingerprint, tag_fingerprint

    if not isinstance(dmatrix, xgboost.DMatrix):
        return
    rows = dmatrix.num_row()
    if rows <= MAX_ROWS:
        log_fingerprint(client, run_id, dmatrix.get_data())
        return
    picked = np.linspace(0, rows - 1, MAX_ROWS).astype(int)
    try:
        sample = dmatrix.slice(picked).get_data()
    except xgboost.core.XGBoostError:  # a QuantileDMatrix cannot be sliced
        sample = dmatrix.get_data()[picked]
    found = fingerprint(sample)
    digest = hashlib.sha256(f"{rows}|{found['digest']}".encode()).hexdigest()[:16]
    tag_fingerprint(client, run_id, {
        "shape": f"{rows}x{dmatrix.num_col()}",
        "dtypes": found["dtypes"],
        "digest": f"{digest} (sampled {MAX_ROWS} rows)",
    })


def _log_model(model: Any, example: Any) -> None:
    from ..models.flavors.xgboost import log_model
    from .scope import example_and_signature

    example, signature = example_and_signature(_config, example, model.predict)
    log_model(model, model_artifact_path(), input_example=example, signature=signature,
              model_format=_config["model_format"],
              registered_model_name=_config["registered_model_name"])
