"""Model URIs: which saved model a string names, and the folder that holds it.

Accepted forms::

    runs:/<run_id>/<artifact_path>      a model logged under a run (run id prefixes work too)
    models:/<name>/<version>            a registered version, e.g. models:/churn-rf/3
    models:/<name>/<stage>              the newest version in a stage: None, Staging, Production,
                                        Archived (any case)
    models:/<name>/latest               the newest version
    models:/<name>@<alias>              the version an alias points at: models:/churn-rf@champion
    /path/to/model, file:///path/...    a model folder on disk
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import InvalidModelURIError, ModelNotFoundError, ModelVersionNotFoundError
from ..tracking.artifacts import split_runs_uri

if TYPE_CHECKING:
    from ..registry.entities import ModelVersion
    from ..tracking.client import Client

__all__ = ["METADATA_FILE", "ModelURI", "parse_model_uri", "resolve_model_dir"]

#: The file that makes a folder a saved model.
METADATA_FILE = "MLmodel.json"

FORMS = (
    "runs:/<run_id>/<artifact_path>, models:/<name>/<version>, models:/<name>/<stage>, "
    "models:/<name>/latest, models:/<name>@<alias>, or a local folder path"
)


@dataclass(frozen=True)
class ModelURI:
    """A parsed model URI. ``scheme`` is ``runs``, ``models`` or ``file``."""

    scheme: str
    run_id: str | None = None
    artifact_path: str | None = None
    name: str | None = None
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False
    path: str | None = None


def _bad(uri: str, why: str) -> InvalidModelURIError:
    return InvalidModelURIError(f"model URI {uri!r} {why}. Accepted forms: {FORMS}")


def parse_model_uri(uri: str | os.PathLike[str]) -> ModelURI:
    """Parse ``uri``; :class:`~nbtrack.exceptions.InvalidModelURIError` names the forms."""
    from ..registry.validation import check_alias, check_model_name, check_stage

    if isinstance(uri, os.PathLike):
        return ModelURI("file", path=os.fspath(uri))
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidModelURIError(f"a model URI must be a non-empty string; got {uri!r}. "
                                   f"Accepted forms: {FORMS}")
    in_run = split_runs_uri(uri)
    if in_run is not None:
        run_id, path = in_run
        if not run_id or not path:
            raise _bad(uri, "needs a run id and an artifact path, like runs:/<run_id>/model")
        return ModelURI("runs", run_id=run_id, artifact_path=path)
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):].strip("/")
        if "@" in rest:
            name, _, alias = rest.partition("@")
            try:
                return ModelURI("models", name=check_model_name(name), alias=check_alias(alias))
            except InvalidModelURIError:
                raise
            except ValueError as exc:
                raise _bad(uri, f"is not valid ({exc})") from None
        name, _, ref = rest.rpartition("/")
        if not name or not ref:
            raise _bad(uri, "needs a name and a version, stage or alias")
        try:
            check_model_name(name)
        except ValueError as exc:
            raise _bad(uri, f"is not valid ({exc})") from None
        if ref.isdigit() and int(ref) > 0:
            return ModelURI("models", name=name, version=int(ref))
        if ref.lower() == "latest":
            return ModelURI("models", name=name, latest=True)
        try:
            return ModelURI("models", name=name, stage=check_stage(ref))
        except ValueError:
            raise _bad(
                uri, f"ends in {ref!r}, which is not a version number, a stage (None, Staging, "
                "Production, Archived) or 'latest'"
            ) from None
    if uri.startswith("file://"):
        return ModelURI("file", path=uri[len("file://"):])
    if "://" in uri or (":/" in uri and not os.path.exists(uri)):
        scheme = uri.split(":", 1)[0]
        raise _bad(uri, f"has the scheme {scheme!r}, which nbtrack does not know")
    return ModelURI("file", path=uri)


def registry_version(parsed: ModelURI, client: Client) -> ModelVersion:
    """The registered version a ``models:/`` URI names."""
    assert parsed.name is not None
    if parsed.alias is not None:
        return client.get_model_version_by_alias(parsed.name, parsed.alias)
    if parsed.version is not None:
        return client.get_model_version(parsed.name, parsed.version)
    if parsed.stage is not None:
        found = client.get_latest_versions(parsed.name, stages=[parsed.stage])
        if not found:
            staged = sorted(
                {v.current_stage for v in client.get_latest_versions(parsed.name)} - {"None"}
            )
            raise ModelVersionNotFoundError(
                f"registered model {parsed.name!r} has no version in stage {parsed.stage!r} "
                f"(stages with a version: {', '.join(staged) or 'none'})"
            )
        return found[0]
    versions = client.search_model_versions(f"name = '{_quote(parsed.name)}'")
    if not versions:
        raise ModelVersionNotFoundError(f"registered model {parsed.name!r} has no versions")
    return max(versions, key=lambda v: int(v.version))


def _quote(text: str) -> str:
    return text.replace("'", "''")


def resolve_model_dir(uri: str | os.PathLike[str], client: Client | None = None) -> Path:
    """The folder (holding :data:`METADATA_FILE`) that ``uri`` names."""
    from ..tracking.client import Client as _Client

    parsed = parse_model_uri(uri)
    if parsed.scheme == "models":
        client = client or _Client()
        source = registry_version(parsed, client).source
        return resolve_model_dir(source, client)
    if parsed.scheme == "runs":
        client = client or _Client()
        assert parsed.run_id is not None and parsed.artifact_path is not None
        run_id = client.find_run_id(parsed.run_id)
        folder = Path(client.get_artifact_uri(run_id, parsed.artifact_path))
    else:
        assert parsed.path is not None
        folder = Path(parsed.path).expanduser()
    if not (folder / METADATA_FILE).is_file():
        what = "does not exist" if not folder.exists() else f"has no {METADATA_FILE}"
        raise ModelNotFoundError(
            f"no saved model at {uri!s}: the folder {folder} {what} (log one with "
            "nbtrack.log_model, or check the artifact path)"
        )
    return folder
