"""MLflow's ``mlflow.entities`` path for the tracking objects: code that imports
``from mlflow.entities import ViewType, Metric, Param, RunTag, FileInfo`` runs with nbtrack
unchanged."""

from __future__ import annotations

from .tracking.entities import (
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

__all__ = [
    "Experiment",
    "FileInfo",
    "LifecycleStage",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
]
