"""`/api/v1/templates`: reusable message texts with categories (defaults seeded per church)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..church import templates as data
from ..errors import ValidationFailed
from ..tenants.middleware import tenant_conn
from ..values import choice, text
from .context import actor_of, settings_of
from .responses import json_response
from .validation import fields, json_body, query_choice, query_params, uuid_path


def _body(name: str, value: Any) -> str:
    return data.message_text(name, value, data.MAX_BODY)


async def list_templates(request: web.Request) -> web.Response:
    """Every template, optionally of one category."""
    params = query_params(request)
    category = query_choice(params, "category", data.CATEGORIES, None)
    items = await data.list_templates(tenant_conn(request), settings_of(request), category)
    return json_response({"items": items})


async def create_template(request: web.Request) -> web.Response:
    """Create a template; 201 with it."""
    body = fields(await json_body(request),
                  required={"name": text(data.MAX_NAME), "body": _body},
                  optional={"category": choice(*data.CATEGORIES)})
    row = await data.create_template(tenant_conn(request), settings_of(request),
                                     actor_of(request), name=body["name"], body=body["body"],
                                     category=body["category"] or "general")
    return json_response(row, status=201)


async def get_template(request: web.Request) -> web.Response:
    """One template."""
    template_id = uuid_path(request, "id")
    row = await data.get_template(tenant_conn(request), settings_of(request), template_id)
    return json_response(row)


async def update_template(request: web.Request) -> web.Response:
    """Change a template's name, text or category."""
    template_id = uuid_path(request, "id")
    body = fields(await json_body(request), optional={
        "name": text(data.MAX_NAME), "body": _body, "category": choice(*data.CATEGORIES)})
    if all(v is None for v in body.values()):
        raise ValidationFailed("give at least one of name, body, category", field="name")
    row = await data.update_template(tenant_conn(request), settings_of(request),
                                     actor_of(request), template_id, name=body["name"],
                                     body=body["body"], category=body["category"])
    return json_response(row)


async def delete_template(request: web.Request) -> web.Response:
    """Delete a template; 204."""
    template_id = uuid_path(request, "id")
    await data.delete_template(tenant_conn(request), settings_of(request), actor_of(request),
                               template_id)
    return web.Response(status=204)
