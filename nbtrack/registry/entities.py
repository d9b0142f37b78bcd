"""The objects the registry returns, shaped like MLflow's (``ModelVersion.version`` is a str)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ModelVersion", "ModelVersionStage", "RegisteredModel", "RegistryEvent"]


class ModelVersionStage:
    """MLflow's model version stages. Stage names are matched case-insensitively on input."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    ALL = ("None", "Staging", "Production", "Archived")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    source: str
    run_id: str | None
    status: str = "READY"
    description: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def run_link(self) -> str | None:
        return None

    @property
    def status_message(self) -> str | None:
        """MLflow's note on a version's status; versions are READY at once here: None."""
        return None

    @property
    def model_id(self) -> str | None:
        """MLflow 3's LoggedModel id of the version; nbtrack registers run artifacts: None."""
        return None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    #: The newest version in each stage (as MLflow's ``latest_versions``).
    latest_versions: list[ModelVersion] = field(default_factory=list)


@dataclass(frozen=True)
class RegistryEvent:
    """One record of the audit trail.

    ``kind`` is ``stage`` (from/to are stage names), ``alias:<alias>`` (from/to are version
    numbers, ``None`` when the alias was unset), ``create_version``, ``delete_version``,
    ``create_model``, ``rename_model`` or ``delete_model``.
    """

    name: str
    version: str | None
    kind: str
    from_value: str | None
    to_value: str | None
    timestamp: int
    user_id: str | None
    comment: str | None
