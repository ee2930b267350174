"""Fakes for the supervisor's unit tests: a pool factory that counts opens and closes, a
registry look-up, a clock, and helpers that hold or use a lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from ywmessaging.config import Settings
from ywmessaging.db import migrations
from ywmessaging.tenants.breaker import Breaker, BreakerState
from ywmessaging.tenants.budget import Peer, ServerBudget, ShareBook, plan_shares
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
        self.closed = False

    async def fetchval(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        if self.pool.factory.broken.get(self.pool.info.id):
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        return 1

    def is_closed(self) -> bool:
        return self.closed

    async def close(self, *, timeout: float | None = None) -> None:
        self.terminate()

    def terminate(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.conns.remove(self)
            self.pool.in_use.discard(self)
            self.pool.factory.disconnects += 1


class FakePool:
    """Like asyncpg's: opens a connection only for an acquire that finds no idle one (min 0),
    and keeps released ones idle (last released, first reused)."""

    def __init__(self, factory: FakeFactory, info: TenantInfo, max_size: int) -> None:
        self.factory, self.info, self.max_size = factory, info, max_size
        self.conns: list[FakeConn] = []
        self.idle: list[FakeConn] = []
        self.in_use: set[FakeConn] = set()
        self.acquires = self.releases = 0
        self.closed = False

    async def _acquire(self) -> FakeConn:
        assert not self.closed, "acquire on a closed pool"
        self.acquires += 1
        if self.idle:
            conn = self.idle.pop()
        else:
            if self.factory.connect_delay:
                await asyncio.sleep(self.factory.connect_delay)
            error = self.factory.fail.get(self.info.id)
            if error is not None:
                raise error
            assert len(self.conns) < self.max_size, "the pool would exceed its max_size"
            conn = FakeConn(self)
            self.conns.append(conn)
            self.factory.connected(self)
        self.in_use.add(conn)
        return conn

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self._acquire()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        self.releases += 1
        if connection.closed:
            return
        self.in_use.remove(connection)
        self.idle.append(connection)

    async def close(self) -> None:
        assert not self.in_use, "pool closed with a connection still leased"
        await asyncio.sleep(self.factory.close_delay.get(self.info.id, 0.0))
        self._close()

    def terminate(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self.closed:
            for conn in list(self.conns):
                conn.terminate()
            self.idle.clear()
            self.closed = True
            self.factory.closes += 1
            self.factory.closed.append(self.info.id)

    def get_size(self) -> int:
        return len(self.conns)

    def get_idle_size(self) -> int:
        return len(self.idle)


class FakeFactory:
    """Counts pool opens and closes and connections; `fail[tid]` makes connecting for that
    tenant raise; `audit` (set by `make`) checks every new connection against the budget."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.opens = 0
        self.closes = 0
        self.connects = self.disconnects = 0
        self.closed: list[uuid.UUID] = []
        self.fail: dict[uuid.UUID, BaseException] = {}
        self.broken: dict[uuid.UUID, bool] = {}
        self.close_delay: dict[uuid.UUID, float] = {}
        self.pools: list[FakePool] = []
        self.peak: dict[int, int] = {}  # server → most connections ever open there at once
        self.audit: Callable[[FakePool], None] | None = None
        self.connect_delay = 0.0

    async def __call__(self, info: TenantInfo, max_size: int) -> FakePool:
        self.opens += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        pool = FakePool(self, info, max_size)
        self.pools.append(pool)
        return pool

    def open_on(self, server_id: int) -> int:
        """Connections open now on a server (every pool of every tenant)."""
        return sum(len(p.conns) for p in self.pools if p.info.server_id == server_id)

    def connected(self, pool: FakePool) -> None:
        self.connects += 1
        sid = pool.info.server_id
        self.peak[sid] = max(self.peak.get(sid, 0), self.open_on(sid))
        if self.audit is not None:
            self.audit(pool)


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


def make(*, cap: int | None = 50, pool_max: int = 3, budgets: dict[int, int] | None = None,
         delay: float = 0.0, lease_timeout: float = 2.0
         ) -> tuple[PoolSupervisor, FakeFactory, FakeLookup, Clock]:
    settings = Settings(tenant_pool_cap=cap, tenant_pool_max=pool_max,
                        lease_timeout=lease_timeout, tenant_idle_seconds=300.0)
    clock = Clock()
    shares = ShareBook(weight=1, pool_max=pool_max, clock=clock)
    budgets = budgets or {1: 1000}
    grant(shares, [ServerBudget(s, f"s{s}", b) for s, b in budgets.items()], clock)
    factory, lookup = FakeFactory(delay), FakeLookup(budgets)
    sup = PoolSupervisor(settings, lookup=lookup, pool_factory=factory, shares=shares,
                         metrics=PoolMetrics(), clock=clock)
    factory.audit = lambda pool: audit(sup, factory, pool)
    return sup, factory, lookup, clock


def audit(sup: PoolSupervisor, factory: FakeFactory, pool: FakePool) -> None:
    """At every new connection: the server's open connections fit what the supervisor has
    charged there, which fits its reservation, and the pool holds no more than its actor's
    charge."""
    sid = pool.info.server_id
    assert factory.open_on(sid) <= sup.used(sid) <= sup.shares.limit(sid), (
        factory.open_on(sid), sup.used(sid), sup.shares.limit(sid))
    actor = next((a for a in sup.actors() if a.pool is pool), None)
    assert actor is None or len(pool.conns) <= actor.charge, (len(pool.conns), actor.charge)


def grant(book: ShareBook, servers: list[ServerBudget], clock: Clock,
          peers: list[Peer] | None = None) -> None:
    """A committed heartbeat of this process alone (or beside `peers`), reserving its whole
    share."""
    book.update(plan_shares(book.weight, peers or [], servers, {}, spare=1.0), servers, clock())


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


def state_of(breaker: Breaker) -> BreakerState:
    """The breaker's state, read afresh (keeps mypy from narrowing the property)."""
    return breaker.state


def evictions(sup: PoolSupervisor, reason: str) -> float:
    value = sup.metrics.registry.get_sample_value("ywm_tenant_evictions_total",
                                                  {"reason": reason})
    return value or 0.0

