"""Metric curves widget, driven through its state as a front end would (no browser)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from nbtrack_widgets import MetricCurves, curves
from nbtrack_widgets.series import downsample, smooth


@pytest.fixture
def sweep(store_dir: Path) -> list[str]:
    nbtrack.set_experiment("sweep")
    ids = []
    for lr in (0.1, 0.2, 0.3):
        with nbtrack.start_run(run_name=f"lr={lr}") as run:
            for step in range(50):
                nbtrack.log_metric("loss", 1.0 / (1 + lr * step), step=step)
                nbtrack.log_metric("acc", 1.0 - 1.0 / (1 + lr * step), step=step)
        ids.append(run.info.run_id)
    return ids


def test_one_trace_per_run_and_metric(sweep: list[str]) -> None:
    widget = curves(experiment="sweep", metrics=["loss"])
    assert sorted(t.name for t in widget.figure.data) == ["lr=0.1", "lr=0.2", "lr=0.3"]
    trace = next(t for t in widget.figure.data if t.name == "lr=0.2")
    assert list(trace.x) == list(range(50))
    assert trace.y[10] == pytest.approx(1.0 / 3.0)
    assert "lr=0.2" in trace.hovertemplate and "loss" in trace.hovertemplate


def test_choosing_metrics_in_the_picker_redraws(sweep: list[str]) -> None:
    widget = MetricCurves(sweep)
    assert set(widget.metric_picker.options) == {"acc", "loss"}
    assert len(widget.figure.data) == 6
    assert any(t.name == "lr=0.1 · acc" for t in widget.figure.data)
    widget.metric_picker.value = ("acc",)  # as the front end sets it
    assert [t.name for t in widget.figure.data] == ["lr=0.1", "lr=0.2", "lr=0.3"]


def test_smoothing_slider_log_scale_and_x_axis(sweep: list[str]) -> None:
    widget = MetricCurves(sweep[:1], metrics=["loss"])
    raw = np.array(widget.figure.data[0].y)
    widget.smoothing.value = 0.9
    smoothed = np.array(widget.figure.data[0].y)
    assert smoothed[0] == pytest.approx(raw[0])  # debiased: starts at the first value
    assert np.abs(np.diff(smoothed)).max() < np.abs(np.diff(raw)).max()
    widget.log_y.value = True
    assert widget.figure.layout.yaxis.type == "log"
    widget.x_picker.value = "relative time"
    x = np.array(widget.figure.data[0].x, dtype=float)
    assert x[0] == 0 and np.all(np.diff(x) >= 0)
    assert widget.figure.layout.xaxis.title.text == "seconds since start"
    widget.x_picker.value = "wall time"
    assert np.array(widget.figure.data[0].x).dtype.kind == "M"


def test_long_series_are_downsampled_and_drawn_with_webgl(store_dir: Path) -> None:
    n = 20_000
    with nbtrack.start_run() as run:
        for step in range(n):
            nbtrack.log_metric("loss", 1.0, step=step)
        nbtrack.log_metric("loss", 50.0, step=12_345)  # a spike that must survive
        nbtrack.log_metric("loss", -3.0, step=777)  # and a dip
    widget = MetricCurves([run.info.run_id], max_points=1000)
    trace = widget.figure.data[0]
    assert len(trace.y) <= 1000
    assert max(trace.y) == 50.0 and min(trace.y) == -3.0
    assert trace.type == "scattergl"


def test_downsample_and_smooth_edge_cases() -> None:
    x = np.arange(10)
    y = np.array([1, 2, np.nan, 4, 5, 6, 7, 8, 9, 10], dtype=float)
    assert downsample(x, y, 100)[1] is y  # short: unchanged
    xs, ys = downsample(x, y, 4)
    assert list(xs) == sorted(xs) and len(ys) <= 4
    out = smooth(y, 0.5)
    assert math.isnan(out[2]) and out[0] == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        smooth(y, 1.0)


def test_bad_input_is_a_clear_error(sweep: list[str]) -> None:
    with pytest.raises(ValueError, match=r"'f1'.*acc"):
        MetricCurves(sweep, metrics=["f1"])
    with pytest.raises(ValueError, match="step, wall time, relative time"):
        MetricCurves(sweep, x="epoch")
    with pytest.raises(ValueError, match="run_ids"):
        curves()
    with pytest.raises(nbtrack.exceptions.RunNotFoundError):
        MetricCurves(["0" * 32])


def test_static_fallback_is_the_plotly_figure_as_html(sweep: list[str]) -> None:
    widget = curves(run_ids=sweep, metrics=["loss"])
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "plotly" in bundle["text/html"].lower() and "lr=0.3" in bundle["text/html"]
    assert bundle["text/plain"] == "MetricCurves(3 traces)"


def test_nbtrack_itself_never_imports_the_widget_stack() -> None:
    code = "import nbtrack, sys; print([m for m in ('ipywidgets', 'plotly') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
