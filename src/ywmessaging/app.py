"""create_app(settings): middlewares, cleanup contexts in order, routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import structlog
from aiohttp import web

from . import contract, keys, routes, sqlq
from .auth.wiring import setup_auth
from .church.wiring_a import setup_church_a
from .church.wiring_b import setup_church_b
from .config import Settings
from .cors import BrowserPolicy, parse_origins
from .db import migrations, pg
from .db.dsn import PgTarget
from .forwarded import forwarded_middleware, parse_trusted
from .messaging.wiring_a import setup_messaging_a
from .messaging.wiring_b import setup_messaging_b
from .middlewares import root_middlewares
from .observability.logs import logging_ctx
from .observability.metrics import Metrics
from .tenants.wiring import setup_supervisor
from .time_limits import time_limit_middleware

POOL_CLOSE_TIMEOUT = 10.0

# A plug-in adds its cleanup contexts (after the registry pool's), root routes, and `/api/v1`
# middlewares and routes through `app[keys.API_V1]`. Plug-ins run in this order, after the core
# is assembled and before `/api/v1` is mounted (mounting freezes the sub-application). Auth
# comes after the supervisor: it puts its token check before the lease middleware (it sets the
# tenant id the lease reads) and its session check after it (it queries the leased connection).
Plugin = Callable[[web.Application, Settings], None]
PLUGINS: tuple[Plugin, ...] = (
    setup_supervisor, setup_auth, setup_messaging_a, setup_church_a, setup_church_b,
    setup_messaging_b,
)

log = structlog.get_logger("ywmessaging.app")


def create_app(settings: Settings, plugins: Sequence[Plugin] = PLUGINS) -> web.Application:
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
    # One resource per context, opened in this order and closed in reverse; plug-ins append
    # theirs after these (the tenant pool supervisor, then auth, which need the registry pool).
    app.cleanup_ctx.extend([logging_ctx, queries_ctx, registry_pool_ctx])
    app.on_shutdown.append(start_draining)
    routes.setup_root(app)
    app[keys.API_V1] = routes.build_api_v1(settings)
    for plugin in plugins:
        plugin(app, settings)
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
