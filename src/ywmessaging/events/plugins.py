"""Live events' resources: the publisher, the hub of this process's sockets (fed by the
supervisor's listener connection on `ywm_events`), the sweep that closes sockets whose token
was revoked or expired, and the prune of events older than the replay window.

Like every plug-in it needs only the core: auth's revocations are bound by the first socket
(`Hub.watch_revocations`), when auth's services certainly exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..cors import parse_origins
from ..keys import METRICS, REGISTRY_POOL, SETTINGS
from ..sqlq import registry as rq
from ..tenants.keys import SUPERVISOR
from .hub import Hub
from .keys import EVENTS, LiveEvents
from .publisher import CHANNEL, Publisher

log = structlog.get_logger("ywm.events")

SWEEP_S = 5.0          # expired tokens are cut off within this
PRUNE_S = 60.0
PRUNE_TIMEOUT_S = 30.0



async def live_events(app: web.Application) -> AsyncIterator[None]:
    """Publisher and hub; sockets hear `ywm_events` through the supervisor's listener."""
    settings, metrics, pool = app[SETTINGS], app[METRICS], app[REGISTRY_POOL]
    hub = Hub(pool, settings, metrics)
    listener = app[SUPERVISOR].listener
    if listener is not None:
        await listener.subscribe(CHANNEL, hub.on_notify, hub.catch_up)
    app[EVENTS] = LiveEvents(Publisher(pool, settings, metrics), hub,
                             frozenset(parse_origins(settings.cors_origins)))
    tasks = [asyncio.create_task(_sweep_loop(hub), name="events_sweep"),
             asyncio.create_task(_prune_loop(app), name="events_prune")]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await hub.close_all()
    await app[EVENTS].publisher.close()


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: close every socket (1001) so that graceful shutdown need not wait for
    them."""
    runtime = app.get(EVENTS)
    if runtime is not None:
        await runtime.hub.close_all()


async def _sweep_loop(hub: Hub) -> None:
    while True:
        await asyncio.sleep(SWEEP_S)
        hub.sweep()


async def _prune_loop(app: web.Application) -> None:
    settings, pool = app[SETTINGS], app[REGISTRY_POOL]
    q = rq(settings.sql_dir)
    while True:
        await asyncio.sleep(PRUNE_S)
        try:
            gone = await q.prune_events(pool, settings.events_replay_seconds,
                                        timeout=PRUNE_TIMEOUT_S)
            if gone:
                log.info("events_pruned", removed=gone)
        except Exception as exc:  # the next round tries again
            log.warning("events_prune_failed", error=type(exc).__name__)
