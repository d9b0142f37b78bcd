"""Load a saved model by URI: the native object of its library."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .flavors import FLAVOR_MODULES, flavor_module
from .metadata import ModelMetadata
from .uri import resolve_model_dir

__all__ = ["load_model", "load_with_flavor"]


def load_with_flavor(model_uri: str | os.PathLike[str], flavor: str, **options: Any) -> Any:
    """The model at ``model_uri`` loaded by ``flavor`` (the error names the flavors it has)."""
    from ..exceptions import InvalidInputError

    folder = resolve_model_dir(model_uri)
    metadata = ModelMetadata.load(folder)
    if flavor not in metadata.flavors:
        raise InvalidInputError(
            f"the model at {model_uri!s} was not saved with the {flavor} flavor; it has "
            f"{', '.join(metadata.flavors)} (load it with nbtrack.load_model)"
        )
    return flavor_module(flavor).load(folder, metadata.flavors[flavor], **options)


def load_model(model_uri: str | os.PathLike[str], **options: Any) -> Any:
    """The native model (a scikit-learn estimator, an XGBoost booster, a torch module, ...)
    that ``model_uri`` names: ``runs:/<run_id>/model``, ``models:/<name>/<version>``,
    ``models:/<name>/<stage>``, ``models:/<name>@<alias>`` or a folder.

    Pickle-based formats run code when they load: load only models from people you trust.
    """
    folder: Path = resolve_model_dir(model_uri)
    metadata = ModelMetadata.load(folder)
    name = metadata.primary_flavor
    if name not in FLAVOR_MODULES:
        from ..exceptions import InvalidInputError

        raise InvalidInputError(f"the model at {model_uri!s} has an unknown flavor {name!r}")
    return flavor_module(name).load(folder, metadata.flavors[name], **options)
