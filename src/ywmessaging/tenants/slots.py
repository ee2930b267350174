"""An actor's charge: the connections it may hold, as lease slots that grow and are trimmed.

The charge is counted against its server's budget by the supervisor (roster.used). It starts at
1 and is the number of lease *slots*; the asyncpg pool opens a connection only for a slot holder
that finds no idle one, so the pool never holds more connections than the charge. A lease that
finds every slot taken asks the supervisor for one more (`grow`), which raises the charge
*before* the slot exists, so before the connection can be opened. `trim` closes idle
connections beyond one once the pool has not needed more for a while, and only then lowers the
charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

import structlog

from .pools import PoolLike, close_connection

log = structlog.get_logger("ywm.tenant_pool")

Clock = Callable[[], float]
# A lease that finds every slot taken waits this long before the pool grows: about what a new
# connection takes to open (5-30 ms, and as much server CPU with SCRAM), more than most waits
# for a slot of a pool that is not really short of connections.
GROW_AFTER = 0.02
TRIM_AFTER = 5.0  # seconds without two slots taken at once before a grown pool is trimmed


class Slots:
    """`charge` slots (1 to `max_size`); `may_grow` asks whether the budget has one more."""

    def __init__(self, max_size: int, clock: Clock, may_grow: Callable[[], bool],
                 now: float) -> None:
        self.max_size = max_size
        self.charge = 1   # slots = connections charged to the server's budget
        self.held = 0     # slots taken by leases, a probe or the parked first connection
        self.crowded_at = now  # when more than one slot was last taken at once
        self.trimming = False
        self._clock = clock
        self._may_grow = may_grow
        self._free = asyncio.Semaphore(1)

    def all_taken(self) -> bool:
        """Whether taking a slot now would wait."""
        return self._free.locked()

    async def take(self) -> None:
        """One slot (waits for one to be given back)."""
        await self._free.acquire()
        self.held += 1
        if self.held > 1:
            self.crowded_at = self._clock()

    def give(self) -> None:
        """Give back a slot from `take`."""
        self.held -= 1
        self._free.release()

    async def take_or_grow(self) -> None:
        """A slot; when every one is taken for GROW_AFTER, one more if the budget allows."""
        if self._free.locked():
            self.crowded_at = self._clock()
            try:
                async with asyncio.timeout(GROW_AFTER):
                    await self.take()
                return
            except TimeoutError:
                self._grow()
        await self.take()

    def _grow(self) -> None:
        """Every slot is taken: one more if the supervisor charges it to the budget now."""
        if self.charge < self.max_size and not self.trimming and self._may_grow():
            self.charge += 1
            self._free.release()

    def trimmable(self, now: float, after: float) -> bool:
        """Grown, and not more than one slot taken at once for `after` seconds."""
        return (self.charge > max(1, self.held) and not self.trimming
                and now - self.crowded_at >= after)

    async def trim(self, pool: PoolLike, timeout: float, tenant_id: uuid.UUID) -> int:
        """Close idle connections beyond one (or beyond the slots taken now) and lower the
        charge to match; returns the charge given back. Opens nothing: the spare slots are
        taken first (free, so without waiting) and the pool is asked only for idle ones.

        Every connection the pool holds or will open is idle or a slot holder's, so the
        charge never goes below idle connections + slots taken (≥ 1)."""
        if self.trimming or self.charge <= max(1, self.held):
            return 0
        self.trimming = True  # no growth meanwhile: leases wait for the slots they have
        taken, conn = 0, None
        try:
            while taken < self.charge - max(1, self.held) and not self._free.locked():
                await self._free.acquire()  # free: no wait
                taken += 1
            async with asyncio.timeout(timeout):
                while pool.get_idle_size() > 0 and (
                        pool.get_idle_size() + self.held > max(1, self.charge - taken)):
                    conn = await pool.acquire()  # an idle one (no timeout: no task switch)
                    await close_connection(pool, conn)
                    conn = None
        except Exception as exc:
            log.warning("tenant_pool_trim_failed", tenant_id=str(tenant_id),
                        error=type(exc).__name__)
        finally:
            if conn is not None:  # failed or cancelled halfway: cut it (it was idle)
                with contextlib.suppress(Exception):
                    conn.terminate()
            floor = max(1, pool.get_idle_size() + self.held)
            drop = max(0, min(taken, self.charge - floor))
            self.charge -= drop
            for _ in range(taken - drop):
                self._free.release()
            self.trimming = False
        return drop
