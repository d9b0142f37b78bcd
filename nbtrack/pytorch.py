"""``nbtrack.pytorch``: log and load PyTorch modules (MLflow's ``mlflow.pytorch``).

See :mod:`nbtrack.models.flavors.pytorch` for the two serialization formats (``pickle``, which
runs code as it loads, and the safer ``state_dict``).
"""

from .models.flavors.pytorch import FORMATS, load_model, log_model, save_model

__all__ = ["FORMATS", "load_model", "log_model", "save_model"]
