"""Operator endpoints under /ops, guarded by `operator_token` (Bearer <YWM_OPERATOR_TOKEN>)."""

from __future__ import annotations

import hmac
import uuid

from aiohttp import web

from ..errors import NotFound, TenantNotFound, Unauthorized
from ..keys import SETTINGS
from ..tenants.keys import SUPERVISOR
from ..tenants.status import pool_status
from .responses import json_response


async def operator_token(request: web.Request) -> None:
    """404 when no operator token is configured (the endpoints do not exist), 401 unless the
    request carries it as a Bearer token (compared in constant time)."""
    token = request.config_dict[SETTINGS].operator_token
    if not token:
        raise NotFound()
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        raise Unauthorized("operator token required",
                           headers={"WWW-Authenticate": 'Bearer realm="ywm-ops"'})


async def tenant_pool(request: web.Request) -> web.Response:
    """GET /ops/tenants/{id}/pool: this process's pool, breaker and counters for one tenant."""
    try:
        tenant_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise TenantNotFound("not a tenant id") from None
    runtime = request.config_dict[SUPERVISOR]
    body = pool_status(runtime.supervisor, tenant_id)
    body["listener_connected"] = bool(runtime.listener and runtime.listener.connected)
    return json_response(body, headers={"Cache-Control": "no-store"})
