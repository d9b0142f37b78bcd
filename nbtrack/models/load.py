"""Load a saved model by URI: the native object of its library."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .flavors import flavor_module, options_of
from .metadata import ModelMetadata
from .uri import resolve_model_dir

__all__ = ["call_loader", "load_with_flavor"]


def call_loader(
    module: Any, folder: Path, settings: dict[str, Any], options: dict[str, Any]
) -> Any:
    """``module.load(folder, settings, **options)``, with a clear error for options this
    flavor does not take (``trusted=`` is for scikit-learn's skops files, say). A model saved
    with ``code_paths`` has its ``code/`` folder put on ``sys.path`` first, as MLflow does."""
    import sys

    from ..exceptions import InvalidInputError

    accepted = options_of(module.load)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"the {module.FLAVOR} flavor's loader takes no option {', '.join(unknown)}; it "
            f"takes {', '.join(accepted) or 'none'}"
        )
    if settings.get("code"):
        code = str(folder / settings["code"])
        if code not in sys.path:
            sys.path.insert(0, code)
    return module.load(folder, settings, **options)


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
    return call_loader(flavor_module(flavor), folder, metadata.flavors[flavor], options)
