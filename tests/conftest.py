from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import nbtrack
from nbtrack.tracking import client, fluent, uri

# The property tests draw new examples on every run, which is how they find new bugs. CI runs
# them derandomized (HYPOTHESIS_PROFILE=ci, set in .ci/run): the same examples on every run, so
# that a commit is judged by what it changed, not by a draw. Plain `python -m pytest` explores.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _close_stores_opened_by_the_test() -> Iterator[None]:
    """Each open store holds a few file descriptors; a thousand tests' worth made IPython 8's
    select() fail for a descriptor number past 1024."""
    before = set(client._backends)
    yield
    with contextlib.suppress(Exception):  # a test may leave rows it made unwritable on purpose
        client._close_stores(keep=before)


@pytest.fixture(autouse=True)
def _tracking_variables_restored() -> Iterator[None]:
    """set_tracking_uri and set_experiment put the store and experiment in the environment
    (for child processes), and `nbtrack --store X models ...` sets NBTRACK_TRACKING_URI for the
    models it loads: a test must not point the tests after it at its store or experiment."""
    names = (
        uri.ENV_VAR,
        uri.EXPERIMENT_ID_VAR,
        uri.EXPERIMENT_NAME_VAR,
        uri._EXPORT_MARK,
        uri._EXPERIMENT_MARK,
    )
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
    fluent._stack.last = None
    fluent._clients.clear()
    uri.reset_tracking_uri()
