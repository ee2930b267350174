"""PoolSupervisor without a database: a fake pool factory that counts opens and closes."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
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
from ywmessaging.tenants.budget import (
    FRESH_BEATS,
    Peer,
    ServerBudget,
    ShareBook,
    compute_share,
    plan_shares,
)
from ywmessaging.tenants.directory import TenantDirectory, TenantInfo
from ywmessaging.tenants.health import Fault
from ywmessaging.tenants.metrics import PoolMetrics
from ywmessaging.tenants.roster import make_room
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


@pytest.mark.parametrize("budget, weight, total, others, want", [
    (100, 1, 1, 0, 100), (100, 1, 4, 0, 25), (100, 2, 5, 0, 40), (10, 1, 10, 0, 1),
    (7, 1, 2, 0, 3), (31, 1, 2, 0, 15), (5, 1, 0, 0, 5), (10, 1, 2, 8, 2), (10, 1, 2, 12, 0),
])
def test_share_computation(budget: int, weight: int, total: int, others: int,
                           want: int) -> None:
    assert compute_share(budget, weight, total, others) == want


def test_sharebook_holds_nothing_until_the_first_heartbeat_and_when_stale() -> None:
    clock = Clock()
    book = ShareBook(weight=1, pool_max=3, clock=clock, stale_after=10.0)
    book.note_server(1, "primary", 60)
    assert book.share(1) == book.limit(1) == 0 and book.fenced
    servers = [ServerBudget(1, "primary", 60)]
    peers = [Peer(1, {}), Peer(1, {1: 30})]
    grant(book, servers, clock, peers=peers)
    assert (book.share(1), book.share(2)) == (20, 0)  # min(60 / 3, 60 - 30); unknown: 0
    book.update(plan_shares(1, peers, servers, {1: 4}), servers, clock())
    assert (book.share(1), book.limit(1)) == (20, 14)  # reserved: used + half the share
    book.update(plan_shares(1, peers, servers, {1: 25}), servers, clock())
    assert (book.share(1), book.limit(1)) == (20, 25)  # over the share: all it holds
    clock.now += 10.5  # heartbeats failing: fenced before the others stop counting us
    assert book.share(1) == book.limit(1) == 0


class SimProcess:
    def __init__(self, weight: int, clock: Clock) -> None:
        self.weight = weight
        self.book = ShareBook(weight, 3, clock=clock, stale_after=(FRESH_BEATS - 1) * 1.0)
        self.used = 0  # what its open pools may use (sum of max sizes)
        self.busy = 0  # the part of `used` that is leased (cannot be closed now)


def test_claims_never_exceed_the_budget_as_processes_join_and_leave() -> None:
    """Processes join (heartbeat at once, as at start-up), grow up to their share, shrink,
    leave cleanly or crash (their row lingers until stale), heartbeat at random moments (one
    at a time, as the advisory lock serializes them): the fresh claims and the connections
    actually open never exceed the server's budget, and once the load settles every process
    gets its weighted share."""
    rng, clock, budget, window = random.Random(11), Clock(), 20, FRESH_BEATS * 1.0
    servers = [ServerBudget(1, "s1", budget)]
    rows: dict[int, tuple[float, int, dict[int, int]]] = {}  # heartbeat, weight, claims
    procs: dict[int, SimProcess] = {}

    def beat(pid: int) -> None:
        p = procs[pid]
        peers = [Peer(w, c) for q, (at, w, c) in rows.items()
                 if q != pid and clock() - at < window]
        plan = plan_shares(p.weight, peers, servers, {1: p.used} if p.used else {})
        p.book.clamp(plan)
        rows[pid] = (clock(), p.weight, plan.claims)
        p.book.update(plan, servers, clock())
        fitted = max(p.busy, min(p.used, p.book.share(1)))
        if fitted < p.used:  # idle pools closed to fit, and the claim follows
            p.used = fitted
            beat(pid)

    def check() -> None:
        fresh = [c.get(1, 0) for at, _w, c in rows.values() if clock() - at < window]
        assert sum(fresh) <= budget, rows
        assert sum(p.used for p in procs.values()) <= budget
        for p in procs.values():
            assert p.used <= rows[id_of[p]][2].get(1, 0) and p.used <= max(p.book.limit(1), 0)

    id_of: dict[SimProcess, int] = {}
    for step in range(3000):
        event = rng.random()
        if event < 0.04 or not procs:
            pid = step
            procs[pid] = SimProcess(rng.choice((1, 1, 2)), clock)
            id_of[procs[pid]] = pid
            beat(pid)
        elif event < 0.07 and len(procs) > 1:
            pid = rng.choice(list(procs))
            del procs[pid]
            if rng.random() < 0.5:
                del rows[pid]  # clean stop; else a crash: the row goes stale
        elif event < 0.5:
            pid = rng.choice(list(procs))
            p = procs[pid]
            room = p.book.limit(1) - p.used
            if room >= 1:
                size = min(3, room)
                p.used += size
                p.busy = min(p.used, p.busy + rng.choice((0, size)))
            elif rng.random() < 0.5:
                beat(pid)  # did not fit the reservation: an early heartbeat
        elif event < 0.7:
            p = procs[rng.choice(list(procs))]
            p.busy = max(0, p.busy - 3)
            p.used = max(p.busy, p.used - rng.choice((0, 3)))
        else:
            beat(rng.choice(list(procs)))
        clock.now += rng.uniform(0.0, 0.2)
        for pid, (at, _w, _c) in list(rows.items()):
            if pid in procs and clock() - at >= 1.0:
                beat(pid)  # the heartbeat loop: at least once per interval
        check()
    for p in procs.values():
        p.busy = 0
    for _ in range(3):
        for pid in list(procs):
            beat(pid)
        check()
    total = sum(p.weight for p in procs.values())
    for p in procs.values():
        assert p.book.share(1) == budget * p.weight // total


def test_make_room_prefers_same_server_then_lru_and_hands_over_only_what_it_needs() -> None:
    class A:
        def __init__(self, name: str, server_id: int, charge: int = 1) -> None:
            self.name, self.server_id, self.charge = name, server_id, charge

    a, b, c = A("a", 2), A("b", 1, 3), A("c", 1)

    def room(idle: list[A], **kw: int | None
             ) -> tuple[list[str], list[tuple[str, int]], list[str]]:
        got = make_room(idle, server_id=1, **kw)
        assert not isinstance(got, str), got
        return ([v.name for v in got.victims], [(v.name, n) for v, n in got.credits],
                [v.name for v in got.cap_handed])

    # the new pool is charged one connection: a same-server victim covers it, and only it
    assert room([a, b, c], share=6, used=6, count=3, cap=10) == (["b"], [("b", 1)], [])
    assert room([a, b, c], share=6, used=6, count=3, cap=3) == (["b"], [("b", 1)], ["b"])
    # the cap alone: a's slot is taken over, never server 2's connections
    assert room([a, b, c], share=100, used=6, count=3, cap=3) == (["a"], [], ["a"])
    assert room([a, b, c], share=6, used=6, count=4, cap=3) == (
        ["b", "a"], [("b", 1)], ["b", "a"])
    # over the share (it shrank): as many same-server victims as it takes, one credited
    d, e = A("d", 1), A("e", 1)
    assert room([d, e], share=6, used=7, count=2, cap=10) == (["d", "e"], [("d", 1)], [])
    assert room([a], share=7, used=6, count=1, cap=10) == ([], [], [])  # one connection left
    assert make_room([a], server_id=1, share=6, used=6, count=1,
                     cap=10) == "server's connection budget"
    assert make_room([], server_id=1, share=60, used=6, count=3, cap=3) == "pool cap"
    # no cap (YWM_TENANT_POOL_CAP unset): only the server's budget makes room
    assert room([a, b, c], share=6, used=6, count=3, cap=None) == (["b"], [("b", 1)], [])
    assert room([a, b, c], share=100, used=6, count=300, cap=None) == ([], [], [])
    assert make_room([], server_id=1, share=6, used=6, count=3,
                     cap=None) == "server's connection budget"


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
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 2, 2: 30})
    a1, b1, c1, d2 = lookup.add(1), lookup.add(1), lookup.add(1), lookup.add(2)
    ha, hb = Holder(sup, a1), Holder(sup, b1)
    await asyncio.wait_for(asyncio.gather(ha.entered.wait(), hb.entered.wait()), 2)
    with pytest.raises(TenantCapacity):
        await use(sup, c1)
    await use(sup, d2)  # another server's budget is separate
    assert sup.used(1) == 2 and sup.used(2) == 1  # charged per connection, not per max size
    await ha.release()
    await use(sup, c1)  # a1 was idle on the same server
    assert factory.closed == [a1] and sup.used(1) == 2
    await hb.release()
    await sup.close()


async def test_shrinking_share_evicts_idle_lru_to_fit() -> None:
    sup, factory, lookup, clock = make(pool_max=3, budgets={1: 4})
    tids = [lookup.add(1) for _ in range(4)]
    for tid in tids:
        await use(sup, tid)
    held = Holder(sup, tids[0])  # the oldest, but leased
    await asyncio.wait_for(held.entered.wait(), 2)
    # another process joined: share min(4 / 2, 4 - its claims) = 2
    grant(sup.shares, [ServerBudget(1, "s1", 4)], clock, peers=[Peer(1, {})])
    assert await upkeep.fit_budgets(sup) == 2
    assert factory.closed == tids[1:3] and sup.used(1) == 2
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
    assert state_of(br) is BreakerState.CLOSED and br.allow() and br.take_trial() is None
    assert br.record_failure("x") is True
    assert state_of(br) is BreakerState.OPEN and not br.allow() and br.retry_after() == 1
    clock.now += 1.0
    assert state_of(br) is BreakerState.HALF_OPEN and br.allow()
    token = br.take_trial()
    assert token is not None and not br.allow()  # one trial only
    br.release_trial(token + 1)  # someone else's token: still taken
    assert not br.allow()
    br.release_trial(token)  # ended without an answer: the next caller may try
    assert br.allow() and br.take_trial() is not None
    assert br.record_success() is True and state_of(br) is BreakerState.CLOSED
    # open → half-open → open on failure, with a doubled cool-down (capped)
    for _ in range(3):
        br.record_failure("x")
    clock.now += 1.0
    assert br.take_trial() is not None
    assert br.record_failure("still failing") is True
    assert state_of(br) is BreakerState.OPEN and br.cooldown == 2.0
    clock.now += 1.5
    assert state_of(br) is BreakerState.OPEN
    clock.now += 0.5
    assert state_of(br) is BreakerState.HALF_OPEN
    for _ in range(10):
        br.take_trial()
        br.record_failure("x")
        clock.now += br.cooldown
    assert br.cooldown == 30.0


def test_definitive_breaker_gives_requests_no_trial() -> None:
    clock = Clock()
    br = Breaker(clock)
    assert br.trip("database does not exist") is True
    clock.now += 100.0
    assert br.cooled and not br.allow()  # only upkeep's check may try now
    assert br.trip("still missing") is False and br.cooldown == 2.0 and not br.cooled
    clock.now += 2.0
    assert br.cooled and br.record_success() and br.allow() and not br.definitive


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


async def test_dropped_database_is_rechecked_by_upkeep_never_by_requests() -> None:
    sup, factory, lookup, clock = make()
    tid, neighbour = lookup.add(), lookup.add()
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
    assert factory.opens == opens + 1
    for _ in range(5):  # cool-downs pass, yet no request connects again
        clock.now += 5.0
        t0 = time.perf_counter()
        with pytest.raises(TenantUnavailable) as err:
            await use(sup, tid)
        assert time.perf_counter() - t0 < 0.05 and err.value.headers["Retry-After"] == "1"
    assert factory.opens == opens + 1
    assert await upkeep.check_definitive(sup) == 1  # one attempt, as the tenant's role
    assert factory.opens == opens + 2 and sup.breakers.tenants[tid].cooldown == 2.0
    assert await upkeep.check_definitive(sup) == 0  # not due again before its cool-down
    del factory.fail[tid], factory.broken[tid]
    clock.now += 2.0
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)  # still refused until the check has passed
    assert await upkeep.check_definitive(sup) == 1
    assert tid not in sup.breakers.tenants and sup.used(1) == 0  # check's connection gone
    await use(sup, tid)
    await use(sup, neighbour)
    assert factory.opens == opens + 5
    await sup.close()


async def test_definitive_check_needs_a_spare_connection_in_the_share() -> None:
    sup, factory, lookup, clock = make(pool_max=3, budgets={1: 1})
    tid, busy = lookup.add(), lookup.add()
    factory.fail[tid] = asyncpg.InvalidCatalogNameError("database does not exist")
    with pytest.raises(TenantUnavailable):
        await use(sup, tid)
    held = Holder(sup, busy)  # the whole share is leased
    await asyncio.wait_for(held.entered.wait(), 2)
    clock.now += 2.0
    opens = factory.opens
    assert await upkeep.check_definitive(sup) == 0 and factory.opens == opens
    await held.release()
    await sup.evict(busy, "idle")
    assert await upkeep.check_definitive(sup) == 1 and factory.opens == opens + 1
    await sup.close()


async def test_server_breaker_stops_every_tenant_of_that_server() -> None:
    sup, factory, lookup, _ = make(budgets={1: 100, 2: 100})
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


async def test_cap_victim_on_another_server_keeps_counting_there_until_closed() -> None:
    sup, factory, lookup, _ = make(cap=2, pool_max=3, budgets={1: 1, 2: 100})
    a, b, c, d = lookup.add(1), lookup.add(2), lookup.add(2), lookup.add(1)
    await use(sup, a)
    await use(sup, b)
    factory.close_delay[a] = 0.2
    start_c = asyncio.create_task(use(sup, c))  # the cap is full: a (server 1) makes room
    await asyncio.sleep(0.02)
    assert sup.actor(a) is None and a not in factory.closed
    assert sup.used(1) == 1 and sup.open_count() == 2  # a's cap slot went to c, not its budget
    with pytest.raises(TenantCapacity):
        await use(sup, d)  # server 1's share is still a's until its pool is closed
    await start_c
    await use(sup, d)
    assert factory.closed[:2] == [a, b] and factory.peak[1] == 1
    await sup.close()


async def test_a_new_pool_needs_only_one_connection_of_the_share() -> None:
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 3})
    a, b, c, d = (lookup.add(1) for _ in range(4))
    holders = [Holder(sup, a), Holder(sup, b), Holder(sup, c)]
    for h in holders:
        await asyncio.wait_for(h.entered.wait(), 2)
    assert [sup.actor(t).charge for t in (a, b, c)] == [1, 1, 1]  # type: ignore[union-attr]
    assert sup.used(1) == 3 and factory.open_on(1) == 3  # three pools where one of 3 fitted
    with pytest.raises(TenantCapacity):
        await use(sup, d)  # not one connection left, nothing idle
    for h in holders:
        await h.release()
    assert factory.peak[1] == 3
    await sup.close()


async def test_a_pool_that_does_not_fit_asks_for_an_early_heartbeat() -> None:
    sup, _factory, lookup, clock = make(pool_max=3, budgets={1: 6})
    wants: list[int] = []
    sup.shares.on_want = lambda: wants.append(1)
    added = lookup.add(2)  # its server was added after the last heartbeat: nothing reserved
    with pytest.raises(TenantCapacity):
        await use(sup, added)
    assert wants == [1]
    servers = [ServerBudget(1, "s1", 6)]
    sup.shares.update(plan_shares(1, [], servers, {}), servers, clock())
    assert (sup.shares.limit(1), sup.shares.share(1)) == (3, 6)  # reserved half the share
    held = [Holder(sup, lookup.add(1)) for _ in range(2)]
    for h in held:
        await asyncio.wait_for(h.entered.wait(), 2)
    assert wants == [1]  # room left in the reservation
    held.append(Holder(sup, lookup.add(1)))
    await asyncio.wait_for(held[-1].entered.wait(), 2)
    assert wants == [1, 1]  # that one filled it
    with pytest.raises(TenantCapacity):
        await use(sup, lookup.add(1))  # the reservation is full, the share is not
    assert wants == [1, 1, 1]
    sup.shares.update(plan_shares(1, [], servers, {1: 3}), servers, clock())  # the heartbeat
    for _ in range(3):
        held.append(Holder(sup, lookup.add(1)))
        await asyncio.wait_for(held[-1].entered.wait(), 2)
    with pytest.raises(TenantCapacity):
        await use(sup, lookup.add(1))  # the whole share is reserved: no heartbeat helps
    assert wants == [1, 1, 1]
    for h in held:
        await h.release()
    await sup.close()


async def test_half_open_trial_is_not_held_by_a_request_refused_for_capacity() -> None:
    sup, factory, lookup, clock = make(cap=1, budgets={1: 100, 2: 100})
    bad = [lookup.add(1) for _ in range(3)]
    ok, elsewhere = lookup.add(1), lookup.add(2)
    for tid in bad:
        factory.fail[tid] = ConnectionRefusedError("refused")
        with pytest.raises(TenantUnavailable):
            await use(sup, tid)
    assert sup.breakers.servers[1].state is BreakerState.OPEN
    held = Holder(sup, elsewhere)  # the cap is full of a leased pool
    await asyncio.wait_for(held.entered.wait(), 2)
    clock.now += 1.0  # half-open
    with pytest.raises(TenantCapacity):
        await use(sup, ok)
    await held.release()
    await use(sup, ok)  # at once, not after a trial timeout
    assert state_of(sup.breakers.servers[1]) is BreakerState.CLOSED
    await sup.close()


async def test_a_start_that_learns_nothing_gives_the_trial_back() -> None:
    sup, factory, lookup, clock = make()
    bad = [lookup.add(1) for _ in range(3)]
    odd, fine = lookup.add(1), lookup.add(1)
    for tid in bad:
        factory.fail[tid] = ConnectionRefusedError("refused")
        with pytest.raises(TenantUnavailable):
            await use(sup, tid)
    clock.now += 1.0
    factory.fail[odd] = asyncpg.InterfaceError("pool is closing")  # says nothing about the db
    with pytest.raises(TenantUnavailable):
        await use(sup, odd)
    assert sup.breakers.servers[1].state is BreakerState.HALF_OPEN
    assert odd not in sup.breakers.tenants
    await use(sup, fine)
    assert state_of(sup.breakers.servers[1]) is BreakerState.CLOSED
    await sup.close()


async def test_connect_timeouts_of_one_tenant_leave_its_server_alone() -> None:
    sup, factory, lookup, _ = make()
    slow, warm = lookup.add(1), lookup.add(1)
    await use(sup, warm)
    factory.fail[slow] = TimeoutError()
    for _ in range(4):
        with pytest.raises(TenantUnavailable):
            await use(sup, slow)
    assert sup.breakers.tenants[slow].state is BreakerState.OPEN
    assert sup.breakers.servers[1].state is BreakerState.CLOSED
    assert sup.actor(warm) is not None and evictions(sup, "unhealthy") == 0
    await use(sup, warm)
    for tid in (lookup.add(1) for _ in range(3)):  # several tenants of it: the server
        factory.fail[tid] = TimeoutError()
        with pytest.raises(TenantUnavailable):
            await use(sup, tid)
    assert state_of(sup.breakers.servers[1]) is BreakerState.OPEN
    await sup.close()


async def test_interface_errors_do_not_feed_the_breakers() -> None:
    sup, _factory, lookup, _ = make()
    tid = lookup.add()
    for _ in range(3):
        with pytest.raises(asyncpg.InterfaceError):
            async with sup.lease(tid):
                raise asyncpg.InterfaceError("another operation is in progress")
    assert tid not in sup.breakers.tenants and sup.actor(tid) is not None
    assert sup.breakers.record_failure(tid, 1, Fault.NONE, "x") == (False, False)
    await sup.close()


class SlowRegistry:
    """Stands in for the registry pool: each `sup_tenant` look-up takes 50 ms."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls = 0
        self.error = error

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.error is not None:
            raise self.error
        return None


async def test_a_cancelled_lookup_does_not_cancel_the_others_waiting_for_it() -> None:
    registry = SlowRegistry()
    directory = TenantDirectory(registry, Settings().sql_dir, ttl=30.0)
    tid = uuid.uuid4()
    first = asyncio.create_task(directory.get(tid))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(directory.get(tid))
    await asyncio.sleep(0.01)
    first.cancel()  # its client went away
    assert await second is None and registry.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await directory.get(tid) is None and registry.calls == 1  # cached
    failing = TenantDirectory(SlowRegistry(ConnectionRefusedError("down")), Settings().sql_dir,
                              ttl=30.0)
    results = await asyncio.gather(failing.get(tid), failing.get(tid), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionRefusedError, ConnectionRefusedError]


class RowRegistry:
    """Stands in for the registry pool: `sup_tenant` answers one active tenant's row."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.calls = 0
        self.row = {"id": tenant_id, "status": "active", "schema_version": NEED, "server_id": 1,
                    "server_name": "main", "server_state": "active",
                    "server_host": "127.0.0.1", "server_port": 5432, "db_name": "t",
                    "db_role": "t", "db_password_enc": b"x", "conn_budget": 10,
                    "row_version": 1}

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        return self.row if args[0] == self.row["id"] else None


async def test_a_known_tenant_is_not_looked_up_again_while_changes_are_heard() -> None:
    clock = Clock()
    tid, unknown = uuid.uuid4(), uuid.uuid4()
    registry = RowRegistry(tid)
    directory = TenantDirectory(registry, Settings().sql_dir, ttl=30.0, clock=clock)
    hearing = [True]
    directory.trusted = lambda: hearing[0]
    assert (await directory.get(tid)) is not None and await directory.get(unknown) is None
    assert registry.calls == 2
    clock.now += 3600  # far past the TTL
    assert (await directory.get(tid)) is not None
    assert registry.calls == 2  # the listener would have said if it changed
    assert await directory.get(unknown) is None
    assert registry.calls == 3  # "no such tenant" lasts the TTL only (inserts notify nothing)
    directory.invalidate(tid)  # a notification
    await directory.get(tid)
    assert registry.calls == 4
    hearing[0] = False  # listener down: the TTL applies again
    clock.now += 31
    await directory.get(tid)
    assert registry.calls == 5
