"""The tenant pool supervisor as a cleanup context (part of every application's core)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..crypto import SecretBox
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from .keys import SUPERVISOR
from .runtime import open_supervisor
from .status import pool_cap

log = structlog.get_logger("ywm.supervisor")


async def tenant_pools(app: web.Application) -> AsyncIterator[None]:
    """The process's PoolSupervisor and its listener (closed before the registry pool they
    use); `/api/v1` leases from it per request."""
    settings = app[SETTINGS]
    box = SecretBox(settings.require_secret_key())
    runtime = await open_supervisor(settings, box, app[REGISTRY_POOL], kind="api",
                                    collector_registry=app[METRICS].registry)
    app[SUPERVISOR] = runtime
    log.info("tenant_supervisor_started", cap=pool_cap(runtime.supervisor),
             cap_set=settings.tenant_pool_cap, pool_max=settings.tenant_pool_max)
    yield
    await runtime.close()
    log.info("tenant_supervisor_stopped")
