"""What the supervisor knows about a tenant before opening its database, cached briefly.

The cache is invalidated per tenant by `ywm_tenant_changed` notifications (see listener.py).
While the listener is connected no change can go unheard, so a known tenant's entry is used
until a notification drops it: a cold request then costs no registry round trip. While the
listener is down (and for "no such tenant", which no notification would correct) entries last
only the TTL, so a missed notification heals on its own; each reconnect drops the whole cache.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import TenantNotFound, TenantSchemaOutdated, TenantSuspended, TenantUnavailable
from ..sqlq import registry as rq

Clock = Callable[[], float]
LOOKUP_TIMEOUT = 5.0
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class TenantInfo:
    """One tenant's registry row joined to its server, as the supervisor uses it."""

    id: uuid.UUID
    status: str
    schema_version: int
    server_id: int
    server_name: str
    server_state: str
    host: str
    port: int
    db_name: str
    db_role: str
    password_enc: bytes
    conn_budget: int
    row_version: int = 1

    @classmethod
    def from_row(cls, row: Any) -> TenantInfo:
        """Build from a `sup_tenant` row."""
        return cls(
            id=row["id"], status=row["status"], schema_version=row["schema_version"],
            server_id=row["server_id"], server_name=row["server_name"],
            server_state=row["server_state"], host=row["server_host"], port=row["server_port"],
            db_name=row["db_name"], db_role=row["db_role"],
            password_enc=bytes(row["db_password_enc"]), conn_budget=row["conn_budget"],
            row_version=row["row_version"],
        )

    def placement(self) -> tuple[object, ...]:
        """Where and as whom the pool connects; a change means the pool must be reopened."""
        return (self.server_id, self.host, self.port, self.db_name, self.db_role,
                self.password_enc)


def gate(info: TenantInfo | None, need_version: int, *, suspended_ok: bool = False) -> TenantInfo:
    """The tenant if a lease may be given for it now, else the error the client should see.

    `suspended_ok`: a suspended church is leased too (its billing, export and deletion routes,
    and inbound STOP/START/HELP, which must never be lost: ops/runbook-lifecycle.md)."""
    if info is None or info.status not in ("active", "suspended"):
        raise TenantNotFound()
    if info.status == "suspended" and not suspended_ok:
        raise TenantSuspended()
    if info.schema_version < need_version:
        raise TenantSchemaOutdated(
            f"schema version {info.schema_version}, this release needs {need_version}",
            headers={"Retry-After": "30"},
        )
    if info.server_state == "down":
        raise TenantUnavailable("the church's database server is down",
                                headers={"Retry-After": "30"})
    return info


class Lookup(Protocol):
    """Where the supervisor gets TenantInfo (the registry in production, a dict in tests)."""

    async def get(self, tenant_id: uuid.UUID) -> TenantInfo | None: ...
    def invalidate(self, tenant_id: uuid.UUID) -> None: ...
    def clear(self) -> None: ...


class TenantDirectory:
    """Registry look-ups with a TTL cache and one query in flight per tenant."""

    def __init__(self, registry_pool: Any, sql_dir: Any, ttl: float,
                 clock: Clock = time.monotonic) -> None:
        self._pool = registry_pool
        self._q = rq(sql_dir)
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[uuid.UUID, tuple[float, TenantInfo | None]] = {}
        # One fetch task per tenant; callers await it through asyncio.shield, so a caller
        # that is cancelled (its client went away) never cancels the fetch the others share.
        self._inflight: dict[uuid.UUID, asyncio.Task[TenantInfo | None]] = {}
        self._epoch = 0  # bumped by invalidations so an in-flight fetch is not cached stale
        # Whether every change is being heard now (the listener is connected).
        self.trusted: Callable[[], bool] = lambda: False

    async def get(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        """The tenant's info (None if no such row), from the cache when fresh."""
        hit = self._cache.get(tenant_id)
        if hit is not None and (hit[0] > self._clock()
                                or (hit[1] is not None and self.trusted())):
            return hit[1]
        task = self._inflight.get(tenant_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._fetch(tenant_id, self._epoch), name=f"tenant-lookup-{tenant_id}")
            self._inflight[tenant_id] = task
            task.add_done_callback(lambda t: self._done(tenant_id, t))
        return await asyncio.wait_for(asyncio.shield(task), LOOKUP_TIMEOUT)

    async def _fetch(self, tenant_id: uuid.UUID, epoch: int) -> TenantInfo | None:
        row = await self._q.sup_tenant(self._pool, tenant_id, timeout=LOOKUP_TIMEOUT)
        info = TenantInfo.from_row(row) if row is not None else None
        if epoch == self._epoch:
            self._store(tenant_id, info)
        return info

    def _done(self, tenant_id: uuid.UUID, task: asyncio.Task[TenantInfo | None]) -> None:
        if self._inflight.get(tenant_id) is task:
            del self._inflight[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved here: waiters (if any are left) re-raise it

    def _store(self, tenant_id: uuid.UUID, info: TenantInfo | None) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
        self._cache[tenant_id] = (now + self.ttl, info)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        """Forget one tenant (its row changed); later callers do not join a fetch that began
        before the change."""
        self._epoch += 1
        self._cache.pop(tenant_id, None)
        self._inflight.pop(tenant_id, None)

    def clear(self) -> None:
        """Forget everything (notifications may have been missed)."""
        self._epoch += 1
        self._cache.clear()
        self._inflight.clear()
