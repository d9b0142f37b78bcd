"""Model signatures: the shape of a model's input and output, inferred from an example, and
checked (with a clear error) when the model is asked to predict.

Two kinds, as MLflow's:

- ``columns``: named, typed columns (from a DataFrame): ``{"name": "age", "type": "double"}``,
  types ``boolean``, ``long``, ``double``, ``string``, ``datetime``, ``binary``; a column an
  input may lack has ``"required": false`` (from an MLflow signature's optional column);
- ``tensor``: one array with a dtype and a shape, ``-1`` for the batch axis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidInputError, ModelSchemaError

__all__ = ["ModelSignature", "as_signature", "enforce_signature", "infer_schema",
           "infer_signature"]

Schema = dict[str, Any]


@dataclass(frozen=True)
class ModelSignature:
    """``inputs`` and ``outputs`` are schema dicts (see the module docstring) or None."""

    inputs: Schema | None = None
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelSignature | None:
        if not data:
            return None
        return cls(inputs=data.get("inputs"), outputs=data.get("outputs"))

    def describe(self) -> str:
        """One line per side, e.g. ``inputs: age (double), city (string)``."""
        return "\n".join(f"{side}: {_describe(schema)}" for side, schema in
                         (("inputs", self.inputs), ("outputs", self.outputs)) if schema)


def as_signature(signature: Any) -> Any:
    """``signature`` as nbtrack's :class:`ModelSignature` (None and False pass through).

    MLflow's ``ModelSignature`` (from ``mlflow.models.infer_signature``) is converted through
    its ``to_dict()``, whose inputs and outputs are JSON lists of column or tensor specs;
    anything else is an :class:`~nbtrack.exceptions.InvalidInputError`."""
    if signature is None or signature is False or isinstance(signature, ModelSignature):
        return signature
    if type(signature).__module__.startswith("mlflow.") and callable(
        getattr(signature, "to_dict", None)
    ):
        data = signature.to_dict()
        if data.get("params"):
            warnings.warn(
                "the signature's params schema is not kept: nbtrack passes params to the "
                "model's predict unchecked",
                UserWarning,
                stacklevel=4,
            )
        return ModelSignature(_from_mlflow(data.get("inputs"), "inputs"),
                              _from_mlflow(data.get("outputs"), "outputs"))
    raise InvalidInputError(
        "signature must be a nbtrack.models.ModelSignature (nbtrack.models.infer_signature), "
        f"MLflow's ModelSignature, False or None; got {type(signature).__name__}"
    )


#: MLflow's column types -> nbtrack's (which has one integer and one float type).
_MLFLOW_COLUMN_TYPES = {
    "boolean": "boolean", "integer": "long", "long": "long", "float": "double",
    "double": "double", "string": "string", "binary": "binary", "datetime": "datetime",
}


def _from_mlflow(specs: Any, side: str) -> Schema | None:
    """One side of an MLflow signature dict (a JSON list of specs) as an nbtrack schema."""
    import json

    if not specs:
        return None
    if isinstance(specs, str):
        specs = json.loads(specs)
    if all(spec.get("type") == "tensor" for spec in specs):
        if len(specs) != 1:
            raise InvalidInputError(
                f"the MLflow signature's {side} are {len(specs)} named tensors; nbtrack's "
                "signatures hold one tensor or named columns"
            )
        tensor = specs[0]["tensor-spec"]
        return {"type": "tensor", "dtype": str(tensor["dtype"]), "shape": list(tensor["shape"])}
    columns = []
    for i, spec in enumerate(specs):
        kind = _MLFLOW_COLUMN_TYPES.get(spec.get("type"))
        if kind is None:
            raise InvalidInputError(
                f"the MLflow signature's {side} have a column {spec.get('name', i)!r} of type "
                f"{spec.get('type')!r}, which nbtrack's signatures do not hold (they take "
                f"{', '.join(sorted(set(_MLFLOW_COLUMN_TYPES.values())))})"
            )
        column: dict[str, Any] = {"name": str(spec.get("name", i)), "type": kind}
        if spec.get("required") is False:
            column["required"] = False
        columns.append(column)
    return {"type": "columns", "columns": columns}


def _describe(schema: Schema) -> str:
    if schema["type"] == "tensor":
        return f"tensor {schema['dtype']} shape {tuple(schema['shape'])}"
    return ", ".join(f"{c['name']} ({c['type']}{'' if c.get('required', True) else ', optional'})"
                     for c in schema["columns"])


def _column_type(dtype: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def infer_schema(data: Any) -> Schema | None:
    """The schema of an example input or output; None for what has no fixed shape."""
    import numpy as np
    import pandas as pd

    frame = _as_frame(data) if isinstance(data, (dict, list)) else None
    if frame is not None:  # {"a": [...], "b": [...]}, or records: columns, as MLflow reads them
        data = frame
    if isinstance(data, pd.DataFrame):
        return {
            "type": "columns",
            "columns": [{"name": str(c), "type": _column_type(t)} for c, t in data.dtypes.items()],
        }
    if isinstance(data, pd.Series):
        return {"type": "columns",
                "columns": [{"name": str(data.name or 0), "type": _column_type(data.dtype)}]}
    if hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        data = data.detach().cpu().numpy()
    if isinstance(data, (list, tuple)):
        try:
            data = np.asarray(data)
        except ValueError:
            return None
    if isinstance(data, np.ndarray) and data.dtype != object:
        return {"type": "tensor", "dtype": str(data.dtype), "shape": [-1, *data.shape[1:]]}
    return None


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """A signature from an example input and, optionally, the model's output for it."""
    return ModelSignature(infer_schema(model_input),
                          None if model_output is None else infer_schema(model_output))


def _as_frame(data: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, dict):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in data.items()})
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame.from_records(data)
    return None


def enforce_signature(signature: ModelSignature | None, data: Any) -> Any:
    """``data`` shaped for the model: columns picked and ordered (others left out with a
    warning that names them, as MLflow), types converted without loss (text is not taken for
    numbers); or a :class:`~nbtrack.exceptions.ModelSchemaError` saying what does not match."""
    import numpy as np
    import pandas as pd

    if hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        data = data.detach().cpu().numpy()
    schema = signature.inputs if signature else None
    if schema is None:
        frame = _as_frame(data)
        return frame if frame is not None else data
    if schema["type"] == "tensor":
        if isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        array = _as_tensor(data, np.dtype(schema["dtype"]))
        expected = schema["shape"]
        if array.ndim != len(expected) or any(
            e not in (-1, a) for e, a in zip(expected, array.shape, strict=True)
        ):
            raise ModelSchemaError(
                f"the model takes arrays of shape {tuple(expected)} (-1: any); got "
                f"{tuple(array.shape)}"
            )
        return array
    columns = [c["name"] for c in schema["columns"]]
    frame = _as_frame(data)
    if frame is None:
        array = np.asarray(data)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(columns):
            raise ModelSchemaError(
                f"the model takes {len(columns)} columns ({', '.join(columns)}); got an array "
                f"of shape {tuple(array.shape)}"
            )
        frame = pd.DataFrame(array, columns=columns)
    frame.columns = [str(c) for c in frame.columns]
    missing = [c["name"] for c in schema["columns"]
               if c["name"] not in frame.columns and c.get("required", True)]
    if missing:
        raise ModelSchemaError(
            f"the input lacks column(s) {', '.join(missing)}; the model takes "
            f"{_describe(schema)}"
        )
    extra = [c for c in frame.columns if c not in columns]
    if extra:
        warnings.warn(
            f"the input has column(s) the model's signature does not name, left out: "
            f"{', '.join(extra)}",
            UserWarning,
            stacklevel=3,
        )
    frame = frame[[c for c in columns if c in frame.columns]].copy()  # optional ones may lack
    for spec in schema["columns"]:
        if spec["name"] in frame.columns:
            frame[spec["name"]] = _convert(frame[spec["name"]], spec)
    return frame


def _as_tensor(data: Any, target: Any) -> Any:
    """``data`` as an array of ``target`` dtype, converted only without loss: ints to floats,
    float64 to float32, floats to ints when they are whole numbers; else a ModelSchemaError."""
    import numpy as np

    try:
        array = np.asarray(data)
        if target.kind in "US" and array.dtype.kind in "USO":
            # Text: as wide as the input's longest string. The signature's width is the input
            # example's, and converting to it would cut longer strings short.
            return array if array.dtype.kind == target.kind else array.astype(target.kind)
        if array.dtype == target:
            return array
        text = target.kind in "biufc" and _holds_text(array.ravel())
        if not text and (array.dtype == object or array.dtype.kind in "US"):  # to datetimes
            return array.astype(target)
    except (TypeError, ValueError) as exc:
        raise ModelSchemaError(
            f"the model takes a {target} array; the input could not be converted ({exc})"
        ) from None
    if text:  # as MLflow: "1.5" is text, not a number
        raise ModelSchemaError(
            f"the model takes a {target} array; the input holds text "
            f"({str(_first_text(array.ravel()))!r}), which is not converted to numbers"
        )
    if np.can_cast(array.dtype, target, casting="same_kind"):
        return array.astype(target)
    if target.kind in "iu" and array.dtype.kind == "f" and np.all(np.isfinite(array)) \
            and np.all(array == np.round(array)):
        return array.astype(target)
    raise ModelSchemaError(
        f"the model takes a {target} array; the input is {array.dtype}, which does not convert "
        "without loss (its signature was inferred from the input example given at log time)"
    )


def _holds_text(values: Any) -> bool:
    """Whether a column or a flat array holds strings (or bytes)."""
    kind = getattr(values.dtype, "kind", "O")
    if kind in "US":
        return len(values) > 0
    return kind == "O" and _first_text(values) is not None


def _first_text(values: Any) -> Any:
    return next((v for v in values if isinstance(v, (str, bytes))), None)


def _convert(column: Any, spec: dict[str, str]) -> Any:
    import numpy as np
    import pandas as pd

    kind, name = spec["type"], spec["name"]
    try:
        if kind in ("double", "long") and _holds_text(column):
            # As MLflow: "1.5" is text, not a number; a model given it has been given the
            # wrong column, or data that was read without its types.
            raise ValueError(
                f"it holds text ({str(_first_text(column))!r}), which is not converted to "
                "numbers"
            )
        if kind == "double":
            return pd.to_numeric(column).astype("float64")
        if kind == "long":
            values = pd.to_numeric(column)
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise ValueError("it holds non-integer values")
            return values.astype("int64")
        if kind == "boolean":
            if column.dtype == bool:
                return column
            raise ValueError(f"it holds {column.dtype} values")
        if kind == "datetime":
            return pd.to_datetime(column)
        if kind == "string" and not (pd.api.types.is_string_dtype(column) and all(
            v is None or isinstance(v, str) or (isinstance(v, float) and np.isnan(v))
            for v in column
        )):
            raise ValueError("it holds values that are not text")
    except (TypeError, ValueError) as exc:
        raise ModelSchemaError(f"column {name!r} must be {kind}: {exc}") from None
    return column
