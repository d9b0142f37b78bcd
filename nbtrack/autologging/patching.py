"""Patching library methods safely: autolog must never break training.

:func:`patch` replaces ``owner.name`` with a wrapper that runs the integration's hook around the
original. The rules every integration gets from here:

- an error inside the hook (before or after the original) becomes a warning (none when the
  integration is ``silent``) and the original's result is returned unchanged;
- an error raised by the original (the training itself) propagates as it would have;
- only the outermost patched call of an integration is logged: a Pipeline's ``fit`` calls its
  steps' ``fit``, a search fits many candidates, and those inner calls run plain, in worker
  threads too (joblib's threading backend): while one thread's logged call is in flight, the
  integration's calls from other threads run plain;
- :func:`unpatch` puts every original back (``autolog(disable=True)``).
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..exceptions import NbtrackWarning

__all__ = ["Hook", "is_patched", "patch", "unpatch", "warn"]

#: A hook gets (integration, original, self, args, kwargs) and calls ``original`` itself.
Hook = Callable[[str, Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any  # the attribute as found in owner.__dict__ (function, classmethod, ...)


_patches: dict[str, list[_Patch]] = {}
_depth = threading.local()
_owners: dict[str, int] = {}  # integration -> the thread whose logged call is in flight
_owners_lock = threading.Lock()
_silent: dict[str, bool] = {}


def warn(integration: str, message: str) -> None:
    if not _silent.get(integration, False):
        warnings.warn(f"autolog ({integration}): {message}", NbtrackWarning, stacklevel=3)


def set_silent(integration: str, silent: bool) -> None:
    _silent[integration] = silent


@contextmanager
def _level(integration: str) -> Iterator[int]:
    depth = getattr(_depth, integration, 0)
    setattr(_depth, integration, depth + 1)
    try:
        yield depth
    finally:
        setattr(_depth, integration, depth)


def inside(integration: str) -> bool:
    """True while a logged call of ``integration`` is running (in this thread or another)."""
    return getattr(_depth, integration, 0) > 0 or integration in _owners


def _claim(integration: str) -> bool:
    """Make this thread the one whose call of ``integration`` is logged; False if another
    thread's is in flight (this call is then part of that one's work)."""
    me = threading.get_ident()
    with _owners_lock:
        owner = _owners.setdefault(integration, me)
    return owner == me


def _release(integration: str) -> None:
    with _owners_lock:
        if _owners.get(integration) == threading.get_ident():
            del _owners[integration]


def patch(integration: str, owner: Any, name: str, hook: Hook) -> None:
    """Wrap ``owner.name`` (a method defined on ``owner`` itself) with ``hook``."""
    original = owner.__dict__[name]
    if getattr(original, "__nbtrack_autolog__", None) == integration:
        return  # patched already
    function = original

    @functools.wraps(function)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _level(integration) as depth:
            if depth > 0 or not _claim(integration):
                return function(self, *args, **kwargs)
            try:
                return hook(integration, function, self, args, kwargs)
            finally:
                _release(integration)

    wrapper.__nbtrack_autolog__ = integration  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)
    _patches.setdefault(integration, []).append(_Patch(owner, name, original))


def unpatch(integration: str) -> None:
    for p in reversed(_patches.pop(integration, [])):
        setattr(p.owner, p.name, p.original)


def is_patched(integration: str) -> bool:
    return bool(_patches.get(integration))


def call_safely(integration: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None with a warning if it raises: for work around the training."""
    try:
        return fn(*args)
    except Exception as exc:
        warn(integration, f"{what} failed and was skipped: {type(exc).__name__}: {exc}")
        return None
