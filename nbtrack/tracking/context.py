"""What a new run records about where it came from: the reserved ``nbtrack.`` tags.

======================== ==========================================================
tag                      meaning (MLflow's equivalent in parentheses)
======================== ==========================================================
nbtrack.user             the OS user who started the run (mlflow.user)
nbtrack.source.name      the notebook or script file, or ``<ipython>`` (mlflow.source.name)
nbtrack.source.type      NOTEBOOK, SCRIPT or INTERACTIVE (mlflow.source.type)
nbtrack.git.commit       commit of the git work tree the source sits in (mlflow.source.git.commit)
nbtrack.git.branch       its branch, when on one
nbtrack.parentRunId      the parent of a nested run (mlflow.parentRunId)
nbtrack.runName          the run's name (mlflow.runName)
nbtrack.note.content     the run's description (mlflow.note.content)
nbtrack.error            the traceback of a FAILED run
nbtrack.killedReason     why a run was marked KILLED
======================== ==========================================================

Users may set ``nbtrack.note.content`` and ``nbtrack.runName``; the others are nbtrack's.
Everything here is computed once per process and cached: start_run must stay cheap.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
import sys
from pathlib import Path

__all__ = ["git_info", "host", "source", "user"]

USER = "nbtrack.user"
SOURCE_NAME = "nbtrack.source.name"
SOURCE_TYPE = "nbtrack.source.type"
GIT_COMMIT = "nbtrack.git.commit"
GIT_BRANCH = "nbtrack.git.branch"
PARENT_RUN_ID = "nbtrack.parentRunId"
RUN_NAME = "nbtrack.runName"
NOTE = "nbtrack.note.content"
ERROR = "nbtrack.error"
KILLED_REASON = "nbtrack.killedReason"

#: MLflow's system tags and the nbtrack tags that hold the same thing. Setting the first two
#: (``mlflow.runName``, ``mlflow.note.content``) renames the run or sets its description, as in
#: MLflow; filters and ``order_by`` read any of them (``tags.mlflow.parentRunId = '...'``).
MLFLOW_TAGS = {
    "mlflow.runName": RUN_NAME,
    "mlflow.note.content": NOTE,
    "mlflow.parentRunId": PARENT_RUN_ID,
    "mlflow.user": USER,
    "mlflow.source.name": SOURCE_NAME,
    "mlflow.source.type": SOURCE_TYPE,
    "mlflow.source.git.commit": GIT_COMMIT,
    "mlflow.source.git.branch": GIT_BRANCH,
}


@functools.lru_cache(maxsize=1)
def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): fall back to the uid
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@functools.lru_cache(maxsize=1)
def host() -> str:
    return socket.gethostname()


def _notebook_path() -> str | None:
    """The notebook file of this kernel: named by ``%nbtrack notebook``, or told by the front
    end (VS Code, Jupyter Server), as snapshots find it."""
    from ..snapshot.notebook import find_notebook_path

    found = find_notebook_path()
    return None if found is None else str(found)


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")
    return bool(ipython and getattr(ipython, "get_ipython", lambda: None)())


def source() -> tuple[str, str]:
    """``(name, type)`` of the code that starts a run."""
    if _in_ipython():
        nb = _notebook_path()
        return (nb, "NOTEBOOK") if nb else ("<ipython>", "INTERACTIVE")
    return _script(sys.argv[0] if sys.argv else "")


@functools.lru_cache(maxsize=8)
def _script(argv0: str) -> tuple[str, str]:
    if argv0 and argv0 != "-c" and os.path.exists(argv0):
        return str(Path(argv0).resolve()), "SCRIPT"
    return "<interactive>", "INTERACTIVE"


@functools.lru_cache(maxsize=64)
def git_dir(directory: str) -> str | None:
    """The .git folder of the work tree holding ``directory``, or None."""
    path = Path(directory).resolve()
    for folder in (path, *path.parents):
        dotgit = folder / ".git"
        if dotgit.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dotgit.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                dotgit = (folder / text[len("gitdir:") :].strip()).resolve()
        if dotgit.is_dir():
            return str(dotgit)
    return None


def _stat(path: str) -> tuple[int, int]:
    try:
        found = os.stat(path)
    except OSError:
        return 0, 0
    return found.st_size, found.st_mtime_ns


def git_signature(gitdir: str) -> tuple[int, ...]:
    """Changes whenever HEAD moves: git appends to HEAD's reflog at every move (commit,
    checkout, reset, merge; its size tells even where file times are coarse), and rewrites
    HEAD itself at a checkout, including those it does not log (``checkout --orphan``). Two
    stat calls, cheap enough for every start_run. Not seen: a commit made with reflogs off
    (``core.logAllRefUpdates``), or to this branch from another worktree, until HEAD is
    rewritten or in a new process."""
    return (
        *_stat(os.path.join(gitdir, "logs", "HEAD")),
        *_stat(os.path.join(gitdir, "HEAD")),
    )


def git_info(directory: str) -> dict[str, str]:
    """Commit and branch of the git work tree holding ``directory``, read from .git directly
    (re-read only when HEAD has moved). Do not mutate the returned dict."""
    gitdir = git_dir(directory)
    if gitdir is None:
        return {}
    return _head(gitdir, git_signature(gitdir))


@functools.lru_cache(maxsize=64)
def _head(gitdir: str, signature: tuple[int, ...]) -> dict[str, str]:
    return _read_head(Path(gitdir))


def _read_head(gitdir: Path) -> dict[str, str]:
    try:
        head = (gitdir / "HEAD").read_text().strip()
    except OSError:
        return {}
    if not head.startswith("ref:"):
        return {GIT_COMMIT: head}
    ref = head[4:].strip()
    info = {GIT_BRANCH: ref.removeprefix("refs/heads/")}
    common = gitdir
    commondir = gitdir / "commondir"
    if commondir.is_file():
        common = (gitdir / commondir.read_text().strip()).resolve()
    for base in (gitdir, common):
        ref_file = base / ref
        if ref_file.is_file():
            info[GIT_COMMIT] = ref_file.read_text().strip()
            return info
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) == 2 and parts[1] == ref:
                info[GIT_COMMIT] = parts[0]
    return info  # a fresh repository has a branch but no commit yet


def run_context_tags() -> dict[str, str]:
    name, kind = source()
    tags = {USER: user(), SOURCE_NAME: name, SOURCE_TYPE: kind}
    where = os.path.dirname(name) if kind in ("NOTEBOOK", "SCRIPT") else os.getcwd()
    tags.update(git_info(where))
    return tags
