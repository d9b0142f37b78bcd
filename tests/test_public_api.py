"""The public face: ``__all__`` is the API, MLflow's tracking names exist, import stays light."""

from __future__ import annotations

import subprocess
import sys

import nbtrack

MLFLOW_TRACKING_NAMES = {
    "set_tracking_uri",
    "get_tracking_uri",
    "set_experiment",
    "create_experiment",
    "get_experiment",
    "get_experiment_by_name",
    "search_experiments",
    "delete_experiment",
    "start_run",
    "end_run",
    "active_run",
    "last_active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "delete_tag",
    "log_artifact",
    "log_artifacts",
    "log_text",
    "log_dict",
    "log_figure",
    "get_artifact_uri",
    "get_run",
    "search_runs",
    "delete_run",
    "restore_run",
    "flush",
    "Client",
    "MlflowClient",
    "ActiveRun",
    "Run",
    "RunStatus",
    "ViewType",
    "Metric",
    "Param",
    "RunTag",
}


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name in vars(nbtrack)
        if not name.startswith("_")
        and name not in {"annotations"}
        and not isinstance(getattr(nbtrack, name), type(sys))
    }
    public |= {"exceptions", "__version__"}
    assert set(nbtrack.__all__) == public
    assert nbtrack.__all__ == sorted(nbtrack.__all__, key=lambda n: (not n[0].isupper(), n))


def test_mlflow_fluent_tracking_names_are_there() -> None:
    assert set(nbtrack.__all__) >= MLFLOW_TRACKING_NAMES


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, nbtrack; "
        "print(','.join(m for m in ('pandas', 'numpy', 'nbformat', 'sqlite_utils', 'IPython',"
        " 'ipywidgets', 'plotly', 'sklearn', 'xgboost', 'lightgbm', 'torch', 'lightning',"
        " 'keras', 'optuna', 'starlette', 'uvicorn', 'cloudpickle') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_public_callable_has_a_docstring_or_is_a_plain_entity() -> None:
    for name in nbtrack.__all__:
        obj = getattr(nbtrack, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"nbtrack.{name} has no docstring"


def test_mlflow_s_module_paths_work_without_importing_them_first() -> None:
    code = (
        "import nbtrack as mlflow; "
        "print(mlflow.entities.ViewType.ALL, mlflow.client.MlflowClient.__name__, "
        "mlflow.exceptions.MlflowException.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "Client", "NbtrackError"]
