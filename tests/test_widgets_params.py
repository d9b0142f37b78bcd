"""Params against a metric: parallel coordinates and a scatter, through widget state."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack_widgets import params_view


@pytest.fixture
def sweep(store_dir: Path) -> None:
    nbtrack.set_experiment("grid")
    for opt in ("adam", "sgd"):
        for lr in (0.01, 0.1):
            with nbtrack.start_run(run_name=f"{opt}-{lr}"):
                nbtrack.log_params({"opt": opt, "lr": lr})
                nbtrack.log_metric("acc", 0.8 + lr + (0.05 if opt == "adam" else 0.0))


def test_parallel_coordinates_of_every_param_and_the_metric(sweep: None) -> None:
    view = params_view("grid", metric="acc")
    (parcoords,) = view.parallel.data
    labels = [d.label for d in parcoords.dimensions]
    assert labels == ["lr", "opt", "acc"]
    opt = parcoords.dimensions[1]
    assert list(opt.ticktext) == ["adam", "sgd"]  # a categorical param gets labelled codes
    assert sorted(parcoords.dimensions[0]["values"]) == [0.01, 0.01, 0.1, 0.1]


def test_scatter_follows_the_dropdowns(sweep: None) -> None:
    view = params_view("grid")
    view.param.value = "lr"
    (points,) = view.scatter.data
    got = sorted(zip(points.x, points.y, strict=True))
    want = sorted([(0.01, 0.86), (0.1, 0.95), (0.01, 0.81), (0.1, 0.9)])
    assert [x for x, _ in got] == [x for x, _ in want]
    assert [y for _, y in got] == pytest.approx([y for _, y in want])
    view.param.value = "opt"
    assert list(view.scatter.layout.xaxis.ticktext) == ["adam", "sgd"]
    assert view.scatter.layout.xaxis.title.text == "opt"


def test_bad_input(sweep: None) -> None:
    with pytest.raises(ValueError, match="'f1'"):
        params_view("grid", metric="f1")
    with pytest.raises(ValueError, match="at least one param"):
        params_view("grid", filter_string="params.opt = 'none'")
    bundle = params_view("grid")._repr_mimebundle_()
    assert "plotly" in bundle["text/html"].lower()
