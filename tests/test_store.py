"""The SQLite store: location, WAL, schema versions and migrations, bad input leaving no trace."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack.exceptions import (
    InvalidKeyError,
    ReservedTagError,
    SchemaVersionError,
    StoreError,
    TrackingURIError,
    ValueTooLongError,
)
from nbtrack.store.schema import CURRENT_VERSION
from nbtrack.store.sqlite import SQLiteStore
from nbtrack.tracking import uri


def test_default_store_is_dot_nbtrack_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(uri.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    uri.reset_tracking_uri()
    assert nbtrack.get_tracking_uri() == f"sqlite:///{tmp_path / '.nbtrack' / 'nbtrack.db'}"
    loc = uri.resolve()
    assert loc.artifact_root == tmp_path / ".nbtrack" / "artifacts"


@pytest.mark.parametrize(
    ("given", "db", "artifacts"),
    [
        ("runs", "runs/nbtrack.db", "runs/artifacts"),
        ("exp.db", "exp.db", "exp-artifacts"),
        ("data/x.sqlite", "data/x.sqlite", "data/x-artifacts"),
        ("sqlite:///rel.db", "rel.db", "rel-artifacts"),
        ("sqlite:///d/nbtrack.db", "d/nbtrack.db", "d/artifacts"),
    ],
)
def test_uri_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, db: str, artifacts: str
) -> None:
    monkeypatch.chdir(tmp_path)
    loc = uri.resolve(given)
    assert loc.db_path == tmp_path / db
    assert loc.artifact_root == tmp_path / artifacts


def test_absolute_sqlite_and_file_uris(tmp_path: Path) -> None:
    assert uri.resolve(f"sqlite:///{tmp_path}/a.db").db_path == tmp_path / "a.db"
    assert uri.resolve(f"file://{tmp_path}/d").db_path == tmp_path / "d" / "nbtrack.db"


@pytest.mark.parametrize("bad", ["postgresql://u@h/db", "http://x", "s3://bucket/x"])
def test_unknown_scheme_names_the_supported_ones(bad: str) -> None:
    with pytest.raises(TrackingURIError, match=r"sqlite:///") as info:
        nbtrack.set_tracking_uri(bad)
    assert "directory" in str(info.value)
    assert bad.split(":")[0] in str(info.value)


@pytest.mark.parametrize("bad", ["databricks", "Databricks-UC", " uc "])
def test_mlflow_s_databricks_uris_are_refused_not_made_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrackingURIError, match="Databricks workspace") as info:
        nbtrack.set_tracking_uri(bad)
    assert f"./{bad.strip()}" in str(info.value)  # how to name a folder of that name
    assert list(tmp_path.iterdir()) == []
    assert uri.resolve("./databricks").db_path == tmp_path / "databricks" / "nbtrack.db"


def test_sqlite_uri_with_two_slashes_says_how_to_write_it() -> None:
    with pytest.raises(TrackingURIError, match="three slashes"):
        nbtrack.set_tracking_uri("sqlite://x.db")


@pytest.mark.parametrize(
    ("bad", "message"),
    [("sqlite:///", "names no database file"), ("sqlite:///  ", "names no database file"),
     ("sqlite:///sub/", "names a directory"), ("sqlite:///sub", "names a directory")],
)
def test_sqlite_uri_without_a_database_file_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(TrackingURIError, match=message):
        nbtrack.set_tracking_uri(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # nothing created


def test_relative_uris_follow_the_working_directory_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///runs.db and runs.db both mean runs.db in the working directory of the moment:
    after os.chdir, runs, artifacts and get_tracking_uri all move together."""
    monkeypatch.delenv(uri.ENV_VAR, raising=False)
    for given in ("sqlite:///runs.db", "runs.db", "file:runs.db"):
        nbtrack.set_tracking_uri(given)
        for name in ("a", "b"):
            folder = tmp_path / given.replace(":", "_").replace("/", "_") / name
            folder.mkdir(parents=True)
            monkeypatch.chdir(folder)
            with nbtrack.start_run() as run:
                nbtrack.log_text("x", "note.txt")
            assert nbtrack.get_tracking_uri() == f"sqlite:///{folder / 'runs.db'}"
            assert (folder / "runs.db").exists()
            assert len(nbtrack.search_runs()) == 1  # this folder's store only
            artifact_dir = nbtrack.get_run(run.info.run_id).info.artifact_uri
            assert artifact_dir.startswith(str(folder / "runs-artifacts"))
    uri.reset_tracking_uri()


@pytest.mark.parametrize("name", ["sweep_lr%20x", "what?now", "take#2"])
def test_get_tracking_uri_leads_back_to_the_same_store_whatever_its_path_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delenv(uri.ENV_VAR, raising=False)
    nbtrack.set_tracking_uri(tmp_path / name)
    with nbtrack.start_run() as run:
        pass
    again = nbtrack.Client(nbtrack.get_tracking_uri())
    assert again.get_run(run.info.run_id).info.run_id == run.info.run_id
    nbtrack.set_tracking_uri(nbtrack.get_tracking_uri())
    assert nbtrack.get_run(run.info.run_id).info.run_id == run.info.run_id
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    uri.reset_tracking_uri()


@pytest.mark.parametrize("given", [" runs ", "file:runs"])
def test_the_fluent_api_the_client_and_the_cli_find_one_store_for_one_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    from click.testing import CliRunner

    from nbtrack.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(uri.ENV_VAR, given)
    with nbtrack.start_run(run_name="here") as run:
        pass
    assert nbtrack.Client().get_run(run.info.run_id).info.run_name == "here"
    assert "here" in CliRunner().invoke(cli, ["runs"]).output
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("sqlite:///:memory:", "not in memory"),
        ("sqlite:///file:x.db?mode=memory", "not in memory"),
        ("sqlite:///runs.db?mode=ro", "query parameters are not supported"),
        ("file://server/share/runs", "must be local"),
    ],
)
def test_uris_nbtrack_cannot_honour_are_refused_not_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(nbtrack.exceptions.TrackingURIError, match=message):
        nbtrack.set_tracking_uri(given)
    assert list(tmp_path.iterdir()) == []


def test_env_var_takes_precedence_and_a_conflict_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(uri.ENV_VAR, str(tmp_path / "env"))
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="precedence"):
        nbtrack.set_tracking_uri(tmp_path / "explicit")
    assert str(tmp_path / "env") in nbtrack.get_tracking_uri()
    uri.reset_tracking_uri()


def test_store_is_wal_with_a_busy_timeout(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert store.schema_version == CURRENT_VERSION
    tables = set(store.db.table_names())
    assert {
        "experiments",
        "runs",
        "params",
        "metric_blocks",
        "latest_metrics",
        "tags",
        "artifacts",
        "schema_version",
    } <= tables
    store.close()


def _in_database_file(db: Path, run_id: str) -> bool:
    """Whether the run is in the database file itself, the WAL not consulted (immutable)."""
    conn = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    try:
        found = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    except sqlite3.OperationalError:  # not even the table is in the file yet
        return False
    else:
        return found is not None
    finally:
        conn.close()


def test_commits_leave_checkpoints_to_the_writer_thread(store_dir: Path) -> None:
    """A commit does not copy the WAL into the database file in the caller's thread (that
    stalled one start_run in a few hundred); the writer thread does it within a tick."""
    from nbtrack.store.sqlite import FOREGROUND_CHECKPOINT_PAGES
    from nbtrack.tracking.buffer import INTERVAL_S
    from nbtrack.tracking.fluent import _client

    store = _client().store
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
        FOREGROUND_CHECKPOINT_PAGES
    )
    with nbtrack.start_run() as run:
        nbtrack.log_metric("loss", 0.5)
    run_id = run.info.run_id
    db = store_dir / "nbtrack.db"
    deadline = time.monotonic() + 20 * INTERVAL_S
    while not _in_database_file(db, run_id):
        assert time.monotonic() < deadline, "the writer thread never checkpointed the run"
        time.sleep(INTERVAL_S / 5)
    assert nbtrack.get_run(run_id).data.metrics == {"loss": 0.5}


def test_checkpoint_copies_only_after_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    exp = store.get_or_create_experiment("e")
    row = {"run_id": "a" * 32, "experiment_id": exp, "status": "RUNNING", "start_time": 1}
    assert store.create_run(row, {})
    assert not _in_database_file(tmp_path / "s.db", "a" * 32)
    store.checkpoint()
    assert _in_database_file(tmp_path / "s.db", "a" * 32)
    store.checkpoint()  # nothing committed since: no second connection work, no error
    store.close()
    store.close()  # closing twice is harmless


def test_older_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    conn.commit()
    conn.close()
    store = SQLiteStore(path, tmp_path / "a")
    assert store.schema_version == CURRENT_VERSION
    store.close()


def test_version_1_store_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    from nbtrack.store.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO experiments VALUES (0, 'Default', NULL, 'active', 1, 1)")
    conn.execute(
        "INSERT INTO runs (run_id, experiment_id, status, start_time, artifact_uri)"
        " VALUES ('r1', 0, 'FINISHED', 5, '0/r1')"
    )
    conn.close()
    client = nbtrack.Client(path)
    assert client.store.schema_version == CURRENT_VERSION >= 2
    assert client.get_run("r1").info.status == "FINISHED"
    assert client.store.run_snapshots("r1") == {}


def _store_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A store as nbtrack's schema ``version`` left it, with the Default experiment; the
    caller adds rows and closes it."""
    from nbtrack.store.schema import MIGRATIONS

    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:version]:
        migration(conn)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    conn.execute("INSERT INTO experiments VALUES (0, 'Default', NULL, 'active', 1, 1)")
    return conn


def _one_run_with_a_param(path: Path, version: int) -> None:
    conn = _store_at_version(path, version)
    conn.execute(
        "INSERT INTO runs (run_id, experiment_id, status, start_time, artifact_uri)"
        " VALUES ('r1', 0, 'FINISHED', 5, '0/r1')"
    )
    conn.execute("INSERT INTO params VALUES ('r1', 'lr', '0.1')")
    conn.close()


def test_version_4_store_gains_the_covering_run_index(tmp_path: Path) -> None:
    _one_run_with_a_param(tmp_path / "v4.db", 4)
    client = nbtrack.Client(tmp_path / "v4.db")
    assert client.store.schema_version == CURRENT_VERSION >= 5
    columns = [row[2] for row in client.store.query("PRAGMA index_info(runs_by_experiment)")]
    assert columns == ["experiment_id", "lifecycle_stage", "start_time", "run_id"]
    found = client.search_runs(["0"], "params.lr = '0.1'")
    assert [r.info.run_id for r in found] == ["r1"]


def test_version_5_store_deletes_the_runs_of_its_deleted_experiments(tmp_path: Path) -> None:
    conn = _store_at_version(tmp_path / "v5.db", 5)
    conn.execute("INSERT INTO experiments VALUES (1, 'old', NULL, 'deleted', 1, 50)")
    for run_id, exp in (("kept", 0), ("gone", 1)):
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, status, start_time, artifact_uri)"
            " VALUES (?, ?, 'FINISHED', 5, ?)",
            (run_id, exp, f"{exp}/{run_id}"),
        )
    conn.close()
    client = nbtrack.Client(tmp_path / "v5.db")
    assert client.store.schema_version == CURRENT_VERSION >= 6
    assert client.get_run("kept").info.lifecycle_stage == "active"
    assert client.get_run("gone").info.lifecycle_stage == "deleted"
    client.restore_experiment("1")  # brings back the runs deleted with it
    assert client.get_run("gone").info.lifecycle_stage == "active"


def test_version_6_store_gains_the_param_value_index(tmp_path: Path) -> None:
    _one_run_with_a_param(tmp_path / "v6.db", 6)
    client = nbtrack.Client(tmp_path / "v6.db")
    assert client.store.schema_version == CURRENT_VERSION >= 7
    columns = [row[2] for row in client.store.query("PRAGMA index_info(params_by_value)")]
    assert columns == ["key", "value"]
    assert [r.info.run_id for r in client.search_runs(["0"], "params.lr = '0.1'")] == ["r1"]


def test_version_7_store_moves_the_reserved_tags_into_the_runs_rows(tmp_path: Path) -> None:
    """The tags of a run's origin were rows of ``tags``; they become columns of the run's row,
    and every read shows the same tags as before (a row's value wins over an older column)."""
    conn = _store_at_version(tmp_path / "v7.db", 7)
    conn.execute(
        "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, parent_run_id,"
        " user, source, artifact_uri) VALUES ('r1', 0, 'old-name', 'FINISHED', 5, NULL,"
        " 'ann', 'train.py', '0/r1'), ('r2', 0, 'child', 'FINISHED', 6, 'r1', 'ann', NULL,"
        " '0/r2')"
    )
    rows = {
        "r1": {"nbtrack.runName": "new-name", "nbtrack.user": "ann",
               "nbtrack.source.name": "train.py", "nbtrack.source.type": "SCRIPT",
               "nbtrack.git.commit": "c" * 40, "nbtrack.git.branch": "main", "team": "ml"},
        "r2": {"nbtrack.runName": "child", "nbtrack.user": "ann",
               "nbtrack.parentRunId": "r1", "mlflow.user": "bob"},
    }
    for run_id, tags in rows.items():
        conn.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)", [(run_id, k, v) for k, v in tags.items()]
        )
    conn.close()
    client = nbtrack.Client(tmp_path / "v7.db")
    assert client.store.schema_version == CURRENT_VERSION >= 8
    for run_id, tags in rows.items():
        assert client.get_run(run_id).data.tags == tags
    left = client.store.query("SELECT run_id, key FROM tags ORDER BY run_id, key")
    assert left == [("r1", "team"), ("r2", "mlflow.user")]
    assert client.get_run("r1").info.run_name == "new-name"  # the tag's value won
    row = client.store.get_run_row("r1")
    assert (row["source_type"], row["git_commit"], row["git_branch"]) == ("SCRIPT", "c" * 40,
                                                                          "main")
    found = client.search_runs(["0"], "tags.mlflow.source.git.commit LIKE 'ccc%'")
    assert [r.info.run_id for r in found] == ["r1"]
    found = client.search_runs(["0"], "tags.mlflow.user = 'bob'")  # the row set under it wins
    assert [r.info.run_id for r in found] == ["r2"]


def test_origin_tags_written_as_rows_by_an_older_process_go_into_the_run_s_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that opened the store before version 8 (an nbtrack still running from before
    the upgrade) writes a run's row without the new columns and its origin as rows of
    ``tags``. Those rows go into the run's columns, whether written before this nbtrack opened
    the store or after: filters, order_by and frames see the run as they see the others."""
    path = tmp_path / "v8.db"
    conn = _store_at_version(path, 8)
    new_style = ("r0", 0, "mine", "FINISHED", 4, "ann", "nb.ipynb", "NOTEBOOK", "0/r0")
    conn.execute(
        "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, user, source,"
        " source_type, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        new_style,
    )
    conn.close()

    def older_process_creates(conn: sqlite3.Connection, run_id: str, start: int) -> None:
        # as nbtrack before schema 8 wrote a run (Client.create_run, then its tag rows)
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time,"
            " parent_run_id, user, source, artifact_uri) VALUES (?, 0, ?, 'FINISHED', ?, 'r0',"
            " 'bob', 'train.py', ?)",
            (run_id, f"old-{run_id}", start, f"0/{run_id}"),
        )
        conn.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            [
                (run_id, key, value)
                for key, value in {
                    "nbtrack.runName": f"old-{run_id}", "nbtrack.user": "bob",
                    "nbtrack.source.name": "train.py", "nbtrack.source.type": "SCRIPT",
                    "nbtrack.git.commit": "c" * 40, "nbtrack.git.branch": "main",
                    "nbtrack.parentRunId": "r0", "team": "ml",
                }.items()
            ],
        )

    older = sqlite3.connect(path, isolation_level=None)
    older_process_creates(older, "r1", 5)  # before this nbtrack opened the store
    client = nbtrack.Client(path)
    assert client.store.schema_version == CURRENT_VERSION
    older_process_creates(older, "r2", 6)  # after: the older process is still running
    older.close()
    found = client.search_runs(["0"], "tags.mlflow.source.type = 'SCRIPT'")
    assert [r.info.run_id for r in found] == ["r2", "r1"]
    found = client.search_runs(["0"], "tags.nbtrack.git.branch = 'main'")
    assert [r.info.run_id for r in found] == ["r2", "r1"]
    monkeypatch.setenv(uri.ENV_VAR, str(path))
    frame = nbtrack.search_runs(experiment_ids=["0"], order_by=["tags.nbtrack.source.type"])
    assert list(frame["run_id"]) == ["r0", "r2", "r1"]
    assert list(frame["tags.nbtrack.source.type"]) == ["NOTEBOOK", "SCRIPT", "SCRIPT"]
    assert list(frame["tags.nbtrack.git.commit"].isna()) == [True, False, False]
    expected = {
        "nbtrack.user": "bob", "nbtrack.source.name": "train.py",
        "nbtrack.source.type": "SCRIPT", "nbtrack.git.commit": "c" * 40,
        "nbtrack.git.branch": "main", "nbtrack.parentRunId": "r0", "team": "ml",
    }
    for run_id in ("r1", "r2"):
        assert client.get_run(run_id).data.tags == {**expected, "nbtrack.runName": f"old-{run_id}"}
    mine = client.get_run("r0").data.tags
    assert (mine["nbtrack.source.type"], mine["nbtrack.user"]) == ("NOTEBOOK", "ann")
    left = client.store.query("SELECT run_id, key FROM tags ORDER BY run_id")
    assert left == [("r1", "team"), ("r2", "team")]


def test_version_9_store_gains_the_start_of_each_run_s_process(tmp_path: Path) -> None:
    """Runs written before version 10 have no start: their pid alone still decides whether
    their process is there, as it did (a dead process's run is KILLED, a live one's and this
    process's are left alone)."""
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    live = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    conn = _store_at_version(tmp_path / "v9.db", 9)
    for run_id, pid in (("dead", gone.pid), ("live", live.pid), ("mine", os.getpid())):
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, status, start_time, host, pid,"
            " artifact_uri) VALUES (?, 0, 'RUNNING', 5, ?, ?, ?)",
            (run_id, socket.gethostname(), pid, f"0/{run_id}"),
        )
    conn.close()
    try:
        client = nbtrack.Client(tmp_path / "v9.db")
        assert client.store.schema_version == CURRENT_VERSION >= 10
        columns = [row[1] for row in client.store.query("PRAGMA table_info(runs)")]
        assert columns[-1] == "process_start"
        statuses = {r.info.run_id: r.info.status for r in client.search_runs(["0"])}
        assert statuses == {"dead": "KILLED", "live": "RUNNING", "mine": "RUNNING"}
        assert client.store.get_run_row("mine")["process_start"] is None  # type: ignore[index]
    finally:
        assert live.stdin is not None
        live.stdin.close()
        live.wait(60)


def test_newer_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path, tmp_path / "a").close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (CURRENT_VERSION + 1,))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match="newer nbtrack"):
        SQLiteStore(path, tmp_path / "a")
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(nbtrack.exceptions.StoreError, match="not a usable nbtrack store"):
        SQLiteStore(path, tmp_path / "a")


def _snapshot(store_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    nbtrack.flush()
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    out = {
        t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
        for t in ("runs", "params", "metric_blocks", "latest_metrics", "tags", "artifacts")
    }
    conn.close()
    return out


LONG = "x" * 251


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: nbtrack.log_param(LONG, 1), InvalidKeyError, "at most 250"),
        (lambda: nbtrack.log_param("", 1), InvalidKeyError, "empty"),
        (lambda: nbtrack.log_param("a;b", 1), InvalidKeyError, "';'"),
        (lambda: nbtrack.log_metric("x\ny", 1), InvalidKeyError, "not allowed"),
        (lambda: nbtrack.log_metric("../up", 1), InvalidKeyError, "'..'"),
        (lambda: nbtrack.log_metric("loss/", 1), InvalidKeyError, "path 'loss'"),
        (lambda: nbtrack.log_param("a//b", 1), InvalidKeyError, "path 'a/b'"),
        (lambda: nbtrack.set_tag(".", 1), InvalidKeyError, "path '.'"),
        (lambda: nbtrack.log_metric(3, 1), InvalidKeyError, "string"),  # type: ignore[arg-type]
        (lambda: nbtrack.log_param("p", "v" * 6001), ValueTooLongError, "6000"),
        (lambda: nbtrack.set_tag("t", "v" * 8001), ValueTooLongError, "8000"),
        (lambda: nbtrack.set_tag("nbtrack.user", "me"), ReservedTagError, "nbtrack."),
        (lambda: nbtrack.log_metric("m", 1, step=1.5), TypeError, "step"),  # type: ignore[arg-type]
        (lambda: nbtrack.log_metric("m", 1, timestamp="now"), TypeError, "timestamp"),  # type: ignore[arg-type]
        (lambda: nbtrack.log_metrics({"ok": 1, "bad": "x"}), TypeError, "'bad'"),
        (lambda: nbtrack.log_params({"ok": 1, "a;b": 2}), InvalidKeyError, "';'"),
        (lambda: nbtrack.set_tags({"ok": 1, "nbtrack.x": 2}), ReservedTagError, "nbtrack."),
    ],
)
def test_bad_input_is_refused_clearly_and_writes_nothing(
    store_dir: Path, call: object, error: type[Exception], message: str
) -> None:
    run = nbtrack.start_run()
    nbtrack.log_param("kept", 1)
    nbtrack.log_metric("kept", 1.0)
    before = _snapshot(store_dir)
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]
    assert _snapshot(store_dir) == before
    nbtrack.end_run()
    assert nbtrack.get_run(run.info.run_id).data.params == {"kept": "1"}


def test_keys_mlflow_accepts_are_accepted(store_dir: Path) -> None:
    keys = ["val:acc", "loss/train", "f1 score", "précision", "a.b-c_d", "x/y.z"]
    with nbtrack.start_run() as run:
        for key in keys:
            nbtrack.log_metric(key, 1.0)
            nbtrack.log_param(key, "v")
            nbtrack.set_tag(key, "v")
    data = nbtrack.get_run(run.info.run_id).data
    assert sorted(data.metrics) == sorted(data.params) == sorted(keys)
    assert set(keys) <= set(data.tags)


def test_limits_are_allowed_up_to_the_edge(store_dir: Path) -> None:
    with nbtrack.start_run() as run:
        nbtrack.log_param("k" * 250, "v" * 6000)
        nbtrack.set_tag("t", "v" * 8000)
        nbtrack.log_metric("with space/and-dash.dot_", 1)
    got = nbtrack.get_run(run.info.run_id)
    assert got.data.params["k" * 250] == "v" * 6000
    assert got.data.tags["t"] == "v" * 8000


def test_search_columns_are_read_in_chunks_below_the_string_limit(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text columns are aggregated per chunk of runs: many long values never make one string
    past SQLite's length limit (here lowered to stand in for the 1 GB default)."""
    from nbtrack.store import sqlite as sqlite_store
    from nbtrack.tracking.fluent import _client

    client = _client()  # the client search_runs uses
    long_value = "\x1b" * 8000  # escaped as \u001b in JSON: 48 kB a value
    ids = []
    for i in range(7):
        run_id = client.create_run("0", run_name=f"r{i}").info.run_id
        client.set_tag(run_id, "log", long_value)
        if i % 2:
            client.log_param(run_id, "odd", str(i))
        ids.append(run_id)
    client.flush()
    if sys.version_info >= (3, 11):  # Connection.setlimit is new in 3.11; the chunks still are
        client.store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200_000)
    monkeypatch.setattr(sqlite_store, "_COLUMN_CHUNK", 2)
    columns = client.store.run_columns(ids, "tags")
    assert columns["log"] == [long_value] * 7
    assert client.store.run_columns(ids, "params") == {
        "odd": [None, "1", None, "3", None, "5", None]
    }
    frame = nbtrack.search_runs(["0"], order_by=["attributes.run_name"])
    assert list(frame["tags.log"]) == [long_value] * 7


def test_compact_truncates_the_wal_while_another_connection_checkpoints(tmp_path: Path) -> None:
    """``nbtrack gc`` shrinks the file even while another connection (a notebook's writer
    thread) is checkpointing: SQLite then answers busy at once, and compact tries again."""
    import threading

    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    exp = store.get_or_create_experiment("e")
    for i in range(200):
        row = {"run_id": f"{i:032x}", "experiment_id": exp, "status": "RUNNING", "start_time": 1}
        assert store.create_run(row, {"t": "x" * 2000})
    stop = threading.Event()

    def checkpoint_all_the_time() -> None:
        other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        while not stop.is_set():
            other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        other.close()

    hammer = threading.Thread(target=checkpoint_all_the_time)
    hammer.start()
    try:
        for _ in range(5):
            store.compact()
            assert (tmp_path / "s.db-wal").stat().st_size == 0
    finally:
        stop.set()
        hammer.join()
        store.close()


def test_a_checkpoint_cut_short_is_tried_again(tmp_path: Path) -> None:
    """Another connection reading an older state keeps the checkpoint from copying the newest
    pages; the next call copies them (it is not forgotten until the next commit)."""
    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    exp = store.get_or_create_experiment("e")
    store.checkpoint()
    reader = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runs").fetchall()  # holds a read snapshot
    row = {"run_id": "b" * 32, "experiment_id": exp, "status": "RUNNING", "start_time": 1}
    assert store.create_run(row, {})
    store.checkpoint()
    assert not _in_database_file(tmp_path / "s.db", "b" * 32)
    reader.execute("COMMIT")
    reader.close()
    store.checkpoint()  # no commit since, but the last one was cut short
    assert _in_database_file(tmp_path / "s.db", "b" * 32)
    store.close()


def test_no_checkpoint_after_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    store.get_or_create_experiment("e")
    store.close()
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    store.checkpoint()  # the writer thread's tick after a close: nothing reopened
    assert not any(tmp_path.glob("s.db*"))


def test_a_store_opened_by_a_relative_path_stays_put_after_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore("store/s.db", "store/a")
    exp = store.get_or_create_experiment("e")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    row = {"run_id": "c" * 32, "experiment_id": exp, "status": "RUNNING", "start_time": 1}
    assert store.create_run(row, {})
    store.checkpoint()
    assert _in_database_file(tmp_path / "store" / "s.db", "c" * 32)
    assert not any((tmp_path / "elsewhere").iterdir())
    store.close()


def test_a_store_that_cannot_be_written_reads_and_says_why_writes_fail(tmp_path: Path) -> None:
    """A store that can be read but not written (here SQLite's query_only, as a read-only
    file would) still opens and is searched, dead runs and all; a write is a StoreError."""
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    exp = store.get_or_create_experiment("e")
    row = {
        "run_id": "d" * 32,
        "experiment_id": exp,
        "status": "RUNNING",
        "start_time": 1,
        "host": socket.gethostname(),
        "pid": gone.pid,
    }
    assert store.create_run(row, {})
    store.conn.execute("PRAGMA query_only = ON")
    assert store.mark_dead_runs(wait=False) == []  # a read: no error, marked later
    with pytest.raises(StoreError, match="can be read but not written"):
        store.mark_dead_runs()
    with pytest.raises(StoreError, match="can be read but not written"):
        store.create_experiment("f", None, {})
    store.conn.execute("PRAGMA query_only = OFF")
    assert store.get_experiment(name="f") is None  # nothing half-written
    assert store.mark_dead_runs() == ["d" * 32]
    store.close()


def test_forks_take_the_guard_one_at_a_time(tmp_path: Path) -> None:
    """Two threads forking at once: the second waits for the first fork's guard to be let go,
    and every store lock is free afterwards (one fork used to release the other's locks)."""
    import threading

    from nbtrack.store import sqlite as sqlite_store

    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    sqlite_store._before_fork()  # as os.fork() would, in this thread
    entered = threading.Event()

    def fork_from_another_thread() -> None:
        sqlite_store._before_fork()
        entered.set()
        sqlite_store._after_fork_in_parent()

    other = threading.Thread(target=fork_from_another_thread)
    other.start()
    assert not entered.wait(0.3)  # held off by this thread's fork
    sqlite_store._after_fork_in_parent()
    assert entered.wait(10)
    other.join(10)
    assert store._lock.acquire(timeout=1) and store._checkpoint_lock.acquire(timeout=1)
    store._checkpoint_lock.release()
    store._lock.release()
    store.close()


def test_an_interrupted_fork_guard_leaves_no_lock_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a fork waits for a store: Python goes on with the fork regardless, but the
    guard must not keep any lock, or every later call on the store would hang."""
    import threading

    from nbtrack.store import sqlite as sqlite_store

    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")

    class Interrupted:
        def acquire(self, timeout: float = -1) -> bool:
            raise KeyboardInterrupt

    real = store._checkpoint_lock
    monkeypatch.setattr(store, "_checkpoint_lock", Interrupted())
    with pytest.raises(KeyboardInterrupt):
        sqlite_store._before_fork()
    sqlite_store._after_fork_in_parent()  # the hooks after the fork run: nothing to undo
    monkeypatch.setattr(store, "_checkpoint_lock", real)
    taken: list[bool] = []

    def take_and_give_back() -> None:
        taken.append(store._lock.acquire(timeout=2))
        if taken[-1]:
            store._lock.release()

    probe = threading.Thread(target=take_and_give_back)
    probe.start()
    probe.join()
    assert taken == [True]  # another thread (the writer thread, say) can still take it
    assert sqlite_store._held_at_fork == {}
    store.close()


READ_ONLY_CHECK = """
import sys, nbtrack
from nbtrack.exceptions import StoreError
nbtrack.set_tracking_uri(sys.argv[1])
try:
    frame = nbtrack.search_runs(search_all_experiments=True)
    print("search", list(frame["params.p"]))
except StoreError as exc:
    print("search StoreError", exc)
try:
    nbtrack.Client(sys.argv[1]).create_experiment("new")
    print("write ok")
except StoreError as exc:
    print("write StoreError", exc)
"""


@pytest.mark.parametrize("folder_too", [False, True])
def test_a_read_only_store(tmp_path: Path, folder_too: bool) -> None:
    """A store file that may be read but not written opens and is searched, and a write says
    why it fails; in a read-only folder (where SQLite cannot make its -wal and -shm files) the
    open fails and says what to do. Run as another process, without root's override of file
    permissions."""
    import os
    import shutil
    import subprocess
    import sys

    store = tmp_path / "ro"
    client = nbtrack.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "p", "1")
    client.set_terminated(run_id)
    from nbtrack.tracking import client as client_module

    client_module._close_stores()  # no -wal or -shm left beside the file
    assert [p.name for p in store.iterdir()] == ["nbtrack.db"]
    (store / "nbtrack.db").chmod(0o444)
    if folder_too:
        store.chmod(0o555)
    script = tmp_path / "check.py"
    script.write_text(READ_ONLY_CHECK)
    command = [sys.executable, str(script), str(store)]
    if os.geteuid() == 0:  # root may write anything: drop that power for the child
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        store.chmod(0o755)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if folder_too:
        assert lines[0].startswith("search StoreError")
        assert "create its -wal and -shm files" in lines[0]
        assert "Copy the store to a folder you can write to" in lines[0]
    else:
        assert lines[0] == "search ['1']"
        assert lines[1].startswith("write StoreError")
        assert "can be read but not written" in lines[1]


def test_a_fork_from_inside_a_store_call_does_not_deadlock_with_another_fork(
    tmp_path: Path,
) -> None:
    """A thread inside a call on one store (user code that forks there) forks while another
    thread's fork holds a second store and waits for the first: one of them gives way, and
    both forks go through. (It deadlocked when each fork waited for the locks in turn.)"""
    import threading

    from nbtrack.store import sqlite as sqlite_store

    stores = [SQLiteStore(tmp_path / f"{n}.db", tmp_path / f"{n}-a") for n in "ab"]
    second = sorted(stores, key=id)[1]  # forks take the other one first
    done: list[str] = []

    def fork_elsewhere() -> None:  # the hooks os.fork() runs, in another thread
        sqlite_store._before_fork()
        done.append("other")
        sqlite_store._after_fork_in_parent()

    with second.read():  # this thread is inside a call on the second store
        other = threading.Thread(target=fork_elsewhere, daemon=True)
        other.start()
        time.sleep(0.3)  # the other fork has the first store and waits for the second
        sqlite_store._before_fork()  # this thread's fork: needs the first store too
        done.append("holder")
        sqlite_store._after_fork_in_parent()
    other.join(10)
    assert not other.is_alive()
    assert sorted(done) == ["holder", "other"]
    for store in stores:
        store.close()



# -- whether a run's process is still there ---------------------------------------------------

LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process starts are read from /proc (Linux)"
)


def test_a_process_s_start_is_read_after_the_last_parenthesis_of_its_name() -> None:
    """Field 22 of /proc/<pid>/stat, counted after the name: a name may hold spaces and
    parentheses of its own."""
    from nbtrack.store.process import parse_stat

    rest = " ".join(["S", *(str(field) for field in range(4, 22)), "987654", *["0"] * 30])
    for name in ("python", "a b", "x) y (z", "))", "(", ") S 1 2 3"):
        assert parse_stat(f"4242 ({name}) {rest}".encode()) == ("S", "987654")
    assert parse_stat(f"4242 (zombie) Z{rest[1:]}".encode()) == ("Z", "987654")
    for cut in (b"", b"4242 (python) S 1 2", b"4242 python S " + rest.encode()[2:]):
        assert parse_stat(cut) is None


ODD_NAME = """
import sys
from nbtrack.store.process import own_start
with open("/proc/self/comm", "w") as fh:
    fh.write("a) b (c 9 9")  # as a program may name itself
print(own_start(), flush=True)
sys.stdin.read()  # lives until the test closes its stdin
"""


@LINUX_PROC
def test_a_live_process_is_told_from_one_that_took_its_pid_by_its_start() -> None:
    import subprocess

    from nbtrack.store.process import own_start, process_alive, this_process

    child = subprocess.Popen(
        [sys.executable, "-c", ODD_NAME], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        start = child.stdout.readline().strip()
        assert Path(f"/proc/{child.pid}/comm").read_text().strip() == "a) b (c 9 9"
        boot, namespace, ticks = start.split(":")
        assert boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert f"pid:[{namespace}]" == os.readlink("/proc/self/ns/pid")
        assert ticks.isdigit()
        assert process_alive(child.pid, start)
        assert process_alive(child.pid, None)  # a row without a start: the pid decides
        earlier = f"{boot}:{namespace}:{int(ticks) - 1}"
        assert not process_alive(child.pid, earlier)  # a process that had the pid before
        assert not process_alive(child.pid, f"{'0' * len(boot)}:{namespace}:{ticks}")  # a boot
        # a start taken in another pid namespace (a container sharing the host's name): its
        # pids mean other processes here, so the pid alone decides, as before starts were kept
        assert process_alive(child.pid, f"{boot}:1:{int(ticks) - 1}")
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(60)
    assert not process_alive(child.pid, start)
    mine = own_start()
    assert mine is not None and mine != start
    assert this_process(os.getpid(), mine) and this_process(os.getpid(), None)
    assert not this_process(os.getpid(), start)  # this pid, but a process of another start
    assert not this_process(child.pid, start)


def test_a_run_s_process_start_goes_with_its_pid(tmp_path: Path) -> None:
    """reopen_run records the resuming process's start, a later process of the same pid
    included; a Release frees a run (pid and start) only from the process it was read with."""
    from nbtrack.store.base import Release

    store = SQLiteStore(tmp_path / "s.db", tmp_path / "a")
    exp = store.get_or_create_experiment("e")
    run_id = "r" * 32
    row = {"run_id": run_id, "experiment_id": exp, "status": "RUNNING", "start_time": 1,
           "host": "h", "pid": 7, "process_start": "b:70"}
    assert store.create_run(row, {})

    def held() -> tuple[int | None, str | None]:
        got = store.get_run_row(run_id)
        assert got is not None
        return got["pid"], got["process_start"]

    assert store.reopen_run(run_id, "h", 7, "b:71")  # pid 7 again, a later process
    assert held() == (7, "b:71")
    assert store.reopen_run(run_id, "h", 7, "b:71")  # that process resumes it again
    assert held() == (7, "b:71")
    store.update_run(run_id, status="RUNNING", pid=Release(7, "h", "b:70"))  # the earlier one
    assert held() == (7, "b:71")
    store.update_run(run_id, status="RUNNING", pid=Release(7, "h", "b:71"))
    assert held() == (None, None)
    # an older nbtrack's resume sets host and pid, never the start: whatever start the row had
    # is not its process's, even under the same pid on the same host
    assert store.reopen_run(run_id, "h", 7, "b:72")
    with store.write() as conn:
        conn.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL, host = ?, pid = ?"
                     " WHERE run_id = ?", ("h", 7, run_id))
    assert held() == (7, None)
    store.close()
