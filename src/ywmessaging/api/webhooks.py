"""`POST /webhooks/telnyx` and `POST /webhooks/stripe`: each route's guard verifies the
signature first; the handler stores the event durably and answers 200 fast (processing follows,
from the registry's inbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import asyncpg
from aiohttp import web

from ..billing import webhooks as stripe_events
from ..billing.keys import STRIPE, STRIPE_EVENT, STRIPE_WEBHOOKS
from ..errors import ServiceUnavailable
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from ..messaging.dispatcher import WebhookDispatcher
from ..messaging.keys import WEBHOOK_SIGNED_AT, WEBHOOKS
from ..messaging.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from ..messaging.webhooks import store_event
from .responses import json_response

STORE_TIMEOUT = 1.5   # Telnyx waits about 2 s; past that it retries anyway (Stripe waits longer)
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"


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
    """Store a verified carrier event once, acknowledge, process later."""
    raw = await request.read()   # read once by the guard; aiohttp keeps it
    return await _stored(request, store_event(request.app[REGISTRY_POOL], request.app[SETTINGS],
                                              raw, request[WEBHOOK_SIGNED_AT]),
                         request.app[WEBHOOKS].dispatcher)


async def _stored(request: web.Request, storing: Coroutine[Any, Any, tuple[int | None, str]],
                  dispatcher: WebhookDispatcher) -> web.Response:
    """Await `storing` (the event into the registry's inbox, within STORE_TIMEOUT), count it,
    hand a new event to `dispatcher`, and answer: `stored` or `duplicate`; 503 when the
    registry could not take it (the sender retries)."""
    metrics = request.app[METRICS]
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            row_id, event_type = await storing
    except (TimeoutError, OSError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:
        metrics.observe_webhook("other", "store_failed")
        raise WebhookStoreUnavailable(headers={"Retry-After": "1"}) from exc
    if row_id is None:
        metrics.observe_webhook(event_type, "duplicate")
        return json_response({"status": "duplicate"})
    metrics.observe_webhook(event_type, "stored")
    dispatcher.notify(row_id)
    return json_response({"status": "stored"})


async def stripe_signature(request: web.Request) -> None:
    """The route's guard: `Stripe-Signature` (`t=…,v1=…`, HMAC-SHA256 with an endpoint secret,
    at most 300 s old); 401 on any doubt, so nothing is stored."""
    raw = await request.read()
    request[STRIPE_EVENT] = request.app[STRIPE].verify_webhook(
        raw, request.headers.get(STRIPE_SIGNATURE_HEADER))


async def stripe_webhook(request: web.Request) -> web.Response:
    """Store a verified Stripe event once, acknowledge, apply it later."""
    raw = await request.read()
    return await _stored(request, stripe_events.store_event(
        request.app[REGISTRY_POOL], request.app[SETTINGS], request[STRIPE_EVENT], raw),
        request.app[STRIPE_WEBHOOKS])
