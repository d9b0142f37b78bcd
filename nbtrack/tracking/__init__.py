"""Experiments, runs, the active-run stack, params/metrics/tags/artifacts and the write buffer."""
