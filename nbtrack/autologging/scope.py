"""Which run autolog writes to.

Inside an active run (a ``%%track`` cell, a ``with nbtrack.start_run():`` block) everything goes
into that run; searches and trials get child runs of it. Outside both, each fit gets its own run,
named after the estimator, ended when the fit returns (FAILED if it raised).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ..tracking import fluent
from ..tracking.validation import MAX_KEY_LENGTH
from .patching import call_safely, warn

__all__ = [
    "AUTOLOG_TAG",
    "child_run",
    "exclusive",
    "fit_run",
    "log_params",
    "model_artifact_path",
    "own_run",
    "param_key",
    "param_text",
    "param_value",
    "run_logged",
]

AUTOLOG_TAG = "nbtrack.autolog"

#: Integrations that stay out of runs the user started (MLflow's ``exclusive=True``).
exclusive: set[str] = set()


@contextmanager
def fit_run(integration: str, run_name: str) -> Iterator[tuple[Any, str, bool] | None]:
    """Yields ``(client, run_id, owned)`` (``owned`` when autolog started the run itself), or
    None when nothing should be logged (an ``exclusive`` integration inside a user's run)."""
    active = fluent.active_run()
    if active is not None:
        if integration in exclusive:
            yield None
            return
        client = fluent._stack[-1].client
        yield client, active.info.run_id, False
        return
    run = fluent.start_run(run_name=run_name, live=False)
    client = fluent._stack[-1].client
    mark_autolog_run(client, run.info.run_id, integration)
    with run:
        yield client, run.info.run_id, True


def child_run(client: Any, parent_run_id: str, run_name: str, integration: str) -> str:
    """A finished child run of ``parent_run_id`` (for search candidates and trials)."""
    parent = client.get_run(parent_run_id)
    child = client.create_run(parent.info.experiment_id, run_name=run_name,
                              parent_run_id=parent_run_id, _ended_by_this_process=True)
    mark_autolog_run(client, child.info.run_id, integration)
    return str(child.info.run_id)


def param_value(value: Any) -> Any:
    """A param as autolog logs it: plain values as they are, objects by their repr (cut at 500
    characters)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = repr(value)
    return text if len(text) <= 500 else text[:497] + "..."


#: Characters a key cannot hold (see nbtrack.tracking.validation); autolog replaces them.
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")


def param_key(name: Any) -> str:
    """A library's param or metric name as a valid key: ``error@0.7`` -> ``error_0.7``, and a
    name that would not read as itself as a path made one (``opt/`` -> ``opt``, ``a//b`` ->
    ``a/b``, ``../x`` -> ``__/x``). Loggers call it for every metric of every step: each
    name is cleaned once."""
    return _clean_key(str(name)[:MAX_KEY_LENGTH])


@functools.lru_cache(maxsize=4096)
def _clean_key(name: str) -> str:
    parts = [p for p in _BAD_KEY_CHARS.sub("_", name).split("/") if p and p != "."]
    key = "/".join("__" if p == ".." else p for p in parts)
    if key.startswith(".."):
        key = "__" + key[2:]
    return key or "_"


def param_text(value: Any) -> str:
    """A value as a tag's text, cut at 500 characters."""
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def log_params(integration: str, client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` (keys made valid, values as :func:`param_value` gives them). One that
    conflicts with a value logged before (a second fit with other settings in the same run) is
    skipped with a warning; the others are logged."""
    from ..exceptions import ParamConflictError

    values = {param_key(k): param_value(v) for k, v in params.items()}
    try:
        client.log_params(run_id, values)
    except ParamConflictError:
        for key, value in values.items():
            try:
                client.log_param(run_id, key, value)
            except ParamConflictError as exc:
                warn(integration, f"param not logged: {exc}")


#: Tags that ``nbtrack.autolog(extra_tags=...)`` puts on every run autolog starts.
extra_tags: dict[str, str] = {}
#: Per integration, the ``extra_tags`` of its own switch (``nbtrack.sklearn.autolog(...)``).
integration_tags: dict[str, dict[str, str]] = {}


def mark_autolog_run(client: Any, run_id: str, integration: str) -> None:
    """Tag a run that autolog started: the integration, and the user's ``extra_tags``."""
    client._set_internal_tag(run_id, AUTOLOG_TAG, integration)
    tags = {**extra_tags, **integration_tags.get(integration, {})}
    if tags:
        client.set_tags(run_id, tags)


def own_run(integration: str, run_name: str | None,
            experiment_name: str | None = None) -> tuple[Any, Any]:
    """A new run that is not made active (a logger's or a callback's own), with the code
    version ``start_run`` would record; returns ``(client, run)``."""
    client = fluent._client()
    experiment_id = (client.get_or_create_experiment(experiment_name).experiment_id
                     if experiment_name else fluent._active_experiment_id(client))
    run = fluent.create_run_with_code(client, experiment_id, run_name=run_name)
    mark_autolog_run(client, run.info.run_id, integration)
    return client, run


def run_logged(
    integration: str,
    run_scope: AbstractContextManager[Any],
    train: Callable[[Any], Any],
    start: Callable[[Any, str], Any] | None = None,
    finish: Callable[[Any, str, Any], None] | None = None,
    failed: Callable[[Any, str], None] | None = None,
) -> Any:
    """Train inside ``run_scope`` (:func:`fit_run`, or an integration's own), logging around it.

    ``run_scope`` yields ``(client, run_id, ...)``, or None for "log nothing". ``start(client,
    run_id)`` logs what is known before training and returns what ``train`` needs (a callback,
    say); ``train(prepared)`` trains (``train(None)``: unlogged); ``finish(client, run_id,
    result)`` logs the results; ``failed(client, run_id)`` logs what it can when the training
    raised. Errors in those become warnings; an error in the training itself propagates, and
    a run autolog started for it ends FAILED.
    """
    try:
        target = run_scope.__enter__()
    except Exception as exc:  # no run could be had: train without logging
        warn(integration, f"no run to log to ({type(exc).__name__}: {exc}); it runs unlogged")
        return train(None)
    if target is None:  # exclusive, inside the user's run
        _leave(integration, run_scope, None)
        return train(None)
    client, run_id = target[0], target[1]
    prepared = call_safely(integration, "preparing the run", start, client, run_id) \
        if start is not None else None
    try:
        result = train(prepared)
    except BaseException as exc:
        if failed is not None:
            call_safely(integration, "logging after the failure", failed, client, run_id)
        _leave(integration, run_scope, exc)
        raise
    try:
        if finish is not None:
            call_safely(integration, "logging the results", finish, client, run_id, result)
    finally:
        _leave(integration, run_scope, None)
    return result


def _leave(integration: str, run_scope: AbstractContextManager[Any],
           exc: BaseException | None) -> None:
    """End the scope; a failure to end it is a warning, never hiding the training's error."""
    try:
        if exc is None:
            run_scope.__exit__(None, None, None)
        else:
            run_scope.__exit__(type(exc), exc, exc.__traceback__)
    except Exception as error:
        warn(integration, f"ending the run failed: {type(error).__name__}: {error}")


def check_max_tuning_runs(value: Any) -> int:
    """``max_tuning_runs``, or an error saying what it must be."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        from ..exceptions import InvalidInputError

        raise InvalidInputError(f"max_tuning_runs must be a whole number >= 0; got {value!r}")
    return value


def model_artifact_path(name: str = "model") -> str:
    """Where autolog saves the active run's model: ``model`` (or ``name``), or ``model-2``,
    ... when the run has one already (a second fit in the same run; a logged model is never
    replaced)."""
    from ..models.save import free_model_path

    frame = fluent._stack[-1]
    return free_model_path(frame.client, frame.run.info.run_id, name)


def configure(
    integration: str, config: dict[str, Any], defaults: dict[str, Any], **options: Any
) -> None:
    """Set an integration's ``config`` for its switch's call: its ``defaults`` with
    ``options`` over them (each call starts afresh, as in MLflow), and its ``extra_tags``
    checked now, so that a bad tag fails here rather than at the first fit."""
    from ..exceptions import InvalidInputError
    from ..tracking.validation import check_tag

    tags = options.pop("extra_tags", None) or {}
    if not isinstance(tags, dict):
        raise InvalidInputError(f"extra_tags must be a dict; got {tags!r}")
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"unknown {integration} autolog options: {', '.join(sorted(unknown))}")
    integration_tags[integration] = dict(check_tag(k, v) for k, v in tags.items())
    config.clear()
    config.update(defaults, **options)


def example_and_signature(
    config: dict[str, Any], example: Any, predict: Any
) -> tuple[Any, Any]:
    """``(input_example, signature)`` for an autologged model, as the switch's
    ``log_input_examples`` and ``log_model_signatures`` say: rows not saved may still give the
    signature (``predict`` makes its output); ``signature=False`` saves rows without one."""
    from ..models.signature import infer_signature

    if example is not None and not config["log_input_examples"]:
        if config["log_model_signatures"]:
            return None, infer_signature(example, predict(example))
        return None, None
    return example, (None if config["log_model_signatures"] else False)
