"""Background jobs of one process (member imports, full exports): one TaskGroup per kind,
started and stopped by a cleanup context in plugins.py; a job leases its church's connections
through the tenant supervisor, retrying a busy or briefly unreachable church."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog

from ..config import Settings
from ..errors import ServiceUnavailable

log = structlog.get_logger("ywm.jobs")

LEASE_TRIES = 6            # a job waits out a busy or briefly unreachable tenant (about 15 s)


class JobRunner:
    """The background jobs of one kind in this process, owned by one TaskGroup; subclasses
    say what a job does (`run`)."""

    kind = "job"
    # whether a job also runs for a suspended church (an export does: a suspended church may
    # still take its data away; an import does not)
    while_suspended = False

    def __init__(self, settings: Settings, supervisor: Any, registry_pool: Any) -> None:
        self.settings = settings
        self._registry = registry_pool
        self._supervisor = supervisor
        self._group: asyncio.TaskGroup | None = None
        self._running: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Task[None]] = {}
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    async def own(self) -> None:
        """Hold the TaskGroup until stop(); then cancel the jobs and wait for them."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._ready.set()
            await self._stop.wait()
            self._group = None
            for task in list(self._running.values()):
                task.cancel()

    def start(self, tenant_id: uuid.UUID, job_id: Any) -> None:
        """Run a job in the background (no-op if this process already runs it)."""
        key = (tenant_id, uuid.UUID(str(job_id)))
        if self._group is None or key in self._running:
            return
        task = self._group.create_task(self._job(*key), name=f"{self.kind}_job_{key[1]}")
        self._running[key] = task
        task.add_done_callback(lambda _t: self._running.pop(key, None))

    def running(self, tenant_id: uuid.UUID, job_id: Any) -> bool:
        """Whether this process runs that job now."""
        return (tenant_id, uuid.UUID(str(job_id))) in self._running

    async def _job(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        with structlog.contextvars.bound_contextvars(tenant_id=str(tenant_id)):
            try:
                await self.run(tenant_id, job_id)
            except Exception:  # never let one job's failure cancel the others
                log.exception(f"{self.kind}_job_crashed", job_id=str(job_id))

    async def run(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        """Do one job (subclasses)."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def lease(self, tenant_id: uuid.UUID) -> AsyncIterator[Any]:
        """A tenant connection, retrying a busy or unavailable tenant with backoff."""
        async with contextlib.AsyncExitStack() as stack:
            for attempt in range(LEASE_TRIES):
                try:
                    conn = await stack.enter_async_context(self._supervisor.lease(
                        tenant_id, suspended_ok=self.while_suspended))
                    break
                except ServiceUnavailable:
                    if attempt == LEASE_TRIES - 1:
                        raise
                    await asyncio.sleep(0.5 * 2 ** attempt)
            yield conn

    async def ready(self) -> None:
        """Wait until the TaskGroup is open."""
        await self._ready.wait()

    async def stop(self) -> None:
        """Ask the owner to cancel the jobs."""
        self._stop.set()
