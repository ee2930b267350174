"""`ywm worker`: send the outbox, run schedules; SIGTERM finishes the batch in flight, exit 0."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..messaging.carrier import carrier_from_settings
from ..messaging.webhooks import process_due
from ..messaging.worker import Worker
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
    carrier = carrier_from_settings(settings)
    try:
        runtime = await open_supervisor(settings, SecretBox(settings.require_secret_key()),
                                        registry, kind="worker")
        sup = runtime.supervisor

        async def sweep_inbox() -> None:
            await process_due(registry, sup, settings)

        worker = Worker(settings, registry, sup, carrier, inbox_sweep=sweep_inbox)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()
        return 0
    finally:
        await _close(carrier, runtime, registry)


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
