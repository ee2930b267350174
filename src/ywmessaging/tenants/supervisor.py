"""`PoolSupervisor`: one TenantPool actor per open tenant, under a cap and per-server budgets.

Invariants (the bookkeeping is synchronous between awaits, so it is atomic on the loop; the
actor roster and drain-then-close live in roster.py):
- open pools (actors in `_actors` plus closing ones whose cap slot was not handed over) never
  exceed the cap, YWM_TENANT_POOL_CAP, when it is set (unset, the budgets alone bound them:
  every pool is charged at least one connection);
- on each server, the sum of those actors' charges (closing ones included, less what a
  successor covers) never exceeds this process's reservation (budget.py), and no actor's pool
  holds more connections than its charge (actor.py): a pool starts charged one connection
  and grows by one, up to YWM_TENANT_POOL_MAX, only when a lease finds every slot taken and
  the reservation has room; upkeep trims pools that no longer need more than one;
- an actor with a lease out, a probe running, or still starting is never chosen to make room
  or for idleness; when nothing can be evicted the caller gets TenantCapacity at once;
- an actor evicted to make room hands over its cap slot and, only when it is on the same
  server, one connection (the new actor's first charge); the new actor opens no connection
  before the evicted pools are closed, so a victim on another server keeps counting there
  until it is closed;
- breakers: a request is refused while its tenant's or server's breaker is open; the half-open
  trial is taken only by a start that is sure to connect, and every start settles it.
Starts are single-flight: the first request creates the actor (in `starting`) and a task that
opens it; concurrent requests for that tenant wait (bounded) on the same actor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from ..config import Settings
from ..db import migrations
from ..db.faults import DatabaseUnavailable
from ..errors import (
    AppError,
    TenantCapacity,
    TenantNotFound,
    TenantUnavailable,
)
from .actor import ActorGone, ActorState, SlotTimeout, TenantPool
from .breaker import BreakerBoard, Clock, Trials
from .budget import ShareBook
from .directory import Lookup, TenantInfo, gate
from .health import Fault, classify_connect, classify_in_use, describe
from .metrics import PoolMetrics, Snapshot
from .pools import CLOSE_TIMEOUT, PoolFactory
from .roster import Roster, make_room
from .slots import TRIM_AFTER

log = structlog.get_logger("ywm.supervisor")


def unavailable(detail: str) -> TenantUnavailable:
    """TenantUnavailable asking the client to retry in a second."""
    return TenantUnavailable(detail, headers={"Retry-After": "1"})


class PoolSupervisor(Roster):
    """Owns every tenant pool of this process; see the module docstring for the invariants."""

    def __init__(self, settings: Settings, *, lookup: Lookup, pool_factory: PoolFactory,
                 shares: ShareBook | None = None, metrics: PoolMetrics | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.lookup = lookup
        self._factory = pool_factory
        self.pool_max = settings.tenant_pool_max
        self.trim_after = TRIM_AFTER  # idle seconds before a grown pool is trimmed (upkeep)
        self.cap = settings.tenant_pool_cap
        self.shares = shares or ShareBook(settings.process_weight, settings.tenant_pool_max)
        super().__init__(metrics or PoolMetrics())
        self.breakers = BreakerBoard(clock)
        self.need_version = migrations.code_version(settings.sql_dir, "tenant")
        self.clock = clock
        self.metrics.watch(self.snapshot)  # gauges read our state at scrape time

    @property
    def pool_factory(self) -> PoolFactory:
        """How this supervisor opens tenant pools (upkeep's checks use it too)."""
        return self._factory

    # ----- the request path -------------------------------------------------------------
    @asynccontextmanager
    async def lease(self, tenant_id: uuid.UUID, *,
                    suspended_ok: bool = False) -> AsyncIterator[Any]:
        """A connection to the tenant's database for the body of `async with`.

        Raises TenantNotFound/TenantSuspended/TenantSchemaOutdated (gating), TenantUnavailable
        (breaker open, connection failed) or TenantCapacity (no room, pool busy); never waits
        longer than the lease and connect timeouts. `suspended_ok`: lease a suspended church
        too (see directory.gate).
        """
        t0 = self.clock()
        actor, conn = await self._acquire(tenant_id, suspended_ok)
        self.metrics.lease_wait.observe(self.clock() - t0)
        stats = self.stats.touch(tenant_id)
        stats.leases += 1
        stats.last_used = time.time()
        try:
            yield conn
        except Exception as exc:
            fault = classify_in_use(exc, conn)
            if fault is Fault.NONE:
                raise
            self.record_failure(actor.info, fault, exc)
            err = unavailable("the connection to the church's database was lost")
            self._refused(tenant_id, err)
            raise err from exc
        finally:
            await actor.release(conn)

    async def _acquire(self, tenant_id: uuid.UUID,
                       suspended_ok: bool = False) -> tuple[TenantPool, Any]:
        s = self.settings
        try:
            for _attempt in range(2):  # once more if the actor began draining meanwhile
                actor = await self._actor_for(tenant_id, suspended_ok)
                actor.pending += 1  # not evictable while we wait for it to start
                try:
                    await self._wait_started(actor)
                    conn = await actor.acquire(s.lease_timeout, s.tenant_connect_timeout)
                except ActorGone:
                    continue
                except SlotTimeout:
                    raise TenantCapacity("every connection of this church's pool is busy",
                                         headers={"Retry-After": "1"}) from None
                except AppError:
                    raise
                except Exception as exc:
                    self.record_failure(actor.info, classify_connect(exc), exc)
                    raise unavailable("cannot connect to the church's database") from exc
                finally:
                    actor.pending -= 1
                self.breakers.record_success(tenant_id, actor.info.server_id)
                if self._actors.get(tenant_id) is actor:
                    self._actors.move_to_end(tenant_id)
                return actor, conn
            raise unavailable("the church's pool is being reopened")
        except AppError as exc:
            self._refused(tenant_id, exc)
            raise

    async def _actor_for(self, tenant_id: uuid.UUID, suspended_ok: bool = False) -> TenantPool:
        """The tenant's actor (perhaps still starting), or a new one: gating and breakers
        first; no await between finding an actor and returning it."""
        if self._closed:
            raise unavailable("shutting down")
        try:
            found = await self.lookup.get(tenant_id)
        except Exception as exc:  # the registry is down or slow: bounded, then 503
            raise DatabaseUnavailable("the registry cannot be reached",
                                      headers={"Retry-After": "1"}) from exc
        info = gate(found, self.need_version, suspended_ok=suspended_ok)
        self.shares.note_server(info.server_id, info.server_name, info.conn_budget)
        if self.shares.is_down(info.server_id):  # fresher than the cached row (heartbeat)
            raise TenantUnavailable("the church's database server is down",
                                    headers={"Retry-After": "30"})
        self.breakers.check(tenant_id, info.server_id)
        actor = self._actors.get(tenant_id)
        if actor is not None and actor.info.placement() != info.placement():
            self._detach(actor, "tenant_changed")
            self._spawn(self._close(actor), f"close-{tenant_id}")
            actor = None
        return actor if actor is not None else self._admit(info)

    async def _wait_started(self, actor: TenantPool) -> None:
        if actor.settled:
            return
        try:
            await actor.wait_started(self.settings.tenant_connect_timeout + CLOSE_TIMEOUT + 2)
        except TimeoutError:
            raise unavailable("the church's database is slow to open") from None
        if actor.start_error is not None:
            raise unavailable("cannot connect to the church's database")

    def _admit(self, info: TenantInfo) -> TenantPool:
        """Make room (cap and server budget) and register a starting actor, or refuse."""
        sid = info.server_id
        idle = [a for a in self._actors.values() if a.evictable]  # least recently used first
        room = make_room(idle, server_id=sid, share=self.shares.limit(sid),
                         used=self.used(sid), count=self.open_count(), cap=self.cap)
        if isinstance(room, str):
            if room != "pool cap":
                self.shares.want(sid)
            raise TenantCapacity(f"this process's {room} is full of busy pools",
                                 headers={"Retry-After": "1"})
        trials = self.breakers.take_trials(info.id, sid)  # sure to connect from here on
        credits = {id(v): n for v, n in room.credits}
        for v in room.victims:
            self._detach(v, "lru", budget_credit=credits.get(id(v), 0),
                         cap_handed=v in room.cap_handed)
        actor = TenantPool(info, self.pool_max, self.clock, grow=self._may_grow)
        self._actors[info.id] = actor
        if room.credits or self.used(sid) >= self.shares.limit(sid):
            self.shares.want(sid)  # the reservation is full: grow it if the share can
        self._spawn(self._start(actor, room.victims, trials), f"start-{info.id}")
        return actor

    def _may_grow(self, actor: TenantPool) -> bool:
        """Charge one more connection of an open actor to its server's budget, if the
        reservation has room (the actor raises its charge at once, before any await)."""
        sid = actor.server_id
        if self._actors.get(actor.tenant_id) is not actor or self.shares.is_down(sid):
            return False
        if self.used(sid) + 1 <= self.shares.limit(sid):
            return True
        self.shares.want(sid)
        return False

    async def _start(self, actor: TenantPool, victims: list[TenantPool], trials: Trials) -> None:
        tid = actor.tenant_id
        t0 = self.clock()
        try:
            if victims:  # their connections must be gone before ours open (handed over)
                await asyncio.gather(*(self._close(v) for v in victims))
            t0 = self.clock()
            await actor.start(self._factory, self.settings.tenant_connect_timeout)
        except BaseException as exc:
            actor.abandon(exc)
            if self._actors.get(tid) is actor:
                del self._actors[tid]
            if isinstance(exc, Exception):
                self.record_failure(actor.info, classify_connect(exc), exc)
                log.warning("tenant_pool_start_failed", tenant_id=str(tid), error=describe(exc))
            self.breakers.release_trials(trials)  # those the outcome did not settle
            if not isinstance(exc, Exception):
                raise
            return
        seconds = self.clock() - t0
        self.metrics.cold_starts.inc()
        self.metrics.cold_start_seconds.observe(seconds)
        self.stats.touch(tid).cold_starts += 1
        self.breakers.record_success(tid, actor.info.server_id)
        log.info("tenant_pool_started", tenant_id=str(tid), server=actor.info.server_name,
                 ms=round(seconds * 1000, 1))

    # ----- failures and refusals --------------------------------------------------------
    def record_failure(self, info: TenantInfo, fault: Fault, exc: BaseException) -> None:
        detail = describe(exc)
        self.stats.error(info.id, "connection_failed", detail)
        t_opened, s_opened = self.breakers.record_failure(info.id, info.server_id, fault, detail)
        if t_opened and info.id in self._actors:
            self._spawn(self.evict(info.id, "unhealthy"), f"evict-{info.id}")
        if s_opened:
            self._spawn(self.evict_server(info.server_id, "unhealthy"), f"evict-s{info.server_id}")

    def _refused(self, tenant_id: uuid.UUID, exc: AppError) -> None:
        self.metrics.lease_errors.labels(exc.code).inc()
        if not isinstance(exc, TenantNotFound):  # unknown ids must not crowd out real tenants
            self.stats.error(tenant_id, exc.code, None)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        """Forget the cached registry row of a tenant (the next lease reads it again)."""
        self.lookup.invalidate(tenant_id)

    def on_tenant_changed(self, tenant_id: uuid.UUID) -> None:
        """A tenant row changed: drop its cache entry; re-check an open pool against it."""
        self.invalidate(tenant_id)
        if tenant_id in self._actors:
            self._spawn(self.recheck(tenant_id), f"recheck-{tenant_id}")

    def on_cache_lost(self) -> None:
        """Notifications may have been missed (listener reconnected): forget and re-check."""
        self.lookup.clear()
        for tid in list(self._actors):
            self._spawn(self.recheck(tid), f"recheck-{tid}")

    async def recheck(self, tenant_id: uuid.UUID) -> None:
        """Compare an open pool with the tenant's current row; reopen it if placement or status
        changed (reason `tenant_changed`), else keep it with the fresher row."""
        actor = self.actor(tenant_id)
        if actor is None:
            return
        try:
            info = await self.lookup.get(tenant_id)
        except Exception as exc:
            log.warning("tenant_recheck_failed", tenant_id=str(tenant_id), error=describe(exc))
            info = None  # unknown counts as changed: reopening is always safe
        if self.actor(tenant_id) is not actor:
            return
        if (info is None or info.placement() != actor.info.placement()
                or info.status != actor.info.status):
            await self.evict(tenant_id, "tenant_changed")
        else:
            actor.info = info

    def pool_cap(self) -> int:
        """Pools this process may keep open now: what its shares hold at one connection each,
        or YWM_TENANT_POOL_CAP if that is lower."""
        fits = self.shares.pools_fit()
        return fits if self.cap is None else min(self.cap, fits)

    def snapshot(self) -> Snapshot:
        """Gauges at scrape time: pools by state, leases, breakers, connections per server."""
        by_state = {s.value: 0 for s in ActorState}
        conns: dict[str, int] = {}
        leases = 0
        for a in self.actors():
            by_state[a.state.value] += 1
            leases += a.leases
            name = self.shares.name(a.server_id)
            conns[name] = conns.get(name, 0) + a.sizes()[0]
        servers = {a.server_id for a in self.actors()} | set(self.shares.servers)
        claimed = {self.shares.name(s): self.used(s) for s in servers}
        share = {self.shares.name(s): self.shares.share(s) for s in servers}
        reserved = {self.shares.name(s): self.shares.limit(s) for s in servers}
        for name in claimed:
            conns.setdefault(name, 0)
        return Snapshot(pools_by_state=by_state, leases_in_use=leases,
                        breakers=self.breakers.counts(), server_connections=conns,
                        server_claimed=claimed, server_share=share,
                        server_reserved=reserved, pool_cap=self.pool_cap())
