"""Response helpers: JSON bodies with orjson, problems as application/problem+json."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..errors import AppError

PROBLEM_CONTENT_TYPE = "application/problem+json"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`data` as an application/json response, serialized with orjson."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def page_response(items_json: str, next_cursor: str | None) -> web.Response:
    """`{"items": [...], "next_cursor": ...}` around a page PostgreSQL already wrote as JSON
    text (passed through, never parsed)."""
    body = b'{"items":' + items_json.encode() + b',"next_cursor":' + orjson.dumps(next_cursor) \
        + b"}"
    return web.Response(body=body, content_type="application/json")


def items_response(items_json: str) -> web.Response:
    """`{"items": [...]}` around a list PostgreSQL already wrote as JSON text."""
    return web.Response(body=b'{"items":' + items_json.encode() + b"}",
                        content_type="application/json")


def problem_response(
    error: AppError, *, instance: str | None = None, request_id: str | None = None
) -> web.Response:
    """An RFC 9457 problem document for `error`, with its status and headers."""
    body = error.body(instance)
    if request_id:
        body["request_id"] = request_id
    return web.Response(
        body=orjson.dumps(body), status=error.status, headers=error.headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )
