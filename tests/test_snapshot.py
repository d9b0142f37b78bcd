"""Code snapshots: executed history, environment, content-addressed storage, reading back."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.snapshot import capture_snapshots, load_snapshot
from nbtrack.snapshot.environment import environment, git_state
from nbtrack.snapshot.history import executed_cells


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    sh = InteractiveShell.instance()
    yield sh
    for name in ("snap_a", "snap_b", "snap_c", "snap_cells"):
        sh.user_ns.pop(name, None)


def _git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` as a throwaway author; its standard output."""
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _rows(store_dir: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- executed history ---------------------------------------------------------------------------


def test_executed_cells_in_order_with_counts(shell: InteractiveShell) -> None:
    shell.run_cell("%load_ext nbtrack", store_history=True)  # it marks the cells that raise
    first = shell.execution_count
    shell.run_cell("snap_a = 1", store_history=True)
    shell.run_cell("   \n", store_history=True)  # IPython neither counts nor stores it
    shell.run_cell("snap_b = 2\n\n", store_history=True)
    shell.run_cell("snap_b = (", store_history=True)  # a syntax error is counted and listed
    shell.run_cell("snap_a = 3", store_history=True)
    shell.run_cell("snap_c = 4", store_history=False)  # not in history: not listed
    cells = executed_cells(shell)
    tail = [c for c in cells if c["execution_count"] >= first]
    assert tail == [
        {"execution_count": first, "source": "snap_a = 1"},
        {"execution_count": first + 1, "source": "snap_b = 2"},
        {"execution_count": first + 2, "source": "snap_b = (", "error": True},
        {"execution_count": first + 3, "source": "snap_a = 3"},
    ]
    assert shell.execution_count == first + 4  # the numbers are IPython's In[n]
    assert shell.user_ns["In"][first + 3] == "snap_a = 3"
    counts = [c["execution_count"] for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)


def test_executed_cells_include_the_running_cell(shell: InteractiveShell) -> None:
    shell.run_cell(
        "from nbtrack.snapshot.history import executed_cells as _ec\n"
        "snap_cells = _ec(get_ipython())",
        store_history=True,
    )
    cells = shell.user_ns["snap_cells"]
    assert cells[-1]["source"].endswith("snap_cells = _ec(get_ipython())")
    assert cells[-1]["execution_count"] == shell.execution_count - 1


def test_executed_cells_without_history() -> None:
    assert executed_cells(object()) == []


# -- environment --------------------------------------------------------------------------------


def test_environment_python_and_packages(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert env["python"] == platform.python_version()
    assert env["implementation"] == platform.python_implementation()
    packages = {k.lower(): v for k, v in env["packages"].items()}
    assert packages["nbtrack"] == version("nbtrack") == nbtrack.__version__
    assert packages["pandas"] == version("pandas")
    json.dumps(env)  # stored as JSON


def test_environment_outside_a_git_repo(tmp_path: Path) -> None:
    if any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents)):
        pytest.skip("the temporary folder is inside a git work tree")
    assert environment(tmp_path)["git"] == {}
    assert git_state(tmp_path) == {}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_environment_git_commit_branch_and_dirty(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return _git(repo, *args)

    git("init", "-q", "-b", "trunk")
    (repo / "train.py").write_text("print(1)\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")

    clean = environment(repo)["git"]
    assert clean == {"commit": head, "branch": "trunk", "dirty": False}

    (repo / "train.py").write_text("print(2)\n")
    dirty = environment(repo)["git"]
    assert dirty == {"commit": head, "branch": "trunk", "dirty": True}

    sub = repo / "sub"  # a folder inside the work tree reports the same repository
    sub.mkdir()
    assert environment(sub)["git"]["commit"] == head


# -- storage ------------------------------------------------------------------------------------


def test_put_snapshot_dedupes_identical_content(store_dir: Path) -> None:
    client = nbtrack.Client()
    store = client.store
    r1 = client.create_run("0").info.run_id
    r2 = client.create_run("0").info.run_id
    data = b'{"cells": []}'
    d1 = store.put_snapshot(r1, "history", data)
    d2 = store.put_snapshot(r2, "history", data)
    assert d1 == d2 == hashlib.sha256(data).hexdigest()
    assert _rows(store_dir, "SELECT count(*) FROM snapshots") == [(1,)]
    assert _rows(store_dir, "SELECT count(*) FROM run_snapshots") == [(2,)]
    assert store.get_snapshot(d1) == data
    assert store.run_snapshots(r1) == {"history": d1}
    # a second snapshot of the same kind for a run replaces the link, not adds one
    d3 = store.put_snapshot(r1, "history", b"other")
    assert store.run_snapshots(r1) == {"history": d3}
    assert _rows(store_dir, "SELECT count(*) FROM snapshots") == [(2,)]


def test_purge_removes_only_unreferenced_snapshots(store_dir: Path) -> None:
    client = nbtrack.Client()
    store = client.store
    keep = client.create_run("0").info.run_id
    gone = client.create_run("0").info.run_id
    shared = store.put_snapshot(keep, "environment", b"shared env")
    assert store.put_snapshot(gone, "environment", b"shared env") == shared
    own = store.put_snapshot(gone, "history", b"only the deleted run has this")
    mine = store.put_snapshot(keep, "history", b"only the kept run has this")

    client.delete_run(gone)
    assert store.get_snapshot(own) is not None  # deleting alone keeps everything
    assert store.purge_deleted_runs() == [gone]

    assert store.get_snapshot(own) is None
    assert store.get_snapshot(shared) == b"shared env"
    assert store.get_snapshot(mine) is not None
    assert store.run_snapshots(gone) == {}
    assert store.run_snapshots(keep) == {"environment": shared, "history": mine}
    assert _rows(store_dir, "SELECT count(*) FROM snapshots") == [(2,)]


def test_load_snapshot(store_dir: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    assert load_snapshot(client, run_id, "history") is None
    assert load_snapshot(client, run_id, "notebook") is None
    assert load_snapshot(client, run_id, "no-such-kind") is None
    client.store.put_snapshot(run_id, "history", b'{"cells": [{"execution_count": 1}]}')
    client.store.put_snapshot(run_id, "notebook", '{"é": 1}'.encode())
    assert load_snapshot(client, run_id, "history") == {"cells": [{"execution_count": 1}]}
    assert load_snapshot(client, run_id, "notebook") == '{"é": 1}'


def test_capture_snapshots_of_a_script(store_dir: Path, tmp_path: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    script = tmp_path / "train.py"
    script.write_text("acc = 0.5\n")
    stored = capture_snapshots(client, run_id, script=str(script))
    assert set(stored) == {"script", "environment"}
    assert load_snapshot(client, run_id, "script") == "acc = 0.5\n"
    assert load_snapshot(client, run_id, "environment")["python"] == platform.python_version()

    other = client.create_run("0").info.run_id
    stored2 = capture_snapshots(client, other, script=str(tmp_path / "missing.py"))
    assert set(stored2) == {"environment"}
    assert "could not read script" in client.get_run(other).data.tags["nbtrack.snapshot.note"]


def test_git_state_follows_a_commit_made_during_the_session(tmp_path: Path) -> None:
    from nbtrack.snapshot.environment import signature
    from nbtrack.tracking.context import GIT_COMMIT, git_info

    def git(*args: str) -> str:
        return _git(tmp_path, *args)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")
    first = git_info(str(tmp_path))[GIT_COMMIT]
    before = signature(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    git("commit", "-qam", "two")
    assert git_info(str(tmp_path))[GIT_COMMIT] == git("rev-parse", "HEAD") != first
    assert signature(tmp_path) != before


def test_git_checkout_is_followed_without_a_reflog(tmp_path: Path) -> None:
    from nbtrack.tracking.context import GIT_BRANCH, GIT_COMMIT, git_info

    def git(*args: str) -> str:
        return _git(tmp_path, *args)

    git("init", "-q")
    git("config", "core.logAllRefUpdates", "false")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")
    assert not (tmp_path / ".git" / "logs" / "HEAD").exists()
    first = git_info(str(tmp_path))
    git("checkout", "-qb", "other")  # rewrites HEAD
    assert git_info(str(tmp_path))[GIT_BRANCH] == "other" != first[GIT_BRANCH]
    assert git_info(str(tmp_path))[GIT_COMMIT] == first[GIT_COMMIT]


def test_git_orphan_checkout_is_followed(tmp_path: Path) -> None:
    """``checkout --orphan`` rewrites HEAD without a line in its reflog."""
    from nbtrack.tracking.context import GIT_BRANCH, GIT_COMMIT, git_info

    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-qm", "one")
    assert git_info(str(tmp_path))[GIT_BRANCH] == "main"
    _git(tmp_path, "checkout", "-q", "--orphan", "fresh")
    assert git_info(str(tmp_path)) == {GIT_BRANCH: "fresh"}  # no commit yet
    assert GIT_COMMIT not in git_info(str(tmp_path))


def test_package_list_is_read_again_after_an_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from nbtrack.snapshot.environment import packages

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert "fake-pkg" not in dict(packages())
    dist = site / "fake_pkg-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-pkg\nVersion: 1.2.3\n")
    assert dict(packages())["fake-pkg"] == "1.2.3"


def test_packages_installed_from_local_paths_are_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    site = tmp_path / "site"
    site.mkdir()
    for name, direct_url in (
        ("checkout", '{"url": "file:///src/checkout", "dir_info": {"editable": true}}'),
        ("from_git", '{"url": "https://github.com/o/r", "vcs_info": {"vcs": "git"}}'),
        ("broken", "not json"),
        ("plain", None),
    ):
        dist = site / f"{name}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        if direct_url is not None:
            (dist / "direct_url.json").write_text(direct_url)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    env = environment(tmp_path)
    assert {"checkout", "from_git", "broken", "plain"} <= set(env["packages"])
    assert env["local_packages"]["checkout"] == "file:///src/checkout"
    assert not {"from_git", "broken", "plain"} & set(env["local_packages"])


def test_histories_share_their_cells_and_gc_keeps_the_shared_ones(store_dir: Path) -> None:
    from nbtrack.snapshot.capture import _cells_by_hash, _dumps

    client = nbtrack.Client()
    store = client.store
    keep = client.create_run("0").info.run_id
    gone = client.create_run("0").info.run_id
    common = {"execution_count": 1, "source": "import numpy as np"}
    store.put_snapshot(keep, "history", _dumps({"cells": _cells_by_hash(store, [common])}))
    store.put_snapshot(
        gone,
        "history",
        _dumps(
            {"cells": _cells_by_hash(store, [common, {"execution_count": 2, "source": "x = 1"}])}
        ),
    )
    assert _rows(store_dir, "SELECT count(*) FROM snapshots WHERE kind = 'cell'") == [(2,)]
    assert load_snapshot(client, gone, "history")["cells"][1] == {
        "execution_count": 2,
        "source": "x = 1",
    }
    client.delete_run(gone)
    store.purge_deleted_runs()
    assert _rows(store_dir, "SELECT count(*) FROM snapshots WHERE kind = 'cell'") == [(1,)]
    assert load_snapshot(client, keep, "history") == {"cells": [common]}
