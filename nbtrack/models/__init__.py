"""Saved models: the model format, flavors, signatures, load by URI.

``nbtrack.models.infer_signature`` and ``ModelSignature`` are MLflow's names; the folder format
is described in :mod:`nbtrack.models.metadata`, the URIs in :mod:`nbtrack.models.uri`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .signature import ModelSignature, infer_signature

__all__ = ["ModelSignature", "get_model_info", "infer_signature"]


def get_model_info(model_uri: str) -> Any:
    """MLflow's ``get_model_info``: the :class:`~nbtrack.models.save.ModelInfo` of the model a
    URI names (``runs:/<id>/model``, ``models:/name/1``, ``models:/name@alias``, a folder), read
    from its ``MLmodel.json`` without loading the model."""
    from .metadata import ModelMetadata
    from .save import ModelInfo
    from .uri import resolve_model_dir

    return ModelInfo(str(model_uri), ModelMetadata.load(resolve_model_dir(model_uri)), None)


def __getattr__(name: str) -> Any:
    # imported on first use: ``import nbtrack`` loads this package but needs none of it
    if name in ("ModelSignature", "infer_signature"):
        from . import signature

        return getattr(signature, name)
    raise AttributeError(f"module 'nbtrack.models' has no attribute {name!r}")
