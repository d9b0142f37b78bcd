"""The LightGBM flavor: a native :class:`lightgbm.Booster`, or one of its scikit-learn wrappers
(``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``).

- A Booster is written in LightGBM's own text format (``Booster.save_model``) and read back
  with ``lightgbm.Booster(model_file=...)``: nothing is unpickled;
- a scikit-learn wrapper is pickled with cloudpickle, as MLflow does (LightGBM has no native
  format for the wrapper's own state). **Loading a pickle runs code**: load only models you or
  your team saved.
"""

from __future__ import annotations

import os
import pickle
import sys
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

__all__ = ["DISTRIBUTIONS", "FLAVOR", "autolog", "load", "load_model", "log_model", "predictor",
           "save", "save_model"]

FLAVOR = "lightgbm"
DISTRIBUTIONS = ["lightgbm"]


def save(model: Any, folder: Path) -> dict[str, Any]:
    """Write ``model`` into ``folder`` (a Booster as text, a wrapper with cloudpickle); the
    settings for ``MLmodel.json``."""
    import lightgbm

    model_class = f"{type(model).__module__}.{type(model).__qualname__}"
    if isinstance(model, lightgbm.Booster):
        data = "model.lgb"
        model.save_model(os.fspath(folder / data))
        return {"data": data, "model_type": "booster", "serialization_format": "text",
                "model_class": model_class, "lgb_version": lightgbm.__version__}
    if isinstance(model, lightgbm.LGBMModel):
        if not model.__sklearn_is_fitted__():
            raise InvalidInputError(
                f"the {type(model).__qualname__} is not fitted: call fit before saving it"
            )
        import cloudpickle

        data = "model.pkl"
        with open(folder / data, "wb") as fh:
            cloudpickle.dump(model, fh)
        return {"data": data, "model_type": "sklearn", "serialization_format": "cloudpickle",
                "model_class": model_class, "lgb_version": lightgbm.__version__,
                "extra_distributions": ["scikit-learn", "cloudpickle"]}
    raise InvalidInputError(
        "the lightgbm flavor saves a lightgbm.Booster or a LightGBM scikit-learn wrapper "
        f"(LGBMClassifier, LGBMRegressor, LGBMRanker); got {model_class}"
    )


def load(folder: Path, settings: dict[str, Any]) -> Any:
    """The Booster (from its text file) or the unpickled wrapper."""
    path = folder / settings["data"]
    if settings.get("serialization_format") == "cloudpickle":
        with open(path, "rb") as fh:
            return pickle.load(fh)  # cloudpickle files load with pickle
    import lightgbm

    return lightgbm.Booster(model_file=os.fspath(path))


def predictor(model: Any, settings: dict[str, Any]) -> Any:
    """``(data, params) -> model.predict(data, **params)``."""
    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        return model.predict(data, **known_params(model.predict, params))

    return predict


# -- public functions (nbtrack.lightgbm) --------------------------------------------------------


def log_model(
    lgb_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Unpack[LogOptions],
) -> ModelInfo:
    """Log a LightGBM model under the active run; register it when ``registered_model_name``
    is given.

    Parameters
    ----------
    lgb_model
        A trained :class:`lightgbm.Booster` (saved as text), or an ``LGBMClassifier``,
        ``LGBMRegressor`` or ``LGBMRanker`` (pickled with cloudpickle: loading it runs code).
    artifact_path
        The folder under the run's artifacts, e.g. ``"model"``.
    registered_model_name
        Register the model as a new version of this registered model (created if needed).
    signature
        The input/output signature; inferred from ``input_example`` when not given.
    input_example
        A few rows of input (DataFrame or array), saved with the model.
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
        lgb_model, artifact_path, sys.modules[__name__], name=name,
        registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        **options,
    )


def save_model(
    lgb_model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | str | None = None,
    **options: Unpack[SaveOptions],
) -> None:
    """Save a LightGBM model as a model folder at ``path`` (arguments as for
    :func:`log_model`)."""
    _save_model(
        lgb_model, path, sys.modules[__name__], signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        **options,
    )


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """The LightGBM model saved at ``model_uri``: a :class:`lightgbm.Booster`, or the
    scikit-learn wrapper it was saved as. A wrapper is a pickle and runs code as it loads:
    load only models from people you trust.

    Parameters
    ----------
    model_uri
        ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` (or stage, ``@alias``), or a
        folder.
    """
    return load_with_flavor(model_uri, FLAVOR)


def autolog(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Record every LightGBM training: ``lightgbm.train`` and every ``fit`` of the
    scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``).

    Logged: params, each eval metric per iteration (``<eval name>-<metric>``, step =
    iteration), the best iteration after early stopping, feature importance (JSON tables and a
    bar chart), a fingerprint of the training data, and the model. See
    :mod:`nbtrack.autologging.lightgbm`.

    Parameters
    ----------
    log_models
        Save each trained model as the run's ``model`` artifact.
    disable
        Turn LightGBM autolog off and put the original functions back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).
    log_input_examples, log_model_signatures
        Save five training rows with the model (nbtrack's default; MLflow's is not to), and
        infer its signature from them.
    log_datasets
        Tag the training data's fingerprint.
    registered_model_name
        As for :func:`log_model`.
    extra_tags
        Tags for every run autolog starts.
    disable_for_unsupported_versions
        Accepted; nbtrack does not check versions.
    """
    from ...autologging import library_autolog

    del disable_for_unsupported_versions
    library_autolog(
        "lightgbm", disable, exclusive, silent, log_models=log_models,
        log_input_examples=log_input_examples, log_model_signatures=log_model_signatures,
        log_datasets=log_datasets, registered_model_name=registered_model_name,
        extra_tags=extra_tags,
    )
