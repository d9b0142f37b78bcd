"""The ``serve`` and ``predict`` commands (grouped under ``nbtrack models``).

::

    nbtrack models serve runs:/3f2a.../model --port 5001
    nbtrack models predict runs:/3f2a.../model -i batch.csv -o predictions.csv

Importing this module is cheap: pandas, the model loader and the server are imported when a
command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ...exceptions import NbtrackError

__all__ = ["predict_command", "serve_command"]

_MEDIA_TYPES = {"csv": "text/csv", "json": "application/json"}


@click.command("serve")
@click.argument("model_uri")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 makes the model reachable from other machines.",
)
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=5001,
    show_default=True,
    help="Port to listen on (0 picks a free one).",
)
def serve_command(model_uri: str, host: str, port: int) -> None:
    """Serve MODEL_URI over HTTP: POST /invocations, GET /ping, /health, /version.

    Requests take MLflow's formats: JSON with dataframe_split, dataframe_records, instances or
    inputs (and optional params), or CSV with a header line.
    """
    from .server import serve

    _check_store(model_uri)
    try:
        serve(model_uri, host=host, port=port)
    except (NbtrackError, ImportError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("predict")
@click.argument("model_uri")
@click.option(
    "-i",
    "--input-path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV file with a header line, or a JSON file in a scoring-server format.",
)
@click.option(
    "-o",
    "--output-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the predictions: JSON if it ends in .json, else CSV. Default: stdout "
    "(CSV).",
)
@click.option(
    "-t",
    "--content-type",
    type=click.Choice(sorted(_MEDIA_TYPES)),
    default=None,
    help="The input's format. Default: from its extension (.csv or .json).",
)
def predict_command(
    model_uri: str, input_path: Path, output_path: Path | None, content_type: str | None
) -> None:
    """Score a file with MODEL_URI and write the predictions.

    CSV output has one column, prediction (prediction_0, prediction_1, ... for several
    outputs), or the columns of the DataFrame the model returns.
    """
    from .inputs import parse_request, predict_parsed
    from .server import load_model

    kind = content_type or _kind_of(input_path)
    _check_store(model_uri)
    try:
        parsed = parse_request(input_path.read_bytes(), _MEDIA_TYPES[kind])
    except NbtrackError as exc:
        raise click.ClickException(f"{input_path}: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {input_path}: {exc.strerror}") from exc
    try:
        model = load_model(model_uri)
        result = predict_parsed(model, parsed)
    except NbtrackError as exc:
        raise click.ClickException(str(exc)) from exc

    as_json = output_path is not None and output_path.suffix.lower() == ".json"
    text = _as_json(result) if as_json else _as_csv(result)
    if output_path is None:
        click.echo(text, nl=False)
        return
    try:
        output_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output_path}: {exc.strerror}") from exc


def _check_store(model_uri: str) -> None:
    """A ``runs:/`` or ``models:/`` URI is looked up in the command line's store, which must
    exist (a mistyped --store is an error, not a new empty store); a folder needs none."""
    from ...cli import require_store

    if model_uri.startswith(("runs:/", "models:/")):
        require_store(click.get_current_context())


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in _MEDIA_TYPES:
        return suffix
    raise click.BadParameter(
        f"cannot tell the format of {path.name!r} from its extension: name it .csv or .json, "
        "or pass --content-type csv or --content-type json",
        param_hint="'-i' / '--input-path'",
    )


def _as_json(result: Any) -> str:
    from .inputs import format_predictions

    try:
        return json.dumps(format_predictions(result), allow_nan=False) + "\n"
    except TypeError as exc:
        raise click.ClickException(str(exc)) from exc


def _as_csv(result: Any) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        frame = result
    elif isinstance(result, pd.Series):
        frame = pd.DataFrame({"prediction": result.to_numpy()})
    elif isinstance(result, dict):
        try:
            frame = pd.DataFrame({str(k): np.asarray(v).tolist() for k, v in result.items()})
        except ValueError as exc:
            raise click.ClickException(
                f"cannot write these predictions as CSV ({exc}): use an output path ending in .json"
            ) from exc
    else:
        array = np.asarray(result)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim == 1:
            frame = pd.DataFrame({"prediction": array})
        elif array.ndim == 2:
            names = [f"prediction_{i}" for i in range(array.shape[1])]
            frame = pd.DataFrame(array, columns=names)
        else:
            raise click.ClickException(
                f"cannot write {array.ndim}-dimensional predictions as CSV: use an output path "
                "ending in .json"
            )
    return str(frame.to_csv(index=False))
