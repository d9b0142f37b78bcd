"""The python_function flavor: one ``predict(DataFrame | ndarray)`` for every model, and the way
to save custom prediction code.

Every model nbtrack saves also has this flavor, so :func:`load_model` loads any of them (a
scikit-learn pipeline, an XGBoost booster, a torch module) behind the same ``predict``; the
input is first checked against the model's signature (missing columns or wrong types raise a
:class:`~nbtrack.exceptions.ModelSchemaError` that says what the model takes).

Custom code: subclass :class:`PythonModel` and log it::

    class Churn(nbtrack.pyfunc.PythonModel):
        def load_context(self, context):
            self.threshold = float(open(context.artifacts["threshold"]).read())

        def predict(self, context, model_input, params=None):
            return (model_input["score"] > self.threshold).astype(int)

    nbtrack.pyfunc.log_model("model", python_model=Churn(),
                             artifacts={"threshold": "threshold.txt"})

The class is saved with cloudpickle (a class defined in the notebook works); loading it runs
its code, so load only models from people you trust.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import InvalidInputError
from .load import call_loader
from .metadata import ModelMetadata
from .save import LogOptions, ModelInfo, SaveOptions
from .save import log_model as _log_model
from .save import save_model as _save_model
from .signature import ModelSignature, enforce_signature
from .uri import resolve_model_dir

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR = "python_function"
DISTRIBUTIONS = ["cloudpickle"]
_PICKLE = "python_model.pkl"
_ARTIFACTS = "artifacts"


@dataclass
class PythonModelContext:
    """What ``load_context`` and ``predict`` get: the artifacts' local paths by name."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] | None = None


class PythonModel:
    """Base class for custom prediction code (see the module docstring)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded: read artifacts here."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError("a PythonModel subclass must define predict")


class PyFuncModel:
    """A loaded model behind one ``predict``; ``metadata`` tells what it is."""

    def __init__(self, metadata: ModelMetadata, predict_fn: Any, raw_model: Any):
        self.metadata = metadata
        self._predict_fn = predict_fn
        self._raw = raw_model

    @property
    def signature(self) -> ModelSignature | None:
        return self.metadata.signature

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (a DataFrame, an ndarray, a list of records or a dict of
        columns), checked against the signature first."""
        if params is not None and not isinstance(params, dict):
            raise InvalidInputError(f"params must be a dict; got {type(params).__name__}")
        return self._predict_fn(enforce_signature(self.metadata.signature, data), params)

    def get_raw_model(self) -> Any:
        """The native model (or the PythonModel) underneath."""
        return self._raw

    def unwrap_python_model(self) -> Any:
        if not isinstance(self._raw, PythonModel):
            raise InvalidInputError("this model was not saved from a PythonModel; use "
                                    "get_raw_model()")
        return self._raw

    def __repr__(self) -> str:
        where = f"runs:/{self.metadata.run_id}/{self.metadata.artifact_path}" \
            if self.metadata.run_id else "a local folder"
        return f"<PyFuncModel flavor={self.metadata.primary_flavor} from {where}>"


# -- the python_function flavor's own functions (see nbtrack.models.flavors) ------------------


def save(
    python_model: Any, folder: Path, artifacts: dict[str, str] | None = None,
    model_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if not isinstance(python_model, PythonModel):
        raise InvalidInputError(
            "python_model must be an instance of a nbtrack.pyfunc.PythonModel subclass; got "
            f"{type(python_model).__name__}"
        )
    import cloudpickle

    copied = {}
    for name, local in (artifacts or {}).items():
        src = Path(local).expanduser()
        if not src.exists():
            raise InvalidInputError(f"artifact {name!r}: {src} does not exist")
        dest = folder / _ARTIFACTS / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / src.name)
            copied[name] = f"{_ARTIFACTS}/{name}/{src.name}"
        else:
            dest.mkdir()
            shutil.copyfile(src, dest / src.name)
            copied[name] = f"{_ARTIFACTS}/{name}/{src.name}"
    python_model.__dict__.pop("_nbtrack_context", None)
    with open(folder / _PICKLE, "wb") as fh:
        cloudpickle.dump(python_model, fh)
    return {"loader_module": __name__, "python_model": _PICKLE, "artifacts": copied,
            "model_config": model_config}


def load(folder: Path, settings: dict[str, Any]) -> PythonModel:
    import pickle

    with open(folder / settings["python_model"], "rb") as fh:
        model = pickle.load(fh)
    context = PythonModelContext(
        {n: str(folder / p) for n, p in (settings.get("artifacts") or {}).items()},
        settings.get("model_config"),
    )
    model.load_context(context)
    model._nbtrack_context = context
    return model


def predictor(model: Any, settings: dict[str, Any]) -> Any:
    context = getattr(model, "_nbtrack_context", None) or PythonModelContext()
    if _takes_context(model.predict):

        def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
            return model.predict(context, data, params=params)

    else:  # MLflow 3's form: predict(self, model_input, params=None)

        def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
            return model.predict(data, params=params)

    return predict


def _takes_context(predict: Any) -> bool:
    """Whether a PythonModel's ``predict`` takes ``(context, model_input, ...)`` rather than
    ``(model_input, ...)``: two positional parameters before ``params``, whatever their names."""
    import inspect

    try:
        parameters = inspect.signature(predict).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [
        p for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "params"
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


# -- public functions ---------------------------------------------------------------------------


def load_model(
    model_uri: str | os.PathLike[str],
    suppress_warnings: bool = False,
    dst_path: str | None = None,
    **options: Any,
) -> PyFuncModel:
    """Any saved model behind ``predict(DataFrame | ndarray)``; ``model_uri`` as for
    :func:`nbtrack.load_model`. ``options`` go to the flavor's loader (``trusted=`` for
    scikit-learn models saved with skops). ``suppress_warnings`` and ``dst_path`` are MLflow's
    and accepted for ported code: models load from where they are stored, with no copy."""
    del suppress_warnings, dst_path
    folder = resolve_model_dir(model_uri)
    metadata = ModelMetadata.load(folder)
    loader = (metadata.flavors.get(FLAVOR) or {}).get("loader_module")
    if not loader:
        raise InvalidInputError(f"the model at {model_uri!s} has no python_function flavor")
    module = importlib.import_module(loader)
    settings = metadata.flavors.get(module.FLAVOR, {})
    raw = call_loader(module, folder, settings, options)
    return PyFuncModel(metadata, module.predictor(raw, settings), raw)


def save_model(
    path: str | os.PathLike[str],
    python_model: PythonModel,
    artifacts: dict[str, str] | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    model_config: dict[str, Any] | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    **options: Unpack[SaveOptions],
) -> None:
    """Save custom prediction code (and the files it needs) as a model folder."""
    import sys

    _save_model(
        python_model, path, sys.modules[__name__], signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        artifacts=artifacts, model_config=model_config,
        **options,
    )


def log_model(
    artifact_path: str | None = None,
    python_model: PythonModel | None = None,
    artifacts: dict[str, str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    model_config: dict[str, Any] | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Unpack[LogOptions],
) -> ModelInfo:
    """Log custom prediction code under the active run (and register it when asked).
    ``options``: MLflow's ``pip_requirements``, ``code_paths``, ``metadata``, ``params``,
    ``conda_env`` and ``await_registration_for`` (see :class:`nbtrack.models.save.LogOptions`)."""
    if python_model is None:
        raise InvalidInputError(
            "pyfunc.log_model needs python_model=, an instance of a nbtrack.pyfunc.PythonModel "
            "subclass (other models: nbtrack.log_model picks their flavor)"
        )
    import sys

    return _log_model(
        python_model, artifact_path, sys.modules[__name__], name=name,
        registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        artifacts=artifacts, model_config=model_config,
        **options,
    )
