"""Registry stage controls: a registered model's versions, their stages and aliases, inline.

One row per version, newest first: the version, a stage dropdown, its aliases (each with a
remove button, and a box to add one), the run it came from, when it was created, and that run's
metrics side by side, the best value of each marked (lower is better for losses and errors, as
in the comparison table). Moving a version to Production first shows a confirmation panel with
its metrics beside the current Production version's; other stage changes apply at once. The
audit trail (every stage and alias change, who, when, why) is shown below and refreshed after
each change. Errors from the registry (a bad alias, a model deleted meanwhile) show inline.
"""

from __future__ import annotations

import datetime
import html
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

import nbtrack
from nbtrack.registry.entities import ModelVersion, ModelVersionStage, RegistryEvent

from .table import BEST_STYLE, ERROR_STYLE, _fmt, guess_direction

__all__ = ["RegistryControls", "registry"]

STAGES = ModelVersionStage.ALL
_STAGE_COLORS = {"Production": "#1a7f37", "Staging": "#9a6700", "Archived": "#57606a"}


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _best_of(values: dict[str, Any], direction: str) -> set[str]:
    """The keys of ``values`` holding the best number (all of them on a tie)."""
    numbers = {k: v for k, v in values.items() if _number(v)}
    if not numbers:
        return set()
    best = min(numbers.values()) if direction == "min" else max(numbers.values())
    return {k for k, v in numbers.items() if v == best}


def _stage_html(stage: str) -> str:
    color = _STAGE_COLORS.get(stage, "#24292f")
    return f"<span style='color:{color};font-weight:600'>{html.escape(stage)}</span>"


class RegistryControls(widgets.VBox):
    """The versions of one registered model with stage and alias controls; see :func:`registry`.

    After each change the versions and the audit trail are read again from the store.
    ``rows`` holds what the table shows, ``events`` the audit trail (oldest first).
    """

    def __init__(
        self,
        name: str,
        metrics: Sequence[str] | None = None,
        directions: dict[str, str] | None = None,
        client: nbtrack.Client | None = None,
        tracking_uri: str | os.PathLike[str] | None = None,
        max_events: int = 100,
    ):
        if client is not None and tracking_uri is not None:
            raise ValueError("give client= or tracking_uri=, not both")
        for metric, direction in (directions or {}).items():
            if direction not in ("min", "max"):
                raise ValueError(
                    f"direction of {metric!r} must be 'min' or 'max'; got {direction!r}"
                )
        self.client = client or nbtrack.Client(tracking_uri)
        self.name = self.client.get_registered_model(name).name  # raises if there is none
        self.metrics = list(metrics) if metrics is not None else None
        self.directions = dict(directions or {})
        self.max_events = max_events
        self.versions: list[ModelVersion] = []
        self.runs: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.metric_keys: list[str] = []
        self.events: list[RegistryEvent] = []
        self.pending: str | None = None  # the version waiting for confirmation to Production
        self._quiet = False

        self.header = widgets.HTML()
        self.refresh_button = widgets.Button(
            description="refresh", tooltip="read the registry again", layout={"width": "80px"}
        )
        self.comment = widgets.Text(
            description="comment",
            placeholder="why (recorded with the next change)",
            layout={"width": "60%"},
        )
        self.grid = widgets.GridBox()
        self.message = widgets.HTML()
        self.stage_dropdowns: dict[str, widgets.Dropdown] = {}
        self.alias_boxes: dict[str, widgets.Text] = {}
        self.add_buttons: dict[str, widgets.Button] = {}
        self.remove_buttons: dict[str, dict[str, widgets.Button]] = {}

        self.confirm_title = widgets.HTML()
        self.confirm_metrics = widgets.HTML()
        self.archive_existing = widgets.Checkbox(
            value=True, description="archive the current Production version", indent=False
        )
        self.confirm_comment = widgets.Text(description="comment", placeholder="optional")
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirmation = widgets.VBox(
            layout={"border": "1px solid #d0d7de", "padding": "6px", "display": "none"}
        )
        self.confirmation.children = [
            self.confirm_title,
            self.confirm_metrics,
            self.archive_existing,
            self.confirm_comment,
            widgets.HBox([self.confirm_button, self.cancel_button]),
        ]
        self.trail = widgets.HTML()

        self.refresh_button.on_click(lambda _: self.refresh())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.cancel_button.on_click(lambda _: self.cancel())
        super().__init__(
            [
                widgets.HBox([self.header, self.refresh_button]),
                self.comment,
                self.grid,
                self.message,
                self.confirmation,
                widgets.HTML("<b>audit trail</b> (newest first)"),
                self.trail,
            ]
        )
        self.refresh()

    # -- data -----------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Read the versions, their runs and the audit trail again; False (and the error shown
        inline, the last rows kept) if the registry could not be read."""
        try:
            versions = self.client.search_model_versions(f"name = '{self.name}'")
            events = self.client.get_model_history(self.name)
            if not versions:
                self.client.get_registered_model(self.name)  # raises if it was deleted
        except nbtrack.NbtrackError as exc:
            self._show_error(str(exc))
            return False
        self.versions = versions
        self.events = events
        self.runs = {}
        for v in versions:
            if v.run_id and v.run_id not in self.runs:
                try:
                    self.runs[v.run_id] = self.client.get_run(v.run_id)
                except nbtrack.NbtrackError:
                    self.runs[v.run_id] = None  # the run was deleted: no metrics to show
        self.metric_keys = self._metric_keys()
        self.rows = [self._row(v) for v in versions]
        if self.pending is not None and self._stage(self.pending, None) in (
            None,
            ModelVersionStage.PRODUCTION,
        ):  # deleted, or moved to Production elsewhere, meanwhile
            self._close_confirmation()
        self._render()
        return True

    def _metric_keys(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        keysets = [set(run.data.metrics) for run in self.runs.values() if run is not None]
        if not keysets:
            return []
        shared = set.intersection(*keysets)
        return sorted(shared or set.union(*keysets))

    def _run_metrics(self, run_id: str | None) -> dict[str, float]:
        run = self.runs.get(run_id) if run_id else None
        return dict(run.data.metrics) if run is not None else {}

    def _row(self, version: ModelVersion) -> dict[str, Any]:
        run = self.runs.get(version.run_id) if version.run_id else None
        metrics = self._run_metrics(version.run_id)
        return {
            "version": version.version,
            "stage": version.current_stage,
            "aliases": sorted(version.aliases),
            "run_id": version.run_id,
            "run_name": run.info.run_name if run is not None else None,
            "run_found": run is not None,
            "created": version.creation_timestamp,
            **{f"metrics.{k}": metrics.get(k) for k in self.metric_keys},
        }

    def direction(self, metric: str) -> str:
        """``"min"`` or ``"max"``: as given in ``directions``, else guessed from the name."""
        return self.directions.get(metric, guess_direction(metric))

    def best(self) -> dict[str, set[str]]:
        """``metric -> versions`` holding its best value."""
        out = {}
        for key in self.metric_keys:
            values = {r["version"]: r[f"metrics.{key}"] for r in self.rows}
            out[key] = _best_of(values, self.direction(key))
        return out

    def production_versions(self, exclude: str | None = None) -> list[str]:
        """The versions in Production now (newest first), but ``exclude``."""
        return [
            v.version
            for v in self.versions
            if v.current_stage == ModelVersionStage.PRODUCTION and v.version != exclude
        ]

    def _stage(self, version: str, default: str | None = ModelVersionStage.NONE) -> str | None:
        for v in self.versions:
            if v.version == version:
                return v.current_stage
        return default

    # -- view -----------------------------------------------------------------------------------

    def _render(self) -> None:
        count = len(self.versions)
        self.header.value = (
            f"<b style='font-size:1.1em'>{html.escape(self.name)}</b> · "
            f"{count} version{'' if count == 1 else 's'}"
        )
        columns = ["version", "stage", "aliases", "run", "created", *self.metric_keys]
        cells: list[widgets.Widget] = [widgets.HTML(f"<b>{html.escape(c)}</b>") for c in columns]
        best = self.best()
        self.stage_dropdowns = {}
        self.alias_boxes = {}
        self.add_buttons = {}
        self.remove_buttons = {}
        for row in self.rows:
            version = row["version"]
            cells.append(widgets.HTML(f"<b>{version}</b>"))
            cells.append(self._stage_control(version, row["stage"]))
            cells.append(self._alias_editor(version, row["aliases"]))
            cells.append(widgets.HTML(self._run_html(row)))
            cells.append(widgets.HTML(html.escape(_when(row["created"]))))
            for key in self.metric_keys:
                text = html.escape(_fmt(row[f"metrics.{key}"]))
                if version in best[key]:
                    text = f"<span style='{BEST_STYLE}'>{text}</span>"
                cells.append(widgets.HTML(text))
        self.grid.children = cells
        self.grid.layout = widgets.Layout(
            grid_template_columns=f"repeat({len(columns)}, max-content)",
            grid_gap="4px 14px",
            align_items="center",
        )
        self.trail.value = self._trail_html()

    def _stage_control(self, version: str, stage: str) -> widgets.Dropdown:
        shown = ModelVersionStage.PRODUCTION if version == self.pending else stage
        dropdown = widgets.Dropdown(options=list(STAGES), value=shown, layout={"width": "120px"})
        dropdown.observe(
            lambda change, v=version: self._stage_chosen(v, change["new"]), names="value"
        )
        self.stage_dropdowns[version] = dropdown
        return dropdown

    def _alias_editor(self, version: str, aliases: list[str]) -> widgets.HBox:
        removes = {}
        for alias in aliases:
            button = widgets.Button(
                description=f"{alias} ✕",
                tooltip=f"remove the alias {alias!r}",
                layout={"width": "auto"},
            )
            button.on_click(lambda _, a=alias: self.remove_alias(a))
            removes[alias] = button
        box = widgets.Text(placeholder="new alias", layout={"width": "110px"})
        add = widgets.Button(
            description="add", tooltip="point this alias at this version", layout={"width": "48px"}
        )
        add.on_click(lambda _, v=version: self.add_alias(v))
        self.remove_buttons[version] = removes
        self.alias_boxes[version] = box
        self.add_buttons[version] = add
        return widgets.HBox([*removes.values(), box, add])

    @staticmethod
    def _run_html(row: dict[str, Any]) -> str:
        run_id = row["run_id"]
        if not run_id:
            return "<i>no run</i>"
        short = f"<code>{html.escape(run_id[:8])}</code>"
        if not row["run_found"]:
            return f"{short} <i>(run not found)</i>"
        name = row["run_name"]
        return f"{html.escape(name)} {short}" if name else short

    def _trail_html(self) -> str:
        if not self.events:
            return "<i>no changes recorded</i>"
        shown = list(reversed(self.events))[: self.max_events]
        head = "".join(
            f"<th style='text-align:left'>{c}</th>"
            for c in ("when", "kind", "version", "from → to", "who", "comment")
        )
        body = []
        for e in shown:
            change = f"{e.from_value or '—'} → {e.to_value or '—'}"
            tds = (
                _when(e.timestamp),
                e.kind.replace("alias:", "alias "),
                e.version or "",
                change,
                e.user_id or "",
                e.comment or "",
            )
            body.append("<tr>" + "".join(f"<td>{html.escape(t)}</td>" for t in tds) + "</tr>")
        more = (
            f"<div style='color:#57606a'>the latest {self.max_events} of {len(self.events)}</div>"
            if len(self.events) > self.max_events
            else ""
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"

    def _show_error(self, text: str) -> None:
        self.message.value = (
            f"<pre style='{ERROR_STYLE};margin:0;white-space:pre-wrap'>{html.escape(text)}</pre>"
        )

    def _show_note(self, text: str) -> None:
        self.message.value = f"<span style='color:#1a7f37'>{html.escape(text)}</span>"

    # -- changes --------------------------------------------------------------------------------

    def _apply(self, change: Callable[[], Any], done: str) -> bool:
        """Make a change through the client, then read everything again; any error inline."""
        try:
            change()
        except nbtrack.NbtrackError as exc:
            if not self.refresh():
                self._render()  # the controls back to the last state read
            self._show_error(str(exc))
            return False
        if self.refresh():
            self._show_note(done)
        return True

    def _comment(self, box: widgets.Text) -> str | None:
        return box.value.strip() or None

    def _stage_chosen(self, version: str, stage: str) -> None:
        if self._quiet:
            return
        if stage == ModelVersionStage.PRODUCTION and self._stage(version) != stage:
            self._ask_production(version)
            return
        if self.pending == version:  # moved away from Production before confirming
            self._close_confirmation()
        if stage == self._stage(version):
            return
        self.set_stage(version, stage)

    def set_stage(
        self,
        version: str,
        stage: str,
        archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> bool:
        """Move ``version`` to ``stage`` now (no confirmation), with ``comment`` or the comment
        box's text; True if it moved."""
        note = comment if comment is not None else self._comment(self.comment)
        archived = self.production_versions(exclude=version) if archive_existing_versions else []
        done = f"version {version} moved to {stage}"
        if archived and stage == ModelVersionStage.PRODUCTION:
            done += f"; version {', '.join(archived)} archived"
        ok = self._apply(
            lambda: self.client.transition_model_version_stage(
                self.name, version, stage, archive_existing_versions, note
            ),
            done,
        )
        if ok:
            self.comment.value = ""
        return ok

    def _ask_production(self, version: str) -> None:
        if self.pending is not None and self.pending != version:
            self._restore(self.pending)
        self.pending = version
        current = self.production_versions(exclude=version)
        self.confirm_title.value = (
            f"<b>Move version {html.escape(version)} of {html.escape(self.name)} to "
            "Production?</b>"
            + (
                f" Version {', '.join(current)} {'is' if len(current) == 1 else 'are'} in "
                "Production now."
                if current
                else " No version is in Production now."
            )
        )
        self.confirm_metrics.value = self._comparison_html(version, current)
        self.archive_existing.value = True
        self.archive_existing.disabled = not current
        self.archive_existing.description = (
            f"archive the current Production version ({', '.join(current)})"
            if current
            else "archive the current Production version (there is none)"
        )
        self.confirm_comment.value = self.comment.value
        self.confirmation.layout.display = "flex"
        self.message.value = ""

    def _comparison_html(self, version: str, current: list[str]) -> str:
        """The candidate's metrics beside the Production versions', the better ones marked."""
        by_version = {v.version: v for v in self.versions}
        shown = [version, *current]
        values = {v: self._run_metrics(by_version[v].run_id) for v in shown}
        if self.metrics is not None:
            keys = list(self.metrics)
        else:
            keys = sorted({k for metrics in values.values() for k in metrics})
        if not keys:
            return "<i>no metrics to compare</i>"
        head = "<th></th>" + "".join(
            f"<th style='text-align:left'>version {html.escape(v)} "
            f"({'candidate' if v == version else 'Production'})</th>"
            for v in shown
        )
        body = []
        for key in keys:
            best = _best_of({v: values[v].get(key) for v in shown}, self.direction(key))
            tds = []
            for v in shown:
                text = html.escape(_fmt(values[v].get(key)))
                style = f" style='{BEST_STYLE}'" if v in best and len(shown) > 1 else ""
                tds.append(f"<td{style}>{text}</td>")
            body.append(f"<tr><td><code>{html.escape(key)}</code></td>{''.join(tds)}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def confirm(self) -> bool:
        """Move the version waiting for confirmation to Production (archiving the current one
        if the box is ticked); True if it moved."""
        version = self.pending
        if version is None:
            return False
        archive = self.archive_existing.value and bool(self.production_versions(version))
        comment = self._comment(self.confirm_comment)
        self._close_confirmation()
        ok = self.set_stage(version, ModelVersionStage.PRODUCTION, archive, comment)
        if not ok:
            self._restore(version)
        return ok

    def cancel(self) -> None:
        """Change nothing: close the confirmation and put the dropdown back."""
        version = self.pending
        self._close_confirmation()
        if version is not None:
            self._restore(version)
        self.message.value = ""

    def _close_confirmation(self) -> None:
        self.pending = None
        self.confirmation.layout.display = "none"

    def _restore(self, version: str) -> None:
        dropdown = self.stage_dropdowns.get(version)
        if dropdown is None:
            return
        self._quiet = True
        try:
            dropdown.value = self._stage(version)
        finally:
            self._quiet = False

    def add_alias(self, version: str, alias: str | None = None) -> bool:
        """Point ``alias`` (default: the text in the version's box) at ``version``; an invalid
        alias shows the registry's error and changes nothing. True if it was set."""
        text = (alias if alias is not None else self.alias_boxes[version].value).strip()
        if not text:
            self._show_error("type an alias first, like 'champion'")
            return False
        box_text = self.alias_boxes[version].value
        ok = self._apply(
            lambda: self.client.set_registered_model_alias(
                self.name, text, version, self._comment(self.comment)
            ),
            f"alias {text!r} now points at version {version}",
        )
        if ok:
            self.comment.value = ""
        elif version in self.alias_boxes:
            self.alias_boxes[version].value = box_text  # keep what was typed, to fix it
        return ok

    def remove_alias(self, alias: str) -> bool:
        """Remove ``alias`` from the model; True if it was removed."""
        ok = self._apply(
            lambda: self.client.delete_registered_model_alias(
                self.name, alias, self._comment(self.comment)
            ),
            f"alias {alias!r} removed",
        )
        if ok:
            self.comment.value = ""
        return ok

    # -- static rendering -----------------------------------------------------------------------

    def to_html(self) -> str:
        """The versions and the audit trail as HTML: the rendering where no widget front end
        runs."""
        columns = ["version", "stage", "aliases", "run", "created", *self.metric_keys]
        best = self.best()
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
        body = []
        for row in self.rows:
            version = row["version"]
            tds = [
                f"<b>{html.escape(version)}</b>",
                _stage_html(row["stage"]),
                ", ".join(f"<code>@{html.escape(a)}</code>" for a in row["aliases"]),
                self._run_html(row),
                html.escape(_when(row["created"])),
            ]
            cells = [f"<td>{t}</td>" for t in tds]
            for key in self.metric_keys:
                text = html.escape(_fmt(row[f"metrics.{key}"]))
                style = f" style='{BEST_STYLE}'" if version in best[key] else ""
                cells.append(f"<td{style}>{text}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        return (
            f"<div><b>{html.escape(self.name)}</b> · {len(self.rows)} version(s)</div>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<div><b>audit trail</b> (newest first)</div>{self._trail_html()}"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = f"RegistryControls({self.name!r}, {len(self.rows)} versions)"
        return bundle


def registry(
    name: str,
    metrics: Sequence[str] | None = None,
    directions: dict[str, str] | None = None,
    client: nbtrack.Client | None = None,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> RegistryControls:
    """Stage and alias controls for the registered model ``name``, with its audit trail.

    Parameters
    ----------
    name
        The registered model.
    metrics
        The run metrics to show per version (default: those all the versions' runs have, or
        all their metrics when they share none).
    directions
        ``{"metric": "min" | "max"}`` where the guess (losses and errors lower) is wrong.
    client, tracking_uri
        The store to use (default: the tracking URI in force).

    Examples
    --------
    >>> nbtrack_widgets.registry("churn-rf")  # doctest: +SKIP
    """
    return RegistryControls(
        name, metrics=metrics, directions=directions, client=client, tracking_uri=tracking_uri
    )
