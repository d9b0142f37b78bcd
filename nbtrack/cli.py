"""The ``nbtrack`` command: look at experiments and runs from a terminal.

::

    nbtrack experiments
    nbtrack runs --experiment churn --filter "metrics.acc > 0.9" --order-by "metrics.acc DESC"
    nbtrack runs show 3f2a...
    nbtrack runs delete 3f2a...
    nbtrack gc
    nbtrack export 3f2a... -o run.ipynb
    nbtrack diff 3f2a... 8c1d...
    nbtrack models list | versions | stage | alias | history | delete | serve | predict

``--store`` (or ``NBTRACK_TRACKING_URI``) points at the store; default ``.nbtrack/`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .exceptions import NbtrackError
from .terminal import duration as _duration
from .terminal import print_table as _print_table
from .terminal import when as _when

if TYPE_CHECKING:
    from .tracking.client import Client

__all__ = ["main"]

#: Metric columns, and param columns, that `runs` shows at most.
_KEY_COLUMNS = 6
#: Lines of a multi-line param or tag that `runs show` prints (the last ones).
_SHOWN_LINES = 12


class _Group(click.Group):
    """Turn nbtrack's own errors into a clear message and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NbtrackError as exc:
            raise click.ClickException(str(exc)) from exc


def _client(ctx: click.Context) -> Client:
    """A client of the store given by --store (or the default); see :func:`require_store`."""
    from .tracking.client import Client

    return Client(require_store(ctx))


def require_store(ctx: click.Context) -> str | None:
    """The --store of this command line (None: the default), checked to exist: a store that
    does not exist yet is an error here, not a new empty store made by a typo."""
    from .tracking.uri import resolve

    root = ctx.find_root()
    store: str | None = (root.obj or {}).get("store")
    location = resolve(store)
    if not location.db_path.exists():
        if not store:
            where = "the default ./.nbtrack"
        elif root.get_parameter_source("store") == click.core.ParameterSource.ENVIRONMENT:
            where = f"NBTRACK_TRACKING_URI={store}"
        else:
            where = f"--store {store}"
        raise click.ClickException(
            f"no nbtrack store at {location.db_path} ({where}); pass --store with a store "
            "directory, .db file or sqlite:/// URI, or log a run there first"
        )
    return store


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="NBTRACK_TRACKING_URI",
    default=None,
    help="Store directory, .db file or sqlite:/// URI [default: ./.nbtrack].",
)
@click.version_option(package_name="nbtrack")
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """nbtrack: experiment tracking in the notebook, on an embedded SQLite store."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Include deleted experiments.")
@click.pass_context
def experiments(ctx: click.Context, show_all: bool) -> None:
    """List experiments with their run counts."""
    from .tracking.entities import ViewType

    client = _client(ctx)
    counts = {str(k): v for k, v in client.store.experiment_run_counts().items()}
    view = ViewType.ALL if show_all else ViewType.ACTIVE_ONLY
    table = []
    for e in client.search_experiments(view, order_by="experiment_id"):
        n, last = counts.get(e.experiment_id, (0, None))
        table.append([e.experiment_id, e.name, n, _when(last), e.lifecycle_stage])
    _print_table(["id", "name", "runs", "last run", "stage"], table)


@cli.group(invoke_without_command=True)
@click.option(
    "-e",
    "--experiment",
    "experiment_names",
    multiple=True,
    help="Experiment name (repeatable). Default: all experiments.",
)
@click.option(
    "-f",
    "--filter",
    "filter_string",
    default="",
    help="Filter, e.g. \"metrics.acc > 0.9 AND params.model = 'rf'\".",
)
@click.option(
    "-o",
    "--order-by",
    "order_by",
    multiple=True,
    help='Order, e.g. "metrics.acc DESC" (repeatable). Default: newest first.',
)
@click.option("-n", "--max-results", default=50, show_default=True, type=click.IntRange(1))
@click.option("--deleted", is_flag=True, help="Show deleted runs instead.")
@click.pass_context
def runs(
    ctx: click.Context,
    experiment_names: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    deleted: bool,
) -> None:
    """List runs as a table; `runs show ID` and `runs delete ID` act on one."""
    if ctx.invoked_subcommand is not None:
        return
    from .tracking.entities import ViewType

    client = _client(ctx)
    if experiment_names:
        ids = []
        for name in experiment_names:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                known = ", ".join(
                    repr(e.name) for e in client.search_experiments(ViewType.ALL)
                ) or "none"
                raise click.BadParameter(
                    f"no experiment named {name!r} (experiments: {known})",
                    param_hint="--experiment",
                )
            ids.append(exp.experiment_id)
    else:
        # A deleted experiment's runs are deleted with it: `--deleted` shows them.
        shown = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
        ids = [e.experiment_id for e in client.search_experiments(shown)]
    view = ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
    found = client.search_runs(ids, filter_string, view, max_results, list(order_by))
    if not found:
        gone = [
            n for n in experiment_names
            if (e := client.get_experiment_by_name(n)) and e.lifecycle_stage == "deleted"
        ]
        note = ""
        if gone and not deleted:
            note = f" (experiment {', '.join(map(repr, gone))} is deleted, with its runs: add "
            note += "--deleted to list them)"
        click.echo("no runs" + (" match the filter" if filter_string else "") + note)
        return
    more = found.token is not None
    names = {e.experiment_id: e.name for e in client.search_experiments(ViewType.ALL)}
    all_metrics = sorted({k for r in found for k in r.data.metrics})
    all_params = sorted({k for r in found for k in r.data.params})
    metric_keys, param_keys = all_metrics[:_KEY_COLUMNS], all_params[:_KEY_COLUMNS]
    header = ["run_id", "name", "experiment", "status", "start", "duration"]
    header += [f"m.{k}" for k in metric_keys] + [f"p.{k}" for k in param_keys]
    table = []
    for r in found:
        i = r.info
        row = [
            i.run_id[:8],
            i.run_name,
            names.get(i.experiment_id, i.experiment_id),
            i.status,
            _when(i.start_time),
            _duration(i.start_time, i.end_time),
        ]
        row += [_fmt(r.data.metrics.get(k)) for k in metric_keys]
        row += [r.data.params.get(k, "") for k in param_keys]
        table.append(row)
    _print_table(header, table)
    notes = []
    if more:
        notes.append(f"only the first {max_results} runs are shown (--max-results)")
    hidden = len(all_metrics) - len(metric_keys) + len(all_params) - len(param_keys)
    if hidden:
        notes.append(
            f"{hidden} more metric and param column(s) not shown; `nbtrack runs show ID` has "
            "them all"
        )
    for note in notes:
        click.echo(click.style(f"note: {note}", dim=True))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _find_run(client: Any, prefix: str) -> str:
    """A full run id from an id or a unique prefix of one (as printed by `runs`)."""
    try:
        return str(client.find_run_id(prefix))
    except NbtrackError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN_ID") from exc


@runs.command("show")
@click.argument("run_id")
@click.pass_context
def show(ctx: click.Context, run_id: str) -> None:
    """Show one run: attributes, params, latest metrics, tags, artifacts."""
    client = _client(ctx)
    run = client.get_run(_find_run(client, run_id))
    i = run.info
    deleted = i.lifecycle_stage == "deleted"
    click.echo(click.style(f"{i.run_name}  ({i.run_id})", bold=True))
    for label, value in [
        ("experiment", client.get_experiment(i.experiment_id).name),
        ("status", i.status + ("  (deleted: `nbtrack gc` purges it)" if deleted else "")),
        ("started", _when(i.start_time)),
        ("ended", _when(i.end_time)),
        ("duration", _duration(i.start_time, i.end_time)),
        ("artifacts", i.artifact_uri),
    ]:
        click.echo(f"  {label:<11}{value}")
    for title, data in (
        ("params", run.data.params),
        ("metrics", run.data.metrics),
        ("tags", run.data.tags),
    ):
        click.echo(click.style(f"\n{title}", bold=True) + ("" if data else "  (none)"))
        width = max((len(k) for k in data), default=0)
        for k in sorted(data):
            item = data[k]
            # a float in full (the shortest text that reads back as it): one run, read closely
            lines = (repr(item) if isinstance(item, float) else str(item)).splitlines() or [""]
            if len(lines) > _SHOWN_LINES:  # a traceback: its end says what went wrong
                skipped = len(lines) - _SHOWN_LINES
                lines = [f"... ({skipped} earlier lines)", *lines[-_SHOWN_LINES:]]
            click.echo(f"  {k:<{width}}  {lines[0]}")
            for line in lines[1:]:
                click.echo(f"  {'':<{width}}  {line}")
    files = client.list_artifact_files(i.run_id)
    if files:
        click.echo(click.style("\nartifacts", bold=True))
        for path, size in files:
            click.echo(f"  {path}  ({size:,} bytes)")


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
def delete(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Mark runs deleted (hidden; `nbtrack gc` removes them for good)."""
    client = _client(ctx)
    found = [_find_run(client, prefix) for prefix in run_ids]  # all known, or none deleted
    for run_id in dict.fromkeys(found):
        if client._run_row(run_id)["lifecycle_stage"] == "deleted":  # the row only
            click.echo(f"{run_id} was deleted already (`nbtrack gc` purges it)")
            continue
        client.delete_run(run_id)
        click.echo(f"deleted {run_id}")


@runs.command("restore")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
def restore(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Bring deleted runs back."""
    client = _client(ctx)
    found = [_find_run(client, prefix) for prefix in run_ids]  # all known, or none restored
    for run_id in dict.fromkeys(found):
        if client._run_row(run_id)["lifecycle_stage"] != "deleted":
            click.echo(f"{run_id} is not deleted: nothing to restore")
            continue
        client.restore_run(run_id)
        click.echo(f"restored {run_id}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Purge deleted runs and artifact folders that no run references."""
    from .tracking.garbage import collect

    client = _client(ctx)
    store = client.store
    before = _size(store.db_path)
    done = collect(client, dry_run)
    if dry_run:
        click.echo(
            f"would purge {len(done.runs)} deleted run(s) and {len(done.folders)} artifact "
            "folder(s)"
        )
    else:
        store.compact()
        after = _size(store.db_path)
        click.echo(
            f"purged {len(done.runs)} deleted run(s), {len(done.folders)} artifact folder(s); "
            f"database {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB"
        )
    for folder in done.folders:
        click.echo(f"  {folder}")
    for run_id, versions in done.kept_for_models.items():
        click.echo(
            f"kept deleted run {run_id}: registered model version(s) {', '.join(versions)} "
            "come from it (delete those versions to let gc purge it)"
        )
    if done.shared_with:
        others = ", ".join(str(p) for p in done.shared_with)
        click.echo(
            f"note: {store.artifact_root} also holds the artifacts of {others}; only the "
            "folders of runs purged here were looked at"
        )


def _size(db_path: Path) -> int:
    """Bytes of a database and its write-ahead log."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


@cli.command()
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The .ipynb file to write (the run's requirements go beside it).",
)
@click.option(
    "--kind",
    type=click.Choice(["history", "notebook", "script"]),
    default=None,
    help="The executed cells, the saved notebook file, or the script a script's run ran. "
    "Default: the first of these the run has.",
)
@click.pass_context
def export(ctx: click.Context, run_id: str, output: str, kind: str | None) -> None:
    """Export a run's code snapshot as a notebook that reproduces it."""
    from .snapshot.export import cannot_write, export_snapshot, requirements_path

    client = _client(ctx)
    run = _find_run(client, run_id)
    requirements = requirements_path(Path(output), run)  # before the export writes it
    try:
        path = export_snapshot(client, run, output, kind)
    except OSError as exc:  # a folder that cannot be made or written to
        raise click.ClickException(cannot_write(output, exc)) from exc
    click.echo(f"wrote {path} and {requirements}")


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str) -> None:
    """What changed from RUN_A to RUN_B: params, metrics, code cells, packages."""
    from .snapshot.diff import diff_runs

    client = _client(ctx)
    click.echo(str(diff_runs(client, _find_run(client, run_a), _find_run(client, run_b))))


def _add_models_group() -> None:
    from .registry.commands import models

    cli.add_command(models)


_add_models_group()


def main() -> None:
    cli(prog_name="nbtrack")


if __name__ == "__main__":
    main()
