"""`/api/v1/numbers`: the church's phone numbers — search, buy, list, assign to a branch or make
the default sender, release (archived for the recovery window), recover."""

from __future__ import annotations

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..errors import ValidationFailed
from ..keys import SETTINGS
from ..messaging import number_release
from ..messaging import numbers_service as numbers
from ..messaging.keys import CARRIER
from ..tenants.middleware import tenant_conn
from ..values import E164, boolean, text, uuid_value
from .events import emit
from .responses import json_response
from .validation import fields, json_body, query_params


def _e164(name: str, value: str) -> str:
    if not E164.match(value):
        raise ValidationFailed(f"{name} must be an E.164 number such as +12065550100", field=name)
    return value


async def available(request: web.Request) -> web.Response:
    """Numbers the church could buy, optionally in one US area code."""
    params = query_params(request)   # area_code: 3 digits, 2–9 first; limit 1..50 (422)
    area = params.get("area_code")
    limit = int(params.get("limit", "10"))
    found = await numbers.search(request.config_dict[CARRIER], area_code=area,
                                 limit=limit)
    return json_response({"numbers": [{"phone_number": n} for n in found]})


async def list_numbers(request: web.Request) -> web.Response:
    """The church's numbers (archived ones with `release_after`); `status` filters."""
    status = query_params(request).get("status")   # one of the states (422 otherwise)
    rows = await numbers.list_numbers(tenant_conn(request), registry_pool(request),
                                      request.config_dict[SETTINGS],
                                      principal(request).tenant_id, status)
    return json_response({"numbers": rows})


async def buy(request: web.Request) -> web.Response:
    """Buy a number; 201. 409 `number_taken` / `number_limit` / `number_unavailable`."""
    data = fields(await json_body(request), required={"phone_number": text(16)})
    who = principal(request)
    row = await numbers.buy(tenant_conn(request), registry_pool(request),
                            request.config_dict[CARRIER], request.config_dict[SETTINGS],
                            tenant_id=who.tenant_id, admin_id=who.admin_id,
                            e164=_e164("phone_number", data["phone_number"]))
    return json_response(row, status=201)


async def release(request: web.Request) -> web.Response:
    """Release a number (its id is the E.164 number): archived for the recovery window; 204."""
    who = principal(request)
    e164 = _e164("id", request.match_info["id"])
    await number_release.archive(tenant_conn(request), registry_pool(request),
                                 request.config_dict[SETTINGS], tenant_id=who.tenant_id,
                                 admin_id=who.admin_id, e164=e164)
    emit(request, "number.status", {"number": e164, "status": "archived"})
    return web.Response(status=204)


async def recover(request: web.Request) -> web.Response:
    """Recover an archived number within its window; 200 with the number, `active` again."""
    who = principal(request)
    e164 = _e164("id", request.match_info["id"])
    row = await number_release.recover(tenant_conn(request), registry_pool(request),
                                       request.config_dict[CARRIER],
                                       request.config_dict[SETTINGS], tenant_id=who.tenant_id,
                                       admin_id=who.admin_id, e164=e164)
    emit(request, "number.status", {"number": e164, "status": "active"})
    return json_response(row)


async def update(request: web.Request) -> web.Response:
    """Assign a number to a branch (`branch_id`, null: to none) and/or make it the church's
    default sender (`default: true`); 200 with the number."""
    raw = await json_body(request)
    got = fields(raw, optional={"branch_id": uuid_value(), "default": boolean()})
    if not raw:
        raise ValidationFailed("give branch_id and/or default", field="branch_id")
    if got["default"] is False:
        raise ValidationFailed("default can only be set to true (make another number the "
                               "default instead)", field="default")
    who = principal(request)
    row = await numbers.assign(tenant_conn(request), registry_pool(request),
                               request.config_dict[SETTINGS], tenant_id=who.tenant_id,
                               admin_id=who.admin_id, e164=_e164("id", request.match_info["id"]),
                               branch_id=got["branch_id"], change_branch="branch_id" in raw,
                               make_default=bool(got["default"]))
    return json_response(row)
