"""`POST /webhooks/telnyx`: its guard verifies the signature first; the handler stores durably
and answers 200 fast."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from ..errors import ServiceUnavailable
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from ..messaging.keys import WEBHOOK_SIGNED_AT, WEBHOOKS
from ..messaging.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from ..messaging.webhooks import store_event
from .responses import json_response

STORE_TIMEOUT = 1.5   # Telnyx waits about 2 s; past that it retries anyway


class WebhookStoreUnavailable(ServiceUnavailable):
    code, title = "webhook_store_unavailable", "The webhook could not be stored; retry"


async def carrier_signature(request: web.Request) -> None:
    """The route's guard: the Ed25519 signature over `timestamp|body` (401 on any doubt, so
    nothing is stored)."""
    raw = await request.read()
    request[WEBHOOK_SIGNED_AT] = verify(request.app[WEBHOOKS].public_key,
                                        request.headers.get(SIGNATURE_HEADER),
                                        request.headers.get(TIMESTAMP_HEADER), raw)


async def telnyx_webhook(request: web.Request) -> web.Response:
    """Store a verified event once, acknowledge, process later."""
    raw = await request.read()   # read once by the guard; aiohttp keeps it
    config = request.app[WEBHOOKS]
    signed_at = request[WEBHOOK_SIGNED_AT]
    metrics = request.app[METRICS]
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            row_id, event_type = await store_event(request.app[REGISTRY_POOL],
                                                   request.app[SETTINGS], raw, signed_at)
    except (TimeoutError, OSError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:
        metrics.observe_webhook("other", "store_failed")
        raise WebhookStoreUnavailable(headers={"Retry-After": "1"}) from exc
    if row_id is None:
        metrics.observe_webhook(event_type, "duplicate")
        return json_response({"status": "duplicate"})
    metrics.observe_webhook(event_type, "stored")
    config.dispatcher.notify(row_id)
    return json_response({"status": "stored"})
