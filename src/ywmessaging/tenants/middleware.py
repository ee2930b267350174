"""The request path: one tenant lease per request, released in `finally`."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .keys import SUPERVISOR, TENANT_CONN, TENANT_ID


def lease_middleware() -> Middleware:
    """A middleware that leases a connection for requests carrying `TENANT_ID`.

    It must come after the middleware that sets `TENANT_ID` (authentication). The supervisor
    is read from the root application (`request.config_dict`), so this works on a sub-app.
    """

    @web.middleware
    async def tenant_lease(request: web.Request, handler: Handler) -> web.StreamResponse:
        tenant_id = request.get(TENANT_ID)
        if tenant_id is None:
            return await handler(request)
        supervisor = request.config_dict[SUPERVISOR].supervisor
        async with supervisor.lease(tenant_id) as conn:
            request[TENANT_CONN] = conn
            try:
                return await handler(request)
            finally:
                del request[TENANT_CONN]

    return tenant_lease


def tenant_conn(request: web.Request) -> Any:
    """The connection leased for this request (a programming error if there is none)."""
    conn = request.get(TENANT_CONN)
    if conn is None:
        raise RuntimeError("no tenant lease on this request: is the route under /api/v1 "
                           "and the request authenticated?")
    return conn
