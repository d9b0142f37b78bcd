"""Searching runs: the filter language, its compilation to SQL, and ``search_runs``."""

from .search import search_runs

__all__ = ["search_runs"]
