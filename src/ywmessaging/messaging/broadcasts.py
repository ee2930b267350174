"""Broadcasts: targets, creation (recipients resolved once, one outbox row each, in the same
transaction), preview, history, recipients, cancel, retry-failed, and queueing scheduled ones.

Every function takes the tenant connection first and the time `now` explicitly (the worker's
scheduler passes its injectable clock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ..billing.limits import PlanLimitReached
from ..billing.state import Entitlement, entitlement
from ..church import Actor, audit
from ..config import Settings
from ..errors import Conflict, NotFound, ValidationFailed
from ..sqlq import tenant as tq
from . import compliance, queue, quota
from .schedule import quiet_until
from .segments import UCS2, count_segments

TARGET_KEYS = {"all": "all", "branch_ids": "branches", "group_ids": "groups",
               "member_ids": "members"}
MAX_TARGET_IDS = 5000
STATES = ("queued", "sending", "sent", "delivered", "failed", "unknown", "cancelled", "skipped")
LIST_KIND = "broadcasts:created:desc"
RECIPIENTS_KIND = "broadcast_recipients:id"


NO_SENDER_DETAIL = ("the church has no active number: buy one (POST /api/v1/numbers), or wait "
                    "until a pending order completes (GET /api/v1/numbers shows its status)")


class NoSenderNumber(Conflict):
    code, title = "no_sender_number", "The church has no sending number yet"


class NotCancellable(Conflict):
    code, title = "broadcast_not_cancellable", "Only a scheduled broadcast can be cancelled"


class NotRetryable(Conflict):
    code, title = "broadcast_not_retryable", "This broadcast has not been sent"


@dataclass(frozen=True)
class Target:
    """Who a message goes to: everyone, or members of some branches / groups, or some members."""

    kind: str
    ids: tuple[uuid.UUID, ...] = ()

    @classmethod
    def parse(cls, name: str, value: Any) -> Target:
        """`{"all": true}` or exactly one of `branch_ids` / `group_ids` / `member_ids` (422)."""
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in TARGET_KEYS:
            raise ValidationFailed(
                f"{name} must have exactly one of all, branch_ids, group_ids, member_ids",
                field=name)
        key, raw = next(iter(value.items()))
        if key == "all":
            if raw is not True:
                raise ValidationFailed(f"{name}.all must be true", field=name)
            return cls("all")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TARGET_IDS:
            raise ValidationFailed(f"{name}.{key} must list 1 to {MAX_TARGET_IDS} ids", field=name)
        try:
            if not all(isinstance(v, str) for v in raw):
                raise ValueError
            ids = tuple(dict.fromkeys(uuid.UUID(v) for v in raw))
        except ValueError:
            raise ValidationFailed(f"{name}.{key} must hold UUIDs", field=name) from None
        return cls(TARGET_KEYS[key], ids)

    @classmethod
    def from_row(cls, kind: str, stored: Any) -> Target:
        """The target of a broadcast or recurring row."""
        if kind == "all":
            return cls("all")
        doc = orjson.loads(stored) if isinstance(stored, str | bytes) else stored
        key = next(k for k, v in TARGET_KEYS.items() if v == kind)
        return cls(kind, tuple(uuid.UUID(v) for v in (doc or {}).get(key, [])))

    def as_json(self) -> dict[str, Any]:
        """The stored and API form."""
        if self.kind == "all":
            return {"all": True}
        key = next(k for k, v in TARGET_KEYS.items() if v == self.kind)
        return {key: [str(i) for i in self.ids]}


@dataclass(frozen=True)
class Draft:
    """A broadcast as asked for: body (or a template's), target, optional send time and
    media (an MMS: one message of its own price, whatever the body's length)."""

    body: str | None
    target: Target
    send_at: datetime | None = None
    template_id: uuid.UUID | None = None
    media_urls: tuple[str, ...] | None = None


def parse_counts(stored: Any) -> dict[str, int]:
    """The per-state counts column (jsonb arrives as text)."""
    doc = orjson.loads(stored) if isinstance(stored, str | bytes) else stored
    return {str(k): int(v) for k, v in (doc or {}).items()}


def encoding_of(body: str) -> tuple[int, str]:
    """(segments, stored encoding name) of a message body."""
    info = count_segments(body)
    return info.segments, "ucs2" if info.encoding == UCS2 else "gsm7"


async def check_target(conn: Any, settings: Settings, target: Target) -> None:
    """422 when a target names a branch, group or member this church does not have."""
    if target.kind == "all":
        return
    found = await tq(settings.sql_dir).bc_count_target_ids(conn, target.kind, list(target.ids))
    if found != len(target.ids):
        raise ValidationFailed(f"target names {len(target.ids) - found} unknown id(s)",
                               field="target", error_code="not_found")


async def _body(conn: Any, settings: Settings, draft: Draft, *, count_use: bool) -> str:
    q = tq(settings.sql_dir)
    if draft.template_id is not None:
        found = await (q.bc_template_body(conn, draft.template_id) if count_use
                       else q.bc_peek_template(conn, draft.template_id))
        if found is None:
            raise ValidationFailed("no such template", field="template_id",
                                   error_code="not_found")
        if draft.body is None:
            return str(found["body"] if count_use else found)
    if draft.body is None:
        raise ValidationFailed("body is required without a template_id", field="body")
    return draft.body


async def queue_rows(conn: Any, settings: Settings, ent: Entitlement, row: Any, time_zone: str,
                     now: datetime, *, fail_over_quota: bool = False) -> Any:
    """Resolve the recipients of broadcast `row` and write its outbox rows (in the caller's
    transaction). Over the plan's monthly messages: 402, or with `fail_over_quota` the
    broadcast is marked failed."""
    q = tq(settings.sql_dir)
    target = Target.from_row(row["target_kind"], row["target"])
    count = await q.bc_count_recipients(conn, target.kind, list(target.ids))
    try:
        await quota.reserve(conn, settings, ent, time_zone, now, count)
    except PlanLimitReached:
        if not fail_over_quota:
            raise
        await q.bc_fail(conn, row["id"], now)
        return None
    return await q.bc_queue_recipients(conn, row["id"], target.kind, list(target.ids), now)


async def create(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                 actor: Actor, draft: Draft, now: datetime) -> Any:
    """Create a broadcast: queued now (outbox rows written) or scheduled for `send_at`."""
    q = tq(settings.sql_dir)
    ent = await entitlement(registry_pool, settings, tenant_id, now)
    ent.require_sending()
    await compliance.require_sending(conn, settings)
    async with conn.transaction():
        church = await q.get_settings(conn)
        if not church["sender_number"]:
            raise NoSenderNumber(NO_SENDER_DETAIL)
        await check_target(conn, settings, draft.target)
        body = await _body(conn, settings, draft, count_use=True)
        segments, encoding = encoding_of(body)
        scheduled = draft.send_at is not None and draft.send_at > now
        if scheduled:  # refuse now what would surely be refused at send time
            reach = await q.bc_count_recipients(conn, draft.target.kind, list(draft.target.ids))
            await quota.reserve(conn, settings, ent, church["time_zone"], now, reach)
        row = await q.bc_insert(
            conn, body, orjson.dumps(draft.target.as_json()).decode(), draft.target.kind,
            "scheduled" if scheduled else "draft", draft.send_at, draft.template_id,
            actor.admin_id, segments, encoding, None, None,
            list(draft.media_urls) if draft.media_urls else None)
        if not scheduled:
            row = await queue_rows(conn, settings, ent, row, church["time_zone"], now)
        await audit(conn, settings, actor, "broadcast.create", "broadcast", row["id"],
                    {"target": draft.target.kind, "status": row["status"],
                     "recipients": row["recipient_count"]})
    await queue.enqueue(registry_pool, settings, tenant_id, draft.send_at if scheduled else now)
    return await q.bc_get(conn, row["id"])


async def preview(conn: Any, settings: Settings, ent: Entitlement, draft: Draft,
                  now: datetime) -> dict[str, Any]:
    """Recipients, segments, estimated cost, quiet-hours warning and quota, nothing written."""
    q = tq(settings.sql_dir)
    church = await q.get_settings(conn)
    await check_target(conn, settings, draft.target)
    body = await _body(conn, settings, draft, count_use=False)
    info = count_segments(body)
    reach = await q.bc_count_recipients(conn, draft.target.kind, list(draft.target.ids))
    at = draft.send_at if draft.send_at is not None and draft.send_at > now else now
    waits = quiet_until(at, church["quiet_hours_start"], church["quiet_hours_end"],
                        church["time_zone"])
    used = await quota.usage(conn, settings, ent, church["time_zone"], now)
    mms = bool(draft.media_urls)
    each = settings.cost_per_mms if mms else info.segments * settings.cost_per_segment
    return {
        "recipient_count": reach, "segments": info.segments, "encoding": info.encoding,
        "characters": len(body), "units": info.units, "remaining_in_segment": info.remaining,
        "message_type": "mms" if mms else "sms", "media_count": len(draft.media_urls or ()),
        "messages": reach,
        "estimated_cost": round(reach * each, 4),
        "currency": "USD", "sender_number": church["sender_number"],
        "quiet_hours": {"in_quiet_hours": waits is not None,
                        "sends_at": waits.isoformat() if waits else None},
        "quota": used.as_json(),
        "within_quota": used.remaining is None or reach <= used.remaining,
    }


async def get(conn: Any, settings: Settings, broadcast_id: uuid.UUID) -> Any:
    """One broadcast with counts per state (404)."""
    row = await tq(settings.sql_dir).bc_get(conn, broadcast_id)
    if row is None:
        raise NotFound("no such broadcast")
    return row


async def list_page(conn: Any, settings: Settings, *, status: str | None,
                    after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    """`limit + 1` broadcasts, newest first, after the cursor position."""
    created, last_id = after if after else (None, None)
    rows: list[Any] = await tq(settings.sql_dir).bc_list(conn, status, created, last_id,
                                                         limit + 1)
    return rows


async def recipients(conn: Any, settings: Settings, broadcast_id: uuid.UUID, *,
                     state: str | None, after: uuid.UUID | None, limit: int) -> list[Any]:
    """`limit + 1` recipient rows of a broadcast (404 if there is no such broadcast)."""
    q = tq(settings.sql_dir)
    if await q.bc_status(conn, broadcast_id) is None:
        raise NotFound("no such broadcast")
    rows: list[Any] = await q.bc_recipients(conn, broadcast_id, state, after, limit + 1)
    return rows


async def cancel(conn: Any, settings: Settings, actor: Actor, broadcast_id: uuid.UUID) -> Any:
    """Cancel a scheduled broadcast (409 once it is queued, 404 if unknown)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if await q.bc_cancel(conn, broadcast_id) is None:
            if await q.bc_status(conn, broadcast_id) is None:
                raise NotFound("no such broadcast")
            raise NotCancellable("only a scheduled broadcast can be cancelled")
        await audit(conn, settings, actor, "broadcast.cancel", "broadcast", broadcast_id)
    return await q.bc_get(conn, broadcast_id)


async def retry_failed(conn: Any, registry_pool: Any, settings: Settings,
                       tenant_id: uuid.UUID, actor: Actor, broadcast_id: uuid.UUID, *,
                       include_unknown: bool, now: datetime) -> tuple[int, Any]:
    """Queue a broadcast's failed rows again (and `unknown` ones if asked: they may have been
    delivered, so only on request). Counts against the quota. Returns (requeued, broadcast)."""
    q = tq(settings.sql_dir)
    ent = await entitlement(registry_pool, settings, tenant_id, now)
    ent.require_sending()
    await compliance.require_sending(conn, settings)
    async with conn.transaction():
        status = await q.bc_status(conn, broadcast_id)
        if status is None:
            raise NotFound("no such broadcast")
        if status in ("scheduled", "cancelled", "draft"):
            raise NotRetryable(f"the broadcast is {status}")
        church = await q.get_settings(conn)
        if not church["sender_number"]:
            raise NoSenderNumber(NO_SENDER_DETAIL)
        count = await q.bc_count_retryable(conn, broadcast_id, include_unknown)
        await quota.reserve(conn, settings, ent, church["time_zone"], now, count)
        requeued = await q.bc_retry_failed(conn, broadcast_id, include_unknown, now)
        await audit(conn, settings, actor, "broadcast.retry_failed", "broadcast", broadcast_id,
                    {"requeued": requeued, "include_unknown": include_unknown})
    if requeued:
        await queue.enqueue(registry_pool, settings, tenant_id, now)
    return int(requeued or 0), await q.bc_get(conn, broadcast_id)


async def queue_due_scheduled(conn: Any, settings: Settings, ent: Entitlement, now: datetime,
                              limit: int = 20) -> int:
    """Worker: queue scheduled broadcasts whose time has come (each in its own transaction;
    several workers skip each other's rows). Returns how many were handled."""
    q = tq(settings.sql_dir)
    done = 0
    for _ in range(limit):
        async with conn.transaction():
            row = await q.bc_claim_scheduled(conn, now)
            if row is None:
                break
            church = await q.get_settings(conn)
            await queue_rows(conn, settings, ent, row, church["time_zone"], now,
                             fail_over_quota=True)
        done += 1
    return done
