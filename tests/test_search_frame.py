"""The DataFrame of search_runs is the frame pandas itself would build of the same values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import nbtrack


def _as_pandas_would_build_it(frame: pd.DataFrame) -> pd.DataFrame:
    """The same values, each column given to pandas as a plain list."""
    return pd.DataFrame({c: frame[c].tolist() for c in frame.columns}).astype(
        {c: frame[c].dtype for c in frame.columns if frame[c].dtype.kind in "fM"}
    )


def test_text_columns_are_the_ones_pandas_infers(store_dir: Path) -> None:
    for i in range(3):
        with nbtrack.start_run(run_name=f"run-{i}"):
            nbtrack.log_params({"model": "rf", "note": "é ✓" if i else ""})
            if i != 2:
                nbtrack.set_tag("team", "ml")
            nbtrack.log_metric("acc", i / 3)
    frame = nbtrack.search_runs(order_by=["metrics.acc"])
    pd.testing.assert_frame_equal(frame, _as_pandas_would_build_it(frame))
    assert frame["run_name"].tolist() == ["run-0", "run-1", "run-2"]
    assert frame["tags.team"].isna().tolist() == [False, False, True]
    assert frame["params.note"].tolist() == ["", "é ✓", "é ✓"]


def test_a_column_of_none_alone_is_as_pandas_makes_it(store_dir: Path) -> None:
    """Another tool may leave run names NULL: the column is pandas' own (object, None)."""
    import sqlite3

    for _ in range(2):
        with nbtrack.start_run():
            nbtrack.log_param("model", "rf")
    nbtrack.flush()
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        conn.execute("UPDATE runs SET run_name = NULL")
    frame = nbtrack.search_runs()
    assert frame["run_name"].tolist() == [None, None]
    pd.testing.assert_frame_equal(frame, _as_pandas_would_build_it(frame))
