"""One run in detail: params, metrics, tags, artifacts (images shown, text previewed), and its
code snapshot with export and diff buttons."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import ipywidgets as widgets

import nbtrack
from nbtrack.snapshot import load_snapshot

__all__ = ["RunDetail", "show"]

IMAGE_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}
TEXT_SUFFIXES = {".txt", ".md", ".json", ".yaml", ".yml", ".csv", ".log", ".py", ".toml"}
PREVIEW_BYTES = 4000


def _table(data: dict[str, Any]) -> str:
    if not data:
        return "<i>none</i>"
    rows = []
    for key in sorted(data):
        value = data[key]
        text = f"{value:.6g}" if isinstance(value, float) and not math.isnan(value) else str(value)
        if len(text) > 300:
            text = text[:300] + " ..."
        rows.append(
            f"<tr><td style='padding-right:12px'><code>{html.escape(key)}</code></td>"
            f"<td>{html.escape(text)}</td></tr>"
        )
    return f"<table>{''.join(rows)}</table>"


class RunDetail(widgets.VBox):
    """The detail view of one run; see :func:`show`."""

    def __init__(self, run_id: str, client: nbtrack.Client | None = None):
        self.client = client or nbtrack.Client()
        self.run = self.client.get_run(self.client.find_run_id(run_id))
        info = self.run.info
        experiment = self.client.get_experiment(info.experiment_id)
        self.header = widgets.HTML(
            f"<h3 style='margin:4px 0'>{html.escape(info.run_name or '')}</h3>"
            f"<code>{info.run_id}</code> · {html.escape(experiment.name)} · <b>{info.status}</b>"
        )
        self.overview = widgets.HTML(
            "<h4>params</h4>"
            + _table(self.run.data.params)
            + "<h4>metrics</h4>"
            + _table(self.run.data.metrics)
            + "<h4>tags</h4>"
            + _table(self.run.data.tags)
        )
        self.artifacts = widgets.VBox(self._artifact_views())
        self.code = widgets.HTML(self._code_html())
        self.export_path = widgets.Text(
            value=f"{info.run_name or info.run_id[:8]}.ipynb", description="export to"
        )
        self.export_button = widgets.Button(description="export notebook")
        others: Any = nbtrack.search_runs(experiment_ids=[info.experiment_id], output_format="list")
        self.diff_with = widgets.Dropdown(
            description="diff with",
            options=[
                (r.info.run_name or r.info.run_id[:8], r.info.run_id)
                for r in others
                if r.info.run_id != info.run_id
            ],
        )
        self.diff_button = widgets.Button(description="diff")
        self.result = widgets.HTML()
        self.export_button.on_click(lambda _: self.export())
        self.diff_button.on_click(lambda _: self.diff())
        tabs = widgets.Tab(
            children=[
                self.overview,
                self.artifacts,
                widgets.VBox(
                    [
                        self.code,
                        widgets.HBox([self.export_path, self.export_button]),
                        widgets.HBox([self.diff_with, self.diff_button]),
                        self.result,
                    ]
                ),
            ]
        )
        for i, title in enumerate(("overview", "artifacts", "code")):
            tabs.set_title(i, title)
        super().__init__([self.header, tabs])

    def _artifact_views(self) -> list[widgets.Widget]:
        files = self.client.list_artifact_files(self.run.info.run_id)
        if not files:
            return [widgets.HTML("<i>no artifacts</i>")]
        root = Path(self.run.info.artifact_uri)
        views: list[widgets.Widget] = []
        for rel, size in files:
            path = root / rel
            suffix = path.suffix.lower()
            views.append(widgets.HTML(f"<b>{html.escape(rel)}</b> ({size:,} bytes)"))
            if suffix in IMAGE_SUFFIXES and path.is_file():
                views.append(
                    widgets.Image(
                        value=path.read_bytes(),
                        format=IMAGE_SUFFIXES[suffix],
                        layout={"max_width": "480px"},
                    )
                )
            elif suffix in TEXT_SUFFIXES and path.is_file():
                text = path.read_bytes()[:PREVIEW_BYTES].decode("utf-8", "replace")
                more = " ..." if size > PREVIEW_BYTES else ""
                views.append(
                    widgets.HTML(
                        "<pre style='max-height:240px;overflow:auto'>"
                        f"{html.escape(text)}{more}</pre>"
                    )
                )
        return views

    def _code_html(self) -> str:
        history = load_snapshot(self.client, self.run.info.run_id, "history")
        if history is not None:
            cells = history["cells"]
            return "".join(
                f"<div style='color:#57606a'>In [{c['execution_count']}]"
                f"{' (raised)' if c.get('error') else ''}</div>"
                f"<pre style='margin:0 0 6px'>{html.escape(c['source'])}</pre>"
                for c in cells
            )
        script = load_snapshot(self.client, self.run.info.run_id, "script")
        if script is not None:
            return f"<pre>{html.escape(script)}</pre>"
        return "<i>this run has no code snapshot</i>"

    def export(self) -> Path | None:
        """Export the run as a notebook to the path in the box; the result shows below."""
        from nbtrack.snapshot.export import export_snapshot

        try:
            path = export_snapshot(self.client, self.run.info.run_id, self.export_path.value)
        except nbtrack.NbtrackError as exc:
            self.result.value = f"<span style='color:#cf222e'>{html.escape(str(exc))}</span>"
            return None
        self.result.value = f"wrote <code>{html.escape(str(path))}</code>"
        return path

    def diff(self) -> Any:
        """Diff this run with the one chosen; the diff shows below."""
        from nbtrack.snapshot.diff import diff_runs

        if not self.diff_with.value:
            self.result.value = "<i>no other run in this experiment to compare with</i>"
            return None
        result = diff_runs(self.client, self.diff_with.value, self.run.info.run_id)
        self.result.value = result._repr_html_()
        return result

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.header.value + self.overview.value
        bundle["text/plain"] = f"RunDetail({self.run.info.run_name})"
        return bundle


def show(run_id: str) -> RunDetail:
    """The detail view of a run (an id or a unique prefix of one)."""
    return RunDetail(run_id)
