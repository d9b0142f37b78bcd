"""Which run autolog writes to.

Inside an active run (a ``%%track`` cell, a ``with nbtrack.start_run():`` block) everything goes
into that run; searches and trials get child runs of it. Outside both, each fit gets its own run,
named after the estimator, ended when the fit returns (FAILED if it raised).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..tracking import fluent

__all__ = ["AUTOLOG_TAG", "child_run", "exclusive", "fit_run", "param_value"]

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
    client._set_internal_tag(run.info.run_id, AUTOLOG_TAG, integration)
    with run:
        yield client, run.info.run_id, True


def child_run(client: Any, parent_run_id: str, run_name: str, integration: str) -> str:
    """A finished child run of ``parent_run_id`` (for search candidates and trials)."""
    parent = client.get_run(parent_run_id)
    child = client.create_run(parent.info.experiment_id, run_name=run_name,
                              parent_run_id=parent_run_id)
    client._set_internal_tag(child.info.run_id, AUTOLOG_TAG, integration)
    return str(child.info.run_id)


def param_value(value: Any) -> Any:
    """A param as autolog logs it: plain values as they are, objects by their repr (cut at 500
    characters)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = repr(value)
    return text if len(text) <= 500 else text[:497] + "..."
