"""`/api/v1/admins`: the church's admins; inviting, changing and removing need the owner role."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth import admins
from ..auth.permissions import ROLES
from ..auth.state import client, principal, registry_pool, services
from ..errors import ValidationFailed
from ..tenants.middleware import tenant_conn
from ..values import choice, spec_email, text
from .responses import json_response
from .validation import fields, json_body, uuid_path

_ADMIN_FIELDS = ("id", "email", "first_name", "last_name", "role", "status", "mfa_enabled",
                 "last_login_at", "created_at")


def admin_json(row: Any) -> dict[str, Any]:
    """An admin as the API shows it (never a hash or token)."""
    out = {name: row[name] for name in _ADMIN_FIELDS}
    out["id"] = str(row["id"])  # asyncpg's UUID type is not one orjson knows
    return out


async def list_admins(request: web.Request) -> web.Response:
    """Every admin of the church."""
    rows = await admins.list_admins(tenant_conn(request), services(request))
    return json_response({"admins": [admin_json(r) for r in rows]})


async def invite(request: web.Request) -> web.Response:
    """Invite a co-admin by email; 201 with the invited admin."""
    data = fields(await json_body(request),
                  required={"email": spec_email(), "first_name": text(100), "last_name": text(100)},
                  optional={"role": choice(*ROLES)})
    row = await admins.invite(
        tenant_conn(request), services(request), registry_pool(request), principal(request),
        email=data["email"], first_name=data["first_name"], last_name=data["last_name"],
        role=data["role"] or "admin", client=client(request),
    )
    return json_response(admin_json(row), status=201)


async def update(request: web.Request) -> web.Response:
    """Change an admin's role or names; the last owner cannot be demoted."""
    target = uuid_path(request, "id")
    data = fields(await json_body(request), optional={
        "role": choice(*ROLES), "first_name": text(100), "last_name": text(100),
    })
    if all(v is None for v in data.values()):
        raise ValidationFailed("give at least one of role, first_name, last_name", field="role")
    row = await admins.update(tenant_conn(request), services(request), principal(request),
                              target, role=data["role"], first_name=data["first_name"],
                              last_name=data["last_name"], client=client(request))
    return json_response(admin_json(row))


async def remove(request: web.Request) -> web.Response:
    """Remove an admin; the last owner cannot be removed; 204."""
    target = uuid_path(request, "id")
    await admins.remove(tenant_conn(request), services(request), registry_pool(request),
                        principal(request), target, client=client(request))
    return web.Response(status=204)
