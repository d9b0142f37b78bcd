"""Experiments, runs, the active-run stack, params/metrics/tags/artifacts and the write buffer.

``MlflowClient`` is here too, where MLflow code imports it from (``from mlflow.tracking import
MlflowClient``); it is loaded on first use, so importing a submodule stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MlflowClient"]


def __getattr__(name: str) -> Any:
    if name == "MlflowClient":
        from .client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
