"""The widgets in a real browser: JupyterLab 4 and Notebook 7 on 127.0.0.1, Debian's Chromium
driven by Playwright, notebooks/compare.ipynb run from the Run menu's command. What only a
browser shows: the widgets' front ends (ipywidgets, Plotly's FigureWidget) render the table and
the curves.

notebooks/registry.ipynb is run the same way: its stage controls render, showing the version
the notebook promoted in Production. The quickstart, executed headless by notebooks/run.py,
opens with its charts drawn, without running anything. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "compare.ipynb"
REGISTRY_NOTEBOOK = NOTEBOOKS / "registry.ipynb"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Front end -> (module to run, its app's config class, the notebook's URL path).
FRONT_ENDS = {
    "lab": ("jupyterlab", "LabApp", "lab/tree"),
    "notebook": ("notebook", "JupyterNotebookApp", "notebooks"),
}


@pytest.fixture(params=sorted(FRONT_ENDS))
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A Jupyter server with the front end ``request.param`` (JupyterLab 4 or Notebook 7)."""
    module, app, _ = FRONT_ENDS[request.param]
    root = tmp_path / "lab"
    root.mkdir()
    for notebook in (NOTEBOOK, REGISTRY_NOTEBOOK):
        shutil.copy(notebook, root / notebook.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(tmp_path / "store")}
    log = (tmp_path / "jupyterlab.log").open("w")  # a pipe nobody reads would fill and stall it
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--{app}.expose_app_in_browser=True",
            # a workspace of its own: never reopen the tabs of an earlier session
            f"--{app}.workspaces_dir={tmp_path / 'workspaces'}",
            "--ServerApp.port_retries=0",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(
                    f"{module} did not start:\n{(tmp_path / 'jupyterlab.log').read_text()}"
                )
            time.sleep(0.5)
    try:
        yield base, token, request.param
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run_all(page: Any, base: str, token: str, front_end: str, name: str) -> None:
    """Open notebook ``name``, wait for its kernel to be connected and idle, and Run All."""
    page.goto(f"{base}/{FRONT_ENDS[front_end][2]}/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(
        "() => window.jupyterapp"
        " && window.jupyterapp.commands.hasCommand('runmenu:run-all')",
        timeout=60_000,
    )
    # the notebook's kernel must be up and idle before Run All, or the cells go nowhere
    page.evaluate(
        "async () => { const w = window.jupyterapp.shell.currentWidget;"
        " await w.context.ready; await w.context.sessionContext.ready; }"
    )
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.context"
        ".sessionContext.session; return !!s && !!s.kernel"
        " && s.kernel.connectionStatus === 'connected' && s.kernel.status === 'idle'; }",
        timeout=90_000,
    )
    page.evaluate("window.jupyterapp.commands.execute('runmenu:run-all')")


@contextlib.contextmanager
def _browser(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_compare_notebook_renders_table_and_curves(
    lab: tuple[str, str, str], tmp_path: Path
) -> None:
    base, token, front_end = lab
    with _browser(tmp_path) as page:
        _run_all(page, base, token, front_end, NOTEBOOK.name)
        # the table's checkboxes (one per run) and the Plotly traces of the curves
        page.wait_for_function(
            "() => document.querySelectorAll('.widget-checkbox input').length >= 3",
            timeout=120_000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .scatterlayer .trace')"
            ".length >= 3",
            timeout=120_000,
        )
        rows = page.locator(".widget-checkbox input").count()
        traces = page.locator(".js-plotly-plot .scatterlayer .trace").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"compare-{front_end}.png"), full_page=True)
    assert rows >= 3  # three runs in the table (the filtered table adds more)
    assert traces >= 3  # curves drawn by Plotly in the browser


def test_registry_notebook_renders_the_stage_controls(
    lab: tuple[str, str, str], tmp_path: Path
) -> None:
    base, token, front_end = lab
    with _browser(tmp_path) as page:
        _run_all(page, base, token, front_end, REGISTRY_NOTEBOOK.name)
        # a stage dropdown per version, and the audit trail once the promotion went through
        page.wait_for_function(
            "() => document.querySelectorAll('.widget-dropdown select').length >= 2",
            timeout=120_000,
        )
        page.wait_for_function(
            "() => document.body.innerText.includes('server stopped')", timeout=180_000
        )
        stages = page.locator(".widget-dropdown select").evaluate_all(
            "els => els.map(e => e.options[e.selectedIndex].text)"
        )
        page.locator(".widget-dropdown").first.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"registry-{front_end}.png"))
    assert "Production" in stages  # the promotion made in the notebook shows in the browser


def test_executed_quickstart_opens_with_its_charts_drawn(
    lab: tuple[str, str, str], tmp_path: Path
) -> None:
    base, token, front_end = lab
    executed = tmp_path / "lab" / "quickstart.executed.ipynb"
    subprocess.run(
        [sys.executable, str(NOTEBOOKS / "run.py"), str(NOTEBOOKS / "quickstart.ipynb"),
         "--store", str(tmp_path / "quickstart-store"), "--output", str(executed)],
        check=True, capture_output=True, timeout=600,
    )
    with _browser(tmp_path) as page:
        page.goto(f"{base}/{FRONT_ENDS[front_end][2]}/{executed.name}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        # every saved chart: eight live ones (seven runs, and the best run resumed to log a
        # figure) and the comparison of the seven runs
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot').length >= 9", timeout=120_000
        )
        points = page.evaluate(
            "() => [...document.querySelectorAll('.js-plotly-plot')]"
            ".map(p => p._fullData.map(t => t.y.length))"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        comparison = page.locator(".js-plotly-plot").nth(7)  # the curves of every run
        comparison.scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # the notebook lays out the cells around it again
        comparison.screenshot(path=str(ARTIFACTS / f"quickstart-executed-{front_end}.png"))
    assert all(n == 60 for figure in points for n in figure), points  # each run's 60 steps
