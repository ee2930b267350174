"""The integrations package's resources: the Planning Center HTTP client and the sync
runner with its schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..crypto import SecretBox
from ..keys import REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .keys import PCO, PCO_RUNNER
from .pco_client import PcoHttp
from .pco_connection import Pco
from .pco_runner import PcoRunner

log = structlog.get_logger("ywm.pco")
STOP_TIMEOUT_S = 10.0


async def planning_center(app: web.Application) -> AsyncIterator[None]:
    """The client (closed last) and the runner's TaskGroup (runs cancelled, and resumable,
    before the tenant supervisor they lease from closes)."""
    settings = app[SETTINGS]
    http = PcoHttp(settings)
    pco = Pco(settings, SecretBox(settings.require_secret_key()), http, app[REGISTRY_POOL])
    runner = PcoRunner(settings, app[SUPERVISOR].supervisor, app[REGISTRY_POOL], pco)
    app[PCO] = pco
    app[PCO_RUNNER] = runner
    owner = asyncio.create_task(runner.own(), name="pco_runner")
    await asyncio.wait_for(runner.ready(), STOP_TIMEOUT_S)
    runner.start_schedule()
    try:
        yield
    finally:
        await runner.stop()
        try:
            await asyncio.wait_for(owner, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("pco_runner_stop_timeout", timeout_s=STOP_TIMEOUT_S)
        await http.close()
