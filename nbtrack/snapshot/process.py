"""Snapshots of a run started from a plain script: the script file and the environment.

Computed once per process (per script version and environment, re-checked at most once a
second): ``start_run`` in a loop then only links each run to the stored content, in the same
transaction that creates the run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import zlib
from pathlib import Path
from typing import Any

from .capture import _dumps
from .environment import environment, signature

__all__ = ["script_snapshots"]

#: ``(kind, sha256, size, zlib-compressed content)``
Snapshot = tuple[str, str, int, bytes]


def _entry(kind: str, data: bytes) -> Snapshot:
    return kind, hashlib.sha256(data).hexdigest(), len(data), zlib.compress(data, 6)


@functools.lru_cache(maxsize=8)
def _cached(script: str, mtime_ns: int, env_signature: tuple[Any, ...]) -> tuple[Snapshot, ...]:
    path = Path(script)
    return (
        _entry("script", path.read_bytes()),
        _entry("environment", _dumps(environment(path.parent))),
    )


#: How long a checked script/environment stays trusted: runs started in a tight loop do not
#: re-stat the script and sys.path each time.
RECHECK_S = 1.0
_last: dict[str, tuple[float, tuple[Snapshot, ...]]] = {}


def script_snapshots(script: str) -> tuple[Snapshot, ...]:
    """The script's and the environment's snapshots; () if the script cannot be read."""
    now = time.monotonic()
    seen = _last.get(script)
    if seen is not None and now - seen[0] < RECHECK_S:
        return seen[1]
    try:
        mtime = os.stat(script).st_mtime_ns
        found = _cached(script, mtime, signature(os.path.dirname(script)))
    except OSError:
        found = ()
    _last[script] = (now, found)
    return found
