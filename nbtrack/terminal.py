"""Formatting for the terminal: times, durations and aligned tables (``nbtrack`` commands)."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any

import click

__all__ = ["duration", "print_table", "when"]

#: Widest column of a table, in terminal columns.
MAX_COLUMN = 40


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as local time, ``-`` for none."""
    if ms is None:
        return "-"
    try:
        return (
            datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
            .astimezone()
            .strftime("%Y-%m-%d %H:%M:%S")
        )
    except (ValueError, OverflowError, OSError):  # past 9999 (written by another tool)
        return f"{ms} ms"


def duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def _one_line(text: str) -> str:
    """Line breaks and other control characters shown as ``⏎`` and ``?``: a cell stays on its
    row."""
    text = text.replace("\r\n", "\n").replace("\n", "⏎")
    return "".join("?" if unicodedata.category(c) == "Cc" else c for c in text)


def _width(char: str) -> int:
    """Columns a character takes in a terminal: 2 for wide East Asian ones, 0 for combining."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, then padded with spaces to exactly that."""
    out, used = [], 0
    for char in text:
        w = _width(char)
        if used + w > width:
            break
        out.append(char)
        used += w
    return "".join(out) + " " * (width - used)


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Rows under a bold header, in columns of at most :data:`MAX_COLUMN` characters."""
    cells = [[_one_line(str(c)) for c in header]]
    cells += [[("" if c is None else _one_line(str(c))) for c in r] for r in rows]
    widths = [
        min(max(sum(map(_width, row[i])) for row in cells), MAX_COLUMN) for i in range(len(header))
    ]
    for n, row in enumerate(cells):
        line = "  ".join(_fit(c, w) for c, w in zip(row, widths, strict=True))
        click.echo(click.style(line, bold=True) if n == 0 else line.rstrip())
