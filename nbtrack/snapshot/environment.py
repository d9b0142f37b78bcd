"""The environment a run ran in: Python, platform, installed distributions, git.

Reading every installed distribution's metadata takes tens of milliseconds, so the package list
is cached, and read again only when a folder of ``sys.path`` changes (``%pip install`` in the
kernel shows in the next run). The git state is re-read when HEAD moves (a commit, a checkout);
the dirty flag is taken then, so it describes the first run after each move.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["environment", "packages"]


def packages_signature() -> tuple[tuple[str, int], ...]:
    """The folders of ``sys.path`` with their modification times: an install changes them."""
    out = []
    for entry in sys.path:
        try:
            out.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(out)


def packages() -> tuple[tuple[str, str], ...]:
    """``(name, version)`` of every installed distribution, sorted by lower-cased name."""
    return _packages(packages_signature())


@functools.lru_cache(maxsize=4)
def _packages(signature: tuple[tuple[str, int], ...]) -> tuple[tuple[str, str], ...]:
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and name.lower() not in found:
            found[name.lower()] = f"{name}\0{dist.version}"
    return tuple(tuple(v.split("\0", 1)) for _, v in sorted(found.items()))  # type: ignore[misc]


def git_state(directory: str | Path) -> dict[str, Any]:
    """Commit, branch and dirty flag of the git work tree holding ``directory`` (or {})."""
    from ..tracking.context import GIT_BRANCH, GIT_COMMIT, git_info

    info = git_info(str(directory))
    if not info:
        return {}
    state: dict[str, Any] = {
        "commit": info.get(GIT_COMMIT),
        "branch": info.get(GIT_BRANCH),
    }
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory, capture_output=True, text=True, timeout=5, check=True,
        )
        state["dirty"] = bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        state["dirty"] = None  # git not installed, or not answering: unknown
    return state


def signature(directory: str | Path) -> tuple[Any, ...]:
    """Changes when :func:`environment` would: packages installed or removed, HEAD moved."""
    from ..tracking.context import git_dir, git_signature

    gitdir = git_dir(str(directory))
    return packages_signature(), gitdir, git_signature(gitdir) if gitdir else None


def environment(directory: str | Path) -> dict[str, Any]:
    """The environment snapshot: stable across runs of one kernel, so it is stored once."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": dict(packages()),
        "git": git_state(directory),
    }
