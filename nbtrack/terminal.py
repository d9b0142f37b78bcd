"""Formatting for the terminal: times, durations and aligned tables (``nbtrack`` commands)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

__all__ = ["duration", "print_table", "when"]


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as local time, ``-`` for none."""
    if ms is None:
        return "-"
    return (
        datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        .astimezone()
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [min(max(len(row[i]) for row in cells), 40) for i in range(len(header))]
    for n, row in enumerate(cells):
        line = "  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True))
        click.echo(click.style(line, bold=True) if n == 0 else line.rstrip())
