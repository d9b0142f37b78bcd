"""Saved models: the model format, flavors, signatures, load by URI.

``nbtrack.models.infer_signature`` and ``ModelSignature`` are MLflow's names; the folder format
is described in :mod:`nbtrack.models.metadata`, the URIs in :mod:`nbtrack.models.uri`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .signature import ModelSignature, infer_signature

__all__ = ["ModelSignature", "infer_signature"]


def __getattr__(name: str) -> Any:
    # imported on first use: ``import nbtrack`` loads this package but needs none of it
    if name in __all__:
        from . import signature

        return getattr(signature, name)
    raise AttributeError(f"module 'nbtrack.models' has no attribute {name!r}")
