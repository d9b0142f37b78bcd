"""nbtrack: experiment tracking that lives in the notebook.

MLflow's fluent tracking API on an embedded SQLite store beside your work::

    import nbtrack as mlflow

    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="rf-baseline"):
        mlflow.log_params({"n_estimators": 200, "max_depth": 8})
        for step, loss in enumerate(losses):
            mlflow.log_metric("loss", loss, step=step)

    mlflow.search_runs(filter_string="metrics.loss < 0.3 OR params.max_depth = '8'")

Heavy modules (pandas, nbformat) are imported only where they are used, so ``import nbtrack``
stays fast.
"""

from __future__ import annotations

from . import exceptions
from ._version import __version__
from .exceptions import MlflowException, NbtrackError
from .models.public import (
    load_model,
    log_model,
    register_model,
    search_model_versions,
    search_registered_models,
)
from .query.search import search_runs
from .snapshot.public import diff_runs, export_snapshot
from .tracking.client import Client
from .tracking.entities import (
    ActiveRun,
    Experiment,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from .tracking.fluent import (
    active_run,
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    delete_run,
    delete_tag,
    end_run,
    flush,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_metric_history,
    get_parent_run,
    get_run,
    last_active_run,
    load_table,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    restore_experiment,
    restore_run,
    search_experiments,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    start_run,
)
from .tracking.uri import (
    get_registry_uri,
    get_tracking_uri,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)

MlflowClient = Client  # the name MLflow code uses: `mlflow.MlflowClient()`

#: Submodules imported on first attribute access, so ``nbtrack.pyfunc.load_model(...)`` works
#: after a bare ``import nbtrack`` without every import paying for them.
_LAZY_SUBMODULES = frozenset(
    {
        "artifacts",  # MLflow's paths: mlflow.artifacts.load_dict, mlflow.entities.ViewType, ...
        "client",
        "entities",
        "keras",
        "lightgbm",
        "models",
        "optuna",
        "pyfunc",
        "pytorch",
        "sklearn",
        "xgboost",
    }
)


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nbtrack' has no attribute {name!r}")


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
    *,
    max_tuning_runs: int = 5,
) -> list[str]:
    """Record every training fit with no log calls, for each installed library (scikit-learn,
    XGBoost, LightGBM, PyTorch Lightning, Keras, Optuna); ``disable=True`` turns it off. The
    signature is MLflow's; see :func:`nbtrack.autologging.autolog`. Each library also has its
    own switch (``nbtrack.sklearn.autolog()``)."""
    from .autologging import autolog as _autolog

    return _autolog(
        log_input_examples, log_model_signatures, log_models, log_datasets, log_traces,
        disable, exclusive, disable_for_unsupported_versions, silent, extra_tags,
        exclude_flavors, max_tuning_runs=max_tuning_runs,
    )


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext nbtrack``: registers ``%%track`` and ``%nbtrack`` (IPython is imported
    only now, never by ``import nbtrack``)."""
    from .magics import load_ipython_extension as load

    load(ipython)


__all__ = [
    "ActiveRun",
    "Client",
    "Experiment",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "NbtrackError",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "diff_runs",
    "end_run",
    "exceptions",
    "export_snapshot",
    "flush",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "last_active_run",
    "load_ipython_extension",
    "load_model",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "register_model",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
