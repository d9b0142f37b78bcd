"""Tables and images as artifacts, in MLflow's formats: ``log_table``, ``load_table`` and
``log_image``.

A table is JSON ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``orient="split"``
without the index); logging to a table file that exists already appends the rows, as MLflow
does. An image is a PNG, from a PIL image or a NumPy array (height x width, with 1, 3 or 4
channels; integers 0-255, or floats 0-1).
"""

from __future__ import annotations

import io
import json
from typing import Any

from ..exceptions import InvalidInputError

__all__ = ["image_png", "image_series_file", "read_table", "table_json"]


def _frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:  # columns of different lengths, scalars only
            raise InvalidInputError(f"log_table needs columns of one length: {exc}") from None
    raise InvalidInputError(
        f"log_table takes a pandas DataFrame or a dict of columns; got {type(data).__name__}"
    )


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


def image_png(image: Any) -> bytes:
    """PNG bytes of a PIL image or a NumPy array."""
    try:
        from PIL import Image
    except ImportError:
        raise InvalidInputError("log_image needs Pillow: pip install pillow") from None
    if not isinstance(image, Image.Image):
        image = Image.fromarray(_uint8(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
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
    if array.dtype.kind == "f":
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
            raise InvalidInputError("a float image must have values between 0 and 1")
        return (np.nan_to_num(array) * 255).round().astype(np.uint8)
    if array.dtype.kind in "iub":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InvalidInputError("an integer image must have values between 0 and 255")
        return array.astype(np.uint8)
    raise InvalidInputError(f"log_image takes integer or float pixels; got {array.dtype}")


def image_series_file(key: str, step: int) -> str:
    """Where ``log_image(image, key=..., step=...)`` puts one image of a series."""
    return f"images/{key}/step-{step}.png"
