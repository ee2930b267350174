"""Conversations: the inbox by last activity, threads, one-to-one replies through the outbox,
read marks and open/closed/archived. Inbound messages are appended by inbound processing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..billing.state import entitlement
from ..church import Actor, audit
from ..config import Settings
from ..errors import Conflict, NotFound
from ..sqlq import tenant as tq
from . import compliance, queue, quota
from .broadcasts import NoSenderNumber, encoding_of

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


async def reply(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                actor: Actor, conversation_id: uuid.UUID, body: str, now: datetime) -> Any:
    """Send `body` to the conversation's member: a conversation message and its outbox row,
    written together (409 `member_opted_out`, `no_sender_number`; 402 `plan_limit_reached`
    over the plan's monthly messages, `subscription_inactive` while sending is stopped)."""
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
        church = await q.get_settings(conn)
        if not church["sender_number"]:
            raise NoSenderNumber("buy or assign a number first (POST /api/v1/numbers)")
        await quota.reserve(conn, settings, ent, church["time_zone"], now, 1)
        segments, _ = encoding_of(body)
        row = await q.cv_reply(conn, conversation_id, body, actor.admin_id, segments,
                               conv["member_id"], conv["phone"])
        await audit(conn, settings, actor, "conversation.reply", "conversation",
                    conversation_id, {"message_id": str(row["id"])})
    await queue.enqueue(registry_pool, settings, tenant_id, now)
    return row


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
