"""`TenantPool`: the actor that owns one tenant's asyncpg pool and hands out leases.

Lifecycle: starting → ready → draining → closed. Only `ready` hands out leases. Draining stops
new leases, waits (bounded) for the active ones to come back, then closes the pool (bounded,
then terminate). The supervisor decides when; the actor only knows how.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol

import structlog

from .directory import TenantInfo
from .health import probe

log = structlog.get_logger("ywm.tenant_pool")

Clock = Callable[[], float]
DRAIN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
RELEASE_TIMEOUT = 5.0


class ActorState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    CLOSED = "closed"


class PoolLike(Protocol):
    """The part of asyncpg.Pool the actor uses (a counting fake in the supervisor's unit tests)."""

    def acquire(self, *, timeout: float | None = None) -> Any: ...
    async def release(self, connection: Any, *, timeout: float | None = None) -> None: ...
    async def close(self) -> None: ...
    def terminate(self) -> None: ...
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...


PoolFactory = Callable[[TenantInfo, int], Awaitable[PoolLike]]


class ActorGone(Exception):
    """The actor stopped handing out leases (draining or closed) before this one was given."""


class SlotTimeout(Exception):
    """Every connection of the tenant's pool stayed leased for the whole lease timeout."""


class TenantPool:
    """One tenant's pool: at most `max_size` connections, counted leases, drain-then-close."""

    def __init__(self, info: TenantInfo, max_size: int, clock: Clock = time.monotonic) -> None:
        self.info = info
        self.max_size = max_size
        self._clock = clock
        self.state = ActorState.STARTING
        self.pool: PoolLike | None = None
        self.leases = 0
        self.pending = 0  # requests between finding this actor and holding a lease
        self.probing = False
        # evicted to make room: its cap slot / its connections already belong to a new actor
        self.cap_handed = False
        self.budget_credit = 0  # connections of it that the successor's size covers
        self.start_error: BaseException | None = None
        self.created_at = clock()
        self.last_used = self.created_at
        self._slots = asyncio.Semaphore(max_size)
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
        """Create the pool and open its first connection; on failure the actor is closed and
        `start_error` says why (waiters read it after `wait_started`)."""
        try:
            async with asyncio.timeout(connect_timeout + 1.0):
                self.pool = await factory(self.info, self.max_size)
                conn = await self.pool.acquire(timeout=connect_timeout)
                await self.pool.release(conn, timeout=RELEASE_TIMEOUT)
        except BaseException as exc:
            self.start_error = exc
            self.state = ActorState.CLOSED
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
            try:
                await asyncio.wait_for(self._slots.acquire(), lease_timeout)
            except TimeoutError:
                raise SlotTimeout() from None
            try:
                if self.state is not ActorState.READY:
                    raise ActorGone()
                # A slot is free, so the pool has a free holder: a timeout here is a slow connect.
                return await pool.acquire(timeout=connect_timeout)
            except BaseException:
                self._slots.release()
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
            self._slots.release()
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
        """`SELECT 1` through a free slot; False (skipped) when every slot is leased."""
        if self.state is not ActorState.READY or self.pool is None or self._slots.locked():
            return False
        await self._slots.acquire()  # free: locked() was False and nothing awaited since
        self.probing = True
        try:
            await probe(self.pool, timeout)
        finally:
            self.probing = False
            self._slots.release()
        return True

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
