"""`/api/v1/branches`: a church's campuses, with member counts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..church import branches as data
from ..errors import ValidationFailed
from ..tenants.middleware import tenant_conn
from ..values import Check, boolean, text
from .context import actor_of, entitlement_of, settings_of
from .responses import items_response, json_response
from .validation import cleared, fields, json_body, uuid_path

_OPTIONAL: dict[str, Check] = {"address": text(300), "phone": text(64),
                               "description": text(1000), "is_active": boolean()}


def _branch_fields(raw: dict[str, Any], *, create: bool,
                  clear: frozenset[str] = frozenset()) -> data.BranchFields:
    """The validated fields of a create or a PATCH."""
    body = fields(raw, required={"name": text(100)} if create else None,
                  optional=_OPTIONAL if create else {"name": text(100), **_OPTIONAL})
    return data.BranchFields(clear=clear, **body)


async def list_branches(request: web.Request) -> web.Response:
    """Every branch with its member count."""
    items = await data.list_branches(tenant_conn(request), settings_of(request))
    return items_response(items)


async def create_branch(request: web.Request) -> web.Response:
    """Create a branch; 201, or 409 `branch_exists`."""
    body = _branch_fields(await json_body(request), create=True)
    branch = await data.create_branch(tenant_conn(request), settings_of(request),
                                      actor_of(request), await entitlement_of(request), body)
    return json_response(branch, status=201)


async def get_branch(request: web.Request) -> web.Response:
    """One branch."""
    branch_id = uuid_path(request, "id")
    return json_response(await data.get_branch(tenant_conn(request), settings_of(request),
                                               branch_id))


async def update_branch(request: web.Request) -> web.Response:
    """Change a branch; `address`, `phone` and `description` may be null."""
    branch_id = uuid_path(request, "id")
    raw = await json_body(request)
    clear = cleared(raw, ("address", "phone", "description"))
    changes = _branch_fields(raw, create=False, clear=clear)
    if not raw:
        raise ValidationFailed("give at least one field to change", field="name")
    branch = await data.update_branch(tenant_conn(request), settings_of(request),
                                      actor_of(request), branch_id, changes)
    return json_response(branch)


async def delete_branch(request: web.Request) -> web.Response:
    """Delete a branch; its members stay, in no branch; 204."""
    branch_id = uuid_path(request, "id")
    await data.delete_branch(tenant_conn(request), settings_of(request), actor_of(request),
                             branch_id)
    return web.Response(status=204)
