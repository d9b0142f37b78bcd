"""``nbtrack.xgboost``: log and load XGBoost models (MLflow's ``mlflow.xgboost``).

See :mod:`nbtrack.models.flavors.xgboost` for what is saved (XGBoost's own ``ubj`` or ``json``
format for a Booster and for the scikit-learn wrappers; no pickle).
"""

from .models.flavors.xgboost import MODEL_FORMATS, autolog, load_model, log_model, save_model

__all__ = ["MODEL_FORMATS", "autolog", "load_model", "log_model", "save_model"]
