"""The files a run's artifacts are: their permissions, and clear errors for paths in the way."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack import file_modes
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
