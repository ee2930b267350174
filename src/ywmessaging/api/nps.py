"""`/api/v1/nps`: an admin's 0-10 recommendation score, and the church's NPS."""

from __future__ import annotations

from aiohttp import web

from ..church import nps as data
from ..church.analytics import parse_days
from ..church.templates import message_text
from ..tenants.middleware import tenant_conn
from ..values import choice, integer
from .context import actor_of, settings_of
from .responses import json_response
from .validation import fields, json_body, query_params

_score = integer()   # 0..10, bounded by the spec


async def submit(request: web.Request) -> web.Response:
    """Record a score; 201 with it."""
    body = fields(await json_body(request), required={"score": _score}, optional={
        "category": choice(*data.CATEGORIES),
        "comment": lambda n, v: message_text(n, v, 2000)})
    row = await data.submit(tenant_conn(request), settings_of(request), actor_of(request),
                            score=body["score"], category=body["category"] or "general",
                            comment=body["comment"])
    return json_response(row, status=201)


async def summary(request: web.Request) -> web.Response:
    """NPS over the last `days` days (default 30), overall and by category."""
    days = parse_days(query_params(request).get("days"))
    return json_response(await data.summary(tenant_conn(request), settings_of(request), days))
