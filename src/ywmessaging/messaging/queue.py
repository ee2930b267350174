"""The registry's work queue: which tenants have messages to send or schedules coming due.

A tenant database and the registry cannot share a transaction, so callers enqueue *after* their
tenant commit. If that enqueue fails, the work is not lost: the workers' reconciliation sweep
re-derives every active tenant's next due time from its database (see worker.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import structlog

from ..config import Settings
from ..sqlq import registry as rq

log = structlog.get_logger("ywm.queue")
ENQUEUE_TIMEOUT_S = 2.0
RECONCILE_TIMER = "reconcile"
HOUSEKEEPING_TIMER = "housekeeping"


async def enqueue(pool: Any, settings: Settings, tenant_id: uuid.UUID,
                  due_at: datetime | None) -> bool:
    """Tell the workers `tenant_id` has work due at `due_at` (keeps an earlier due time).

    Never raises: a failure is logged and left to the reconciliation sweep; True if stored.
    """
    if due_at is None:
        return True
    try:
        async with asyncio.timeout(ENQUEUE_TIMEOUT_S):
            await rq(settings.sql_dir).enqueue_tenant_work(pool, tenant_id, due_at)
        return True
    except Exception as exc:  # the reconciliation sweep finds the work later
        log.warning("work_enqueue_failed", tenant_id=str(tenant_id), error=type(exc).__name__)
        return False


async def claim(pool: Any, settings: Settings, owner: str, now: datetime) -> uuid.UUID | None:
    """Claim the most overdue unclaimed tenant for `owner` (None: nothing due)."""
    tenant_id: uuid.UUID | None = await rq(settings.sql_dir).claim_tenant_work(
        pool, now, owner, settings.worker_claim_ttl)
    return tenant_id


async def renew(pool: Any, settings: Settings, tenant_id: uuid.UUID, owner: str,
                now: datetime) -> bool:
    """Extend the claim; False if another worker took the tenant over."""
    got = await rq(settings.sql_dir).renew_tenant_work(pool, tenant_id, owner, now,
                                                       settings.worker_claim_ttl)
    return got is not None


async def release(pool: Any, settings: Settings, tenant_id: uuid.UUID, owner: str,
                  next_due: datetime | None) -> None:
    """Give the tenant back, due again at `next_due` (None: nothing known)."""
    await rq(settings.sql_dir).release_tenant_work(pool, tenant_id, owner, next_due)


async def release_all(pool: Any, settings: Settings, owner: str) -> None:
    """Drop every claim `owner` still holds (shutdown); the tenants are due at once."""
    await rq(settings.sql_dir).release_all_tenant_work(pool, owner)


async def take_timer(pool: Any, settings: Settings, name: str, owner: str, now: datetime,
                     every_s: float) -> bool:
    """Whether `owner` won this round of the shared timer `name` (next round in `every_s`)."""
    won = await rq(settings.sql_dir).take_work_timer(pool, name, now, owner, every_s)
    return won is not None
