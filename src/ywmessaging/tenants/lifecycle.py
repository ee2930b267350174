"""A church's life in the registry: suspend, resume, schedule and cancel its deletion.

Every change takes the tenant row's lock, changes the status (the row's trigger tells every
process, whose supervisors then gate leases on the new status) and records a
`tenant_transitions` row naming who (`operator:<name>`, `billing`, `admin:<id>`, `worker`),
when and why, in one transaction.

Suspension: `operator` suspensions are lifted only by an operator; `billing` ones (the
housekeeping round, ops/lifecycle_rounds.py) also by a subscription that becomes active again
(billing/subscriptions.py). A church whose deletion is due is torn down by ops/teardown.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog

from ..config import Settings
from ..errors import AppError, Conflict, TenantNotFound
from ..sqlq import registry as rq

log = structlog.get_logger("ywm.lifecycle")
DELETION_GRACE = timedelta(days=30)
LIVE = ("active", "suspended")


class TenantStatusConflict(Conflict):
    code, title = "tenant_status_conflict", "The church is not in a state that allows this"


class DeletionNotScheduled(AppError):
    status, code, title = 404, "deletion_not_scheduled", "No deletion is scheduled"


@asynccontextmanager
async def _tx(registry: Any) -> AsyncIterator[Any]:
    """A transaction on a pool's connection, or on a given connection (nested: a savepoint)."""
    if hasattr(registry, "acquire"):
        async with registry.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with registry.transaction():
            yield registry


async def _locked(conn: Any, settings: Settings, tenant_id: uuid.UUID) -> Any:
    row = await rq(settings.sql_dir).lc_lock_tenant(conn, tenant_id)
    if row is None or row["status"] == "deleted":
        raise TenantNotFound()
    return row


async def record(conn: Any, settings: Settings, tenant_id: uuid.UUID, action: str, *,
                 old: str | None, new: str, actor: str, reason: str | None) -> None:
    """One `tenant_transitions` row (in the caller's transaction)."""
    await rq(settings.sql_dir).lc_record(conn, tenant_id, action, old, new, actor[:100],
                                         reason[:500] if reason else None)
    log.info("tenant_transition", tenant_id=str(tenant_id), action=action, old=old, new=new,
             actor=actor)


async def suspend(registry: Any, settings: Settings, tenant_id: uuid.UUID, *, by: str,
                  actor: str, reason: str) -> bool:
    """Suspend a church (`by` operator or billing); False if it already was (an operator's
    suspension takes over a billing one, so only an operator lifts it)."""
    async with _tx(registry) as conn:
        row = await _locked(conn, settings, tenant_id)
        if row["status"] not in LIVE:
            raise TenantStatusConflict(f"the church is {row['status']}")
        if row["status"] == "suspended" and (row["suspended_by"] == "operator" or by == "billing"):
            return False
        await rq(settings.sql_dir).lc_set_suspended(conn, tenant_id, by, reason)
        await record(conn, settings, tenant_id, "suspend", old=row["status"], new="suspended",
                     actor=actor, reason=reason)
        return True


async def resume(registry: Any, settings: Settings, tenant_id: uuid.UUID, *, actor: str,
                 reason: str | None = None, only_billing: bool = False) -> bool:
    """Resume a suspended church; False if it was not suspended (or, with `only_billing`,
    was suspended by an operator)."""
    async with _tx(registry) as conn:
        row = await _locked(conn, settings, tenant_id)
        if row["status"] != "suspended":
            if row["status"] not in LIVE:
                raise TenantStatusConflict(f"the church is {row['status']}")
            return False
        if only_billing and row["suspended_by"] != "billing":
            return False
        await rq(settings.sql_dir).lc_set_active(conn, tenant_id)
        await record(conn, settings, tenant_id, "resume", old="suspended", new="active",
                     actor=actor, reason=reason)
        return True


async def schedule_deletion(registry: Any, settings: Settings, tenant_id: uuid.UUID, *,
                            actor: str, now: datetime) -> datetime:
    """Schedule the church's deletion DELETION_GRACE from `now` (an existing schedule is
    kept); when it is due."""
    async with _tx(registry) as conn:
        row = await _locked(conn, settings, tenant_id)
        if row["status"] not in LIVE:
            raise TenantStatusConflict(f"the church is {row['status']}")
        if row["deletion_due_at"] is not None:
            due: datetime = row["deletion_due_at"]
            return due
        due = now + DELETION_GRACE
        await rq(settings.sql_dir).lc_schedule_deletion(conn, tenant_id, due, actor[:100])
        await record(conn, settings, tenant_id, "deletion_scheduled", old=row["status"],
                     new=row["status"], actor=actor, reason=f"due {due.isoformat()}")
        return due


async def cancel_deletion(registry: Any, settings: Settings, tenant_id: uuid.UUID, *,
                          actor: str) -> None:
    """Cancel a scheduled deletion (404 `deletion_not_scheduled` if there is none)."""
    async with _tx(registry) as conn:
        row = await _locked(conn, settings, tenant_id)
        if row["status"] not in LIVE or row["deletion_due_at"] is None:
            raise DeletionNotScheduled()
        await rq(settings.sql_dir).lc_cancel_deletion(conn, tenant_id)
        await record(conn, settings, tenant_id, "deletion_canceled", old=row["status"],
                     new=row["status"], actor=actor, reason=None)


async def deletion(registry: Any, settings: Settings, tenant_id: uuid.UUID) -> Any:
    """The church's lifecycle row (scheduled deletion, status)."""
    row = await rq(settings.sql_dir).lc_tenant(registry, tenant_id)
    if row is None:
        raise TenantNotFound()
    return row


async def transitions(registry: Any, settings: Settings, tenant_id: uuid.UUID) -> list[Any]:
    """A church's transitions, oldest first."""
    rows: list[Any] = await rq(settings.sql_dir).lc_transitions(registry, tenant_id)
    return rows
