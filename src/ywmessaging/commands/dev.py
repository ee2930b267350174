"""`ywm dev`: one command, no setup — embedded PostgreSQL, migrated registry, then serve."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shutil
import socket
from typing import Any

from aiohttp import web

from ..app import create_app
from ..config import Settings
from ..cors import origin_of, parse_origins
from ..db import embedded
from ..db.dsn import PgTarget
from ..errors import ConfigError, OperationError
from ..messaging.plugins import sending
from ..observability.logs import configure
from ..ops.bootstrap import bootstrap
from . import carrier_sim, devdeploy, pco_sim, stripe_sim
from .serve import new_loop, run_server


def say(line: str) -> None:
    """One progress line for the developer."""
    print(f"dev: {line}", flush=True)


def dev_secret_key(settings: Settings) -> str:
    """YWM_SECRET_KEY, else the key kept in `<data_dir>/secret_key` (created on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(36) + "\n")  # 48 characters
        say(f"created a development secret key in {path}")
    path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds a key shorter than 32 characters: delete it to renew")
    return key


def dev_cors(settings: Settings) -> Settings:
    """`ywm dev`: the frontend's origin (YWM_FRONTEND_URL) may call the API from a browser."""
    origins = parse_origins(settings.cors_origins)
    frontend = origin_of(settings.frontend_url)
    if frontend in origins:
        return settings
    return settings.with_(cors_origins=",".join((*origins, frontend)))


def add_dev_services(app: web.Application, settings: Settings) -> None:
    """Companions that only `ywm dev` runs, each as a cleanup context on `app`.

    The carrier simulator, the Stripe simulator, the Planning Center simulator and an
    in-process outbox worker:
    `app.cleanup_ctx.append(...)` here, plus one `say(...)` line each.
    """
    app.cleanup_ctx.append(carrier_sim.dev_ctx(settings))  # carrier simulator (:8081)
    app.cleanup_ctx.append(stripe_sim.dev_ctx(settings))   # Stripe simulator (:8082)
    app.cleanup_ctx.append(pco_sim.dev_ctx(settings))      # Planning Center simulator (:8083)
    app.cleanup_ctx.append(sending)  # the outbox worker, in-process
    say("outbox worker runs in-process (scheduled, recurring and queued messages)")


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (a second `ywm dev`, say)."""
    if port == 0:
        return False
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False   # the bind itself will say what is wrong with the address
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def check_ports(settings: Settings, host: str, port: int) -> None:
    """Refuse in one line, before anything starts, when a port `ywm dev` needs is taken."""
    wanted = [("the API", host, port)]
    if carrier_sim.uses_default_simulator(settings):
        wanted.append(("the carrier simulator", settings.carrier_sim_host,
                       settings.carrier_sim_port))
    if stripe_sim.uses_default_simulator(settings):
        wanted.append(("the Stripe simulator", settings.stripe_sim_host,
                       settings.stripe_sim_port))
    if pco_sim.uses_default_simulator(settings):
        wanted.append(("the Planning Center simulator", settings.pco_sim_host,
                       settings.pco_sim_port))
    for what, where, number in wanted:
        if port_in_use(where, number):
            raise OperationError(
                f"port {number} on {where} (for {what}) is already in use: is another "
                f"`ywm dev` running? Stop it, or choose another port (--port, CARRIER_SIM_PORT, "
                f"STRIPE_SIM_PORT, PCO_SIM_PORT)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start or reuse the embedded server (unless DATABASE_URL is set), bootstrap, serve."""
    handle: Any = None
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    check_ports(settings, host, port)
    if args.reset:
        shutil.rmtree(settings.data_dir / "pg", ignore_errors=True)
        say(f"removed {settings.data_dir / 'pg'}")
    try:
        if settings.database_url:
            target = PgTarget.parse(settings.database_url)
            say(f"using DATABASE_URL {target.describe()}")
        else:
            server, handle = embedded.start(devdeploy.pgdata(settings), cleanup_mode="stop")
            target = devdeploy.registry_target(server, settings)
            say(f"embedded PostgreSQL ready at {server.describe()}")
        dev_key = dev_secret_key(settings)
        if handle is not None and not settings.secret_key:
            say("operator commands (`ywm tenants list`, `ywm doctor`, …) use this deployment "
                "while DATABASE_URL and YWM_SECRET_KEY are unset; other programs need:")
            say(devdeploy.exports(settings, target))
        settings = settings.with_(database_url=target.dsn(), secret_key=dev_key)
        return _bootstrap_and_serve(args, settings)
    finally:
        if handle is not None:
            pgdata = devdeploy.pgdata(settings)
            handle.cleanup()
            if (pgdata / "postmaster.pid").exists():
                say("embedded PostgreSQL left running: another process still uses it")
            else:
                say("embedded PostgreSQL stopped")


def _bootstrap_and_serve(args: argparse.Namespace, settings: Settings) -> int:
    configure(settings)
    loop = new_loop()
    try:
        result = loop.run_until_complete(bootstrap(settings))
    except BaseException:
        loop.close()
        raise
    say(f"registry migrated to version {result.registry_to}")
    for name, version in result.templates.items():
        say(f"tenant template on server {name} at version {version}")
    settings = carrier_sim.dev_settings(  # the service talks to the in-process simulator
        settings, args.host or settings.host, settings.port if args.port is None else args.port)
    settings = stripe_sim.dev_settings(  # and to the in-process Stripe simulator
        settings, args.host or settings.host, settings.port if args.port is None else args.port)
    settings = pco_sim.dev_settings(  # and to the in-process Planning Center simulator
        settings, args.host or settings.host, settings.port if args.port is None else args.port)
    settings = dev_cors(settings)
    say(f"browser pages from {settings.cors_origins} may call the API (YWM_CORS_ORIGINS)")
    app = create_app(settings)
    add_dev_services(app, settings)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    return run_server(app, settings, host, port, loop,
                      on_listening=lambda url: say(f"serving on {url} (API docs: {url}/docs)"))


def register(sub: Any) -> None:
    """Add `ywm dev`."""
    p = sub.add_parser(
        "dev", help="serve on embedded defaults (starts PostgreSQL under .data/ unless "
        "DATABASE_URL is set)",
    )
    p.add_argument("--host", help="address to bind (default: YWM_HOST)")
    p.add_argument("--port", type=int, help="port to bind (default: YWM_PORT, 8080)")
    p.add_argument("--reset", action="store_true", help="delete the embedded database first")
    p.set_defaults(func=run)
