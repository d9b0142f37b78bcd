"""LightGBM autolog: ``lightgbm.train`` and the scikit-learn wrappers' ``fit``.

Logged for each training (a wrapper's ``fit`` is logged once, as the wrapper: it reaches the
booster through ``lightgbm.sklearn.train``, which is not patched):

- params: the ``params`` dict given to ``lightgbm.train`` with ``num_boost_round``; for a
  wrapper its ``get_params()``, objects shown by their repr;
- metrics, each iteration as a step: ``<eval name>-<metric>`` for every validation set and
  metric, as MLflow names them (``valid_0-binary_logloss``, ``training-l2``); characters a
  metric key cannot hold are replaced (``ndcg@5`` becomes ``ndcg_at_5``). The callback that
  logs them joins yours (it runs before early stopping, so the last iteration is logged too);
- after early stopping: the metric ``best_iteration`` (LightGBM's count: the number of
  iterations kept, so 1 for the first), and ``best_<eval name>-<metric>`` for each metric at
  that iteration;
- feature importance: ``feature_importance_split.json`` and ``feature_importance_gain.json``
  (``{feature: importance}`` from the most important down), and one bar chart of the top 20
  features per type, ``feature_importance.png`` (only when matplotlib is installed);
- tags ``nbtrack.trainingData.*``: the training data's fingerprint (for ``lightgbm.train``, of the
  Dataset's raw data, read before LightGBM frees it; none for a Dataset built from a file;
  ``log_datasets=False`` to skip);
- the trained Booster or wrapper as the artifact ``model`` (``log_models=False`` to skip).
"""

from __future__ import annotations

from typing import Any

from .boosting import (
    argument,
    bind,
    call_with_callback,
    input_example,
    log_importance,
    metric_key,
    other_integration_running,
    patch_train,
    run_logged,
    settled_by_fit,
    wrapper_classes,
)
from .fingerprint import log_fingerprint
from .patching import call_safely, patch, unpatch, warn
from .scope import log_params, model_artifact_path, param_key

__all__ = ["disable", "enable"]

INTEGRATION = "lightgbm"
IMPORTANCE_TYPES = ("split", "gain")

#: The settings of the last ``enable``; each call starts from these defaults.
_DEFAULTS: dict[str, Any] = {
    "log_models": True,
    "log_input_examples": True,
    "log_model_signatures": True,
    "log_datasets": True,
    "registered_model_name": None,
}
_config: dict[str, Any] = dict(_DEFAULTS)


def enable(log_models: bool = True, **options: Any) -> None:
    """``options``: the other keys of ``_DEFAULTS``, and ``extra_tags`` (see
    ``nbtrack.lightgbm.autolog``)."""
    import lightgbm
    import lightgbm.engine

    from .scope import configure

    configure(INTEGRATION, _config, _DEFAULTS, log_models=log_models, **options)
    for module in (lightgbm, lightgbm.engine):
        patch_train(INTEGRATION, module, _train_hook)
    for cls in wrapper_classes("lightgbm.sklearn", "LGBMModel"):
        patch(INTEGRATION, cls, "fit", _fit_hook)


def disable() -> None:
    unpatch(INTEGRATION)


# -- the hooks --------------------------------------------------------------------------------


def _train_hook(integration: str, original: Any, params: Any, args: tuple, kwargs: dict) -> Any:
    """``lightgbm.train(params, train_set, ...)``, logged as the run ``lightgbm.train``."""
    call = bind(original, (params, *args), kwargs)
    if call is None or other_integration_running(INTEGRATION):
        return original(params, *args, **kwargs)
    # LightGBM frees a Dataset's raw data once it is built: read it before training
    raw = getattr(call.arguments.get("train_set"), "data", None)
    example = call_safely(INTEGRATION, "reading an input example", input_example, raw)

    def start(client: Any, run_id: str) -> Any:
        settings = {**(argument(call, "params") or {}),
                    "num_boost_round": argument(call, "num_boost_round")}
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    settings)
        if _config["log_datasets"]:
            call_safely(INTEGRATION, "logging the data fingerprint", log_fingerprint,
                        client, run_id, raw)
        return MetricLogger(client, run_id)

    def train(logger: Any) -> Any:
        return call_with_callback(original, call, logger)

    def finish(client: Any, run_id: str, booster: Any) -> None:
        _log_results(client, run_id, booster, booster, example)

    return run_logged(INTEGRATION, "lightgbm.train", start, train, finish)


def _fit_hook(integration: str, original: Any, model: Any, args: tuple, kwargs: dict) -> Any:
    """A wrapper's ``fit(X, y, ...)``, logged as a run named after its class."""
    call = bind(original, (model, *args), kwargs)
    if call is None or other_integration_running(INTEGRATION):
        return original(model, *args, **kwargs)
    X = call.arguments.get("X")

    def start(client: Any, run_id: str) -> Any:
        params = {k: v for k, v in model.get_params().items() if k != "objective"}  # see finish
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    params)
        if _config["log_datasets"]:
            call_safely(INTEGRATION, "logging the data fingerprint", log_fingerprint,
                        client, run_id, X)
        return MetricLogger(client, run_id)

    def train(logger: Any) -> Any:
        return call_with_callback(original, call, logger)

    def finish(client: Any, run_id: str, _: Any) -> None:
        call_safely(INTEGRATION, "logging params", log_params, INTEGRATION, client, run_id,
                    settled_by_fit(getattr(model, "objective_", None), model))
        _log_results(client, run_id, model, model.booster_, input_example(X))

    return run_logged(INTEGRATION, type(model).__name__, start, train, finish)


class MetricLogger:
    """A LightGBM callback: each iteration's evaluation results as metrics
    ``<eval name>-<metric>``, step = iteration."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.order = 15  # after LightGBM's log_evaluation (10), before early_stopping (30)
        self.before_iteration = False
        self.keys: dict[tuple[str, str], str] = {}
        self.failed = False

    def __call__(self, env: Any) -> None:
        if self.failed or not env.evaluation_result_list:
            return
        try:
            for item in env.evaluation_result_list:  # (data, metric, value, higher_better)
                key = self.keys.get((item[0], item[1]))
                if key is None:
                    key = self.keys[item[0], item[1]] = metric_key(item[0], item[1])
                log_iteration(self.client, self.run_id, key, item[2], env.iteration)
        except Exception as exc:  # never stop the training: warn once, log no more
            self.failed = True
            warn(INTEGRATION, f"per-iteration metrics stopped at iteration {env.iteration}: "
                              f"{type(exc).__name__}: {exc}")


def log_iteration(client: Any, run_id: str, key: str, value: Any, step: int) -> None:
    """One iteration's value of one metric (buffered: microseconds)."""
    client.log_metric(run_id, key, float(value), step=step)


def _log_results(client: Any, run_id: str, model: Any, booster: Any, example: Any) -> None:
    call_safely(INTEGRATION, "logging the best iteration", _log_best, client, run_id, booster)
    call_safely(INTEGRATION, "logging feature importance", log_importance, client, run_id,
                _importance_tables(booster), "LightGBM")
    if _config["log_models"]:
        call_safely(INTEGRATION, "logging the model", _log_model, model, example)


def _log_best(client: Any, run_id: str, booster: Any) -> None:
    best = int(getattr(booster, "best_iteration", 0) or 0)
    if best <= 0:  # no early stopping
        return
    metrics: dict[str, float] = {"best_iteration": best}
    for data, scores in (getattr(booster, "best_score", None) or {}).items():
        for metric, value in scores.items():
            metrics[param_key(f"best_{metric_key(data, metric)}")] = float(value)
    client.log_metrics(run_id, metrics)


def _importance_tables(booster: Any) -> dict[str, dict[str, float]]:
    names = booster.feature_name()
    tables = {}
    for kind in IMPORTANCE_TYPES:
        values = booster.feature_importance(importance_type=kind)
        table = {str(n): float(v) for n, v in zip(names, values, strict=True)}
        tables[kind] = dict(sorted(table.items(), key=lambda item: -item[1]))
    return tables


def _log_model(model: Any, example: Any) -> None:
    from ..models.flavors.lightgbm import log_model
    from .scope import example_and_signature

    example, signature = example_and_signature(_config, example, model.predict)
    log_model(model, model_artifact_path(), input_example=example, signature=signature,
              registered_model_name=_config["registered_model_name"])
