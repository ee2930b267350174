"""Conversations: the inbox by last activity, threads, one-to-one replies through the outbox
(SMS, or MMS with media URLs), conversations started by staff, read marks and
open/closed/archived. Inbound messages are appended by inbound processing.

A conversation runs on one of the church's numbers (`church_number`: the number the member
first texted, or the one staff started it from, else the member's branch's number; NULL: the
church's default sender): its replies go from that number, so the member sees one thread.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from ..billing.state import entitlement
from ..church import Actor, audit
from ..config import Settings
from ..errors import Conflict, NotFound, ValidationFailed
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from . import compliance, queue, quota
from .broadcasts import NO_SENDER_DETAIL, NoSenderNumber, encoding_of
from .media import outbound_media
from .numbers_service import REGISTRY_TIMEOUT

LIST_KIND = "conversations:last_message:desc"
THREAD_KIND = "conversation_messages:created:desc"
STATUSES = ("open", "closed", "archived")


class MemberOptedOut(Conflict):
    code, title = "member_opted_out", "The member has opted out of messages"


async def list_page(conn: Any, settings: Settings, *, status: str | None,
                    after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    """`limit + 1` conversations, most recent activity first."""
    at, last_id = after if after else (None, None)
    rows: list[Any] = await tq(settings.sql_dir).cv_list(conn, status, at, last_id, limit + 1)
    return rows


async def get(conn: Any, settings: Settings, conversation_id: uuid.UUID) -> Any:
    """One conversation with its member (404)."""
    row = await tq(settings.sql_dir).cv_get(conn, conversation_id)
    if row is None:
        raise NotFound("no such conversation")
    return row


async def thread(conn: Any, settings: Settings, conversation_id: uuid.UUID, *,
                 after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    """`limit + 1` messages of a conversation, newest first (404 if there is none)."""
    q = tq(settings.sql_dir)
    if await q.cv_get(conn, conversation_id) is None:
        raise NotFound("no such conversation")
    at, last_id = after if after else (None, None)
    rows: list[Any] = await q.cv_messages(conn, conversation_id, at, last_id, limit + 1)
    return rows


async def _write_reply(conn: Any, settings: Settings, ent: Any, actor: Actor,
                       conv: Any, body: str, media_urls: tuple[str, ...] | None,
                       now: datetime) -> Any:
    """The outbound message and its outbox row (in the caller's transaction)."""
    q = tq(settings.sql_dir)
    church = await q.get_settings(conn)
    if not conv["church_number"] and not church["sender_number"]:
        raise NoSenderNumber(NO_SENDER_DETAIL)
    await quota.reserve(conn, settings, ent, church["time_zone"], now, 1)
    segments, _ = encoding_of(body)
    media = orjson.dumps(outbound_media(media_urls)).decode()
    return await q.cv_reply(conn, conv["id"], body, actor.admin_id, segments,
                            conv["member_id"], conv["phone"], media,
                            list(media_urls) if media_urls else None, conv["church_number"])


async def reply(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                actor: Actor, conversation_id: uuid.UUID, body: str, now: datetime,
                media_urls: tuple[str, ...] | None = None) -> Any:
    """Send `body` (and media) to the conversation's member from the conversation's number: a
    conversation message and its outbox row, written together (409 `member_opted_out`,
    `no_sender_number`; 402 `plan_limit_reached` over the plan's monthly messages,
    `subscription_inactive` while sending is stopped)."""
    q = tq(settings.sql_dir)
    ent = await entitlement(registry_pool, settings, tenant_id, now)
    ent.require_sending()
    await compliance.require_sending(conn, settings)
    async with conn.transaction():
        conv = await q.cv_lock(conn, conversation_id)
        if conv is None:
            raise NotFound("no such conversation")
        if conv["opt_in"] != "opted_in":
            raise MemberOptedOut("the member replied STOP or was opted out")
        row = await _write_reply(conn, settings, ent, actor, conv, body, media_urls, now)
        await audit(conn, settings, actor, "conversation.reply", "conversation",
                    conversation_id, {"message_id": str(row["id"])})
    await queue.enqueue(registry_pool, settings, tenant_id, now)
    return row


async def _check_number(registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                        e164: str) -> None:
    row = await rq(settings.sql_dir).number_of_tenant(registry_pool, e164, tenant_id,
                                                      timeout=REGISTRY_TIMEOUT)
    if row is None or row["status"] != "active":
        raise ValidationFailed("from_number must be one of the church's active numbers",
                               field="from_number", error_code="not_found")


async def start(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                actor: Actor, member_id: uuid.UUID, body: str, now: datetime, *,
                media_urls: tuple[str, ...] | None = None,
                from_number: str | None = None) -> tuple[Any, Any]:
    """Staff text a member first: their conversation (made, or reopened; `from_number`
    becomes its number) and the message. 404 `not_found` for no such member; 409
    `member_opted_out`, `no_sender_number`; 422 for a number that is not the church's and
    active; 402 like a reply. Returns (conversation, message)."""
    q = tq(settings.sql_dir)
    ent = await entitlement(registry_pool, settings, tenant_id, now)
    ent.require_sending()
    await compliance.require_sending(conn, settings)
    if from_number is not None:
        await _check_number(registry_pool, settings, tenant_id, from_number)
    async with conn.transaction():
        member = await q.cv_member_for_start(conn, member_id)
        if member is None:
            raise NotFound("no such member")
        if member["opt_in"] != "opted_in":
            raise MemberOptedOut("the member replied STOP or was opted out")
        made = await q.cv_start(conn, member_id, from_number, member["branch_number"])
        conv = {"id": made["id"], "member_id": member_id, "phone": member["phone"],
                "church_number": made["church_number"]}
        row = await _write_reply(conn, settings, ent, actor, conv, body, media_urls, now)
        await audit(conn, settings, actor, "conversation.start", "conversation", made["id"],
                    {"message_id": str(row["id"]), "member_id": str(member_id),
                     "created": bool(made["created"])})
    await queue.enqueue(registry_pool, settings, tenant_id, now)
    return await q.cv_get(conn, made["id"]), row


async def mark_read(conn: Any, settings: Settings, conversation_id: uuid.UUID) -> Any:
    """Unread count back to zero (404)."""
    q = tq(settings.sql_dir)
    if await q.cv_mark_read(conn, conversation_id) is None:
        raise NotFound("no such conversation")
    return await q.cv_get(conn, conversation_id)


async def set_status(conn: Any, settings: Settings, actor: Actor,
                     conversation_id: uuid.UUID, status: str) -> Any:
    """Open, close or archive (404)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if await q.cv_set_status(conn, conversation_id, status) is None:
            raise NotFound("no such conversation")
        await audit(conn, settings, actor, "conversation.status", "conversation",
                    conversation_id, {"status": status})
    return await q.cv_get(conn, conversation_id)
