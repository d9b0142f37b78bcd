"""Test dependencies that pyproject's ``test`` extra installs only on some Pythons: importable as
``dependencies`` because pytest puts this folder (it has no ``__init__.py``) on ``sys.path``."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

#: Installed by the ``test`` extra on Python 3.11 only: the CPU build of torch installs there
#: without CUDA downloads, and Lightning and Keras (torch backend) need it.
ONLY_ON_311 = frozenset({"torch", "lightning", "keras"})


def needs(module: str) -> ModuleType:
    """Import ``module`` for a test. Where the ``test`` extra installs it, a failed import fails
    the test (a broken install must not pass as a skip); elsewhere the test is skipped."""
    if module not in ONLY_ON_311:
        raise ValueError(f"{module!r} is not one of {sorted(ONLY_ON_311)}")
    if sys.version_info[:2] == (3, 11):
        return importlib.import_module(module)
    return pytest.importorskip(module)
