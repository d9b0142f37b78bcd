"""Taking a run's snapshots when it starts, and reading them back."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from .environment import environment, signature
from .history import executed_cells
from .notebook import find_notebook_path, read_notebook

__all__ = ["capture_snapshots", "load_snapshot"]

NOTEBOOK_PATH_TAG = "nbtrack.notebook.path"
SNAPSHOT_NOTE_TAG = "nbtrack.snapshot.note"

_environment_cache: dict[tuple[Any, ...], bytes] = {}


@functools.lru_cache(maxsize=8)
def _read_notebook_cached(path: str, mtime_ns: int, size: int, keep_outputs: bool) -> str:
    """Parsing and validating a notebook costs milliseconds: do it once per saved version."""
    return read_notebook(Path(path), keep_outputs)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def capture_snapshots(
    client: Any,
    run_id: str,
    shell: Any = None,
    keep_outputs: bool = False,
    script: str | None = None,
) -> dict[str, str]:
    """Store the snapshots of a starting run; returns ``kind -> sha256``.

    Never raises for a missing notebook path or an unreadable file: the run says so in its
    ``nbtrack.snapshot.note`` tag instead.
    """
    store = client.store
    stored: dict[str, str] = {}
    notes: list[str] = []
    where = Path.cwd()
    if shell is not None:
        stored["history"] = store.put_snapshot(
            run_id, "history", _dumps({"cells": _cells_by_hash(store, executed_cells(shell))})
        )
        path = find_notebook_path()
        if path is None:
            notes.append(
                "notebook file not found (no JPY_SESSION_NAME or VS Code path); "
                "use %nbtrack notebook PATH to name it"
            )
        else:
            try:
                info = path.stat()
                text = _read_notebook_cached(
                    str(path), info.st_mtime_ns, info.st_size, keep_outputs
                )
                stored["notebook"] = store.put_snapshot(run_id, "notebook", text.encode())
                client._set_internal_tag(run_id, NOTEBOOK_PATH_TAG, str(path))
                where = path.parent
            except Exception as exc:  # a half-saved or foreign file must not fail the run
                notes.append(f"could not read notebook {path}: {exc}")
    elif script:
        try:
            stored["script"] = store.put_snapshot(run_id, "script", Path(script).read_bytes())
            where = Path(script).parent
        except OSError as exc:
            notes.append(f"could not read script {script}: {exc}")
    key = (os.fspath(where), signature(where))
    env = _environment_cache.get(key)
    if env is None:
        if len(_environment_cache) > 32:
            _environment_cache.clear()
        env = _environment_cache[key] = _dumps(environment(where))
    stored["environment"] = store.put_snapshot(run_id, "environment", env)
    if notes:
        client._set_internal_tag(run_id, SNAPSHOT_NOTE_TAG, "; ".join(notes))
    return stored


def _cells_by_hash(store: Any, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history with each cell's source stored once (kind ``cell``) and named by its hash:
    a long session's runs share their cells instead of each storing the whole history."""
    digests = store.put_blobs("cell", [c["source"].encode() for c in cells])
    out = []
    for cell, digest in zip(cells, digests, strict=True):
        entry = {k: v for k, v in cell.items() if k != "source"}
        entry["sha256"] = digest
        out.append(entry)
    return out


def load_snapshot(client: Any, run_id: str, kind: str) -> Any:
    """A run's snapshot of ``kind``: parsed JSON for history/environment, text otherwise.

    A history comes back as ``{"cells": [{"execution_count", "source", ["error"]}]}``.
    """
    digest = client.store.run_snapshots(run_id).get(kind)
    if digest is None:
        return None
    data = client.store.get_snapshot(digest)
    if data is None:
        return None
    if kind == "history":
        history = json.loads(data)
        cells = history.get("cells", [])
        sources = client.store.get_blobs([c["sha256"] for c in cells if "sha256" in c])
        for cell in cells:
            if "sha256" in cell:
                content = sources.get(cell.pop("sha256"))
                cell["source"] = "" if content is None else content.decode("utf-8", "replace")
        return history
    if kind == "environment":
        return json.loads(data)
    return data.decode("utf-8", errors="replace")
