"""The run comparison table: sortable, filterable, a checkbox per row, the best values marked.

Rows are runs; columns are the name, status, start, duration, the params (by default only those
that differ between the runs shown; a toggle shows all) and the latest metrics. The filter box
takes ``search_runs``' language; a bad filter shows a message under the box, not a traceback.
The best value of each metric column is highlighted: lower is better for names with loss, error,
rmse, mae, mse, mape or perplexity, higher otherwise (``directions`` overrides).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

import nbtrack

__all__ = ["RunTable", "guess_direction"]

#: How the best value of a metric is marked (the registry controls use it too).
BEST_STYLE = "background:#dafbe1;font-weight:600"
#: How an inline error reads.
ERROR_STYLE = "color:#cf222e"

_LOWER = ("loss", "error", "err", "rmse", "mae", "mse", "mape", "perplexity", "time", "latency")


def guess_direction(metric: str) -> str:
    """``"min"`` for losses and errors, else ``"max"``."""
    name = metric.lower()
    return "min" if any(word in name for word in _LOWER) else "max"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class RunTable(widgets.VBox):
    """Runs of an experiment (or given ids) side by side; see :func:`nbtrack_widgets.compare`."""

    def __init__(
        self,
        experiment: str | None = None,
        run_ids: Sequence[str] | None = None,
        filter_string: str = "",
        max_runs: int = 500,
        page_size: int = 20,
        directions: dict[str, str] | None = None,
    ):
        if experiment is None and run_ids is None:
            raise ValueError("give experiment='name' or run_ids=[...]")
        for metric, direction in (directions or {}).items():
            if direction not in ("min", "max"):
                raise ValueError(
                    f"direction of {metric!r} must be 'min' or 'max'; got {direction!r}"
                )
        if experiment is not None and nbtrack.get_experiment_by_name(experiment) is None:
            known = ", ".join(repr(e.name) for e in nbtrack.search_experiments())
            raise nbtrack.exceptions.ExperimentNotFoundError(
                f"no experiment named {experiment!r}; experiments: {known}"
            )
        self.experiment = experiment
        self.run_ids = list(run_ids) if run_ids is not None else None
        self.max_runs = max_runs
        self.page_size = page_size
        self.directions = dict(directions or {})
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        # a first search that fails (a bad filter) leaves an empty table with its message
        self._metric_keys: list[str] = []
        self._param_keys: list[str] = []
        self._selected: list[str] = []
        self._listeners: list[Callable[[list[str]], None]] = []
        self.filter = widgets.Text(
            value=filter_string,
            placeholder="metrics.acc > 0.9 OR params.model = 'rf'",
            description="filter",
            continuous_update=False,
            layout={"width": "60%"},
        )
        self.message = widgets.HTML()
        self.sort_by = widgets.Dropdown(description="sort by", options=["start"], value="start")
        self.descending = widgets.ToggleButtons(options=["descending", "ascending"])
        self.all_params = widgets.Checkbox(value=False, description="all params")
        self.page = 0
        self.prev_button = widgets.Button(description="previous", layout={"width": "80px"})
        self.next_button = widgets.Button(description="next", layout={"width": "80px"})
        self.page_label = widgets.Label()
        self.grid = widgets.GridBox()
        self.checkboxes: dict[str, widgets.Checkbox] = {}
        self.filter.observe(lambda _: self.refresh(), names="value")
        for control in (self.sort_by, self.descending, self.all_params):
            control.observe(lambda _: self._render(), names="value")
        self.prev_button.on_click(lambda _: self.go_to(self.page - 1))
        self.next_button.on_click(lambda _: self.go_to(self.page + 1))
        super().__init__(
            [
                widgets.HBox([self.filter, self.all_params]),
                self.message,
                widgets.HBox([self.sort_by, self.descending]),
                self.grid,
                widgets.HBox([self.prev_button, self.page_label, self.next_button]),
            ]
        )
        self.refresh()

    # -- data -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Search again with the filter box's text."""
        try:
            if self.run_ids is not None:
                found: Any = nbtrack.search_runs(
                    search_all_experiments=True,
                    filter_string=self.filter.value,
                    max_results=100_000,
                    output_format="list",
                )
                wanted = set(self.run_ids)
                runs = [r for r in found if r.info.run_id in wanted]
            else:
                runs = nbtrack.search_runs(  # type: ignore[assignment]
                    experiment_names=[str(self.experiment)],
                    filter_string=self.filter.value,
                    max_results=self.max_runs,
                    output_format="list",
                )
        except nbtrack.NbtrackError as exc:
            self.message.value = (
                f"<pre style='{ERROR_STYLE};margin:0'>{html.escape(str(exc))}</pre>"
            )
            return
        self.message.value = ""
        self.rows = [self._row(r) for r in runs]
        metric_keys = sorted({k for r in runs for k in r.data.metrics})
        param_keys = sorted({k for r in runs for k in r.data.params})
        self._metric_keys = [f"metrics.{k}" for k in metric_keys]
        self._param_keys = [f"params.{k}" for k in param_keys]
        previous = self.sort_by.value
        self.sort_by.options = self._sortable()
        self.sort_by.value = previous if previous in self._sortable() else "start"
        self.page = 0
        self._render()

    def _row(self, run: Any) -> dict[str, Any]:
        info = run.info
        end = info.end_time
        row = {
            "run_id": info.run_id,
            "name": info.run_name,
            "status": info.status,
            "start": info.start_time,
            "duration": None if end is None else (end - info.start_time) / 1000,
        }
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        return row

    def _sortable(self) -> list[str]:
        return ["start", "name", "status", "duration", *self._metric_keys, *self._param_keys]

    def shown_columns(self) -> list[str]:
        """Columns as shown: params that differ between the runs (all with the toggle)."""
        params = self._param_keys
        if not self.all_params.value:
            params = [p for p in params if len({r.get(p) for r in self.rows}) > 1]
        return ["name", "status", "start", "duration", *params, *self._metric_keys]

    def sorted_rows(self) -> list[dict[str, Any]]:
        key = self.sort_by.value
        present = [r for r in self.rows if _fmt(r.get(key)) != ""]
        missing = [r for r in self.rows if _fmt(r.get(key)) == ""]
        present.sort(key=lambda r: r[key], reverse=self.descending.value == "descending")
        return present + missing  # missing values last, either way

    def best(self) -> dict[str, str]:
        """``metric column -> run_id`` of the best value, per the guessed or given direction."""
        out = {}
        for col in self._metric_keys:
            metric = col.removeprefix("metrics.")
            direction = self.directions.get(metric, guess_direction(metric))
            values = [
                (r[col], r["run_id"])
                for r in self.rows
                if isinstance(r.get(col), float) and not math.isnan(r[col])
            ]
            if values:
                out[col] = (min(values) if direction == "min" else max(values))[1]
        return out

    # -- view -----------------------------------------------------------------------------------

    def go_to(self, page: int) -> None:
        pages = max(1, math.ceil(len(self.rows) / self.page_size))
        self.page = min(max(page, 0), pages - 1)
        self._render()

    def page_rows(self) -> list[dict[str, Any]]:
        start = self.page * self.page_size
        return self.sorted_rows()[start : start + self.page_size]

    def _render(self) -> None:
        columns = self.shown_columns()
        best = self.best()
        header = [widgets.HTML("")] + [
            widgets.HTML(f"<b>{html.escape(c.split('.', 1)[-1])}</b>") for c in columns
        ]
        cells: list[widgets.Widget] = header
        self.checkboxes = {}
        for row in self.page_rows():
            box = widgets.Checkbox(
                value=row["run_id"] in self._selected, indent=False, layout={"width": "24px"}
            )
            box.observe(
                lambda change, rid=row["run_id"]: self._toggle(rid, change["new"]), names="value"
            )
            self.checkboxes[row["run_id"]] = box
            cells.append(box)
            for col in columns:
                text = html.escape(self._cell_text(col, row.get(col)))
                if best.get(col) == row["run_id"]:
                    text = f"<span style='{BEST_STYLE}'>{text}</span>"
                cells.append(widgets.HTML(text))
        self.grid.children = cells
        self.grid.layout = widgets.Layout(
            grid_template_columns=f"28px repeat({len(columns)}, max-content)", grid_gap="2px 14px"
        )
        pages = max(1, math.ceil(len(self.rows) / self.page_size))
        self.page_label.value = f"page {self.page + 1} of {pages} ({len(self.rows)} runs)"

    @staticmethod
    def _cell_text(col: str, value: Any) -> str:
        if col == "start" and value is not None:
            import datetime

            return datetime.datetime.fromtimestamp(value / 1000).strftime("%m-%d %H:%M:%S")
        if col == "duration" and value is not None:
            return f"{value:.1f}s"
        return _fmt(value)

    # -- selection ---------------------------------------------------------------------------

    @property
    def selected_run_ids(self) -> list[str]:
        return list(self._selected)

    def on_select(self, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback(selected_run_ids)`` whenever the selection changes."""
        self._listeners.append(callback)

    def _toggle(self, run_id: str, on: bool) -> None:
        if on and run_id not in self._selected:
            self._selected.append(run_id)
        elif not on and run_id in self._selected:
            self._selected.remove(run_id)
        for listener in self._listeners:
            listener(self.selected_run_ids)

    # -- static rendering -------------------------------------------------------------------

    def to_html(self) -> str:
        """All rows as an HTML table: the rendering where no widget front end runs."""
        columns = self.shown_columns()
        best = self.best()
        head = "".join(f"<th>{html.escape(c.split('.', 1)[-1])}</th>" for c in columns)
        body = []
        for row in self.sorted_rows():
            tds = []
            for col in columns:
                text = html.escape(self._cell_text(col, row.get(col)))
                style = (
                    f" style='{BEST_STYLE}'"
                    if best.get(col) == row["run_id"]
                    else ""
                )
                tds.append(f"<td{style}>{text}</td>")
            body.append(f"<tr>{''.join(tds)}</tr>")
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        return self.message.value + table  # a bad filter's message, as under the filter box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = f"RunTable({len(self.rows)} runs)"
        return bundle
