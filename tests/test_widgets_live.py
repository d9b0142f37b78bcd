"""Live curves under a %%track cell, in a real IPython shell, found through the entry point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import nbtrack
from nbtrack import cell_observers
from nbtrack_widgets import live


@pytest.fixture
def ip(store_dir: Path) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext nbtrack", store_history=True)
    shell.run_cell("import nbtrack, time", store_history=True)
    live._latest = None
    yield shell


def test_the_widgets_register_live_curves_as_a_cell_observer() -> None:
    names = [name for name, _ in cell_observers._observers()]
    assert "live_curves" in names


def test_curves_redraw_while_the_cell_runs_and_hold_every_step(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "INTERVAL_S", 0.1)
    with capture_output(display=True) as captured:
        result = ip.run_cell(
            "%%track\n"
            "for step in range(30):\n"
            "    nbtrack.log_metric('loss', 1 / (step + 1), step=step)\n"
            "    nbtrack.log_metric('acc', step / 30, step=step)\n"
            "    time.sleep(0.02)\n",
            store_history=True,
        )
    assert result.error_in_exec is None
    curves = live.latest()
    assert curves is not None and curves.figure is not None
    assert curves.redraws >= 2  # during the cell, then the final redraw
    by_name = {t.name: t for t in curves.figure.data}
    assert sorted(by_name) == ["acc", "loss"]
    assert list(by_name["loss"].x) == list(range(30))
    assert any(  # the container was displayed under the cell
        "application/vnd.jupyter.widget-view+json" in out.data for out in captured.outputs
    )


def test_no_stepped_metric_no_figure_and_no_live_option(ip: InteractiveShell) -> None:
    ip.run_cell("%%track\nacc = 0.5", store_history=True)
    curves = live.latest()
    assert curves is not None and curves.figure is None and curves.container.children == ()
    live._latest = None
    ip.run_cell("%%track --no-live\nnbtrack.log_metric('l', 1, step=1)", store_history=True)
    assert live.latest() is None
    ip.run_cell("%%track --quiet\nnbtrack.log_metric('l', 1, step=1)", store_history=True)
    assert live.latest() is None  # --quiet shows nothing, live curves included


def test_a_failing_observer_never_breaks_the_cell(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(client: object, run_id: str) -> None:
        raise RuntimeError("front end gone")

    monkeypatch.setattr(cell_observers, "_observers", lambda: (("broken", broken),))
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="front end gone"):
        result = ip.run_cell("%%track\nacc = 0.9", store_history=True)
    assert result.error_in_exec is None
    assert nbtrack.last_active_run().data.metrics == {"acc": 0.9}


def _run_in_kernel(cells: list[str], store: Path) -> list[list[dict]]:
    """Execute ``cells`` in a real kernel (as a notebook would) and return their outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    setup = f"import nbtrack, time\nnbtrack.set_tracking_uri({str(store)!r})\n"
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return [list(c.outputs) for c in nb.cells[1:]]


def test_a_start_run_block_in_a_kernel_gets_live_curves(store_dir: Path) -> None:
    outputs = _run_in_kernel(
        [
            "from nbtrack_widgets import live\nlive.INTERVAL_S = 0.05",
            "with nbtrack.start_run():\n"
            "    for step in range(20):\n"
            "        nbtrack.log_metric('loss', 1 / (step + 1), step=step)\n"
            "        time.sleep(0.02)",
            "curves = live.latest()\n"
            "print(curves.redraws >= 1, [t.name for t in curves.figure.data],"
            " len(curves.figure.data[0].x), curves._thread.is_alive())",
            "live._latest = None\n"
            "with nbtrack.start_run(live=False):\n"
            "    nbtrack.log_metric('loss', 1, step=1)\n"
            "with nbtrack.start_run():\n"
            "    with nbtrack.start_run(nested=True):\n"
            "        nbtrack.log_metric('loss', 1, step=1)\n"
            "        nbtrack.log_metric('loss', 0.5, step=2)\n"
            "print(live.latest() is not None and live.latest().figure is None)",
        ],
        store_dir,
    )
    def views(cell: list[dict]) -> int:
        return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell)

    def printed(cell: list[dict]) -> str:
        return "".join(o.get("text", "") for o in cell if o["output_type"] == "stream").strip()

    assert views(outputs[1]) == 1  # the curves, displayed under the cell that trains
    # every step drawn, and the redraw thread stopped when the block ended
    assert printed(outputs[2]) == "True ['loss'] 20 False"
    # live=False shows nothing; the nested run gets no curves of its own (its parent's stay
    # empty, since the parent logs nothing)
    assert views(outputs[3]) == 1
    assert printed(outputs[3]) == "True"
