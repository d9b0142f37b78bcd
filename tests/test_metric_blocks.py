"""Metric history in packed blocks: exact round trips, ordering across flushes, big flushes."""

from __future__ import annotations

import math
import sqlite3
import struct
from pathlib import Path

import pytest

import nbtrack
from nbtrack import Client
from nbtrack.store import blocks


def test_pack_unpack_is_bit_exact_for_special_floats() -> None:
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, 0.1]
    rows = [("r", "k", v, 1000 + i, i) for i, v in enumerate(specials)]
    (block,) = blocks.pack(rows)
    steps, stamps, values = blocks.unpack([block[3:]])
    assert steps == list(range(len(specials)))
    assert stamps == [1000 + i for i in range(len(specials))]
    assert [struct.pack("<d", v) for v in values] == [struct.pack("<d", v) for v in specials]


def test_big_flush_is_cut_into_blocks(store_dir: Path) -> None:
    n = blocks.MAX_BLOCK_POINTS * 2 + 7
    with nbtrack.start_run() as run:
        for step in range(n):
            nbtrack.log_metric("m", step * 0.5, step=step)
    history = nbtrack.get_metric_history(run.info.run_id, "m")
    assert len(history) == n
    assert history[-1].step == n - 1 and history[-1].value == (n - 1) * 0.5
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    sizes = [r[0] for r in conn.execute("SELECT n FROM metric_blocks ORDER BY first_step")]
    conn.close()
    assert max(sizes) <= blocks.MAX_BLOCK_POINTS and sum(sizes) == n


def test_steps_out_of_order_across_flushes_come_back_sorted(store_dir: Path) -> None:
    client = Client()
    rid = client.create_run("0").info.run_id
    for step in (5, 6, 7):
        client.log_metric(rid, "m", step, timestamp=100, step=step)
    client.flush()
    for step in (1, 9, 3, 6):
        client.log_metric(rid, "m", step * 10, timestamp=200, step=step)
    client.flush()
    history = client.get_metric_history(rid, "m")
    assert [(m.step, m.timestamp) for m in history] == [
        (1, 200), (3, 200), (5, 100), (6, 100), (6, 200), (7, 100), (9, 200)
    ]
    assert client.get_run(rid).data.metrics["m"] == 90


def test_history_of_unknown_run_is_an_error_of_missing_key_is_empty(store_dir: Path) -> None:
    client = Client()
    rid = client.create_run("0").info.run_id
    assert client.get_metric_history(rid, "never") == []
    with pytest.raises(nbtrack.exceptions.RunNotFoundError):
        client.get_metric_history("f" * 32, "m")
