"""Save a model to a folder, or log it under the active run (and register it when asked)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import InvalidInputError
from ..file_modes import dir_mode
from ..tracking.artifacts import check_artifact_path
from .metadata import INPUT_EXAMPLE_FILE, ModelMetadata, pinned_requirements
from .signature import ModelSignature, as_signature, enforce_signature, infer_schema

if TYPE_CHECKING:
    from ..registry.entities import ModelVersion

__all__ = ["ModelInfo", "free_model_path", "log_model", "model_path_taken", "save_model"]

#: Rows of an input example kept in ``input_example.json``.
MAX_EXAMPLE_ROWS = 100


class ModelInfo:
    """What :func:`log_model` returns (as MLflow's): where the model went and its metadata."""

    def __init__(self, model_uri: str, metadata: ModelMetadata,
                 registered_model_version: ModelVersion | None):
        self.model_uri = model_uri
        self.run_id = metadata.run_id
        self.artifact_path = metadata.artifact_path
        self.flavors = metadata.flavors
        self.signature = metadata.signature
        self.model_uuid = metadata.model_uuid
        self.utc_time_created = metadata.utc_time_created
        self.registered_model_version = (
            None if registered_model_version is None else int(registered_model_version.version)
        )

    def __repr__(self) -> str:
        extra = (f", registered_model_version={self.registered_model_version}"
                 if self.registered_model_version else "")
        return f"ModelInfo(model_uri={self.model_uri!r}{extra})"


def _example_json(example: Any) -> str:
    import numpy as np
    import pandas as pd

    from .signature import _as_frame

    frame = _as_frame(example)  # a Series, a dict of columns, a list of records
    if frame is not None:
        example = frame
    if isinstance(example, pd.DataFrame):
        part = example.head(MAX_EXAMPLE_ROWS)
        return json.dumps({"dataframe_split": json.loads(part.to_json(orient="split",
                                                                      date_format="iso"))})
    if hasattr(example, "detach") and hasattr(example, "numpy"):
        example = example.detach().cpu().numpy()
    array = np.asarray(example)
    if array.ndim == 0:
        raise InvalidInputError(
            f"input_example must hold rows: a DataFrame, a dict of columns, a list of records, "
            f"or an array or list of rows; got {type(example).__name__} {example!r:.80}"
        )
    return json.dumps({"inputs": array[:MAX_EXAMPLE_ROWS].tolist()})


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    flavor: ModuleType,
    *,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    **options: Any,
) -> ModelMetadata:
    """Write ``model`` with ``flavor`` into the new folder ``path``: the flavor's files, the
    metadata file, requirements and the input example. The folder appears complete or not at
    all (it is built beside and renamed into place)."""
    signature = as_signature(signature)  # MLflow's too
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"cannot save a model to {target}: it exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        settings = flavor.save(model, tmp, **options)
        extra = settings.pop("extra_distributions", [])
        metadata = ModelMetadata(
            flavors={
                flavor.FLAVOR: settings,
                **({} if flavor.FLAVOR == "python_function" else {
                    "python_function": {"loader_module": flavor.__name__}
                }),
            },
            run_id=run_id,
            artifact_path=artifact_path,
            requirements=[
                *pinned_requirements([*flavor.DISTRIBUTIONS, *extra, "pandas", "numpy"]),
                *(extra_pip_requirements or []),
            ],
        )
        if input_example is not None:
            (tmp / INPUT_EXAMPLE_FILE).write_text(_example_json(input_example))
            metadata.input_example = INPUT_EXAMPLE_FILE
            if signature is None:
                signature = _infer(model, flavor, settings, input_example, tmp)
        metadata.signature = signature or None  # False: none, not even inferred (as MLflow)
        metadata.save(tmp)
        os.chmod(tmp, dir_mode())  # mkdtemp's folder is 0700
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metadata


def _infer(
    model: Any, flavor: ModuleType, settings: dict[str, Any], example: Any, folder: Path
) -> ModelSignature | None:
    """Input schema from the example; output schema from the model's prediction on it (custom
    Python models are loaded back from ``folder`` first, so their ``load_context`` runs).

    A model that cannot predict on its example is still saved, with a warning and no
    signature (as MLflow): an example of the wrong shape would give a signature that refuses
    every right input."""
    signature = ModelSignature(infer_schema(example))
    try:
        if flavor.FLAVOR == "python_function":
            model = flavor.load(folder, settings)
        output = flavor.predictor(model, settings)(enforce_signature(signature, example), None)
    except Exception as exc:
        warnings.warn(
            f"the model could not predict on its input_example ({type(exc).__name__}: "
            f"{str(exc)[:300]}), so no signature was inferred; check the example, or pass "
            "signature=",
            UserWarning,
            stacklevel=4,
        )
        return None
    return ModelSignature(signature.inputs, infer_schema(output))


def log_model(
    model: Any,
    artifact_path: str | None,
    flavor: ModuleType,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | None = None,
    **options: Any,
) -> ModelInfo:
    """Save ``model`` under the active run's artifacts at ``artifact_path`` (or ``name``, MLflow
    3's spelling; a run is started if none is active, as MLflow does), and register it as a new
    version of ``registered_model_name`` when given.

    A model once logged is never overwritten: registered versions point at it. Logging another
    model at the same path of the same run is an error naming a free path."""
    from ..tracking import fluent

    if name is not None and artifact_path is not None and name != artifact_path:
        raise InvalidInputError(
            f"give the model's folder once: artifact_path={artifact_path!r} and name={name!r} "
            "differ (name is MLflow 3's spelling of artifact_path)"
        )
    signature = as_signature(signature)  # before a run is started, and MLflow's too
    sub = check_artifact_path(name if name is not None else artifact_path)
    if not sub:
        raise InvalidInputError("artifact_path must name a folder for the model, like 'model'")
    if registered_model_name is not None:
        from ..registry.validation import check_model_name

        check_model_name(registered_model_name)
    client, run_id = fluent._target(None)
    if model_path_taken(client, run_id, sub):
        free = free_model_path(client, run_id, sub)
        raise InvalidInputError(
            f"run {run_id} already has a model at {sub!r}, and a logged model is never replaced "
            f"(registered versions point at it); log this one as {free!r}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        metadata = save_model(
            model, folder, flavor, signature=signature, input_example=input_example,
            extra_pip_requirements=extra_pip_requirements, run_id=run_id,
            artifact_path=sub, **options,
        )
        client.log_artifacts(run_id, folder, sub)
    uri = f"runs:/{run_id}/{sub}"
    version = client.register_model(uri, registered_model_name) if registered_model_name else None
    return ModelInfo(uri, metadata, version)


def model_path_taken(client: Any, run_id: str, artifact_path: str) -> bool:
    """True if the run has an artifact at ``artifact_path`` or under it already."""
    return bool(client.list_artifact_files(run_id, artifact_path))


def free_model_path(client: Any, run_id: str, base: str = "model") -> str:
    """``base`` if the run has nothing there yet, else ``base-2``, ``base-3``, ..."""
    candidate, n = base, 1
    while model_path_taken(client, run_id, candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate
