"""Model flavors: how each library's models are saved, loaded and asked to predict.

A flavor module has:

- ``FLAVOR``: its name in ``MLmodel.json``;
- ``DISTRIBUTIONS``: the packages a saved model needs, pinned in ``requirements.txt``;
- ``save(model, folder, **options) -> dict``: write the model's files into ``folder`` and return
  the flavor's settings (file names, format, library version);
- ``load(folder, settings, **options)``: the native model back;
- ``predictor(model, settings)``: a function ``(data, params) -> predictions`` for pyfunc, where
  ``data`` is a DataFrame or an array already checked against the signature.

:func:`flavor_for` picks the flavor of a model object from its type.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from types import ModuleType
from typing import Any

from ...exceptions import InvalidInputError

__all__ = ["FLAVOR_MODULES", "flavor_for", "flavor_module", "known_params", "options_of"]

#: Flavor name -> the module that implements it.
FLAVOR_MODULES = {
    "sklearn": "nbtrack.models.flavors.sklearn",
    "xgboost": "nbtrack.models.flavors.xgboost",
    "lightgbm": "nbtrack.models.flavors.lightgbm",
    "pytorch": "nbtrack.models.flavors.pytorch",
    "python_function": "nbtrack.models.pyfunc",
}


def options_of(function: Any) -> list[str]:
    """The keywords a flavor's ``save(model, folder, ...)`` or ``load(folder, settings, ...)``
    takes after its first two parameters: the options a caller may pass on to it."""
    parameters = list(inspect.signature(function).parameters.values())[2:]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def flavor_module(name: str) -> ModuleType:
    if name not in FLAVOR_MODULES:
        raise InvalidInputError(
            f"unknown model flavor {name!r}; nbtrack knows {', '.join(FLAVOR_MODULES)}"
        )
    return importlib.import_module(FLAVOR_MODULES[name])


def _mro_modules(model: Any) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__]


def flavor_for(model: Any) -> ModuleType:
    """The flavor module for ``model``: XGBoost and LightGBM models (their scikit-learn
    wrappers too) before scikit-learn, PyTorch modules, any scikit-learn estimator, and
    :class:`~nbtrack.models.pyfunc.PythonModel` subclasses."""
    names = _mro_modules(model)
    if any(n.startswith("xgboost.") for n in names):
        return flavor_module("xgboost")
    if any(n.startswith("lightgbm.") for n in names):
        return flavor_module("lightgbm")
    if "torch.nn.modules.module.Module" in names:
        return flavor_module("pytorch")
    if "nbtrack.models.pyfunc.PythonModel" in names:
        return flavor_module("python_function")
    if any(n.startswith("sklearn.") for n in names) or (
        hasattr(model, "fit") and hasattr(model, "predict") and hasattr(model, "get_params")
    ):
        return flavor_module("sklearn")
    raise InvalidInputError(
        f"nbtrack cannot tell how to save a {type(model).__module__}.{type(model).__qualname__}: "
        "log scikit-learn, XGBoost, LightGBM or PyTorch models, or wrap custom code in "
        "nbtrack.pyfunc.PythonModel and use nbtrack.pyfunc.log_model"
    )


def known_params(method: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """The ``params`` of a pyfunc ``predict`` that the model's own ``method`` takes as keyword
    arguments. Any other is left out with a warning that names it, as MLflow ignores params
    a model does not declare (``predict(X, params={"foo": 1})`` on a plain estimator)."""
    if not params:
        return {}
    try:
        accepted = inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin without a signature: pass them on
        return dict(params)
    if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return dict(params)
    named = {n for n, p in accepted.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = [k for k in params if k not in named]
    if unknown:
        takes = ", ".join(sorted(named - {"X", "data", "self"})) or "none"
        warnings.warn(
            f"the model's predict takes no param {', '.join(map(repr, unknown))}: ignored "
            f"(params it takes: {takes})",
            UserWarning,
            stacklevel=3,
        )
    return {k: v for k, v in params.items() if k in named}
