"""`/api/v1/onboarding`: setup steps, derived from the church's data."""

from __future__ import annotations

from aiohttp import web

from ..church import onboarding as data
from ..tenants.middleware import tenant_conn
from .context import settings_of
from .responses import json_response
from .validation import query_params


async def onboarding(request: web.Request) -> web.Response:
    """Each setup step, done or not, and the percentage done."""
    query_params(request)
    return json_response(await data.progress(tenant_conn(request), settings_of(request)))
