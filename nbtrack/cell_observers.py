"""Plugins that watch a run while it trains in the notebook (live curves, progress, ...).

nbtrack never imports its front-end packages: a package that wants to watch runs declares an
entry point in the group ``nbtrack.cell_observers``, naming a callable
``observer(client, run_id)`` that starts watching and returns an object with a ``stop()``
method. Observers start with a ``%%track`` cell and stop when it ends, and likewise for a
top-level run that ``nbtrack.start_run`` starts in a Jupyter kernel (stopped by ``end_run``).
``nbtrack-widgets`` declares the live metric curves this way. An observer that fails is
reported as a warning; it never breaks the cell or the run.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from .exceptions import NbtrackWarning

__all__ = ["GROUP", "Handle", "start_observers", "stop_observers"]

GROUP = "nbtrack.cell_observers"


class Handle(Protocol):
    def stop(self) -> None: ...


@functools.lru_cache(maxsize=1)
def _observers() -> tuple[tuple[str, Callable[[Any, str], Handle]], ...]:
    from importlib.metadata import entry_points

    found = []
    for entry in entry_points(group=GROUP):
        try:
            found.append((entry.name, entry.load()))
        except Exception as exc:
            warnings.warn(
                f"nbtrack: the observer {entry.name!r} could not be loaded: {exc}",
                NbtrackWarning,
                stacklevel=2,
            )
    return tuple(found)


def start_observers(client: Any, run_id: str) -> list[Handle]:
    handles = []
    for name, observer in _observers():
        try:
            handles.append(observer(client, run_id))
        except Exception as exc:
            warnings.warn(
                f"nbtrack: the observer {name!r} failed to start: {exc}",
                NbtrackWarning,
                stacklevel=2,
            )
    return handles


def stop_observers(handles: list[Handle]) -> None:
    for handle in handles:
        try:
            handle.stop()
        except Exception as exc:
            warnings.warn(
                f"nbtrack: an observer failed to stop: {exc}", NbtrackWarning, stacklevel=2
            )
