"""Billing's AppKeys and RequestKeys (the app's own are in ywmessaging.keys)."""

from __future__ import annotations

import stripe
from aiohttp import web

from ..messaging.dispatcher import WebhookDispatcher
from .stripe_client import StripeBilling

# The Stripe adapter of the API process (checkout, portal, invoices; webhooks refetch through
# it); plugins.stripe_billing.
STRIPE = web.AppKey("stripe_billing", StripeBilling)
# The dispatcher of stored Stripe events; plugins.stripe_billing.
STRIPE_WEBHOOKS = web.AppKey("stripe_webhooks", WebhookDispatcher)
# The event of a webhook whose signature the route's guard verified.
STRIPE_EVENT = web.RequestKey("stripe_event", stripe.Event)
