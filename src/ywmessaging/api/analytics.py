"""`/api/v1/analytics`: summary, messages and member growth of the requesting church only."""

from __future__ import annotations

from aiohttp import web

from ..church import analytics as data
from ..tenants.middleware import tenant_conn
from .context import settings_of
from .responses import json_response
from .validation import query_params


async def summary(request: web.Request) -> web.Response:
    """Headline figures."""
    query_params(request)
    return json_response(await data.summary(tenant_conn(request), settings_of(request)))


async def messages(request: web.Request) -> web.Response:
    """Messages sent, delivered and failed by local day over `days` days."""
    days = data.parse_days(query_params(request).get("days"))
    return json_response(await data.messages(tenant_conn(request), settings_of(request), days))


async def members(request: web.Request) -> web.Response:
    """Member growth, opt-outs and opt-ins by local day over `days` days."""
    days = data.parse_days(query_params(request).get("days"))
    return json_response(await data.members(tenant_conn(request), settings_of(request), days))


async def branches(request: web.Request) -> web.Response:
    """Members and messages per branch over `days` days."""
    days = data.parse_days(query_params(request).get("days"))
    return json_response(await data.branches(tenant_conn(request), settings_of(request), days))
