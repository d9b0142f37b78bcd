"""Run the scoring server: load a saved model by URI and serve it with uvicorn."""

from __future__ import annotations

import importlib
import socket
from typing import Any

from ...exceptions import InvalidInputError

__all__ = ["load_model", "serve"]

_SERVE_EXTRA = 'serving models needs starlette and uvicorn: pip install "nbtrack[serve]"'
_ALL_INTERFACES = ("0.0.0.0", "::", "")
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def load_model(model_uri: str) -> Any:
    """Load a saved model with ``nbtrack.pyfunc.load_model``.

    Parameters
    ----------
    model_uri : str
        Any model URI ``nbtrack.pyfunc`` accepts (a path, ``runs:/<run_id>/model``,
        ``models:/<name>/<version>``, ...).

    Returns
    -------
    PyFuncModel
        The model, with ``predict(data, params=None)``.
    """
    pyfunc = importlib.import_module("nbtrack.pyfunc")
    return pyfunc.load_model(model_uri)


def serve(
    model_uri: str,
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    max_body_bytes: int | None = None,
    log_level: str = "info",
) -> None:
    """Serve a saved model over HTTP until interrupted (Ctrl+C or SIGTERM).

    Parameters
    ----------
    model_uri : str
        The model to serve, loaded with ``nbtrack.pyfunc.load_model``.
    host : str, default "127.0.0.1"
        The address to listen on. The default is reachable from this machine only;
        ``"0.0.0.0"`` makes the model reachable by anyone who can reach the machine.
    port : int, default 5001
        The port; 0 picks a free one (the printed URL shows which).
    max_body_bytes : int, optional
        The largest request body accepted (default 100 MB); larger ones get 413.
    log_level : str, default "info"
        uvicorn's log level: ``critical``, ``error``, ``warning``, ``info``, ``debug`` or
        ``trace``.

    Raises
    ------
    ImportError
        starlette or uvicorn is not installed (the message says ``pip install "nbtrack[serve]"``).
    InvalidInputError
        ``port`` is not in 0-65535, or ``log_level`` is not one of the levels above.
    OSError
        The address cannot be listened on (the port is taken, say).
    """
    try:
        import uvicorn

        from .app import DEFAULT_MAX_BODY_BYTES, build_app
    except ImportError as exc:
        raise ImportError(f"{_SERVE_EXTRA} ({exc})") from exc
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError(f"port must be an integer from 0 to 65535, not {port!r}")
    if log_level not in _LOG_LEVELS:
        raise InvalidInputError(
            f"unknown log level {log_level!r}: use one of {', '.join(_LOG_LEVELS)}"
        )

    model = load_model(model_uri)
    app = build_app(
        model, max_body_bytes=DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    )
    sock = _listen(host, port)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else (host or "0.0.0.0")
    url = f"http://{url_host}:{bound_port}"
    print(f"Serving {model_uri} at {url} (POST {url}/invocations)", flush=True)
    if host in _ALL_INTERFACES:
        print(
            f"Listening on all interfaces: anyone who can reach this machine on port "
            f"{bound_port} can call the model.",
            flush=True,
        )
    config = uvicorn.Config(app, log_level=log_level)
    with sock:
        uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (IPv4 or IPv6, whichever ``host`` is)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "; is another server using it? choose another port" if port else ""
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    return sock
