"""MLflow's ``mlflow.client`` path: ``from nbtrack.client import MlflowClient`` works as
``from mlflow.client import MlflowClient`` does."""

from __future__ import annotations

from .tracking.client import Client

MlflowClient = Client

__all__ = ["MlflowClient"]
