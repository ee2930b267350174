"""Billing's resource, one cleanup context: the Stripe adapter, and the processing of the
Stripe webhooks `POST /webhooks/stripe` stores (stopped before the tenant supervisor and the
registry pool it uses)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..auth.plugins import email_sender
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from ..messaging.dispatcher import WebhookDispatcher
from ..tenants.keys import SUPERVISOR
from .keys import STRIPE, STRIPE_WEBHOOKS
from .stripe_client import StripeBilling
from .webhooks import StripeInbox

log = structlog.get_logger("ywm.billing")


async def stripe_billing(app: web.Application) -> AsyncIterator[None]:
    """The Stripe adapter the `/api/v1/billing` routes use, and the processors and sweeper of
    stored Stripe events (payment notices go through SMTP or the development outbox)."""
    settings = app[SETTINGS]
    client = StripeBilling(settings)
    emails = email_sender(settings)
    inbox = StripeInbox(app[REGISTRY_POOL], app[SUPERVISOR].supervisor.lease, settings, client,
                        emails, app[METRICS])
    dispatcher = WebhookDispatcher(inbox, settings.webhook_sweep_interval, "stripe_webhook")
    app[STRIPE], app[STRIPE_WEBHOOKS] = client, dispatcher
    if not settings.stripe_webhook_secrets():
        log.warning("stripe_webhook_secret_missing",
                    effect="every Stripe webhook is refused with 401")
    dispatcher.start()
    yield
    await dispatcher.close()
    await client.close()
    closer = getattr(emails, "close", None)
    if closer is not None:  # SMTP: deliver what is queued
        await closer()
