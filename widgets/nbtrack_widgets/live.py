"""Live metric curves under the cell that trains, redrawn while it runs.

Registered with nbtrack as a cell observer (entry point ``nbtrack.cell_observers``), so every
``%%track`` cell gets them when nbtrack-widgets is installed (``--no-live`` turns them off), and
so does a top-level ``with nbtrack.start_run():`` block in a Jupyter kernel
(``start_run(live=False)`` turns them off).
Nothing shows until the run has a metric with more than one step. A daemon thread redraws at
most every ``INTERVAL_S`` seconds, and only when points were added, reading the history through
the public API; the training loop itself only pays for its ``log_metric`` calls.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from .series import downsample

__all__ = ["INTERVAL_S", "LiveCurves", "latest", "start_live_curves"]

INTERVAL_S = 0.5
MAX_POINTS = 2000

_latest: LiveCurves | None = None


class LiveCurves:
    """Curves of one run's stepped metrics, redrawn in the background until :meth:`stop`."""

    def __init__(self, client: Any, run_id: str, interval: float | None = None):
        self.client = client
        self.run_id = run_id
        self.interval = INTERVAL_S if interval is None else interval
        self.container = widgets.VBox()  # empty, so invisible, until there is a curve
        self.figure: go.FigureWidget | None = None
        self.redraws = 0
        self._points: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="nbtrack-live", daemon=True)

    def start(self) -> LiveCurves:
        from IPython.display import display

        display(self.container)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.redraw()
            except Exception:  # a failed redraw must never reach the training loop
                continue

    def redraw(self) -> bool:
        """Draw what was logged so far; False when nothing changed since the last redraw."""
        with self._lock:
            run = self.client.get_run(self.run_id)
            series = {}
            for key in sorted(run.data.metrics):
                steps, _, values = self.client.get_metric_series(self.run_id, key)
                if len(steps) > 1:
                    series[key] = (np.asarray(steps), np.asarray(values, dtype=float))
            counts = {k: len(v[0]) for k, v in series.items()}
            if not series or counts == self._points:
                return False
            self._points = counts
            if self.figure is None:
                self.figure = go.FigureWidget(
                    layout=go.Layout(
                        height=300,
                        margin={"l": 50, "r": 20, "t": 30, "b": 40},
                        template="plotly_white",
                        title="live metrics",
                    )
                )
                self.container.children = [self.figure]
            with self.figure.batch_update():
                names = [t.name for t in self.figure.data]
                for key, (x, y) in series.items():
                    xs, ys = downsample(x, y, MAX_POINTS)
                    if key in names:
                        trace = self.figure.data[names.index(key)]
                        trace.x, trace.y = xs, ys
                    else:
                        self.figure.add_trace(
                            go.Scattergl(
                                x=xs,
                                y=ys,
                                name=key,
                                mode="lines",
                                hovertemplate=f"{key}<br>step=%{{x}}<br>%{{y:.6g}}<extra></extra>",
                            )
                        )
            self.redraws += 1
            return True

    def stop(self) -> None:
        """Stop redrawing and draw the final state."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.redraw()


def start_live_curves(client: Any, run_id: str) -> LiveCurves:
    """The ``nbtrack.cell_observers`` entry point: live curves for the run of a tracked cell."""
    global _latest
    _latest = LiveCurves(client, run_id).start()
    return _latest


def latest() -> LiveCurves | None:
    """The live curves of the most recent ``%%track`` cell (to inspect or save its figure)."""
    return _latest
