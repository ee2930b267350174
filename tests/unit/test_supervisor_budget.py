"""How the supervisor shares each server's connection budget with the other processes and
makes room for a new pool: shares, reservations, room-making, eviction to fit. Fakes from
supervisor_fakes.py (every new connection is audited against the charges)."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.unit.supervisor_fakes import Clock, Holder, evictions, grant, make, use
from ywmessaging.errors import TenantCapacity
from ywmessaging.tenants import upkeep
from ywmessaging.tenants.budget import (
    FRESH_BEATS,
    Peer,
    ServerBudget,
    ShareBook,
    compute_share,
    plan_shares,
)
from ywmessaging.tenants.roster import make_room


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

