"""The supervisor's periodic upkeep: idle sweep, budget fitting, health probes, re-checks."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import structlog

from .actor import ActorState, TenantPool
from .health import classify_connect, describe

if TYPE_CHECKING:
    from .supervisor import PoolSupervisor

log = structlog.get_logger("ywm.supervisor")
PROBE_CONCURRENCY = 8


async def sweep_idle(sup: PoolSupervisor) -> int:
    """Close pools unused for YWM_TENANT_IDLE_SECONDS (never one with a lease out)."""
    now = sup.clock()
    limit = sup.settings.tenant_idle_seconds
    idle = [a for a in sup.actors() if a.evictable and now - a.last_used >= limit]
    sup.breakers.prune()
    return await sup.retire(idle, "idle")


async def fit_budgets(sup: PoolSupervisor) -> int:
    """After a share shrank: close least recently used idle pools until each server fits."""
    victims = []
    for server_id in {a.server_id for a in sup.actors()}:
        over = sup.used(server_id) - sup.shares.share(server_id)
        for a in sup.actors():
            if over <= 0:
                break
            if a.server_id == server_id and a.evictable and a.state is ActorState.READY:
                victims.append(a)
                over -= a.max_size
        if over > 0:
            log.warning("tenant_budget_over_share", server_id=server_id, over=over)
    return await sup.retire(victims, "lru")


async def close_down_servers(sup: PoolSupervisor) -> int:
    """Drain and close the pools of servers an operator marked `down` (read by heartbeat)."""
    closed = 0
    for server_id in {a.server_id for a in sup.actors()}:
        if sup.shares.is_down(server_id):
            closed += await sup.evict_server(server_id, "operator")
    return closed


def claims(sup: PoolSupervisor) -> dict[int, int]:
    """Server id → connections claimed by this process (its heartbeat's `claims`)."""
    servers = {a.server_id for a in sup.actors()} | set(sup.shares.servers)
    return {s: sup.used(s) for s in sorted(servers)}


async def probe_all(sup: PoolSupervisor) -> int:
    """`SELECT 1` on every ready pool with a free slot; failures feed the breakers."""
    sem = asyncio.Semaphore(PROBE_CONCURRENCY)
    timeout = sup.settings.lease_timeout
    probed = 0

    async def one(actor: TenantPool) -> None:
        nonlocal probed
        async with sem:
            try:
                if await actor.probe(timeout):
                    probed += 1
                    sup.breakers.record_success(actor.tenant_id, actor.server_id)
            except Exception as exc:
                log.warning("tenant_probe_failed", tenant_id=str(actor.tenant_id),
                            error=describe(exc))
                sup.record_failure(actor.info, classify_connect(exc), exc)

    ready = [a for a in sup.actors() if a.state is ActorState.READY]
    await asyncio.gather(*(one(a) for a in ready))
    return probed


async def recheck(sup: PoolSupervisor, tenant_id: uuid.UUID) -> None:
    """Compare an open pool with the tenant's current row; reopen it if placement or status
    changed (reason `tenant_changed`), else keep it with the fresher row."""
    actor = sup.actor(tenant_id)
    if actor is None:
        return
    try:
        info = await sup.lookup.get(tenant_id)
    except Exception as exc:
        log.warning("tenant_recheck_failed", tenant_id=str(tenant_id), error=describe(exc))
        info = None  # unknown counts as changed: reopening is always safe
    if sup.actor(tenant_id) is not actor:
        return
    if (info is None or info.placement() != actor.info.placement()
            or info.status != actor.info.status):
        await sup.evict(tenant_id, "tenant_changed")
    else:
        actor.info = info
