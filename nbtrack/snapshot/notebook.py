"""Finding and reading the notebook file of the running kernel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["find_notebook_path", "read_notebook", "set_notebook_path"]

_explicit: Path | None = None


def set_notebook_path(path: str | os.PathLike[str] | None) -> None:
    """Tell nbtrack which notebook file this kernel runs (``%nbtrack notebook PATH``)."""
    global _explicit
    if path is None:
        _explicit = None
        return
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"no notebook file at {resolved}")
    _explicit = resolved


def find_notebook_path() -> Path | None:
    """The notebook file, from ``%nbtrack notebook``, VS Code or Jupyter Server; else None."""
    if _explicit is not None:
        return _explicit
    main = sys.modules.get("__main__")
    vsc = getattr(main, "__vsc_ipynb_file__", None)
    if vsc and Path(vsc).is_file():
        return Path(vsc).resolve()
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        path = Path(session)
        if not path.is_absolute():
            path = Path.cwd() / path  # Jupyter Server gives a path relative to its root
        if path.suffix == ".ipynb" and path.is_file():
            return path.resolve()
        by_name = Path.cwd() / Path(session).name  # the kernel starts in the notebook's folder
        if by_name.suffix == ".ipynb" and by_name.is_file():
            return by_name.resolve()
    return None


def read_notebook(path: Path, keep_outputs: bool = False) -> str:
    """The notebook as nbformat v4 JSON text, outputs stripped unless ``keep_outputs``."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if not keep_outputs:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
    return nbformat.writes(nb)
