"""The metadata file of a saved model (``MLmodel.json``) and its pinned requirements.

A saved model is a folder::

    model/
      MLmodel.json          flavors, signature, Python and library versions, run, time
      requirements.txt      pinned requirements (``name==version``) to load it elsewhere
      input_example.json    the example given at log time (when one was)
      code/                 the files of ``code_paths`` (when given), put on sys.path to load
      model.pkl | ...       the flavor's own files

The format is MLflow's in spirit (flavors keyed by name, a ``python_function`` flavor that any
loader can use), written as JSON so that reading it needs nothing beyond the standard library.
"""

from __future__ import annotations

import functools
import json
import platform
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..exceptions import ModelNotFoundError
from .signature import ModelSignature
from .uri import METADATA_FILE

__all__ = ["FORMAT_VERSION", "ModelMetadata", "pinned_requirements"]

FORMAT_VERSION = 1
REQUIREMENTS_FILE = "requirements.txt"
INPUT_EXAMPLE_FILE = "input_example.json"


@functools.lru_cache(maxsize=256)
def _installed_version(name: str) -> str | None:
    """A distribution's version (read once per process: metadata lookups cost milliseconds)."""
    from importlib import metadata as importlib_metadata  # imported here: it costs 30 ms

    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def pinned_requirements(distributions: list[str]) -> list[str]:
    """``name==version`` for each installed distribution (missing ones are left out; local
    version labels such as ``+cpu`` are dropped)."""
    out = []
    for name in dict.fromkeys(distributions):
        version = _installed_version(name)
        if version is not None:
            # a local label (torch's "+cpu") names no release an index has: drop it
            out.append(f"{name}=={version.split('+')[0]}")
    return out


@dataclass
class ModelMetadata:
    """What ``MLmodel.json`` holds; ``flavors`` maps a flavor name to its own settings."""

    flavors: dict[str, dict[str, Any]]
    signature: ModelSignature | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    )
    python_version: str = field(default_factory=platform.python_version)
    nbtrack_version: str = __version__
    input_example: str | None = None
    requirements: list[str] = field(default_factory=list)
    #: MLflow's custom ``metadata`` dict of a model, given at save time.
    metadata: dict[str, Any] | None = None
    #: The ``params`` given at log time, as text (MLflow keeps them with a logged model).
    params: dict[str, str] | None = None

    @property
    def primary_flavor(self) -> str:
        """The library's own flavor (the first that is not ``python_function``)."""
        for name in self.flavors:
            if name != "python_function":
                return name
        return "python_function"

    def to_dict(self) -> dict[str, Any]:
        optional = {k: v for k, v in (("metadata", self.metadata), ("params", self.params))
                    if v is not None}
        return {
            "format_version": FORMAT_VERSION,
            "flavors": self.flavors,
            "signature": self.signature.to_dict() if self.signature else None,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "model_uuid": self.model_uuid,
            "utc_time_created": self.utc_time_created,
            "python_version": self.python_version,
            "nbtrack_version": self.nbtrack_version,
            "input_example": self.input_example,
            "requirements": REQUIREMENTS_FILE,
            **optional,
        }

    def save(self, folder: Path) -> None:
        (folder / METADATA_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (folder / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in self.requirements))

    @classmethod
    def load(cls, folder: Path) -> ModelMetadata:
        path = folder / METADATA_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"{folder} is not a saved model (no {METADATA_FILE})"
            ) from None
        except json.JSONDecodeError as exc:
            raise ModelNotFoundError(f"{path} is not valid JSON ({exc})") from None
        req_file = folder / REQUIREMENTS_FILE
        requirements = ([line.strip() for line in req_file.read_text().splitlines()
                         if line.strip()] if req_file.is_file() else [])
        return cls(
            flavors=data.get("flavors") or {},
            signature=ModelSignature.from_dict(data.get("signature")),
            run_id=data.get("run_id"),
            artifact_path=data.get("artifact_path"),
            model_uuid=data.get("model_uuid") or "",
            utc_time_created=data.get("utc_time_created") or "",
            python_version=data.get("python_version") or "",
            nbtrack_version=data.get("nbtrack_version") or "",
            input_example=data.get("input_example"),
            requirements=requirements,
            metadata=data.get("metadata"),
            params=data.get("params"),
        )
