"""The scikit-learn flavor: any estimator or pipeline.

Serialization formats:

- ``cloudpickle`` (the default when cloudpickle is installed) or ``pickle``: any estimator,
  functions defined in the notebook included. **Loading a pickle runs code**: load only models
  you or your team saved;
- ``skops``: the safer format; loading inspects the file and refuses types you have not
  trusted (``load_model(uri, trusted=[...])`` names them), so a tampered file cannot run code.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
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

__all__ = ["DISTRIBUTIONS", "FLAVOR", "FORMATS", "autolog", "load", "load_model", "log_model",
           "predictor", "save", "save_model"]

FLAVOR = "sklearn"
DISTRIBUTIONS = ["scikit-learn", "numpy", "scipy"]
FORMATS = ("cloudpickle", "pickle", "skops")


def _default_format() -> str:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return "pickle"
    return "cloudpickle"


def save(
    model: Any, folder: Path, serialization_format: str | None = None,
    pyfunc_predict_fn: str = "predict",
) -> dict[str, Any]:
    fmt = serialization_format or _default_format()
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"serialization_format must be one of {', '.join(FORMATS)}; got {fmt!r}"
        )
    if not callable(getattr(model, pyfunc_predict_fn, None)):
        raise InvalidInputError(
            f"the model has no method {pyfunc_predict_fn!r} for pyfunc_predict_fn "
            "(use 'predict', 'predict_proba', 'transform', ...)"
        )
    import sklearn

    if fmt == "skops":
        import skops.io

        data = "model.skops"
        skops.io.dump(model, folder / data)
    else:
        data = "model.pkl"
        with open(folder / data, "wb") as fh:
            if fmt == "cloudpickle":
                import cloudpickle

                cloudpickle.dump(model, fh)
            else:
                pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "data": data,
        "serialization_format": fmt,
        "sklearn_version": sklearn.__version__,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "predict_fn": pyfunc_predict_fn,
        "extra_distributions": ["cloudpickle"] if fmt == "cloudpickle" else (
            ["skops"] if fmt == "skops" else []
        ),
    }


def load(folder: Path, settings: dict[str, Any], trusted: list[str] | None = None) -> Any:
    path = folder / settings["data"]
    if settings.get("serialization_format") == "skops":
        import skops.io

        untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in (trusted or [])]
        if untrusted:
            raise InvalidInputError(
                f"the skops file holds types that are not trusted by default: "
                f"{', '.join(untrusted)}. If you trust where this model came from, load it "
                f"with trusted={untrusted!r}"
            )
        return skops.io.load(path, trusted=list(trusted or []) or None)
    with open(path, "rb") as fh:
        return pickle.load(fh)  # cloudpickle files load with pickle


def predictor(model: Any, settings: dict[str, Any]) -> Any:
    method = getattr(model, settings.get("predict_fn", "predict"))

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        return method(data, **known_params(method, params))

    return predict


# -- public functions (nbtrack.sklearn) ---------------------------------------------------------


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    serialization_format: str | None = None,
    pyfunc_predict_fn: str = "predict",
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Unpack[LogOptions],
) -> ModelInfo:
    """Log a scikit-learn estimator under the active run; register it when
    ``registered_model_name`` is given. The signature is inferred from ``input_example``.
    ``options``: MLflow's ``pip_requirements``, ``code_paths``, ``metadata``, ``params``,
    ``conda_env`` and ``await_registration_for`` (see :class:`nbtrack.models.save.LogOptions`)."""
    return _log_model(
        sk_model, artifact_path, sys.modules[__name__], name=name,
        registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        serialization_format=serialization_format, pyfunc_predict_fn=pyfunc_predict_fn,
        **options,
    )


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    serialization_format: str | None = None,
    pyfunc_predict_fn: str = "predict",
    extra_pip_requirements: list[str] | str | None = None,
    **options: Unpack[SaveOptions],
) -> None:
    """Save a scikit-learn estimator as a model folder at ``path``."""
    _save_model(
        sk_model, path, sys.modules[__name__], signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        serialization_format=serialization_format, pyfunc_predict_fn=pyfunc_predict_fn,
        **options,
    )


def load_model(model_uri: str | os.PathLike[str], trusted: list[str] | None = None) -> Any:
    """The estimator saved at ``model_uri``. Pickled models run code as they load; for skops
    files, ``trusted`` lists the extra types you accept (the error names them)."""
    return load_with_flavor(model_uri, FLAVOR, trusted=trusted)


def autolog(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int = 5,
    log_post_training_metrics: bool | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Record every scikit-learn ``fit`` (see :mod:`nbtrack.autologging.sklearn`);
    ``disable=True`` puts the original methods back. MLflow's keywords:

    - ``log_input_examples``: save five training rows with the model (nbtrack's default; MLflow's
      is False); ``log_model_signatures``: infer the model's signature from them;
    - ``log_datasets``: the training data's fingerprint (nbtrack's form of MLflow's dataset);
    - ``serialization_format``, ``registered_model_name``: as for :func:`log_model`;
    - ``pos_label``: the positive class of binary training metrics (weighted averages otherwise);
    - ``extra_tags``: tags for every run autolog starts;
    - ``disable_for_unsupported_versions``: accepted; nbtrack does not check versions;
    - ``log_post_training_metrics``: metrics of ``sklearn.metrics`` calls after training are
      not logged by nbtrack; passing True says so in a warning.
    """
    from ...autologging import library_autolog

    del disable_for_unsupported_versions
    if log_post_training_metrics:
        warnings.warn(
            "nbtrack's scikit-learn autolog does not log post-training metrics (sklearn.metrics "
            "calls after fit); log them with nbtrack.log_metric",
            UserWarning,
            stacklevel=2,
        )
    if serialization_format is not None and serialization_format not in FORMATS:
        raise InvalidInputError(
            f"serialization_format must be one of {', '.join(FORMATS)}; "
            f"got {serialization_format!r}"
        )
    library_autolog(
        "sklearn", disable, exclusive, silent, log_models=log_models,
        max_tuning_runs=max_tuning_runs, log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures, log_datasets=log_datasets,
        serialization_format=serialization_format,
        registered_model_name=registered_model_name, pos_label=pos_label,
        extra_tags=extra_tags,
    )
