"""Metric history stored as packed blocks.

A flush writes, for each run and key, one row of ``metric_blocks`` holding its points as three
packed little-endian arrays: steps (int64), timestamps (int64, ms) and values (float64, so NaN
and +/-inf are kept bit for bit). Against a row per point this makes a flush write tens of rows
instead of tens of thousands, keeps the file small, and lets a 10 k-step history be read back as a
handful of rows decoded by :mod:`array` in C.

Within a block the points are sorted by (step, timestamp). Blocks of one key are read in
``first_step`` order and concatenated; only when their step ranges overlap (a run resumed and
logged earlier steps again, or steps logged out of order across flushes) are the points merged
by a sort.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

__all__ = ["MAX_BLOCK_POINTS", "pack", "unpack"]

#: A block never holds more points than this; larger flushes are cut into several blocks.
MAX_BLOCK_POINTS = 50_000

_BIG_ENDIAN = sys.byteorder == "big"
_by_step_then_time = itemgetter(4, 3)

BlockRow = tuple[int, int, int, bytes, bytes, bytes]  # first_step, last_step, n, steps, ts, values


def _bytes(values: array[Any]) -> bytes:
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def _array(code: str, data: bytes) -> array[Any]:
    values = array(code)
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def pack(rows: list[tuple[str, str, float, int, int]]) -> list[BlockRow]:
    """Blocks for the ``(run_id, key, value, timestamp, step)`` rows of one run and key."""
    rows.sort(key=_by_step_then_time)  # stable, and linear when already in order
    blocks = []
    for start in range(0, len(rows), MAX_BLOCK_POINTS):
        chunk = rows[start : start + MAX_BLOCK_POINTS]
        steps = array("q", [r[4] for r in chunk])
        blocks.append(
            (
                steps[0],
                steps[-1],
                len(chunk),
                _bytes(steps),
                _bytes(array("q", [r[3] for r in chunk])),
                _bytes(array("d", [r[2] for r in chunk])),
            )
        )
    return blocks


def unpack(
    blocks: Iterable[Sequence[bytes]],
) -> tuple[list[int], list[int], list[float]]:
    """Steps, timestamps and values of a key's blocks (given in ``first_step`` order), sorted
    by step then timestamp."""
    steps: array[int] = array("q")
    stamps: array[int] = array("q")
    values: array[float] = array("d")
    in_order = True
    for step_bytes, stamp_bytes, value_bytes in blocks:
        s = _array("q", step_bytes)
        t = _array("q", stamp_bytes)
        if steps and (s[0], t[0]) < (steps[-1], stamps[-1]):
            in_order = False
        steps.extend(s)
        stamps.extend(t)
        values.extend(_array("d", value_bytes))
    if in_order:
        return steps.tolist(), stamps.tolist(), values.tolist()
    merged = sorted(zip(steps, stamps, values, strict=True), key=itemgetter(0, 1))
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]
