"""Plug the tenant pool supervisor into the application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from ..api import ops
from ..config import Settings
from ..crypto import SecretBox
from ..keys import API_V1, METRICS, REGISTRY_POOL
from .keys import SUPERVISOR
from .middleware import lease_middleware
from .runtime import open_supervisor
from .status import pool_cap

log = structlog.get_logger("ywm.supervisor")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def setup_supervisor(app: web.Application, settings: Settings) -> None:
    """Add the supervisor's cleanup context, `GET /ops/tenants/{id}/pool` and the lease
    middleware of the `/api/v1` sub-application.

    Call it from create_app after the registry pool's cleanup context is added (the supervisor
    uses that pool) and after `app[keys.API_V1]` is set with its authentication middleware, but
    before the sub-application is mounted (mounting freezes its middlewares).
    """
    app.cleanup_ctx.append(supervisor_ctx(settings))
    app.router.add_get("/ops/tenants/{id}/pool", ops.tenant_pool, name="ops_tenant_pool")
    app[API_V1].middlewares.append(lease_middleware())


def supervisor_ctx(settings: Settings, kind: str = "api") -> CleanupCtx:
    """A cleanup context running the process's PoolSupervisor (closed before the registry
    pool it uses)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        box = SecretBox(settings.require_secret_key())
        runtime = await open_supervisor(settings, box, app[REGISTRY_POOL], kind=kind,
                                        collector_registry=app[METRICS].registry)
        app[SUPERVISOR] = runtime
        log.info("tenant_supervisor_started", cap=pool_cap(runtime.supervisor),
                 cap_set=settings.tenant_pool_cap, pool_max=settings.tenant_pool_max)
        yield
        await runtime.close()
        log.info("tenant_supervisor_stopped")

    return ctx
