"""Apply one inbound SMS (`message.received`) to a church's database, once.

In one transaction: claim the event id (a replay changes nothing), find the sender among the
members (an unknown sender is recorded as a member with only a phone), then either apply a
keyword — consent by `occurred_at`, so a late old STOP never undoes a newer START — with at most
one automatic reply queued in the outbox, or append the message to the member's conversation.

Several numbers: the number texted (`to`) is recorded on the message; a new conversation runs
on it (replies go from it), an existing one keeps its number; an unknown sender is put in the
branch that number is assigned to. MMS media is stored on the message as Telnyx described it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ..config import Settings
from ..sqlq import tenant as tq
from .keywords import Keyword, KeywordKind, classify, possible_revocation
from .segments import count_segments
from .welcome import queue_welcome

UNKNOWN_SENDER_NOTE = "Added automatically: this number texted the church."
MAX_INBOUND_BODY = 10_000
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class InboundMessage:
    """The parts of a `message.received` event that matter here."""

    event_id: str
    occurred_at: datetime
    from_number: str
    to_number: str
    text: str
    carrier_message_id: str | None
    media: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class InboundResult:
    """What applying the message did."""

    outcome: str                      # duplicate | opted_out | opted_in | help | stale_keyword
                                      # | unchanged_keyword | appended
    member_id: uuid.UUID | None = None
    member_created: bool = False
    reply_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None


async def apply_inbound(conn: Any, settings: Settings, msg: InboundMessage, *,
                        quiet: bool = False) -> InboundResult:
    """Apply `msg` in one transaction of the church's database (idempotent by event id);
    `quiet` (a suspended church): a keyword is applied and recorded but no reply is queued."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if not await q.inbound_claim_event(conn, msg.event_id, "message.received"):
            return InboundResult("duplicate")
        member = await q.inbound_member_by_phone(conn, msg.from_number)
        created = False
        if member is None:
            member = await q.inbound_create_member(conn, msg.from_number, msg.occurred_at,
                                                   UNKNOWN_SENDER_NOTE, msg.to_number)
            created = bool(member["created"])
        keyword = classify(msg.text, opted_out=member["opt_in"] == "opted_out")
        if keyword is None:
            return await _append(conn, settings, msg, member["id"], created)
        return await _keyword(conn, settings, msg, keyword, member["id"], created, quiet)


async def _keyword(conn: Any, settings: Settings, msg: InboundMessage, keyword: Keyword,
                   member_id: uuid.UUID, created: bool, quiet: bool = False) -> InboundResult:
    q = tq(settings.sql_dir)
    applied, changed = True, False
    if keyword.kind is KeywordKind.OPT_OUT:
        previous = await q.inbound_apply_opt_out(conn, member_id, msg.occurred_at,
                                                 f"SMS keyword {keyword.word}")
        applied, changed = previous is not None, previous == "opted_in"
    elif keyword.kind is KeywordKind.OPT_IN:
        previous = await q.inbound_apply_opt_in(conn, member_id, msg.occurred_at)
        applied, changed = previous is not None, previous == "opted_out"
    detail = orjson.dumps({"event_id": msg.event_id, "applied": applied,
                           "to": msg.to_number}).decode()
    await q.inbound_insert_consent_event(conn, member_id, keyword.kind.value, keyword.word,
                                         msg.occurred_at, detail)
    if not applied:
        return InboundResult("stale_keyword", member_id, created)
    # One confirmation per change of state (or to a sender we just met); HELP always answers.
    if keyword.kind is not KeywordKind.HELP and not (changed or created):
        return InboundResult("unchanged_keyword", member_id, created)
    reply_id = None if quiet else await _queue_reply(conn, settings, msg, member_id,
                                                     keyword.kind)
    if keyword.kind is KeywordKind.OPT_IN and not quiet:   # nothing is sent while suspended
        await queue_welcome(conn, settings, member_id)
    outcome = {KeywordKind.OPT_OUT: "opted_out", KeywordKind.OPT_IN: "opted_in",
               KeywordKind.HELP: "help"}[keyword.kind]
    return InboundResult(outcome, member_id, created, reply_id)


async def _queue_reply(conn: Any, settings: Settings, msg: InboundMessage,
                       member_id: uuid.UUID, kind: KeywordKind) -> uuid.UUID:
    """Queue the church's reply text, sent from the number the member texted."""
    q = tq(settings.sql_dir)
    texts = await q.inbound_reply_settings(conn)
    body = {KeywordKind.OPT_OUT: texts["stop_reply"], KeywordKind.OPT_IN: texts["start_reply"],
            KeywordKind.HELP: texts["help_reply"]}[kind]
    segments = min(count_segments(body).segments, 24)
    reply_id: uuid.UUID = await q.inbound_queue_reply(conn, member_id, msg.from_number,
                                                      msg.to_number, body, segments)
    return reply_id


async def _append(conn: Any, settings: Settings, msg: InboundMessage, member_id: uuid.UUID,
                  created: bool) -> InboundResult:
    q = tq(settings.sql_dir)
    body = msg.text[:MAX_INBOUND_BODY]
    preview = body[:PREVIEW_CHARS] or (f"[{len(msg.media)} attachment(s)]" if msg.media else "")
    conv = await q.inbound_upsert_conversation(conn, member_id, msg.occurred_at, preview,
                                               msg.to_number)
    message_id = await q.inbound_insert_message(conn, conv["id"], body, msg.carrier_message_id,
                                                msg.occurred_at,
                                                orjson.dumps(list(msg.media)).decode(),
                                                msg.to_number)
    if possible_revocation(body):
        detail = orjson.dumps({"event_id": msg.event_id, "text": body[:200]}).decode()
        await q.inbound_audit(conn, "inbound.possible_opt_out", str(member_id), detail)
    return InboundResult("appended", member_id, created, conversation_id=conv["id"],
                         message_id=message_id)


def inbound_events(msg: InboundMessage, result: InboundResult) -> list[tuple[str, dict[str, Any]]]:
    """The live events an applied inbound message makes (type, data)."""
    if result.outcome == "appended" and result.message_id is not None:
        return [("message.received", {
            "conversation_id": result.conversation_id, "message_id": result.message_id,
            "member_id": result.member_id, "from": msg.from_number, "to": msg.to_number,
            "body": msg.text[:MAX_INBOUND_BODY], "member_created": result.member_created})]
    if result.outcome in ("opted_out", "opted_in"):
        return [(f"member.{result.outcome}", {
            "member_id": result.member_id, "phone": msg.from_number, "via": "sms",
            "member_created": result.member_created})]
    return []
