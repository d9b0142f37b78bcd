"""The cells executed in this IPython session, in execution order, from IPython's history.

This is what really ran, including cells since edited or deleted in the notebook.
"""

from __future__ import annotations

from typing import Any

__all__ = ["executed_cells"]


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
        cells.append({"execution_count": count, "source": source.rstrip("\n")})
    return cells
