"""Open tenant pools follow this process's shares of the servers' budgets (one connection per
open church) unless YWM_TENANT_POOL_CAP sets a lower cap. Fakes from supervisor_fakes.py."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.unit.supervisor_fakes import Clock, Holder, evictions, grant, make, use
from ywmessaging.config import Settings
from ywmessaging.errors import ConfigError, TenantCapacity
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.budget import Peer, ServerBudget, ShareBook
from ywmessaging.tenants.status import pool_cap
from ywmessaging.tenants.supervisor import PoolSupervisor


async def _hold_all(sup: PoolSupervisor, tids: list[uuid.UUID]) -> list[Holder]:
    holders = [Holder(sup, t) for t in tids]
    await asyncio.wait_for(asyncio.gather(*(h.entered.wait() for h in holders)), 5)
    return holders


def test_the_pool_cap_is_unset_by_default_and_positive_when_set() -> None:
    assert Settings().tenant_pool_cap is None
    assert Settings.from_env({"YWM_TENANT_POOL_CAP": "40"}).tenant_pool_cap == 40
    with pytest.raises(ConfigError):
        Settings.from_env({"YWM_TENANT_POOL_CAP": "0"})


def test_pools_fit_is_the_sum_of_the_shares_of_servers_not_down() -> None:
    clock = Clock()
    book = ShareBook(weight=1, pool_max=3, clock=clock, stale_after=10.0)
    servers = [ServerBudget(1, "a", 60), ServerBudget(2, "b", 20),
               ServerBudget(3, "c", 50, "draining"), ServerBudget(4, "d", 40, "down")]
    assert book.pools_fit() == 0  # nothing held before the first heartbeat
    grant(book, servers, clock)
    assert book.pools_fit() == 60 + 20 + 50
    grant(book, servers, clock, peers=[Peer(1, {})])  # a second process: half each
    assert book.pools_fit() == 30 + 10 + 25
    clock.now += 11  # stale: fenced
    assert book.pools_fit() == 0


async def test_without_a_set_cap_every_connection_of_the_shares_can_be_an_open_church() -> None:
    # 80 connections over two servers: 80 churches open at once, each on one connection.
    sup, factory, lookup, _ = make(cap=None, budgets={1: 60, 2: 20})
    assert pool_cap(sup) == 80
    tids = [lookup.add(1) for _ in range(60)] + [lookup.add(2) for _ in range(20)]
    holders = await _hold_all(sup, tids)
    assert sup.open_count() == 80 and factory.opens == 80
    with pytest.raises(TenantCapacity):  # the shares are full of busy pools
        await use(sup, lookup.add(1))
    for h in holders:
        await h.release()
    await use(sup, lookup.add(2))  # idle now: the least recently used on server 2 makes room
    assert evictions(sup, "lru") == 1 and sup.open_count() == 80
    await sup.close()
    assert factory.opens == factory.closes


async def test_a_set_cap_below_the_shares_binds_first() -> None:
    sup, factory, lookup, _ = make(cap=50, budgets={1: 60, 2: 20})
    assert pool_cap(sup) == 50
    holders = await _hold_all(sup, [lookup.add(1) for _ in range(50)])
    with pytest.raises(TenantCapacity):
        await use(sup, lookup.add(2))  # server 2 has room, the cap has not
    assert factory.opens == 50
    for h in holders:
        await h.release()
    await sup.close()


async def test_open_pools_follow_a_shrinking_share() -> None:
    sup, factory, lookup, clock = make(cap=None, budgets={1: 10, 2: 10})
    tids = [lookup.add(1) for _ in range(10)] + [lookup.add(2) for _ in range(10)]
    for tid in tids:
        await use(sup, tid)
    assert sup.open_count() == pool_cap(sup) == 20
    # A budget lowered (`ywm servers set`): server 1 now gives this process 4 connections.
    grant(sup.shares, [ServerBudget(1, "s1", 4), ServerBudget(2, "s2", 10)], clock)
    assert pool_cap(sup) == 14
    assert await upkeep.fit_budgets(sup) == 6  # the heartbeat's fitting: idle pools, LRU first
    assert factory.closed == tids[:6] and sup.open_count() == 14
    await use(sup, lookup.add(2))  # server 2 is full: its least recently used pool goes
    assert factory.closed[6:] == [tids[10]] and sup.open_count() == 14
    # Server 2 goes down: its share no longer counts.
    grant(sup.shares, [ServerBudget(1, "s1", 4), ServerBudget(2, "s2", 10, "down")], clock)
    assert pool_cap(sup) == 4
    await sup.close()
