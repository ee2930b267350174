"""Recurring messages: rules (CRUD, pause/resume) and the scheduler step that materializes each
occurrence exactly once as a broadcast.

Exactly once, even with several workers and after a restart: the due rule is locked
(`FOR UPDATE SKIP LOCKED`), its broadcast is inserted with `ON CONFLICT (recurring_id,
occurrence_at) DO NOTHING`, its outbox rows are written and `next_run_at` is advanced, all in
one transaction. A crash before the commit leaves everything as it was; after it, the rule
already points at the next occurrence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

import orjson
import structlog

from ..billing.state import Entitlement, entitlement
from ..church import Actor, audit
from ..config import Settings
from ..errors import NotFound, ValidationFailed
from ..sqlq import tenant as tq
from . import compliance, queue
from .broadcasts import Target, check_target, encoding_of, queue_rows
from .schedule import Rule, next_occurrence, plan_run

log = structlog.get_logger("ywm.recurring")
SCHEDULE_FIELDS = ("frequency", "days_of_week", "day_of_month", "local_time", "time_zone")


@dataclass(frozen=True)
class Spec:
    """A rule as the API describes it."""

    name: str
    body: str
    target: Target
    frequency: str
    local_time: time
    time_zone: str
    days_of_week: tuple[int, ...] = ()
    day_of_month: int | None = None
    missed_policy: str = "send_late"

    def rule(self) -> Rule:
        """The scheduling rule (422 when the combination cannot fire)."""
        try:
            return Rule(self.frequency, self.local_time, self.time_zone,
                        tuple(sorted(set(self.days_of_week))), self.day_of_month)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="frequency",
                                   error_code="invalid_rule") from None

    @classmethod
    def from_row(cls, row: Any) -> Spec:
        """The spec of a stored rule."""
        return cls(row["name"], row["body"], Target.from_row(row["target_kind"], row["target"]),
                   row["frequency"], row["local_time"], row["time_zone"],
                   tuple(row["days_of_week"] or ()), row["day_of_month"], row["missed_policy"])


def _args(spec: Spec, next_run_at: datetime) -> tuple[Any, ...]:
    rule = spec.rule()
    return (spec.name, spec.body, orjson.dumps(spec.target.as_json()).decode(),
            spec.target.kind, spec.frequency, list(rule.days_of_week),
            spec.day_of_month if spec.frequency == "monthly" else None, spec.local_time,
            spec.time_zone, spec.missed_policy, next_run_at)


async def create(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                 actor: Actor, spec: Spec, now: datetime) -> Any:
    """Create an active rule (an empty time zone means the church's); its first occurrence
    is the next one after `now`. 402 `subscription_inactive` while sending is stopped."""
    (await entitlement(registry_pool, settings, tenant_id, now)).require_sending()
    await compliance.require_sending(conn, settings)
    if not spec.time_zone:
        spec = replace(spec, time_zone=(await tq(settings.sql_dir).get_settings(conn))[
            "time_zone"])
    first = next_occurrence(spec.rule(), now)
    async with conn.transaction():
        await check_target(conn, settings, spec.target)
        row = await tq(settings.sql_dir).rc_insert(conn, *_args(spec, first), actor.admin_id)
        await audit(conn, settings, actor, "recurring.create", "recurring_message", row["id"])
    await queue.enqueue(registry_pool, settings, tenant_id, first)
    return row


async def list_all(conn: Any, settings: Settings) -> list[Any]:
    """Every rule of the church."""
    rows: list[Any] = await tq(settings.sql_dir).rc_list(conn)
    return rows


async def get(conn: Any, settings: Settings, rule_id: uuid.UUID) -> Any:
    """One rule (404)."""
    row = await tq(settings.sql_dir).rc_get(conn, rule_id)
    if row is None:
        raise NotFound("no such recurring message")
    return row


async def update(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                 actor: Actor, rule_id: uuid.UUID, changes: dict[str, Any],
                 now: datetime) -> Any:
    """Change some fields; a schedule change moves the next occurrence to the new rule's."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        row = await q.rc_lock(conn, rule_id)
        if row is None:
            raise NotFound("no such recurring message")
        spec = replace(Spec.from_row(row), **changes)
        next_run = row["next_run_at"]
        if any(name in changes for name in SCHEDULE_FIELDS):
            next_run = next_occurrence(spec.rule(), now)
        if "target" in changes:
            await check_target(conn, settings, spec.target)
        updated = await q.rc_update(conn, rule_id, *_args(spec, next_run))
        await audit(conn, settings, actor, "recurring.update", "recurring_message", rule_id,
                    {"fields": sorted(changes)})
    if updated["status"] == "active":
        await queue.enqueue(registry_pool, settings, tenant_id, next_run)
    return updated


async def delete(conn: Any, settings: Settings, actor: Actor, rule_id: uuid.UUID) -> None:
    """Delete a rule (404); the broadcasts it produced stay."""
    async with conn.transaction():
        if await tq(settings.sql_dir).rc_delete(conn, rule_id) is None:
            raise NotFound("no such recurring message")
        await audit(conn, settings, actor, "recurring.delete", "recurring_message", rule_id)


async def set_status(conn: Any, registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                     actor: Actor, rule_id: uuid.UUID, status: str, now: datetime) -> Any:
    """Pause, or resume from the next occurrence after `now` (nothing missed while paused is
    sent)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        row = await q.rc_lock(conn, rule_id)
        if row is None:
            raise NotFound("no such recurring message")
        next_run = None
        if status == "active":
            (await entitlement(registry_pool, settings, tenant_id, now)).require_sending()
            await compliance.require_sending(conn, settings)
            next_run = next_occurrence(Spec.from_row(row).rule(), now)
        updated = await q.rc_set_status(conn, rule_id, status, next_run)
        await audit(conn, settings, actor,
                    "recurring.resume" if status == "active" else "recurring.pause",
                    "recurring_message", rule_id)
    if next_run is not None:
        await queue.enqueue(registry_pool, settings, tenant_id, next_run)
    return updated


async def run_due(conn: Any, settings: Settings, ent: Entitlement, now: datetime,
                  limit: int = 50) -> list[tuple[uuid.UUID, datetime | None]]:
    """Worker: materialize every due rule's occurrence (at most `limit` rules this round).

    Returns (rule id, occurrence sent or None when skipped) for each rule handled.
    """
    q = tq(settings.sql_dir)
    grace = timedelta(seconds=settings.recurring_grace_seconds)
    done: list[tuple[uuid.UUID, datetime | None]] = []
    for _ in range(limit):
        async with conn.transaction():
            row = await q.rc_claim_due(conn, now)
            if row is None:
                break
            spec = Spec.from_row(row)
            plan = plan_run(spec.rule(), row["next_run_at"], now, grace=grace,
                            missed_policy=row["missed_policy"])
            if plan.send_at is not None:
                await _materialize(conn, settings, ent, row, plan.send_at, now)
            await q.rc_advance(conn, row["id"], plan.next_run_at, plan.send_at)
        if plan.skipped:
            log.info("recurring_occurrences_skipped", rule_id=str(row["id"]),
                     skipped=plan.skipped, late=plan.late)
        done.append((row["id"], plan.send_at))
    return done


async def _materialize(conn: Any, settings: Settings, ent: Entitlement, row: Any,
                       occurrence: datetime, now: datetime) -> None:
    q = tq(settings.sql_dir)
    segments, encoding = encoding_of(row["body"])
    created = await q.bc_insert(conn, row["body"], row["target"], row["target_kind"], "draft",
                                None, None, row["created_by"], segments, encoding, row["id"],
                                occurrence, None)
    if created is None:  # this occurrence already has its broadcast
        log.info("recurring_occurrence_exists", rule_id=str(row["id"]),
                 occurrence=occurrence.isoformat())
        return
    church = await q.get_settings(conn)
    await queue_rows(conn, settings, ent, created, church["time_zone"], now,
                     fail_over_quota=True)
