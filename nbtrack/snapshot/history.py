"""The cells executed in this IPython session, in execution order, from IPython's history.

This is what really ran, including cells since edited or deleted in the notebook. Cells that
raised are marked ``"error": true`` (known for the cells run after ``%load_ext nbtrack``, which
listens to IPython's ``post_run_cell`` event), so that an exported notebook can still run past
them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["executed_cells", "record_outcome"]

_failed: set[int] = set()  # execution counts of the cells that raised


def record_outcome(result: Any) -> None:
    """IPython ``post_run_cell`` callback: remember whether the cell raised."""
    count = getattr(result, "execution_count", None)
    if count is not None and (result.error_in_exec is not None or result.error_before_exec):
        _failed.add(count)


def executed_cells(shell: Any) -> list[dict[str, Any]]:
    """``[{"execution_count": n, "source": "..."}]`` for every cell run so far in this session.

    The cell being executed is included: IPython records a cell's input before running it.
    """
    manager = getattr(shell, "history_manager", None)
    if manager is None:
        return []
    raw = list(getattr(manager, "input_hist_raw", []))
    cells = []
    for count, source in enumerate(raw):
        if count == 0 or not source.strip():
            continue  # input_hist_raw[0] is a placeholder
        cell: dict[str, Any] = {"execution_count": count, "source": source.rstrip("\n")}
        if count in _failed:
            cell["error"] = True
        cells.append(cell)
    return cells
