from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.tracking import fluent, uri


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store in a temporary folder, active for the fluent API; no run left active."""
    monkeypatch.delenv(uri.ENV_VAR, raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("NBTRACK_EXPERIMENT_ID", raising=False)
    directory = tmp_path / "store"
    nbtrack.set_tracking_uri(directory)
    yield directory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while nbtrack.active_run() is not None:
            nbtrack.end_run()
    fluent._experiment = None
    fluent._last_run = None
    fluent._clients.clear()
    uri.reset_tracking_uri()
