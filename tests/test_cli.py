"""The ``nbtrack`` command line, driven through click's CliRunner and once as a real process."""

from __future__ import annotations

import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import nbtrack
from nbtrack.cli import cli

RUN_TABLES = ("runs", "params", "tags", "metric_blocks", "latest_metrics", "artifacts")


# -- helpers ----------------------------------------------------------------------------------


def invoke(store: Path | str, *args: str) -> Result:
    """Run ``nbtrack --store <store> ARGS`` in this process."""
    # env= makes the runner restore the variable afterwards (the models group sets it).
    return CliRunner().invoke(
        cli,
        ["--store", str(store), *args],
        catch_exceptions=True,
        env={"NBTRACK_TRACKING_URI": os.environ.get("NBTRACK_TRACKING_URI")},
    )


def ok(store: Path | str, *args: str) -> str:
    """Run a command that must succeed; return its output."""
    result = invoke(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def failed(store: Path | str, *args: str) -> str:
    """Run a command that must fail cleanly (an error message, no traceback); return its output."""
    result = invoke(store, *args)
    assert result.exit_code != 0, result.output
    # A clean failure is click's SystemExit; anything else escaped as a traceback.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    return result.output


def table(output: str) -> list[dict[str, str]]:
    """Parse a table printed by the CLI: cells are cut at the header's column offsets."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("note:")]
    header = lines[0]
    columns = list(re.finditer(r"\S+(?: \S+)*", header))  # names are 2+ spaces apart
    names = [m.group() for m in columns]
    starts = [m.start() for m in columns]
    ends = [*starts[1:], None]
    return [
        {name: line[s:e].strip() for name, s, e in zip(names, starts, ends, strict=True)}
        for line in lines[1:]
    ]


def names_of(output: str) -> list[str]:
    return [row["name"] for row in table(output)]


def db_rows(store: Path, run_id: str) -> dict[str, int]:
    """Rows per table that belong to ``run_id``, read with a separate sqlite3 connection."""
    with sqlite3.connect(store / "nbtrack.db") as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0]
            for t in RUN_TABLES
        }


def db_dump(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "nbtrack.db")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def store_bytes(store: Path) -> int:
    db = store / "nbtrack.db"
    wal = store / "nbtrack.db-wal"
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def nbtrack_command() -> list[str]:
    """The installed console script of this interpreter, else ``python -m nbtrack.cli``."""
    beside = Path(sys.executable).with_name("nbtrack")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("nbtrack")
    return [found] if found else [sys.executable, "-m", "nbtrack.cli"]


# -- the seeded store -------------------------------------------------------------------------


@pytest.fixture
def seeded(store_dir: Path) -> dict[str, str]:
    """Two live experiments and a deleted one; run name -> run id.

    churn: rf-run (acc .91, artifact), lr-run (acc .85, artifact), xgb-run (acc .95)
    vision: cnn (acc .70).  old (deleted, with its run): ghost.
    Runs are started a few ms apart, in that order, so "newest first" is well defined.
    """
    ids: dict[str, str] = {}
    nbtrack.set_experiment("churn")
    for depth, (model, acc) in enumerate([("rf", 0.91), ("lr", 0.85), ("xgb", 0.95)]):
        with nbtrack.start_run(run_name=f"{model}-run") as run:
            nbtrack.log_params({"model": model, "depth": depth})
            nbtrack.log_metric("acc", acc)
            nbtrack.log_metric("loss", round(1 - acc, 2))
            nbtrack.set_tag("team", "data" if model == "rf" else "ml")
            if model in ("rf", "lr"):
                nbtrack.log_text(f"notes on {model}", "notes/readme.txt")
        ids[run.info.run_name] = run.info.run_id
        time.sleep(0.005)
    nbtrack.set_experiment("vision")
    with nbtrack.start_run(run_name="cnn") as run:
        nbtrack.log_param("model", "cnn")
        nbtrack.log_metric("acc", 0.70)
    ids["cnn"] = run.info.run_id
    nbtrack.set_experiment("old")
    with nbtrack.start_run(run_name="ghost") as run:
        nbtrack.log_metric("acc", 0.5)
    ids["ghost"] = run.info.run_id
    old = nbtrack.get_experiment_by_name("old")
    assert old is not None
    nbtrack.delete_experiment(old.experiment_id)
    return ids


# -- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], "--store"),
        (["experiments"], "--all"),
        (["runs"], "--filter"),
        (["runs", "show"], "RUN_ID"),
        (["runs", "delete"], "RUN_IDS"),
        (["runs", "restore"], "RUN_IDS"),
        (["gc"], "--dry-run"),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(store_dir: Path, command: list[str], expected: str, flag: str) -> None:
    out = ok(store_dir, *command, flag)
    assert out.startswith("Usage: ")
    assert expected in out
    assert not store_dir.exists()  # asking for help opens no store


def test_version(store_dir: Path) -> None:
    assert nbtrack.__version__ in ok(store_dir, "--version")


# -- experiments ------------------------------------------------------------------------------


def test_experiments_lists_names_with_run_counts(store_dir: Path, seeded: dict[str, str]) -> None:
    rows = table(ok(store_dir, "experiments"))
    assert {r["name"]: int(r["runs"]) for r in rows} == {"Default": 0, "churn": 3, "vision": 1}
    assert {r["stage"] for r in rows} == {"active"}
    assert next(r for r in rows if r["name"] == "Default")["last run"] == "-"

    everything = {r["name"]: r for r in table(ok(store_dir, "experiments", "--all"))}
    assert everything["old"]["stage"] == "deleted"
    assert everything["old"]["runs"] == "1"


def test_deleted_runs_are_not_counted(store_dir: Path, seeded: dict[str, str]) -> None:
    ok(store_dir, "runs", "delete", seeded["rf-run"][:8])
    rows = table(ok(store_dir, "experiments"))
    assert {r["name"]: int(r["runs"]) for r in rows}["churn"] == 2


# -- runs -------------------------------------------------------------------------------------


def test_runs_table(store_dir: Path, seeded: dict[str, str]) -> None:
    out = ok(store_dir, "runs")
    header = out.splitlines()[0].split()
    for column in ("run_id", "name", "experiment", "status", "m.acc", "m.loss", "p.model"):
        assert column in header
    rows = {r["name"]: r for r in table(out)}
    assert set(rows) == {"rf-run", "lr-run", "xgb-run", "cnn"}
    for name, row in rows.items():
        assert row["run_id"] == seeded[name][:8]
        assert row["status"] == "FINISHED"
    assert rows["rf-run"]["experiment"] == "churn"
    assert rows["cnn"]["experiment"] == "vision"
    assert rows["xgb-run"]["m.acc"] == "0.95"
    assert rows["rf-run"]["m.loss"] == "0.09"
    assert rows["cnn"]["m.loss"] == ""  # the run has no such metric
    assert rows["lr-run"]["p.model"] == "lr"


def test_runs_default_order_is_newest_first(store_dir: Path, seeded: dict[str, str]) -> None:
    assert names_of(ok(store_dir, "runs")) == ["cnn", "xgb-run", "lr-run", "rf-run"]


def test_runs_hides_the_runs_of_a_deleted_experiment(
    store_dir: Path, seeded: dict[str, str]
) -> None:
    assert "ghost" not in names_of(ok(store_dir, "runs"))
    # Deleted with their experiment, as in MLflow: asked for by name, the output says so.
    out = ok(store_dir, "runs", "--experiment", "old")
    assert out.startswith("no runs") and "'old' is deleted" in out and "--deleted" in out
    assert names_of(ok(store_dir, "runs", "--experiment", "old", "--deleted")) == ["ghost"]


@pytest.mark.parametrize(
    ("experiments", "expected"),
    [
        (["vision"], {"cnn"}),
        (["churn"], {"rf-run", "lr-run", "xgb-run"}),
        (["churn", "vision"], {"rf-run", "lr-run", "xgb-run", "cnn"}),
    ],
)
def test_runs_experiment_option(
    store_dir: Path, seeded: dict[str, str], experiments: list[str], expected: set[str]
) -> None:
    args = [a for name in experiments for a in ("--experiment", name)]
    assert set(names_of(ok(store_dir, "runs", *args))) == expected
    short = [a for name in experiments for a in ("-e", name)]
    assert set(names_of(ok(store_dir, "runs", *short))) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.9", {"rf-run", "xgb-run"}),
        ("metrics.acc > 0.93 OR params.model = 'lr'", {"xgb-run", "lr-run"}),
        ("params.model = 'cnn' or tags.team = 'data'", {"cnn", "rf-run"}),
        ("(metrics.acc < 0.9 OR metrics.acc > 0.94) AND tags.team = 'ml'", {"lr-run", "xgb-run"}),
        ("params.model IN ('rf', 'cnn')", {"rf-run", "cnn"}),
        ("attributes.run_name LIKE '%-run' AND metrics.loss <= 0.09", {"rf-run", "xgb-run"}),
        ("metrics.loss IS NULL", {"cnn"}),
    ],
)
def test_runs_filter(
    store_dir: Path, seeded: dict[str, str], filter_string: str, expected: set[str]
) -> None:
    assert set(names_of(ok(store_dir, "runs", "--filter", filter_string))) == expected
    assert set(names_of(ok(store_dir, "runs", "-f", filter_string))) == expected


def test_runs_filter_with_experiment(store_dir: Path, seeded: dict[str, str]) -> None:
    out = ok(store_dir, "runs", "-e", "vision", "-f", "metrics.acc > 0.9")
    assert out.strip() == "no runs match the filter"


def test_runs_order_by(store_dir: Path, seeded: dict[str, str]) -> None:
    ascending = ["cnn", "lr-run", "rf-run", "xgb-run"]
    assert names_of(ok(store_dir, "runs", "--order-by", "metrics.acc ASC")) == ascending
    assert names_of(ok(store_dir, "runs", "-o", "metrics.acc DESC")) == ascending[::-1]
    # Runs lacking the value sort last in both directions.
    by_loss = names_of(ok(store_dir, "runs", "-o", "metrics.loss DESC"))
    assert by_loss == ["lr-run", "rf-run", "xgb-run", "cnn"]
    # Two keys: team first, then accuracy.
    two = names_of(ok(store_dir, "runs", "-o", "tags.team", "-o", "metrics.acc DESC"))
    assert two == ["rf-run", "xgb-run", "lr-run", "cnn"]


def test_runs_max_results(store_dir: Path, seeded: dict[str, str]) -> None:
    out = ok(store_dir, "runs", "-o", "metrics.acc DESC", "-n", "2")
    assert names_of(out) == ["xgb-run", "rf-run"]
    assert "note: only the first 2 runs are shown (--max-results)" in out
    assert "note:" not in ok(store_dir, "runs", "-n", "4")  # exactly 4 live runs
    failed(store_dir, "runs", "-n", "0")


def test_runs_says_when_columns_are_left_out(store_dir: Path) -> None:
    with nbtrack.start_run():
        nbtrack.log_metrics({f"m{i}": float(i) for i in range(8)})
        nbtrack.log_params({f"p{i}": i for i in range(7)})
    out = ok(store_dir, "runs")
    assert [c for c in table(out)[0] if c.startswith(("m.", "p."))] == [
        *(f"m.m{i}" for i in range(6)),
        *(f"p.p{i}" for i in range(6)),
    ]
    assert "note: 3 more metric and param column(s) not shown" in out


def test_runs_table_keeps_a_row_per_run_with_line_breaks_and_wide_characters(
    store_dir: Path,
) -> None:
    for name in ("two\nlines", "run-名前", "plain"):
        with nbtrack.start_run(run_name=name):
            nbtrack.log_param("cmd", "python train.py \\\n  --lr 0.1")
    lines = ok(store_dir, "runs").splitlines()
    assert len(lines) == 4  # the header and one line per run
    [broken] = [line for line in lines if "two⏎lines" in line]
    assert "python train.py \\⏎  --lr 0.1" in broken
    # Columns line up on screen: 名 and 前 take two columns each.
    def columns_before_status(line: str) -> int:
        return sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in line[: line.index("FINISHED")])

    assert len({columns_before_status(line) for line in lines[1:]}) == 1, lines


def test_runs_on_an_empty_store(store_dir: Path) -> None:
    nbtrack.Client()  # creates the store
    assert ok(store_dir, "runs").strip() == "no runs"


@pytest.mark.parametrize(
    "command", [("runs",), ("experiments",), ("runs", "show", "abc"), ("gc",), ("diff", "a", "b")]
)
def test_a_store_that_does_not_exist_is_an_error_not_created(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "stroe"
    out = failed(typo, *command)
    assert f"no nbtrack store at {typo / 'nbtrack.db'}" in out
    assert not typo.exists()


@pytest.mark.parametrize(
    ("filter_string", "position", "words"),
    [
        ("metrics.acc >> 3", 13, "expected a number"),
        ("params.model = rf", 15, "quoted string"),
        ("metrics.acc > 0.9 AND", 21, "end of the text"),
        ("metrics.acc > 0.9 OR OR params.x = 'a'", 21, "keyword OR"),
        ("metrix.acc > 1", 0, "unknown prefix 'metrix'"),
    ],
)
def test_malformed_filter_points_at_the_token(
    store_dir: Path, seeded: dict[str, str], filter_string: str, position: int, words: str
) -> None:
    out = failed(store_dir, "runs", "--filter", filter_string)
    assert words in out
    lines = out.splitlines()
    text_line = next(i for i, line in enumerate(lines) if line.endswith(filter_string))
    pointer = lines[text_line + 1]
    assert pointer.strip() == "^"
    offset = lines[text_line].index(filter_string)
    assert pointer.index("^") - offset == position


def test_malformed_order_by(store_dir: Path, seeded: dict[str, str]) -> None:
    out = failed(store_dir, "runs", "--order-by", "metrics.acc SIDEWAYS")
    assert "SIDEWAYS" in out
    assert "^" in out


def test_unknown_experiment(store_dir: Path, seeded: dict[str, str]) -> None:
    out = failed(store_dir, "runs", "--experiment", "nope")
    assert "no experiment named 'nope'" in out
    assert "--experiment" in out
    assert "'churn'" in out and "'Default'" in out  # the experiments there are


# -- runs show --------------------------------------------------------------------------------


def test_show_by_prefix(store_dir: Path, seeded: dict[str, str]) -> None:
    run_id = seeded["rf-run"]
    out = ok(store_dir, "runs", "show", run_id[:8])
    assert out.splitlines()[0] == f"rf-run  ({run_id})"
    sections = dict.fromkeys(("params", "metrics", "tags", "artifacts"), "")
    current = ""
    for line in out.splitlines()[1:]:
        if line in sections:
            current = line
        elif current:
            sections[current] += line + "\n"
    assert re.search(r"^  experiment\s+churn$", out, re.M)
    assert re.search(r"^  status\s+FINISHED$", out, re.M)
    assert re.search(r"^  model\s+rf$", sections["params"], re.M)
    assert re.search(r"^  depth\s+0$", sections["params"], re.M)
    assert re.search(r"^  acc\s+0\.91$", sections["metrics"], re.M)
    assert re.search(r"^  loss\s+0\.09$", sections["metrics"], re.M)
    assert re.search(r"^  team\s+data$", sections["tags"], re.M)
    assert re.search(r"^  nbtrack\.runName\s+rf-run$", sections["tags"], re.M)
    size = len("notes on rf")
    assert sections["artifacts"].strip() == f"notes/readme.txt  ({size} bytes)"


def test_show_by_full_id_and_without_artifacts(store_dir: Path, seeded: dict[str, str]) -> None:
    out = ok(store_dir, "runs", "show", seeded["cnn"])
    assert "cnn" in out.splitlines()[0]
    assert "\nartifacts\n" not in out


def test_show_unknown_prefix(store_dir: Path, seeded: dict[str, str]) -> None:
    taken = {run_id[0] for run_id in seeded.values()}
    unused = next(c for c in "0123456789abcdef" if c not in taken)
    out = failed(store_dir, "runs", "show", unused * 6)
    assert f"no run id starts with {unused * 6!r}" in out


def test_show_unknown_full_id(store_dir: Path, seeded: dict[str, str]) -> None:
    out = failed(store_dir, "runs", "show", "f" * 32)
    assert "no run id starts with" in out


def test_show_ambiguous_prefix(store_dir: Path, seeded: dict[str, str]) -> None:
    client = nbtrack.Client()
    ids = list(seeded.values()) + [client.create_run("0").info.run_id for _ in range(12)]
    # 17 ids, 16 hex digits: at least two share their first character.
    shared = next(c for c, n in Counter(i[0] for i in ids).items() if n > 1)
    out = failed(store_dir, "runs", "show", shared)
    assert f"{shared!r} matches several runs" in out
    assert "more characters" in out
    matching = [i for i in ids if i.startswith(shared)]
    assert sum(i in out for i in matching) == min(len(matching), 5)  # some of them, by name


# -- delete, restore, gc ----------------------------------------------------------------------


def test_delete_hides_and_restore_brings_back(store_dir: Path, seeded: dict[str, str]) -> None:
    run_id = seeded["lr-run"]
    out = ok(store_dir, "runs", "delete", run_id[:8])
    assert out.strip() == f"deleted {run_id}"
    assert "lr-run" not in names_of(ok(store_dir, "runs"))
    # with "ghost", deleted with its experiment
    assert sorted(names_of(ok(store_dir, "runs", "--deleted"))) == ["ghost", "lr-run"]
    assert nbtrack.get_run(run_id).info.lifecycle_stage == "deleted"

    assert ok(store_dir, "runs", "restore", run_id[:8]).strip() == f"restored {run_id}"
    assert "lr-run" in names_of(ok(store_dir, "runs"))
    assert names_of(ok(store_dir, "runs", "--deleted")) == ["ghost"]


def test_deleting_a_deleted_run_or_restoring_an_active_one_says_so(
    store_dir: Path, seeded: dict[str, str]
) -> None:
    run_id = seeded["lr-run"]
    ok(store_dir, "runs", "delete", run_id)
    before = db_dump(store_dir)
    assert ok(store_dir, "runs", "delete", run_id).strip() == (
        f"{run_id} was deleted already (`nbtrack gc` purges it)"
    )
    assert db_dump(store_dir) == before
    ok(store_dir, "runs", "restore", run_id)
    other = seeded["cnn"]
    assert ok(store_dir, "runs", "restore", other).strip() == (
        f"{other} is not deleted: nothing to restore"
    )


def test_delete_several_and_unknown(store_dir: Path, seeded: dict[str, str]) -> None:
    ok(store_dir, "runs", "delete", seeded["rf-run"][:8], seeded["cnn"])
    assert set(names_of(ok(store_dir, "runs", "--deleted"))) == {"rf-run", "cnn", "ghost"}
    failed(store_dir, "runs", "delete", "f" * 32)
    failed(store_dir, "runs", "delete")  # a run id is required


@pytest.mark.parametrize("command", ["delete", "restore"])
def test_one_unknown_id_changes_none_of_the_runs(
    store_dir: Path, seeded: dict[str, str], command: str
) -> None:
    if command == "restore":
        ok(store_dir, "runs", "delete", seeded["lr-run"])
    before = db_dump(store_dir)
    out = failed(store_dir, "runs", command, seeded["lr-run"][:8], "zzzz")
    assert "no run id starts with 'zzzz'" in out
    assert db_dump(store_dir) == before


def test_gc_dry_run_changes_nothing(store_dir: Path, seeded: dict[str, str]) -> None:
    ok(store_dir, "runs", "delete", seeded["rf-run"])
    artifacts = store_dir / "artifacts"
    before_db, before_files = db_dump(store_dir), files_under(artifacts)
    out = ok(store_dir, "gc", "--dry-run")
    # rf-run and ghost, deleted with its experiment (which has no artifacts)
    assert "would purge 2 deleted run(s) and 1 artifact folder(s)" in out
    assert seeded["rf-run"] in out
    assert db_dump(store_dir) == before_db
    assert files_under(artifacts) == before_files
    assert sorted(names_of(ok(store_dir, "runs", "--deleted"))) == ["ghost", "rf-run"]


def test_gc_purges_deleted_runs_and_their_artifacts(
    store_dir: Path, seeded: dict[str, str]
) -> None:
    rf, lr = seeded["rf-run"], seeded["lr-run"]
    artifacts = store_dir / "artifacts"
    rf_dir = Path(nbtrack.get_run(rf).info.artifact_uri)
    lr_dir = Path(nbtrack.get_run(lr).info.artifact_uri)
    assert (rf_dir / "notes" / "readme.txt").is_file()
    orphan = artifacts / "1" / ("0" * 32)  # a folder no run refers to
    (orphan / "sub").mkdir(parents=True)
    (orphan / "sub" / "x.bin").write_bytes(b"x")
    assert all(db_rows(store_dir, rf)[t] for t in ("runs", "params", "tags", "artifacts"))

    ok(store_dir, "runs", "delete", rf[:8])
    out = ok(store_dir, "gc")

    assert "purged 2 deleted run(s), 2 artifact folder(s)" in out  # and ghost
    assert db_rows(store_dir, rf) == dict.fromkeys(RUN_TABLES, 0)
    assert not rf_dir.exists()
    assert not orphan.exists()
    # Everything else stays.
    assert (lr_dir / "notes" / "readme.txt").read_text() == "notes on lr"
    assert db_rows(store_dir, lr)["artifacts"] == 1
    assert set(names_of(ok(store_dir, "runs"))) == {"lr-run", "xgb-run", "cnn"}
    assert "notes/readme.txt" in ok(store_dir, "runs", "show", lr[:8])
    assert ok(store_dir, "runs", "--deleted").strip() == "no runs"
    failed(store_dir, "runs", "show", rf[:8])
    # A second gc finds nothing to do.
    assert "purged 0 deleted run(s), 0 artifact folder(s)" in ok(store_dir, "gc")


def test_gc_removes_purged_runs_folders_in_an_experiment_s_own_location(
    store_dir: Path, tmp_path: Path
) -> None:
    """An experiment with its own artifact_location keeps its runs' folders there: gc removes
    those of the runs it purges and nothing else of that location."""
    own = tmp_path / "elsewhere"
    exp = nbtrack.create_experiment("own-location", artifact_location=str(own))
    kept, gone = (nbtrack.Client().create_run(exp).info.run_id for _ in range(2))
    for run_id in (kept, gone):
        nbtrack.Client().log_text(run_id, run_id, "id.txt")
    (own / "unrelated").mkdir()
    ok(store_dir, "runs", "delete", gone)
    dry = ok(store_dir, "gc", "--dry-run")
    assert "would purge 1 deleted run(s) and 1 artifact folder(s)" in dry
    assert str(own / gone) in dry and (own / gone / "id.txt").is_file()
    assert "purged 1 deleted run(s), 1 artifact folder(s)" in ok(store_dir, "gc")
    assert sorted(p.name for p in own.iterdir()) == sorted([kept, "unrelated"])
    assert (own / kept / "id.txt").read_text() == kept


def test_gc_keeps_the_runs_of_an_experiment_whose_location_is_the_store_s_artifact_folder(
    store_dir: Path,
) -> None:
    client = nbtrack.Client()
    exp = client.create_experiment("inside", artifact_location=str(store_dir / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    client.log_text(run_id, "w", "model/weights.txt")
    client.log_text(run_id, "t", "top.txt")
    client.set_terminated(run_id)
    (store_dir / "artifacts" / "0" / "not-a-run").mkdir(parents=True)
    assert "would purge 0 deleted run(s) and 0 artifact folder(s)" in ok(
        store_dir, "gc", "--dry-run"
    )
    assert "purged 0 deleted run(s), 0 artifact folder(s)" in ok(store_dir, "gc")
    folder = Path(client.get_run(run_id).info.artifact_uri)
    assert (folder / "model" / "weights.txt").read_text() == "w"
    assert (folder / "top.txt").read_text() == "t"
    assert (store_dir / "artifacts" / "0" / "not-a-run").is_dir()


@pytest.mark.parametrize("other", ["runs.db", "runs", "runs.data"])
def test_gc_leaves_the_artifacts_of_a_store_that_shares_its_folder(
    tmp_path: Path, other: str
) -> None:
    """runs.sqlite and runs.db (or runs, or runs.data) side by side all keep artifacts in
    runs-artifacts/."""
    ids = {}
    for name in (other, "runs.sqlite"):
        client = nbtrack.Client(f"sqlite:///{tmp_path / name}")
        keep = client.create_run("0").info.run_id
        gone = client.create_run("0").info.run_id
        for run_id in (keep, gone):
            client.log_text(run_id, run_id, "id.txt")
        client.delete_run(gone)
        ids[name] = (keep, gone)
    artifacts = tmp_path / "runs-artifacts" / "0"
    out = ok(tmp_path / "runs.sqlite", "gc")
    assert "purged 1 deleted run(s), 1 artifact folder(s)" in out
    assert f"also holds the artifacts of {tmp_path / other}" in out
    keep, gone = ids["runs.sqlite"]
    assert sorted(p.name for p in artifacts.iterdir()) == sorted([*ids[other], keep])
    # The other store's runs, even its deleted one, are untouched until its own gc.
    assert all((artifacts / r / "id.txt").read_text() == r for r in ids[other])


def test_gc_is_not_held_up_by_a_pipe_or_fooled_by_a_folder_of_the_same_stem(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "runs.fifo")  # opening it to read would wait for a writer
    (tmp_path / "runs.d").mkdir()
    (tmp_path / "RUNS.db").write_bytes(b"SQLite format 3\x00")  # its own RUNS-artifacts here
    client = nbtrack.Client(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, "x", "x.txt")
    stray = tmp_path / "runs-artifacts" / "0" / ("f" * 32)
    stray.mkdir()
    out = ok(tmp_path / "runs.sqlite", "gc")
    assert "1 artifact folder(s)" in out and "also holds" not in out
    assert not stray.exists() and (tmp_path / "runs-artifacts" / "0" / run_id).is_dir()


def test_gc_counts_a_store_by_another_spelling_of_its_folder_and_not_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a case-insensitive file system (macOS): RUNS.db keeps its artifacts in
    RUNS-artifacts, which is runs-artifacts; RUNS.sqlite is the store's own file."""
    from nbtrack.tracking.garbage import stores_sharing_artifacts

    nbtrack.Client(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    (tmp_path / "runs-artifacts").mkdir(exist_ok=True)
    (tmp_path / "RUNS-artifacts").symlink_to(tmp_path / "runs-artifacts")
    (tmp_path / "RUNS.sqlite").symlink_to(tmp_path / "runs.sqlite")
    db, root = tmp_path / "runs.sqlite", tmp_path / "runs-artifacts"
    assert stores_sharing_artifacts(db, root) == []
    (tmp_path / "RUNS.db").write_bytes(b"SQLite format 3\x00")
    assert stores_sharing_artifacts(db, root) == [tmp_path / "RUNS.db"]
    # A file of the stem that cannot be read might be a store: counted, to be safe.
    (tmp_path / "runs.data").write_bytes(b"")
    real_open = os.open

    def refuse(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith("runs.data"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    assert tmp_path / "runs.data" in stores_sharing_artifacts(db, root)


def test_gc_shrinks_the_database(store_dir: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    for step in range(100_000):
        client.log_metric(run_id, "x", float(step), step=step)
    client.set_terminated(run_id)
    client.delete_run(run_id)
    size = store_bytes(store_dir)

    out = ok(store_dir, "gc")

    match = re.search(r"database ([\d.]+) MB -> ([\d.]+) MB", out)
    assert match, out
    reported_before, reported_after = float(match[1]), float(match[2])
    assert reported_after < reported_before / 10
    # The file itself shrank: VACUUM's output did not stay in the write-ahead log.
    assert store_bytes(store_dir) < size / 10


# -- the store option -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["models", "list"], ["models", "versions", "m"], ["models", "history", "m"]]
)
def test_models_commands_do_not_make_a_store_where_there_is_none(
    tmp_path: Path, command: list[str]
) -> None:
    out = failed(tmp_path / "typo", *command)
    assert f"no nbtrack store at {tmp_path / 'typo' / 'nbtrack.db'} (--store " in out
    assert not (tmp_path / "typo").exists()
    assert "Usage:" in ok(tmp_path / "typo", *command, "--help")  # help needs no store
    assert not (tmp_path / "typo").exists()


def test_the_no_store_message_names_the_environment_variable_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code != 0
    assert f"(NBTRACK_TRACKING_URI={tmp_path / 'nowhere'})" in result.output


def test_a_time_past_the_year_9999_written_by_another_tool_does_not_break_the_tables(
    store_dir: Path,
) -> None:
    with nbtrack.start_run(run_name="far") as run:
        pass
    micro = int(time.time() * 1e6)  # microseconds written where milliseconds belong
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        conn.execute("UPDATE runs SET start_time = ?", (micro,))
        conn.execute("UPDATE experiments SET creation_time = ?, last_update_time = ?", (micro,) * 2)
    conn.close()
    assert f"{micro} ms" in ok(store_dir, "runs")
    assert f"{micro} ms" in ok(store_dir, "experiments")
    assert f"{micro} ms" in ok(store_dir, "runs", "show", run.info.run_id)


def test_runs_show_takes_an_upper_case_prefix_and_says_a_run_is_deleted(
    store_dir: Path, seeded: dict[str, str]
) -> None:
    run_id = seeded["lr-run"]
    ok(store_dir, "runs", "delete", run_id)
    out = ok(store_dir, "runs", "show", run_id[:8].upper())
    assert run_id in out and "(deleted: `nbtrack gc` purges it)" in out
    assert "deleted" not in ok(store_dir, "runs", "show", seeded["rf-run"]).split("params")[0]


def test_runs_show_prints_every_line_of_a_short_value_and_the_end_of_a_long_one(
    store_dir: Path,
) -> None:
    with nbtrack.start_run() as run:
        nbtrack.set_tag("note", "first line\nsecond line")
        nbtrack.set_tag("trace", "\n".join(f"line {i}" for i in range(30)))
    out = ok(store_dir, "runs", "show", run.info.run_id)
    assert "first line\n" in out and "second line" in out
    assert "... (18 earlier lines)" in out and "line 17" not in out and "line 29" in out


def test_runs_show_prints_metrics_in_full(store_dir: Path) -> None:
    values = {"acc": 0.123456789, "big": 12345678.9, "tiny": 1e-12, "nan": math.nan}
    with nbtrack.start_run() as run:
        nbtrack.log_metrics(values)
    out = ok(store_dir, "runs", "show", run.info.run_id)
    for key, text in [("acc", "0.123456789"), ("big", "12345678.9"), ("tiny", "1e-12"),
                      ("nan", "nan")]:  # fmt: skip
        assert re.search(rf"^  {key} +{re.escape(text)}$", out, re.M), out


@pytest.mark.parametrize("command", [["experiments"], ["runs"], ["gc", "--dry-run"]])
def test_unsupported_store_scheme(command: list[str]) -> None:
    out = failed("postgresql://x", *command)
    assert "unsupported tracking URI scheme 'postgresql'" in out
    for form in ("directory", ".db", "sqlite:///", "file:///"):
        assert form in out


def test_store_from_environment(
    store_dir: Path, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    result = CliRunner().invoke(cli, ["runs", "-e", "vision"])
    assert result.exit_code == 0, result.output
    assert names_of(result.output) == ["cnn"]


# -- a real process ---------------------------------------------------------------------------


def test_console_script(store_dir: Path, seeded: dict[str, str], tmp_path: Path) -> None:
    command = [*nbtrack_command(), "--store", str(store_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}

    done = subprocess.run(
        [
            *command,
            "runs",
            "-f",
            "metrics.acc > 0.9 OR params.model = 'cnn'",
            "-o",
            "metrics.acc DESC",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert names_of(done.stdout) == ["xgb-run", "rf-run", "cnn"]

    done = subprocess.run(
        [*command, "runs", "-f", "metrics.acc >> 3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("Error: expected a number")
    assert "Traceback" not in done.stderr

    done = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "--store", str(store_dir), "experiments"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in table(done.stdout)] == ["Default", "churn", "vision"]
    assert not (tmp_path / ".nbtrack").exists()
