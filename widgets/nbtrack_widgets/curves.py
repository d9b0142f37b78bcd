"""Metric curves: one trace per run and metric, with the x axis, smoothing and scale to choose.

The figure is a Plotly ``FigureWidget``; its controls are standard ipywidgets. Long series are
downsampled (min/max per bucket) to ``max_points`` points per trace and drawn with WebGL.
Outside a widget front end the widget renders as the static Plotly figure (HTML).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

import nbtrack

from .series import X_AXES, downsample, smooth, x_values

__all__ = ["MetricCurves", "curves"]

MAX_POINTS = 2000
WEBGL_FROM = 1000  # a series this long (before downsampling) is drawn with WebGL


class MetricCurves(widgets.VBox):
    """Curves of ``metrics`` for ``run_ids``; see :func:`curves`."""

    def __init__(
        self,
        run_ids: Sequence[str],
        metrics: Sequence[str] | None = None,
        x: str = "step",
        smoothing: float = 0.0,
        log_y: bool = False,
        max_points: int = MAX_POINTS,
        client: nbtrack.Client | None = None,
    ):
        if x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}; got {x!r}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1); got {smoothing}")
        self.client = client or nbtrack.Client()
        self.max_points = max_points
        self.runs = [self.client.get_run(r) for r in run_ids]
        available = sorted({k for run in self.runs for k in run.data.metrics})
        chosen = list(metrics) if metrics is not None else available
        unknown = [m for m in chosen if m not in available]
        if unknown:
            raise ValueError(
                f"no run here has the metric(s) {unknown}; they have: {available or 'none'}"
            )
        self._series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.metric_picker = widgets.SelectMultiple(
            options=available,
            value=tuple(chosen),
            description="metrics",
            rows=min(6, max(2, len(available))),
        )
        self.x_picker = widgets.Dropdown(options=list(X_AXES), value=x, description="x")
        self.smoothing = widgets.FloatSlider(
            value=smoothing,
            min=0.0,
            max=0.99,
            step=0.01,
            description="smoothing",
            continuous_update=False,
        )
        self.log_y = widgets.Checkbox(value=log_y, description="log scale")
        self.figure = go.FigureWidget(
            layout=go.Layout(
                height=380,
                margin={"l": 50, "r": 20, "t": 30, "b": 40},
                legend={"orientation": "h", "y": -0.2},
                template="plotly_white",
            )
        )
        for control in (self.metric_picker, self.x_picker, self.smoothing, self.log_y):
            control.observe(self._redraw, names="value")
        super().__init__(
            [
                widgets.HBox(
                    [self.metric_picker, widgets.VBox([self.x_picker, self.smoothing, self.log_y])]
                ),
                self.figure,
            ]
        )
        self._redraw()

    def _series_of(self, run_id: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (run_id, metric)
        if key not in self._series:
            steps, stamps, values = self.client.get_metric_series(run_id, metric)
            self._series[key] = (
                np.asarray(steps, dtype=np.int64),
                np.asarray(stamps, dtype=np.int64),
                np.asarray(values, dtype=float),
            )
        return self._series[key]

    def traces(self) -> list[dict[str, Any]]:
        """The traces as drawn now: name, x, y, and whether WebGL is used."""
        out = []
        metrics = list(self.metric_picker.value)
        for run in self.runs:
            for metric in metrics:
                if metric not in run.data.metrics:
                    continue
                steps, stamps, values = self._series_of(run.info.run_id, metric)
                y = smooth(values, self.smoothing.value)
                xs, ys = downsample(
                    x_values(steps, stamps, self.x_picker.value), y, self.max_points
                )
                label = f"{run.info.run_name} · {metric}" if len(metrics) > 1 else run.info.run_name
                out.append(
                    {
                        "name": label,
                        "x": xs,
                        "y": ys,
                        "webgl": len(values) >= WEBGL_FROM,
                        "run": run.info.run_name,
                        "metric": metric,
                    }
                )
        return out

    def _redraw(self, change: Any = None) -> None:
        traces = self.traces()
        x_title = {"step": "step", "wall time": "time", "relative time": "seconds since start"}
        with self.figure.batch_update():
            self.figure.data = []
            for t in traces:
                cls = go.Scattergl if t["webgl"] else go.Scatter
                self.figure.add_trace(
                    cls(
                        x=t["x"],
                        y=t["y"],
                        name=t["name"],
                        mode="lines",
                        hovertemplate=f"{html.escape(t['run'])}<br>{html.escape(t['metric'])}"
                        f"<br>{html.escape(x_title[self.x_picker.value])}=%{{x}}"
                        "<br>value=%{y:.6g}<extra></extra>",
                    )
                )
            self.figure.layout.xaxis.title = x_title[self.x_picker.value]
            self.figure.layout.yaxis.type = "log" if self.log_y.value else "linear"

    def to_html(self) -> str:
        """The figure as standalone HTML (Plotly.js from its CDN): the static rendering."""
        return str(go.Figure(self.figure).to_html(include_plotlyjs="cdn", full_html=False))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.to_html()  # where no widget front end runs
        bundle["text/plain"] = f"MetricCurves({len(self.figure.data)} traces)"
        return bundle


def curves(
    run_ids: Sequence[str] | None = None,
    experiment: str | None = None,
    metrics: Sequence[str] | None = None,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_runs: int = 20,
    filter_string: str = "",
) -> MetricCurves:
    """Metric curves of some runs, as a widget.

    Parameters
    ----------
    run_ids
        The runs; or give ``experiment`` (a name) for its latest ``max_runs`` runs, optionally
        filtered with ``filter_string`` (search_runs' language).
    metrics
        Default: every metric the runs have.
    x
        ``"step"``, ``"wall time"`` or ``"relative time"``.
    smoothing
        Exponential smoothing weight in [0, 1), as TensorBoard's slider.
    log_y
        Logarithmic y axis.
    """
    if run_ids is None:
        if experiment is None:
            raise ValueError("give run_ids=[...] or experiment='name'")
        found: Any = nbtrack.search_runs(
            experiment_names=[experiment],
            filter_string=filter_string,
            max_results=max_runs,
            output_format="list",
        )
        run_ids = [r.info.run_id for r in found]
    return MetricCurves(run_ids, metrics=metrics, x=x, smoothing=smoothing, log_y=log_y)
