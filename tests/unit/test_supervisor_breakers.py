"""Circuit breakers as the supervisor uses them: per tenant and per server, the half-open
trial, the definitive check of a dropped database, health probes, and which errors count.
Fakes from supervisor_fakes.py (test_breaker.py tests the breakers on their own)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from tests.unit.supervisor_fakes import Clock, Holder, evictions, make, state_of, use
from ywmessaging.errors import TenantCapacity, TenantUnavailable
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.breaker import Breaker, BreakerState
from ywmessaging.tenants.health import Fault


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

