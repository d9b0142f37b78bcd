"""Every notebook in notebooks/ runs end to end in a real kernel, as the README's first command."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
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


def test_there_is_a_quickstart() -> None:
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(notebook: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = tmp_path / f"{notebook.stem}.executed.ipynb"
    result = subprocess.run(
        [
            sys.executable,
            str(notebook.parent / "run.py"),
            str(notebook),
            "--store",
            str(store),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists()
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


def test_figure_widgets_become_figures_and_other_widgets_keep_their_state() -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "notebooks"))
    try:
        from static_figures import WIDGET_STATE, WIDGET_VIEW, make_static
    finally:
        sys.path.pop(0)

    def view(model_id: str) -> Any:
        return nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW: {"model_id": model_id}, "text/plain": "box"}
        )

    def model(name: str, **state: Any) -> dict[str, Any]:
        return {"model_name": name, "model_module": "m", "state": state}

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ("compare", "live", "slider")]
    nb.cells[0].outputs = [view("box"), nbformat.v4.new_output("stream", text="trained\n")]
    nb.cells[1].outputs = [view("frame")]
    nb.cells[2].outputs = [view("slider")]
    nb.metadata["widgets"] = {
        WIDGET_STATE: {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                # a run table above its curves
                "box": model(
                    "VBoxModel",
                    children=["IPY_MODEL_table", "IPY_MODEL_fig"],
                    layout="IPY_MODEL_box-layout",
                ),
                "box-layout": model("LayoutModel"),
                "table": model("HTMLModel", value="<table>runs</table>"),
                "fig": model("AnyModel", _esm="x" * 1000),
                # a figure in a box of nothing else
                "frame": model("VBoxModel", children=["IPY_MODEL_live"]),
                "live": model("AnyModel", _esm="x" * 1000),
                # no figure at all
                "slider": model("FloatSliderModel", value=0.5, layout="IPY_MODEL_s-layout"),
                "s-layout": model("LayoutModel"),
            },
        }
    }
    curves = {"data": [{"type": "scatter", "y": [3.0, 2.0, 1.0]}], "layout": {}}
    live = {"data": [{"type": "scatter", "y": [1.0]}], "layout": {"title": {"text": "loss"}}}

    assert make_static(nb, {"fig": curves, "live": live}) == 2
    compare, frame, slider = (cell.outputs for cell in nb.cells)
    # the table stays a widget, the curves follow it as a figure
    assert [o.output_type for o in compare] == ["display_data"] * 2 + ["stream"]
    assert compare[0].data[WIDGET_VIEW] == {"model_id": "box"}
    assert compare[1].data["application/vnd.plotly.v1+json"] == curves
    # a box left empty goes
    assert len(frame) == 1 and frame[0].data["application/vnd.plotly.v1+json"] == live
    assert frame[0].data["text/plain"] == "<Figure: loss>"
    assert slider[0].data[WIDGET_VIEW] == {"model_id": "slider"}
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert set(state) == {"box", "box-layout", "table", "slider", "s-layout"}
    assert state["box"]["state"]["children"] == ["IPY_MODEL_table"]
    nbformat.validate(nb)
