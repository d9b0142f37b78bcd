"""Every notebook in notebooks/ runs end to end in a real kernel, as the README's first command."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted(
    p
    for p in (Path(__file__).parent.parent / "notebooks").glob("*.ipynb")
    if not p.name.endswith(".executed.ipynb")
)


def test_there_is_a_quickstart() -> None:
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(notebook: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = tmp_path / f"{notebook.stem}.executed.ipynb"
    result = subprocess.run(
        [
            sys.executable,
            str(notebook.parent / "run.py"),
            str(notebook),
            "--store",
            str(store),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists()
    if notebook.stem == "quickstart":  # the README promises it prints where the results are
        assert "store: sqlite:///" in result.stdout
        # and the main job's output is clean (kernels run by the notebooks themselves, as in
        # export_and_diff, may still warn of their unencrypted TCP ports)
        assert "WARNING" not in result.stderr
    conn = sqlite3.connect(store / "nbtrack.db")
    statuses = {s for (s,) in conn.execute("SELECT status FROM runs")}
    conn.close()
    assert statuses == {"FINISHED"}
