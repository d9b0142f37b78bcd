"""``nbtrack.lightgbm``: log and load LightGBM models (MLflow's ``mlflow.lightgbm``).

See :mod:`nbtrack.models.flavors.lightgbm` for what is saved (a Booster as LightGBM's text
format; the scikit-learn wrappers pickled with cloudpickle, which runs code as it loads).
"""

from .models.flavors.lightgbm import autolog, load_model, log_model, save_model

__all__ = ["autolog", "load_model", "log_model", "save_model"]
