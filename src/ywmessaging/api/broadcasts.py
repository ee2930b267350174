"""`/api/v1/broadcasts`: send to everyone, branches, groups or members; preview, history,
recipients, cancel (scheduled only) and retry-failed."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..church import rows_json
from ..church.pagination import decode_cursor, page, parse_limit
from ..messaging import broadcasts as data
from ..messaging.media import media_urls
from ..tenants.middleware import tenant_conn
from ..values import Check, boolean, future_instant, message_body, uuid_value
from .context import actor_of, entitlement_of, settings_of, utc_now
from .responses import json_response
from .validation import fields, json_body, query_choice, query_params, uuid_path

BROADCAST_STATUSES = ("draft", "scheduled", "queued", "sending", "sent", "cancelled", "failed")
_UUIDS = ("id", "template_id", "created_by", "recurring_id")


def target() -> Check:
    """A broadcast or recurring target."""
    return data.Target.parse


def broadcast_json(row: Any) -> dict[str, Any]:
    """A broadcast as the API shows it, with its rows counted per state."""
    out = rows_json(row, _UUIDS)
    out["target"] = data.Target.from_row(row["target_kind"], row["target"]).as_json()
    out.pop("target_kind", None)
    known = data.parse_counts(row.get("counts"))
    out["counts"] = {state: known.get(state, 0) for state in data.STATES}
    return out


def _draft(body: dict[str, Any]) -> data.Draft:
    got = fields(body, required={"target": target()},
                 optional={"body": message_body(), "send_at": future_instant(),
                           "template_id": uuid_value(), "media_urls": media_urls})
    return data.Draft(got["body"], got["target"], got["send_at"], got["template_id"],
                      got["media_urls"])


async def create(request: web.Request) -> web.Response:
    """Queue a broadcast now (one outbox row per opted-in recipient) or schedule it; 201."""
    draft = _draft(await json_body(request))
    row = await data.create(tenant_conn(request), registry_pool(request), settings_of(request),
                            principal(request).tenant_id, actor_of(request), draft, utc_now())
    return json_response(broadcast_json(row), status=201)


async def preview(request: web.Request) -> web.Response:
    """Recipients, segments, cost, quiet hours and quota for a broadcast; nothing is written."""
    draft = _draft(await json_body(request))
    ent = await entitlement_of(request)
    return json_response(await data.preview(tenant_conn(request), settings_of(request), ent,
                                            draft, utc_now()))


async def list_broadcasts(request: web.Request) -> web.Response:
    """Broadcast history, newest first (keyset cursor)."""
    params = query_params(request)
    status = query_choice(params, "status", BROADCAST_STATUSES, None)
    limit = parse_limit(params.get("limit"))
    after = (decode_cursor(params["cursor"], data.LIST_KIND, ("timestamp", "uuid"))
             if "cursor" in params else None)
    rows = await data.list_page(tenant_conn(request), settings_of(request), status=status,
                                after=after, limit=limit)
    items, cursor = page(rows, limit, data.LIST_KIND, lambda r: (r["created_at"], r["id"]))
    return json_response({"items": [broadcast_json(r) for r in items], "next_cursor": cursor})


async def get(request: web.Request) -> web.Response:
    """One broadcast with counts per state."""
    row = await data.get(tenant_conn(request), settings_of(request), uuid_path(request, "id"))
    return json_response(broadcast_json(row))


async def recipients(request: web.Request) -> web.Response:
    """Each recipient's send state and error (keyset cursor)."""
    broadcast_id = uuid_path(request, "id")
    params = query_params(request)
    state = query_choice(params, "state", data.STATES, None)
    limit = parse_limit(params.get("limit"))
    after = None
    if "cursor" in params:
        (last,) = decode_cursor(params["cursor"], data.RECIPIENTS_KIND, ("uuid",))
        after = uuid.UUID(str(last))
    rows = await data.recipients(tenant_conn(request), settings_of(request), broadcast_id,
                                 state=state, after=after, limit=limit)
    items, cursor = page(rows, limit, data.RECIPIENTS_KIND, lambda r: (r["id"],))
    return json_response({"items": [rows_json(r, ("id", "member_id")) for r in items],
                          "next_cursor": cursor})


async def cancel(request: web.Request) -> web.Response:
    """Cancel a scheduled broadcast (409 `broadcast_not_cancellable` once it is queued)."""
    row = await data.cancel(tenant_conn(request), settings_of(request), actor_of(request),
                            uuid_path(request, "id"))
    return json_response(broadcast_json(row))


async def retry_failed(request: web.Request) -> web.Response:
    """Queue the failed recipients again (`include_unknown`: also those whose outcome is
    unknown, who may already have the message)."""
    broadcast_id = uuid_path(request, "id")
    body = fields(await json_body(request, allow_empty=True),
                  optional={"include_unknown": boolean()})
    requeued, row = await data.retry_failed(
        tenant_conn(request), registry_pool(request), settings_of(request),
        principal(request).tenant_id, actor_of(request), broadcast_id,
        include_unknown=bool(body["include_unknown"]), now=utc_now())
    return json_response({"requeued": requeued, "broadcast": broadcast_json(row)})


