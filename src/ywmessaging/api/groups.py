"""`/api/v1/groups`: named sets of members, with member counts and membership changes."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..church import groups as data
from ..errors import ValidationFailed
from ..tenants.middleware import tenant_conn
from ..values import Check, text, uuid_list
from .context import actor_of, settings_of
from .responses import items_response, json_response
from .validation import cleared, fields, json_body, uuid_path

_COLOR_RE = re.compile(r"#[0-9A-Fa-f]{6}")


def color() -> Check:
    """A `#RRGGBB` colour."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not _COLOR_RE.fullmatch(value):
            raise ValidationFailed(f"{name} must be a colour like #1A2B3C", field=name)
        return value.upper()

    return check


_OPTIONAL = {"description": text(1000), "color": color()}


async def list_groups(request: web.Request) -> web.Response:
    """Every group with its member count."""
    items = await data.list_groups(tenant_conn(request), settings_of(request))
    return items_response(items)


async def create_group(request: web.Request) -> web.Response:
    """Create a group; 201, or 409 `group_exists`."""
    body = fields(await json_body(request), required={"name": text(100)}, optional=_OPTIONAL)
    group = await data.create_group(tenant_conn(request), settings_of(request),
                                     actor_of(request), **body)
    return json_response(group, status=201)


async def get_group(request: web.Request) -> web.Response:
    """One group."""
    group_id = uuid_path(request, "id")
    return json_response(await data.get_group(tenant_conn(request), settings_of(request),
                                              group_id))


async def update_group(request: web.Request) -> web.Response:
    """Rename or describe a group; `description` and `color` may be null."""
    group_id = uuid_path(request, "id")
    raw = await json_body(request)
    clear = cleared(raw, ("description", "color"))
    body = fields(raw, optional={"name": text(100), **_OPTIONAL})
    if not raw:
        raise ValidationFailed("give at least one field to change", field="name")
    group = await data.update_group(tenant_conn(request), settings_of(request),
                                     actor_of(request), group_id,
                                     data.GroupChanges(clear=clear, **body))
    return json_response(group)


async def delete_group(request: web.Request) -> web.Response:
    """Delete a group (its members stay); 204."""
    group_id = uuid_path(request, "id")
    await data.delete_group(tenant_conn(request), settings_of(request), actor_of(request),
                            group_id)
    return web.Response(status=204)


async def _members(request: web.Request, *, add: bool) -> web.Response:
    group_id = uuid_path(request, "id")
    body = fields(await json_body(request), required={"member_ids": uuid_list(min_items=1)})
    group = await data.change_members(tenant_conn(request), settings_of(request),
                                       actor_of(request), group_id, body["member_ids"], add=add)
    return json_response(group)


async def add_members(request: web.Request) -> web.Response:
    """Put members in the group (all must exist, else 422 and nothing changes)."""
    return await _members(request, add=True)


async def remove_members(request: web.Request) -> web.Response:
    """Take members out of the group (ids not in it are ignored)."""
    return await _members(request, add=False)
