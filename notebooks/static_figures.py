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

import copy
from collections.abc import Iterator
from typing import Any

import nbformat
import numpy as np

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
    empty boxes goes. The figures' saved state goes, and so does that of every widget no
    output shows any more. Returns how many figure outputs were written.

    Left as widgets, with their state: what an Output widget shows (its boxes are shared with
    it), and the figures a tab, accordion or stack holds directly (their titles go by place).
    """
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    states: dict[str, Any] = widgets.get("state", {})
    figures = {m: _saved_figure(s) for m, s in states.items() if _is_plotly(s)}
    figures.update((m, f) for m, f in collected_figures.items() if m in figures)
    if not figures:
        return 0
    inside_outputs = set(
        _closure(
            {r for s in states.values() if s.get("model_name") == "OutputModel" for r in _refs(s)},
            states,
        )
    )
    # Which figures each output shows, before any box is changed (one box may be shown twice).
    shows = {
        id(output): list(
            _figures_in(
                output["data"][WIDGET_VIEW]["model_id"], states, figures, inside_outputs, set()
            )
        )
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if WIDGET_VIEW in output.get("data", {})
    }
    converted = {m for drawn in shows.values() for m in drawn}
    for model_id, saved in states.items():  # the boxes' figures become outputs of their own
        children = saved.get("state", {}).get("children")
        if saved.get("model_name") in _BOXES and model_id not in inside_outputs:
            saved["state"]["children"] = [c for c in children if _id(c) not in converted]
    written = 0
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
            if root not in converted and _has_content(root, states, set()):
                outputs.append(output)
            outputs.extend(_figure_output(figures[m]) for m in drawn)
            written += len(drawn)
        cell.outputs = outputs
    _forget(states, nb)
    if not states:
        del nb.metadata["widgets"]
    return written


def _id(ref: Any) -> str | None:
    """The model id of an ``IPY_MODEL_`` reference, else None."""
    return ref[len(_REF) :] if isinstance(ref, str) and ref.startswith(_REF) else None


def _is_plotly(saved: dict[str, Any]) -> bool:
    state = saved.get("state", {})
    kind = str(state.get("_anywidget_id", ""))
    return kind.startswith("plotly.") and kind.endswith("FigureWidget") and "_widget_data" in state


def _saved_figure(saved: dict[str, Any]) -> dict[str, Any]:
    """The figure a figure widget's saved state holds: the one it was displayed with, its
    arrays (stored beside the state as binary buffers) as plotly's typed arrays."""
    state = copy.deepcopy(saved.get("state", {}))
    for buffer in saved.get("buffers", []):
        path = list(buffer.get("path", []))
        if len(path) < 2 or path[0] not in ("_widget_data", "_widget_layout"):
            continue
        holder: Any = state
        try:
            for key in path[:-2]:
                holder = holder[key]
            spec = holder[path[-2]]
            typed = {"dtype": np.dtype(spec["dtype"]).str[1:], "bdata": buffer["data"]}
        except (KeyError, IndexError, TypeError):
            continue
        shape = spec.get("shape") or []
        if len(shape) > 1:
            typed["shape"] = ",".join(str(n) for n in shape)
        holder[path[-2]] = typed
    return {"data": state.get("_widget_data") or [], "layout": state.get("_widget_layout") or {}}


def _figures_in(
    root: str,
    states: dict[str, Any],
    figures: dict[str, Any],
    inside_outputs: set[str],
    seen: set[str],
) -> Iterator[str]:
    """The figures a widget shows, in the order its boxes show them (depth first); not those
    of boxes an Output widget shows too, nor a tab's (accordion's, stack's) own."""
    if root in figures:
        yield root
        return
    if root in seen or root in inside_outputs:
        return
    seen.add(root)
    saved = states.get(root, {})
    name = saved.get("model_name")
    if name not in _BOXES and name not in _SELECTIONS:
        return
    for child in map(_id, saved.get("state", {}).get("children") or []):
        if child is not None and not (name in _SELECTIONS and child in figures):
            yield from _figures_in(child, states, figures, inside_outputs, seen)


def _has_content(root: str, states: dict[str, Any], seen: set[str]) -> bool:
    """Whether a widget shows something besides boxes (a table, a control, a label)."""
    if root in seen:
        return False
    seen.add(root)
    saved = states.get(root, {})
    if str(saved.get("model_name", "")) not in _BOXES:
        return bool(saved)
    children = saved.get("state", {}).get("children") or []
    return any(c is not None and _has_content(c, states, seen) for c in map(_id, children))


_BOXES = {"BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel"}
#: Containers whose children go with titles by place: never changed.
_SELECTIONS = {"TabModel", "AccordionModel", "StackModel"}


def _forget(states: dict[str, Any], nb: Any) -> None:
    """Keep the saved state of what the outputs show, of what that refers to (boxes'
    children, layouts, the widgets an Output widget shows), and of widgets that refer to any
    of it (a link between two sliders); drop the rest: the figures written out, and widgets
    no output shows (a box of curves built but never displayed)."""
    roots = {
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if WIDGET_VIEW in output.get("data", {})
    }
    shown = set(_closure(roots, states))
    linked = {m for m, s in states.items() if m not in shown and set(_refs(s)) & shown}
    keep = shown | set(_closure(linked, states))
    for model_id in set(states) - keep:
        del states[model_id]


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
