"""Time as nbtrack stores it: integer milliseconds since the epoch, as MLflow does."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000
