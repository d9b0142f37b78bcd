"""Saved models: the model format, flavors, signatures, load by URI.

``nbtrack.models.infer_signature`` and ``ModelSignature`` are MLflow's names; the folder format
is described in :mod:`nbtrack.models.metadata`, the URIs in :mod:`nbtrack.models.uri`.
"""

from .signature import ModelSignature, infer_signature

__all__ = ["ModelSignature", "infer_signature"]
