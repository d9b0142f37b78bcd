"""Model serving and batch scoring: MLflow's scoring-server protocol on starlette and uvicorn.

::

    from nbtrack.models.serving import build_app, serve

    serve("runs:/3f2a.../model", port=5001)     # POST http://127.0.0.1:5001/invocations
    app = build_app(model)                      # any object with predict(data[, params])

Importing this package is cheap; starlette and uvicorn (``pip install "nbtrack[serve]"``) are
needed only to build or run the server, pandas only to parse a request.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import DEFAULT_MAX_BODY_BYTES, build_app
    from .inputs import (
        CONTENT_TYPES,
        INPUT_KEYS,
        ParsedRequest,
        format_predictions,
        parse_request,
        predict_parsed,
    )
    from .server import load_model, serve

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MAX_BODY_BYTES",
    "INPUT_KEYS",
    "ParsedRequest",
    "build_app",
    "format_predictions",
    "load_model",
    "parse_request",
    "predict_parsed",
    "serve",
]

_HOMES = {
    "CONTENT_TYPES": "inputs",
    "DEFAULT_MAX_BODY_BYTES": "app",
    "INPUT_KEYS": "inputs",
    "ParsedRequest": "inputs",
    "build_app": "app",
    "format_predictions": "inputs",
    "load_model": "server",
    "parse_request": "inputs",
    "predict_parsed": "inputs",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
