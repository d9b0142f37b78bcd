"""``nbtrack.keras``: record Keras 3 training (MLflow's ``mlflow.keras``).

- :func:`autolog`: record every ``Model.fit`` (params, per-epoch metrics, the model as
  ``model.keras``);
- ``NbtrackCallback``: the callback autolog adds, to use by hand in ``fit(callbacks=[...])``.

See :mod:`nbtrack.autologging.keras`. Keras needs a backend chosen before it is first imported
(``KERAS_BACKEND=torch``, ``jax`` or ``tensorflow``); ``NbtrackCallback`` is built from
``keras.callbacks.Callback`` on first use, so importing this module never imports Keras.
"""

from typing import TYPE_CHECKING, Any

from .autologging.keras import autolog

if TYPE_CHECKING:
    from .autologging.keras import NbtrackCallback

__all__ = ["NbtrackCallback", "autolog"]


def __getattr__(name: str) -> Any:
    if name == "NbtrackCallback":
        from .autologging.keras import callback_class

        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
