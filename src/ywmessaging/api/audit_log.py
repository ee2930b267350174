"""`/api/v1/audit-log`: who did what, when; newest first, keyset pages."""

from __future__ import annotations

import re

from aiohttp import web

from ..church import audit_log as data
from ..church.pagination import parse_limit
from ..errors import ValidationFailed
from ..tenants.middleware import tenant_conn
from ..values import uuid_value
from .context import settings_of
from .responses import json_response
from .validation import query_params

_ACTION = re.compile(r"^[a-z0-9_.]{1,100}$")


async def list_audit_log(request: web.Request) -> web.Response:
    """A page of the audit log; `action` filters one action (`template.create`) or a family
    (`template`), `admin_id` one admin."""
    params = query_params(request)
    action = params.get("action")
    if action is not None and not _ACTION.fullmatch(action):
        raise ValidationFailed("action must be letters, digits, _ and .", field="action")
    admin_id = uuid_value()("admin_id", params["admin_id"]) if "admin_id" in params else None
    out = await data.list_entries(tenant_conn(request), settings_of(request),
                                  cursor=params.get("cursor"),
                                  limit=parse_limit(params.get("limit")), action=action,
                                  admin_id=admin_id)
    return json_response(out)
