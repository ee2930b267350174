"""`/api/v1/events`: a church's live events over a WebSocket, and its single-use tickets.

Browsers cannot set `Authorization` on a WebSocket, so the socket accepts (in this order) a
`ticket` from `POST /events/ticket`, a Bearer header (non-browser clients) or the access
cookie; a cookie is accepted only with an `Origin` among YWM_CORS_ORIGINS (a page elsewhere
would otherwise ride the admin's cookie: cross-site WebSocket hijacking). The route is PUBLIC
in the route table because this handler authenticates itself, and it takes no tenant lease:
a socket holds no database connection while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from ..auth.errors import InvalidToken, NotAuthenticated
from ..auth.middleware import _credentials
from ..auth.permissions import Permission, allowed
from ..auth.state import principal, registry_pool, services
from ..auth.tokens import AccessClaims
from ..cors import OriginNotAllowed
from ..errors import BadRequest, Forbidden, ServiceUnavailable
from ..events import tickets
from ..events.hub import Socket, join
from ..events.keys import EVENTS
from ..time_limits import UNLIMITED, time_limit
from .context import settings_of
from .responses import json_response
from .validation import query_params

MAX_REPLAY = 1000
MAX_CLIENT_MESSAGE = 4096


class InvalidTicket(InvalidToken):
    code, title = "invalid_ticket", "The ticket is unknown, used or expired"


class EventsUnavailable(ServiceUnavailable):
    code, title = "events_unavailable", "Live events cannot be read now; reconnect soon"


class NotWebSocket(BadRequest):
    code, title = "websocket_expected", "This route is a WebSocket: send an upgrade request"


def emit(request: web.Request, event_type: str, data: dict[str, Any]) -> None:
    """Publish one of the request's church's events in the background (after the handler's
    change committed; a process started without live events publishes nothing)."""
    runtime = request.config_dict.get(EVENTS)
    if runtime is not None:
        runtime.publisher.emit(principal(request).tenant_id, event_type, data)


async def ticket(request: web.Request) -> web.Response:
    """A single-use ticket (about 30 s) to open the events socket without a cookie."""
    who = principal(request)
    value = await tickets.issue(registry_pool(request), settings_of(request), who)
    return json_response({"ticket": value, "expires_in": int(tickets.TICKET_TTL_S)},
                         status=201)


async def _claims(request: web.Request, ticket_value: str | None) -> AccessClaims:
    svc = services(request)
    if ticket_value is not None:
        claims = await tickets.redeem(registry_pool(request), settings_of(request),
                                      ticket_value)
        if claims is None:
            raise InvalidTicket()
    else:
        token, via_cookie = _credentials(request)
        if token is None:
            raise NotAuthenticated()
        if via_cookie and request.headers.get("Origin") not in request.config_dict[EVENTS].origins:
            raise OriginNotAllowed("a cookie opens this socket only from a configured origin")
        claims = svc.tokens.verify_access(token)
    if svc.revocations.check(claims):
        raise InvalidToken()
    request.config_dict[EVENTS].hub.watch_revocations(svc.revocations)
    if not allowed(claims.role, Permission.MESSAGES_READ):
        raise Forbidden(f"your role ({claims.role}) cannot read messages")
    return claims


@time_limit(UNLIMITED)
async def events_socket(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket sending the church's events (after a replay from
    `last_event_id`); refusals are ordinary problem answers before the upgrade."""
    params = query_params(request)
    settings = settings_of(request)
    ws = web.WebSocketResponse(heartbeat=settings.events_heartbeat,
                               max_msg_size=MAX_CLIENT_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise NotWebSocket()
    claims = await _claims(request, params.get("ticket"))
    last = params.get("last_event_id")
    runtime = request.config_dict[EVENTS]
    sock = Socket(ws, request.transport, claims, settings.events_queue_size)
    try:
        try:
            replay = await join(runtime.hub, sock, int(last) if last is not None else None,
                                MAX_REPLAY)
        except Exception as exc:   # the registry cannot answer: before the upgrade, a 503
            raise EventsUnavailable(headers={"Retry-After": "2"}) from exc
        await ws.prepare(request)
        for frame in replay:
            await ws.send_str(frame)
        if replay and runtime.hub.metrics is not None:
            runtime.hub.metrics.events_sent.inc(len(replay))
        sock.writer = asyncio.get_running_loop().create_task(
            sock.write(runtime.hub.metrics), name="events_writer")
        async for msg in ws:   # clients have nothing to say; this waits for the close
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        runtime.hub.remove(sock)
        if sock.writer is not None:
            sock.writer.cancel()
        if sock.closer is not None:   # bounded (hub.CLOSE_TIMEOUT_S): the close frame goes out
            with contextlib.suppress(Exception):
                await asyncio.shield(sock.closer)
    return ws
