"""`/api/v1/nps`: an admin's 0-10 recommendation score, and the church's NPS."""

from __future__ import annotations

from aiohttp import web

from ..church import nps as data
from ..church import rows_json
from ..church.analytics import parse_days
from ..church.pagination import decode_cursor, page, parse_limit
from ..church.templates import message_text
from ..tenants.middleware import tenant_conn
from ..values import choice, integer
from .context import actor_of, settings_of
from .responses import json_response
from .validation import fields, json_body, query_choice, query_params

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


async def list_responses(request: web.Request) -> web.Response:
    """The church's answers, newest first, optionally of one category (keyset cursor)."""
    params = query_params(request)
    category = query_choice(params, "category", data.CATEGORIES, None)
    limit = parse_limit(params.get("limit"))
    after = (decode_cursor(params["cursor"], data.LIST_KIND, ("timestamp", "uuid"))
             if "cursor" in params else None)
    rows = await data.list_page(tenant_conn(request), settings_of(request), category=category,
                                after=after, limit=limit)
    items, cursor = page(rows, limit, data.LIST_KIND, lambda r: (r["created_at"], r["id"]))
    return json_response({"items": [rows_json(r, ("id", "admin_id")) for r in items],
                          "next_cursor": cursor})
