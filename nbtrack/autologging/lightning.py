"""PyTorch Lightning: a logger for the ``Trainer``, and autolog of ``Trainer.fit``.

:class:`NbtrackLogger` (``nbtrack.pytorch.NbtrackLogger``) is a Lightning logger::

    trainer = Trainer(max_epochs=10, logger=nbtrack.pytorch.NbtrackLogger())

It logs into the run ``run_id`` if given, else into the active run (a ``%%track`` cell, a
``with nbtrack.start_run():`` block), else into a run of its own, which it ends when Lightning
finalizes it (FINISHED, or FAILED when the fit raised). It never breaks training: a logging
error becomes a warning.

Autolog (``nbtrack.pytorch.autolog()``, or ``nbtrack.autolog()``) wraps
``lightning.pytorch.Trainer.fit``: inside an active run everything goes into it, outside one
each fit gets its own run named after the module's class. The trainer's own loggers are kept; an
``NbtrackLogger`` is added for the fit (and removed after it) unless the trainer has one already,
in which case autolog writes into that logger's run. Logged:

- params: the hyperparameters Lightning hands its loggers (``self.save_hyperparameters()`` in
  the module and the datamodule), nested keys joined with ``/``; ``epochs`` (``max_epochs``),
  ``optimizer_name`` and the first optimizer's scalar settings as ``optimizer_lr``,
  ``optimizer_momentum``, ... (prefixed, so they never clash with a hyperparameter ``lr``);
- metrics: every value the module logs with ``self.log``, at the trainer's global step (with
  Lightning's own ``epoch`` metric); keys with characters a metric key cannot hold get ``_``.
  ``log_every_n_epoch=n`` keeps the epoch-level values (``on_epoch=True``, validation
  results) of every n-th epoch only (epochs n-1, 2n-1, ... counted from 0);
  ``log_every_n_step=n`` keeps the step-level values of steps n-1, 2n-1, ... only (of those
  Lightning hands its loggers: the trainer's ``log_every_n_steps`` thins them first). Both
  apply to the logger autolog adds, not to a trainer's own ``NbtrackLogger``;
- the fitted module with the pytorch flavor as the artifact ``model`` (``log_models=False``
  skips it), with ``example_input_array`` as its input example when the module sets one, and
  the signature inferred from it (``log_model_signatures=False``: none); registered as a new
  version of ``registered_model_name`` when given;
- with ``log_checkpoints=True`` (or ``checkpoint=True``): the best and the last checkpoint
  files of the trainer's ``ModelCheckpoint`` under ``checkpoints/``, and the tag
  ``best_checkpoint`` (a warning when the trainer has no ``ModelCheckpoint``).

When autolog's logger is the trainer's only logger it is ``trainer.loggers[0]``, and Lightning
then puts checkpoints under ``<default_root_dir>/<experiment id>/<run id>/checkpoints``.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..tracking import fluent
from .patching import call_safely, patch, unpatch, warn
from .scope import (
    configure,
    exclusive,
    fit_run,
    log_params,
    model_artifact_path,
    own_run,
    param_key,
    run_logged,
)

__all__ = ["disable", "enable", "logger_class"]

INTEGRATION = "pytorch_lightning"
#: The settings of the last ``enable``; each call starts from these defaults.
_DEFAULTS: dict[str, Any] = {
    "log_models": True,
    "log_checkpoints": False,
    "log_every_n_epoch": 1,
    "log_every_n_step": None,
    "log_model_signatures": True,
    "registered_model_name": None,
}
_config: dict[str, Any] = dict(_DEFAULTS)
#: Optimizer settings that choose an implementation, not a hyperparameter: not logged.
_IMPLEMENTATION_SWITCHES = frozenset({"foreach", "fused", "differentiable", "capturable"})


def __getattr__(name: str) -> Any:
    if name == "NbtrackLogger":
        return logger_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enable(log_models: bool = True, **options: Any) -> None:
    """Patch ``lightning.pytorch.Trainer.fit`` (see the module docstring). ``options``: the
    other keys of ``_DEFAULTS``, and ``extra_tags`` (see ``nbtrack.pytorch.autolog``)."""
    from lightning.pytorch import Trainer

    for key in ("log_every_n_epoch", "log_every_n_step"):
        if key in options:
            check_every(key, options[key], none_ok=key == "log_every_n_step")
    configure(INTEGRATION, _config, _DEFAULTS, log_models=bool(log_models), **options)
    owner = next(k for k in Trainer.__mro__ if "fit" in k.__dict__)
    patch(INTEGRATION, owner, "fit", _hook)


def disable() -> None:
    """Put ``Trainer.fit`` back."""
    unpatch(INTEGRATION)


def check_every(name: str, value: Any, none_ok: bool) -> None:
    """``log_every_n_epoch`` / ``log_every_n_step``: a whole number >= 1 (or None)."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        from ..exceptions import InvalidInputError

        allowed = "a whole number >= 1" + (" or None" if none_ok else "")
        raise InvalidInputError(f"{name} must be {allowed}; got {value!r}")


_UNKNOWN = object()


def _due(trainer: Any, every_epoch: int, every_step: int | None, step: int | None) -> bool:
    """Whether the values Lightning hands its loggers now are logged: epoch-level ones of every
    ``every_epoch``-th epoch, step-level ones of every ``every_step``-th step. Lightning's
    logger connector tells them apart (``_first_loop_iter`` is None between an epoch's
    batches, where its epoch-level values are logged); when it cannot, everything is."""
    phase = getattr(getattr(trainer, "_logger_connector", None), "_first_loop_iter", _UNKNOWN)
    if phase is _UNKNOWN:  # a Lightning that keeps it elsewhere
        return True
    if phase is None:  # the end of an epoch (training or validation)
        return (trainer.current_epoch + 1) % every_epoch == 0
    return every_step is None or step is None or (step + 1) % every_step == 0


# -- shared by the logger and the hook ---------------------------------------------------------


def _flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Hyperparameters (a dict or an argparse Namespace, nested) as one flat dict, nested keys
    joined with ``/``."""
    if isinstance(params, argparse.Namespace):
        params = vars(params)
    flat: dict[str, Any] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, argparse.Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


# -- the logger ---------------------------------------------------------------------------------


@functools.cache
def logger_class() -> type:
    """The :class:`NbtrackLogger` class (built on first use, so that importing nbtrack never
    imports Lightning)."""
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.utilities import rank_zero_only

    class NbtrackLogger(Logger):
        """A Lightning logger writing to an nbtrack run.

        Parameters
        ----------
        run_id
            Log into this run. Default: the active run when the trainer first needs one, else a
            new run of the logger's own, ended when Lightning finalizes the logger (FINISHED, or
            FAILED after an error). Once chosen, the run is kept for every later ``fit``,
            ``validate`` and ``test`` of the trainer.
        experiment_name
            The experiment of a run the logger starts (created if needed). Default: the
            active experiment.
        run_name
            The name of a run the logger starts. Default: a generated name.
        log_checkpoints
            Log the trainer's best and last checkpoint files under ``checkpoints/`` when
            training ends.

        Notes
        -----
        ``experiment`` is the :class:`nbtrack.Client` of the store, ``name`` the experiment id
        and ``version`` the run id (as Lightning's MLflow logger). Only rank 0 logs. A logging
        error becomes an :class:`~nbtrack.exceptions.NbtrackWarning`: training goes on.
        """

        def __init__(
            self,
            run_id: str | None = None,
            experiment_name: str | None = None,
            run_name: str | None = None,
            log_checkpoints: bool = False,
        ) -> None:
            super().__init__()
            self._run_id = run_id
            self._experiment_name = experiment_name
            self._run_name = run_name
            self.log_checkpoints = log_checkpoints
            self._client: Any = None
            self._experiment_id = ""
            self._owned = False
            self._checkpoint_callback: Any = None
            self._logged_files: dict[str, float] = {}
            #: ``due(step)``: whether values handed over now are logged (autolog's logger).
            self._due: Callable[[int | None], bool] | None = None
            #: The last (step, value) of Lightning's ``epoch`` metric logged.
            self._epoch_logged: tuple[int | None, Any] | None = None

        def _bind(self) -> tuple[Any, str]:
            if self._client is None:
                if self._run_id is not None:
                    client = fluent._client_for(self._run_id)
                    run = client.get_run(self._run_id)  # a clear error if there is none
                elif fluent.active_run() is not None:
                    client, run = fluent._stack[-1].client, fluent._stack[-1].run
                else:
                    client, run = own_run(INTEGRATION, self._run_name, self._experiment_name)
                    self._owned = True
                self._client, self._run_id = client, str(run.info.run_id)
                self._experiment_id = str(run.info.experiment_id)
            assert self._run_id is not None
            return self._client, self._run_id

        @property
        def experiment(self) -> Any:
            """The :class:`nbtrack.Client` of the store the run is in."""
            return self._bind()[0]

        @property
        def run_id(self) -> str:
            """The id of the run the logger writes to (chosen now if not yet)."""
            return self._bind()[1]

        @property
        def name(self) -> str:
            """The experiment id of the run."""
            self._bind()
            return self._experiment_id

        @property
        def version(self) -> str:
            """The run id."""
            return self.run_id

        @rank_zero_only
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            """Log the hyperparameters as params (nested keys joined with ``/``)."""
            call_safely(INTEGRATION, "logging hyperparameters", self._log_hyperparams, params)

        def _log_hyperparams(self, params: Any) -> None:
            flat = _flatten(params)
            if flat:
                log_params(INTEGRATION, *self._bind(), flat)

        @rank_zero_only
        def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
            """Log each numeric value at ``step`` (buffered; strings are skipped)."""
            call_safely(INTEGRATION, "logging metrics", self._log_metrics, metrics, step)

        def _log_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
            if self._due is not None and not self._due(step):
                return
            client, run_id = self._bind()
            for key, value in metrics.items():
                if isinstance(value, str):
                    continue
                if key == "epoch":
                    # Lightning adds ``epoch`` to every batch of values it hands over, and at an
                    # epoch's last step it hands over several (the step's, validation's, the
                    # epoch's): one point per step is enough.
                    if self._epoch_logged == (step, value):
                        continue
                    self._epoch_logged = (step, value)
                client.log_metric(run_id, param_key(key), value, None, step)

        def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
            """Remember the checkpoint callback; its files are logged when training ends."""
            if self.log_checkpoints:
                self._checkpoint_callback = checkpoint_callback

        @rank_zero_only
        def finalize(self, status: str) -> None:
            """Log the checkpoints (``log_checkpoints``) and end a run the logger started."""
            if self._client is None:
                return
            if self._checkpoint_callback is not None:
                call_safely(INTEGRATION, "logging checkpoints", self._log_checkpoint_files)
            if self._owned:
                ended = "FAILED" if status == "failed" else "FINISHED"
                call_safely(INTEGRATION, "ending the run", self._client.set_terminated,
                            self._run_id, ended)

        def _log_checkpoint_files(self) -> None:
            client, run_id = self._bind()
            callback = self._checkpoint_callback
            best = getattr(callback, "best_model_path", "") or ""
            for path in dict.fromkeys((best, getattr(callback, "last_model_path", "") or "")):
                if not path or not os.path.isfile(path):
                    continue
                mtime = os.path.getmtime(path)
                if self._logged_files.get(path) != mtime:
                    client.log_artifact(run_id, path, "checkpoints")
                    self._logged_files[path] = mtime
            if best and os.path.isfile(best):
                client.set_tag(run_id, "best_checkpoint",
                               f"checkpoints/{os.path.basename(best)}")

    NbtrackLogger.__module__ = __name__
    NbtrackLogger.__qualname__ = "NbtrackLogger"  # pickle finds it through __getattr__
    return NbtrackLogger


# -- autolog ------------------------------------------------------------------------------------


@contextmanager
def _scope(integration: str, model: Any, ours: list[Any]) -> Iterator[tuple[Any, str] | None]:
    """The run autolog writes to: fit_run's, or (when the trainer has an NbtrackLogger already)
    that logger's run, made the active run for the fit."""
    if not ours:
        with fit_run(integration, type(model).__name__) as target:
            yield None if target is None else (target[0], target[1])
        return
    if integration in exclusive:
        yield None
        return
    run_id = ours[0].run_id
    active = fluent.active_run()
    if active is not None and active.info.run_id == run_id:
        yield fluent._stack[-1].client, run_id
        return
    with fluent.start_run(run_id=run_id, nested=True, live=False):
        yield fluent._stack[-1].client, run_id


def _add_logger(trainer: Any, run_id: str) -> list[Any]:
    previous = list(trainer.loggers)
    logger = logger_class()(run_id=run_id, log_checkpoints=_config["log_checkpoints"])
    every_epoch, every_step = _config["log_every_n_epoch"], _config["log_every_n_step"]
    if every_epoch != 1 or every_step is not None:
        logger._due = functools.partial(_due, trainer, every_epoch, every_step)
    trainer.loggers = [*previous, logger]
    return previous


def _restore_loggers(trainer: Any, previous: list[Any]) -> None:
    trainer.loggers = previous


def _scalar(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)


def _log_settings(client: Any, run_id: str, trainer: Any) -> None:
    params: dict[str, Any] = {}
    if trainer.max_epochs is not None and trainer.max_epochs >= 0:
        params["epochs"] = trainer.max_epochs
    optimizers = list(getattr(trainer, "optimizers", None) or [])
    if optimizers:
        optimizer = optimizers[0]
        params["optimizer_name"] = type(optimizer).__name__
        for key, value in getattr(optimizer, "defaults", {}).items():
            if value is not None and key not in _IMPLEMENTATION_SWITCHES and _scalar(value):
                params[f"optimizer_{key}"] = value
    if params:
        log_params(INTEGRATION, client, run_id, params)


def _log_model(model: Any) -> None:
    from ..models.flavors.pytorch import log_model

    example = getattr(model, "example_input_array", None)
    if not (hasattr(example, "detach") and hasattr(example, "shape")):
        example = None  # a dict or tuple of inputs: no single example to save
    log_model(model, model_artifact_path(), input_example=example,
              signature=None if _config["log_model_signatures"] else False,
              registered_model_name=_config["registered_model_name"])


def _hook(integration: str, original: Any, trainer: Any, args: tuple, kwargs: dict) -> Any:
    model = args[0] if args else kwargs.get("model")
    try:
        cls = logger_class()
        ours = [lg for lg in trainer.loggers if isinstance(lg, cls)]
        run_scope = _scope(integration, model, ours)
    except Exception as exc:  # the logger class cannot be built: train without logging
        warn(integration, f"no run to log to ({type(exc).__name__}: {exc}); it runs unlogged")
        return original(trainer, *args, **kwargs)
    previous: list[Any] = []  # the trainer's own loggers, put back after the fit

    def start(client: Any, run_id: str) -> None:
        if not ours:
            previous.append(_add_logger(trainer, run_id))
            if _config["log_checkpoints"] and getattr(trainer, "checkpoint_callback", None) is None:
                warn(integration, "checkpoint logging is on but the trainer has no "
                     "ModelCheckpoint (enable_checkpointing=False?): no checkpoint is logged")

    def done(client: Any, run_id: str, result: Any = None, trained: bool = False) -> None:
        call_safely(integration, "logging the training settings", _log_settings, client,
                    run_id, trainer)
        if trained and _config["log_models"] and model is not None:
            call_safely(integration, "logging the model", _log_model, model)
        if previous:
            call_safely(integration, "removing the logger", _restore_loggers, trainer,
                        previous[0])

    return run_logged(
        integration, run_scope, lambda _: original(trainer, *args, **kwargs), start,
        lambda client, run_id, result: done(client, run_id, result, trained=True), done,
    )
