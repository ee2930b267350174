"""A time limit on every request: past it the handler is cancelled and the answer is 504.

Routes choose their class with a marker, read once per request with one attribute look-up:
unmarked routes get YWM_REQUEST_TIMEOUT; `@time_limit(IMPORT)` (the member CSV upload) gets
YWM_IMPORT_TIMEOUT; `@time_limit(UNLIMITED)` is for WebSockets and streamed downloads, whose
answer has begun before their work ends (a 504 could no longer be sent) and which bound their
own waits. Cancelling a handler releases what it holds on the way out (its tenant lease in a
`finally`; asyncpg cancels the statement in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .config import Settings
from .errors import AppError

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__ywm_time_limit__"
IMPORT = "import"
UNLIMITED = "unlimited"


class RequestTimedOut(AppError):
    status, code, title = 504, "request_timeout", "The request took too long"


def time_limit(kind: str) -> Callable[[F], F]:
    """Mark a handler's time-limit class: IMPORT or UNLIMITED."""
    if kind not in (IMPORT, UNLIMITED):
        raise ValueError(f"unknown time-limit class {kind!r}")

    def mark(handler: F) -> F:
        setattr(handler, _MARK, kind)
        return handler

    return mark


def time_limit_middleware(settings: Settings) -> Middleware:
    """The middleware cutting requests off at their route's limit (innermost: the error
    middleware renders its 504)."""
    default = settings.request_timeout
    limits: dict[str, float | None] = {IMPORT: settings.import_timeout, UNLIMITED: None}

    @web.middleware
    async def limit_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = getattr(request.match_info.handler, _MARK, None)
        seconds = default if kind is None else limits[kind]
        if seconds is None:
            return await handler(request)
        timeout = asyncio.timeout(seconds)
        try:
            async with timeout:
                return await handler(request)
        except TimeoutError:
            if not timeout.expired():
                raise   # a wait of the handler's own timed out: not ours to answer
            raise RequestTimedOut(f"the server gave up after {seconds:g} seconds; "
                                  "retry later") from None

    return limit_time
