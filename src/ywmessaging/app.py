"""create_app(settings): middlewares, cleanup contexts in order, routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import structlog
from aiohttp import web

from . import contract, keys, routes, sqlq
from .auth.plugins import auth_services
from .billing.plugins import stripe_billing
from .church.plugins import export_jobs, import_jobs
from .config import Settings
from .cors import BrowserPolicy, parse_origins
from .db import migrations, pg
from .db.dsn import PgTarget
from .events.plugins import close_sockets, live_events
from .forwarded import forwarded_middleware, parse_trusted
from .integrations.plugins import planning_center
from .messaging.plugins import carrier_client, carrier_webhooks
from .middlewares import root_middlewares
from .observability.logs import logging_ctx
from .observability.metrics import Metrics
from .tenants.plugins import tenant_pools
from .time_limits import time_limit_middleware

POOL_CLOSE_TIMEOUT = 10.0

# A plug-in is a cleanup context of one package: its resources and background tasks, opened
# after the core's and closed before them. Each needs only the core (settings, metrics, the
# named queries, the registry pool, the tenant pool supervisor), never another plug-in, so
# their order is free. Routes and the `/api/v1` middlewares are in routes.py.
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
PLUGINS: tuple[CleanupCtx, ...] = (auth_services, live_events, carrier_client, carrier_webhooks,
                                   import_jobs, export_jobs, stripe_billing, planning_center)

log = structlog.get_logger("ywmessaging.app")


def create_app(settings: Settings,
               plugins: Sequence[CleanupCtx] = PLUGINS) -> web.Application:
    """The root application; nothing is opened until it starts."""
    metrics = Metrics()
    middlewares = root_middlewares(metrics)
    proxies = parse_trusted(settings.trusted_proxies)
    if proxies:   # outermost: everything after it sees the client's address
        middlewares.insert(0, forwarded_middleware(proxies))
    # innermost, after the error middleware (which renders their 403 and 504): CORS preflights
    # are answered before routing; every other request runs under its route's time limit
    browser = BrowserPolicy(parse_origins(settings.cors_origins), settings.hsts_seconds)
    middlewares.extend(browser.middlewares())
    middlewares.append(time_limit_middleware(settings))
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app.on_response_prepare.append(browser.on_prepare)  # security and CORS headers
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    app[keys.DRAINING] = asyncio.Event()
    app[keys.CONTRACT] = contract.load()   # a spec that does not compile stops the boot
    # The core: one resource per context, opened in this order and closed in reverse.
    app.cleanup_ctx.extend([logging_ctx, queries_ctx, registry_pool_ctx, tenant_pools])
    app.cleanup_ctx.extend(plugins)
    app.on_shutdown.append(start_draining)
    app.on_shutdown.append(close_sockets)   # open WebSockets would hold graceful shutdown up
    routes.add_root_routes(app)
    app[keys.API_V1] = routes.build_api_v1()
    app.add_subapp("/api/v1", app[keys.API_V1])
    return app


async def queries_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load every named query (and the schema version the code needs) before any connection.

    A broken query file or migration name stops the boot here, not at the first request.
    """
    sql_dir = app[keys.SETTINGS].sql_dir
    app[keys.REGISTRY_QUERIES] = sqlq.registry(sql_dir)
    app[keys.TENANT_QUERIES] = sqlq.tenant(sql_dir)
    app[keys.REGISTRY_SCHEMA_VERSION] = migrations.code_version(sql_dir, "registry")
    yield


async def registry_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The registry connection pool (lazy: opening it connects nothing)."""
    settings = app[keys.SETTINGS]
    target = PgTarget.parse(settings.require_database_url())
    # No reset round trip when a connection goes back: registry queries leave no session
    # state (only transaction-scoped advisory locks; LISTEN has its own connection).
    pool = await pg.create_pool(target, max_size=settings.registry_pool_max,
                                reset=pg.keep_session)
    app[keys.REGISTRY_POOL] = pool
    collector = app[keys.METRICS].watch_pool(
        "ywm_registry_pool_connections", "Registry pool connections by state.", pool
    )
    log.info("registry_pool_opened", registry=target.describe(),
             max_size=settings.registry_pool_max)
    yield
    app[keys.METRICS].unwatch(collector)
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT)
    except TimeoutError:
        log.warning("registry_pool_close_timeout", timeout_s=POOL_CLOSE_TIMEOUT)
        pool.terminate()


async def start_draining(app: web.Application) -> None:
    """on_shutdown: /readyz turns 503 while in-flight requests finish."""
    app[keys.DRAINING].set()
    log.info("draining_started")
