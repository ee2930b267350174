"""Messaging's AppKeys and RequestKeys (the app's own are in ywmessaging.keys)."""

from __future__ import annotations

from aiohttp import web

from .carrier import Carrier
from .dispatcher import WebhookConfig

# The carrier client of the API process (number search, order, release); plugins.carrier_client.
CARRIER = web.AppKey("carrier", Carrier)
# The webhook verification key and the dispatcher of stored events; plugins.carrier_webhooks.
WEBHOOKS = web.AppKey("telnyx_webhooks", WebhookConfig)
# The signing time of a webhook whose signature the route's guard verified.
WEBHOOK_SIGNED_AT = web.RequestKey("webhook_signed_at", int)
