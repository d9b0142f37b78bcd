"""Running one notebook cell as a tracked run: what ``%%track`` does, as a plain function.

The cell runs in the user namespace exactly as it would without the magic: the same globals,
the value of a last expression displayed (as ``Out[n]``), IPython syntax (``!cmd``, ``%magic``)
transformed as usual, exceptions raised to the user with their traceback. Around it:

0. the cell is compiled: a SyntaxError is raised before anything starts;
1. a run starts (in ``experiment`` if given, else the active experiment), linked to the run this
   same cell made last (by the front end's cell id, else by a hash of the source);
2. the snapshots are stored (executed history, notebook file, environment), unless told not to;
3. literal assignments in the cell are logged as params before it runs (see :mod:`.cellvars`);
4. the cell runs, watched by the installed observers (``nbtrack-widgets`` draws live metric
   curves under it; ``--no-live`` turns them off); metrics are then taken from its scalar
   variables with metric-like names;
5. the run ends FINISHED, FAILED (traceback kept, exception re-raised) or KILLED (interrupt),
   and a short summary is shown under the cell.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import sys
import tokenize
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any, NamedTuple, TypeVar

from . import cellvars
from .cell_observers import start_observers, stop_observers
from .exceptions import NbtrackError
from .summary import RunSummary

__all__ = [
    "CellCheck",
    "CompiledCell",
    "TrackOptions",
    "check_cell",
    "compile_cell",
    "replay_cell",
    "run_tracked_cell",
    "run_tracked_cell_async",
]

_T = TypeVar("_T")

CELL_KEY_TAG = "nbtrack.cell.key"
PREVIOUS_RUN_TAG = "nbtrack.cell.previousRunId"

# (tracking URI, cell key) -> the run the cell made last in that store
_last_run_of_cell: dict[tuple[str, str], str] = {}


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
    live: bool = True
    metric_patterns: tuple[str, ...] = cellvars.METRIC_PATTERNS


def _cell_key(shell: Any, cell: str) -> str:
    header = getattr(shell, "parent_header", None) or {}
    cell_id = (header.get("metadata") or {}).get("cellId")
    if cell_id:
        return f"id:{cell_id}"
    return "sha256:" + hashlib.sha256(cell.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class CompiledCell:
    """A cell compiled as IPython compiles one, before its run starts: :func:`compile_cell`."""

    source: str  # as typed
    transformed: str  # IPython syntax (`!cmd`, `%magic`) made Python
    filename: str  # of the cell's frames: IPython shows it as `Cell In[n]`
    body: CodeType
    last: CodeType | None  # the cell's last expression, whose value is shown as `Out[n]`

    @property
    def awaits(self) -> bool:
        """True when the cell uses top-level ``await`` (or ``async for``, ``async with``): it
        runs as a coroutine, as IPython runs such a cell."""
        return any(_is_coroutine(code) for code in (self.body, self.last) if code is not None)


def _is_coroutine(code: CodeType) -> bool:
    return bool(code.co_flags & inspect.CO_COROUTINE)


class CellCheck(NamedTuple):
    """What :func:`check_cell` found."""

    rejected: str | None  # the code that IPython, given it instead, rejects as the cell's
    awaits: bool  # the cell uses top-level ``await``


def _top_level_await(shell: Any) -> int:
    """The compiler flag for top-level ``await``, when IPython allows it (``%autoawait``)."""
    return ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if shell.autoawait else 0


def check_cell(shell: Any, cell: str) -> CellCheck:
    """Compile ``cell`` as IPython compiles a cell, one top-level statement at a time, and say
    whether it uses top-level ``await``, and, for a SyntaxError, which code IPython must be
    given in place of the cell to reject it as it rejects a plain cell (the short message, the
    ``Cell In[n]`` and line) without running any of it: the cell's own when it does not parse,
    else the statement that does not compile (``return`` outside a function), at its own
    lines. Changes nothing: no AST transformer runs, no ``from __future__`` import is kept."""
    transformed = shell.transform_cell(cell)
    filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
    flags = shell.compile.flags | _top_level_await(shell)
    try:
        tree = compile(transformed, filename, "exec", flags | ast.PyCF_ONLY_AST, True)
    except SyntaxError:
        return CellCheck(transformed, False)
    awaits = False
    for node in tree.body:
        try:
            awaits |= _is_coroutine(compile(ast.Module([node], []), filename, "exec", flags, True))
        except SyntaxError:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            lines = transformed.splitlines(keepends=True)[start - 1 : node.end_lineno]
            code = "\n" * (start - 1) + "".join(lines)
            try:  # alone on its lines (not `a = 1; return 0`), or the others would run
                alone = len(ast.parse(code).body) == 1
            except SyntaxError:
                alone = False
            # not alone: the magic raises the error, before the run
            return CellCheck(code if alone else None, False)
    return CellCheck(None, awaits)


def compile_cell(shell: Any, cell: str) -> CompiledCell:
    """Compile ``cell`` as IPython runs one: its input transformers, its compiler (the
    ``from __future__`` imports of earlier cells carry over), then the AST transformers of
    ``shell.ast_transformers``; top-level ``await`` is allowed when IPython allows it
    (``%autoawait``, on by default). Raises the cell's SyntaxError: nothing has started yet."""
    transformed = shell.transform_cell(cell)
    filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
    tree: ast.Module = shell.transform_ast(shell.compile.ast_parse(transformed, filename=filename))
    last: ast.Expression | None = None
    tail = tree.body[-1] if tree.body else None
    if isinstance(tail, ast.Expr):
        tree.body.pop()
        last = ast.Expression(tail.value)
    with shell.compile.extra_flags(_top_level_await(shell)):
        body = shell.compile(tree, filename, "exec")
        value = shell.compile(last, filename, "eval") if last is not None else None
    return CompiledCell(cell, transformed, filename, body, value)


async def _execute(shell: Any, compiled: CompiledCell) -> Any:
    """Run the cell in the user namespace, awaiting it if it awaits; return the value of its
    last expression, if any."""
    __tracebackhide__ = True  # IPython shows the user's frames, not ours
    ns_globals, ns_locals = shell.user_global_ns, shell.user_ns
    if _is_coroutine(compiled.body):
        await eval(compiled.body, ns_globals, ns_locals)
    else:
        exec(compiled.body, ns_globals, ns_locals)
    if compiled.last is None:
        return None
    value = eval(compiled.last, ns_globals, ns_locals)
    return await value if _is_coroutine(compiled.last) else value


def _run_now(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run to its end a coroutine that never suspends: the run of a cell that does not await
    (as IPython runs such a cell: no event loop is needed, so none is used)."""
    __tracebackhide__ = True
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a tracked cell without top-level await was suspended")


def _silenced(transformed: str) -> bool:
    """True when the cell ends with ``;``, which hides its value as in any IPython cell (the
    display hook cannot see it: its input is the ``%%track`` call)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(transformed).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    skip = (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    for token in reversed(tokens):
        if token.type not in skip and token.type != tokenize.DEDENT:
            return token.type == tokenize.OP and token.string == ";"
    return False


def run_tracked_cell(shell: Any, cell: str | CompiledCell, options: TrackOptions) -> RunSummary:
    """Run ``cell`` as a tracked run; returns the summary (already displayed unless quiet).

    The cell is compiled before its run starts: a SyntaxError makes no run. A cell that uses
    top-level ``await`` runs on IPython's loop runner, as ``shell.run_cell`` runs one; where an
    event loop is running already (a Jupyter kernel), await :func:`run_tracked_cell_async`."""
    __tracebackhide__ = True
    compiled = compile_cell(shell, cell) if isinstance(cell, str) else cell
    if compiled.awaits:
        return shell.loop_runner(_run_tracked(shell, compiled, options))
    return _run_now(_run_tracked(shell, compiled, options))


async def run_tracked_cell_async(
    shell: Any, cell: str | CompiledCell, options: TrackOptions
) -> RunSummary:
    """:func:`run_tracked_cell` as a coroutine, for a cell that uses top-level ``await``: the
    cell awaits what it awaits on the running event loop (the kernel's, in Jupyter)."""
    __tracebackhide__ = True
    compiled = compile_cell(shell, cell) if isinstance(cell, str) else cell
    return await _run_tracked(shell, compiled, options)


async def _run_tracked(shell: Any, compiled: CompiledCell, options: TrackOptions) -> RunSummary:
    __tracebackhide__ = True
    from IPython.core.error import UsageError

    from .tracking import fluent
    from .tracking.entities import ActiveRun

    # IPython syntax (`!pip ...`, `%time ...`) made plain Python, so one magic line does not
    # hide every assignment of the cell from the capture
    transformed = compiled.transformed
    client = fluent._client()
    key = _cell_key(shell, compiled.source)
    # the snapshots are taken below, with this cell's options (--no-snapshot, --keep-outputs);
    # start_run must not take its own (it does for a run started by the API in IPython)
    suppressed = fluent._suppress_snapshots.set(True)
    try:
        experiment_id = None
        if options.experiment is not None:  # `--experiment ''` is refused, not the default
            experiment_id = client.get_or_create_experiment(options.experiment).experiment_id
        run = fluent.start_run(
            run_name=options.name,
            experiment_id=experiment_id,
            nested=options.nested,
            tags=options.tags or None,
        )
    except NbtrackError as exc:  # a bad option or a deleted experiment: the cell did not run
        raise UsageError(f"%%track: {exc} (the cell was not run)") from None
    finally:
        fluent._suppress_snapshots.reset(suppressed)
    run_id = run.info.run_id
    frame_client = fluent._stack[-1].client
    summary = RunSummary(run=run, experiment="")
    try:
        frame_client._set_internal_tag(run_id, CELL_KEY_TAG, key)
        # per store: after `%nbtrack uri`, a link to a run of the other store would dangle
        store_key = (frame_client.tracking_uri, key)
        previous = _last_run_of_cell.get(store_key)
        if previous:
            frame_client._set_internal_tag(run_id, PREVIOUS_RUN_TAG, previous)
        _last_run_of_cell[store_key] = run_id
        if options.snapshot:
            from .snapshot import capture_snapshots

            summary.snapshots = capture_snapshots(
                frame_client, run_id, shell=shell, keep_outputs=options.keep_outputs
            )
        if options.capture:
            for name, value in cellvars.literal_params(transformed).items():
                if name in options.metrics or (
                    cellvars.looks_like_metric(name, options.metric_patterns)
                    and cellvars.scalar(value) is not None
                ):
                    continue  # `acc = 0.5` is a metric, taken after the cell
                try:
                    frame_client.log_param(run_id, name, value)
                    summary.captured_params.append(name)
                except NbtrackError as exc:
                    summary.notes.append(f"param {name} not logged: {exc}")
        watch = options.live and not options.quiet  # --quiet: nothing shown under the cell
        observers = start_observers(frame_client, run_id) if watch else []
        try:
            value = await _execute(shell, compiled)
        finally:
            stop_observers(observers)
    except BaseException:
        exc_type, error, tb = sys.exc_info()
        fluent._end_run_with_exception(run_id, exc_type, error, _from_cell(tb, compiled))
        _show(shell, _final(frame_client, run_id, summary), options)
        raise
    try:
        _capture_after(shell, transformed, options, summary, frame_client, run_id)
    finally:  # the cell ran: whatever happens while capturing, the run is not left active
        ActiveRun.__exit__(run, None, None, None)
    if value is not None and not _silenced(transformed):
        shell.displayhook(value)
    return _show(shell, _final(frame_client, run_id, summary), options)


def replay_cell(shell: Any, cell: str) -> Coroutine[Any, Any, None] | None:
    """Run ``cell`` as plain code, as an exported notebook replays a tracked cell that made
    another run (``%%track --replay``): no run is made, and the tracking calls in it
    (``log_metric`` in its loop, a run it starts, autolog) go to a store thrown away after it.
    Its last value is shown, and its exceptions raised, as usual. A cell that uses top-level
    ``await`` is returned as a coroutine, for the cell to await (as ``%%track`` does)."""
    __tracebackhide__ = True
    compiled = compile_cell(shell, cell)  # a SyntaxError: raised before anything changes
    if compiled.awaits:
        return _replay(shell, compiled)
    _run_now(_replay(shell, compiled))
    return None


async def _replay(shell: Any, compiled: CompiledCell) -> None:
    __tracebackhide__ = True
    from .tracking import fluent

    with fluent._throwaway_store():
        value = await _execute(shell, compiled)
    if value is not None and not _silenced(compiled.transformed):
        shell.displayhook(value)


def _from_cell(tb: TracebackType | None, compiled: CompiledCell) -> TracebackType | None:
    """The traceback from the cell's own frame on, as IPython shows it: not the frames of the
    magic running it (whole, if the error arose there, before or after the cell's code)."""
    entry = tb
    while entry is not None and entry.tb_frame.f_code.co_filename != compiled.filename:
        entry = entry.tb_next
    return entry or tb


def _capture_after(
    shell: Any, cell: str, options: TrackOptions, summary: RunSummary, client: Any, run_id: str
) -> None:
    # Logged to run_id, not to "the active run": the cell may have ended the run or started
    # another one (nbtrack.end_run(), nbtrack.start_run()).
    ns = shell.user_ns
    for name in options.params:
        if name not in ns:
            summary.notes.append(f"--params {name}: no such variable after the cell")
            continue
        try:
            client.log_param(run_id, name, ns[name])
            summary.captured_params.append(name)
        except Exception as exc:  # NbtrackError, or a value whose str() fails
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
        client.log_metric(run_id, name, number)
        summary.captured_metrics.append(name)


def _final(client: Any, run_id: str, summary: RunSummary) -> RunSummary:
    summary.run = client.get_run(run_id)
    summary.experiment = client.get_experiment(summary.run.info.experiment_id).name
    return summary


def _show(shell: Any, summary: RunSummary, options: TrackOptions) -> RunSummary:
    if not options.quiet:
        from IPython.display import display

        display(summary)
    elif summary.notes:  # quiet hides the summary, never what went wrong
        import warnings

        from .exceptions import NbtrackWarning

        for note in summary.notes:
            warnings.warn(f"%%track: {note}", NbtrackWarning, stacklevel=2)
    return summary
