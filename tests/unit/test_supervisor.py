"""PoolSupervisor without a database: a fake pool factory that counts opens and closes."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import pytest

from ywmessaging.config import Settings
from ywmessaging.db import migrations
from ywmessaging.errors import (
    ServiceUnavailable,
    TenantCapacity,
    TenantNotFound,
    TenantSchemaOutdated,
    TenantSuspended,
    TenantUnavailable,
)
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.breaker import Breaker, BreakerState
from ywmessaging.tenants.budget import ServerBudget, ShareBook, choose_victims, compute_share
from ywmessaging.tenants.directory import TenantInfo
from ywmessaging.tenants.metrics import PoolMetrics
from ywmessaging.tenants.supervisor import PoolSupervisor

NEED = migrations.code_version(Settings().sql_dir, "tenant")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeConn:
    def __init__(self, pool: FakePool) -> None:
        self.pool = pool

    async def fetchval(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        if self.pool.factory.broken.get(self.pool.info.id):
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        return 1


class FakePool:
    def __init__(self, factory: FakeFactory, info: TenantInfo, max_size: int) -> None:
        self.factory, self.info, self.max_size = factory, info, max_size
        self.in_use = 0
        self.closed = False

    async def _acquire(self) -> FakeConn:
        error = self.factory.fail.get(self.info.id)
        if error is not None:
            raise error
        self.in_use += 1
        assert self.in_use <= self.max_size, "the actor let more leases through than max_size"
        return FakeConn(self)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self._acquire()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        self.in_use -= 1

    async def close(self) -> None:
        assert self.in_use == 0, "pool closed with a connection still leased"
        self._close()

    def terminate(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.factory.closes += 1
            self.factory.closed.append(self.info.id)

    def get_size(self) -> int:
        return self.in_use

    def get_idle_size(self) -> int:
        return 0


class FakeFactory:
    """Counts pool opens and closes; `fail[tid]` makes connecting for that tenant raise."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.opens = 0
        self.closes = 0
        self.closed: list[uuid.UUID] = []
        self.fail: dict[uuid.UUID, BaseException] = {}
        self.broken: dict[uuid.UUID, bool] = {}

    async def __call__(self, info: TenantInfo, max_size: int) -> FakePool:
        self.opens += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return FakePool(self, info, max_size)


class FakeLookup:
    def __init__(self, budgets: dict[int, int]) -> None:
        self.rows: dict[uuid.UUID, TenantInfo] = {}
        self.budgets = budgets

    async def get(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        return self.rows.get(tenant_id)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        pass

    def clear(self) -> None:
        pass

    def add(self, server_id: int = 1, **kw: Any) -> uuid.UUID:
        tid = uuid.uuid4()
        fields: dict[str, Any] = dict(
            id=tid, status="active", schema_version=NEED, server_id=server_id,
            server_name=f"s{server_id}", server_state="active", host="127.0.0.1", port=5432,
            db_name=f"db_{tid.hex}", db_role=f"r_{tid.hex}", password_enc=b"x",
            conn_budget=self.budgets.get(server_id, 1000),
        )
        fields.update(kw)
        self.rows[tid] = TenantInfo(**fields)
        return tid


def make(*, cap: int = 50, pool_max: int = 3, budgets: dict[int, int] | None = None,
         delay: float = 0.0, lease_timeout: float = 2.0
         ) -> tuple[PoolSupervisor, FakeFactory, FakeLookup, Clock]:
    settings = Settings(tenant_pool_cap=cap, tenant_pool_max=pool_max,
                        lease_timeout=lease_timeout, tenant_idle_seconds=300.0)
    shares = ShareBook(weight=1, pool_max=pool_max)
    budgets = budgets or {1: 1000}
    shares.update(1, [ServerBudget(s, f"s{s}", b) for s, b in budgets.items()])
    factory, lookup, clock = FakeFactory(delay), FakeLookup(budgets), Clock()
    sup = PoolSupervisor(settings, lookup=lookup, pool_factory=factory, shares=shares,
                         metrics=PoolMetrics(), clock=clock)
    return sup, factory, lookup, clock


async def use(sup: PoolSupervisor, tid: uuid.UUID) -> None:
    async with sup.lease(tid) as conn:
        assert await conn.fetchval("SELECT 1") == 1


class Holder:
    """Holds a lease on a tenant until `release()`."""

    def __init__(self, sup: PoolSupervisor, tid: uuid.UUID) -> None:
        self.entered, self.done = asyncio.Event(), asyncio.Event()
        self.task = asyncio.create_task(self._run(sup, tid))

    async def _run(self, sup: PoolSupervisor, tid: uuid.UUID) -> None:
        async with sup.lease(tid):
            self.entered.set()
            await asyncio.wait_for(self.done.wait(), 5)

    async def release(self) -> None:
        self.done.set()
        await asyncio.wait_for(self.task, 5)


def evictions(sup: PoolSupervisor, reason: str) -> float:
    value = sup.metrics.registry.get_sample_value("ywm_tenant_evictions_total",
                                                  {"reason": reason})
    return value or 0.0


@pytest.mark.parametrize("budget, weight, total, pool_max, want", [
    (100, 1, 1, 3, 100), (100, 1, 4, 3, 25), (100, 2, 5, 3, 40), (10, 1, 10, 3, 3),
    (7, 1, 2, 3, 3), (31, 1, 2, 3, 15), (5, 1, 0, 3, 5),
])
def test_share_computation(budget: int, weight: int, total: int, pool_max: int,
                           want: int) -> None:
    assert compute_share(budget, weight, total, pool_max) == want


def test_sharebook_is_conservative_until_the_first_heartbeat() -> None:
    book = ShareBook(weight=1, pool_max=3)
    book.note_server(1, "primary", 60)
    assert book.share(1) == 3
    book.update(3, [ServerBudget(1, "primary", 60)])
    assert (book.share(1), book.share(2)) == (20, 3)


def test_choose_victims_prefers_same_server_then_lru() -> None:
    class A:
        def __init__(self, name: str, server_id: int) -> None:
            self.name, self.server_id, self.max_size = name, server_id, 3

    a, b, c = A("a", 2), A("b", 1), A("c", 1)
    got = choose_victims([a, b, c], server_id=1, need=3, share=6, used=6, count=3, cap=10)
    assert got == [b]
    got = choose_victims([a, b, c], server_id=1, need=3, share=6, used=6, count=3, cap=3)
    assert got == [b]  # one eviction frees both the budget and a cap slot
    got = choose_victims([a, b, c], server_id=1, need=3, share=100, used=6, count=3, cap=3)
    assert got == [a]  # the cap alone: least recently used of any server
    got = choose_victims([a, b, c], server_id=1, need=3, share=6, used=6, count=4, cap=3)
    assert got == [b, a]
    assert choose_victims([a], server_id=1, need=3, share=6, used=6, count=1,
                          cap=10) == "server's connection budget"


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


async def test_budget_per_server() -> None:
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 6, 2: 30})
    a1, b1, c1, d2 = lookup.add(1), lookup.add(1), lookup.add(1), lookup.add(2)
    ha, hb = Holder(sup, a1), Holder(sup, b1)
    await asyncio.wait_for(asyncio.gather(ha.entered.wait(), hb.entered.wait()), 2)
    with pytest.raises(TenantCapacity):
        await use(sup, c1)
    await use(sup, d2)  # another server's budget is separate
    assert sup.used(1) == 6 and sup.used(2) == 3
    await ha.release()
    await use(sup, c1)  # a1 was idle on the same server
    assert factory.closed == [a1] and sup.used(1) == 6
    await hb.release()
    await sup.close()


async def test_shrinking_share_evicts_idle_lru_to_fit() -> None:
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 12})
    tids = [lookup.add(1) for _ in range(4)]
    for tid in tids:
        await use(sup, tid)
    held = Holder(sup, tids[0])  # the oldest, but leased
    await asyncio.wait_for(held.entered.wait(), 2)
    sup.shares.update(2, [ServerBudget(1, "s1", 12)])  # another process joined: share 6
    assert await upkeep.fit_budgets(sup) == 2
    assert factory.closed == tids[1:3] and sup.used(1) == 6
    assert evictions(sup, "lru") == 2
    await held.release()
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


def test_breaker_transitions() -> None:
    clock = Clock()
    br = Breaker(clock, threshold=3, base_cooldown=1.0, max_cooldown=30.0)
    for _ in range(2):
        assert br.record_failure("x") is False
    assert br.state is BreakerState.CLOSED and br.allow()
    assert br.record_failure("x") is True
    assert br.state is BreakerState.OPEN and not br.allow() and br.retry_after() == 1
    clock.now += 1.0
    assert br.state is BreakerState.HALF_OPEN
    assert br.allow() is True and br.allow() is False  # one trial only
    assert br.record_success() is True and br.state is BreakerState.CLOSED
    # open → half-open → open on failure, with a doubled cool-down (capped)
    br.trip("gone")
    clock.now += 1.0
    assert br.allow()
    assert br.record_failure("still gone") is True
    assert br.state is BreakerState.OPEN and br.cooldown == 2.0
    clock.now += 1.5
    assert br.state is BreakerState.OPEN
    clock.now += 0.5
    assert br.state is BreakerState.HALF_OPEN
    for _ in range(10):
        br.allow()
        br.record_failure("x")
        clock.now += br.cooldown
    assert br.cooldown == 30.0


async def test_tenant_breaker_fails_fast_and_recovers() -> None:
    sup, factory, lookup, clock = make()
    bad, good = lookup.add(), lookup.add()
    factory.fail[bad] = asyncpg.ConnectionDoesNotExistError("reset")
    for _ in range(3):
        with pytest.raises(TenantUnavailable):
            await use(sup, bad)
    assert factory.opens == 3
    t0 = time.perf_counter()
    with pytest.raises(TenantUnavailable) as err:
        await use(sup, bad)
    assert time.perf_counter() - t0 < 0.05 and factory.opens == 3
    assert err.value.headers["Retry-After"] == "1"
    await use(sup, good)  # other tenants untouched
    clock.now += 1.0
    del factory.fail[bad]
    await use(sup, bad)  # the half-open trial succeeds
    assert sup.breakers.tenants.get(bad) is None
    await sup.close()


async def test_dropped_database_opens_breaker_at_once() -> None:
    sup, factory, lookup, clock = make()
    tid = lookup.add()
    await use(sup, tid)
    factory.broken[tid] = True
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)  # lost connection in use: counted
    factory.fail[tid] = asyncpg.InvalidCatalogNameError("database does not exist")
    await sup.evict(tid, "operator")
    opens = factory.opens
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)
    assert sup.breakers.tenants[tid].state is BreakerState.OPEN
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)
    assert factory.opens == opens + 1  # never re-created while open
    clock.now += 1.0
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)  # half-open trial fails: open again, longer cool-down
    assert sup.breakers.tenants[tid].cooldown == 2.0
    await sup.close()


async def test_server_breaker_stops_every_tenant_of_that_server() -> None:
    sup, factory, lookup, _ = make()
    bad = [lookup.add(1) for _ in range(4)]
    other = lookup.add(2)
    for tid in bad:
        factory.fail[tid] = ConnectionRefusedError("refused")
    for tid in bad[:3]:
        with pytest.raises(TenantUnavailable):
            await use(sup, tid)
    assert sup.breakers.servers[1].state is BreakerState.OPEN
    opens = factory.opens
    with pytest.raises(TenantUnavailable):
        await use(sup, bad[3])
    assert factory.opens == opens
    await use(sup, other)
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


async def test_health_probes_open_the_breaker_and_close_the_pool() -> None:
    sup, factory, lookup, _ = make()
    sick, well = lookup.add(), lookup.add()
    for tid in (sick, well):
        await use(sup, tid)
    factory.broken[sick] = True
    assert await upkeep.probe_all(sup) == 1  # the sick probe raised, the well one counted
    assert sup.breakers.tenants[sick].failures == 1
    await upkeep.probe_all(sup)
    await upkeep.probe_all(sup)
    for _ in range(100):
        if factory.closed:
            break
        await asyncio.sleep(0.01)
    assert sup.actor(sick) is None and factory.closed == [sick]
    assert evictions(sup, "unhealthy") == 1
    assert sup.breakers.tenants[sick].state is BreakerState.OPEN
    assert sup.actor(well) is not None and well not in sup.breakers.tenants
    await sup.close()


async def test_registry_failure_is_a_clean_503() -> None:
    sup, factory, lookup, _ = make()

    async def down(tenant_id: uuid.UUID) -> TenantInfo | None:
        raise ConnectionRefusedError("registry down")

    lookup.get = down  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable) as err:
        await use(sup, uuid.uuid4())
    assert (err.value.code, err.value.headers["Retry-After"]) == ("service_unavailable", "1")
    assert factory.opens == 0
    await sup.close()


async def test_server_marked_down_closes_its_pools_and_refuses() -> None:
    sup, factory, lookup, _ = make(budgets={1: 100, 2: 100})
    on_down, elsewhere = lookup.add(1), lookup.add(2)
    for tid in (on_down, elsewhere):
        await use(sup, tid)
    sup.shares.update(1, [ServerBudget(1, "s1", 100, "down"), ServerBudget(2, "s2", 100)])
    assert await upkeep.close_down_servers(sup) == 1
    assert factory.closed == [on_down]
    with pytest.raises(TenantUnavailable) as err:
        await use(sup, on_down)
    assert err.value.headers["Retry-After"] == "30" and factory.opens == 2
    await use(sup, elsewhere)
    await sup.close()
