"""The model registry: registered models, auto-numbered versions, stages, aliases, audit trail.

Its methods live on :class:`nbtrack.Client` (MLflow's names); the objects it returns are in
:mod:`nbtrack.registry.entities`.
"""
