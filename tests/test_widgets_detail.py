"""The run detail view, through widget state: overview, artifacts, code, export and diff."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import nbtrack
from nbtrack_widgets import RunDetail, show


@pytest.fixture
def two_runs(store_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext nbtrack", store_history=True)
    shell.run_cell("import nbtrack", store_history=True)
    with capture_output():
        shell.run_cell("%%track -q --name a\nlr = 0.1\nacc = 0.5", store_history=True)
        first = nbtrack.last_active_run().info.run_id
        shell.run_cell("%%track -q --name b\nlr = 0.2\nacc = 0.7", store_history=True)
        second = nbtrack.last_active_run().info.run_id
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    with nbtrack.start_run(run_id=second):
        nbtrack.log_figure(fig, "plot.png")
        nbtrack.log_text("hello <world>", "notes.txt")
    plt.close(fig)
    yield first, second


def test_overview_artifacts_and_code(two_runs: tuple[str, str]) -> None:
    _, second = two_runs
    detail = show(second[:8])
    assert "lr" in detail.overview.value and "0.7" in detail.overview.value
    assert "<b>FINISHED</b>" in detail.header.value
    kinds = [type(w).__name__ for w in detail.artifacts.children]
    assert "Image" in kinds  # the PNG shown inline
    previews = [w.value for w in detail.artifacts.children if type(w).__name__ == "HTML"]
    assert any("hello &lt;world&gt;" in v for v in previews)  # text previewed, escaped
    assert "%%track -q --name b" in detail.code.value


def test_export_and_diff_buttons(two_runs: tuple[str, str], tmp_path: Path) -> None:
    first, second = two_runs
    detail = RunDetail(second)
    detail.export_path.value = str(tmp_path / "b.ipynb")
    detail.export_button.click()
    assert (tmp_path / "b.ipynb").exists() and "wrote" in detail.result.value
    detail.export_path.value = str(tmp_path / "b.txt")
    detail.export_button.click()
    assert ".ipynb" in detail.result.value  # the error, shown inline
    detail.diff_with.value = first
    detail.diff_button.click()
    assert "lr" in detail.result.value and "0.1" in detail.result.value


def test_static_fallback_and_unknown_run(two_runs: tuple[str, str]) -> None:
    bundle = show(two_runs[0])._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "acc" in bundle["text/html"]
    with pytest.raises(nbtrack.exceptions.RunNotFoundError):
        show("ffffffff")
