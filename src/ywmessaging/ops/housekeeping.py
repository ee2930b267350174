"""Housekeeping of every church database: delete rows that have outlived their use.

Run by one worker per `YWM_HOUSEKEEPING_INTERVAL` (a shared registry timer, like the
reconciliation round), church by church with bounded concurrency; one church's trouble is
logged and skipped. What goes (sql/tenant/queries/housekeeping.sql): denylisted access-token
ids past their exp, sessions expired for SESSION_RETENTION_DAYS, password reset tokens expired
for that long, applied carrier event ids older than EVENT_RETENTION_DAYS (the registry keeps
its webhook inbox as long). Deletes go in batches so a big backlog never holds long locks.
Full account exports 24 hours after they finished go too, their files with them
(church/exports.py `sweep`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..church import exports
from ..config import Settings
from ..observability.metrics import Metrics
from ..sqlq import registry as rq
from ..sqlq import tenant as tq

log = structlog.get_logger("ywm.housekeeping")
SESSION_RETENTION_DAYS = 30
EVENT_RETENTION_DAYS = 30
BATCH = 10_000
MAX_BATCHES = 20          # per church and round: the rest waits for the next round
CONCURRENCY = 4
KINDS = ("revoked_access_tokens", "sessions", "password_reset_tokens", "inbound_events")


@dataclass
class Summary:
    """One round over every church."""

    churches: int = 0
    failed: list[uuid.UUID] = field(default_factory=list)
    deleted: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*KINDS, "exports"), 0))


async def sweep_church(conn: Any, settings: Settings, *, batch: int = BATCH,
                       max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Delete what one church's database no longer needs; rows deleted per kind."""
    q = tq(settings.sql_dir)
    total = dict.fromkeys(KINDS, 0)
    for _ in range(max_batches):
        row = await q.hk_sweep(conn, SESSION_RETENTION_DAYS, EVENT_RETENTION_DAYS, batch)
        for kind in KINDS:
            total[kind] += row[kind]
        if all(row[kind] < batch for kind in KINDS):
            break
    return total


async def sweep_all(registry_pool: Any, supervisor: Any, settings: Settings,
                    metrics: Metrics | None = None) -> Summary:
    """One round over every active church (through the tenant supervisor's leases)."""
    started = time.monotonic()
    tenants = [r["id"] for r in await rq(settings.sql_dir).active_tenant_ids(registry_pool)]
    summary = Summary(churches=len(tenants))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(tenant_id: uuid.UUID) -> None:
        async with gate:
            try:
                async with supervisor.lease(tenant_id) as conn:
                    deleted = await sweep_church(conn, settings)
                    deleted["exports"] = await exports.sweep(conn, settings, tenant_id)
            except Exception as exc:   # one church's trouble is not the round's
                log.warning("housekeeping_church_failed", tenant_id=str(tenant_id),
                            error=type(exc).__name__)
                summary.failed.append(tenant_id)
                return
        for kind, n in deleted.items():
            summary.deleted[kind] += n
            if n and metrics is not None:
                metrics.housekeeping.labels(kind).inc(n)

    async with asyncio.TaskGroup() as tg:
        for tenant_id in tenants:
            tg.create_task(one(tenant_id))
    log.info("housekeeping_done", churches=summary.churches, failed=len(summary.failed),
             seconds=round(time.monotonic() - started, 2), **summary.deleted)
    return summary
