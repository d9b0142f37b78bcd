"""``nbtrack.pyfunc``: any saved model behind one ``predict``, and custom prediction code
(MLflow's ``mlflow.pyfunc``). See :mod:`nbtrack.models.pyfunc`."""

from .models.pyfunc import (
    PyFuncModel,
    PythonModel,
    PythonModelContext,
    load_model,
    log_model,
    save_model,
)

__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
]
