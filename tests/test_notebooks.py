"""Every notebook in notebooks/ runs end to end in a real kernel, as the README's first command."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

NOTEBOOKS = sorted(
    p
    for p in (Path(__file__).parent.parent / "notebooks").glob("*.ipynb")
    if not p.name.endswith(".executed.ipynb")
)


def _run(
    notebook: Path, store: Path, out: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """notebooks/run.py on ``notebook``, as the README's first command runs it (with ``env``
    added to the environment)."""
    return subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent.parent / "notebooks" / "run.py"),
            str(notebook),
            "--store",
            str(store),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def _figure_then(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run a notebook that shows a figure widget (y = 1, 2), then runs ``code``; the result
    and the executed notebook."""
    notebook = tmp_path / "figure.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import plotly.graph_objects as go\nfig = go.FigureWidget(go.Scatter(y=[1, 2]))\nfig"
        ),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, notebook)
    out = tmp_path / "figure.executed.ipynb"
    result = _run(notebook, tmp_path / "store", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, nbformat.read(out, as_version=4)


def test_there_is_a_quickstart() -> None:
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(notebook: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = tmp_path / f"{notebook.stem}.executed.ipynb"
    # a temporary folder of its own, with a short path (the kernel's sockets are made in it)
    with tempfile.TemporaryDirectory(prefix="nbt-") as scratch:
        result = _run(notebook, store, out, env={"TMPDIR": scratch})
        assert result.returncode == 0, result.stdout + result.stderr
        assert os.listdir(scratch) == []  # the tour cleans up after itself
    assert out.exists()
    # plotly figures are saved as figures, not as widgets carrying plotly.js (5 MB each)
    assert out.stat().st_size < 2_000_000
    if notebook.stem == "quickstart":  # the README promises it prints where the results are
        assert "store: sqlite:///" in result.stdout
        # and the main job's output is clean (kernels run by the notebooks themselves, as in
        # export_and_diff, may still warn of their unencrypted TCP ports)
        assert "WARNING" not in result.stderr
        # Plotly widgets are saved as the figures they ended with: the live curves of the
        # baseline run hold its 60 steps, and the file does not carry plotly.js per figure.
        executed = nbformat.read(out, as_version=4)
        figures = [figure for cell in executed.cells for figure in _plotly_outputs(cell)]
        assert len(figures) >= 2
        baseline = next(c for c in executed.cells if c.source.startswith("%%track --name"))
        [live] = _plotly_outputs(baseline)
        assert len(_values(live["data"][0]["y"])) == 60
        assert out.stat().st_size < 2_000_000
    conn = sqlite3.connect(store / "nbtrack.db")
    statuses = {s for (s,) in conn.execute("SELECT status FROM runs")}
    conn.close()
    assert statuses == {"FINISHED"}


def _plotly_outputs(cell: Any) -> list[dict[str, Any]]:
    return [
        output["data"]["application/vnd.plotly.v1+json"]
        for output in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in output.get("data", {})
    ]


def _values(array: Any) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array (``{"dtype", "bdata"}``)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def _static_figures() -> Any:
    sys.path.insert(0, str(Path(__file__).parent.parent / "notebooks"))
    try:
        import static_figures
    finally:
        sys.path.pop(0)
    return static_figures


def _view(model_id: str) -> Any:
    view = {"model_id": model_id}
    return nbformat.v4.new_output(
        "display_data",
        data={"application/vnd.jupyter.widget-view+json": view, "text/plain": "widget"},
    )


def _model(name: str, **state: Any) -> dict[str, Any]:
    return {"model_name": name, "model_module": "m", "state": state}


def _figure_model(**state: Any) -> dict[str, Any]:
    state = {"_widget_data": [], "_widget_layout": {}, **state}
    return _model(
        "AnyModel", _anywidget_id="plotly.graph_objs.FigureWidget", _esm="x" * 999, **state
    )


def _notebook(outputs: list[list[Any]], states: dict[str, Any]) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"cell {i}") for i in range(len(outputs))]
    for cell, cell_outputs in zip(nb.cells, outputs, strict=True):
        cell.outputs = cell_outputs
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": states,
        }
    }
    return nb


def _shown(cell: Any) -> list[str]:
    """What each output of a cell shows: a widget's id, a figure's title, or a stream."""
    out = []
    for output in cell.outputs:
        data = output.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data:
            out.append(data["application/vnd.jupyter.widget-view+json"]["model_id"])
        elif "application/vnd.plotly.v1+json" in data:
            assert "plotly" in data["text/html"]  # nbconvert's and nbviewer's copy
            out.append(data["application/vnd.plotly.v1+json"]["layout"]["title"]["text"])
        else:
            out.append(output.output_type)
    return out


def test_figure_widgets_become_figures_and_other_widgets_keep_their_state() -> None:
    static = _static_figures()
    state_key = "application/vnd.jupyter.widget-state+json"

    def fig(title: str) -> dict[str, Any]:
        return {
            "data": [{"type": "scatter", "y": [3.0, 2.0]}],
            "layout": {"title": {"text": title}},
        }

    states = {
        # a run table above its curves, shown twice
        "box": _model(
            "VBoxModel",
            children=["IPY_MODEL_table", "IPY_MODEL_curves"],
            layout="IPY_MODEL_box-layout",
        ),
        "box-layout": _model("LayoutModel"),
        "table": _model("HTMLModel", value="<table>runs</table>"),
        "curves": _figure_model(layout="IPY_MODEL_curves-layout"),
        "curves-layout": _model("LayoutModel"),
        # figures in nested boxes, and nothing else
        "outer": _model("VBoxModel", children=["IPY_MODEL_inner", "IPY_MODEL_bottom"]),
        "inner": _model("HBoxModel", children=["IPY_MODEL_top"]),
        "top": _figure_model(),
        "bottom": _figure_model(),
        # a figure shown on its own, closed before the end: as it was displayed
        "closed": _figure_model(
            _widget_data=[{"type": "bar", "y": [1]}], _widget_layout={"title": {"text": "closed"}}
        ),
        # widgets that show no figure: a linked slider, and a figure inside an Output widget
        "slider": _model("FloatSliderModel", value=0.5),
        "text": _model("FloatTextModel", value=0.5),
        "link": _model(
            "LinkModel", source=["IPY_MODEL_slider", "value"], target=["IPY_MODEL_text", "value"]
        ),
        "out": _model(
            "OutputModel",
            outputs=[
                {
                    "output_type": "display_data",
                    "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "inside"}},
                }
            ],
        ),
        "inside": _figure_model(),
    }
    nb = _notebook(
        [
            [_view("box"), nbformat.v4.new_output("stream", text="trained\n"), _view("box")],
            [_view("outer")],
            [_view("closed")],
            [_view("slider"), _view("out")],
        ],
        states,
    )
    ended = {
        "curves": fig("curves"),
        "top": fig("top"),
        "bottom": fig("bottom"),
        "inside": fig("inside"),
    }

    assert static.make_static(nb, ended) == 5
    assert _shown(nb.cells[0]) == ["box", "curves", "stream", "box", "curves"]
    assert _shown(nb.cells[1]) == ["top", "bottom"]  # as the boxes show them; no empty box
    assert _shown(nb.cells[2]) == ["closed"]
    assert _shown(nb.cells[3]) == ["slider", "out"]
    kept = nb.metadata["widgets"][state_key]["state"]
    assert set(kept) == {"box", "box-layout", "table", "slider", "text", "link", "out", "inside"}
    assert kept["box"]["state"]["children"] == ["IPY_MODEL_table"]
    nbformat.validate(nb)


def test_a_notebook_without_figure_widgets_keeps_its_widget_state_as_it_was() -> None:
    static = _static_figures()
    states = {"slider": _model("FloatSliderModel", value=0.5)}
    nb = _notebook([[_view("slider")]], {k: dict(v) for k, v in states.items()})
    assert static.make_static(nb, {}) == 0
    assert nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"] == states


def test_the_figures_are_collected_whatever_the_notebook_named_its_variables(
    tmp_path: Path,
) -> None:
    _, executed = _figure_then(
        tmp_path, "fig.add_scatter(y=[3, 4])\nlist = isinstance = json = None"
    )
    [figure] = _plotly_outputs(executed.cells[0])
    assert len(figure["data"]) == 2  # the trace added after it was shown
    assert len(executed.cells) == 2 and "widgets" not in executed.metadata


def test_figures_shared_with_output_widgets_and_tabs_stay_widgets() -> None:
    """A box an Output widget shows too, and a tab's own figure, are left as they are: the
    Output widget shares the box, and a tab's titles go by the place of its children."""
    static = _static_figures()
    states = {
        "box": _model("VBoxModel", children=["IPY_MODEL_table", "IPY_MODEL_shared"]),
        "table": _model("HTMLModel", value="<table/>"),
        "shared": _figure_model(),
        "out": _model(
            "OutputModel",
            outputs=[
                {
                    "output_type": "display_data",
                    "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "box"}},
                }
            ],
        ),
        "tabs": _model(
            "TabModel",
            children=["IPY_MODEL_tabbed", "IPY_MODEL_table"],
            titles=["loss", "runs"],
            selected_index=1,
        ),
        "tabbed": _figure_model(),
        # built but never displayed: nothing shows it, so it goes with its figure
        "unshown": _model("VBoxModel", children=["IPY_MODEL_unshown-fig"]),
        "unshown-fig": _figure_model(),
    }
    nb = _notebook([[_view("box"), _view("out")], [_view("tabs")]], states)
    assert static.make_static(nb, {"shared": {"data": [], "layout": {}}}) == 0
    assert _shown(nb.cells[0]) == ["box", "out"] and _shown(nb.cells[1]) == ["tabs"]
    kept = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert kept["box"]["state"]["children"] == ["IPY_MODEL_table", "IPY_MODEL_shared"]
    assert {"shared", "tabbed"} <= set(kept)
    assert not {"unshown", "unshown-fig"} & set(kept)


def test_a_closed_figure_is_drawn_with_its_arrays_from_the_saved_buffers() -> None:
    """nbclient saves a widget's numpy arrays as binary buffers beside its state."""
    static = _static_figures()
    values = np.array([3.0, 1.0, 2.0])
    saved = _figure_model(
        _widget_data=[{"type": "bar", "y": {"dtype": "float64", "shape": [3]}}],
        _widget_layout={"title": {"text": "closed"}},
    )
    saved["buffers"] = [
        {
            "path": ["_widget_data", 0, "y", "buffer"],
            "data": base64.b64encode(values.tobytes()).decode(),
            "encoding": "base64",
        }
    ]
    nb = _notebook([[_view("closed")]], {"closed": saved})
    assert static.make_static(nb, {}) == 1
    [figure] = _plotly_outputs(nb.cells[0])
    assert _values(figure["data"][0]["y"]).tolist() == values.tolist()
    assert "widgets" not in nb.metadata


def test_a_failed_collection_saves_the_figures_as_displayed(tmp_path: Path) -> None:
    """If the figures cannot be read from the kernel, the notebook still ran: it is written
    with its figures as they were displayed, and the runner says so."""
    result, executed = _figure_then(
        tmp_path, "import IPython.display\nIPython.display.publish_display_data = None"
    )
    assert "the figures could not be read" in result.stderr
    [figure] = _plotly_outputs(executed.cells[0])
    assert _values(figure["data"][0]["y"]).tolist() == [1, 2]
    assert len(executed.cells) == 2


@pytest.mark.parametrize(
    "text", ["not json", '{"cells": 3}', '{"nbformat": 4, "nbformat_minor": 5, "cells": []}']
)
def test_the_runner_refuses_a_file_that_is_no_notebook_and_writes_nothing(
    tmp_path: Path, text: str
) -> None:
    notebook = tmp_path / "bad.ipynb"
    notebook.write_text(text)
    out = tmp_path / "bad.executed.ipynb"
    result = _run(notebook, tmp_path / "store", out)
    assert result.returncode == 2
    assert "is not a notebook nbformat can read" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / "store").exists()
