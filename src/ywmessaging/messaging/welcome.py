"""Welcome texts: when a church turns them on (`welcome_enabled`, `welcome_message` in its
settings; off by default), a member who is added opted in, or who opts in (by an admin or by
texting START), gets the welcome text once in their life as a member.

The welcome goes through the outbox like any message (`outbox.welcome`): quiet hours defer it
and a billing hold keeps it queued, like a broadcast row; an opted-out member's is skipped. It
goes from the member's branch's number when that branch has one. `welcome_texts` (one row per
member, written in the statement that writes the outbox row) makes it once: a second opt-in, a
replayed webhook, two admins at the same moment queue nothing more. Members created by a CSV
import or by texting in for the first time are not welcomed (an import is a list the church
already texts; a stranger who texts in gets the church's answer in the conversation).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog

from ..config import Settings
from ..sqlq import tenant as tq
from .queue import enqueue
from .segments import count_segments

log = structlog.get_logger("ywm.welcome")


async def queue_welcome(conn: Any, settings: Settings, member_id: uuid.UUID) -> uuid.UUID | None:
    """Queue the welcome text to `member_id` (in the caller's transaction, if any); the
    outbox row id, or None when welcome texts are off, the member is not opted in or was
    welcomed before."""
    q = tq(settings.sql_dir)
    church = await q.welcome_settings(conn)
    if church is None or not church["welcome_enabled"]:
        return None
    text = church["welcome_message"]
    segments = min(count_segments(text).segments, 24)
    outbox_id: uuid.UUID | None = await q.welcome_queue(conn, member_id, text, segments)
    return outbox_id


async def welcome_member(conn: Any, registry_pool: Any, settings: Settings,
                         tenant_id: uuid.UUID, member_id: uuid.UUID, now: datetime) -> bool:
    """After a member was added or opted in: queue their welcome and wake a worker. Never
    fails the request that added the member (a failure is logged; nothing was queued)."""
    try:
        outbox_id = await queue_welcome(conn, settings, member_id)
    except Exception as exc:   # the member is saved; a lost welcome is not worth a 500
        log.warning("welcome_not_queued", tenant_id=str(tenant_id), error=type(exc).__name__)
        return False
    if outbox_id is None:
        return False
    await enqueue(registry_pool, settings, tenant_id, now)
    return True
