"""The comparison view: the run table, and the curves of the runs ticked in it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .curves import MetricCurves
from .table import RunTable

__all__ = ["Comparison", "compare"]


class Comparison(widgets.VBox):
    """A :class:`RunTable`; ticking runs draws their metric curves below it."""

    def __init__(self, table: RunTable, metrics: Sequence[str] | None = None):
        self.table = table
        self.metrics = metrics
        self.curves: MetricCurves | None = None
        self.hint = widgets.HTML("<i>tick runs to draw their metric curves</i>")
        self.area = widgets.VBox([self.hint])
        table.on_select(self._selected)
        super().__init__([table, self.area])

    def _selected(self, run_ids: list[str]) -> None:
        if not run_ids:
            self.curves = None
            self.area.children = [self.hint]
            return
        keys = self._keys(run_ids)
        with_metrics = [m for m in (self.metrics or []) if m in keys]
        self.curves = MetricCurves(run_ids, metrics=with_metrics or None)
        self.area.children = [self.curves]

    def _keys(self, run_ids: list[str]) -> set[str]:
        return {
            c.removeprefix("metrics.")
            for row in self.table.rows
            if row["run_id"] in run_ids
            for c in row
            if c.startswith("metrics.")
        }

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.table.to_html() + (self.curves.to_html() if self.curves else "")
        bundle["text/plain"] = f"Comparison({len(self.table.rows)} runs)"
        return bundle


def compare(
    experiment: str | None = None,
    run_ids: Sequence[str] | None = None,
    filter_string: str = "",
    metrics: Sequence[str] | None = None,
    directions: dict[str, str] | None = None,
    max_runs: int = 500,
    page_size: int = 20,
) -> Comparison:
    """Compare runs in a table (sort, filter, tick to plot), with curves of the ticked runs.

    Parameters
    ----------
    experiment, run_ids
        The runs: an experiment's (latest ``max_runs``), or these ids.
    filter_string
        Initial text of the filter box (``search_runs``' language, with OR and parentheses).
    metrics
        Metrics to plot for ticked runs (default: all they have).
    directions
        ``{"metric": "min" | "max"}`` where the guess (losses and errors lower) is wrong.
    """
    table = RunTable(
        experiment=experiment,
        run_ids=run_ids,
        filter_string=filter_string,
        directions=directions,
        max_runs=max_runs,
        page_size=page_size,
    )
    return Comparison(table, metrics=metrics)
