"""The storage layer. It knows nothing of the tracking API above it."""

from .base import Store
from .sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store"]
