"""The open tenant actors of one process: LRU order, accounting, drain-then-close.

All bookkeeping here is synchronous between awaits, so it is atomic on the event loop. An actor
leaves `_actors` the moment it is detached (no new leases) and stays in `_closing`, still
counted against the cap and its server's budget until its pool is closed, except for what it
*handed over* to a starting actor that opens nothing before the old pool is closed: its cap
slot (any server) and one connection (only to an actor on the same server: the one the new
actor is charged at first). An actor is charged for the connections it may hold (`charge`,
see actor.py), not for the most it could grow to.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog

from .actor import ActorState, TenantPool
from .health import describe
from .metrics import EVICTION_REASONS, PoolMetrics, StatsBook

log = structlog.get_logger("ywm.supervisor")


class Charged(Protocol):
    """What room-making needs of an actor."""

    @property
    def charge(self) -> int: ...

    @property
    def server_id(self) -> int: ...


V = TypeVar("V", bound=Charged)


@dataclass
class Room(Generic[V]):
    """Where a new pool fits (charged one connection) and the idle actors to evict first."""

    victims: list[V] = field(default_factory=list)
    # (victim on the same server, how many of its connections the new pool's charge covers)
    credits: list[tuple[V, int]] = field(default_factory=list)
    cap_handed: list[V] = field(default_factory=list)     # cap slots taken over


def make_room(idle: list[V], *, server_id: int, share: int, used: int, count: int,
              cap: int | None) -> Room[V] | str:
    """Room for a new pool on `server_id` (it starts charged one connection), evicting idle
    actors (least recently used first); or what is full ("server's connection budget" or
    "pool cap"; None: no cap on the count, the budget's one connection per pool bounds it).

    The new pool opens nothing before its victims are closed, so it may take over what they
    hold, but only what it can cover: a cap slot each (as many as the cap needs), and on its
    own server the one connection it is charged. A victim on another server keeps counting
    against that server's budget until its pool is closed."""
    reclaimable = sum(a.charge for a in idle if a.server_id == server_id)
    if share - used + reclaimable < 1:
        return "server's connection budget"
    victims: list[V] = []
    for a in idle:
        if used + 1 <= share:
            break
        if a.server_id == server_id:
            victims.append(a)
            used -= a.charge
    left = count - len(victims)
    for a in idle:
        if cap is None or left < cap:
            break
        if a not in victims:
            victims.append(a)
            left -= 1
    if cap is not None and left >= cap:
        return "pool cap"
    same = [a for a in victims if a.server_id == server_id]
    credits = [(same[0], 1)] if same else []
    return Room(victims, credits, victims[:max(0, count + 1 - cap)] if cap is not None else [])


class Roster:
    """Actors by tenant (least recently used first) and those still closing."""

    def __init__(self, metrics: PoolMetrics) -> None:
        self.metrics = metrics
        self.stats = StatsBook()
        self._actors: OrderedDict[uuid.UUID, TenantPool] = OrderedDict()
        self._closing: set[TenantPool] = set()
        self._side: dict[int, int] = {}  # server → connections of upkeep's definitive checks
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # ----- eviction ---------------------------------------------------------------------
    def _detach(self, actor: TenantPool, reason: str, *, budget_credit: int = 0,
                cap_handed: bool = False) -> None:
        """Take an actor out of service (no new leases); `_close` finishes the job."""
        if reason not in EVICTION_REASONS:
            raise ValueError(f"unknown eviction reason {reason!r}")
        tid = actor.tenant_id
        if self._actors.get(tid) is actor:
            del self._actors[tid]
        actor.budget_credit, actor.cap_handed = budget_credit, cap_handed
        self._closing.add(actor)
        if actor.state is ActorState.READY:
            actor.state = ActorState.DRAINING
        self.metrics.evictions.labels(reason).inc()
        stats = self.stats.touch(tid)
        stats.evictions += 1
        stats.last_eviction = reason
        log.info("tenant_pool_evicted", tenant_id=str(tid), reason=reason, leases=actor.leases)

    async def _close(self, actor: TenantPool) -> None:
        try:
            await actor.drain_and_close()
        except BaseException as exc:  # bounds expired or cancelled: leave nothing open
            if actor.pool is not None:
                actor.pool.terminate()
            actor.state = ActorState.CLOSED
            if not isinstance(exc, Exception):
                raise
            log.warning("tenant_pool_close_failed", tenant_id=str(actor.tenant_id),
                        error=describe(exc))
        finally:
            self._closing.discard(actor)

    async def evict(self, tenant_id: uuid.UUID, reason: str = "operator") -> bool:
        """Drain then close the tenant's pool (leases in flight finish first, bounded)."""
        actor = self._actors.get(tenant_id)
        if actor is None:
            return False
        self._detach(actor, reason)
        await self._close(actor)
        return True

    async def evict_server(self, server_id: int, reason: str = "operator") -> int:
        """Drain then close every pool on one database server (moves, server trouble)."""
        return await self.retire(
            [a for a in self._actors.values() if a.info.server_id == server_id], reason)

    async def retire(self, actors: list[TenantPool], reason: str) -> int:
        """Drain then close these open actors (those no longer open are skipped)."""
        mine = [a for a in actors if self._actors.get(a.tenant_id) is a]
        for a in mine:
            self._detach(a, reason)
        await asyncio.gather(*(self._close(a) for a in mine))
        return len(mine)

    def used(self, server_id: int) -> int:
        """Connections charged on a server: open and closing actors' charges (less what a
        same-server successor's charge covers) and upkeep's check connections."""
        total = sum(a.charge for a in self._actors.values() if a.info.server_id == server_id)
        return total + self._side.get(server_id, 0) + sum(
            a.charge - a.budget_credit for a in self._closing
            if a.info.server_id == server_id)

    def used_all(self) -> dict[int, int]:
        """Server id → `used(server)`, for every server with something claimed."""
        servers = {a.info.server_id for a in self.actors()} | set(self._side)
        return {s: self.used(s) for s in sorted(servers)}

    @contextmanager
    def side_connection(self, server_id: int) -> Iterator[None]:
        """Count one connection of upkeep's own against a server while the block runs."""
        self._side[server_id] = self._side.get(server_id, 0) + 1
        try:
            yield
        finally:
            left = self._side[server_id] - 1
            if left:
                self._side[server_id] = left
            else:
                del self._side[server_id]

    def open_count(self) -> int:
        """Pools counted against the cap."""
        return len(self._actors) + sum(1 for a in self._closing if not a.cap_handed)

    def actors(self) -> list[TenantPool]:
        """Open actors, least recently used first (plus those still closing)."""
        return [*self._actors.values(), *self._closing]

    def actor(self, tenant_id: uuid.UUID) -> TenantPool | None:
        """The tenant's open actor, if any."""
        return self._actors.get(tenant_id)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float = 15.0) -> None:
        """Stop leasing; let starts and closes in flight finish (bounded); drain and close
        every pool (bounded, then terminate)."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        for a in list(self._actors.values()):
            self._detach(a, "shutdown")
        pending = list(self._closing)
        if pending:
            closers = [asyncio.ensure_future(self._close(a)) for a in pending]
            await asyncio.wait(closers, timeout=timeout)
            for a in pending:  # a close that overran its bounds: cut the connections
                if a.state is not ActorState.CLOSED and a.pool is not None:
                    a.pool.terminate()
        self.metrics.unwatch()
