"""`/api/v1/church/compliance`: the church's 10DLC brand and campaign registration."""

from __future__ import annotations

from aiohttp import web

from ..auth.state import principal, registry_pool, services
from ..messaging import compliance
from ..messaging.keys import CARRIER
from ..tenants.middleware import tenant_conn
from .context import actor_of, settings_of
from .responses import json_response
from .validation import json_body


async def get_compliance(request: web.Request) -> web.Response:
    """Brand and campaign state, rejection reasons, whether the church may send, next steps."""
    return json_response(await compliance.get(tenant_conn(request), settings_of(request)))


async def register_brand(request: web.Request) -> web.Response:
    """Register the brand, or correct a rejected one (the same carrier brand); 202 while the
    carrier reviews it. 409 `brand_pending` / `brand_approved`; 422 field by field."""
    body = await json_body(request)
    doc = await compliance.register_brand(
        tenant_conn(request), registry_pool(request), request.config_dict[CARRIER],
        settings_of(request), services(request).box, actor_of(request),
        principal(request).tenant_id, body)
    return json_response(doc, status=202)


async def submit_campaign(request: web.Request) -> web.Response:
    """Submit the campaign of the approved brand; 202 while the carriers review it. 409
    `brand_not_approved` / `campaign_exists`; 422 field by field."""
    body = await json_body(request)
    doc = await compliance.submit_campaign(
        tenant_conn(request), registry_pool(request), request.config_dict[CARRIER],
        settings_of(request), actor_of(request), principal(request).tenant_id, body)
    return json_response(doc, status=202)
