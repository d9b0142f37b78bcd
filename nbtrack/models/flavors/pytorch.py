"""The PyTorch flavor: any :class:`torch.nn.Module`.

Serialization formats:

- ``pickle`` (the default): the whole module, saved with ``torch.save`` and cloudpickle, so a
  class defined in the notebook works. **Loading it runs code** (``torch.load`` with
  ``weights_only=False``): load only models you or your team saved;
- ``state_dict`` (the safer one): only the weights, plus the class path (``module:qualname``)
  and the ``init_kwargs`` (JSON) that build the module. The class must be importable where
  the model is loaded, so it cannot be defined in ``__main__`` (a notebook or script): put it
  in a module. Loading imports that class, builds ``cls(**init_kwargs)`` and reads the
  weights with ``torch.load(weights_only=True)``, which refuses anything but tensors and
  plain containers. Saving proves all that works first: it rebuilds the module and loads
  the weights into it, and refuses the model with a clear error when it does not fit.

For ``nbtrack.pyfunc``, the input (DataFrame or array) becomes a tensor: floating data take the
dtype of the model's first parameter (float32 when it has none), integer and boolean data keep
their dtype (the signature's); the module runs in eval mode without gradients, and the output
comes back as numpy.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...exceptions import InvalidInputError, ModelSchemaError
from ..load import load_with_flavor
from ..save import LogOptions, ModelInfo, SaveOptions
from ..save import log_model as _log_model
from ..save import save_model as _save_model
from ..signature import ModelSignature

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DISTRIBUTIONS", "FLAVOR", "FORMATS", "autolog", "load", "load_model", "log_model",
           "predictor", "save", "save_model"]

FLAVOR = "pytorch"
DISTRIBUTIONS = ["torch"]
FORMATS = ("pickle", "state_dict")

_PICKLE_FILE = "model.pth"
_STATE_DICT_FILE = "state_dict.pth"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(path: str) -> Any:
    """The object at ``module:qualname`` (ImportError or AttributeError when missing)."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _check_importable(cls: type) -> str:
    """``cls``'s ``module:qualname``, or an error saying why it cannot be imported back."""
    path = _class_path(cls)
    advice = ("move the class into a module (a .py file on the Python path) and import it "
              "from there, or save with serialization_format='pickle'")
    if cls.__module__ == "__main__":
        raise InvalidInputError(
            f"serialization_format='state_dict' needs the model's class to be importable, but "
            f"{cls.__qualname__} is defined in __main__ (a notebook or a script): {advice}"
        )
    if "<locals>" in cls.__qualname__:
        raise InvalidInputError(
            f"serialization_format='state_dict' needs the model's class to be importable, but "
            f"{path} is defined inside a function: {advice}"
        )
    try:
        found = _resolve(path)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            f"serialization_format='state_dict' needs the model's class to be importable, but "
            f"{path} cannot be imported ({exc}): {advice}"
        ) from None
    if found is not cls:
        raise InvalidInputError(
            f"serialization_format='state_dict' needs the model's class to be importable, but "
            f"importing {path} gives another object than the model's class (was the module "
            f"reloaded or the class redefined?): {advice}"
        )
    return path


def _check_init_kwargs(init_kwargs: Any) -> dict[str, Any]:
    """``init_kwargs`` as they will read back from JSON, or an error saying what is wrong."""
    if init_kwargs is None:
        return {}
    if not isinstance(init_kwargs, dict) or not all(isinstance(k, str) for k in init_kwargs):
        raise InvalidInputError(
            "init_kwargs must be a dict of the keyword arguments that build the module, with "
            f"string keys; got {type(init_kwargs).__name__}"
        )
    try:
        text = json.dumps(init_kwargs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"init_kwargs must hold JSON values only (numbers, strings, booleans, None, lists, "
            f"dicts), as they are saved in MLmodel.json: {exc}"
        ) from None
    kwargs: dict[str, Any] = json.loads(text)
    return kwargs


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".")


def _rebuild(cls: Any, kwargs: dict[str, Any], path: str) -> Any:
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise InvalidInputError(
            f"cannot build {path}(**{kwargs!r}) to hold the saved weights: "
            f"{type(exc).__name__}: {_one_line(exc)}. init_kwargs must be the keyword arguments "
            "that build the module"
        ) from None


def save(
    model: Any, folder: Path, serialization_format: str = "pickle",
    init_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model`` into ``folder`` in ``serialization_format`` (see the module
    docstring); the settings for ``MLmodel.json``. A ``state_dict`` save is proven to load
    first."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"the pytorch flavor saves a torch.nn.Module; got "
            f"{type(model).__module__}.{type(model).__qualname__}"
        )
    if serialization_format not in FORMATS:
        raise InvalidInputError(
            f"serialization_format must be one of {', '.join(FORMATS)}; got "
            f"{serialization_format!r}"
        )
    settings: dict[str, Any] = {
        "serialization_format": serialization_format,
        "pytorch_version": torch.__version__,
        "model_class": _class_path(type(model)),
    }
    if serialization_format == "pickle":
        if init_kwargs is not None:
            raise InvalidInputError(
                "init_kwargs is used only with serialization_format='state_dict' (the pickle "
                "format saves the whole module)"
            )
        import cloudpickle

        torch.save(model, folder / _PICKLE_FILE, pickle_module=cloudpickle)
        return {"data": _PICKLE_FILE, **settings, "extra_distributions": ["cloudpickle"]}

    kwargs = _check_init_kwargs(init_kwargs)
    path = _check_importable(type(model))
    rebuilt = _rebuild(type(model), kwargs, path)
    torch.save(model.state_dict(), folder / _STATE_DICT_FILE)
    try:
        state = torch.load(folder / _STATE_DICT_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidInputError(
            f"the module's state_dict holds objects that a weights-only load refuses "
            f"({_one_line(exc)}); save with serialization_format='pickle' instead"
        ) from None
    try:
        rebuilt.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InvalidInputError(
            f"the saved weights do not load into {path}(**{kwargs!r}): {_one_line(exc)}. "
            "Give the init_kwargs that build a module of the same shape"
        ) from None
    return {"data": _STATE_DICT_FILE, **settings, "init_kwargs": kwargs,
            "training": bool(model.training)}


def load(folder: Path, settings: dict[str, Any], map_location: Any = None) -> Any:
    """The module back; ``map_location`` as for ``torch.load``."""
    import torch

    data = folder / settings["data"]
    if settings.get("serialization_format", "pickle") == "pickle":
        return torch.load(data, map_location=map_location, weights_only=False)
    path = settings["model_class"]
    try:
        cls = _resolve(path)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            f"the model's weights need its class {path}, which cannot be imported here "
            f"({exc}): install or put on the Python path the code that defines it"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise InvalidInputError(f"the saved model names {path}, which is not a torch.nn.Module")
    model = _rebuild(cls, settings.get("init_kwargs") or {}, path)
    state = torch.load(data, map_location=map_location or "cpu", weights_only=True)
    model.load_state_dict(state)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.train(bool(settings.get("training", False)))
    return model


def _to_tensor(data: Any, model: Any) -> Any:
    import numpy as np
    import pandas as pd
    import torch

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    float_dtype = first.dtype if first is not None and first.is_floating_point() \
        else torch.float32
    if isinstance(data, torch.Tensor):
        tensor = data
    else:
        if isinstance(data, (pd.DataFrame, pd.Series)):
            data = data.to_numpy()
        array = np.asarray(data)
        if array.dtype.kind not in "biuf":
            try:
                array = array.astype(np.float32)
            except (TypeError, ValueError) as exc:
                raise ModelSchemaError(
                    f"a PyTorch model takes numeric input; this input could not be converted "
                    f"to float32 ({exc})"
                ) from None
        if not array.flags.writeable:  # torch warns on read-only memory (pandas' views)
            array = array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_floating_point():
        tensor = tensor.to(float_dtype)
    return tensor.to(device)


def _to_numpy(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, (list, tuple)):
        return type(output)(_to_numpy(o) for o in output)
    if isinstance(output, dict):
        return {k: _to_numpy(v) for k, v in output.items()}
    return output


def predictor(model: Any, settings: dict[str, Any]) -> Any:
    """``(data, params) -> ndarray``: the module run in eval mode without gradients."""
    import torch

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        if params:
            raise InvalidInputError(
                f"a PyTorch model's predict takes no params; got {', '.join(map(str, params))}"
            )
        tensor = _to_tensor(data, model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                output = model(tensor)
        finally:
            model.train(was_training)
        return _to_numpy(output)

    return predict


# -- public functions (nbtrack.pytorch) ---------------------------------------------------------


def log_model(
    pytorch_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    serialization_format: str = "pickle",
    init_kwargs: dict[str, Any] | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    name: str | None = None,
    **options: Unpack[LogOptions],
) -> ModelInfo:
    """Log a PyTorch module under the active run; register it when ``registered_model_name``
    is given.

    Parameters
    ----------
    pytorch_model
        A :class:`torch.nn.Module`.
    artifact_path
        The folder under the run's artifacts, e.g. ``"model"``.
    registered_model_name
        Register the model as a new version of this registered model (created if needed).
    signature
        The input/output signature; inferred from ``input_example`` when not given.
    input_example
        A few rows of input (a tensor, an array or a DataFrame), saved with the model.
    serialization_format
        ``"pickle"`` (the default; the whole module with cloudpickle, loading runs code) or
        ``"state_dict"`` (weights only, the safer; the class must be importable).
    init_kwargs
        With ``"state_dict"``: the JSON keyword arguments that build the module,
        ``cls(**init_kwargs)`` (default ``{}``). Checked at save time.
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
        pytorch_model, artifact_path, sys.modules[__name__], name=name,
        registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        serialization_format=serialization_format, init_kwargs=init_kwargs,
        **options,
    )


def save_model(
    pytorch_model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    serialization_format: str = "pickle",
    init_kwargs: dict[str, Any] | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    **options: Unpack[SaveOptions],
) -> None:
    """Save a PyTorch module as a model folder at ``path`` (arguments as for
    :func:`log_model`)."""
    _save_model(
        pytorch_model, path, sys.modules[__name__], signature=signature,
        input_example=input_example, extra_pip_requirements=extra_pip_requirements,
        serialization_format=serialization_format, init_kwargs=init_kwargs,
        **options,
    )


def load_model(model_uri: str | os.PathLike[str], map_location: Any = None) -> Any:
    """The PyTorch module saved at ``model_uri``.

    A ``pickle`` model runs code as it loads: load only models from people you trust. A
    ``state_dict`` model imports its class, builds it and reads only tensors.

    Parameters
    ----------
    model_uri
        ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` (or stage, ``@alias``), or a
        folder.
    map_location
        Where to put the tensors (``"cpu"``, ``"cuda:0"``, ...), as for ``torch.load``.
    """
    return load_with_flavor(model_uri, FLAVOR, map_location=map_location)


#: MLflow's defaults of the checkpoint keywords nbtrack accepts but does not act on.
_CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "checkpoint_monitor": "val_loss",
    "checkpoint_mode": "min",
    "checkpoint_save_best_only": True,
    "checkpoint_save_weights_only": False,
    "checkpoint_save_freq": "epoch",
}


def autolog(
    log_every_n_epoch: int = 1,
    log_every_n_step: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    checkpoint: bool = False,
    checkpoint_monitor: str = "val_loss",
    checkpoint_mode: str = "min",
    checkpoint_save_best_only: bool = True,
    checkpoint_save_weights_only: bool = False,
    checkpoint_save_freq: str | int = "epoch",
    log_model_signatures: bool = True,
    log_checkpoints: bool = False,
) -> None:
    """Record every PyTorch Lightning ``Trainer.fit`` (as ``mlflow.pytorch.autolog``; see
    :mod:`nbtrack.autologging.lightning`); ``disable=True`` puts the original back.

    The keywords are MLflow's (plus ``log_checkpoints``, nbtrack's older name for
    ``checkpoint``); each call starts from the defaults.

    Parameters
    ----------
    log_every_n_epoch
        Log the epoch-level values (``self.log(..., on_epoch=True)``, validation results) of
        every n-th epoch only; a whole number >= 1.
    log_every_n_step
        Log the step-level values of every n-th step only (steps n-1, 2n-1, ...); a whole
        number >= 1. nbtrack's default, None, logs every step Lightning hands its loggers (the
        trainer's ``log_every_n_steps``); MLflow's None logs no step-level values.
    log_models
        Save each fitted module with this flavor as the run's ``model`` artifact.
    log_model_signatures
        Infer the saved model's signature from its ``example_input_array`` (there is none
        without one; MLflow's also tries the first training batch).
    registered_model_name
        Register each saved model as a new version of this registered model.
    extra_tags
        Tags for every run autolog starts.
    disable
        Turn Lightning autolog off and put ``Trainer.fit`` back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).
    checkpoint, log_checkpoints
        Either True: log the best and the last checkpoint files of the trainer's own
        ``ModelCheckpoint`` under ``checkpoints/`` when training ends. nbtrack's default is
        not to (MLflow's is to, with a checkpoint callback of its own).
    checkpoint_monitor, checkpoint_mode, checkpoint_save_best_only,
    checkpoint_save_weights_only, checkpoint_save_freq
        Checked (``checkpoint_mode`` is ``"min"`` or ``"max"``, ``checkpoint_save_freq``
        ``"epoch"`` or a whole number >= 1) but not acted on: nbtrack adds no checkpoint
        callback, it logs the files of the trainer's ``ModelCheckpoint`` (give it
        ``monitor``, ``mode``, ``save_top_k``, ``save_weights_only``,
        ``every_n_train_steps``). A value other than MLflow's default, with checkpoint logging
        on, says so in a warning.
    log_datasets
        Accepted; nbtrack's Lightning autolog records no dataset information.
    disable_for_unsupported_versions
        Accepted; nbtrack does not check versions.
    """
    from ...autologging import library_autolog
    from ...autologging.lightning import check_every

    del log_datasets, disable_for_unsupported_versions
    check_every("log_every_n_epoch", log_every_n_epoch, none_ok=False)
    check_every("log_every_n_step", log_every_n_step, none_ok=True)
    if checkpoint_mode not in ("min", "max"):
        raise InvalidInputError(f"checkpoint_mode must be 'min' or 'max'; got {checkpoint_mode!r}")
    if checkpoint_save_freq != "epoch" and (
        isinstance(checkpoint_save_freq, bool) or not isinstance(checkpoint_save_freq, int)
        or checkpoint_save_freq < 1
    ):
        raise InvalidInputError(
            "checkpoint_save_freq must be 'epoch' or a whole number >= 1; "
            f"got {checkpoint_save_freq!r}"
        )
    given = {
        "checkpoint_monitor": checkpoint_monitor, "checkpoint_mode": checkpoint_mode,
        "checkpoint_save_best_only": checkpoint_save_best_only,
        "checkpoint_save_weights_only": checkpoint_save_weights_only,
        "checkpoint_save_freq": checkpoint_save_freq,
    }
    ignored = [f"{k}={v!r}" for k, v in given.items() if v != _CHECKPOINT_DEFAULTS[k]]
    log_checkpoints = bool(checkpoint or log_checkpoints)
    if ignored and log_checkpoints and not disable:
        warnings.warn(
            f"nbtrack's Lightning autolog ignores {', '.join(ignored)}: it adds no checkpoint "
            "callback but logs the best and last files of the trainer's own ModelCheckpoint; "
            "configure that one (monitor, mode, save_top_k, save_weights_only, "
            "every_n_train_steps)",
            UserWarning,
            stacklevel=2,
        )
    library_autolog(
        "pytorch_lightning", disable, exclusive, silent, log_models=log_models,
        log_checkpoints=log_checkpoints, log_every_n_epoch=log_every_n_epoch,
        log_every_n_step=log_every_n_step, log_model_signatures=log_model_signatures,
        registered_model_name=registered_model_name, extra_tags=extra_tags,
    )
