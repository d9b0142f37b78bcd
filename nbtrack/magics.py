"""IPython magics: ``%%track`` runs a cell as a tracked run; ``%nbtrack`` does the rest.

Load with ``%load_ext nbtrack``. The magics are thin: they parse their options and call plain
functions (:func:`nbtrack.tracked_cell.run_tracked_cell` and the public API).
"""

from __future__ import annotations

import ast
import os
import shlex
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import List, Unicode

from . import cellvars
from .exceptions import ExperimentNotFoundError, FilterSyntaxError, NbtrackError
from .tracked_cell import (
    TrackOptions,
    check_cell,
    compile_cell,
    replay_cell,
    run_tracked_cell,
    run_tracked_cell_async,
)

__all__ = ["TrackMagics", "load_ipython_extension"]

_SUBCOMMANDS = {
    "experiment": "experiment NAME    make NAME the active experiment (created if missing)",
    "uri": "uri PATH           store runs in PATH (a folder, a .db file or sqlite:///...)",
    "runs": "runs [FILTER]      a table of recent runs of the active experiment",
    "show": "show RUN_ID        a run's params, metrics and tags (an id prefix is enough)",
    "export": "export RUN PATH [history|notebook|script]  the run as a notebook that reproduces it",
    "diff": "diff RUN_A RUN_B   what changed: params, metrics, code cells, packages",
    "notebook": "notebook PATH      name this kernel's notebook file, for snapshots",
    "compare": "compare [EXPERIMENT] [FILTER]  a table of runs to sort, filter and plot "
    "(quote a name with spaces: 'my runs')",
    "status": "status             where runs go, the active experiment and run",
    "autolog": "autolog on|off|status [LIBRARY ...]  record every fit with no log calls",
}


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in (values or "").split(",") if v.strip()]


def _tags(items: list[str]) -> dict[str, str]:
    from .tracking.validation import check_tag

    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tags takes key=value pairs; got {item!r}")
        try:
            check_tag(key, value)  # before the run starts: a bad tag must not leave a run
        except NbtrackError as exc:
            raise UsageError(f"--tags {item!r}: {exc}") from exc
        tags[key] = value
    return tags


def _words(text: str) -> list[str]:
    """Split as a shell does (quotes group words and go), but keep backslashes: they are path
    separators on Windows (``%nbtrack notebook C:\\work\\nb.ipynb``), not escapes."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"cannot parse {text!r}: {exc}") from exc


@magics_class
class TrackMagics(Magics):
    """The nbtrack magics. ``%config TrackMagics.metric_patterns = [...]`` changes which
    variable names ``%%track`` logs as metrics."""

    metric_patterns = List(
        Unicode(),
        default_value=list(cellvars.METRIC_PATTERNS),
        help="Shell-style, case-insensitive name patterns of variables logged as metrics.",
    ).tag(config=True)

    @magic_arguments()
    @argument("-e", "--experiment", help="experiment of the run (created if missing)")
    @argument("-n", "--name", help="run name (default: generated)")
    @argument("--tags", nargs="*", default=[], metavar="KEY=VALUE", help="tags of the run")
    @argument("--nested", action="store_true", help="a child of the active run")
    @argument("--params", metavar="A,B", help="also log these variables as params, after")
    @argument("--metrics", metavar="A,B", help="log these variables' final values as metrics")
    @argument("--no-capture", action="store_true", help="no automatic params or metrics")
    @argument("--no-snapshot", action="store_true", help="store no code snapshot")
    @argument("--no-live", action="store_true", help="no live metric curves under the cell")
    @argument("--keep-outputs", action="store_true", help="keep outputs in the notebook snapshot")
    @argument("-q", "--quiet", action="store_true", help="show nothing under the cell")
    @argument(
        "--replay",
        action="store_true",
        help="make no run: run the cell as plain code, its tracking calls thrown away (how an "
        "exported notebook replays a tracked cell that made another run)",
    )
    @cell_magic
    def track(self, line: str, cell: str) -> Any:
        """Run the cell as a tracked run: params from its literal assignments, metrics from
        its metric-like scalar variables, a snapshot of the code that ran, a summary below."""
        __tracebackhide__ = True
        # split as a shell would: `--name "rf baseline"` names the run rf baseline, without the
        # quotes that parse_argstring keeps
        args = self.track.parser.parse_args(_words(line))
        if args.replay:  # a coroutine when the cell awaits: see _check_tracked_cells
            return replay_cell(self.shell, cell)
        options = TrackOptions(
            experiment=args.experiment,
            name=args.name,
            tags=_tags(args.tags),
            nested=args.nested,
            params=_split(args.params),
            metrics=_split(args.metrics),
            capture=not args.no_capture,
            snapshot=not args.no_snapshot,
            live=not args.no_live,
            keep_outputs=args.keep_outputs,
            quiet=args.quiet,
            metric_patterns=tuple(self.metric_patterns),
        )
        # compiled before the run starts: a SyntaxError makes no run (`_check_tracked_cells`
        # has had IPython reject it already, as a plain cell's)
        compiled = compile_cell(self.shell, cell)
        if compiled.awaits:  # the cell, made `await get_ipython().run_cell_magic(...)`, awaits it
            return _awaited(run_tracked_cell_async(self.shell, compiled, options))
        run_tracked_cell(self.shell, compiled, options)
        return None

    @line_magic
    def nbtrack(self, line: str) -> Any:
        """``%nbtrack SUBCOMMAND ...``; ``%nbtrack`` alone lists the subcommands."""
        parts = line.strip().split(None, 1)
        if not parts:
            print("usage: %nbtrack SUBCOMMAND\n  " + "\n  ".join(_SUBCOMMANDS.values()))
            return None
        command, rest = parts[0], parts[1] if len(parts) > 1 else ""
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(
                f"unknown %nbtrack subcommand {command!r}; use one of: " + ", ".join(_SUBCOMMANDS)
            )
        try:
            return handler(rest)
        except NbtrackError as exc:
            raise UsageError(str(exc)) from exc

    def _cmd_experiment(self, line: str) -> None:
        import nbtrack

        rest = _words(line)
        if len(rest) != 1:
            raise UsageError("usage: %nbtrack experiment NAME")
        exp = nbtrack.set_experiment(rest[0])
        print(f"experiment {exp.name!r} (id {exp.experiment_id}) is active")

    def _cmd_uri(self, line: str) -> None:
        import nbtrack

        rest = _words(line)
        if len(rest) != 1:
            raise UsageError("usage: %nbtrack uri PATH")
        nbtrack.set_tracking_uri(rest[0])
        print(f"runs go to {nbtrack.get_tracking_uri()}")

    def _cmd_runs(self, line: str) -> Any:
        import nbtrack

        # the filter as typed: splitting it into words would drop the quotes of its strings
        frame: Any = nbtrack.search_runs(filter_string=line.strip(), max_results=50)
        if frame.empty:
            _say_where_the_runs_are(filtered=bool(line.strip()))
        cols = [
            c
            for c in frame.columns
            if c in ("run_id", "run_name", "status", "start_time")
            or c.startswith(("params.", "metrics."))
        ]
        return frame[cols]

    def _cmd_show(self, line: str) -> Any:
        from .summary import RunSummary
        from .tracking import fluent

        rest = _words(line)
        if len(rest) != 1:
            raise UsageError("usage: %nbtrack show RUN_ID")
        client = fluent._client()
        run = client.get_run(client.find_run_id(rest[0]))
        exp = client.get_experiment(run.info.experiment_id).name
        return RunSummary(
            run=run, experiment=exp, snapshots=client.store.run_snapshots(run.info.run_id)
        )

    def _cmd_export(self, line: str) -> None:
        from .snapshot.export import cannot_write, export_snapshot, requirements_path
        from .tracking import fluent

        rest = _words(line)
        kinds = ("history", "notebook", "script")
        if len(rest) not in (2, 3) or (len(rest) == 3 and rest[2] not in kinds):
            raise UsageError("usage: %nbtrack export RUN_ID PATH.ipynb [history|notebook|script]")
        client = fluent._client()
        kind = rest[2] if len(rest) == 3 else None  # the first the run has
        run_id = client.find_run_id(rest[0])
        requirements = requirements_path(Path(rest[1]), run_id)  # before the export writes it
        try:
            path = export_snapshot(client, run_id, rest[1], kind)
        except OSError as exc:
            raise UsageError(cannot_write(rest[1], exc)) from exc
        print(f"wrote {path} and {requirements}")

    def _cmd_diff(self, line: str) -> Any:
        from .snapshot.diff import diff_runs
        from .tracking import fluent

        rest = _words(line)
        if len(rest) != 2:
            raise UsageError("usage: %nbtrack diff RUN_A RUN_B")
        client = fluent._client()
        return diff_runs(client, client.find_run_id(rest[0]), client.find_run_id(rest[1]))

    def _cmd_notebook(self, line: str) -> None:
        from .snapshot.notebook import set_notebook_path

        rest = _words(line)
        if len(rest) != 1:
            raise UsageError("usage: %nbtrack notebook PATH")
        try:
            set_notebook_path(rest[0])
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from exc
        print(f"snapshots will include {rest[0]}")

    def _cmd_compare(self, line: str) -> Any:
        from .tracking import fluent

        try:
            import nbtrack_widgets
        except ImportError:
            raise UsageError(
                "%nbtrack compare needs the widgets: pip install nbtrack-widgets "
                "(from a checkout: pip install -e ./widgets), then restart the kernel"
            ) from None
        client = fluent._client()
        experiment, filter_string = _experiment_and_filter(client, line)
        if experiment is None:
            experiment = client.get_experiment(fluent._active_experiment_id(client)).name
        try:
            return nbtrack_widgets.compare(experiment=experiment, filter_string=filter_string)
        except ExperimentNotFoundError as exc:  # it lists the experiments there are
            raise UsageError(
                f"{exc} (a name with spaces goes in quotes: %nbtrack compare 'my runs' FILTER)"
            ) from None

    def _cmd_autolog(self, line: str) -> None:
        from .autologging import INTEGRATIONS, autolog, enabled_integrations, library_autolog

        words = _words(line)
        usage = (
            "usage: %nbtrack autolog on|off|status [LIBRARY ...] (libraries: "
            + ", ".join(INTEGRATIONS) + ")"
        )
        if not words or words[0] not in ("on", "off", "status"):
            raise UsageError(usage)
        action, libraries = words[0], words[1:]
        unknown = [name for name in libraries if name not in INTEGRATIONS]
        if unknown:
            raise UsageError(f"unknown library {', '.join(unknown)}; " + usage.split("(")[1][:-1])
        if action == "status":
            on = enabled_integrations()
            print(f"autolog is on for: {', '.join(on)}" if on else "autolog is off")
            return
        if libraries:
            for name in libraries:
                library_autolog(name, disable=action == "off", exclusive=False, silent=False)
            names = libraries
        else:
            names = autolog(disable=action == "off")
        print(f"autolog {action} for: {', '.join(names) or 'no installed library'}")

    def _cmd_status(self, line: str) -> None:
        import nbtrack

        from .snapshot.notebook import find_notebook_path
        from .tracking import fluent

        run = nbtrack.active_run()
        exp = _active_experiment_name(fluent._client())
        print(f"store:      {nbtrack.get_tracking_uri()}")
        print(f"experiment: {exp}")
        print(f"active run: {f'{run.info.run_name} ({run.info.run_id})' if run else '-'}")
        print(f"notebook:   {find_notebook_path() or 'not found (%nbtrack notebook PATH)'}")


def _experiment_and_filter(client: Any, line: str) -> tuple[str | None, str]:
    """``%nbtrack compare``'s experiment (None: the active one) and filter. The first word is
    the experiment when one has that name, or when no filter can start with it (a misspelled
    name is then reported as such, not as a bad filter); a name with spaces goes in quotes.
    The filter is kept as typed: its strings keep their quotes."""
    from .query.filter import parse_filter

    text = line.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end < 0:
            raise UsageError(f"no closing quotation in {text!r}")
        return text[1:end], text[end + 1 :].strip()
    words = text.split(maxsplit=1)
    if not words:
        return None, ""
    rest = words[1] if len(words) > 1 else ""
    if client.get_experiment_by_name(words[0]) is not None:
        return words[0], rest
    try:
        parse_filter(text)
    except FilterSyntaxError as exc:
        if exc.position == 0:
            return words[0], rest
    return None, text


def _active_experiment_name(client: Any) -> str:
    """Where a new run goes, picked as ``fluent._active_experiment_id`` does (set_experiment,
    then the environment variables), without creating the experiment."""
    from .tracking import fluent

    if fluent._experiment:
        return fluent._experiment[1]
    env_id = os.environ.get("NBTRACK_EXPERIMENT_ID")
    if env_id:
        try:
            return f"{client.get_experiment(env_id).name} (NBTRACK_EXPERIMENT_ID={env_id})"
        except NbtrackError:
            return f"none: NBTRACK_EXPERIMENT_ID={env_id} names no experiment"
    env_name = os.environ.get("NBTRACK_EXPERIMENT_NAME")
    if env_name:
        return f"{env_name} (NBTRACK_EXPERIMENT_NAME)"
    return "Default"


_TRACK_CALL = "get_ipython().run_cell_magic('track', "


async def _awaited(run: Awaitable[Any]) -> None:
    """``run``, awaited to nothing: the awaited call is the cell's last expression, and the
    magic shows what it shows itself (the cell's value, the summary)."""
    __tracebackhide__ = True
    await run


def _check_tracked_cells(lines: list[str]) -> list[str]:
    """An input transformer, run after IPython's own, which made a ``%%track`` cell a
    ``run_cell_magic`` call. When the cell's code has a SyntaxError, IPython is handed the code
    that has it, and rejects it as it rejects a plain cell's, before running anything: the
    magic never runs, no run starts. When the code uses top-level ``await``, the call is
    awaited (the magic then returns its run as a coroutine), so that IPython runs the cell as
    it runs any cell that awaits: in Jupyter, on the kernel's event loop."""
    if len(lines) != 1 or not lines[0].startswith(_TRACK_CALL):
        return lines
    from IPython import get_ipython

    shell = get_ipython()
    try:
        call = ast.parse(lines[0], mode="eval").body
        cell = ast.literal_eval(call.args[2]) if isinstance(call, ast.Call) else None
    except (SyntaxError, ValueError, IndexError):
        return lines
    if shell is None or not isinstance(cell, str):
        return lines
    check = check_cell(shell, cell)
    if check.rejected is not None:
        return check.rejected.splitlines(keepends=True)
    return ["await " + lines[0]] if check.awaits else lines


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbtrack``: register the magics, check the code of ``%%track`` cells before
    they run, and note which cells raise (for snapshots)."""
    from .snapshot.history import record_outcome

    ipython.register_magics(TrackMagics)
    if _check_tracked_cells not in ipython.input_transformers_post:
        ipython.input_transformers_post.append(_check_tracked_cells)
    callbacks = ipython.events.callbacks.get("post_run_cell", [])
    if record_outcome not in callbacks:
        ipython.events.register("post_run_cell", record_outcome)


def _say_where_the_runs_are(filtered: bool) -> None:
    """After an empty ``%nbtrack runs``: the active experiment, and the others that have runs
    (``%%track --experiment NAME`` files its run there, for that cell only)."""
    from .tracking import fluent

    client = fluent._client()
    active = fluent._active_experiment_id(client)
    counts = client.store.experiment_run_counts()
    others = [
        (e.name, counts[int(e.experiment_id)][0])
        for e in client.search_experiments()
        if e.experiment_id != active and counts.get(int(e.experiment_id), (0,))[0]
    ]
    name = client.get_experiment(active).name
    what = "no run matches the filter" if filtered else "no runs to show"
    print(f"{what} in the active experiment {name!r}", end="")
    if others:
        listed = ", ".join(f"{n!r} ({k} run{'' if k == 1 else 's'})" for n, k in others)
        print(
            f"; other experiments have runs: {listed}. `nbtrack.set_experiment(NAME)` makes one "
            "active (`%%track --experiment NAME` applies to its own cell only)."
        )
    else:
        print(".")
