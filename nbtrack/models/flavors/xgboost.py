"""The XGBoost flavor: a native :class:`xgboost.Booster`, or one of its scikit-learn wrappers
(``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``, ``XGBRFClassifier``, ``XGBRFRegressor``).

Both are written with XGBoost's own ``save_model``, never pickled, so loading runs no code:

- ``model_format="ubj"`` (the default): Universal Binary JSON, compact and exact;
- ``model_format="json"``: the same content as readable JSON.

A wrapper is reloaded into the class it was saved from: the class path is recorded, and only
classes of the ``xgboost`` package are imported back. A subclass of your own cannot be saved
this way: log it with :func:`nbtrack.sklearn.log_model` (a pickle) instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...exceptions import InvalidInputError
from ..load import load_with_flavor
from ..save import LogOptions, ModelInfo, SaveOptions
from ..save import log_model as _log_model
from ..save import save_model as _save_model
from ..signature import ModelSignature
from . import known_params

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DISTRIBUTIONS", "FLAVOR", "MODEL_FORMATS", "autolog", "load", "load_model",
           "log_model", "predictor", "save", "save_model"]

FLAVOR = "xgboost"
MODEL_FORMATS = ("ubj", "json")


def _installed_distribution() -> str:
    """The distribution that provides ``import xgboost`` here: ``xgboost`` or the CPU-only
    ``xgboost-cpu`` (``xgboost`` when neither is installed)."""
    for name in ("xgboost", "xgboost-cpu"):
        try:
            importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        return name
    return "xgboost"


DISTRIBUTIONS = [_installed_distribution()]


def _in_xgboost(module_name: str) -> bool:
    return module_name == "xgboost" or module_name.startswith("xgboost.")


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _wrapper_class(path: str) -> type:
    """The XGBoost scikit-learn wrapper class at ``module:qualname``; only classes of the
    ``xgboost`` package are imported."""
    import xgboost

    module_name, _, qualname = path.partition(":")
    if not _in_xgboost(module_name):
        raise InvalidInputError(
            f"the saved model names the class {path!r}; only classes of the xgboost package are "
            "loaded by the xgboost flavor"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise InvalidInputError(
            f"the saved model names the class {path!r}, which this xgboost "
            f"({xgboost.__version__}) does not have"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, xgboost.XGBModel)):
        raise InvalidInputError(
            f"the saved model names {path!r}, which is not an XGBoost scikit-learn wrapper"
        )
    return obj


def save(model: Any, folder: Path, model_format: str = "ubj") -> dict[str, Any]:
    """Write ``model`` into ``folder`` with XGBoost's ``save_model``; the settings for
    ``MLmodel.json`` (file, format, model type and class, XGBoost version)."""
    import xgboost

    if model_format not in MODEL_FORMATS:
        raise InvalidInputError(
            f"model_format must be one of {', '.join(MODEL_FORMATS)}; got {model_format!r}"
        )
    data = f"model.{model_format}"
    settings: dict[str, Any] = {
        "data": data,
        "model_format": model_format,
        "xgb_version": xgboost.__version__,
    }
    if isinstance(model, xgboost.Booster):
        model.save_model(os.fspath(folder / data))
        settings["model_type"] = "booster"
        settings["model_class"] = _class_path(xgboost.Booster)
        return settings
    if isinstance(model, xgboost.XGBModel):
        cls = type(model)
        if not _in_xgboost(cls.__module__):
            raise InvalidInputError(
                f"{cls.__module__}.{cls.__qualname__} subclasses an XGBoost wrapper; the xgboost "
                "flavor saves only XGBoost's own classes (XGBClassifier, XGBRegressor, "
                "XGBRanker, ...). Log a subclass with nbtrack.sklearn.log_model (a pickle)"
            )
        if not model.__sklearn_is_fitted__():
            raise InvalidInputError(
                f"the {cls.__qualname__} is not fitted: call fit before saving it"
            )
        model.save_model(os.fspath(folder / data))
        settings["model_type"] = "sklearn"
        settings["model_class"] = _class_path(cls)
        settings["extra_distributions"] = ["scikit-learn"]
        return settings
    raise InvalidInputError(
        f"the xgboost flavor saves an xgboost.Booster or an XGBoost scikit-learn wrapper "
        f"(XGBClassifier, XGBRegressor, XGBRanker, ...); got "
        f"{type(model).__module__}.{type(model).__qualname__}"
    )


def load(folder: Path, settings: dict[str, Any]) -> Any:
    """The Booster, or the scikit-learn wrapper class recorded at save time, read back."""
    import xgboost

    path = os.fspath(folder / settings["data"])
    if settings.get("model_type") == "sklearn":
        model = _wrapper_class(settings["model_class"])()
        model.load_model(path)
        return model
    return xgboost.Booster(model_file=path)


def predictor(model: Any, settings: dict[str, Any]) -> Any:
    """``(data, params) -> predictions``: ``Booster.predict`` on a ``DMatrix``, or the
    wrapper's ``predict``; ``params`` are passed as keyword arguments."""
    import xgboost

    if not isinstance(model, xgboost.Booster):

        def predict_wrapper(data: Any, params: dict[str, Any] | None = None) -> Any:
            return model.predict(data, **known_params(model.predict, params))

        return predict_wrapper

    def predict_booster(data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np

        names = model.feature_names
        if (isinstance(data, np.ndarray) and data.ndim == 2 and names
                and data.shape[1] == len(names)):
            # a booster trained on a DataFrame checks names: give a bare array the ones it knows
            matrix = xgboost.DMatrix(data, feature_names=names)
        else:
            matrix = xgboost.DMatrix(data)
        return model.predict(matrix, **known_params(model.predict, params))

    return predict_booster


# -- public functions (nbtrack.xgboost) ---------------------------------------------------------


def log_model(
    xgb_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    model_format: str = "ubj",
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Unpack[LogOptions],
) -> ModelInfo:
    """Log an XGBoost model under the active run; register it when ``registered_model_name``
    is given.

    Parameters
    ----------
    xgb_model
        A trained :class:`xgboost.Booster`, or an ``XGBClassifier``, ``XGBRegressor``,
        ``XGBRanker`` (any scikit-learn wrapper of the xgboost package).
    artifact_path
        The folder under the run's artifacts, e.g. ``"model"``.
    registered_model_name
        Register the model as a new version of this registered model (created if needed).
    signature
        The input/output signature; inferred from ``input_example`` when not given.
    input_example
        A few rows of input (DataFrame or array), saved with the model.
    model_format
        ``"ubj"`` (binary, the default) or ``"json"``: XGBoost's own formats.
    extra_pip_requirements
        More lines for ``requirements.txt`` (or the path of a requirements file).
    options
        MLflow's ``pip_requirements``, ``code_paths``, ``metadata``, ``params``,
        ``conda_env`` and ``await_registration_for`` (see
        :class:`nbtrack.models.save.LogOptions`).

    Returns
    -------
    ModelInfo
        Where the model went (``model_uri``) and its metadata.
    """
    return _log_model(
        xgb_model, artifact_path, sys.modules[__name__], name=name,
        registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        model_format=model_format,
        **options,
    )


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    model_format: str = "ubj",
    extra_pip_requirements: list[str] | str | None = None,
    **options: Unpack[SaveOptions],
) -> None:
    """Save an XGBoost model as a model folder at ``path`` (arguments as for
    :func:`log_model`)."""
    _save_model(
        xgb_model, path, sys.modules[__name__], signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        model_format=model_format,
        **options,
    )


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """The XGBoost model saved at ``model_uri``: an :class:`xgboost.Booster`, or the same
    scikit-learn wrapper class it was saved from. Nothing is unpickled.

    Parameters
    ----------
    model_uri
        ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` (or stage, ``@alias``), or a
        folder.
    """
    return load_with_flavor(model_uri, FLAVOR)


def autolog(
    importance_types: list[str] | None = None,
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Record every XGBoost training: ``xgboost.train`` and every ``fit`` of the
    scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, ...).

    Logged: params, each eval metric per iteration (``<eval name>-<metric>``, step =
    iteration), the best iteration after early stopping, feature importance (JSON tables and a
    bar chart), a fingerprint of the training data, and the model. See
    :mod:`nbtrack.autologging.xgboost`.

    Parameters
    ----------
    log_models
        Save each trained model as the run's ``model`` artifact.
    disable
        Turn XGBoost autolog off and put the original functions back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).
    importance_types
        Which of ``weight``, ``gain``, ``cover`` (and XGBoost's ``total_gain``,
        ``total_cover``) to log; nbtrack's default is the first three (MLflow's, weight only).
    log_input_examples, log_model_signatures
        Save five training rows with the model (nbtrack's default; MLflow's is not to), and
        infer its signature from them.
    log_datasets
        Tag the training data's fingerprint.
    registered_model_name, model_format
        As for :func:`log_model`.
    extra_tags
        Tags for every run autolog starts.
    disable_for_unsupported_versions
        Accepted; nbtrack does not check versions.
    """
    from ...autologging import library_autolog

    del disable_for_unsupported_versions
    kinds = ("weight", "gain", "cover", "total_gain", "total_cover")
    if importance_types is not None and (
        isinstance(importance_types, str) or not set(importance_types) <= set(kinds)
    ):
        raise InvalidInputError(
            f"importance_types must be a list of {', '.join(kinds)}; got {importance_types!r}"
        )
    if model_format not in MODEL_FORMATS:
        raise InvalidInputError(
            f"model_format must be one of {', '.join(MODEL_FORMATS)}; got {model_format!r}"
        )
    options: dict[str, Any] = {
        "log_input_examples": log_input_examples, "log_model_signatures": log_model_signatures,
        "log_datasets": log_datasets, "registered_model_name": registered_model_name,
        "model_format": model_format, "extra_tags": extra_tags,
    }
    if importance_types is not None:
        options["importance_types"] = tuple(importance_types)
    library_autolog("xgboost", disable, exclusive, silent, log_models=log_models, **options)
