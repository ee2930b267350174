"""The supervisor's pools without a database: single-flight start, the LRU and its cap, the
idle sweep, leases that wait or refuse, pools closed when their tenant or server changes, and
the tenant statuses that open no pool. Fakes from supervisor_fakes.py."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.unit.supervisor_fakes import NEED, Holder, evictions, grant, make, use
from ywmessaging.errors import (
    ServiceUnavailable,
    TenantCapacity,
    TenantNotFound,
    TenantSchemaOutdated,
    TenantSuspended,
    TenantUnavailable,
)
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.budget import ServerBudget
from ywmessaging.tenants.directory import TenantInfo


async def test_single_flight_start() -> None:
    sup, factory, lookup, _ = make(delay=0.02)
    tid = lookup.add()
    await asyncio.gather(*(use(sup, tid) for _ in range(100)))
    assert factory.opens == 1
    assert sup.metrics.registry.get_sample_value("ywm_tenant_cold_starts_total") == 1
    await sup.close()
    assert factory.closes == 1


async def test_lru_order_and_cap() -> None:
    sup, factory, lookup, _ = make(cap=3)
    a, b, c, d, e = (lookup.add() for _ in range(5))
    for tid in (a, b, c, a):
        await use(sup, tid)
    await use(sup, d)  # b is the least recently used
    assert factory.closed == [b]
    await use(sup, e)
    assert factory.closed == [b, c]
    assert (factory.opens, sup.open_count(), evictions(sup, "lru")) == (5, 3, 2)
    await sup.close()
    assert factory.opens == factory.closes


async def test_leased_actor_never_evicted_when_cap_full() -> None:
    sup, factory, lookup, _ = make(cap=2)
    a, b, c = (lookup.add() for _ in range(3))
    holders = [Holder(sup, a), Holder(sup, b)]
    for h in holders:
        await asyncio.wait_for(h.entered.wait(), 2)
    t0 = time.perf_counter()
    with pytest.raises(TenantCapacity) as err:
        await use(sup, c)
    assert time.perf_counter() - t0 < 0.1
    assert err.value.headers["Retry-After"] == "1"
    assert (factory.opens, factory.closes) == (2, 0)
    await holders[0].release()
    await use(sup, c)  # a is idle now: evicted to make room
    assert factory.closed == [a]
    await holders[1].release()
    await sup.close()


async def test_idle_sweep_spares_recent_and_leased() -> None:
    sup, factory, lookup, clock = make()
    a, b, c = (lookup.add() for _ in range(3))
    for tid in (a, b, c):
        await use(sup, tid)
    held = Holder(sup, c)
    await asyncio.wait_for(held.entered.wait(), 2)
    clock.now += 301
    await use(sup, b)
    assert await upkeep.sweep_idle(sup) == 1
    assert factory.closed == [a] and evictions(sup, "idle") == 1
    await held.release()
    clock.now += 301
    assert await upkeep.sweep_idle(sup) == 2
    await sup.close()


async def test_status_gating() -> None:
    sup, factory, lookup, _ = make()
    suspended = lookup.add(status="suspended")
    behind = lookup.add(schema_version=NEED - 1)
    provisioning = lookup.add(status="provisioning")
    with pytest.raises(TenantSuspended):
        await use(sup, suspended)
    with pytest.raises(TenantSchemaOutdated):
        await use(sup, behind)
    for tid in (provisioning, uuid.uuid4()):
        with pytest.raises(TenantNotFound):
            await use(sup, tid)
    assert factory.opens == 0
    await sup.close()


async def test_tenant_change_reopens_the_pool() -> None:
    sup, factory, lookup, _ = make()
    tid = lookup.add()
    await use(sup, tid)
    old = lookup.rows[tid]
    lookup.rows[tid] = TenantInfo(**{**old.__dict__, "schema_version": NEED + 1})
    sup.on_tenant_changed(tid)
    await asyncio.sleep(0.01)
    assert factory.closes == 0  # same placement and status: kept
    lookup.rows[tid] = TenantInfo(**{**old.__dict__, "status": "suspended"})
    sup.on_tenant_changed(tid)
    for _ in range(100):
        if factory.closes:
            break
        await asyncio.sleep(0.01)
    assert factory.closed == [tid] and evictions(sup, "tenant_changed") == 1
    with pytest.raises(TenantSuspended):
        await use(sup, tid)
    await sup.close()


async def test_busy_pool_gives_capacity_after_the_lease_timeout() -> None:
    sup, factory, lookup, _ = make(pool_max=1, lease_timeout=0.05)
    tid = lookup.add()
    held = Holder(sup, tid)
    await asyncio.wait_for(held.entered.wait(), 2)
    t0 = time.perf_counter()
    with pytest.raises(TenantCapacity):
        await use(sup, tid)
    assert 0.04 < time.perf_counter() - t0 < 0.5
    await held.release()
    await use(sup, tid)
    assert factory.opens == 1  # a busy pool is not a reason to open another
    await sup.close()


async def test_registry_failure_is_a_clean_503() -> None:
    sup, factory, lookup, _ = make()

    async def down(tenant_id: uuid.UUID) -> TenantInfo | None:
        raise ConnectionRefusedError("registry down")

    lookup.get = down  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable) as err:
        await use(sup, uuid.uuid4())
    # the code the API documents for "registry or church database" (openapi.yaml)
    assert (err.value.code, err.value.headers["Retry-After"]) == ("database_unavailable", "1")
    assert factory.opens == 0
    await sup.close()


async def test_server_marked_down_closes_its_pools_and_refuses() -> None:
    sup, factory, lookup, clock = make(budgets={1: 100, 2: 100})
    on_down, elsewhere = lookup.add(1), lookup.add(2)
    for tid in (on_down, elsewhere):
        await use(sup, tid)
    grant(sup.shares, [ServerBudget(1, "s1", 100, "down"), ServerBudget(2, "s2", 100)], clock)
    assert await upkeep.close_down_servers(sup) == 1
    assert factory.closed == [on_down]
    with pytest.raises(TenantUnavailable) as err:
        await use(sup, on_down)
    assert err.value.headers["Retry-After"] == "30" and factory.opens == 2
    await use(sup, elsewhere)
    await sup.close()

