"""`/api/v1/members`: the church's people, their groups, branch and consent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..church import members as data
from ..church.pagination import parse_limit
from ..errors import ValidationFailed
from ..messaging.welcome import welcome_member
from ..tenants.middleware import tenant_conn
from ..values import spec_email, text, uuid_list, uuid_value
from .context import actor_of, entitlement_of, settings_of, utc_now
from .events import emit
from .responses import json_response, page_response
from .validation import cleared, fields, json_body, query_choice, query_params, uuid_path

MAX_SEARCH = 100


def _member_query(params: Mapping[str, str]) -> data.MemberQuery:
    ids = {name: uuid_value()(name, params[name]) if name in params else None
           for name in ("group_id", "branch_id")}
    search = params.get("search", "").strip() or None
    if search is not None:
        search = text(MAX_SEARCH)("search", search)
    return data.MemberQuery(
        search=search, group_id=ids["group_id"], branch_id=ids["branch_id"],
        opt_in=query_choice(params, "opt_in", data.OPT_STATES, None),
        sort=query_choice(params, "sort", data.SORTS, "name") or "name",
        order=query_choice(params, "order", data.ORDERS, "asc") or "asc",
        cursor=params.get("cursor"), limit=parse_limit(params.get("limit")),
    )


async def list_members(request: web.Request) -> web.Response:
    """A page of members: search, filters, sort, keyset cursor."""
    query = _member_query(query_params(request))
    items, next_cursor = await data.list_members(tenant_conn(request), settings_of(request),
                                                 query)
    return page_response(items, next_cursor)


async def _welcome(request: web.Request, member: dict[str, Any]) -> None:
    """The church's welcome text to a member just added or opted in (if it sends them)."""
    if member.get("opt_in") == "opted_in":
        await welcome_member(tenant_conn(request), registry_pool(request), settings_of(request),
                             principal(request).tenant_id, uuid.UUID(str(member["id"])),
                             utc_now())


async def create_member(request: web.Request) -> web.Response:
    """Create a member; 201 with it, 409 `member_exists` when the phone is taken."""
    body = fields(await json_body(request),
                  required={"first_name": text(100), "last_name": text(100),
                            "phone": text(64)},
                  optional={"email": spec_email(), "group_ids": uuid_list(),
                            "branch_id": uuid_value()})
    member = await data.create_member(
        tenant_conn(request), settings_of(request), actor_of(request),
        await entitlement_of(request),
        first_name=body["first_name"], last_name=body["last_name"], phone=body["phone"],
        email=body["email"], branch_id=body["branch_id"], group_ids=body["group_ids"] or (),
    )
    await _welcome(request, member)
    return json_response(member, status=201)


async def get_member(request: web.Request) -> web.Response:
    """One member."""
    member_id = uuid_path(request, "id")
    return json_response(await data.get_member(tenant_conn(request), settings_of(request),
                                               member_id))


async def update_member(request: web.Request) -> web.Response:
    """Change a member; `email` and `branch_id` may be null; `group_ids` replaces its groups."""
    member_id = uuid_path(request, "id")
    raw = await json_body(request)
    clear = cleared(raw, ("email", "branch_id"))
    body = fields(raw, optional={
        "first_name": text(100), "last_name": text(100), "phone": text(64),
        "email": spec_email(), "branch_id": uuid_value(), "group_ids": uuid_list()})
    changes = data.MemberChanges(clear=clear, **body)
    if not changes.given():
        raise ValidationFailed("give at least one field to change", field="first_name")
    member = await data.update_member(tenant_conn(request), settings_of(request),
                                      actor_of(request), member_id, changes)
    return json_response(member)


async def delete_member(request: web.Request) -> web.Response:
    """Delete a member for good; 204."""
    member_id = uuid_path(request, "id")
    await data.delete_member(tenant_conn(request), settings_of(request), actor_of(request),
                             member_id)
    return web.Response(status=204)


async def _consent(request: web.Request, *, opt_in: bool) -> web.Response:
    member_id = uuid_path(request, "id")
    body = fields(await json_body(request, allow_empty=True), optional={"reason": text(500)})
    member = await data.set_consent(tenant_conn(request), settings_of(request),
                                    actor_of(request), member_id, opt_in=opt_in,
                                    reason=body["reason"])
    if opt_in:
        await _welcome(request, member)
    emit(request, "member.opted_in" if opt_in else "member.opted_out",
         {"member_id": member_id, "via": "office"})
    return json_response(member)


async def opt_out(request: web.Request) -> web.Response:
    """Record that the member asked the office to stop texting them."""
    return await _consent(request, opt_in=False)


async def opt_in(request: web.Request) -> web.Response:
    """Record that the member asked the office to text them again."""
    return await _consent(request, opt_in=True)


async def consent(request: web.Request) -> web.Response:
    """A page of the member's consent events, newest first."""
    member_id = uuid_path(request, "id")
    params = query_params(request)
    items, next_cursor = await data.list_consent(
        tenant_conn(request), settings_of(request), member_id,
        cursor=params.get("cursor"), limit=parse_limit(params.get("limit")))
    return json_response({"items": items, "next_cursor": next_cursor})
