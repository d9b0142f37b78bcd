"""Optuna: a callback recording each trial as a child run, and autolog of ``Study.optimize``.

:class:`NbtrackCallback` (``nbtrack.optuna.NbtrackCallback``) goes in ``study.optimize``::

    study.optimize(objective, n_trials=50, callbacks=[nbtrack.optuna.NbtrackCallback()])

The study's run (the parent) is the run ``run_id`` if given, else the run active at the first
trial in the thread that called ``study.optimize`` (a ``%%track`` cell, a ``with
nbtrack.start_run():`` block), else a run the callback starts named ``optuna-study`` (Optuna
tells a callback nothing when a study ends, so that run is marked FINISHED after each trial,
with the last trial's end as its end time).

Each finished trial becomes a child run ``trial-<number>`` of the parent, with its start and end
times, and:

- params: the trial's params;
- metrics: ``value`` (``value_0``, ``value_1``, ... for several objectives; ``metric_name``
  renames them), and ``intermediate_value`` at each step the trial reported;
- tags ``optuna.trial_number`` and ``optuna.trial_state``; status FINISHED (COMPLETE or PRUNED)
  or FAILED.

After each trial the parent gets the best so far: the metric ``best_value`` (at step = the trial
number, so its history is the best-so-far curve) and the tags ``best_trial`` and
``best_params.<name>`` (params cannot change once logged; for several objectives the tag
``best_trials`` lists the Pareto front). The parent also gets the tags ``optuna.study_name``,
``optuna.directions``, ``optuna.sampler`` and ``optuna.pruner``.

Autolog (``nbtrack.optuna.autolog()``, or ``nbtrack.autolog()``) wraps ``Study.optimize``:
inside an active run the study goes into it, outside one each ``optimize`` gets its own run
``optuna-study``; the callback is added unless one is given. With ``n_jobs=1`` (the default)
each trial's child run is also the active run while the objective runs, so what the objective
logs (``nbtrack.log_metric``, a scikit-learn or Lightning fit under autolog) lands in its trial's
run (trial runs take no code snapshot of their own: the study's run holds it). When
``optimize`` returns, the best trial's params go on the parent as params ``best_<name>``.
Parallel trials (``n_jobs != 1``) get their child runs after they finish.

A recording error becomes a warning; the study goes on.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from ..tracking import fluent
from .patching import call_safely, patch, unpatch
from .scope import (
    fit_run,
    log_params,
    mark_autolog_run,
    own_run,
    param_key,
    param_text,
    run_logged,
)

__all__ = ["NbtrackCallback", "autolog", "disable", "enable"]

INTEGRATION = "optuna"
STUDY_RUN_NAME = "optuna-study"


def autolog(
    log_models: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
) -> None:
    """Record every ``Study.optimize`` (see :mod:`nbtrack.autologging.optuna`).

    Parameters
    ----------
    log_models
        Accepted for the same signature as the other integrations; a study has no model.
    disable
        Turn Optuna autolog off and put ``Study.optimize`` back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop the study either way).
    """
    from . import library_autolog

    library_autolog(INTEGRATION, disable, exclusive, silent, log_models=log_models)


def enable(log_models: bool = True) -> None:
    """Patch ``optuna.study.Study.optimize``."""
    del log_models  # a study has no model
    from optuna.study import Study

    patch(INTEGRATION, Study, "optimize", _hook)


def disable() -> None:
    """Put ``Study.optimize`` back."""
    unpatch(INTEGRATION)


def _optimizing_run(study: Any) -> Any:
    """The active-run frame of the thread that called ``study.optimize``: this thread, or with
    ``n_jobs > 1`` (trials end on Optuna's worker threads, which have no run of their own) the
    thread waiting in ``optimize`` for them. None when that thread has no active run."""
    if fluent.active_run() is not None:
        return fluent._stack[-1]
    here = threading.get_ident()
    for thread_id, top in sys._current_frames().items():
        frame: FrameType | None = None if thread_id == here else top
        while frame is not None:
            if frame.f_code.co_name == "optimize" and frame.f_locals.get("self") is study:
                return fluent._stack.top_of(thread_id)
            frame = frame.f_back
    return None


def _ms(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class NbtrackCallback:
    """An Optuna callback recording each finished trial as a child run of the study's run.

    Parameters
    ----------
    run_id
        The study's run. Default: the run active, at the first trial, in the thread that
        called ``study.optimize``, else a run the callback starts (named ``run_name``).
    metric_name
        The name of the trial's value metric; a sequence of names for several objectives.
        Default ``"value"`` (``value_0``, ``value_1``, ... for several objectives).
    run_name
        The name of a study run the callback starts. Default ``"optuna-study"``.

    Notes
    -----
    What is logged, and where, is listed in :mod:`nbtrack.autologging.optuna`. Safe with
    ``n_jobs > 1`` (trials are recorded one at a time). A recording error becomes an
    :class:`~nbtrack.exceptions.NbtrackWarning`: the study goes on.
    """

    def __init__(
        self,
        run_id: str | None = None,
        metric_name: str | Sequence[str] = "value",
        run_name: str = STUDY_RUN_NAME,
    ) -> None:
        if not isinstance(metric_name, str) and not (
            isinstance(metric_name, Sequence) and all(isinstance(n, str) for n in metric_name)
        ):
            from ..exceptions import InvalidInputError

            raise InvalidInputError(
                f"metric_name must be a string, or a sequence of strings (one per objective); "
                f"got {metric_name!r}"
            )
        self.run_id = run_id
        self.metric_name = metric_name
        self.run_name = run_name
        self._client: Any = None
        self._experiment_id = ""
        self._owned = False
        self._lock = threading.Lock()
        #: (study name, trial number) -> a child run opened while the objective ran (autolog)
        self._trial_runs: dict[tuple[str, int], str] = {}

    def __call__(self, study: Any, trial: Any) -> None:
        """Record ``trial`` (a ``FrozenTrial``) and the best trial so far."""
        with self._lock:
            call_safely(INTEGRATION, f"recording trial {trial.number}", self._record, study,
                        trial)

    def study_run(self, study: Any) -> tuple[Any, str]:
        """``(client, run_id)`` of the study's run, chosen at the first call."""
        if self._client is None:
            if self.run_id is not None:
                client = fluent._client_for(self.run_id)
                run = client.get_run(self.run_id)  # a clear error if there is none
            elif (frame := _optimizing_run(study)) is not None:
                client, run = frame.client, frame.run
            else:
                client, run = own_run(INTEGRATION, self.run_name)
                self._owned = True
            self.run_id = str(run.info.run_id)
            self._experiment_id = str(run.info.experiment_id)
            self._client = client
            client.set_tags(self.run_id, {
                "optuna.study_name": param_text(study.study_name),
                "optuna.directions": ",".join(d.name for d in study.directions),
                "optuna.sampler": type(study.sampler).__name__,
                "optuna.pruner": type(study.pruner).__name__,
            })
        assert self.run_id is not None
        return self._client, self.run_id

    def _metric_names(self, count: int) -> list[str]:
        if isinstance(self.metric_name, str):
            return [self.metric_name] if count == 1 else [
                f"{self.metric_name}_{i}" for i in range(count)]
        if len(self.metric_name) != count:
            from ..exceptions import InvalidInputError

            raise InvalidInputError(f"metric_name names {len(self.metric_name)} objectives; the "
                             f"study has {count}")
        return list(self.metric_name)

    def _record(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        client, parent = self.study_run(study)
        child = self._trial_runs.pop((study.study_name, trial.number), None)
        if child is None:
            run = client.create_run(self._experiment_id, start_time=_ms(trial.datetime_start),
                                    run_name=f"trial-{trial.number}", parent_run_id=parent,
                                    _ended_by_this_process=True)
            child = str(run.info.run_id)
            mark_autolog_run(client, child, INTEGRATION)
        log_params(INTEGRATION, client, child, trial.params)
        if trial.values is not None:
            names = self._metric_names(len(trial.values))
            client.log_metrics(
                child, dict(zip(map(param_key, names), trial.values, strict=True))
            )
        for step, value in sorted(trial.intermediate_values.items()):
            client.log_metric(child, "intermediate_value", value, None, step)
        client.set_tags(child, {"optuna.trial_number": trial.number,
                                "optuna.trial_state": trial.state.name})
        status = "FAILED" if trial.state == TrialState.FAIL else "FINISHED"
        client.set_terminated(child, status, _ms(trial.datetime_complete))
        self._log_best(client, parent, study, trial.number)
        if self._owned:
            client.set_terminated(parent, "FINISHED", _ms(trial.datetime_complete))

    def _log_best(self, client: Any, parent: str, study: Any, step: int) -> None:
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        if len(study.directions) > 1:
            front = ",".join(str(t.number) for t in study.best_trials)
            client.set_tag(parent, "best_trials", front)
            return
        best = study.best_trial
        client.log_metric(parent, "best_value", best.value, None, step)
        client.set_tags(parent, {"best_trial": best.number, **{
            f"best_params.{param_key(k)}": param_text(v) for k, v in best.params.items()}})


# -- autolog ------------------------------------------------------------------------------------


def _traced(func: Callable[[Any], Any], callback: NbtrackCallback) -> Callable[[Any], Any]:
    """``func`` running each trial inside its own child run (the active run meanwhile)."""
    from optuna import TrialPruned

    @functools.wraps(func)
    def objective(trial: Any) -> Any:
        started = call_safely(INTEGRATION, "starting the trial's run", _start_trial_run,
                              trial, callback)
        if started is None:
            return func(trial)
        run, client = started
        try:
            result = func(trial)
        except BaseException as exc:  # the callback will not see this trial: log its params
            call_safely(INTEGRATION, "logging the trial's params", log_params, INTEGRATION,
                        client,
                        run.info.run_id, trial.params)
            if isinstance(exc, TrialPruned):
                run.__exit__(None, None, None)
            else:
                run.__exit__(type(exc), exc, exc.__traceback__)
            raise
        run.__exit__(None, None, None)
        return result

    return objective


def _start_trial_run(trial: Any, callback: NbtrackCallback) -> tuple[Any, Any]:
    # no code snapshots of its own: a trial runs the code its parent, the study's run, holds
    suppressed = fluent._suppress_snapshots.set(True)
    try:
        run = fluent.start_run(run_name=f"trial-{trial.number}", nested=True, live=False)
    finally:
        fluent._suppress_snapshots.reset(suppressed)
    client = fluent._stack[-1].client
    mark_autolog_run(client, run.info.run_id, INTEGRATION)
    callback._trial_runs[(trial.study.study_name, trial.number)] = run.info.run_id
    return run, client


def _with_callback(original: Any, study: Any, args: tuple, kwargs: dict,
                   run_id: str) -> tuple[tuple, dict]:
    """optimize's arguments with an NbtrackCallback added (unless one is there), and with
    ``n_jobs=1`` the objective run inside each trial's child run."""
    bound = inspect.signature(original).bind(study, *args, **kwargs)
    given = bound.arguments.get("callbacks")
    callbacks = [] if given is None else list(given)
    ours = next((c for c in callbacks if isinstance(c, NbtrackCallback)), None)
    if ours is None:
        ours = NbtrackCallback(run_id=run_id)
        callbacks.append(ours)
    elif ours.run_id is None:  # the user's own callback: into the run autolog chose
        ours.run_id = run_id
    bound.arguments["callbacks"] = callbacks
    if bound.arguments.get("n_jobs", 1) == 1:
        bound.arguments["func"] = _traced(bound.arguments["func"], ours)
    return bound.args[1:], bound.kwargs


def _log_best_params(client: Any, run_id: str, study: Any) -> None:
    from optuna.trial import TrialState

    if len(study.directions) > 1:
        return
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    log_params(INTEGRATION, client, run_id,
               {f"best_{k}": v for k, v in study.best_params.items()})


def _hook(integration: str, original: Any, study: Any, args: tuple, kwargs: dict) -> Any:
    def start(client: Any, run_id: str) -> Any:
        return _with_callback(original, study, args, kwargs, run_id)

    def train(changed: Any) -> Any:
        call_args, call_kwargs = changed if changed is not None else (args, kwargs)
        return original(study, *call_args, **call_kwargs)

    def best(client: Any, run_id: str, result: Any = None) -> None:
        _log_best_params(client, run_id, study)

    return run_logged(integration, fit_run(integration, STUDY_RUN_NAME), train, start, best,
                      best)
