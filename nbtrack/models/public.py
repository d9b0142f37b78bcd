"""The library-agnostic face of models: ``nbtrack.log_model``, ``load_model`` and
``register_model``. The machinery is imported when one is called, so ``import nbtrack`` does not
pay for it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .save import ModelInfo
    from .signature import ModelSignature

__all__ = [
    "load_model",
    "log_model",
    "register_model",
    "search_model_versions",
    "search_registered_models",
]


def log_model(
    model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Any,
) -> ModelInfo:
    """Log a trained model under the active run, its flavor picked from its type
    (scikit-learn, XGBoost, LightGBM, PyTorch, or a :class:`nbtrack.pyfunc.PythonModel`).

    Parameters
    ----------
    model
        The trained model.
    artifact_path
        The folder under the run's artifacts, e.g. ``"model"`` (``name=`` is MLflow 3's
        spelling of it). A run's model is never replaced: a second model at the same path of
        the same run is an error that names a free path.
    registered_model_name
        Register the model as a new version of this registered model (created if needed).
    signature
        The input/output signature; inferred from ``input_example`` when not given.
    input_example
        A few rows of input (DataFrame or array): saved with the model, and used to infer
        the signature and check that the model predicts. MLflow's ``(example, params)`` form
        keeps the params with the example and passes them to that prediction.
    options
        MLflow's ``pip_requirements``, ``code_paths``, ``metadata``, ``params``, ``conda_env``
        and ``await_registration_for`` (see :class:`nbtrack.models.save.LogOptions`), and the
        flavor's own (``serialization_format="skops"`` for scikit-learn, say).

    Returns
    -------
    ModelInfo
        ``model_uri`` (``runs:/<run_id>/<artifact_path>``), the flavors, the signature and the
        registered version number.
    """
    from .flavors import flavor_for
    from .save import log_model as _log_model

    flavor = flavor_for(model)
    return _log_model(
        model, artifact_path, flavor, name=name, registered_model_name=registered_model_name,
        signature=signature, input_example=input_example,
        extra_pip_requirements=extra_pip_requirements, **options,
    )


def register_model(model_uri: str | os.PathLike[str], name: str,
                   tags: dict[str, Any] | None = None,
                   await_registration_for: int | None = None) -> Any:
    """Register the model at ``model_uri`` as a new version of ``name`` in the current
    tracking store (MLflow's ``mlflow.register_model``; registration is immediate, so
    ``await_registration_for`` is accepted and ignored)."""
    from ..tracking.client import Client

    return Client().register_model(os.fspath(model_uri), name, tags=tags)


def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """Registered models of the current tracking store matching ``filter_string`` (MLflow's
    ``mlflow.search_registered_models``): every one, or the first ``max_results``."""
    return _every("search_registered_models", max_results, filter_string, order_by)


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """Model versions of the current tracking store matching ``filter_string`` (MLflow's
    ``mlflow.search_model_versions``): every one, or the first ``max_results``."""
    return _every("search_model_versions", max_results, filter_string, order_by)


def _every(
    search: str, max_results: int | None, filter_string: str | None, order_by: list[str] | None
) -> list[Any]:
    """The Client's registry ``search`` as one list, not a page: every match when
    ``max_results`` is None."""
    from ..tracking.client import Client

    limit = 2**62 if max_results is None else max_results
    return list(getattr(Client(), search)(filter_string, limit, order_by))


def load_model(model_uri: str | os.PathLike[str], **options: Any) -> Any:
    """The native model (a scikit-learn estimator, an XGBoost booster, a torch module, ...)
    that ``model_uri`` names: ``runs:/<run_id>/model``, ``models:/<name>/<version>``,
    ``models:/<name>/<stage>``, ``models:/<name>@<alias>`` or a folder.

    Pickle-based formats run code when they load: load only models from people you trust.
    """
    from .flavors import FLAVOR_MODULES, flavor_module
    from .load import call_loader
    from .metadata import ModelMetadata
    from .uri import resolve_model_dir

    folder = resolve_model_dir(model_uri)
    metadata = ModelMetadata.load(folder)
    name = metadata.primary_flavor
    if name not in FLAVOR_MODULES:
        from ..exceptions import InvalidInputError

        raise InvalidInputError(f"the model at {model_uri!s} has an unknown flavor {name!r}")
    return call_loader(flavor_module(name), folder, metadata.flavors[name], options)
