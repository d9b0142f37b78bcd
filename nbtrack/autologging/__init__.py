"""Autolog: training as usual, recorded with no log calls.

``nbtrack.autolog()`` (or ``%nbtrack autolog on``) turns on every integration whose library is
installed; each library also has its own switch, as in MLflow (``nbtrack.sklearn.autolog()``,
``nbtrack.sklearn.autolog(disable=True)``). One module per library:

=================  ==========================================================================
sklearn            every ``fit`` of estimators, pipelines and searches (child runs for the best
                   candidates), training metrics, a data fingerprint, the model
xgboost, lightgbm  ``train`` and the scikit-learn wrappers: params, eval metrics per iteration
                   as steps, best iteration, feature importance (tables and a chart), the model
pytorch_lightning  ``Trainer.fit``: hyperparameters, every ``self.log`` value at its step, the
                   model, checkpoints optional (``nbtrack.pytorch.NbtrackLogger`` alone works)
keras              ``Model.fit``: params, per-epoch metrics, ``model.keras``
                   (``nbtrack.keras.NbtrackCallback`` alone works)
optuna             ``Study.optimize``: a child run per trial, the best trial on the study's run
                   (``nbtrack.optuna.NbtrackCallback`` alone works)
=================  ==========================================================================

Plain PyTorch loops: ``nbtrack.pytorch.log_step(loss)`` logs the loss at steps 0, 1, 2, ...

Where it logs: inside an active run (a ``%%track`` cell, a ``with start_run():`` block) into
that run; outside, one run per fit named after the estimator. Autolog never breaks training: an
error in its own work becomes a warning (``silent=True`` hides those) and the fit goes on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from typing import Any

from ..exceptions import InvalidInputError
from . import patching, post_import, scope

__all__ = ["INTEGRATIONS", "autolog", "enabled_integrations"]

#: Integration name -> (the library it needs, its module here).
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "sklearn": ("sklearn", "nbtrack.autologging.sklearn"),
    "xgboost": ("xgboost", "nbtrack.autologging.xgboost"),
    "lightgbm": ("lightgbm", "nbtrack.autologging.lightgbm"),
    "pytorch_lightning": ("lightning", "nbtrack.autologging.lightning"),
    "keras": ("keras", "nbtrack.autologging.keras"),
    "optuna": ("optuna", "nbtrack.autologging.optuna"),
}


#: Integrations whose library could not load, already reported by ``nbtrack.autolog()``.
_reported_broken: set[str] = set()


def _configure(name: str, disable: bool, exclusive: bool, silent: bool, *,
               explicit: bool = True, **options: Any) -> bool:
    """Turn one integration on or off; False (with a warning) if its library cannot load.
    ``explicit``: asked for by the library's own switch, which warns each time; ``autolog()``
    warns once per process of a library that cannot load (keras with no backend, say)."""
    if disable and not patching.is_patched(name):
        scope.exclusive.discard(name)
        return True  # nothing to put back (and no reason to import the library)
    try:
        module = importlib.import_module(INTEGRATIONS[name][1])
        if not disable:
            importlib.import_module(INTEGRATIONS[name][0])
    except Exception as exc:  # installed but broken (keras without a backend, say)
        if not silent and (explicit or name not in _reported_broken):
            _reported_broken.add(name)
            import warnings

            from ..exceptions import NbtrackWarning

            warnings.warn(f"autolog ({name}) is off: {type(exc).__name__}: {exc}",
                          NbtrackWarning, stacklevel=3)
        return False
    if disable:
        module.disable()
        return True
    patching.set_silent(name, silent)
    if exclusive:
        scope.exclusive.add(name)
    else:
        scope.exclusive.discard(name)
    module.enable(**options)
    return True


#: MLflow's flavor names for the integrations, as ``exclude_flavors`` may give them.
_FLAVOR_NAMES = {"pytorch": "pytorch_lightning", "lightning": "pytorch_lightning",
                 "tensorflow": "keras"}


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
    *,
    max_tuning_runs: int = 5,
) -> list[str]:
    """Turn on (or with ``disable=True`` off) autolog for every installed library.

    The signature is MLflow's, so MLflow code passes its arguments unchanged.

    Parameters
    ----------
    log_input_examples, log_model_signatures
        Accepted as MLflow's: scikit-learn, XGBoost, LightGBM and Lightning models are saved
        with a few rows of their training input and the signature inferred from it either way
        (Keras models as a ``.keras`` file, without).
    log_models
        Save each fitted model as the run's ``model`` artifact.
    log_datasets, log_traces, disable_for_unsupported_versions
        Accepted for MLflow's signature; nbtrack logs no datasets or traces, and tries every
        installed version.
    disable
        Turn autolog off and put every patched method back.
    exclusive
        Log nothing into runs you started yourself (only into runs autolog starts).
    silent
        No warnings from autolog's own failures (they never stop training either way).
    extra_tags
        Tags to set on every run autolog starts.
    exclude_flavors
        Integrations to leave alone, by name (``"sklearn"``, ``"xgboost"``, ``"lightgbm"``,
        ``"pytorch"`` or ``"pytorch_lightning"``, ``"keras"``, ``"optuna"``).
    max_tuning_runs
        Child runs per hyperparameter search: the best ``max_tuning_runs`` candidates.

    Returns
    -------
    list of str
        The integrations now on (or, with ``disable``, now off). A library not imported yet
        is not imported here: its integration turns on when the notebook imports it, as in
        MLflow (so ``autolog()`` stays quick, and Keras finds the backend chosen after it).
    """
    del log_input_examples, log_model_signatures, log_datasets, log_traces
    del disable_for_unsupported_versions
    # Names of flavors nbtrack has no autolog for (openai, statsmodels, ...) exclude nothing,
    # as in MLflow.
    excluded = {_FLAVOR_NAMES.get(f, f) for f in exclude_flavors or ()}
    scope.check_max_tuning_runs(max_tuning_runs)  # now, not when scikit-learn is imported
    tags = {}
    if extra_tags and not disable:
        from ..tracking.validation import check_tag

        # Checked now, so that a bad tag fails here rather than at the first fit.
        tags = dict(check_tag(k, v) for k, v in extra_tags.items())
    scope.extra_tags.clear()
    scope.extra_tags.update(tags)
    names = []
    for name, (library, _) in INTEGRATIONS.items():
        if name in excluded or importlib.util.find_spec(library) is None:
            continue
        post_import.cancel(library)  # this call's options replace an earlier call's
        if not disable and name in _switched_off:  # its own switch said off: it stays off,
            continue  # as in MLflow
        options: dict[str, object] = {"log_models": log_models}
        if name == "sklearn":
            options["max_tuning_runs"] = max_tuning_runs
        if not disable and library not in sys.modules:  # on when the notebook imports it
            post_import.when_imported(library, functools.partial(
                _configure, name, disable, exclusive, silent, explicit=False, **options
            ))
            names.append(name)
        elif _configure(name, disable, exclusive, silent, explicit=False, **options):
            names.append(name)
    return names


def enabled_integrations() -> list[str]:
    """The integrations whose patches are in place."""
    return [n for n in INTEGRATIONS if patching.is_patched(n)]


#: Integrations turned off by their own switch (``nbtrack.sklearn.autolog(disable=True)``):
#: ``nbtrack.autolog()`` leaves them off.
_switched_off: set[str] = set()


def library_autolog(name: str, disable: bool, exclusive: bool, silent: bool,
                    **options: Any) -> None:
    """One library's switch (``nbtrack.sklearn.autolog(...)`` and the like)."""
    if name not in INTEGRATIONS:
        raise InvalidInputError(f"no autolog for {name!r}; there is {', '.join(INTEGRATIONS)}")
    post_import.cancel(INTEGRATIONS[name][0])  # its own switch decides, not autolog()'s wait
    if disable:
        _switched_off.add(name)
    else:
        _switched_off.discard(name)
    _configure(name, disable, exclusive, silent, **options)
