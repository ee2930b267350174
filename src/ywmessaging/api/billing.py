"""`/api/v1/billing`: the church's plan, limits and usage (the owner, `billing.manage`)."""

from __future__ import annotations

from aiohttp import web

from ..billing import usage as data
from ..tenants.middleware import tenant_conn
from .context import entitlement_of, settings_of, utc_now
from .responses import json_response
from .validation import query_params


async def plan(request: web.Request) -> web.Response:
    """Plan, cycle, status, limits, usage, remaining and the subscription's dates."""
    query_params(request)
    ent = await entitlement_of(request)
    return json_response(await data.plan_view(tenant_conn(request), settings_of(request), ent,
                                              utc_now()))


async def usage(request: web.Request) -> web.Response:
    """Messages, segments and cost from the outbox by local day, `from`..`to` included."""
    params = query_params(request)
    return json_response(await data.report(tenant_conn(request), settings_of(request),
                                           params.get("from"), params.get("to"), utc_now()))
