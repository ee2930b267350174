"""`ywm worker`: send the outbox, run schedules; SIGTERM finishes the batch in flight, exit 0."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web

from ..auth.plugins import email_sender
from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..events.publisher import Publisher
from ..integrations.plugins import pco_runtime
from ..messaging.telnyx import carrier_from_settings
from ..messaging.webhooks import observe_backlog, process_due
from ..messaging.worker import Worker
from ..observability.metrics import Metrics
from ..tenants.runtime import open_supervisor
from .serve import check_registry_schema

log = structlog.get_logger("ywm.worker")
CLOSE_TIMEOUT_S = 10.0


async def run_worker(settings: Settings) -> int:
    """Open the registry pool, a tenant supervisor and the carrier; work until a signal."""
    await check_registry_schema(settings)
    registry = await pg.create_pool(PgTarget.parse(settings.require_database_url()),
                                    max_size=settings.registry_pool_max)
    runtime = None
    metrics = Metrics()
    carrier = carrier_from_settings(settings, metrics)
    try:
        runtime = await open_supervisor(settings, SecretBox(settings.require_secret_key()),
                                        registry, kind="worker")
        sup = runtime.supervisor

        events = Publisher(registry, settings, metrics)   # the churches' live events

        async def sweep_inbox() -> None:
            await process_due(registry, sup, settings, metrics=metrics, events=events)
            await observe_backlog(registry, settings, metrics)

        emails = email_sender(settings)
        worker = Worker(settings, registry, sup, carrier, inbox_sweep=sweep_inbox,
                        metrics=metrics, emails=emails, events=events)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        site = await serve_metrics(settings, metrics, worker)
        try:
            # Planning Center: the scheduled member syncs, claimed church by church from the
            # registry (API processes run them too, and those a request or webhook starts)
            async with pco_runtime(settings, sup, registry):
                await worker.run()
        finally:
            if site is not None:
                await site.cleanup()
            await events.close()
            closer = getattr(emails, "close", None)
            if closer is not None:  # SMTP: deliver what is queued
                await closer()
        return 0
    finally:
        await _close(carrier, runtime, registry)


async def serve_metrics(settings: Settings, metrics: Metrics,
                        worker: Worker) -> web.AppRunner | None:
    """GET /metrics and /healthz on YWM_HOST:YWM_WORKER_METRICS_PORT (None: off, or the port
    is taken by another worker on this machine)."""
    if not settings.worker_metrics_port:
        return None

    async def get_metrics(_: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        status = 503 if worker.stopping else 200
        return web.json_response({"status": "stopping" if worker.stopping else "ok",
                                  "owner": worker.owner}, status=status)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.worker_metrics_port).start()
    except OSError as exc:
        log.warning("worker_metrics_unavailable", port=settings.worker_metrics_port,
                    error=str(exc))
        await runner.cleanup()
        return None
    log.info("worker_metrics_listening", host=settings.host, port=settings.worker_metrics_port)
    return runner


async def _close(carrier: Any, runtime: Any, registry: Any) -> None:
    for what, closer in (("carrier", carrier.close), ("supervisor", getattr(runtime, "close",
                                                                            None)),
                         ("registry_pool", registry.close)):
        if closer is None:
            continue
        try:
            await asyncio.wait_for(closer(), CLOSE_TIMEOUT_S)
        except Exception as exc:
            log.warning("worker_close_failed", what=what, error=type(exc).__name__)


def run(args: argparse.Namespace, settings: Settings) -> Any:
    """The coroutine `ywm` runs (settings from the environment; --concurrency overrides)."""
    settings.require_database_url()
    settings.require_secret_key()
    if args.concurrency is not None:
        settings = settings.with_(worker_concurrency=args.concurrency)
        settings.validate()
    return run_worker(settings)


def register(sub: Any) -> None:
    """Add `ywm worker`."""
    p = sub.add_parser("worker", help="send queued messages and run schedules (needs "
                       "DATABASE_URL and YWM_SECRET_KEY); several may run")
    p.add_argument("--concurrency", type=int,
                   help="churches worked on at once (default: YWM_WORKER_CONCURRENCY)")
    p.set_defaults(func=run)
