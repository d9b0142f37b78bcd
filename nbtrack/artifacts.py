"""MLflow's ``mlflow.artifacts`` functions: copy, list or read a run's artifacts.

An artifact is named by ``run_id`` (and ``artifact_path``), or by one URI:
``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` (a registered model's files), or a local
path (``file://`` or plain) such as an artifact URI that
``get_artifact_uri`` returned::

    nbtrack.artifacts.load_dict(f"runs:/{run_id}/config.json")
    nbtrack.artifacts.download_artifacts(run_id=run_id, artifact_path="plots", dst_path="out")
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .exceptions import InvalidInputError
from .tracking.artifacts import list_folder, split_runs_uri
from .tracking.entities import FileInfo

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_text"]


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Copy an artifact file or folder into ``dst_path`` (a new temporary folder by default)
    and return the local path of the copy."""
    run, path, local = _locate(artifact_uri, run_id, artifact_path, tracking_uri)
    if run is not None:
        client, found = run
        return str(client.download_artifacts(found, path, dst_path))
    assert local is not None
    if dst_path is None:
        return str(local)  # a local file already: nothing to copy
    target = Path(dst_path) / local.name
    Path(dst_path).mkdir(parents=True, exist_ok=True)
    if local.is_dir():
        shutil.copytree(local, target, dirs_exist_ok=True)
    else:
        shutil.copy2(local, target)
    return str(target)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """The files and folders directly in an artifact folder, as MLflow lists them: a run's
    (``run_id`` and ``artifact_path``, paths from the run's root), the one a ``runs:/`` or
    local URI names (paths from the folder holding it, as in MLflow), or a registered model
    version's (``models:/``, paths from the model's folder, as in MLflow)."""
    run, path, local = _locate(artifact_uri, run_id, artifact_path, tracking_uri)
    if artifact_uri is None:
        assert run is not None
        client, found = run
        return client.list_artifacts(found, path or None)
    # As MLflow does with a URI: its last part listed inside its parent, paths from the parent
    # (runs:/<id>/dir lists dir/a.txt, runs:/<id>/dir/ lists a.txt); a registered version's
    # own files, paths from the model's folder.
    inside = artifact_uri.endswith("/") or artifact_uri.startswith("models:/")
    if run is not None:
        client, found = run
        parent, last = (path, "") if inside else posixpath.split(path)
        return list_folder(Path(client.get_artifact_uri(found, parent)), last)
    assert local is not None
    return list_folder(local, "") if inside else list_folder(local.parent, local.name)


def load_text(artifact_uri: str) -> str:
    """The text of an artifact file (``runs:/<run_id>/notes.txt``, or a local path)."""
    return _file(artifact_uri).read_text(encoding="utf-8")


def load_dict(artifact_uri: str) -> Any:
    """An artifact file written by ``log_dict``: JSON (a dict, or whatever it holds, as in
    MLflow), or YAML for ``.yaml`` / ``.yml``."""
    file = _file(artifact_uri)
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{artifact_uri} is not YAML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{artifact_uri} is not JSON: {exc}") from None


def _file(artifact_uri: str) -> Path:
    run, path, local = _locate(artifact_uri, None, None, None)
    if run is not None:
        client, found = run
        local = Path(client.get_artifact_uri(found, path))
    assert local is not None
    if not local.is_file():
        raise InvalidInputError(f"no artifact file at {artifact_uri}")
    return local


def _resolved(artifact_uri: str, client: Any) -> str:
    """``artifact_uri``, or for a registered version (``models:/``) where its model was logged
    (a ``runs:/`` URI, or a folder), looked up in ``client``'s registry (None: the tracking
    URI in force)."""
    if not artifact_uri.startswith("models:/"):
        return artifact_uri
    from .models.uri import parse_model_uri, registry_version
    from .tracking import fluent

    where = client if client is not None else fluent._client()
    return str(registry_version(parse_model_uri(artifact_uri), where).source)


def _locate(
    artifact_uri: str | None, run_id: str | None, artifact_path: str | None,
    tracking_uri: str | None,
) -> tuple[tuple[Any, str] | None, str, Path | None]:
    """``((client, run_id), path, None)`` for a run's artifact, ``(None, "", local path)`` for
    a local one."""
    from .tracking import fluent
    from .tracking.client import Client

    if (artifact_uri is None) == (run_id is None):
        raise InvalidInputError("give artifact_uri, or run_id (with artifact_path), not both")
    if artifact_uri is not None and artifact_path is not None:
        raise InvalidInputError("artifact_path goes with run_id; put the path in artifact_uri")
    client = Client(tracking_uri) if tracking_uri is not None else None
    if artifact_uri is not None:
        artifact_uri = _resolved(artifact_uri, client)
        in_run = split_runs_uri(artifact_uri)
        if in_run is not None:
            run_id, path = in_run
        else:
            parsed = urlparse(artifact_uri)
            if parsed.scheme not in ("", "file") or (parsed.scheme == "file" and parsed.netloc):
                raise InvalidInputError(
                    f"cannot read {artifact_uri!r}: give runs:/<run_id>/<path>, "
                    "models:/<name>/<version>, or a local path"
                )
            local = Path(unquote(parsed.path) if parsed.scheme else artifact_uri)
            if not local.exists():
                raise InvalidInputError(f"no artifact at {artifact_uri}")
            return None, "", local
    else:
        path = artifact_path or ""
    assert run_id is not None
    if client is None:
        client = fluent._client_for(run_id)
    found = client.find_run_id(run_id)  # a unique prefix works, as in the CLI
    return (client, found), path, None
