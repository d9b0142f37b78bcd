"""``nbtrack.sklearn``: log and load scikit-learn models (MLflow's ``mlflow.sklearn``).

See :mod:`nbtrack.models.flavors.sklearn` for the serialization formats (pickle, cloudpickle,
and the safer skops).
"""

from .models.flavors.sklearn import FORMATS, autolog, load_model, log_model, save_model

__all__ = ["FORMATS", "autolog", "load_model", "log_model", "save_model"]
