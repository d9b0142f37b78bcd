"""Plotly widgets of an executed notebook saved as the figures they show.

A ``FigureWidget`` saved in a notebook's widget state carries plotly.js itself (about 5 MB per
figure, plotly being an anywidget) and only the traces it was displayed with: the curves drawn
into it afterwards (a live run's, say) travel as messages, which no saved state keeps. So an
executed tour notebook was tens of megabytes of empty charts. :func:`make_static` shows each
figure widget as the figure it ended with, in plotly's own output format (which JupyterLab,
VS Code and nbviewer draw), and keeps the saved state of the other widgets (a run table, say).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nbformat

#: The output that :data:`COLLECT` displays: ``{model id: figure}``.
FIGURES_MIME = "application/x-nbtrack-figures+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

#: Run in the kernel after the notebook: every live figure widget, as a plotly figure dict.
COLLECT = """\
def _nbtrack_figures():
    import json
    from IPython.display import publish_display_data
    try:
        import plotly.graph_objects as go
        from ipywidgets.widgets.widget import _instances
    except ImportError:
        return
    figures = {
        model_id: json.loads(widget.to_json())
        for model_id, widget in list(_instances.items())
        if isinstance(widget, go.FigureWidget)
    }
    publish_display_data({FIGURES_MIME: figures})
_nbtrack_figures()
del _nbtrack_figures
""".replace("FIGURES_MIME", repr(FIGURES_MIME))


def collected(cell: Any) -> dict[str, Any]:
    """The figures the :data:`COLLECT` cell displayed, by model id."""
    for output in cell.get("outputs", []):
        figures = output.get("data", {}).get(FIGURES_MIME)
        if figures is not None:
            return dict(figures)
    return {}


def make_static(nb: Any, figures: dict[str, Any]) -> int:
    """Show each of ``figures`` (figure widgets, by model id) that an output of ``nb`` shows,
    alone or inside a box, as a figure output of its own after that output; the rest of the
    box (a run table, controls) stays a widget, drawn from its saved state, and an output
    left with nothing but empty boxes goes. Then drop the saved state of every widget no
    output shows. Returns how many figure outputs were added."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    states: dict[str, Any] = widgets.get("state", {})
    added = 0
    shown: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            models = list(_reachable(view["model_id"], states))
            drawn = [m for m in models if m in figures]
            for model in drawn:
                _forget_child(states, model)
            rest = list(_reachable(view["model_id"], states))
            if not drawn or any(_is_content(states.get(m, {})) for m in rest):
                outputs.append(output)
                shown.update(rest)
            outputs.extend(_figure_output(figures[m]) for m in drawn)
            added += len(drawn)
        cell.outputs = outputs
    if states:
        kept = {m: s for m, s in states.items() if m in shown}
        if kept:
            widgets["state"] = kept
        else:
            del nb.metadata["widgets"]
    return added


def _forget_child(states: dict[str, Any], model_id: str) -> None:
    """Take ``model_id`` out of every box's children."""
    ref = f"IPY_MODEL_{model_id}"
    for saved in states.values():
        children = saved.get("state", {}).get("children")
        if isinstance(children, list) and ref in children:
            saved["state"]["children"] = [c for c in children if c != ref]


def _is_content(saved: dict[str, Any]) -> bool:
    """Whether a widget shows something of its own (not a box, a layout or a style)."""
    name = str(saved.get("model_name", ""))
    return bool(name) and name not in _FRAMES and not name.endswith("StyleModel")


_FRAMES = {"LayoutModel", "BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel"}


def _reachable(model_id: str, states: dict[str, Any]) -> Iterator[str]:
    """``model_id`` and the models its saved state refers to (children, layouts, styles), in
    the order a box shows them."""
    seen: set[str] = set()
    todo = [model_id]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        yield current
        for value in states.get(current, {}).get("state", {}).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item.startswith("IPY_MODEL_"):
                    todo.append(item[len("IPY_MODEL_") :])


def _figure_output(figure: dict[str, Any]) -> Any:
    title = figure.get("layout", {}).get("title", {})
    text = title.get("text") if isinstance(title, dict) else None
    return nbformat.v4.new_output(
        "display_data",
        data={
            PLOTLY_MIME: figure,
            "text/plain": f"<Figure: {text}>" if text else "<Figure>",
        },
    )
