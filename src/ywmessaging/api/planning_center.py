"""`/api/v1/integrations/planning-center`: connect (OAuth 2 with PKCE), the browser's
callback (authenticated by the signed, stored `state`, then a redirect to the frontend),
status and options, sync on demand, disconnect; and `POST /webhooks/planning-center`."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from ..auth.state import lease, principal
from ..errors import AppError
from ..integrations import pco_connection, pco_status, pco_webhooks
from ..integrations.keys import PCO, PCO_RUNNER
from ..integrations.pco_runner import queue_run
from ..integrations.pco_state import read_state
from ..tenants.middleware import tenant_conn
from .context import actor_of, settings_of
from .responses import json_response
from .validation import json_body, query_params
from .webhooks import STORE_TIMEOUT, WebhookStoreUnavailable

FRONTEND_PATH = "/settings/integrations"
PCO_EVENT = web.RequestKey("pco_event", pco_webhooks.PcoEvent)


async def get_status(request: web.Request) -> web.Response:
    """The connection and the last sync's report."""
    return json_response(await pco_status.status(tenant_conn(request), settings_of(request)))


async def update(request: web.Request) -> web.Response:
    """Options: `sync_lists` (Planning Center lists become groups)."""
    body = await json_body(request)
    conn = tenant_conn(request)
    await pco_status.set_options(conn, settings_of(request), sync_lists=bool(body["sync_lists"]))
    return json_response(await pco_status.status(conn, settings_of(request)))


async def connect(request: web.Request) -> web.Response:
    """A new authorization URL for the admin's browser."""
    who = principal(request)
    out = await pco_connection.begin(tenant_conn(request), request.config_dict[PCO],
                                     who.tenant_id, who.admin_id)
    return json_response(out)


async def callback(request: web.Request) -> web.Response:
    """Planning Center sends the browser back here: check the state, exchange the code,
    queue the first sync, then redirect to the frontend (`?planning_center=connected`, or
    `=error&code=…`)."""
    pco = request.config_dict[PCO]
    params = query_params(request)
    try:
        if "error" in params:
            raise pco_connection.AuthorizationRefused(params["error"][:100])
        claims = read_state(pco.state_key, params.get("state", ""))
        if not params.get("code"):
            raise pco_connection.AuthorizationRefused("no code")
        async with lease(request, claims.tenant_id) as conn:
            done = await pco_connection.complete(conn, pco, claims, params["code"])
        request.config_dict[PCO_RUNNER].start(claims.tenant_id, done["run_id"])
        query = {"planning_center": "connected"}
    except AppError as exc:
        query = {"planning_center": "error", "code": exc.code}
    front = settings_of(request).frontend_url.rstrip("/")
    raise web.HTTPFound(f"{front}{FRONTEND_PATH}?{urlencode(query)}")


async def disconnect(request: web.Request) -> web.Response:
    """Revoke the tokens and forget them; members stay."""
    out = await pco_connection.disconnect(tenant_conn(request), request.config_dict[PCO],
                                          principal(request).tenant_id, actor_of(request))
    return json_response(out)


async def sync(request: web.Request) -> web.Response:
    """Start a sync now (`full` to read everyone); 202 with the run (the one already
    queued or running, if any)."""
    body = await json_body(request, allow_empty=True)
    conn = tenant_conn(request)
    settings = settings_of(request)
    row = await pco_status.status(conn, settings)
    if row["status"] != "connected":
        raise pco_connection.NotConnected()
    full = True if body.get("full") else None
    run = await queue_run(conn, settings, "manual", full=full,
                          admin_id=principal(request).admin_id)
    request.config_dict[PCO_RUNNER].start_run(principal(request).tenant_id, run)
    return json_response(pco_status.run_json(run), status=202)


async def pco_signature(request: web.Request) -> None:
    """The webhook route's guard: the organization's church and the HMAC (401 on doubt)."""
    raw = await request.read()
    request[PCO_EVENT] = await pco_webhooks.verify(
        request.app[PCO], raw, request.headers.get(pco_webhooks.AUTHENTICITY_HEADER))


async def webhook(request: web.Request) -> web.Response:
    """Make the church's sync due (durably), kick the runner, answer."""
    event = request[PCO_EVENT]
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            await pco_webhooks.accept(request.app[PCO], event)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise WebhookStoreUnavailable(headers={"Retry-After": "1"}) from exc
    request.app[PCO_RUNNER].kick()
    return json_response({"status": "accepted"})
