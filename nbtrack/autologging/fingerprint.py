"""A fingerprint of training data, so that runs on different data are told apart.

Shape and dtypes, and a sha256 over the content: all of it for data up to ``MAX_ROWS`` rows,
else an evenly spaced sample of ``MAX_ROWS`` rows plus the row count (fast on big data; two
data sets that differ only outside the sample get the same digest, which the tag says).
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["MAX_ROWS", "TAG_PREFIX", "fingerprint", "log_fingerprint", "tag_fingerprint"]

MAX_ROWS = 10_000
#: The fingerprint's tags: ``nbtrack.trainingData.shape``, ``.dtypes`` and ``.digest``.
TAG_PREFIX = "nbtrack.trainingData."


def tag_fingerprint(client: Any, run_id: str, found: dict[str, str]) -> None:
    """Set a fingerprint's tags (reserved ones: nbtrack writes them, users do not)."""
    for key, value in found.items():
        client._set_internal_tag(run_id, TAG_PREFIX + key, value)


def log_fingerprint(client: Any, run_id: str, data: Any) -> None:
    """Tag the run with the fingerprint of raw training data (array, DataFrame, sparse
    matrix); nothing for no data or a file's name."""
    from pathlib import Path

    if data is None or isinstance(data, (str, bytes, Path)):
        return
    tag_fingerprint(client, run_id, fingerprint(data))


def _sample_rows(rows: int) -> Any:
    import numpy as np

    return np.linspace(0, rows - 1, MAX_ROWS).astype(int) if rows > MAX_ROWS else slice(None)


def fingerprint(data: Any) -> dict[str, str]:
    """``{"shape": ..., "dtypes": ..., "digest": ...}`` for a DataFrame, Series, array, sparse
    matrix or list."""
    import numpy as np
    import pandas as pd

    if isinstance(data, (pd.DataFrame, pd.Series)):
        frame = data if isinstance(data, pd.DataFrame) else data.to_frame()
        rows = len(frame)
        sample = frame.iloc[_sample_rows(rows)]
        hashed = pd.util.hash_pandas_object(sample, index=False).to_numpy().tobytes()
        dtypes = ",".join(f"{c}:{t}" for c, t in frame.dtypes.items())
        shape: tuple[int, ...] = frame.shape if isinstance(data, pd.DataFrame) else (rows,)
    elif hasattr(data, "toarray") and hasattr(data, "nnz"):  # scipy sparse: sample, densify
        rows = data.shape[0]
        hashed = np.asarray(data[_sample_rows(rows)].toarray()).tobytes()
        dtypes = str(data.dtype)
        shape = tuple(data.shape)
    else:
        array = np.asarray(data)
        rows = array.shape[0] if array.ndim else 1
        sample = array[_sample_rows(rows)] if array.ndim else array
        hashed = np.ascontiguousarray(sample).tobytes() if sample.dtype != object \
            else repr(sample.tolist()).encode()
        dtypes = str(array.dtype)
        shape = array.shape
    digest = hashlib.sha256(f"{shape}|{dtypes}|".encode() + hashed).hexdigest()[:16]
    return {
        "shape": "x".join(str(n) for n in shape),
        "dtypes": dtypes[:500],
        "digest": digest + ("" if rows <= MAX_ROWS else f" (sampled {MAX_ROWS} rows)"),
    }
