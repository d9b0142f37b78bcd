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
  step = the epoch (0-based, as Keras counts: ``initial_epoch`` first). With
  ``log_every_epoch=False, log_every_n_steps=n`` instead: the batch logs (running means over
  the epoch) at every n-th optimizer step (step = the optimizer's iteration count), and the
  ``val_*`` values of each epoch at the step the epoch ended;
- the fitted model, saved with ``model.save`` (``save_model_kwargs`` passed on) as the
  artifact ``model.keras`` (it works on the torch backend; ``log_models=False`` skips it).
  Load it back with
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
from .scope import configure, fit_run, log_params, own_run, param_key, run_logged

__all__ = ["autolog", "callback_class", "disable", "enable"]

INTEGRATION = "keras"
#: The settings of the last ``enable``; each call starts from these defaults.
_DEFAULTS: dict[str, Any] = {
    "log_models": True,
    "log_every_epoch": True,
    "log_every_n_steps": None,
    "save_model_kwargs": None,
}
_config: dict[str, Any] = dict(_DEFAULTS)
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


def check_every(log_every_epoch: bool, log_every_n_steps: Any) -> None:
    """MLflow's rule: per epoch (``log_every_n_steps=None``) or every n steps, one of them."""
    from ..exceptions import InvalidInputError

    if log_every_n_steps is not None and (
        isinstance(log_every_n_steps, bool) or not isinstance(log_every_n_steps, int)
        or log_every_n_steps < 1
    ):
        raise InvalidInputError(
            f"log_every_n_steps must be a whole number >= 1 or None; got {log_every_n_steps!r}"
        )
    if log_every_epoch and log_every_n_steps is not None:
        raise InvalidInputError(
            "log_every_n_steps must be None when log_every_epoch=True (metrics are logged "
            f"per epoch or every n steps); got log_every_n_steps={log_every_n_steps!r}"
        )
    if not log_every_epoch and log_every_n_steps is None:
        raise InvalidInputError(
            "log_every_n_steps must be a whole number >= 1 when log_every_epoch=False"
        )


def autolog(
    log_every_epoch: bool = True,
    log_every_n_steps: int | None = None,
    log_models: bool = True,
    log_model_signatures: bool = True,
    save_exported_model: bool = False,
    log_datasets: bool = True,
    log_input_examples: bool = False,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    save_model_kwargs: dict[str, Any] | None = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Record every Keras ``Model.fit`` (see :mod:`nbtrack.autologging.keras`).

    The keywords are MLflow's (``mlflow.keras.autolog``); each call starts from the defaults.

    Parameters
    ----------
    log_every_epoch, log_every_n_steps
        Log the metrics at each epoch's end (the default), or, with ``log_every_epoch=False``
        and ``log_every_n_steps=n`` (a whole number >= 1), every n optimizer steps. One or the
        other, as in MLflow.
    log_models
        Save each fitted model as the run's ``model.keras`` artifact.
    save_model_kwargs
        Keyword arguments for ``model.save``.
    extra_tags
        Tags for every run autolog starts.
    disable
        Turn Keras autolog off and put ``Model.fit`` back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).
    log_model_signatures, log_datasets, disable_for_unsupported_versions
        Accepted; nbtrack saves the model as a ``.keras`` file with no signature, records no
        dataset information and does not check versions.
    log_input_examples, save_exported_model, registered_model_name
        Accepted, but nbtrack's ``model.keras`` artifact has no input example, no exported
        form and cannot be registered: passing ``True`` or a name says so in a warning.

    Notes
    -----
    When keras cannot be imported (no backend), autolog stays off with a warning.
    """
    from ..exceptions import InvalidInputError
    from . import library_autolog

    del log_model_signatures, log_datasets, disable_for_unsupported_versions
    check_every(log_every_epoch, log_every_n_steps)
    if save_model_kwargs is not None and not isinstance(save_model_kwargs, dict):
        raise InvalidInputError(f"save_model_kwargs must be a dict; got {save_model_kwargs!r}")
    ignored = [f"{k}={v!r}" for k, v in (("log_input_examples", log_input_examples),
                                         ("save_exported_model", save_exported_model),
                                         ("registered_model_name", registered_model_name))
               if v]
    if ignored and not disable:
        warnings.warn(
            f"nbtrack's Keras autolog ignores {', '.join(ignored)}: it saves the model as the "
            "artifact model.keras, with no input example, no exported form and no registry "
            "entry",
            UserWarning,
            stacklevel=2,
        )
    if not disable:
        try:
            import_keras()
        except ImportError as exc:
            if not silent:
                from ..exceptions import NbtrackWarning

                warnings.warn(f"autolog (keras) is off: {exc}", NbtrackWarning, stacklevel=2)
            return
    library_autolog(INTEGRATION, disable, exclusive, silent, log_models=log_models,
                    log_every_epoch=bool(log_every_epoch), log_every_n_steps=log_every_n_steps,
                    save_model_kwargs=save_model_kwargs, extra_tags=extra_tags)


def enable(log_models: bool = True, **options: Any) -> None:
    """Patch ``keras.Model.fit`` (where the backend's trainer defines it). ``options``: the
    other keys of ``_DEFAULTS``, and ``extra_tags`` (see ``autolog``)."""
    keras = import_keras()
    check_every(options.get("log_every_epoch", True), options.get("log_every_n_steps"))
    configure(INTEGRATION, _config, _DEFAULTS, log_models=bool(log_models), **options)
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
        log_every_epoch, log_every_n_steps
            Log the metrics at each epoch's end (the default), or, with
            ``log_every_epoch=False, log_every_n_steps=n``, the batch logs every n optimizer
            steps and the ``val_*`` values at the step each epoch ended (as MLflow's
            callback, one or the other).

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
            log_every_epoch: bool = True,
            log_every_n_steps: int | None = None,
        ) -> None:
            check_every(log_every_epoch, log_every_n_steps)
            super().__init__()
            self.log_every_epoch = log_every_epoch
            self.log_every_n_steps = log_every_n_steps
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
            """Log the epoch's metrics at step = ``epoch`` (or, when logging every n steps,
            its ``val_*`` values at the optimizer's step)."""
            if self._target is None or not logs:
                return
            if self.log_every_epoch:
                call_safely(INTEGRATION, "logging epoch metrics", self._log, logs, int(epoch))
            else:
                call_safely(INTEGRATION, "logging validation metrics", self._log,
                            {k: v for k, v in logs.items() if k.startswith("val_")},
                            self._iterations())

        def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            """Every ``log_every_n_steps`` optimizer steps: log the batch logs at that step."""
            if self._target is None or not logs or self.log_every_n_steps is None:
                return
            call_safely(INTEGRATION, "logging step metrics", self._log_step, logs)

        def _iterations(self) -> int:
            """The optimizer's step count (the backend's scalar read directly: converting it
            through numpy warns on every batch on the torch backend)."""
            return int(self.model.optimizer.iterations.value)

        def _log_step(self, logs: Mapping[str, Any]) -> None:
            step = self._iterations()
            assert self.log_every_n_steps is not None
            if step % self.log_every_n_steps == 0:
                self._log(logs, step)

        def _log(self, logs: Mapping[str, Any], step: int) -> None:
            assert self._target is not None
            client, run_id = self._target
            for key, value in logs.items():
                try:
                    client.log_metric(run_id, param_key(key), value, None, step)
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
        callbacks.append(cls(run_id=run_id, batch_size=bound.arguments.get("batch_size"),
                             log_every_epoch=_config["log_every_epoch"],
                             log_every_n_steps=_config["log_every_n_steps"]))
    bound.arguments["callbacks"] = callbacks
    return bound.args[1:], bound.kwargs


def _log_model(client: Any, run_id: str, model: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path, **(_config["save_model_kwargs"] or {}))
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
