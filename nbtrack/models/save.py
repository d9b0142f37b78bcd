"""Save a model to a folder, or log it under the active run (and register it when asked)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ..exceptions import InvalidInputError
from ..file_modes import dir_mode
from ..tracking.artifacts import check_artifact_path
from .metadata import INPUT_EXAMPLE_FILE, ModelMetadata, pinned_requirements
from .signature import ModelSignature, as_signature, enforce_signature, infer_schema

if TYPE_CHECKING:
    from ..registry.entities import ModelVersion

__all__ = ["LogOptions", "ModelInfo", "SaveOptions", "free_model_path", "log_model",
           "model_path_taken", "save_model"]

#: Rows of an input example kept in ``input_example.json``.
MAX_EXAMPLE_ROWS = 100

#: The folder of a saved model that ``code_paths`` are copied into (put on ``sys.path`` when
#: the model is loaded).
CODE_DIR = "code"


class SaveOptions(TypedDict, total=False):
    """MLflow's keywords that every flavor's ``save_model`` and ``log_model`` take (their
    ``**options``), handled here once for all flavors:

    - ``pip_requirements``: the lines of ``requirements.txt`` in place of the pinned ones
      nbtrack infers (a list, or the path of a requirements file);
    - ``code_paths``: files or folders copied into the model's ``code/`` folder, which is put
      on ``sys.path`` when the model is loaded (modules the model's pickle imports, say);
    - ``metadata``: a JSON dict kept in ``MLmodel.json`` (``metadata`` of the loaded model);
    - ``params``: parameters kept with the model (``ModelInfo.params``), as text;
    - ``conda_env``: accepted for ported code, with a warning: nbtrack writes no conda
      environment (``pip_requirements`` shapes ``requirements.txt``).
    """

    pip_requirements: list[str] | str | None
    code_paths: list[str] | None
    metadata: dict[str, Any] | None
    params: dict[str, Any] | None
    conda_env: Any


class LogOptions(SaveOptions, total=False):
    """:class:`SaveOptions`, and ``await_registration_for``: accepted with a warning (a version
    is registered at once, there is nothing to wait for)."""

    await_registration_for: int | None


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
        self.metadata = metadata.metadata
        self.params = metadata.params
        self.registered_model_version = (
            None if registered_model_version is None else int(registered_model_version.version)
        )

    def __repr__(self) -> str:
        extra = (f", registered_model_version={self.registered_model_version}"
                 if self.registered_model_version else "")
        return f"ModelInfo(model_uri={self.model_uri!r}{extra})"


def _example_and_params(input_example: Any) -> tuple[Any, dict[str, Any] | None]:
    """MLflow's ``(example, params)`` form split in two; any other example has no params."""
    if isinstance(input_example, tuple) and len(input_example) == 2 \
            and isinstance(input_example[1], dict):
        return input_example[0], _json_dict(input_example[1], "the input_example's params")
    return input_example, None


def _example_json(example: Any, params: dict[str, Any] | None = None) -> str:
    import numpy as np
    import pandas as pd

    from .signature import _as_frame

    frame = _as_frame(example)  # a Series, a dict of columns, a list of records
    if frame is not None:
        example = frame
    if isinstance(example, pd.DataFrame):
        part = example.head(MAX_EXAMPLE_ROWS)
        return json.dumps({"dataframe_split": json.loads(part.to_json(orient="split",
                                                                      date_format="iso")),
                           **({} if params is None else {"params": params})})
    if hasattr(example, "detach") and hasattr(example, "numpy"):
        example = example.detach().cpu().numpy()
    array = np.asarray(example)
    if array.ndim == 0:
        raise InvalidInputError(
            f"input_example must hold rows: a DataFrame, a dict of columns, a list of records, "
            f"or an array or list of rows; got {type(example).__name__} {example!r:.80}"
        )
    return json.dumps({"inputs": array[:MAX_EXAMPLE_ROWS].tolist(),
                       **({} if params is None else {"params": params})})


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    flavor: ModuleType,
    *,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    extra_pip_requirements: list[str] | str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    pip_requirements: list[str] | str | None = None,
    code_paths: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    conda_env: Any = None,
    **options: Any,
) -> ModelMetadata:
    """Write ``model`` with ``flavor`` into the new folder ``path``: the flavor's files, the
    metadata file, requirements, the input example and ``code_paths``. The folder appears
    complete or not at all (it is built beside and renamed into place). MLflow's keywords are
    described in :class:`SaveOptions`; ``options`` go to the flavor's ``save``."""
    signature = as_signature(signature)  # MLflow's too
    _check_flavor_options(flavor, options)
    input_example, example_params = _example_and_params(input_example)
    lines, replace = _requirements(pip_requirements, extra_pip_requirements)
    sources = _code_sources(code_paths)
    model_metadata = _json_dict(metadata, "metadata")
    model_params = _json_dict(params, "params", as_json=False)
    if conda_env is not None:
        _not_acted_on("conda_env", "nbtrack writes a requirements.txt, not a conda environment "
                      "(shape it with pip_requirements or extra_pip_requirements)")
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"cannot save a model to {target}: it exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        if sources:
            _copy_code(sources, tmp / CODE_DIR)
        settings = flavor.save(model, tmp, **options)
        extra = settings.pop("extra_distributions", [])
        pyfunc_settings = {} if flavor.FLAVOR == "python_function" else {
            "python_function": {"loader_module": flavor.__name__}
        }
        if sources:  # each flavor's loader finds it in its own settings
            for entry in (settings, *pyfunc_settings.values()):
                entry["code"] = CODE_DIR
        saved = ModelMetadata(
            flavors={flavor.FLAVOR: settings, **pyfunc_settings},
            run_id=run_id,
            artifact_path=artifact_path,
            requirements=lines if replace else [
                *pinned_requirements([*flavor.DISTRIBUTIONS, *extra, "pandas", "numpy"]),
                *lines,
            ],
            metadata=model_metadata,
            params=model_params,
        )
        if input_example is not None:
            # Params given with the example are kept with it, in the request's form (nbtrack's
            # signatures have no params schema: they reach predict unchecked).
            (tmp / INPUT_EXAMPLE_FILE).write_text(_example_json(input_example, example_params))
            saved.input_example = INPUT_EXAMPLE_FILE
            if signature is None:
                signature = _infer(model, flavor, settings, input_example, example_params, tmp)
        saved.signature = signature or None  # False: none, not even inferred (as MLflow)
        saved.save(tmp)
        os.chmod(tmp, dir_mode())  # mkdtemp's folder is 0700
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return saved


def _not_acted_on(keyword: str, why: str) -> None:
    """Warn (at the caller of the flavor's ``save_model`` or ``log_model``) that an MLflow
    keyword is accepted for ported code and not acted on."""
    warnings.warn(f"{keyword} is not acted on: {why}", UserWarning, stacklevel=4)


def _check_flavor_options(flavor: ModuleType, options: dict[str, Any]) -> None:
    """A TypeError naming what the flavor takes for a keyword no one takes (a typo, say)."""
    from .flavors import options_of

    accepted = options_of(flavor.save)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"saving a {flavor.FLAVOR} model takes no keyword {', '.join(unknown)}; besides "
            f"signature, input_example, extra_pip_requirements and MLflow's "
            f"{', '.join(LogOptions.__annotations__)}, it takes {', '.join(accepted) or 'none'}"
        )


def _requirements(
    pip_requirements: list[str] | str | None, extra_pip_requirements: list[str] | str | None
) -> tuple[list[str], bool]:
    """The lines MLflow's keywords give ``requirements.txt``, and whether they replace the
    pinned ones nbtrack infers (``pip_requirements``) or are added to them (``extra_...``)."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidInputError(
            "give pip_requirements (the whole requirements.txt) or extra_pip_requirements "
            "(lines added to the pinned ones nbtrack infers), not both"
        )
    if pip_requirements is not None:
        return _requirement_lines(pip_requirements, "pip_requirements"), True
    return _requirement_lines(extra_pip_requirements, "extra_pip_requirements"), False


def _requirement_lines(value: Any, name: str) -> list[str]:
    """A list of requirements, or (as MLflow) a string: the path of a requirements file."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInputError(
                f"{name}: a string is the path of a requirements file, and {path} cannot be "
                f"read ({exc.strerror}); give a list such as ['scikit-learn==1.5.0']"
            ) from None
        lines = [line.split(" #")[0].strip() for line in text.splitlines()]
        return [line for line in lines if line and not line.startswith("#")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(
            f"{name} must be a list of requirements (strings) or the path of a requirements "
            f"file; got {value!r:.80}"
        )
    return [v.strip() for v in value if v.strip()]


def _code_sources(code_paths: Any) -> list[Path]:
    """The files and folders of ``code_paths``, checked: each exists, no two share a name."""
    if code_paths is None:
        return []
    if isinstance(code_paths, (str, os.PathLike)) or not isinstance(code_paths, (list, tuple)):
        raise InvalidInputError(
            f"code_paths must be a list of files or folders; got {code_paths!r:.80}"
        )
    sources = []
    for entry in code_paths:
        source = Path(entry).expanduser().resolve()
        if not source.exists():
            raise InvalidInputError(f"code_paths: {source} does not exist")
        sources.append(source)
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError(
            f"code_paths: more than one is named {twice[0]!r}, and each is copied under its "
            f"name into the model's {CODE_DIR}/ folder"
        )
    return sources


def _copy_code(sources: list[Path], folder: Path) -> None:
    folder.mkdir()
    for source in sources:
        if source.is_dir():
            shutil.copytree(source, folder / source.name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, folder / source.name)


def _json_dict(value: Any, name: str, as_json: bool = True) -> dict[str, Any] | None:
    """``metadata`` (kept as JSON) or ``params`` (kept as text, as MLflow keeps them)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a dict; got {type(value).__name__}")
    if not as_json:
        return {str(k): str(v) for k, v in value.items()}
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} must hold JSON (text, numbers, booleans, lists and dicts): {exc}"
        ) from None
    return dict(value)


def _infer(
    model: Any, flavor: ModuleType, settings: dict[str, Any], example: Any,
    params: dict[str, Any] | None, folder: Path,
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
        output = flavor.predictor(model, settings)(enforce_signature(signature, example), params)
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
    extra_pip_requirements: list[str] | str | None = None,
    await_registration_for: int | None = None,
    conda_env: Any = None,
    **options: Any,
) -> ModelInfo:
    """Save ``model`` under the active run's artifacts at ``artifact_path`` (or ``name``, MLflow
    3's spelling; a run is started if none is active, as MLflow does), and register it as a new
    version of ``registered_model_name`` when given. ``options``: MLflow's keywords (see
    :class:`LogOptions`) and the flavor's own.

    A model once logged is never overwritten: registered versions point at it. Logging another
    model at the same path of the same run is an error naming a free path."""
    from ..tracking import fluent

    _check_flavor_options(flavor, {k: v for k, v in options.items()
                                   if k not in SaveOptions.__annotations__})  # a typo: no run
    if await_registration_for is not None:
        _not_acted_on("await_registration_for",
                      "nbtrack registers a version at once, there is nothing to wait for")
    if conda_env is not None:
        _not_acted_on("conda_env", "nbtrack writes a requirements.txt, not a conda environment "
                      "(shape it with pip_requirements or extra_pip_requirements)")

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
