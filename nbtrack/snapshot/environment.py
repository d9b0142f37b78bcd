"""The environment a run ran in: Python, platform, installed distributions (and which of them
were installed from a local path), git.

Reading every installed distribution's metadata takes tens of milliseconds, so the package list
is cached, and read again only when a folder of ``sys.path`` changes (``%pip install`` in the
kernel shows in the next run). The git state is re-read when HEAD moves (a commit, a checkout);
the dirty flag is taken then, so it describes the first run after each move.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["environment", "local_packages", "packages"]


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
    return _packages(packages_signature())[0]


def local_packages() -> tuple[tuple[str, str], ...]:
    """``(name, URL)`` of the installed distributions that came from a local path (an editable
    install of a checkout, a folder, a wheel file), as their ``direct_url.json`` (PEP 610)
    says: no package index has them."""
    return _packages(packages_signature())[1]


@functools.lru_cache(maxsize=4)
def _packages(
    signature: tuple[tuple[str, int], ...],
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    from importlib.metadata import distributions

    found: dict[str, tuple[str, str]] = {}
    local: dict[str, tuple[str, str]] = {}
    for dist in distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and name.lower() not in found:
            found[name.lower()] = (name, dist.version)
            url = _local_url(dist)
            if url is not None:
                local[name.lower()] = (name, url)
    return (
        tuple(v for _, v in sorted(found.items())),
        tuple(v for _, v in sorted(local.items())),
    )


def _local_url(dist: Any) -> str | None:
    """The ``file:`` URL a distribution was installed from, if it was (else None)."""
    try:
        text = dist.read_text("direct_url.json")
        url = json.loads(text).get("url") if text else None
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return None
    return url if isinstance(url, str) and url.startswith("file:") else None


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
        "local_packages": dict(local_packages()),
        "git": git_state(directory),
    }
