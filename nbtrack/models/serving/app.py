"""The scoring server: a starlette app around any object with ``predict``.

Routes, as MLflow's scoring server has them:

``GET /ping``, ``GET /health``
    200 while the server is up.
``GET /version``
    The nbtrack version, as text.
``POST /invocations``
    A body in one of the formats of :mod:`nbtrack.models.serving.inputs`; the answer is
    ``{"predictions": ...}``.

Errors are JSON ``{"error_code": ..., "message": ...}``: a malformed body, input that does
not match the model's signature, or an error ``predict`` raises on the input (a NaN the model
refuses, say; logged with its traceback) is 400 ``BAD_REQUEST``, as MLflow answers; a content
type other than JSON or CSV is 415 ``BAD_REQUEST``; a body over the size limit is 413
``REQUEST_LIMIT_EXCEEDED``; a fault of the server's own (predictions it cannot put in JSON,
say) is 500 ``INTERNAL_ERROR``, with the traceback logged. The server keeps serving after
every one of them. The unread rest of a refused body is read and dropped (for at
most 30 s, never kept) before the answer goes out, so that clients that send the whole body
before reading, as urllib and requests do, get the answer rather than a connection reset.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

try:
    import anyio
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f'serving models needs starlette and uvicorn: pip install "nbtrack[serve]" ({exc})'
    ) from exc

from ..._version import __version__
from ...exceptions import InvalidInputError
from .inputs import format_predictions, parse_content_type, parse_request, predict_parsed

__all__ = ["DEFAULT_MAX_BODY_BYTES", "build_app"]

#: The largest request body the server reads by default: 100 MB.
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024

#: How long a refused request's unread body is drained before the answer goes out anyway.
_DRAIN_SECONDS = 30.0

logger = logging.getLogger(__name__)


def build_app(model: Any, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """Build the scoring server's ASGI app around a model.

    Parameters
    ----------
    model : object
        Anything with ``predict(data)`` or ``predict(data, params=None)``; ``data`` is a
        :class:`pandas.DataFrame`, a :class:`numpy.ndarray` or a dict of ndarrays. ``params``
        is passed only when a request has some. ``predict`` runs in a worker thread, so
        requests do not block one another's I/O.
    max_body_bytes : int, default 100 MB
        Requests with a larger body are refused with 413.

    Returns
    -------
    starlette.applications.Starlette
        The app; run it with ``uvicorn.run(app)``, or see ``nbtrack.models.serving.serve``.

    Raises
    ------
    TypeError
        ``model`` has no callable ``predict``.
    InvalidInputError
        ``max_body_bytes`` is not a positive integer.
    """
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"the model must have a predict(data) method; got {type(model).__name__}")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise InvalidInputError(
            f"max_body_bytes must be a positive integer, not {max_body_bytes!r}"
        )
    if max_body_bytes <= 0:
        raise InvalidInputError(f"max_body_bytes must be positive, not {max_body_bytes}")

    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        try:
            parse_content_type(content_type)
        except InvalidInputError as exc:
            return await _refuse(request, _error(415, "BAD_REQUEST", str(exc)))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return await _refuse(request, _too_large(max_body_bytes))
        body = await _read_body(request, max_body_bytes)
        if body is None:  # grew past the limit; drained already
            return _too_large(max_body_bytes)
        try:
            payload = await run_in_threadpool(_score, model, body, content_type)
        except InvalidInputError as exc:
            logger.info("bad scoring request: %s", exc)
            return _error(400, "BAD_REQUEST", str(exc))
        except _PredictFailed as failed:
            cause = failed.__cause__
            logger.warning("predict failed on a request's input", exc_info=cause)
            return _error(400, "BAD_REQUEST", f"the model's predict failed on the input: "
                                              f"{type(cause).__name__}: {cause}")
        except Exception as exc:
            logger.exception("predict failed")
            return _error(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        return JSONResponse(payload)

    app = Starlette(
        routes=[
            Route("/ping", _ping, methods=["GET"]),
            Route("/health", _ping, methods=["GET"]),
            Route("/version", _version, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )
    app.state.model = model
    app.state.max_body_bytes = max_body_bytes
    return app


class _PredictFailed(Exception):
    """``predict`` raised on a request's input (the error is the ``__cause__``)."""


def _score(model: Any, body: bytes, content_type: str) -> dict[str, Any]:
    """Parse, predict, format: the blocking part of a request, run in a worker thread."""
    parsed = parse_request(body, content_type)
    try:
        predictions = predict_parsed(model, parsed)
    except InvalidInputError:  # the input does not match the signature; params not taken
        raise
    except Exception as exc:
        raise _PredictFailed from exc
    return format_predictions(predictions)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body; None if it grows past ``limit`` bytes (the rest is then drained)."""
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            chunks.clear()
            await _drain(stream)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _refuse(request: Request, response: Response) -> Response:
    """Answer a request without reading its body, once the body is drained (see ``_drain``).

    A client that asked ``Expect: 100-continue`` has sent no body yet, and is answered at once.
    """
    if request.headers.get("expect", "").lower() != "100-continue":
        await _drain(request.stream())
    return response


async def _drain(stream: AsyncIterator[bytes]) -> None:
    """Read and drop the rest of a refused body, for at most ``_DRAIN_SECONDS``.

    Most clients (urllib, requests) read no answer before they have sent the whole body: had
    the server answered and closed the connection first, they would see a reset instead of the
    answer. Nothing read here is kept.
    """
    with anyio.move_on_after(_DRAIN_SECONDS):
        async for _ in stream:
            pass


async def _ping(request: Request) -> Response:
    return Response("\n", status_code=200, media_type="application/json")


async def _version(request: Request) -> Response:
    return PlainTextResponse(__version__)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _too_large(limit: int) -> JSONResponse:
    return _error(
        413,
        "REQUEST_LIMIT_EXCEEDED",
        f"the request body is larger than the server's limit of {limit} bytes: "
        "send the data in smaller batches",
    )
