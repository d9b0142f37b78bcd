"""The SQLite schema and its forward migrations.

Each entry of :data:`MIGRATIONS` moves the store from version ``i`` to ``i + 1``. A store is
migrated inside one ``BEGIN IMMEDIATE`` transaction when it is opened, so two processes opening a
fresh store at once serialise on the write lock and the second finds the work done.

Conventions of the schema (the query layer relies on them):

- times are integer milliseconds since the epoch (as MLflow's);
- the metric history (run, key, step, timestamp, value) lives in ``metric_blocks``: one row per
  run, key and flush, the points packed as arrays (see :mod:`nbtrack.store.blocks`);
- ``latest_metrics.value`` is REAL; SQLite cannot store NaN, so NULL stands for NaN there (a
  missing metric has no row at all);
- ``latest_metrics`` holds, per run and key, the value with the highest step (then the latest
  timestamp), kept current on every write so that tables and filters never scan the history;
- the reserved tags of a run's origin (name, user, source, git, parent) are columns of its
  ``runs`` row, never rows of ``tags`` (:data:`COLUMN_TAGS`); reads show them as tags.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["COLUMN_TAGS", "CURRENT_VERSION", "MIGRATIONS", "RUN_COLUMNS", "column_tags"]

_V1 = """
CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    artifact_location TEXT,
    lifecycle_stage   TEXT NOT NULL DEFAULT 'active',
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    experiment_id   INTEGER NOT NULL,
    run_name        TEXT,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    deleted_time    INTEGER,
    parent_run_id   TEXT,
    user            TEXT,
    host            TEXT,
    pid             INTEGER,
    source          TEXT,
    artifact_uri    TEXT
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time);
CREATE INDEX runs_by_status ON runs (status);
CREATE TABLE params (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE metric_blocks (
    run_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    first_step INTEGER NOT NULL,
    last_step  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    steps      BLOB NOT NULL,
    timestamps BLOB NOT NULL,
    "values"   BLOB NOT NULL
);
CREATE INDEX metric_blocks_by_run_key ON metric_blocks (run_id, key, first_step);
CREATE TABLE latest_metrics (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     REAL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE tags (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE artifacts (
    run_id       TEXT NOT NULL,
    path         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
"""


# Version 2: code snapshots, content-addressed. ``content`` is zlib-compressed; one row per
# distinct content however many runs share it. A run names its snapshots in its own row
# (``runs.snapshots``, a JSON object kind -> sha256: no extra index to write per run); the view
# ``run_snapshots`` shows them as rows.
_V2 = """
CREATE TABLE snapshots (
    sha256       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content      BLOB NOT NULL,
    created_time INTEGER NOT NULL
);
ALTER TABLE runs ADD COLUMN snapshots TEXT;
CREATE VIEW run_snapshots AS
    SELECT r.run_id AS run_id, j.key AS kind, j.value AS sha256
    FROM runs r, json_each(r.snapshots) j
    WHERE r.snapshots IS NOT NULL;
"""


# Version 3: models and the model registry. ``logged_models`` lists the models saved under each
# run's artifacts; ``model_versions.version`` counts from 1 per registered model (the next number
# is ``max + 1``, taken inside the write transaction). Every stage or alias change, and every
# version created or deleted, appends a row to ``registry_events``: the audit trail.
_V3 = """
CREATE TABLE logged_models (
    run_id        TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    flavors       TEXT NOT NULL,
    created_time  INTEGER NOT NULL,
    PRIMARY KEY (run_id, artifact_path)
) WITHOUT ROWID;
CREATE TABLE registered_models (
    name              TEXT PRIMARY KEY,
    description       TEXT,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL
);
CREATE TABLE registered_model_tags (
    name  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE model_versions (
    name              TEXT NOT NULL,
    version           INTEGER NOT NULL,
    source            TEXT NOT NULL,
    run_id            TEXT,
    current_stage     TEXT NOT NULL DEFAULT 'None',
    status            TEXT NOT NULL DEFAULT 'READY',
    description       TEXT,
    user              TEXT,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT,
    PRIMARY KEY (name, version, key)
) WITHOUT ROWID;
CREATE TABLE model_aliases (
    name    TEXT NOT NULL,
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
) WITHOUT ROWID;
CREATE TABLE registry_events (
    event_id   INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    version    INTEGER,
    kind       TEXT NOT NULL,
    from_value TEXT,
    to_value   TEXT,
    time       INTEGER NOT NULL,
    user       TEXT,
    comment    TEXT
);
CREATE INDEX registry_events_by_model ON registry_events (name, version, time);
"""


# Version 4: ``logged_models`` goes. Which runs hold a model, and where, is in the artifact
# index already (``<path>/MLmodel.json``); a second copy of it could only disagree.
_V4 = """
DROP TABLE logged_models;
"""


# Version 5: the experiment index of ``runs`` carries ``run_id``, so a search can probe the
# metrics, params and tags it filters on straight from the index, reading a run's row only when
# the run matches.
_V5 = """
DROP INDEX runs_by_experiment;
CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time, run_id);
"""


# Version 6: a deleted experiment's runs are deleted with it (as in MLflow); in stores written
# before, they stayed active. They are marked deleted at the experiment's deletion time, so that
# restoring the experiment brings them back.
_V6 = """
UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = (
    SELECT e.last_update_time FROM experiments e WHERE e.experiment_id = runs.experiment_id
)
WHERE lifecycle_stage = 'active' AND experiment_id IN (
    SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted'
);
"""


# Version 7: params by key and value, so that a search for ``params.model = 'rf'`` can start from
# the runs that have it instead of probing every run of the experiment (the store decides which
# way is shorter; see ``nbtrack/store/plan.py``).
_V7 = """
CREATE INDEX params_by_value ON params (key, value);
"""


#: The reserved tags of a run's origin that versions 8 and 9 move into columns of its row (see
#: :data:`COLUMN_TAGS`), with those columns. The SQL below is made from them: nothing a user
#: wrote is in it.
_ORIGIN_TAGS = (
    ("nbtrack.runName", "run_name"),
    ("nbtrack.user", "user"),
    ("nbtrack.source.name", "source"),
    ("nbtrack.source.type", "source_type"),
    ("nbtrack.git.commit", "git_commit"),
    ("nbtrack.git.branch", "git_branch"),
    ("nbtrack.parentRunId", "parent_run_id"),
)
_ORIGIN_KEYS = ", ".join(f"'{key}'" for key, _ in _ORIGIN_TAGS)

#: Moves the rows of ``tags`` that hold the tags of a run's origin into the columns of its row
#: (a row's value wins: it is what reads showed); runs without such rows are left alone.
_MOVE_ORIGIN_ROWS = (
    "UPDATE runs SET "
    + ", ".join(
        f"{column} = coalesce((SELECT value FROM tags t WHERE t.run_id = runs.run_id"
        f" AND t.key = '{key}'), {column})"
        for key, column in _ORIGIN_TAGS
    )
    + f" WHERE run_id IN (SELECT run_id FROM tags WHERE key IN ({_ORIGIN_KEYS}));"
    + f" DELETE FROM tags WHERE key IN ({_ORIGIN_KEYS});"
)


# Version 8: the tags nbtrack records about a run's origin are columns of its row, as its name,
# user and source already were. Their rows went to random places of the ``(run_id, key)``
# B-tree of ``tags`` and made a third of the pages a start_run wrote. The rows of stores
# written before are moved into the columns.
_V8 = """
ALTER TABLE runs ADD COLUMN source_type TEXT;
ALTER TABLE runs ADD COLUMN git_commit TEXT;
ALTER TABLE runs ADD COLUMN git_branch TEXT;
""" + _MOVE_ORIGIN_ROWS


# Version 9: a process that opened the store before it reached version 8 (an nbtrack still
# running from before the upgrade) goes on writing the tags of its runs' origin as rows of
# ``tags``, and its runs' rows without the new columns. Each such row moves into its run's row
# as it is written, so that filters, order_by and frames see those runs as they see the others;
# the rows written since version 8 move now. (nbtrack itself never writes these keys as rows.)
_V9_TRIGGER = (
    f"CREATE TRIGGER origin_tag_into_run AFTER INSERT ON tags WHEN NEW.key IN ({_ORIGIN_KEYS})"
    " BEGIN UPDATE runs SET "
    + ", ".join(
        f"{column} = CASE NEW.key WHEN '{key}' THEN NEW.value ELSE {column} END"
        for key, column in _ORIGIN_TAGS
    )
    + " WHERE run_id = NEW.run_id;"
    " DELETE FROM tags WHERE run_id = NEW.run_id AND key = NEW.key; END"
)


def _v9(conn: sqlite3.Connection) -> None:
    conn.execute(_V9_TRIGGER)  # one statement: its body holds semicolons
    _script(_MOVE_ORIGIN_ROWS)(conn)


# Version 10: a run's row records when its process started (``process_start``: the boot's id
# and the clock ticks since that boot, as :func:`nbtrack.store.process.own_start` reads them;
# NULL where they cannot be read). Pids are reused: a job restarted in a container is pid 1
# again under the same hostname, and its old runs were taken for its own. Rows written before
# have none, and their pid alone still decides whether their process is there.
#
# A process that opened the store before version 10 (an nbtrack still running from before the
# upgrade) writes its runs without a start, which is as before; but resuming a run, it sets
# the run's host and pid and leaves the start of the process that had it. The trigger drops
# that start whenever an update sets the host without setting the start, so that the resumed
# run is not taken for the other process's, found gone, and marked KILLED while it runs (even
# resumed under the same pid on the same host). It watches updates of ``host``, which such a
# resume sets with the pid, and not those of ``pid`` alone: every end_run sets the pid (to
# NULL), and a trigger that fires only to find its WHEN false still costs each run a few
# microseconds. (A resume by this version sets the start with the host; one that gives the
# same start again has it cleared, and its pid alone then tells that it is alive.)
_V10 = """
ALTER TABLE runs ADD COLUMN process_start TEXT;
CREATE TRIGGER process_start_goes_with_pid AFTER UPDATE OF host ON runs
    WHEN NEW.process_start IS OLD.process_start AND NEW.process_start IS NOT NULL
    BEGIN UPDATE runs SET process_start = NULL WHERE run_id = NEW.run_id; END
"""


def _v10(conn: sqlite3.Connection) -> None:
    statement, trigger = _V10.split(";", 1)  # the trigger's body holds a semicolon
    conn.execute(statement)
    conn.execute(trigger)


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return migrate


#: ``MIGRATIONS[i]`` upgrades a store at version ``i`` to ``i + 1``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _script(_V1),
    _script(_V2),
    _script(_V3),
    _script(_V4),
    _script(_V5),
    _script(_V6),
    _script(_V7),
    _script(_V8),
    _v9,
    _v10,
]
CURRENT_VERSION = len(MIGRATIONS)

#: Columns of ``runs`` in the order :class:`~nbtrack.store.sqlite.SQLiteStore` returns them.
RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "lifecycle_stage",
    "deleted_time",
    "parent_run_id",
    "user",
    "host",
    "pid",
    "source",
    "artifact_uri",
    "snapshots",
    "source_type",
    "git_commit",
    "git_branch",
    "process_start",
)

#: The reserved tags a run holds in columns of its row, and those columns. Reads show them as
#: tags (a run's ``data.tags``, a search's ``tags.*`` columns, filters and ``order_by``); only
#: nbtrack writes them, ``nbtrack.runName`` by renaming the run.
COLUMN_TAGS = dict(_ORIGIN_TAGS)


def column_tags(row: Mapping[str, Any]) -> dict[str, str]:
    """The :data:`COLUMN_TAGS` of a run's row that it has (a column may be NULL)."""
    return {key: row[col] for key, col in COLUMN_TAGS.items() if row.get(col) is not None}
