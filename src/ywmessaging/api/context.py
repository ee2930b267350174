"""What a handler reads from its request besides the input: the settings, the acting admin,
the church's plan, and the time it runs at."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..billing.state import Entitlement, entitlement
from ..church import Actor
from ..config import Settings
from ..keys import REQUEST_ID, SETTINGS


def settings_of(request: web.Request) -> Settings:
    """The application's settings."""
    return request.config_dict[SETTINGS]


def actor_of(request: web.Request) -> Actor:
    """The authenticated admin acting in this request, for the audit log."""
    return Actor(principal(request).admin_id, request.remote, request.get(REQUEST_ID))


def utc_now() -> datetime:
    """The request's notion of now."""
    return datetime.now(UTC)


async def entitlement_of(request: web.Request) -> Entitlement:
    """The acting church's plan and sending state (one registry read)."""
    return await entitlement(registry_pool(request), settings_of(request),
                             principal(request).tenant_id, utc_now())
