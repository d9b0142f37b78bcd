"""Plotly widgets of an executed notebook saved as the figures they show.

A ``FigureWidget`` saved in a notebook's widget state carries plotly.js itself (about 5 MB per
figure, plotly being an anywidget) and only the traces it was displayed with: the curves drawn
into it afterwards (a live run's, say) travel as messages, which no saved state keeps. So an
executed tour notebook was tens of megabytes of empty charts. :func:`make_static` shows each
figure widget as the figure it ended with, as plotly's own renderer for JupyterLab does (the
plotly mimetype, which JupyterLab and VS Code draw, and HTML loading plotly.js from its CDN, for
nbconvert and nbviewer), and keeps the saved state of every other widget (a run table, say).

Used by run.py, beside it (imported from the script's folder).
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
_REF = "IPY_MODEL_"

_COLLECT_SOURCE = """\
import json
from IPython.display import publish_display_data
figures = {}
try:
    import plotly.graph_objects as go
    from ipywidgets.widgets.widget import _instances
except ImportError:
    _instances = {}
for model_id, widget in list(_instances.items()):
    try:
        if isinstance(widget, go.FigureWidget):
            figures[model_id] = json.loads(widget.to_json())
    except Exception:
        pass  # that figure keeps its displayed state
publish_display_data({FIGURES_MIME: figures})
""".replace("FIGURES_MIME", repr(FIGURES_MIME))

#: Run in the kernel after the notebook: every live figure widget, as a plotly figure dict.
#: In a namespace of its own, so that the notebook's names (a ``list`` of its own) change
#: nothing, and it leaves none behind.
COLLECT = f"__import__('builtins').exec({_COLLECT_SOURCE!r}, {{}})\n"


def collected(cell: Any) -> dict[str, Any]:
    """The figures the :data:`COLLECT` cell displayed, by model id."""
    for output in cell.get("outputs", []):
        figures = output.get("data", {}).get(FIGURES_MIME)
        if figures is not None:
            return dict(figures)
    return {}


def make_static(nb: Any, collected_figures: dict[str, Any]) -> int:
    """Show every plotly figure widget an output of ``nb`` shows, alone or inside boxes, as
    a figure output of its own after that output, as it ended (``collected_figures``, by
    model id) or else as it was displayed (its saved state: a widget closed before the end).
    The rest of a box (a run table, controls) stays a widget; an output left with nothing but
    empty boxes goes. The figures' saved state goes, and so does every layout or style only
    they used. (A figure shown only inside an Output widget stays a widget.) Returns how many
    figure outputs were written."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    states: dict[str, Any] = widgets.get("state", {})
    figures = {m: _saved_figure(s) for m, s in states.items() if _is_plotly(s)}
    figures.update((m, f) for m, f in collected_figures.items() if m in states)
    if not figures:
        return 0
    # Which figures each output shows, before any box is changed (one box may be shown twice).
    views = [
        (cell, output, output["data"][WIDGET_VIEW]["model_id"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if WIDGET_VIEW in output.get("data", {})
    ]
    shows = {id(output): list(_figures_in(root, states, figures)) for _, output, root in views}
    converted = {m for drawn in shows.values() for m in drawn}
    for saved in states.values():  # the boxes' figures become outputs of their own
        children = saved.get("state", {}).get("children")
        if isinstance(children, list):
            saved["state"]["children"] = [
                c for c in children if not (isinstance(c, str) and c[len(_REF) :] in converted)
            ]
    written = 0
    dropped: set[str] = set(converted)  # outputs' widgets no longer shown
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            drawn = shows.get(id(output), [])
            if not drawn:
                outputs.append(output)
                continue
            root = output["data"][WIDGET_VIEW]["model_id"]
            if root not in converted and _has_content(root, states):
                outputs.append(output)
            else:
                dropped.add(root)
            outputs.extend(_figure_output(figures[m]) for m in drawn)
            written += len(drawn)
        cell.outputs = outputs
    _forget(states, dropped, nb)
    if not states:
        del nb.metadata["widgets"]
    return written


def _is_plotly(saved: dict[str, Any]) -> bool:
    return "plotly" in str(saved.get("state", {}).get("_anywidget_id", ""))


def _saved_figure(saved: dict[str, Any]) -> dict[str, Any]:
    """The figure a figure widget's saved state holds: the one it was displayed with."""
    state = saved.get("state", {})
    return {"data": state.get("_widget_data") or [], "layout": state.get("_widget_layout") or {}}


def _figures_in(root: str, states: dict[str, Any], figures: dict[str, Any]) -> Iterator[str]:
    """The figures a widget shows, in the order its boxes show them (depth first)."""
    if root in figures:
        yield root
        return
    children = states.get(root, {}).get("state", {}).get("children")
    for child in children if isinstance(children, list) else []:
        if isinstance(child, str) and child.startswith(_REF):
            yield from _figures_in(child[len(_REF) :], states, figures)


def _has_content(root: str, states: dict[str, Any]) -> bool:
    """Whether a widget shows something besides boxes (a table, a control, a label)."""
    saved = states.get(root, {})
    if str(saved.get("model_name", "")) not in _BOXES:
        return bool(saved)
    children = saved.get("state", {}).get("children") or []
    return any(isinstance(c, str) and _has_content(c[len(_REF) :], states) for c in children)


_BOXES = {"BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel"}


def _forget(states: dict[str, Any], dropped: set[str], nb: Any) -> None:
    """Drop the saved state of the widgets ``dropped`` and of what they refer to (boxes'
    children, layouts), except what any other widget, or an output still shown, refers to."""
    gone = set(_closure(dropped, states))
    keep = {
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if WIDGET_VIEW in output.get("data", {})
    }
    keep |= set(states) - gone
    for model_id in gone - set(_closure(keep, states)):
        states.pop(model_id, None)


def _closure(roots: set[str], states: dict[str, Any]) -> Iterator[str]:
    """``roots`` and every model their saved states refer to, at any depth."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        model_id = todo.pop()
        if model_id in seen:
            continue
        seen.add(model_id)
        yield model_id
        todo.extend(_refs(states.get(model_id, {})))


def _refs(value: Any) -> Iterator[str]:
    """Every model a saved state refers to: ``IPY_MODEL_`` strings anywhere in it, and the
    widgets an Output widget shows."""
    if isinstance(value, str):
        if value.startswith(_REF):
            yield value[len(_REF) :]
    elif isinstance(value, dict):
        view = value.get(WIDGET_VIEW)
        if isinstance(view, dict) and isinstance(view.get("model_id"), str):
            yield view["model_id"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _figure_output(figure: dict[str, Any]) -> Any:
    """A figure as plotly's renderer for JupyterLab writes it."""
    import plotly.io as pio

    title = figure.get("layout", {}).get("title", {})
    text = title.get("text") if isinstance(title, dict) else None
    return nbformat.v4.new_output(
        "display_data",
        data={
            PLOTLY_MIME: figure,
            "text/html": pio.to_html(
                figure, include_plotlyjs="cdn", full_html=False, validate=False
            ),
            "text/plain": f"<Figure: {text}>" if text else "<Figure>",
        },
    )
