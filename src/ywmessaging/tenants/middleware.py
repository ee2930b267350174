"""The request path: one tenant lease per request, released in `finally`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .keys import SUPERVISOR, TENANT_CONN, TENANT_ID


def lease_middleware(while_suspended: Collection[str] = ()) -> Middleware:
    """A middleware that leases a connection for requests carrying `TENANT_ID`.

    It must come after the middleware that sets `TENANT_ID` (authentication). The supervisor
    is read from the root application (`request.config_dict`), so this works on a sub-app.
    Routes named in `while_suspended` are served for a suspended church too (any other answers
    423 `tenant_suspended`).
    """

    @web.middleware
    async def tenant_lease(request: web.Request, handler: Handler) -> web.StreamResponse:
        tenant_id = request.get(TENANT_ID)
        if tenant_id is None:
            return await handler(request)
        supervisor = request.config_dict[SUPERVISOR].supervisor
        route = request.match_info.route.name
        async with supervisor.lease(tenant_id,
                                    suspended_ok=route in while_suspended) as conn:
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
