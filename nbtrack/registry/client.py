"""The registry methods of :class:`nbtrack.Client`, under MLflow's names.

Stages are MLflow's (None, Staging, Production, Archived); aliases are the newer way to name a
version (``champion``, ``challenger``). Every stage or alias change is written with an audit
record (from, to, when, who, comment) in the same transaction; :meth:`get_model_history` lists
them. Destructive operations on what may be serving (deleting a registered model that has
versions, or a version in Production) raise :class:`~nbtrack.exceptions.ForceRequiredError`
unless ``force=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    ModelVersionNotFoundError,
    RegisteredModelNotFoundError,
)
from ..store.registry import RegistryTables
from ..tracking import context
from ..tracking.entities import PagedList
from ..tracking.paging import offset_of, token_at
from ..tracking.validation import check_tag
from .entities import ModelVersion, ModelVersionStage, RegisteredModel, RegistryEvent
from .search import MODEL_KEYS, VERSION_KEYS, compile_registry_filter
from .validation import check_alias, check_model_name, check_stage, check_version

if TYPE_CHECKING:
    from ..store.sqlite import SQLiteStore

__all__ = ["RegistryMethods"]

_MODEL_ORDER = {"name": "name", "creation_timestamp": "creation_time",
                "last_updated_timestamp": "last_updated_time"}
_VERSION_ORDER = {**_MODEL_ORDER, "version_number": "version", "version": "version"}


def _version(row: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=row["name"],
        version=str(row["version"]),
        creation_timestamp=row["creation_time"],
        last_updated_timestamp=row["last_updated_time"],
        current_stage=row["current_stage"],
        source=row["source"],
        run_id=row["run_id"],
        status=row["status"],
        description=row["description"],
        user_id=row["user"],
        tags=dict(row["tags"]),
        aliases=list(row["aliases"]),
    )


def _tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return dict(check_tag(key, value) for key, value in (tags or {}).items())


def _limit(max_results: Any) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0:
        raise InvalidInputError(f"max_results must be a whole number >= 0; got {max_results!r}")
    return max_results


def _page(
    rows: list[dict[str, Any]], max_results: Any, page_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The page of ``rows`` that ``page_token`` starts, and the token of the next one."""
    size, start = _limit(max_results), offset_of(page_token)
    end = start + size
    return rows[start:end], (token_at(end) if size and end < len(rows) else None)


def _sorted(rows: list[dict[str, Any]], order_by: Sequence[str] | str | None,
            columns: dict[str, str]) -> list[dict[str, Any]]:
    clauses = [order_by] if isinstance(order_by, str) else list(order_by or [])
    for clause in reversed(clauses):
        field, _, direction = clause.strip().partition(" ")
        direction = direction.strip().upper() or "ASC"
        if field not in columns or direction not in ("ASC", "DESC"):
            raise InvalidInputError(
                f"order_by {clause!r} is not allowed; use one of {', '.join(columns)} "
                "followed by ASC or DESC"
            )
        column = columns[field]
        rows.sort(key=lambda r: r[column], reverse=direction == "DESC")
    return rows


class RegistryMethods:
    """Mixed into :class:`~nbtrack.tracking.client.Client`; uses its ``store``."""

    @property
    def store(self) -> SQLiteStore:
        raise NotImplementedError  # the Client's

    @property
    def _registry(self) -> RegistryTables:
        return RegistryTables(self.store)

    # -- registered models --------------------------------------------------------------------

    def _model_row(self, name: str) -> dict[str, Any]:
        row = self._registry.get_model(check_model_name(name))
        if row is None:
            raise RegisteredModelNotFoundError(
                f"no registered model named {name!r} (see search_registered_models() or "
                "`nbtrack models list`)"
            )
        return row

    def _model(
        self, row: dict[str, Any], versions: list[dict[str, Any]] | None = None
    ) -> RegisteredModel:
        """The model of ``row``; ``versions``: its version rows when read already."""
        if versions is None:
            versions = self._registry.get_versions(row["name"])
        latest: dict[str, dict[str, Any]] = {}
        for v in versions:  # ordered by version: the last one of a stage wins
            latest[v["current_stage"]] = v
        return RegisteredModel(
            name=row["name"],
            creation_timestamp=row["creation_time"],
            last_updated_timestamp=row["last_updated_time"],
            description=row["description"],
            tags=row["tags"],
            aliases={a: str(v) for a, v in row["aliases"].items()},
            latest_versions=[_version(latest[s]) for s in ModelVersionStage.ALL if s in latest],
        )

    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """A new, empty registered model; AlreadyExistsError if the name is taken."""
        check_model_name(name)
        clean = _tags(tags)
        if not self._registry.create_model(name, description, clean, now_ms(), context.user()):
            raise AlreadyExistsError(
                f"a registered model named {name!r} exists already; register a new version "
                "of it with register_model or create_model_version"
            )
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._model(self._model_row(name))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | str | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Registered models matching ``filter_string`` (``name``, ``tags.<key>``; see
        :mod:`nbtrack.registry.search`), by name unless ``order_by`` says otherwise: a page of
        ``max_results``, whose ``token`` asks for the next (None on the last), as in MLflow."""
        keep = compile_registry_filter(filter_string, MODEL_KEYS)
        rows = [r for r in self._registry.get_models() if keep(r)]
        rows, token = _page(_sorted(rows, order_by, _MODEL_ORDER), max_results, page_token)
        by_model: dict[str, list[dict[str, Any]]] = {r["name"]: [] for r in rows}
        for version in self._registry.get_versions():  # one read for all, not one per model
            if version["name"] in by_model:
                by_model[version["name"]].append(version)
        return PagedList([self._model(r, by_model[r["name"]]) for r in rows], token)

    def update_registered_model(
        self, name: str, description: str | None = None
    ) -> RegisteredModel:
        """Set the model's description (None leaves it as it is)."""
        self._model_row(name)
        if description is not None:
            self._registry.update_model(name, str(description), now_ms())
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        self._model_row(name)
        check_model_name(new_name)
        if not self._registry.rename_model(name, new_name, now_ms(), context.user()):
            if self._registry.get_model(new_name) is not None:
                raise AlreadyExistsError(f"a registered model named {new_name!r} exists already")
            raise AlreadyExistsError(
                f"{new_name!r} is the name of a deleted registered model whose history is kept "
                f"(`nbtrack models history {new_name}`); renaming {name!r} to it would merge "
                "the two histories. Choose another name (creating a new model of that name "
                "continues the deleted one's history and version numbers)"
            )
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str, force: bool = False) -> None:
        """Delete the model and all its versions (their run artifacts stay). A model with
        versions needs ``force=True``; the audit trail is kept."""
        check_model_name(name)
        self._registry.delete_model(name, now_ms(), context.user(), force)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._model_row(name)
        key, text = check_tag(key, value)
        self._registry.set_model_tag(name, key, text, now_ms())

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._model_row(name)
        self._registry.delete_model_tag(name, key)

    # -- versions -----------------------------------------------------------------------------

    def _version_row(self, name: str, version: Any) -> dict[str, Any]:
        number = check_version(version)
        self._model_row(name)
        rows = self._registry.get_versions(name, number)
        if not rows:
            known = [str(v["version"]) for v in self._registry.get_versions(name)]
            raise ModelVersionNotFoundError(
                f"registered model {name!r} has no version {number}"
                + (f"; it has {', '.join(known)}" if known else "; it has no versions yet")
            )
        return rows[0]

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int | None = None,
    ) -> ModelVersion:
        """A new version of the registered model ``name`` (which must exist) from ``source``:
        the next number, stage None. ``register_model`` creates the model when needed."""
        del run_link, await_creation_for  # accepted for MLflow compatibility
        self._model_row(name)
        return self._create_version(name, source, run_id, tags, description, create_model=False)

    def _create_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: dict[str, Any] | None,
        description: str | None,
        create_model: bool,
    ) -> ModelVersion:
        check_model_name(name)
        if not isinstance(source, str) or not source:
            raise InvalidInputError(f"source must be a model URI or path; got {source!r}")
        clean = _tags(tags)
        number = self._registry.create_version(
            name, source, run_id, description, clean, now_ms(), context.user(), create_model
        )
        return self.get_model_version(name, number)

    def register_model(
        self,
        model_uri: str,
        name: str,
        tags: dict[str, Any] | None = None,
        await_registration_for: int | None = None,
    ) -> ModelVersion:
        """Register the model at ``model_uri`` (``runs:/<run_id>/<path>``, a folder, or another
        ``models:/`` URI) as a new version of ``name``, creating the registered model if needed.
        The model must exist: nothing is registered for a URI that names no saved model."""
        from ..models.uri import parse_model_uri, registry_version, resolve_model_dir

        del await_registration_for  # accepted for MLflow compatibility: registration is immediate
        check_model_name(name)
        parsed = parse_model_uri(model_uri)
        resolve_model_dir(model_uri, self)  # type: ignore[arg-type]
        run_id: str | None = None
        source = str(model_uri)
        if parsed.scheme == "runs":
            assert parsed.run_id is not None
            run_id = self.find_run_id(parsed.run_id)  # type: ignore[attr-defined]
            source = f"runs:/{run_id}/{parsed.artifact_path}"
        elif parsed.scheme == "models":
            found = registry_version(parsed, self)  # type: ignore[arg-type]
            source, run_id = found.source, found.run_id
        else:
            import os

            source = os.path.abspath(os.path.expanduser(parsed.path or ""))
        return self._create_version(name, source, run_id, tags, None, create_model=True)

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        return _version(self._version_row(name, version))

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """The folder holding the version's saved model."""
        from ..models.uri import resolve_model_dir

        source = self.get_model_version(name, version).source
        return str(resolve_model_dir(source, self))  # type: ignore[arg-type]

    def update_model_version(
        self, name: str, version: Any, description: str | None = None
    ) -> ModelVersion:
        row = self._version_row(name, version)
        if description is not None:
            self._registry.update_version(name, row["version"], str(description), now_ms())
        return self.get_model_version(name, row["version"])

    def delete_model_version(self, name: str, version: Any, force: bool = False) -> None:
        """Delete one version (its run artifacts stay; its number is never given again). A
        version in Production needs ``force=True``."""
        row = self._version_row(name, version)
        self._registry.delete_version(name, row["version"], now_ms(), context.user(), force)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | str | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Versions matching ``filter_string`` (``name``, ``version_number``, ``run_id``,
        ``source_path``, ``current_stage``, ``tags.<key>``), newest first per model unless
        ``order_by`` says otherwise; a page, as :meth:`search_registered_models`."""
        keep = compile_registry_filter(filter_string, VERSION_KEYS)
        rows = [r for r in self._registry.get_versions() if keep(r)]
        rows.sort(key=lambda r: (r["name"], -r["version"]))
        rows, token = _page(_sorted(rows, order_by, _VERSION_ORDER), max_results, page_token)
        return PagedList([_version(r) for r in rows], token)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | str | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (all stages when None), as MLflow had it."""
        self._model_row(name)
        if isinstance(stages, str):
            stages = [stages]
        wanted = [check_stage(s) for s in stages] if stages else list(ModelVersionStage.ALL)
        latest: dict[str, dict[str, Any]] = {}
        for row in self._registry.get_versions(name):
            latest[row["current_stage"]] = row
        return [_version(latest[s]) for s in wanted if s in latest]

    def transition_model_version_stage(
        self,
        name: str,
        version: Any,
        stage: str,
        archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to ``stage``. With ``archive_existing_versions`` (only for Staging
        and Production) the versions already in that stage move to Archived. Each move is
        recorded in the audit trail with ``comment``."""
        row = self._version_row(name, version)
        target = check_stage(stage)
        if archive_existing_versions and target not in ("Staging", "Production"):
            raise InvalidInputError(
                "archive_existing_versions applies only when moving to Staging or Production; "
                f"got stage {target!r}"
            )
        if target != row["current_stage"] or archive_existing_versions:
            self._registry.transition_stage(
                name, row["version"], target, archive_existing_versions, now_ms(),
                context.user(), comment,
            )
        return self.get_model_version(name, row["version"])

    def set_model_version_tag(self, name: str, version: Any, key: str, value: Any) -> None:
        row = self._version_row(name, version)
        key, text = check_tag(key, value)
        self._registry.set_version_tag(name, row["version"], key, text, now_ms())

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        row = self._version_row(name, version)
        self._registry.delete_version_tag(name, row["version"], key)

    # -- aliases ------------------------------------------------------------------------------

    def set_registered_model_alias(
        self, name: str, alias: str, version: Any, comment: str | None = None
    ) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        check_alias(alias)
        row = self._version_row(name, version)
        self._registry.set_alias(name, alias, row["version"], now_ms(), context.user(), comment)

    def delete_registered_model_alias(
        self, name: str, alias: str, comment: str | None = None
    ) -> None:
        check_alias(alias)
        row = self._model_row(name)
        if not self._registry.delete_alias(name, alias, now_ms(), context.user(), comment):
            known = ", ".join(row["aliases"]) or "none"
            raise ModelVersionNotFoundError(
                f"registered model {name!r} has no alias {alias!r} (its aliases: {known})"
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        check_alias(alias)
        row = self._model_row(name)
        if alias not in row["aliases"]:
            known = ", ".join(row["aliases"]) or "none"
            raise ModelVersionNotFoundError(
                f"registered model {name!r} has no alias {alias!r} (its aliases: {known})"
            )
        return self.get_model_version(name, row["aliases"][alias])

    # -- audit trail --------------------------------------------------------------------------

    def get_model_history(self, name: str, version: Any = None) -> list[RegistryEvent]:
        """The audit trail of a registered model (or one version), oldest first: every
        version created or deleted, every stage and alias change, with who, when and the
        comment given."""
        check_model_name(name)
        number = None if version is None else check_version(version)
        events = self._registry.events(name, number)
        if not events and self._registry.get_model(name) is None:
            self._model_row(name)  # raises RegisteredModelNotFoundError
        return [
            RegistryEvent(
                name=e["name"],
                version=None if e["version"] is None else str(e["version"]),
                kind=e["kind"],
                from_value=e["from_value"],
                to_value=e["to_value"],
                timestamp=e["time"],
                user_id=e["user"],
                comment=e["comment"],
            )
            for e in events
        ]
