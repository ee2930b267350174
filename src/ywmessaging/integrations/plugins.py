"""The integrations package's resources: the Planning Center HTTP client and the sync
runner with its schedule, in every API process (the `planning_center` cleanup context: runs
started by a connection, a request or a webhook) and in every `ywm worker` (`pco_runtime`:
scheduled runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from ..config import Settings
from ..crypto import SecretBox
from ..keys import REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .keys import PCO, PCO_RUNNER
from .pco_client import PcoHttp
from .pco_connection import Pco
from .pco_runner import PcoRunner

log = structlog.get_logger("ywm.pco")
STOP_TIMEOUT_S = 10.0


@asynccontextmanager
async def pco_runtime(settings: Settings, supervisor: Any, registry: Any
                      ) -> AsyncIterator[PcoRunner]:
    """The client (closed last) and the runner's TaskGroup with its schedule (runs
    cancelled, and resumable, before the tenant supervisor they lease from closes)."""
    http = PcoHttp(settings)
    pco = Pco(settings, SecretBox(settings.require_secret_key()), http, registry)
    runner = PcoRunner(settings, supervisor, registry, pco)
    owner = asyncio.create_task(runner.own(), name="pco_runner")
    try:
        await asyncio.wait_for(runner.ready(), STOP_TIMEOUT_S)
        runner.start_schedule()
        yield runner
    finally:
        await runner.stop()
        try:
            await asyncio.wait_for(owner, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("pco_runner_stop_timeout", timeout_s=STOP_TIMEOUT_S)
        await http.close()


async def planning_center(app: web.Application) -> AsyncIterator[None]:
    """`pco_runtime` for the life of the app, under PCO and PCO_RUNNER."""
    async with pco_runtime(app[SETTINGS], app[SUPERVISOR].supervisor,
                           app[REGISTRY_POOL]) as runner:
        app[PCO] = runner.pco
        app[PCO_RUNNER] = runner
        yield
