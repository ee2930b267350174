"""`/api/v1/church`: the church profile (name, time zone, quiet hours, replies, 10DLC brand)."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..auth.state import principal, services
from ..church import settings as data
from ..sqlq import registry as rq
from ..tenants.middleware import tenant_conn
from .context import actor_of, settings_of
from .responses import json_response
from .validation import json_body


async def get_church(request: web.Request) -> web.Response:
    """The church's profile (the EIN only masked)."""
    row = await data.get_profile(tenant_conn(request), settings_of(request),
                                 principal(request).tenant_id)
    return json_response(row)


async def update_church(request: web.Request) -> web.Response:
    """Change some of the profile's fields; null clears quiet hours or a brand field."""
    body = await json_body(request)
    row = await data.update_profile(tenant_conn(request), settings_of(request),
                                    services(request).box, actor_of(request),
                                    principal(request).tenant_id, body)
    if "name" in body or "timezone" in body:
        # the registry keeps a copy for operators (`ywm tenants list`) and billing
        settings = settings_of(request)
        await rq(settings.sql_dir).sync_tenant_profile(
            request.config_dict[keys.REGISTRY_POOL], principal(request).tenant_id,
            row["name"], row["timezone"])
    return json_response(row)
