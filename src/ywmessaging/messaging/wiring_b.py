"""Plug broadcasts, recurring messages and conversations into `/api/v1`; and the in-process
worker that `ywm dev` runs next to the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from ..config import Settings
from ..keys import API_V1, METRICS, REGISTRY_POOL, SETTINGS
from ..tenants.keys import SUPERVISOR
from .carrier import carrier_from_settings
from .worker import Worker

log = structlog.get_logger("ywm.worker")
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
STOP_TIMEOUT_S = 15.0


def setup_messaging_b(app: web.Application, settings: Settings) -> None:
    """Add the broadcasts, recurring and conversations routes (a plug-in run after
    `setup_auth`)."""
    from ..api import broadcasts, conversations, recurring  # handlers import this package

    api = app[API_V1]
    api.router.add_routes(broadcasts.routes)
    api.router.add_routes(recurring.routes)
    api.router.add_routes(conversations.routes)


def worker_ctx() -> CleanupCtx:
    """A cleanup context running one Worker inside the application (for `ywm dev`): it shares
    the app's registry pool and tenant supervisor and reads the app's settings at start-up
    (so the carrier simulator's address set by `ywm dev` applies). Append it after the
    supervisor's context; SIGTERM stops it like `ywm worker`."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        carrier = carrier_from_settings(settings, app[METRICS])
        worker = Worker(settings, app[REGISTRY_POOL], app[SUPERVISOR].supervisor, carrier,
                        metrics=app[METRICS])
        task = asyncio.create_task(worker.run(), name="dev-worker")
        yield
        worker.stop()
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
        except (TimeoutError, Exception) as exc:
            log.warning("dev_worker_stop_failed", error=type(exc).__name__)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await carrier.close()

    return ctx
