"""The church package's resources: the runner of background import jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..keys import REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .import_runner import ImportRunner
from .keys import IMPORT_RUNNER

log = structlog.get_logger("ywm.imports")
STOP_TIMEOUT_S = 10.0


async def import_jobs(app: web.Application) -> AsyncIterator[None]:
    """The import runner's TaskGroup (jobs cancelled, and resumable, before the tenant
    supervisor they lease from closes)."""
    runner = ImportRunner(app[SETTINGS], app[SUPERVISOR].supervisor, app[REGISTRY_POOL])
    owner = asyncio.create_task(runner.own(), name="import_runner")
    await asyncio.wait_for(runner.ready(), STOP_TIMEOUT_S)
    app[IMPORT_RUNNER] = runner
    yield
    await runner.stop()
    try:
        await asyncio.wait_for(owner, STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("import_runner_stop_timeout", timeout_s=STOP_TIMEOUT_S)
