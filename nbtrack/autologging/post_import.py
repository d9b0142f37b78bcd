"""Run a function when a library is first imported.

``nbtrack.autolog()`` turns an integration on as its library is imported, as MLflow does, rather
than importing every installed library itself: importing them all took seconds (torch,
Lightning, XGBoost...), and Keras, imported before the notebook chose its backend, stayed off.

A finder at the front of ``sys.meta_path`` finds a watched module's spec with the other finders
and wraps its loader: the module runs with its own loader (``__loader__`` and
``__spec__.loader`` are the original), and the functions waiting for it run once it has.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["cancel", "when_imported"]

_hooks: dict[str, list[Callable[[], Any]]] = {}
_lock = threading.Lock()


def when_imported(name: str, hook: Callable[[], Any]) -> None:
    """Call ``hook`` once the top-level module ``name`` has been imported: now, if it has."""
    if name in sys.modules:
        hook()
        return
    with _lock:
        _hooks.setdefault(name, []).append(hook)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def cancel(name: str) -> None:
    """Forget the functions waiting for ``name``."""
    with _lock:
        _hooks.pop(name, None)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        if fullname not in _hooks:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, fullname)
        return spec


class _Loader(importlib.abc.Loader):
    """The module's own loader, and the waiting functions run after it."""

    def __init__(self, loader: Any, name: str) -> None:
        self.loader = loader
        self.name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)  # a failed import leaves the functions waiting
        with _lock:
            hooks = _hooks.pop(self.name, [])
        for hook in hooks:
            try:
                hook()
            except Exception as exc:  # the user's import goes on, whatever autolog meets
                import warnings

                from ..exceptions import NbtrackWarning

                warnings.warn(f"after importing {self.name}: {type(exc).__name__}: {exc}",
                              NbtrackWarning, stacklevel=2)

    def __getattr__(self, name: str) -> Any:
        # the rest of the loader's own interface (get_code, get_source, is_package, ...), for
        # the callers of find_spec that use it (runpy, pkgutil)
        if name == "loader":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


_finder = _Finder()
