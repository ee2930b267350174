"""`/api/v1/conversations`: the inbox, threads, one-to-one replies (SMS or MMS), conversations
started by staff, read marks, status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from ..auth.state import principal, registry_pool
from ..church.pagination import decode_cursor, page, parse_limit
from ..errors import ValidationFailed
from ..messaging import conversations as data
from ..messaging.media import media_urls
from ..tenants.middleware import tenant_conn
from ..values import E164, choice, message_body, uuid_value
from .context import actor_of, settings_of, utc_now
from .events import emit
from .responses import json_response
from .validation import fields, json_body, query_choice, query_params, uuid_path


def _key(token: str | None, kind: str) -> tuple[datetime, uuid.UUID] | None:
    if token is None:
        return None
    at, last = decode_cursor(token, kind, ("timestamp", "uuid"))
    assert isinstance(at, datetime)
    return at, uuid.UUID(str(last))


def e164_value(name: str, value: Any) -> str:
    """An E.164 number field (422)."""
    if not isinstance(value, str) or not E164.match(value):
        raise ValidationFailed(f"{name} must be an E.164 number such as +12065550100",
                               field=name)
    return value


def conversation_json(row: Any) -> dict[str, Any]:
    """A conversation with its member and last message (null before the first)."""
    out: dict[str, Any] = {
        "id": str(row["id"]), "status": row["status"], "unread_count": row["unread_count"],
        "church_number": row["church_number"],
        "last_message_at": row["last_message_at"], "created_at": row["created_at"],
        "member": {"id": str(row["member_id"]), "first_name": row["first_name"],
                   "last_name": row["last_name"], "phone": row["phone"],
                   "opt_in": row["opt_in"]},
        "last_message": None,
    }
    if row.get("last_id") is not None:
        out["last_message"] = {"id": str(row["last_id"]), "direction": row["last_direction"],
                               "body": row["last_body"], "created_at": row["last_created_at"]}
    return out


def message_json(row: Any) -> dict[str, Any]:
    """One message of a thread (outbound ones carry their delivery state)."""
    media = row["media"]
    return {"id": str(row["id"]), "direction": row["direction"], "body": row["body"],
            "media": orjson.loads(media) if isinstance(media, str | bytes) else media or [],
            "church_number": row["church_number"],
            "delivery_status": row["delivery_status"], "error_code": row["error_code"],
            "sent_by": str(row["sent_by"]) if row["sent_by"] else None,
            "created_at": row["created_at"]}


async def list_conversations(request: web.Request) -> web.Response:
    """The inbox, most recent activity first, optionally of one status (keyset cursor)."""
    params = query_params(request)
    status = query_choice(params, "status", data.STATUSES, None)
    limit = parse_limit(params.get("limit"))
    rows = await data.list_page(tenant_conn(request), settings_of(request), status=status,
                                after=_key(params.get("cursor"), data.LIST_KIND), limit=limit)
    items, cursor = page(rows, limit, data.LIST_KIND, lambda r: (r["last_message_at"], r["id"]))
    return json_response({"items": [conversation_json(r) for r in items],
                          "next_cursor": cursor})


async def get(request: web.Request) -> web.Response:
    """One conversation with its member."""
    row = await data.get(tenant_conn(request), settings_of(request), uuid_path(request, "id"))
    return json_response(conversation_json(row))


async def update(request: web.Request) -> web.Response:
    """Open, close or archive a conversation."""
    conversation_id = uuid_path(request, "id")
    got = fields(await json_body(request), required={"status": choice(*data.STATUSES)})
    row = await data.set_status(tenant_conn(request), settings_of(request), actor_of(request),
                                conversation_id, got["status"])
    return json_response(conversation_json(row))


async def thread(request: web.Request) -> web.Response:
    """A thread, newest first (keyset cursor)."""
    conversation_id = uuid_path(request, "id")
    params = query_params(request)
    limit = parse_limit(params.get("limit"))
    rows = await data.thread(tenant_conn(request), settings_of(request), conversation_id,
                             after=_key(params.get("cursor"), data.THREAD_KIND), limit=limit)
    items, cursor = page(rows, limit, data.THREAD_KIND, lambda r: (r["created_at"], r["id"]))
    return json_response({"items": [message_json(r) for r in items], "next_cursor": cursor})


async def reply(request: web.Request) -> web.Response:
    """Reply to the member through the outbox; 201 with the queued message."""
    conversation_id = uuid_path(request, "id")
    got = fields(await json_body(request), required={"body": message_body()},
                 optional={"media_urls": media_urls})
    row = await data.reply(tenant_conn(request), registry_pool(request), settings_of(request),
                           principal(request).tenant_id, actor_of(request), conversation_id,
                           got["body"], utc_now(), got["media_urls"])
    emit(request, "message.sent", {"conversation_id": conversation_id, **message_json(row)})
    return json_response(message_json(row), status=201)


async def start(request: web.Request) -> web.Response:
    """Text an opted-in member first: their conversation (made or reopened) and the message,
    queued; 201 `{conversation, message}`."""
    got = fields(await json_body(request),
                 required={"member_id": uuid_value(), "body": message_body()},
                 optional={"media_urls": media_urls, "from_number": e164_value})
    conv, row = await data.start(tenant_conn(request), registry_pool(request),
                                 settings_of(request), principal(request).tenant_id,
                                 actor_of(request), got["member_id"], got["body"], utc_now(),
                                 media_urls=got["media_urls"], from_number=got["from_number"])
    return json_response({"conversation": conversation_json(conv),
                          "message": message_json(row)}, status=201)


async def mark_read(request: web.Request) -> web.Response:
    """Everything in the conversation has been read (unread count 0)."""
    row = await data.mark_read(tenant_conn(request), settings_of(request),
                               uuid_path(request, "id"))
    return json_response(conversation_json(row))
