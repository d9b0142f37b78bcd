"""The compact summary shown under a tracked cell: HTML in a notebook, plain text elsewhere."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunSummary"]

_STATUS_COLOURS = {
    "FINISHED": "#1a7f37",
    "FAILED": "#cf222e",
    "KILLED": "#9a6700",
    "RUNNING": "#0969da",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _duration(run: Any) -> str:
    if run.info.end_time is None:
        return "running"
    seconds = (run.info.end_time - run.info.start_time) / 1000
    return f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclass
class RunSummary:
    """A run, what was captured automatically, and anything the user should know."""

    run: Any
    experiment: str
    captured_params: list[str] = field(default_factory=list)
    captured_metrics: list[str] = field(default_factory=list)
    snapshots: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def _lines(self) -> list[tuple[str, str]]:
        run = self.run
        data = run.data
        rows = [
            ("run", f"{run.info.run_name}  ({run.info.run_id})"),
            ("experiment", self.experiment),
            ("status", f"{run.info.status}  in {_duration(run)}"),
        ]
        if data.params:
            rows.append(
                ("params", ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(data.params.items())))
            )
        if data.metrics:
            rows.append(
                ("metrics", ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(data.metrics.items())))
            )
        captured = []
        if self.captured_params:
            captured.append("params " + ", ".join(self.captured_params))
        if self.captured_metrics:
            captured.append("metrics " + ", ".join(self.captured_metrics))
        if captured:
            rows.append(("captured", "; ".join(captured) + " (from the cell's variables)"))
        if self.snapshots:
            rows.append(
                ("snapshot", ", ".join(f"{k} {v[:10]}" for k, v in sorted(self.snapshots.items())))
            )
        rows.append(("details", f"%nbtrack show {run.info.run_id[:8]}"))
        rows += [("note", n) for n in self.notes]
        return rows

    def __repr__(self) -> str:
        rows = self._lines()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def _repr_html_(self) -> str:
        status = self.run.info.status
        colour = _STATUS_COLOURS.get(status, "#57606a")
        cells = []
        for key, value in self._lines():
            text = html.escape(value)
            if key == "status":
                text = f'<span style="color:{colour};font-weight:600">{text}</span>'
            cells.append(
                f'<tr><th style="text-align:left;padding:1px 10px 1px 0;color:#57606a;'
                f'font-weight:normal;vertical-align:top">{html.escape(key)}</th>'
                f'<td style="text-align:left;padding:1px 0">{text}</td></tr>'
            )
        return (
            f'<div style="border-left:3px solid {colour};padding:2px 0 2px 10px;'
            f'font-size:12px"><table style="border-collapse:collapse">{"".join(cells)}'
            "</table></div>"
        )
