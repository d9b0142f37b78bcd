"""The public face of snapshots: export a run as a notebook, diff two runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diff import RunDiff

__all__ = ["diff_runs", "export_snapshot"]


def export_snapshot(
    run_id: str, path: str | os.PathLike[str], kind: str | None = None
) -> Path:
    """Write a run's snapshot as a notebook that reproduces it, and ``requirements.txt`` beside
    it (``<name>.requirements.txt`` if the folder has a requirements.txt of its own, or one
    pinned for another run).

    Parameters
    ----------
    run_id
        The run.
    path
        The ``.ipynb`` file to write.
    kind
        ``"history"`` (the cells that ran, in execution order), ``"notebook"`` (the notebook
        file as it was saved when the run started) or ``"script"`` (the script a run of
        ``python train.py`` ran, as one cell). Default: the first of these the run has.

    Returns
    -------
    pathlib.Path
        The notebook written: a metadata cell, a ``parameters`` cell, then the code cells.
    """
    from ..tracking.fluent import _client_for
    from .export import export_snapshot as export

    return export(_client_for(run_id), run_id, path, kind)


def diff_runs(a: str, b: str) -> RunDiff:
    """What differs from run ``a`` to run ``b``: params, metrics (with deltas), code cells
    (a unified diff per changed cell), packages. Prints as text; renders as HTML in a notebook."""
    from ..tracking.fluent import _client_for
    from .diff import diff_runs as diff

    return diff(_client_for(a), a, b)
