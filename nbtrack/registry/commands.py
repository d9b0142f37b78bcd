"""``nbtrack models``: the model registry from a terminal.

::

    nbtrack models list
    nbtrack models versions churn-rf
    nbtrack models stage churn-rf 3 Production --archive-existing -m "better recall"
    nbtrack models alias churn-rf champion 3            # --delete to remove it
    nbtrack models history churn-rf
    nbtrack models delete churn-rf --version 2 [--force]
    nbtrack models serve models:/churn-rf@champion --port 5001
    nbtrack models predict models:/churn-rf/Production -i batch.csv -o scored.csv
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..models.serving.commands import predict_command, serve_command
from ..terminal import print_table
from ..terminal import when as _when

__all__ = ["models"]


def _client() -> Any:
    """A client of the command line's store, which must exist (serve and predict may load a
    model from a folder, with no store at all)."""
    from ..cli import require_store
    from ..tracking.client import Client

    return Client(require_store(click.get_current_context()))


def _table(header: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    print_table(header, rows)


@click.group()
@click.pass_context
def models(ctx: click.Context) -> None:
    """Registered models: versions, stages, aliases, history, serving."""
    store = (ctx.find_root().obj or {}).get("store")
    if store:  # `nbtrack --store X models ...`: the registry and model URIs resolve there
        os.environ["NBTRACK_TRACKING_URI"] = str(store)


@models.command("list")
@click.option("-f", "--filter", "filter_string", default="", help="e.g. \"name LIKE 'churn%'\"")
def list_models(filter_string: str) -> None:
    """Registered models with their newest version per stage and their aliases."""
    rows = []
    for m in _client().search_registered_models(filter_string, max_results=10_000):
        stages = ", ".join(f"{v.current_stage}: v{v.version}" for v in m.latest_versions)
        aliases = ", ".join(f"@{a}: v{v}" for a, v in m.aliases.items())
        rows.append([m.name, stages or "-", aliases or "-", _when(m.last_updated_timestamp)])
    _table(["name", "latest versions", "aliases", "updated"], rows)


@models.command()
@click.argument("name")
def versions(name: str) -> None:
    """The versions of registered model NAME, newest first."""
    client = _client()
    client.get_registered_model(name)
    rows = [
        [v.version, v.current_stage, ", ".join(v.aliases) or "-", (v.run_id or "-")[:8],
         _when(v.creation_timestamp), v.description or ""]
        for v in client.search_model_versions(f"name = '{name.replace(chr(39), chr(39) * 2)}'")
    ]
    _table(["version", "stage", "aliases", "run", "created", "description"], rows)


@models.command()
@click.argument("name")
@click.argument("version")
@click.argument("stage")
@click.option("--archive-existing", is_flag=True,
              help="Move the versions now in STAGE (Staging or Production) to Archived.")
@click.option("-m", "--comment", default=None, help="Why: kept in the audit trail.")
def stage(name: str, version: str, stage: str, archive_existing: bool, comment: str | None) -> None:
    """Move VERSION of NAME to STAGE (None, Staging, Production, Archived)."""
    v = _client().transition_model_version_stage(
        name, version, stage, archive_existing_versions=archive_existing, comment=comment
    )
    click.echo(f"{name} version {v.version} is now in {v.current_stage}")


@models.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@click.option("-m", "--comment", default=None, help="Why: kept in the audit trail.")
def alias(name: str, alias: str, version: str | None, delete: bool, comment: str | None) -> None:
    """Point ALIAS of NAME at VERSION (or remove it with --delete)."""
    client = _client()
    if delete:
        client.delete_registered_model_alias(name, alias, comment=comment)
        click.echo(f"removed @{alias} from {name}")
        return
    if version is None:
        raise click.UsageError("give the VERSION the alias should point at (or --delete)")
    client.set_registered_model_alias(name, alias, version, comment=comment)
    click.echo(f"{name}@{alias} -> version {version}")


@models.command()
@click.argument("name")
@click.option("-v", "--version", default=None, help="Only this version's records.")
def history(name: str, version: str | None) -> None:
    """The audit trail of NAME: versions created or deleted, stage and alias changes."""
    rows = [
        [_when(e.timestamp), e.version or "-", e.kind,
         f"{e.from_value or '-'} -> {e.to_value or '-'}", e.user_id or "-", e.comment or ""]
        for e in _client().get_model_history(name, version)
    ]
    _table(["when", "version", "change", "from -> to", "who", "comment"], rows)


@models.command()
@click.argument("name")
@click.option("-v", "--version", default=None, help="Delete only this version.")
@click.option("--force", is_flag=True,
              help="Needed to delete a model that has versions, or a version in Production.")
def delete(name: str, version: str | None, force: bool) -> None:
    """Delete registered model NAME (or one version). Run artifacts are kept."""
    client = _client()
    if version is None:
        client.delete_registered_model(name, force=force)
        click.echo(f"deleted registered model {name}")
    else:
        client.delete_model_version(name, version, force=force)
        click.echo(f"deleted {name} version {version}")


models.add_command(serve_command)
models.add_command(predict_command)
