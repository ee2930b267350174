"""The church package's resources: the runners of background import and export jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from ..keys import REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .export_runner import ExportRunner
from .import_runner import ImportRunner
from .job_runner import JobRunner
from .keys import EXPORT_RUNNER, IMPORT_RUNNER

log = structlog.get_logger("ywm.jobs")
STOP_TIMEOUT_S = 10.0


async def import_jobs(app: web.Application) -> AsyncIterator[None]:
    """The import runner's TaskGroup (jobs cancelled, and resumable, before the tenant
    supervisor they lease from closes)."""
    runner = ImportRunner(app[SETTINGS], app[SUPERVISOR].supervisor, app[REGISTRY_POOL])
    app[IMPORT_RUNNER] = runner
    async with _owned(runner, "import_runner"):
        yield


async def export_jobs(app: web.Application) -> AsyncIterator[None]:
    """The export runner's TaskGroup (jobs cancelled, and marked failed, before the tenant
    supervisor they lease from closes)."""
    runner = ExportRunner(app[SETTINGS], app[SUPERVISOR].supervisor, app[REGISTRY_POOL])
    app[EXPORT_RUNNER] = runner
    async with _owned(runner, "export_runner"):
        yield


@asynccontextmanager
async def _owned(runner: JobRunner, name: str) -> AsyncIterator[None]:
    """Run a runner's owner task for the life of the block; stop it (bounded) after."""
    owner = asyncio.create_task(runner.own(), name=name)
    await asyncio.wait_for(runner.ready(), STOP_TIMEOUT_S)
    try:
        yield
    finally:
        await runner.stop()
        try:
            await asyncio.wait_for(owner, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning(f"{name}_stop_timeout", timeout_s=STOP_TIMEOUT_S)
