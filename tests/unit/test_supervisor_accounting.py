"""Per-connection budget accounting of the supervisor: pools start charged one connection,
grow only when a lease had to wait and the reservation has room, are trimmed back when idle,
and give every charge back however they end. Fakes from supervisor_fakes.py (every new
connection is audited there against the charges and the reservation)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

import pytest

from tests.unit.supervisor_fakes import FakePool, Holder, grant, make, use
from ywmessaging.config import Settings
from ywmessaging.errors import TenantCapacity, TenantUnavailable
from ywmessaging.tenants import slots as slots_module
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.actor import ActorState, TenantPool
from ywmessaging.tenants.budget import ServerBudget, plan_shares
from ywmessaging.tenants.slots import TRIM_AFTER
from ywmessaging.tenants.supervisor import PoolSupervisor


def actor_of(sup: PoolSupervisor, tid: uuid.UUID) -> TenantPool:
    actor = sup.actor(tid)
    assert actor is not None
    return actor


def pool_of(actor: TenantPool) -> FakePool:
    assert isinstance(actor.pool, FakePool)
    return actor.pool


async def hold(sup: PoolSupervisor, tid: uuid.UUID, n: int) -> list[Holder]:
    """`n` leases on one tenant, taken one after the other and all held."""
    held = []
    for _ in range(n):
        held.append(Holder(sup, tid))
        await asyncio.wait_for(held[-1].entered.wait(), 2)
    return held


async def test_a_pool_starts_charged_one_and_grows_only_when_a_lease_waits() -> None:
    sup, factory, lookup, _ = make(pool_max=3)
    tid = lookup.add()
    for _ in range(5):
        await use(sup, tid)  # one at a time: one connection is enough
    actor = actor_of(sup, tid)
    assert (actor.charge, factory.connects, sup.used(1)) == (1, 1, 1)
    held = await hold(sup, tid, 3)  # the second and third found every slot taken
    assert (actor.charge, factory.connects, sup.used(1)) == (3, 3, 3)
    fourth = asyncio.create_task(use(sup, tid))
    await asyncio.sleep(0.02)
    assert not fourth.done() and actor.charge == 3  # at max_size: it waits for a slot
    await held[0].release()
    await asyncio.wait_for(fourth, 2)
    assert factory.connects == 3  # served by the released connection
    for h in held[1:]:
        await h.release()
    await sup.close()
    assert sup.used(1) == 0 and factory.open_on(1) == 0


async def test_a_lease_that_gets_a_slot_within_grow_after_does_not_grow_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slots_module, "GROW_AFTER", 1.0)  # far longer than the wait below
    sup, factory, lookup, _ = make(pool_max=3)
    tid = lookup.add()
    [held] = await hold(sup, tid, 1)
    waiter = asyncio.create_task(use(sup, tid))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await held.release()
    await asyncio.wait_for(waiter, 2)
    assert actor_of(sup, tid).charge == 1 and factory.connects == 1
    await sup.close()


async def test_growth_is_refused_when_the_reservation_is_full() -> None:
    sup, factory, lookup, clock = make(pool_max=3, budgets={1: 4}, lease_timeout=0.1)
    servers = [ServerBudget(1, "s1", 4)]
    sup.shares.update(plan_shares(1, [], servers, {}), servers, clock())  # reserved 2 of 4
    wants: list[int] = []
    sup.shares.on_want = lambda: wants.append(1)
    a, b = lookup.add(), lookup.add()
    held = await hold(sup, a, 1) + await hold(sup, b, 1)
    assert sup.used(1) == sup.shares.limit(1) == 2
    wants.clear()
    with pytest.raises(TenantCapacity):
        await use(sup, a)  # waited the lease timeout for a's only slot: no growth
    actor = actor_of(sup, a)
    assert (actor.charge, sup.used(1), factory.connects) == (1, 2, 2)
    assert wants == [1]  # but it asked for an early heartbeat (the share has room)
    sup.shares.update(plan_shares(1, [], servers, {1: 2}), servers, clock())  # that heartbeat
    held += await hold(sup, a, 1)
    assert (actor.charge, sup.used(1), factory.connects) == (2, 3, 3)
    for h in held:
        await h.release()
    await sup.close()


async def test_grown_pools_are_trimmed_back_to_one_when_idle() -> None:
    sup, factory, lookup, clock = make(pool_max=3)
    tid = lookup.add()
    for h in await hold(sup, tid, 3):
        await h.release()
    actor = actor_of(sup, tid)
    pool = pool_of(actor)
    assert (actor.charge, len(pool.conns), len(pool.idle), sup.used(1)) == (3, 3, 3, 3)
    assert await upkeep.trim_grown(sup) == 0  # it needed three a moment ago
    clock.now += TRIM_AFTER
    assert await upkeep.trim_grown(sup) == 2
    assert (actor.charge, len(pool.conns), factory.disconnects, sup.used(1)) == (1, 1, 2, 1)
    await use(sup, tid)  # the kept connection serves on
    assert factory.connects == 3 and actor.state is ActorState.READY
    clock.now += TRIM_AFTER
    assert await upkeep.trim_grown(sup) == 0  # never below one
    await sup.close()


async def test_trim_keeps_what_leases_hold_and_never_opens_a_connection() -> None:
    sup, factory, lookup, clock = make(pool_max=3)
    tid = lookup.add()
    held = await hold(sup, tid, 3)
    for h in held[1:]:
        await h.release()
    actor = actor_of(sup, tid)
    pool = pool_of(actor)
    clock.now += TRIM_AFTER
    assert await upkeep.trim_grown(sup) == 2  # one lease out: one connection kept, its own
    assert (actor.charge, len(pool.conns), len(pool.in_use)) == (1, 1, 1)
    await held[0].release()
    for h in await hold(sup, tid, 2):  # grows again when needed
        await h.release()
    assert actor.charge == 2
    pool.idle.pop().terminate()  # one idle connection died (server side): nothing to close
    clock.now += TRIM_AFTER
    connects = factory.connects
    assert await upkeep.trim_grown(sup) == 1
    assert actor.charge == 1 and len(pool.conns) == 1 and factory.connects == connects
    await sup.close()


async def test_a_shrinking_share_trims_grown_pools_before_closing_any() -> None:
    sup, factory, lookup, clock = make(pool_max=3, budgets={1: 6})
    a, b = lookup.add(), lookup.add()
    for h in await hold(sup, a, 3):
        await h.release()
    await use(sup, b)
    assert sup.used(1) == 4
    grant(sup.shares, [ServerBudget(1, "s1", 2)], clock)  # the budget was lowered to 2
    assert await upkeep.fit_budgets(sup) == 2  # two connections trimmed, no pool closed
    assert sup.used(1) == 2 and factory.closed == [] and factory.open_on(1) == 2
    await sup.close()


async def test_the_first_connection_goes_to_the_lease_that_started_the_pool() -> None:
    sup, factory, lookup, _ = make()
    tid = lookup.add()
    await use(sup, tid)
    pool = factory.pools[-1]
    # opened by start and handed over: one acquire and one release, no reset in between
    assert (pool.acquires, pool.releases, factory.connects) == (1, 1, 1)
    await use(sup, tid)
    assert (pool.acquires, pool.releases, factory.connects) == (2, 2, 1)
    await sup.close()


async def test_a_first_connection_nobody_took_serves_the_next_lease_or_is_closed() -> None:
    sup, factory, lookup, _ = make(delay=0.05)
    t1, t2 = lookup.add(), lookup.add()
    for tid in (t1, t2):
        creator = asyncio.create_task(use(sup, tid))
        await asyncio.sleep(0.01)
        creator.cancel()  # its client went away while the pool started
        with pytest.raises(asyncio.CancelledError):
            await creator
    await asyncio.sleep(0.1)
    for tid in (t1, t2):
        actor = actor_of(sup, tid)
        assert actor.state is ActorState.READY and actor.leases == 0 and actor.evictable
        assert len(pool_of(actor).in_use) == 1  # parked for the next lease
    await use(sup, t1)
    assert pool_of(actor_of(sup, t1)).acquires == 1  # the parked one, handed over
    assert await sup.evict(t2, "operator")  # the fake refuses to close a pool with one out
    await sup.close()
    assert sup.used(1) == 0 and factory.open_on(1) == 0 and factory.connects == 2


async def test_failed_and_cancelled_starts_give_their_charge_back() -> None:
    sup, factory, lookup, _ = make(budgets={1: 1})
    bad, slow, good = lookup.add(), lookup.add(), lookup.add()
    factory.fail[bad] = ConnectionRefusedError("refused")
    with pytest.raises(TenantUnavailable):
        await use(sup, bad)
    assert sup.actor(bad) is None and sup.used(1) == 0
    factory.connect_delay = 0.2
    waiter = asyncio.create_task(use(sup, slow))
    await asyncio.sleep(0.05)
    assert sup.used(1) == 1  # charged while it starts
    start = next(t for t in asyncio.all_tasks() if t.get_name() == f"start-{slow}")
    start.cancel()
    with pytest.raises(TenantUnavailable):
        await waiter
    assert sup.actor(slow) is None and sup.used(1) == 0 and factory.open_on(1) == 0
    factory.connect_delay = 0.0
    await use(sup, good)  # the whole budget of 1 is there again
    await sup.close()
    assert sup.used(1) == 0 and factory.open_on(1) == 0


async def test_eviction_while_a_lease_waits_for_a_slot_leaks_nothing() -> None:
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 1}, lease_timeout=1.0)
    tid = lookup.add()
    [held] = await hold(sup, tid, 1)
    actor = actor_of(sup, tid)
    waiter = asyncio.create_task(use(sup, tid))  # budget full: waits for the only slot
    await asyncio.sleep(0.02)
    assert actor.charge == 1 and actor.leases == 2
    evicting = asyncio.create_task(sup.evict(tid, "operator"))
    await asyncio.sleep(0.02)
    assert actor.state is ActorState.DRAINING and sup.used(1) == 1  # counted until closed
    await held.release()
    # served by a new pool once the old one closed, or refused if the old one still held
    # the budget when it retried
    with contextlib.suppress(TenantCapacity):
        await asyncio.wait_for(waiter, 2)
    assert await asyncio.wait_for(evicting, 2)
    assert actor.state is ActorState.CLOSED and actor.leases == 0
    assert sup.used(1) == factory.open_on(1) <= 1
    await sup.close()
    assert sup.used(1) == 0 and factory.open_on(1) == 0


async def test_closing_a_grown_pool_returns_its_whole_charge() -> None:
    sup, factory, lookup, _ = make(pool_max=3, budgets={1: 3})
    a, b = lookup.add(), lookup.add()
    for h in await hold(sup, a, 3):
        await h.release()
    assert sup.used(1) == 3
    await use(sup, b)  # a is idle: evicted to make room, one connection credited to b
    assert sup.actor(a) is None and sup.used(1) == 1 and factory.open_on(1) == 1
    await sup.close()
    assert sup.used(1) == 0 and factory.open_on(1) == 0


# --- the cheap reset of tenant connections ---------------------------------------------------

SESSION_FUNCTIONS = re.compile(
    r"\b(pg_advisory_lock|pg_advisory_lock_shared|pg_try_advisory_lock"
    r"|pg_try_advisory_lock_shared)\s*\(|\bLISTEN\b|\bWITH\s+HOLD\b"
    r"|set_config\s*\([^)]*,\s*false\s*\)", re.IGNORECASE)
SESSION_STATEMENT = re.compile(
    r"\s*(SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)|RESET\b|DISCARD\b)", re.IGNORECASE)


def leaves_session_state(statement: str) -> bool:
    """Whether a statement changes session state that outlives its transaction."""
    return bool(SESSION_STATEMENT.match(statement) or SESSION_FUNCTIONS.search(statement))


def test_named_queries_leave_no_session_state_behind() -> None:
    """Tenant and registry pools release connections without asyncpg's reset query
    (pg.keep_session): no named query may leave session state a later lease would inherit."""
    for bad in ("SELECT pg_advisory_lock(1)", "LISTEN x", " SET search_path = x",
                "select set_config('a.b', '1', false)", "DECLARE c CURSOR WITH HOLD FOR x",
                "RESET ALL"):
        assert leaves_session_state(bad), bad
    for fine in ("SELECT pg_advisory_xact_lock(1)", "SET LOCAL lock_timeout = '1s'",
                 "UPDATE t\nSET a = 1", "select set_config('a.b', '1', true)"):
        assert not leaves_session_state(fine), fine
    # The registry pool releases without the reset query too (app.registry_pool_ctx).
    files = sorted((Settings().sql_dir / "tenant" / "queries").glob("*.sql"))
    files += sorted((Settings().sql_dir / "registry" / "queries").glob("*.sql"))
    assert len(files) > 10
    for path in files:
        text = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
        for statement in text.split(";"):
            assert not leaves_session_state(statement), f"{path.name}: {statement.strip()!r}"
