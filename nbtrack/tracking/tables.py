"""Tables and images as artifacts, in MLflow's formats: ``log_table``, ``load_table`` and
``log_image``.

A table is JSON ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``orient="split"``
without the index); logging to a table file that exists already appends the rows, as MLflow
does. An image is saved in the format its file name says (PNG, JPEG, ...), from a PIL image or
a NumPy array (height x width, with 1, 3 or 4 channels; integers 0-255, floats 0-1, scaled to
that with a warning when they range wider, or booleans).
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

from ..exceptions import InvalidInputError, NbtrackWarning

__all__ = ["image_bytes", "image_series_file", "read_table", "table_json"]


def _frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, dict):
        if data and not any(_is_column(v) for v in data.values()):
            data = {k: [v] for k, v in data.items()}  # scalars: one row, as MLflow takes them
        try:
            frame = pd.DataFrame(data)
        except ValueError as exc:  # columns of different lengths
            raise InvalidInputError(f"log_table needs columns of one length: {exc}") from None
    else:
        raise InvalidInputError(
            f"log_table takes a pandas DataFrame or a dict of columns; got {type(data).__name__}"
        )
    for column in frame.columns:
        if frame[column].dtype == object and any(_is_image(v) for v in frame[column]):
            raise InvalidInputError(
                f"column {column!r} holds images, which a table file cannot keep; log them with "
                "log_image and put their file names in the table"
            )
    return frame


def _is_column(value: Any) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _is_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.")


def read_table(text: str, where: str) -> Any:
    """A table file's DataFrame."""
    import pandas as pd

    try:
        table = json.loads(text)
        return pd.DataFrame(table["data"], columns=table["columns"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{where} is not a table written by log_table ({exc})") from None


def table_json(data: Any, existing: str | None = None, where: str = "") -> str:
    """The table file's text for ``data``, after the rows of ``existing`` (a table file's text)
    if given."""
    import pandas as pd

    frame = _frame(data)
    if existing is not None:
        frame = pd.concat([read_table(existing, where), frame], ignore_index=True)
    return str(frame.to_json(orient="split", index=False, date_format="iso"))


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """The image encoded in the format its file name says (``.png``, ``.jpg``, ...)."""
    import os

    try:
        from PIL import Image
    except ImportError:
        raise InvalidInputError("log_image needs Pillow: pip install pillow") from None
    extension = os.path.splitext(artifact_file)[1].lower()
    known = Image.registered_extensions()
    if extension not in known:
        common = ", ".join(e for e in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
                           if e in known)
        raise InvalidInputError(
            f"cannot tell an image format from {artifact_file!r}; end it in one of {common}"
        )
    if not isinstance(image, Image.Image):
        image = Image.fromarray(_uint8(image))
    if known[extension] == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha
    buffer = io.BytesIO()
    image.save(buffer, format=known[extension])
    return buffer.getvalue()


def _uint8(image: Any) -> Any:
    import numpy as np

    array = np.asarray(image)
    shape = array.shape
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 3, 4))):
        raise InvalidInputError(
            f"log_image takes an array of height x width, with 1, 3 or 4 channels; got shape "
            f"{shape}"
        )
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype.kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "f":
        array = np.nan_to_num(array)
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 1.0)
        if low < 0 or high > 1:  # as MLflow: scaled to 0-1 by its range, with a warning
            warnings.warn(
                f"image values range from {low:g} to {high:g}, not 0-1: scaled to 0-1",
                NbtrackWarning,
                stacklevel=5,
            )
            array = (array - low) / (high - low) if high > low else np.zeros_like(array)
        return (array * 255).round().astype(np.uint8)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InvalidInputError("an integer image must have values between 0 and 255")
        return array.astype(np.uint8)
    raise InvalidInputError(f"log_image takes integer, float or bool pixels; got {array.dtype}")


def image_series_file(key: str, step: int) -> str:
    """Where ``log_image(image, key=..., step=...)`` puts one image of a series."""
    return f"images/{key}/step-{step}.png"
