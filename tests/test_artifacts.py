"""The files a run's artifacts are: their permissions, and clear errors for paths in the way."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import Client, file_modes
from nbtrack.exceptions import InvalidInputError
from nbtrack.snapshot import export

# umask -> (mode of a new file, mode of a new folder), as open() and mkdir() give them
MODES = {0o022: (0o644, 0o755), 0o077: (0o600, 0o700)}


@pytest.fixture(params=sorted(MODES), ids=lambda mask: f"umask{mask:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask set for the test, and set back after it."""
    before = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files_and_folders(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """The mode of every file and every folder under ``root`` (not ``root`` itself)."""
    files, folders = {}, {}
    for path in root.rglob("*"):
        (folders if path.is_dir() else files)[path.relative_to(root).as_posix()] = _mode(path)
    return files, folders


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_umask_is_read_as_the_process_has_it(umask: int) -> None:
    assert file_modes.umask() == umask
    assert file_modes.file_mode() == MODES[umask][0]
    assert file_modes.dir_mode() == MODES[umask][1]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_umask_is_read_where_the_system_does_not_show_it(
    umask: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(file_modes, "_STATUS", str(tmp_path / "no-such-file"))
    assert file_modes.umask() == umask
    assert file_modes.umask() == umask  # and left as it was


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_artifacts_get_the_modes_of_the_umask(store_dir: Path, tmp_path: Path, umask: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.linear_model import LinearRegression

    src = tmp_path / "weights.txt"
    src.write_text("w")
    src.chmod(0o644)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.csv").write_text("3,4")
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    with nbtrack.start_run() as run:
        nbtrack.log_text("hello", "notes/readme.md")
        nbtrack.log_dict({"a": 1}, "config.json")
        nbtrack.log_figure(fig, "curve.png")
        nbtrack.log_artifact(src)
        nbtrack.log_artifacts(folder, "plots")
        nbtrack.log_table({"x": [1, 2]}, "table.json")
        nbtrack.log_model(LinearRegression().fit([[0], [1]], [0, 1]), "model")
    plt.close(fig)
    root = Path(nbtrack.get_run(run.info.run_id).info.artifact_uri)
    files, folders = _files_and_folders(root)
    file_mode, dir_mode = MODES[umask]
    assert set(files) >= {
        "notes/readme.md", "config.json", "curve.png", "weights.txt", "plots/sub/b.csv",
        "table.json", "model/MLmodel.json", "model/model.pkl",
    }  # fmt: skip
    assert files == dict.fromkeys(files, file_mode)
    assert folders == dict.fromkeys(folders, dir_mode)
    assert all((root / name).read_bytes() for name in files)  # readable, and not empty
    assert not [p for p in root.rglob("*.part")]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_saved_model_folder_gets_the_modes_of_the_umask(tmp_path: Path, umask: int) -> None:
    from sklearn.linear_model import LinearRegression

    import nbtrack.sklearn

    target = tmp_path / "saved"
    nbtrack.sklearn.save_model(LinearRegression().fit([[0], [1]], [0, 1]), target)
    files, folders = _files_and_folders(target)
    assert _mode(target) == MODES[umask][1]
    assert "MLmodel.json" in files and files == dict.fromkeys(files, MODES[umask][0])
    assert folders == dict.fromkeys(folders, MODES[umask][1])


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_exported_notebook_gets_the_mode_of_the_umask(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "run.ipynb"
    export._write_atomic(out, "{}")
    assert _mode(out) == MODES[umask][0] and out.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["run.ipynb"]


def _conflicting_calls(tmp_path: Path) -> list[tuple[str, Any, str]]:
    """Calls that would put a file where the run has a folder, or a folder where it has a
    file; with the artifact path each error must name. The run has 'notes.txt' and
    'plots/a.png'."""
    file = tmp_path / "plots"  # a file named as the run's folder
    file.write_text("x")
    folder = tmp_path / "src"
    (folder / "notes.txt").mkdir(parents=True)
    (folder / "notes.txt" / "more.txt").write_text("y")
    (folder / "first.txt").write_text("z")  # sorted before the conflict: must not be copied
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "first.txt").write_text("z")
    (flat / "plots").write_text("p")
    return [
        ("text under a file", lambda: nbtrack.log_text("y", "notes.txt/b.txt"), "'notes.txt'"),
        ("text deeper", lambda: nbtrack.log_text("y", "notes.txt/b/c.txt"), "'notes.txt'"),
        ("dict onto a folder", lambda: nbtrack.log_dict({}, "plots"), "'plots'"),
        ("artifact under a file", lambda: nbtrack.log_artifact(file, "notes.txt"), "'notes.txt'"),
        ("artifact onto a folder", lambda: nbtrack.log_artifact(file), "'plots'"),
        ("folder onto a file", lambda: nbtrack.log_artifacts(flat, "notes.txt"), "'notes.txt'"),
        ("folder with a file's name", lambda: nbtrack.log_artifacts(folder), "'notes.txt'"),
        ("folder with a folder's name", lambda: nbtrack.log_artifacts(flat), "'plots'"),
        ("folder under a file", lambda: nbtrack.log_artifact(folder, "notes.txt"), "'notes.txt'"),
    ]  # fmt: skip


def test_an_artifact_in_the_way_is_named_and_nothing_is_written(
    store_dir: Path, tmp_path: Path
) -> None:
    with nbtrack.start_run() as run:
        nbtrack.log_text("x", "notes.txt")
        nbtrack.log_text("x", "plots/a.png")
        root = Path(nbtrack.get_artifact_uri())
        before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
        for label, call, named in _conflicting_calls(tmp_path):
            with pytest.raises(InvalidInputError, match=named) as caught:
                call()
            assert isinstance(caught.value, ValueError), label
            assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before, label
    assert [p for p, _ in Client().list_artifact_files(run.info.run_id)] == [
        "notes.txt", "plots/a.png"
    ]


def test_a_figure_file_without_a_known_ending_is_refused_with_the_endings_allowed(
    store_dir: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    plotly_fig = go.Figure(go.Scatter(y=[1, 3]))
    with nbtrack.start_run() as run:
        for figure, name in ((fig, "noext"), (plotly_fig, "noext"), (plotly_fig, "c.xyz")):
            with pytest.raises(InvalidInputError, match=r"ending in one of .*\.png") as caught:
                nbtrack.log_figure(figure, name)
            assert repr(name) in str(caught.value)
        with pytest.raises(InvalidInputError, match=r"\.html, \.htm, \.json"):
            nbtrack.log_figure(plotly_fig, "plots/curve")
        with pytest.raises(InvalidInputError, match="must name a file"):
            nbtrack.log_figure(fig, "plots/")
        root = Path(nbtrack.get_artifact_uri())
        assert not root.exists() or not any(root.iterdir())
        # a format given to savefig names the file type itself
        nbtrack.log_figure(fig, "plain", save_kwargs={"format": "png"})
    plt.close(fig)
    assert (root / "plain").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p for p, _ in Client().list_artifact_files(run.info.run_id)] == ["plain"]
