"""Params against a metric: a parallel-coordinates view of every param, and a scatter of one
param against the metric, with dropdowns to choose them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

import nbtrack

__all__ = ["ParamsView", "params_view"]


def _as_number(values: list[str | None]) -> list[float] | None:
    """The values as numbers if every present one reads as a number, else None."""
    out = []
    for v in values:
        if v is None:
            out.append(float("nan"))
            continue
        try:
            out.append(float(v))
        except ValueError:
            return None
    return out


class ParamsView(widgets.VBox):
    """See :func:`params_view`."""

    def __init__(self, runs: Sequence[Any], metric: str | None = None):
        self.runs = list(runs)
        metrics = sorted({k for r in self.runs for k in r.data.metrics})
        params = sorted({k for r in self.runs for k in r.data.params})
        if not metrics or not params:
            raise ValueError("these runs need at least one param and one metric to compare")
        if metric is not None and metric not in metrics:
            raise ValueError(f"no run here has the metric {metric!r}; they have: {metrics}")
        self.metric = widgets.Dropdown(
            options=metrics, value=metric or metrics[0], description="metric"
        )
        self.param = widgets.Dropdown(options=params, value=params[0], description="param")
        self.parallel = go.FigureWidget(
            layout={
                "height": 360,
                "template": "plotly_white",
                "margin": {"l": 60, "r": 60, "t": 50, "b": 30},
            }
        )
        self.scatter = go.FigureWidget(
            layout={
                "height": 320,
                "template": "plotly_white",
                "margin": {"l": 50, "r": 20, "t": 30, "b": 50},
            }
        )
        self.metric.observe(lambda _: self._redraw(), names="value")
        self.param.observe(lambda _: self._redraw(), names="value")
        super().__init__([self.metric, self.parallel, self.param, self.scatter])
        self._redraw()

    def _column(self, key: str) -> tuple[list[float], list[str] | None]:
        """Numbers for a param (codes plus labels when it is categorical)."""
        raw = [r.data.params.get(key) for r in self.runs]
        numbers = _as_number(raw)
        if numbers is not None:
            return numbers, None
        labels = sorted({v for v in raw if v is not None})
        return [labels.index(v) if v is not None else float("nan") for v in raw], labels

    def _redraw(self) -> None:
        metric = self.metric.value
        values = [r.data.metrics.get(metric, float("nan")) for r in self.runs]
        dimensions = []
        for key in self.param.options:
            column, labels = self._column(key)
            dim: dict[str, Any] = {"label": key, "values": column}
            if labels is not None:
                dim.update(tickvals=list(range(len(labels))), ticktext=labels)
            dimensions.append(dim)
        dimensions.append({"label": metric, "values": values})
        column, labels = self._column(self.param.value)
        names = [r.info.run_name for r in self.runs]
        with self.parallel.batch_update():
            self.parallel.data = []
            self.parallel.add_trace(
                go.Parcoords(
                    line={"color": values, "colorscale": "Viridis", "showscale": True},
                    dimensions=dimensions,
                )
            )
        with self.scatter.batch_update():
            self.scatter.data = []
            self.scatter.add_trace(
                go.Scatter(
                    x=column,
                    y=values,
                    mode="markers",
                    text=names,
                    hovertemplate="%{text}<br>"
                    + self.param.value
                    + "=%{x}<br>"
                    + metric
                    + "=%{y:.6g}<extra></extra>",
                )
            )
            self.scatter.layout.xaxis.title = self.param.value
            self.scatter.layout.yaxis.title = metric
            if labels is not None:
                self.scatter.layout.xaxis.tickvals = list(range(len(labels)))
                self.scatter.layout.xaxis.ticktext = labels
            else:
                self.scatter.layout.xaxis.tickvals = None
                self.scatter.layout.xaxis.ticktext = None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = "".join(
            go.Figure(f).to_html(include_plotlyjs="cdn", full_html=False)
            for f in (self.parallel, self.scatter)
        )
        bundle["text/plain"] = f"ParamsView({len(self.runs)} runs)"
        return bundle


def params_view(
    experiment: str, metric: str | None = None, filter_string: str = "", max_runs: int = 500
) -> ParamsView:
    """Params of an experiment's runs against a metric: parallel coordinates and a scatter."""
    runs: Any = nbtrack.search_runs(
        experiment_names=[experiment],
        filter_string=filter_string,
        max_results=max_runs,
        output_format="list",
    )
    return ParamsView(runs, metric=metric)
