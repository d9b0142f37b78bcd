"""The model registry's tables: registered models, versions, stages, aliases and the audit trail.

:class:`RegistryTables` works on the connection of a :class:`~nbtrack.store.sqlite.SQLiteStore`
and keeps its rule: every change is one ``BEGIN IMMEDIATE`` transaction, so a version number is
taken and its audit record written atomically, and two processes registering at once get
distinct numbers. Validation of names, stages and aliases happens above, in
:mod:`nbtrack.registry`; this layer stores what it is given.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import (
    ForceRequiredError,
    ModelVersionNotFoundError,
    RegisteredModelNotFoundError,
)
from ..query.sql import placeholders
from .sqlite import SQLiteStore

__all__ = ["Event", "RegistryTables"]

_MODEL_COLUMNS = ("name", "description", "creation_time", "last_updated_time")
_VERSION_COLUMNS = (
    "name",
    "version",
    "source",
    "run_id",
    "current_stage",
    "status",
    "description",
    "user",
    "creation_time",
    "last_updated_time",
)
_EVENT_COLUMNS = ("event_id", "name", "version", "kind", "from_value", "to_value", "time", "user",
                  "comment")


@dataclass(frozen=True)
class Event:
    """One audit record to write: what changed on which version, from what to what."""

    name: str
    version: int | None
    kind: str
    from_value: str | None
    to_value: str | None


def _rows(cursor: sqlite3.Cursor, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class RegistryTables:
    """Reads and writes of the registry tables through one store's connection."""

    def __init__(self, store: SQLiteStore):
        self.store = store

    # -- audit --------------------------------------------------------------------------------

    @staticmethod
    def _log(
        conn: sqlite3.Connection,
        events: Iterable[Event],
        now: int,
        user: str | None,
        comment: str | None,
    ) -> None:
        conn.executemany(
            "INSERT INTO registry_events (name, version, kind, from_value, to_value, time, user,"
            " comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.name, e.version, e.kind, e.from_value, e.to_value, now, user, comment)
             for e in events],
        )

    def events(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM registry_events WHERE name = ?"
        args: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            args.append(version)
        with self.store.read() as conn:
            return _rows(conn.execute(sql + " ORDER BY event_id", args), _EVENT_COLUMNS)

    # -- registered models --------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str | None,
        tags: dict[str, str],
        now: int,
        user: str | None,
    ) -> bool:
        """False (and nothing written) when a model of that name exists already."""
        with self.store.write() as conn:
            if conn.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone():
                return False
            conn.execute(
                "INSERT INTO registered_models VALUES (?, ?, ?, ?)", (name, description, now, now)
            )
            conn.executemany(
                "INSERT INTO registered_model_tags VALUES (?, ?, ?)",
                [(name, k, v) for k, v in tags.items()],
            )
            self._log(conn, [Event(name, None, "create_model", None, name)], now, user, None)
        return True

    def get_model(self, name: str) -> dict[str, Any] | None:
        found = self.get_models([name])
        return found[0] if found else None

    def get_models(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Model rows with their ``tags`` and ``aliases`` (alias -> version), sorted by name."""
        sql = f"SELECT {', '.join(_MODEL_COLUMNS)} FROM registered_models"
        args: list[Any] = []
        if names is not None:
            sql += f" WHERE name IN ({placeholders(len(names))})"
            args = list(names)
        with self.store.read() as conn:
            models = _rows(conn.execute(sql + " ORDER BY name", args), _MODEL_COLUMNS)
            by_name = {m["name"]: {**m, "tags": {}, "aliases": {}} for m in models}
            where = f" WHERE name IN ({placeholders(len(names))})" if names is not None else ""
            for name, key, value in conn.execute(
                "SELECT name, key, value FROM registered_model_tags" + where, args
            ):
                if name in by_name:
                    by_name[name]["tags"][key] = value
            for name, alias, version in conn.execute(
                "SELECT name, alias, version FROM model_aliases" + where + " ORDER BY alias", args
            ):
                if name in by_name:
                    by_name[name]["aliases"][alias] = version
        return list(by_name.values())

    def update_model(self, name: str, description: str, now: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                "UPDATE registered_models SET description = ?, last_updated_time = ?"
                " WHERE name = ?",
                (description, now, name),
            )

    def rename_model(self, name: str, new_name: str, now: int, user: str | None) -> bool:
        """False (nothing changed) when ``new_name`` is taken, or was the name of a model whose
        audit trail remains (the two histories would merge)."""
        if new_name == name:
            return True
        with self.store.write() as conn:
            if conn.execute(
                "SELECT 1 FROM registered_models WHERE name = ? UNION ALL"
                " SELECT 1 FROM registry_events WHERE name = ? LIMIT 1",
                (new_name, new_name),
            ).fetchone():
                return False
            for table in ("registered_model_tags", "model_versions", "model_version_tags",
                          "model_aliases", "registry_events"):
                conn.execute(f"UPDATE {table} SET name = ? WHERE name = ?", (new_name, name))
            conn.execute(
                "UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?",
                (new_name, now, name),
            )
            self._log(conn, [Event(new_name, None, "rename_model", name, new_name)], now, user,
                      None)
        return True

    def delete_model(self, name: str, now: int, user: str | None, force: bool) -> None:
        """The model, its versions, tags and aliases; its audit trail stays, with a record per
        alias and version removed and a last ``delete_model`` record. A model with versions
        needs ``force`` (checked in the same transaction)."""
        with self.store.write() as conn:
            if not conn.execute("SELECT 1 FROM registered_models WHERE name = ?",
                                (name,)).fetchone():
                raise RegisteredModelNotFoundError(f"no registered model named {name!r}")
            versions = conn.execute(
                "SELECT version, current_stage FROM model_versions WHERE name = ?"
                " ORDER BY version", (name,)
            ).fetchall()
            if versions and not force:
                serving = [str(v) for v, stage in versions if stage == "Production"]
                extra = f", version {', '.join(serving)} in Production" if serving else ""
                raise ForceRequiredError(
                    f"registered model {name!r} has {len(versions)} version(s){extra}; deleting "
                    "it removes them all. Pass force=True (CLI: --force) to delete it. Nothing "
                    "was changed."
                )
            events = [
                Event(name, version, f"alias:{alias}", str(version), None)
                for alias, version in conn.execute(
                    "SELECT alias, version FROM model_aliases WHERE name = ? ORDER BY alias",
                    (name,),
                )
            ]
            events += [Event(name, v, "delete_version", str(v), None) for v, _ in versions]
            events.append(Event(name, None, "delete_model", name, None))
            for table in ("registered_model_tags", "model_versions", "model_version_tags",
                          "model_aliases", "registered_models"):
                conn.execute(f"DELETE FROM {table} WHERE name = ?", (name,))
            self._log(conn, events, now, user, None)

    def set_model_tag(self, name: str, key: str, value: str, now: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO registered_model_tags VALUES (?, ?, ?)", (name, key, value)
            )
            conn.execute(
                "UPDATE registered_models SET last_updated_time = ? WHERE name = ?", (now, name)
            )

    def delete_model_tag(self, name: str, key: str) -> bool:
        with self.store.write() as conn:
            cur = conn.execute(
                "DELETE FROM registered_model_tags WHERE name = ? AND key = ?", (name, key)
            )
            return cur.rowcount > 0

    # -- versions -----------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        now: int,
        user: str | None,
        create_model: bool,
    ) -> int:
        """The new version number: one more than the highest ever given for this model."""
        with self.store.write() as conn:
            if not conn.execute(
                "SELECT 1 FROM registered_models WHERE name = ?", (name,)
            ).fetchone():
                if not create_model:
                    raise RegisteredModelNotFoundError(f"no registered model named {name!r}")
                conn.execute("INSERT INTO registered_models VALUES (?, NULL, ?, ?)",
                             (name, now, now))
                self._log(conn, [Event(name, None, "create_model", None, name)], now, user, None)
            # Numbers are never reused, even after a delete: the audit trail names them.
            (top,) = conn.execute(
                "SELECT max(v) FROM (SELECT max(version) AS v FROM model_versions WHERE name = ?"
                " UNION ALL SELECT max(version) FROM registry_events WHERE name = ?)",
                (name, name),
            ).fetchone()
            version = (top or 0) + 1
            conn.execute(
                "INSERT INTO model_versions (name, version, source, run_id, description, user,"
                " creation_time, last_updated_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, version, source, run_id, description, user, now, now),
            )
            conn.executemany(
                "INSERT INTO model_version_tags VALUES (?, ?, ?, ?)",
                [(name, version, k, v) for k, v in tags.items()],
            )
            conn.execute(
                "UPDATE registered_models SET last_updated_time = ? WHERE name = ?", (now, name)
            )
            self._log(conn, [Event(name, version, "create_version", None, source)], now, user,
                      None)
        return version

    def get_versions(
        self, name: str | None = None, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Version rows (with ``tags`` and ``aliases`` lists), by model then version."""
        where: list[str] = []
        args: list[Any] = []
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if version is not None:
            where.append("version = ?")
            args.append(version)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self.store.read() as conn:
            rows = _rows(
                conn.execute(
                    f"SELECT {', '.join(_VERSION_COLUMNS)} FROM model_versions{clause}"
                    " ORDER BY name, version",
                    args,
                ),
                _VERSION_COLUMNS,
            )
            found = {(r["name"], r["version"]): {**r, "tags": {}, "aliases": []} for r in rows}
            for n, v, key, value in conn.execute(
                f"SELECT name, version, key, value FROM model_version_tags{clause}", args
            ):
                if (n, v) in found:
                    found[(n, v)]["tags"][key] = value
            for n, alias, v in conn.execute(
                f"SELECT name, alias, version FROM model_aliases{clause} ORDER BY alias", args
            ):
                if (n, v) in found:
                    found[(n, v)]["aliases"].append(alias)
        return list(found.values())

    def update_version(self, name: str, version: int, description: str, now: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                "UPDATE model_versions SET description = ?, last_updated_time = ?"
                " WHERE name = ? AND version = ?",
                (description, now, name, version),
            )

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: str,
        archive_existing: bool,
        now: int,
        user: str | None,
        comment: str | None,
    ) -> None:
        """Move ``version`` to ``stage``; with ``archive_existing``, the other versions in that
        stage (Staging or Production) move to Archived. One audit record per version moved."""
        with self.store.write() as conn:
            row = conn.execute(
                "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
            if row is None:  # deleted by someone else since the caller looked
                raise ModelVersionNotFoundError(
                    f"registered model {name!r} has no version {version}"
                )
            moves = [] if row[0] == stage else [(version, row[0], stage)]
            if archive_existing:
                moves += [
                    (v, stage, "Archived")
                    for (v,) in conn.execute(
                        "SELECT version FROM model_versions WHERE name = ? AND current_stage = ?"
                        " AND version != ?",
                        (name, stage, version),
                    ).fetchall()
                ]
            if not moves:
                return
            conn.executemany(
                "UPDATE model_versions SET current_stage = ?, last_updated_time = ?"
                " WHERE name = ? AND version = ?",
                [(to, now, name, v) for v, _, to in moves],
            )
            conn.execute(
                "UPDATE registered_models SET last_updated_time = ? WHERE name = ?", (now, name)
            )
            self._log(conn, [Event(name, v, "stage", frm, to) for v, frm, to in moves], now,
                      user, comment)

    def delete_version(
        self, name: str, version: int, now: int, user: str | None, force: bool
    ) -> None:
        """One version; a version in Production needs ``force`` (checked in the same
        transaction, so a promotion by another process meanwhile is not deleted unasked)."""
        with self.store.write() as conn:
            row = conn.execute(
                "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
            if row is None:
                raise ModelVersionNotFoundError(
                    f"registered model {name!r} has no version {version}"
                )
            if row[0] == "Production" and not force:
                raise ForceRequiredError(
                    f"version {version} of {name!r} is in Production; pass force=True "
                    "(CLI: --force) to delete it anyway, or move it to Archived first. Nothing "
                    "was changed."
                )
            aliases = [a for (a,) in conn.execute(
                "SELECT alias FROM model_aliases WHERE name = ? AND version = ?", (name, version)
            )]
            for table in ("model_versions", "model_version_tags", "model_aliases"):
                conn.execute(f"DELETE FROM {table} WHERE name = ? AND version = ?", (name, version))
            events = [Event(name, version, f"alias:{a}", str(version), None) for a in aliases]
            events.append(Event(name, version, "delete_version", str(version), None))
            self._log(conn, events, now, user, None)

    def set_version_tag(self, name: str, version: int, key: str, value: str, now: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO model_version_tags VALUES (?, ?, ?, ?)",
                (name, version, key, value),
            )
            conn.execute(
                "UPDATE model_versions SET last_updated_time = ? WHERE name = ? AND version = ?",
                (now, name, version),
            )

    def delete_version_tag(self, name: str, version: int, key: str) -> bool:
        with self.store.write() as conn:
            cur = conn.execute(
                "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
                (name, version, key),
            )
            return cur.rowcount > 0

    # -- aliases ------------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, now: int, user: str | None,
        comment: str | None,
    ) -> None:
        """Point ``alias`` at ``version`` (moving it off another version if it was set). The
        audit record's from/to are the version numbers, its ``kind`` is ``alias:<name>``."""
        with self.store.write() as conn:
            if not conn.execute(
                "SELECT 1 FROM model_versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone():
                raise ModelVersionNotFoundError(
                    f"registered model {name!r} has no version {version}"
                )
            row = conn.execute(
                "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
            previous = row[0] if row else None
            if previous == version:
                return
            conn.execute("INSERT OR REPLACE INTO model_aliases VALUES (?, ?, ?)",
                         (name, alias, version))
            conn.execute(
                "UPDATE registered_models SET last_updated_time = ? WHERE name = ?", (now, name)
            )
            from_value = None if previous is None else str(previous)
            self._log(conn, [Event(name, version, f"alias:{alias}", from_value, str(version))],
                      now, user, comment)

    def delete_alias(
        self, name: str, alias: str, now: int, user: str | None, comment: str | None
    ) -> bool:
        with self.store.write() as conn:
            row = conn.execute(
                "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias))
            conn.execute(
                "UPDATE registered_models SET last_updated_time = ? WHERE name = ?", (now, name)
            )
            self._log(conn, [Event(name, row[0], f"alias:{alias}", str(row[0]), None)], now,
                      user, comment)
        return True
