"""`ywm serve`: check the registry schema, then serve the HTTP API until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import errno
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from ..app import create_app
from ..config import Settings
from ..db import migrations, pg
from ..db.dsn import PgTarget
from ..errors import OperationError
from ..observability.logs import configure

_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def check_registry_schema(settings: Settings) -> int:
    """The registry's schema version, or an OperationError telling the operator what to do."""
    target = PgTarget.parse(settings.require_database_url())
    needed = migrations.code_version(settings.sql_dir, "registry")
    try:
        conn = await pg.connect(target)
    except Exception as exc:
        raise OperationError(
            f"cannot reach the registry at {target.describe()} ({type(exc).__name__}); "
            "check DATABASE_URL, or run `ywm migrate` if the database does not exist yet"
        ) from exc
    try:
        have = await migrations.registry_schema_version(conn, timeout=pg.CONNECT_TIMEOUT)
    finally:
        await conn.close()
    if have < needed:
        raise OperationError(
            f"registry schema is at version {have}, this code needs {needed}: run `ywm migrate`"
        )
    return have


def run_server(
    app: web.Application, settings: Settings, host: str, port: int,
    loop: asyncio.AbstractEventLoop, on_listening: Callable[[str], None] | None = None,
) -> int:
    """Serve `app` on `loop` until SIGTERM/SIGINT, letting requests finish (closes `loop`)."""

    def listening(_banner: str) -> None:
        if on_listening is not None:
            on_listening(f"http://{host}:{port}")

    try:
        web.run_app(
            app, host=host, port=port, loop=loop, handle_signals=True,
            shutdown_timeout=settings.shutdown_timeout, access_log=None, print=listening,
        )
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        raise OperationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check configuration and schema, then serve."""
    settings.require_database_url()
    settings.require_secret_key()
    configure(settings)
    loop = new_loop()
    try:
        loop.run_until_complete(check_registry_schema(settings))
    except BaseException:
        loop.close()
        raise
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    log = structlog.get_logger("ywmessaging.serve")
    return run_server(
        create_app(settings), settings, host, port, loop,
        on_listening=lambda url: log.info("http_server_listening", url=url),
    )


def register(sub: Any) -> None:
    """Add `ywm serve`."""
    p = sub.add_parser("serve", help="serve the HTTP API (needs DATABASE_URL and YWM_SECRET_KEY)")
    p.add_argument("--host", help="address to bind (default: YWM_HOST)")
    p.add_argument("--port", type=int, help="port to bind (default: YWM_PORT)")
    p.set_defaults(func=run)
