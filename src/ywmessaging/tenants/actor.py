"""`TenantPool`: the actor that owns one tenant's asyncpg pool and hands out leases.

Lifecycle: starting → ready → draining → closed. Only `ready` hands out leases. Draining stops
new leases, waits (bounded) for the active ones to come back, then closes the pool (bounded,
then terminate). The supervisor decides when; the actor only knows how.

Each lease, probe and the parked first connection holds one of the actor's slots; how many
slots there are (its charge against the server's budget), and how they grow and are trimmed, is
slots.py's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import structlog

from .directory import TenantInfo
from .health import probe
from .pools import CLOSE_TIMEOUT, RELEASE_TIMEOUT, PoolFactory, PoolLike, is_closed
from .slots import TRIM_AFTER, Slots

log = structlog.get_logger("ywm.tenant_pool")

Clock = Callable[[], float]
DRAIN_TIMEOUT = 10.0


class ActorState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    CLOSED = "closed"


Grow = Callable[["TenantPool"], bool]


class ActorGone(Exception):
    """The actor stopped handing out leases (draining or closed) before this one was given."""


class SlotTimeout(Exception):
    """Every connection of the tenant's pool stayed leased for the whole lease timeout."""


class TenantPool:
    """One tenant's pool: `charge` slots (1 to `max_size`), counted leases, drain-then-close."""

    def __init__(self, info: TenantInfo, max_size: int, clock: Clock = time.monotonic,
                 grow: Grow | None = None) -> None:
        self.info = info
        self.max_size = max_size  # the most it may grow to
        self._clock = clock
        self._grow_ok = grow      # the supervisor: is there room in the budget for one more?
        self.state = ActorState.STARTING
        self.pool: PoolLike | None = None
        self.leases = 0
        self.pending = 0  # requests between finding this actor and holding a lease
        self.probing = False
        # evicted to make room: its cap slot / its connections already belong to a new actor
        self.cap_handed = False
        self.budget_credit = 0  # connections of it that the successor's charge covers
        self.start_error: BaseException | None = None
        self.created_at = clock()
        self.last_used = self.created_at
        self.slots = Slots(max_size, clock, self._may_grow, self.created_at)
        self._first: Any = None  # the connection `start` opened, kept for the next lease
        self._settled = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._close_started = False

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.info.id

    @property
    def server_id(self) -> int:
        return self.info.server_id

    @property
    def charge(self) -> int:
        """Connections charged to the server's budget: the number of slots."""
        return self.slots.charge

    def _may_grow(self) -> bool:
        return self._grow_ok is not None and self._grow_ok(self)

    @property
    def evictable(self) -> bool:
        """Ready, with no lease out or promised (`pending`) and no probe running: only such
        an actor is ever evicted to make room or for idleness."""
        return (self.state is ActorState.READY and self.leases == 0 and self.pending == 0
                and not self.probing)

    @property
    def settled(self) -> bool:
        """Whether `start` has finished (either way)."""
        return self._settled.is_set()

    def abandon(self, error: BaseException) -> None:
        """Give up before `start` ran (the start task was cancelled): closed, nothing open."""
        if not self._settled.is_set():
            self.start_error = error
            self.state = ActorState.CLOSED
            self._settled.set()
            self._closed.set()

    async def start(self, factory: PoolFactory, connect_timeout: float) -> None:
        """Create the pool and open its first connection, kept (with its slot) for the next
        lease; on failure the actor is closed and `start_error` says why (waiters read it
        after `wait_started`)."""
        try:
            async with asyncio.timeout(connect_timeout + 1.0):
                self.pool = await factory(self.info, self.max_size)
                await self.slots.take()  # the only slot, free: nothing else runs before ready
                self._first = await self.pool.acquire(timeout=connect_timeout)
        except BaseException as exc:
            self.start_error = exc
            self.state = ActorState.CLOSED
            self._first = None
            if self.pool is not None:
                self.pool.terminate()
            self._closed.set()
            raise
        finally:
            self._settled.set()
        if self.state is ActorState.STARTING:  # not already told to drain
            self.state = ActorState.READY
        self.last_used = self._clock()

    async def wait_started(self, timeout: float) -> None:
        """Wait (bounded) until `start` has succeeded or failed."""
        await asyncio.wait_for(self._settled.wait(), timeout)

    async def acquire(self, lease_timeout: float, connect_timeout: float) -> Any:
        """A connection, counted as a lease until `release`. Waits at most `lease_timeout` for
        a free slot (SlotTimeout), then at most `connect_timeout` for the pool to hand over or
        open the connection (its errors propagate)."""
        if self.state is not ActorState.READY or self.pool is None:
            raise ActorGone()
        pool = self.pool
        self._begin()
        try:
            first, self._first = self._first, None
            if first is None:
                try:
                    async with asyncio.timeout(lease_timeout):
                        await self.slots.take_or_grow()
                except TimeoutError:
                    raise SlotTimeout() from None
            elif not is_closed(first):
                return first  # start's connection, its slot included: no round trip
            try:
                if first is not None:
                    await self._release(pool, first)  # broken meanwhile: the pool reconnects
                if self.state is not ActorState.READY:
                    raise ActorGone()
                # A slot is free, so the pool has a free holder: a timeout here is a slow connect.
                return await pool.acquire(timeout=connect_timeout)
            except BaseException:
                self.slots.give()
                raise
        except BaseException:
            self._end()
            raise

    async def release(self, conn: Any) -> None:
        """Give back a connection from `acquire` (never raises for a broken connection)."""
        try:
            if self.pool is not None:
                await self._release(self.pool, conn)
        finally:
            self.slots.give()
            self._end()

    def _begin(self) -> None:
        self.leases += 1
        self._idle.clear()
        self.last_used = self._clock()

    def _end(self) -> None:
        self.leases -= 1
        self.last_used = self._clock()
        if self.leases == 0:
            self._idle.set()

    async def _release(self, pool: PoolLike, conn: Any) -> None:
        try:
            await pool.release(conn, timeout=RELEASE_TIMEOUT)
        except Exception as exc:  # the connection is terminated by asyncpg; the pool goes on
            log.warning("tenant_pool_release_failed", tenant_id=str(self.tenant_id),
                        error=type(exc).__name__)

    async def probe(self, timeout: float) -> bool:
        """`SELECT 1` through a free slot; False (skipped) when every slot is taken."""
        if self.state is not ActorState.READY or self.pool is None or self.slots.all_taken():
            return False
        await self.slots.take()  # free: all_taken() was False and nothing awaited since
        self.probing = True
        try:
            await probe(self.pool, timeout)
        finally:
            self.probing = False
            self.slots.give()
        return True

    def trimmable(self, now: float, after: float = TRIM_AFTER) -> bool:
        """Ready, grown, and not more than one slot taken at once for `after` seconds."""
        return self.state is ActorState.READY and self.slots.trimmable(now, after)

    async def trim(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Close idle connections beyond what is needed and lower the charge to match
        (`Slots.trim`); returns the charge given back."""
        if self.state is not ActorState.READY or self.pool is None:
            return 0
        return await self.slots.trim(self.pool, timeout, self.tenant_id)

    async def drain_and_close(self, drain_timeout: float = DRAIN_TIMEOUT,
                              close_timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop leasing, wait for active leases (bounded), close the pool (bounded, then
        terminate). Safe to call twice: the second call waits for the first."""
        if self._close_started or self._closed.is_set():
            await asyncio.wait_for(self._closed.wait(), drain_timeout + close_timeout + 1.0)
            return
        self._close_started = True
        if self.state is ActorState.STARTING:
            self.state = ActorState.DRAINING
            await asyncio.wait_for(self._settled.wait(), drain_timeout)
            if self.start_error is not None:
                return  # start failed: nothing was left open
        self.state = ActorState.DRAINING
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        except TimeoutError:
            log.warning("tenant_pool_drain_timeout", tenant_id=str(self.tenant_id),
                        leases=self.leases, timeout_s=drain_timeout)
        try:
            if self.pool is not None:
                try:
                    first, self._first = self._first, None
                    if first is not None:  # no lease came for it: back to the pool first
                        await asyncio.wait_for(self._release(self.pool, first), close_timeout)
                    await asyncio.wait_for(self.pool.close(), close_timeout)
                except Exception as exc:  # TimeoutError or a broken connection
                    log.warning("tenant_pool_close_failed", tenant_id=str(self.tenant_id),
                                error=type(exc).__name__)
                    self.pool.terminate()
        finally:
            self.state = ActorState.CLOSED
            self._closed.set()

    def sizes(self) -> tuple[int, int]:
        """(open connections, idle connections) of the pool."""
        if self.pool is None or self.state is ActorState.CLOSED:
            return 0, 0
        return self.pool.get_size(), self.pool.get_idle_size()
