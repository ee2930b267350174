"""Messaging's resources, one cleanup context each: the carrier client, the processing of
carrier webhooks, and (for `ywm dev` only) sending in-process.

Each needs only the application's core (settings, metrics, registry pool, tenant supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..auth.plugins import email_sender
from ..events.publisher import Publisher
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .dispatcher import WebhookConfig, WebhookDispatcher
from .keys import CARRIER, WEBHOOKS
from .signature import load_public_key
from .telnyx import carrier_from_settings
from .webhooks import CarrierInbox
from .worker import Worker

webhook_log = structlog.get_logger("ywm.webhooks")
worker_log = structlog.get_logger("ywm.worker")
WORKER_STOP_TIMEOUT_S = 15.0


async def carrier_client(app: web.Application) -> AsyncIterator[None]:
    """The carrier client the `/api/v1/numbers` routes use (its HTTP session closed last)."""
    carrier = carrier_from_settings(app[SETTINGS], app[METRICS])
    app[CARRIER] = carrier
    yield
    await carrier.close()


async def carrier_webhooks(app: web.Application) -> AsyncIterator[None]:
    """The verification key of `POST /webhooks/telnyx` and the processors and sweeper of the
    events it stores (stopped before the tenant supervisor they use)."""
    settings = app[SETTINGS]
    events = Publisher(app[REGISTRY_POOL], settings, app[METRICS])  # the churches' live events
    inbox = CarrierInbox(app[REGISTRY_POOL], app[SUPERVISOR], settings, app[METRICS], events)
    dispatcher = WebhookDispatcher(inbox, settings.webhook_sweep_interval, "telnyx_webhook")
    app[WEBHOOKS] = WebhookConfig(load_public_key(settings.telnyx_public_key), dispatcher)
    if settings.telnyx_public_key is None:
        webhook_log.warning("telnyx_public_key_missing", effect="every webhook is refused with 401")
    dispatcher.start()
    yield
    await dispatcher.close()
    await events.close()


async def sending(app: web.Application) -> AsyncIterator[None]:
    """One outbox Worker inside the application (`ywm dev` only; `ywm worker` in production).

    It shares the app's registry pool and tenant supervisor and reads the app's settings at
    start-up (so the carrier simulator's address set by `ywm dev` applies); SIGTERM stops it
    like `ywm worker`.
    """
    settings = app[SETTINGS]
    carrier = carrier_from_settings(settings, app[METRICS])
    emails = email_sender(settings)   # billing notices from the housekeeping round
    events = Publisher(app[REGISTRY_POOL], settings, app[METRICS])
    worker = Worker(settings, app[REGISTRY_POOL], app[SUPERVISOR].supervisor, carrier,
                    metrics=app[METRICS], emails=emails, events=events)
    task = asyncio.create_task(worker.run(), name="dev-worker")
    yield
    worker.stop()
    try:
        await asyncio.wait_for(task, WORKER_STOP_TIMEOUT_S)
    except (TimeoutError, Exception) as exc:
        worker_log.warning("dev_worker_stop_failed", error=type(exc).__name__)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    await events.close()
    await carrier.close()
    closer = getattr(emails, "close", None)
    if closer is not None:  # SMTP: deliver what is queued
        await closer()
