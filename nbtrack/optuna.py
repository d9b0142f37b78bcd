"""``nbtrack.optuna``: record Optuna studies, each trial a child run of the study's run.

- :class:`NbtrackCallback`: for ``study.optimize(..., callbacks=[NbtrackCallback()])``;
- :func:`autolog`: record every ``Study.optimize`` with no callback to add.

See :mod:`nbtrack.autologging.optuna` for what is logged and where.
"""

from .autologging.optuna import NbtrackCallback, autolog

__all__ = ["NbtrackCallback", "autolog"]
