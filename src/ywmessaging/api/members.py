"""`/api/v1/members`: the church's people, their groups, branch and consent.

Also the small request helpers the directory handlers share (the acting admin, UUID fields,
nullable PATCH fields).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web

from ..auth.state import principal
from ..church import Actor
from ..church import members as data
from ..church.pagination import parse_limit
from ..config import Settings
from ..errors import ValidationFailed
from ..keys import REQUEST_ID, SETTINGS
from ..tenants.middleware import tenant_conn
from .responses import json_response, page_response
from .validation import (
    Check,
    fields,
    json_body,
    query_params,
    spec_email,
    text,
    uuid_path,
)

MAX_IDS = 1000
MAX_SEARCH = 100


def settings_of(request: web.Request) -> Settings:
    """The application's settings."""
    return request.config_dict[SETTINGS]


def actor_of(request: web.Request) -> Actor:
    """The authenticated admin acting in this request, for the audit log."""
    return Actor(principal(request).admin_id, request.remote, request.get(REQUEST_ID))


def uuid_value() -> Check:
    """A UUID in its canonical text form."""

    def check(name: str, value: Any) -> uuid.UUID:
        try:
            if not isinstance(value, str) or len(value) != 36:
                raise ValueError
            return uuid.UUID(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be a UUID", field=name) from None

    return check


def uuid_list(*, min_items: int = 0) -> Check:
    """A JSON array of UUIDs (duplicates collapse), at most MAX_IDS long."""
    one = uuid_value()

    def check(name: str, value: Any) -> tuple[uuid.UUID, ...]:
        if not isinstance(value, list) or not min_items <= len(value) <= MAX_IDS:
            raise ValidationFailed(
                f"{name} must be an array of {min_items} to {MAX_IDS} UUIDs", field=name)
        return tuple(dict.fromkeys(one(name, v) for v in value))

    return check


def cleared(body: Mapping[str, Any], nullable: Collection[str]) -> frozenset[str]:
    """The fields a PATCH sets to null; null is refused for the others (422)."""
    out = set()
    for name, value in body.items():
        if value is None:
            if name not in nullable:
                raise ValidationFailed(f"{name} cannot be null", field=name)
            out.add(name)
    return frozenset(out)


def query_choice(params: Mapping[str, str], name: str, allowed: Collection[str],
                 default: str | None) -> str | None:
    """An optional query parameter from a fixed set."""
    value = params.get(name, default)
    if value is not None and value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", field=name)
    return value


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


async def create_member(request: web.Request) -> web.Response:
    """Create a member; 201 with it, 409 `member_exists` when the phone is taken."""
    body = fields(await json_body(request),
                  required={"first_name": text(100), "last_name": text(100),
                            "phone": text(64)},
                  optional={"email": spec_email(), "group_ids": uuid_list(),
                            "branch_id": uuid_value()})
    member = await data.create_member(
        tenant_conn(request), settings_of(request), actor_of(request),
        first_name=body["first_name"], last_name=body["last_name"], phone=body["phone"],
        email=body["email"], branch_id=body["branch_id"], group_ids=body["group_ids"] or (),
    )
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
