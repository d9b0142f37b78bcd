"""Running one notebook cell as a tracked run: what ``%%track`` does, as a plain function.

The cell runs in the user namespace exactly as it would without the magic: the same globals,
the value of a last expression displayed (as ``Out[n]``), IPython syntax (``!cmd``, ``%magic``)
transformed as usual, exceptions raised to the user with their traceback. Around it:

1. a run starts (in ``experiment`` if given, else the active experiment), linked to the run this
   same cell made last (by the front end's cell id, else by a hash of the source);
2. the snapshots are stored (executed history, notebook file, environment), unless told not to;
3. literal assignments in the cell are logged as params before it runs (see :mod:`.cellvars`);
4. the cell runs; metrics are then taken from its scalar variables with metric-like names;
5. the run ends FINISHED, FAILED (traceback kept, exception re-raised) or KILLED (interrupt),
   and a short summary is shown under the cell.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from dataclasses import dataclass, field
from typing import Any

from . import cellvars
from .exceptions import NbtrackError
from .summary import RunSummary

__all__ = ["TrackOptions", "run_tracked_cell"]

CELL_KEY_TAG = "nbtrack.cell.key"
PREVIOUS_RUN_TAG = "nbtrack.cell.previousRunId"

_last_run_of_cell: dict[str, str] = {}


@dataclass
class TrackOptions:
    experiment: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    nested: bool = False
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    capture: bool = True
    snapshot: bool = True
    keep_outputs: bool = False
    quiet: bool = False
    metric_patterns: tuple[str, ...] = cellvars.METRIC_PATTERNS


def _cell_key(shell: Any, cell: str) -> str:
    header = getattr(shell, "parent_header", None) or {}
    cell_id = (header.get("metadata") or {}).get("cellId")
    if cell_id:
        return f"id:{cell_id}"
    return "sha256:" + hashlib.sha256(cell.encode()).hexdigest()[:16]


def _execute(shell: Any, cell: str) -> Any:
    """Run ``cell`` in the user namespace; return the value of its last expression, if any."""
    __tracebackhide__ = True  # IPython shows the user's frames, not ours
    transformed = shell.transform_cell(cell)
    filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
    tree = ast.parse(transformed, filename=filename)
    last: ast.Expression | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    ns_globals, ns_locals = shell.user_global_ns, shell.user_ns
    exec(compile(tree, filename, "exec"), ns_globals, ns_locals)
    if last is not None:
        return eval(compile(last, filename, "eval"), ns_globals, ns_locals)
    return None


def run_tracked_cell(shell: Any, cell: str, options: TrackOptions) -> RunSummary:
    """Run ``cell`` as a tracked run; returns the summary (already displayed unless quiet)."""
    __tracebackhide__ = True
    from .tracking import fluent
    from .tracking.entities import ActiveRun

    client = fluent._client()
    experiment_id = None
    if options.experiment:
        experiment_id = client.get_or_create_experiment(options.experiment).experiment_id
    key = _cell_key(shell, cell)
    run = fluent.start_run(
        run_name=options.name,
        experiment_id=experiment_id,
        nested=options.nested,
        tags=options.tags or None,
    )
    run_id = run.info.run_id
    frame_client = fluent._stack[-1].client
    summary = RunSummary(run=run, experiment="")
    try:
        frame_client._set_internal_tag(run_id, CELL_KEY_TAG, key)
        previous = _last_run_of_cell.get(key)
        if previous:
            frame_client._set_internal_tag(run_id, PREVIOUS_RUN_TAG, previous)
        _last_run_of_cell[key] = run_id
        if options.snapshot:
            from .snapshot import capture_snapshots

            summary.snapshots = capture_snapshots(
                frame_client, run_id, shell=shell, keep_outputs=options.keep_outputs
            )
        if options.capture:
            for name, value in cellvars.literal_params(cell).items():
                if cellvars.looks_like_metric(name, options.metric_patterns):
                    continue  # `acc = 0.5` is a metric, taken after the cell
                try:
                    fluent.log_param(name, value)
                    summary.captured_params.append(name)
                except NbtrackError as exc:
                    summary.notes.append(f"param {name} not logged: {exc}")
        value = _execute(shell, cell)
    except BaseException:
        exc_type, error, tb = sys.exc_info()
        fluent._end_run_with_exception(run_id, exc_type, error, tb)
        _show(shell, _final(frame_client, run_id, summary), options)
        raise
    _capture_after(shell, cell, options, summary, frame_client, run_id)
    ActiveRun.__exit__(run, None, None, None)
    if value is not None:
        shell.displayhook(value)
    return _show(shell, _final(frame_client, run_id, summary), options)


def _capture_after(
    shell: Any, cell: str, options: TrackOptions, summary: RunSummary, client: Any, run_id: str
) -> None:
    from .tracking import fluent

    ns = shell.user_ns
    for name in options.params:
        if name not in ns:
            summary.notes.append(f"--params {name}: no such variable after the cell")
            continue
        try:
            fluent.log_param(name, ns[name])
            summary.captured_params.append(name)
        except NbtrackError as exc:
            summary.notes.append(f"--params {name}: {exc}")
    already = set(client.get_run(run_id).data.metrics)  # explicit log_metric calls win
    wanted: list[tuple[str, bool]] = [(n, True) for n in options.metrics]
    if options.capture:
        wanted += [
            (n, False)
            for n in cellvars.assigned_names(cell)
            if n not in options.metrics and cellvars.looks_like_metric(n, options.metric_patterns)
        ]
    for name, explicit in wanted:
        if name in already:
            continue
        if name not in ns:
            if explicit:
                summary.notes.append(f"--metrics {name}: no such variable after the cell")
            continue
        number = cellvars.scalar(ns[name])
        if number is None:
            if explicit:
                summary.notes.append(
                    f"--metrics {name}: {type(ns[name]).__name__} is not a single number"
                )
            continue
        fluent.log_metric(name, number)
        summary.captured_metrics.append(name)


def _final(client: Any, run_id: str, summary: RunSummary) -> RunSummary:
    summary.run = client.get_run(run_id)
    summary.experiment = client.get_experiment(summary.run.info.experiment_id).name
    return summary


def _show(shell: Any, summary: RunSummary, options: TrackOptions) -> RunSummary:
    if not options.quiet:
        from IPython.display import display

        display(summary)
    return summary
