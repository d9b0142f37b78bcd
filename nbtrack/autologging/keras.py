"""Keras 3: a callback, and autolog of ``Model.fit``.

Keras 3 runs on a backend chosen before it is first imported (``KERAS_BACKEND=torch``, ``jax``
or ``tensorflow``); without one installed it cannot import, and autolog then stays off with a
warning saying so: it never breaks the notebook.

:class:`NbtrackCallback` (``nbtrack.keras.NbtrackCallback``) logs one ``fit``::

    model.fit(x, y, epochs=10, callbacks=[nbtrack.keras.NbtrackCallback()])

into the run ``run_id`` if given, else into the active run (a ``%%track`` cell, a
``with nbtrack.start_run():`` block), else into a run of its own for that fit, ended when
training ends (a fit that raised leaves it to be marked FAILED the next time the callback
trains, or when Python exits).

Autolog (``nbtrack.keras.autolog()``, or ``nbtrack.autolog()``) wraps ``keras.Model.fit`` and
adds the callback unless the fit has one already: inside an active run everything goes into it,
outside one each fit gets its own run named after the model's class. Logged:

- params at the start of training: ``epochs``, ``batch_size`` (when given to ``fit``, or to
  the callback), ``steps_per_epoch``, ``optimizer_name``, ``learning_rate`` (the optimizer's
  float32 value with 7 significant digits, or ``learning_rate_schedule``: the schedule's class),
  ``loss_function``, ``layer_count``, ``param_count``;
- metrics: every value in Keras' epoch logs (``loss``, ``val_loss``, the compiled metrics), at
  step = the epoch (0-based, as Keras counts: ``initial_epoch`` first);
- the fitted model, saved with ``model.save`` as the artifact ``model.keras`` (it works on the
  torch backend; ``log_models=False`` skips it). Load it back with
  ``keras.saving.load_model(nbtrack.Client().get_artifact_uri(run_id, "model.keras"))``.

A logging error inside the callback becomes a warning; training goes on.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

from ..tracking import fluent
from .patching import call_safely, patch, unpatch, warn
from .scope import fit_run, log_params, own_run, param_key, run_logged

__all__ = ["autolog", "callback_class", "disable", "enable"]

INTEGRATION = "keras"
_config: dict[str, Any] = {"log_models": True}
#: Runs the callback started and has not ended yet (their fit raised): run id -> client.
_open_runs: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name == "NbtrackCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_keras() -> Any:
    """``keras``, or an ImportError that says how to make it importable."""
    try:
        import keras
    except Exception as exc:
        backend = os.environ.get("KERAS_BACKEND")
        advice = (f"its backend KERAS_BACKEND={backend!r} did not load" if backend else
                  "Keras 3 needs a backend: set KERAS_BACKEND=torch (or jax; tensorflow if "
                  "installed) before keras is first imported")
        raise ImportError(f"keras cannot be imported ({type(exc).__name__}: {exc}); "
                          f"{advice}") from exc
    return keras


def autolog(
    log_models: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
) -> None:
    """Record every Keras ``Model.fit`` (see :mod:`nbtrack.autologging.keras`).

    Parameters
    ----------
    log_models
        Save each fitted model as the run's ``model.keras`` artifact.
    disable
        Turn Keras autolog off and put ``Model.fit`` back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).

    Notes
    -----
    When keras cannot be imported (no backend), autolog stays off with a warning.
    """
    from . import library_autolog

    if not disable:
        try:
            import_keras()
        except ImportError as exc:
            if not silent:
                from ..exceptions import NbtrackWarning

                warnings.warn(f"autolog (keras) is off: {exc}", NbtrackWarning, stacklevel=2)
            return
    library_autolog(INTEGRATION, disable, exclusive, silent, log_models=log_models)


def enable(log_models: bool = True) -> None:
    """Patch ``keras.Model.fit`` (where the backend's trainer defines it)."""
    keras = import_keras()
    _config.update(log_models=bool(log_models))
    owner = next(k for k in keras.Model.__mro__ if "fit" in k.__dict__)
    patch(INTEGRATION, owner, "fit", _hook)


def disable() -> None:
    """Put ``Model.fit`` back."""
    unpatch(INTEGRATION)


# -- the callback -------------------------------------------------------------------------------


def _end_open_run(run_id: str, status: str = "FAILED") -> None:
    client = _open_runs.pop(run_id, None)
    if client is None:
        return
    try:
        client.set_terminated(run_id, status)
    except Exception as exc:  # at exit, or a store gone: say so, never raise
        warn(INTEGRATION, f"could not end run {run_id}: {exc}")


@atexit.register
def _end_open_runs() -> None:
    for run_id in list(_open_runs):
        _end_open_run(run_id)


def _name(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return str(getattr(obj, "__name__", None) or type(obj).__name__)


def _training_params(model: Any, params: Mapping[str, Any], batch_size: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"epochs": params.get("epochs")}
    if batch_size is not None:
        out["batch_size"] = batch_size
    if params.get("steps") is not None:
        out["steps_per_epoch"] = params["steps"]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out["optimizer_name"] = type(optimizer).__name__
        rate = optimizer.get_config().get("learning_rate")
        if isinstance(rate, (int, float)):
            out["learning_rate"] = float(format(float(rate), ".7g"))
        elif isinstance(rate, Mapping):
            out["learning_rate_schedule"] = rate.get("class_name", "schedule")
    loss = getattr(model, "loss", None)
    if loss is not None:
        out["loss_function"] = _name(loss)
    out["layer_count"] = len(getattr(model, "layers", []))
    if getattr(model, "built", False):
        out["param_count"] = int(model.count_params())
    return {k: v for k, v in out.items() if v is not None}


@functools.cache
def callback_class() -> type:
    """The :class:`NbtrackCallback` class (built on first use, so that importing nbtrack
    never imports Keras); an ImportError saying what to do when keras cannot be imported."""
    import_keras()
    from keras.callbacks import Callback

    class NbtrackCallback(Callback):
        """A Keras callback logging one ``fit`` to an nbtrack run.

        Parameters
        ----------
        run_id
            Log into this run. Default: the active run when training starts, else a new run
            for this fit, ended when training ends.
        run_name
            The name of a run the callback starts. Default: the model's class name.
        batch_size
            Logged as the ``batch_size`` param (a callback cannot see the one given to
            ``fit``; autolog passes it).

        Notes
        -----
        Logs the params and metrics listed in :mod:`nbtrack.autologging.keras`, metrics at
        step = epoch. A logging error becomes an :class:`~nbtrack.exceptions.NbtrackWarning`:
        training goes on.
        """

        def __init__(
            self,
            run_id: str | None = None,
            run_name: str | None = None,
            batch_size: int | None = None,
        ) -> None:
            super().__init__()
            self.run_id = run_id
            self.run_name = run_name
            self.batch_size = batch_size
            self._target: tuple[Any, str] | None = None
            self._owned: str | None = None

        def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
            """Choose the run and log the training params."""
            call_safely(INTEGRATION, "logging the training params", self._begin)

        def _begin(self) -> None:
            if self._owned is not None:  # the last fit raised: that run did not finish
                _end_open_run(self._owned)
            self._target, self._owned = None, None
            if self.run_id is not None:
                self._target = (fluent._client_for(self.run_id), self.run_id)
            elif fluent.active_run() is not None:
                frame = fluent._stack[-1]
                self._target = (frame.client, frame.run.info.run_id)
            else:
                name = self.run_name or type(self.model).__name__
                client, run = own_run(INTEGRATION, name)
                self._target = (client, str(run.info.run_id))
                self._owned = self._target[1]
                _open_runs[self._owned] = self._target[0]
            client, run_id = self._target
            log_params(INTEGRATION, client, run_id,
                       _training_params(self.model, self.params or {}, self.batch_size))

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            """Log the epoch's metrics at step = ``epoch``."""
            if self._target is not None and logs:
                call_safely(INTEGRATION, "logging epoch metrics", self._log_epoch, epoch, logs)

        def _log_epoch(self, epoch: int, logs: Mapping[str, Any]) -> None:
            assert self._target is not None
            client, run_id = self._target
            for key, value in logs.items():
                try:
                    client.log_metric(run_id, param_key(key), value, None, int(epoch))
                except TypeError:  # not a number (Keras logs only numbers; a custom callback
                    continue       # may add others)

        def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
            """End a run the callback started."""
            if self._owned is not None:
                _end_open_run(self._owned, "FINISHED")
                self._owned = None

    NbtrackCallback.__module__ = __name__
    NbtrackCallback.__qualname__ = "NbtrackCallback"  # pickle finds it through __getattr__
    return NbtrackCallback


# -- autolog ------------------------------------------------------------------------------------


def _with_callback(original: Any, model: Any, args: tuple, kwargs: dict,
                   run_id: str) -> tuple[tuple, dict]:
    """fit's arguments with an NbtrackCallback added (unless one is there)."""
    bound = inspect.signature(original).bind(model, *args, **kwargs)
    callbacks = bound.arguments.get("callbacks")
    callbacks = [] if callbacks is None else list(callbacks)
    cls = callback_class()
    if not any(isinstance(c, cls) for c in callbacks):
        callbacks.append(cls(run_id=run_id, batch_size=bound.arguments.get("batch_size")))
    bound.arguments["callbacks"] = callbacks
    return bound.args[1:], bound.kwargs


def _log_model(client: Any, run_id: str, model: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        client.log_artifact(run_id, path)


def _hook(integration: str, original: Any, model: Any, args: tuple, kwargs: dict) -> Any:
    def start(client: Any, run_id: str) -> Any:
        return _with_callback(original, model, args, kwargs, run_id)

    def train(changed: Any) -> Any:
        call_args, call_kwargs = changed if changed is not None else (args, kwargs)
        return original(model, *call_args, **call_kwargs)

    def finish(client: Any, run_id: str, result: Any) -> None:
        if _config["log_models"]:
            call_safely(integration, "logging the model", _log_model, client, run_id, model)

    return run_logged(integration, fit_run(integration, type(model).__name__), train, start,
                      finish)
