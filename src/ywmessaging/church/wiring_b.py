"""Plug part B of the church API (imports and export, templates, church profile, analytics,
onboarding, NPS, audit log) into `/api/v1`, with the runner of background import jobs."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import web

from ..config import Settings
from ..errors import ServiceUnavailable
from ..keys import API_V1
from ..tenants.keys import SUPERVISOR
from . import import_jobs

log = structlog.get_logger("ywm.imports")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
LEASE_TRIES = 6            # a job waits out a busy or briefly unreachable tenant (about 15 s)
STOP_TIMEOUT_S = 10.0


class ImportRunner:
    """The background import jobs of this process, owned by one TaskGroup.

    A job cancelled at shutdown stays `running` in its row and is resumed (by whichever
    process is asked about it first) once it has been idle for import_jobs.STALE_S.
    """

    def __init__(self, settings: Settings, supervisor: Any) -> None:
        self.settings = settings
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
                await import_jobs.run_job(lambda: self._lease(tenant_id), self.settings,
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


IMPORT_RUNNER = web.AppKey("import_runner", ImportRunner)


def import_runner(request: web.Request) -> ImportRunner:
    """The import runner of the running application."""
    return request.config_dict[IMPORT_RUNNER]


def setup_church_b(app: web.Application, settings: Settings) -> None:
    """Add part B's routes and the import runner (a plug-in run after `setup_auth`)."""
    from ..api import analytics, audit_log, church, imports, nps, onboarding, templates

    api = app[API_V1]
    for module in (imports, templates, church, analytics, onboarding, nps, audit_log):
        api.router.add_routes(module.routes)
    app.cleanup_ctx.append(import_runner_ctx(settings))


def import_runner_ctx(settings: Settings) -> CleanupCtx:
    """A cleanup context owning the import jobs (closed before the tenant supervisor)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        runner = ImportRunner(settings, app[SUPERVISOR].supervisor)
        owner = asyncio.create_task(runner.own(), name="import_runner")
        await asyncio.wait_for(runner.ready(), STOP_TIMEOUT_S)
        app[IMPORT_RUNNER] = runner
        yield
        await runner.stop()
        try:
            await asyncio.wait_for(owner, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("import_runner_stop_timeout", timeout_s=STOP_TIMEOUT_S)

    return ctx
