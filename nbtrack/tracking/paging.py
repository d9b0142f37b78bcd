"""Page tokens of searches, as MLflow hands them out: opaque to the caller, an offset inside."""

from __future__ import annotations

import base64
import json

from ..exceptions import InvalidInputError
from .validation import INT64_MAX

__all__ = ["offset_of", "token_at"]


def token_at(offset: int) -> str:
    """The token of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    """The offset a page token of :func:`token_at` stands for (0 for None)."""
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception:
        offset = None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT64_MAX:
        raise InvalidInputError(
            f"page_token {token!r} is not one this search gave; pass the token of the page "
            "before, or None for the first page"
        )
    return offset
