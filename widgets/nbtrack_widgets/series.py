"""Preparing metric series for display: smoothing, the x axis, downsampling.

Downsampling keeps the shape a person looks for: each bucket of steps contributes its minimum
and its maximum (in step order), so spikes and dips survive while a 100 k-point history becomes
at most ``max_points`` points in the browser.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["X_AXES", "downsample", "smooth", "x_values"]

X_AXES = ("step", "wall time", "relative time")


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with debiasing (TensorBoard's slider); NaN points are kept
    as NaN and do not poison the average."""
    if weight <= 0 or len(values) == 0:
        return values
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing must be in [0, 1); got {weight}")
    out = np.empty_like(values, dtype=float)
    last, count = 0.0, 0
    for i, v in enumerate(values):
        if np.isfinite(v):
            last = last * weight + (1 - weight) * v
            count += 1
            out[i] = last / (1 - weight**count)
        else:
            out[i] = v
    return out


def x_values(steps: np.ndarray, timestamps: np.ndarray, axis: str) -> np.ndarray:
    """Steps, wall-clock datetimes, or seconds since the first point."""
    if axis == "step":
        return steps
    if axis == "wall time":
        return timestamps.astype("datetime64[ms]")
    if axis == "relative time":
        return (timestamps - timestamps[0]) / 1000.0 if len(timestamps) else timestamps
    raise ValueError(f"x must be one of {', '.join(X_AXES)}; got {axis!r}")


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: per bucket its min and max of ``y``, in order."""
    n = len(y)
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = []
    filled = np.where(np.isnan(y), np.inf, y)
    emptied = np.where(np.isnan(y), -np.inf, y)
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        a = lo + int(np.argmin(filled[lo:hi]))
        b = lo + int(np.argmax(emptied[lo:hi]))
        keep += [a, b] if a <= b else [b, a]
    index = np.unique(np.array(keep))
    return x[index], y[index]
