"""The supervisor's periodic upkeep: idle sweep, budget fitting, health probes, re-checks,
and the checks that let a tenant whose database was missing or closed be served again."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import structlog

from .actor import ActorState, TenantPool
from .directory import TenantInfo
from .health import classify_connect, describe, probe
from .pools import CLOSE_TIMEOUT, PoolFactory

if TYPE_CHECKING:
    from .supervisor import PoolSupervisor

log = structlog.get_logger("ywm.supervisor")
PROBE_CONCURRENCY = 8
TRIM_TIMEOUT = 1.0  # trims run in the upkeep loop: keep them from delaying its checks


async def sweep_idle(sup: PoolSupervisor) -> int:
    """Close pools unused for YWM_TENANT_IDLE_SECONDS (never one with a lease out)."""
    now = sup.clock()
    limit = sup.settings.tenant_idle_seconds
    idle = [a for a in sup.actors() if a.evictable and now - a.last_used >= limit]
    sup.breakers.prune()
    return await sup.retire(idle, "idle")


async def trim_grown(sup: PoolSupervisor) -> int:
    """Give back the connections (and charges) of pools that grew and have not needed more
    than one at once for `sup.trim_after` seconds (bounded; never opens one)."""
    now = sup.clock()
    grown = [a for a in sup.actors() if a.trimmable(now, sup.trim_after)]
    if not grown:
        return 0
    return sum(await asyncio.gather(*(a.trim(TRIM_TIMEOUT) for a in grown)))


async def fit_budgets(sup: PoolSupervisor) -> int:
    """After a share shrank: trim grown pools, then close least recently used idle pools
    until each server fits. Returns connections trimmed plus pools closed (nonzero: something
    was given back)."""
    servers = {a.server_id for a in sup.actors()}
    over = {s for s in servers if sup.used(s) > sup.shares.share(s)}
    trimmed = sum(await asyncio.gather(*(a.trim() for a in sup.actors()
                                         if a.server_id in over and a.charge > 1)))
    victims = []
    for server_id in over:
        over_by = sup.used(server_id) - sup.shares.share(server_id)
        for a in sup.actors():
            if over_by <= 0:
                break
            if a.server_id == server_id and a.evictable and a.state is ActorState.READY:
                victims.append(a)
                over_by -= a.charge
        if over_by > 0:
            log.warning("tenant_budget_over_share", server_id=server_id, over=over_by)
    return trimmed + await sup.retire(victims, "lru")


async def close_down_servers(sup: PoolSupervisor) -> int:
    """Drain and close the pools of servers an operator marked `down` (read by heartbeat)."""
    closed = 0
    for server_id in {a.server_id for a in sup.actors()}:
        if sup.shares.is_down(server_id):
            closed += await sup.evict_server(server_id, "operator")
    return closed


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


async def check_definitive(sup: PoolSupervisor) -> int:
    """For each tenant whose breaker a definitive fault opened (database missing, connections
    not allowed, role refused) and whose cool-down has passed: one connection attempt as the
    tenant's role. Requests keep failing fast until such a check succeeds, so a dropped
    database is never re-opened on the request path. Returns how many checks ran."""
    sem = asyncio.Semaphore(PROBE_CONCURRENCY)
    ran = 0

    async def one(tenant_id: uuid.UUID) -> None:
        nonlocal ran
        async with sem:
            ran += await _check_one(sup, tenant_id)

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.create_task(one(t), name=f"tenant-check-{t}")
                           for t in sup.breakers.due_checks()))
    return ran


async def _check_one(sup: PoolSupervisor, tenant_id: uuid.UUID) -> int:
    try:
        info = await sup.lookup.get(tenant_id)
    except Exception as exc:
        log.warning("tenant_check_lookup_failed", tenant_id=str(tenant_id), error=describe(exc))
        return 0
    if info is None or info.status != "active":
        sup.breakers.tenants.pop(tenant_id, None)  # gating refuses it before any breaker
        return 0
    sid = info.server_id
    breaker = sup.breakers.tenants.get(tenant_id)
    if breaker is None or not breaker.cooled or sup.shares.limit(sid) - sup.used(sid) < 1:
        return 0  # settled meanwhile, or no connection to spare on the server: next round
    with sup.side_connection(sid):
        try:
            await check_connect(sup.pool_factory, info, sup.settings.tenant_connect_timeout)
        except Exception as exc:
            log.warning("tenant_check_failed", tenant_id=str(tenant_id), error=describe(exc))
            sup.record_failure(info, classify_connect(exc), exc)
            return 1
    sup.breakers.record_success(tenant_id, sid)
    log.info("tenant_check_passed", tenant_id=str(tenant_id))
    return 1


async def check_connect(factory: PoolFactory, info: TenantInfo, timeout: float) -> None:
    """Open a one-connection pool as the tenant's role, `SELECT 1`, close it (all bounded)."""
    async with asyncio.timeout(timeout):
        pool = await factory(info, 1)
    try:
        await probe(pool, timeout)
    finally:
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except Exception:
            pool.terminate()
