"""The runner of background import jobs: one TaskGroup per process (started and stopped by the
`import_jobs` cleanup context in plugins.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog

from ..billing.state import entitlement
from ..config import Settings
from ..errors import ServiceUnavailable
from . import import_jobs

log = structlog.get_logger("ywm.imports")

LEASE_TRIES = 6            # a job waits out a busy or briefly unreachable tenant (about 15 s)


class ImportRunner:
    """The background import jobs of this process, owned by one TaskGroup.

    A job cancelled at shutdown stays `running` in its row and is resumed (by whichever
    process is asked about it first) once it has been idle for import_jobs.STALE_S.
    """

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

    def start(self, tenant_id: uuid.UUID, import_id: Any) -> None:
        """Run a stored job in the background (no-op if this process already runs it)."""
        key = (tenant_id, uuid.UUID(str(import_id)))
        if self._group is None or key in self._running:
            return
        task = self._group.create_task(self._job(*key), name=f"import_job_{key[1]}")
        self._running[key] = task
        task.add_done_callback(lambda _t: self._running.pop(key, None))

    def resume_if_abandoned(self, tenant_id: uuid.UUID, job: dict[str, Any]) -> None:
        """Start a job nobody seems to run (queued, or running without progress)."""
        if (tenant_id, uuid.UUID(job["id"])) in self._running:
            return
        age = (datetime.datetime.now(datetime.UTC) - job["updated_at"]).total_seconds()
        if import_jobs.resumable(job, age):
            self.start(tenant_id, job["id"])

    async def _job(self, tenant_id: uuid.UUID, import_id: uuid.UUID) -> None:
        with structlog.contextvars.bound_contextvars(tenant_id=str(tenant_id)):
            try:
                ent = await entitlement(self._registry, self.settings, tenant_id,
                                        datetime.datetime.now(datetime.UTC))
                await import_jobs.run_job(lambda: self._lease(tenant_id), self.settings, ent,
                                          import_id)
            except Exception:  # never let one job's failure cancel the others
                log.exception("import_job_crashed", import_id=str(import_id))

    @contextlib.asynccontextmanager
    async def _lease(self, tenant_id: uuid.UUID) -> AsyncIterator[Any]:
        """A tenant connection, retrying a busy or unavailable tenant with backoff."""
        async with contextlib.AsyncExitStack() as stack:
            for attempt in range(LEASE_TRIES):
                try:
                    conn = await stack.enter_async_context(self._supervisor.lease(tenant_id))
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

