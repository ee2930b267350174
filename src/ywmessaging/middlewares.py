"""Root middlewares: request id and log context, latency and access log, problem rendering.

Order (outermost first): request id → observe → errors. The error middleware is innermost, so
the observe middleware always sees the final status of the problem response.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from http import HTTPStatus

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .api.responses import problem_response
from .db.faults import unavailable
from .errors import AppError, MethodNotAllowed, NotFound, PayloadTooLarge
from .keys import REQUEST_ID
from .observability.metrics import Metrics

log = structlog.get_logger("ywmessaging.http")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CLIENT_CLOSED = 499  # nginx's convention for "the client went away before the answer"
_DROPPED_HEADERS = frozenset({"content-type", "content-length"})


def root_middlewares(metrics: Metrics) -> list[Middleware]:
    """The root application's middlewares, outermost first."""
    return [request_id_middleware, observe_middleware(metrics), error_middleware]


def route_template(request: web.Request) -> str:
    """The matched resource's canonical template, or `unmatched` (never the raw path)."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take a sane `X-Request-ID` or make one; bind it to the logs and echo it back."""
    rid = request.headers.get("X-Request-ID", "")
    if not _REQUEST_ID_RE.fullmatch(rid):
        rid = uuid.uuid4().hex
    request[REQUEST_ID] = rid
    with structlog.contextvars.bound_contextvars(request_id=rid):
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 2xx/3xx raised by a handler (redirects)
            exc.headers["X-Request-ID"] = rid
            raise
    if not response.prepared:
        response.headers["X-Request-ID"] = rid
    return response


def observe_middleware(metrics: Metrics) -> Middleware:
    """A middleware recording latency and status by route template and logging each request."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = _CLIENT_CLOSED
            raise
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(request)
            metrics.observe_request(request.method, route, status, elapsed)
            log.info("http_request", method=request.method, route=route, status=status,
                     duration_ms=round(elapsed * 1000, 2))

    return observe


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error once as problem+json; log the unexpected ones with a traceback."""
    try:
        return await handler(request)
    except AppError as exc:
        if exc.status >= 500:
            log.warning("app_error", code=exc.code, status=exc.status)
        return _problem(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _problem(request, from_http_exception(exc))
    except Exception as exc:
        down = unavailable(exc)   # the database is unreachable: 503, on every route alike
        if down is not None:
            log.warning("database_unavailable", method=request.method,
                        route=route_template(request), error=type(exc).__name__)
            return _problem(request, down)
        log.exception("unhandled_error", method=request.method, route=route_template(request))
        return _problem(request, AppError())


def from_http_exception(exc: web.HTTPException) -> AppError:
    """The AppError standing for one of aiohttp's HTTP exceptions."""
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _DROPPED_HEADERS}
    # aiohttp's own 4xx texts are meant for the client; a 5xx text never is.
    default_text = f"{exc.status}: {exc.reason}"
    detail = exc.text if exc.status < 500 and exc.text and exc.text != default_text else None
    if isinstance(exc, web.HTTPNotFound):
        return NotFound(detail, headers=headers)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(detail, headers=headers)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(detail, headers=headers)
    try:
        phrase = HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = exc.reason or "Error"
    code = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_") or f"http_{exc.status}"
    return AppError(detail, status=exc.status, code=code, title=phrase, headers=headers)


def _problem(request: web.Request, error: AppError) -> web.Response:
    return problem_response(error, instance=request.path, request_id=request.get(REQUEST_ID))
