"""A running supervisor: real asyncpg pools, the heartbeat, upkeep and the change listener.

Background tasks are named and owned here (started by `start`, cancelled and awaited with a
bound by `close`). An aiohttp cleanup context may start and stop in different tasks, which an
asyncio.TaskGroup cannot span, hence the explicit task set.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from . import upkeep
from .budget import FRESH_BEATS, PRUNE_BEATS, Heartbeat, ShareBook
from .connect import TenantConnection, TlsChoice
from .directory import TenantDirectory, TenantInfo
from .health import describe
from .listener import ChangeListener
from .metrics import PoolMetrics
from .pools import PoolFactory, PoolLike
from .supervisor import PoolSupervisor

log = structlog.get_logger("ywm.supervisor")
MAX_INACTIVE_CONNECTION_LIFETIME = 60.0
STOP_TIMEOUT = 5.0


keep_session = pg.keep_session  # the tenant pools' reset: nothing (see db/pg.py)
# Sent in the startup packet (no round trip). TimeZone UTC: JSON that PostgreSQL writes for the
# API (list routes) gives timestamps as RFC 3339 with "+00:00", like the rest of the API, on
# any server whatever its `timezone` setting; tenant statements that need a church's local
# time say AT TIME ZONE explicitly.
TENANT_SESSION = {"timezone": "UTC"}


def asyncpg_pool_factory(settings: Settings, box: SecretBox, kind: str = "api",
                         tls: TlsChoice | None = None) -> PoolFactory:
    """Pools that connect as the tenant's own role, opening connections lazily (min 0), with
    nothing on a new connection but the login (see connect.py)."""
    tls = tls or TlsChoice()

    async def factory(info: TenantInfo, max_size: int) -> PoolLike:
        password = box.open(info.password_enc, f"tenant-role:{info.id}")
        pool: PoolLike = await asyncpg.create_pool(
            host=info.host, port=info.port, user=info.db_role, password=password,
            database=info.db_name, min_size=0, max_size=max_size,
            max_inactive_connection_lifetime=min(MAX_INACTIVE_CONNECTION_LIFETIME,
                                                 settings.tenant_idle_seconds),
            timeout=settings.tenant_connect_timeout,
            server_settings=TENANT_SESSION | {"application_name": f"ywm-{kind}"},
            reset=keep_session,
            ssl=await tls.for_server(info.host, info.port), connection_class=TenantConnection,
        )
        return pool

    return factory


class SupervisorRuntime:
    """The supervisor with its heartbeat, upkeep loop and LISTEN connection."""

    def __init__(self, supervisor: PoolSupervisor, heartbeat: Heartbeat | None,
                 listener: ChangeListener | None) -> None:
        self.supervisor = supervisor
        self.heartbeat = heartbeat
        self.listener = listener
        self._tasks: list[asyncio.Task[Any]] = []
        self._wake = asyncio.Event()
        self._asked_at = float("-inf")  # when another process last asked for connections
        self.beats = 0
        supervisor.shares.on_want = self._wake.set

    async def start(self) -> None:
        """First heartbeat (so shares are known before the first lease), then the loops."""
        if self.heartbeat is not None:
            await self._beat()
            self._task(self._heartbeat_loop(), "tenant-heartbeat")
        if self.listener is not None:
            self._task(self.listener.run(), "tenant-listener")
        self._task(self._upkeep_loop(), "tenant-upkeep")

    def _task(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    def on_budget_changed(self, payload: str) -> None:
        """Another process wants connections, gave some back or left: heartbeat soon."""
        sender, _, what = payload.partition(":")
        if self.heartbeat is not None and sender == str(self.heartbeat.id):
            return
        if what == "want":
            self._asked_at = time.monotonic()
        self._wake.set()

    async def _beat(self) -> bool:
        """One heartbeat; then close what no longer fits, and say so at once if that gave
        connections back (returns whether the exchange succeeded)."""
        assert self.heartbeat is not None
        sup = self.supervisor
        reply = time.monotonic() - self._asked_at < sup.settings.heartbeat_interval
        try:
            await self.heartbeat.exchange(sup.shares, sup.used_all, reply=reply)
        except Exception as exc:  # keep the last shares (fenced when stale); retry soon
            log.warning("heartbeat_failed", error=describe(exc), fenced=sup.shares.fenced)
            await upkeep.fit_budgets(sup)
            return False
        self.beats += 1
        closed = await upkeep.close_down_servers(sup) + await upkeep.fit_budgets(sup)
        if closed:
            try:
                await self.heartbeat.exchange(sup.shares, sup.used_all, reply=reply)
            except Exception as exc:
                log.warning("heartbeat_failed", error=describe(exc))
        if self.beats % (PRUNE_BEATS // 5) == 1:
            try:
                await self.heartbeat.prune()
            except Exception as exc:
                log.warning("heartbeat_prune_failed", error=describe(exc))
        return True

    async def _heartbeat_loop(self) -> None:
        interval = self.supervisor.settings.heartbeat_interval
        gap = min(0.25, interval / 20)  # the least time between two heartbeats
        ok = True
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval if ok else min(interval, 1.0))
            self._wake.clear()
            ok = await self._beat()
            await asyncio.sleep(gap)

    async def _upkeep_loop(self) -> None:
        s = self.supervisor.settings
        tick = min(1.0, s.health_interval, max(0.05, s.tenant_idle_seconds / 2))
        last_probe = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                await upkeep.sweep_idle(self.supervisor)
                await upkeep.check_definitive(self.supervisor)
                await upkeep.trim_grown(self.supervisor)
                if time.monotonic() - last_probe >= s.health_interval:
                    last_probe = time.monotonic()
                    await upkeep.probe_all(self.supervisor)
            except Exception as exc:  # never let one bad round stop the upkeep
                log.error("tenant_upkeep_failed", error=describe(exc))

    async def close(self) -> None:
        """Stop the loops, close every pool, remove the heartbeat row (all bounded)."""
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        self._tasks.clear()
        await self.supervisor.close()
        if self.heartbeat is not None:
            try:
                await asyncio.wait_for(self.heartbeat.remove(), STOP_TIMEOUT)
            except Exception as exc:
                log.warning("heartbeat_remove_failed", error=describe(exc))


async def open_supervisor(settings: Settings, box: SecretBox, registry_pool: Any, *,
                          kind: str = "api",
                          collector_registry: CollectorRegistry | None = None
                          ) -> SupervisorRuntime:
    """Build and start the production supervisor of one process."""
    directory = TenantDirectory(registry_pool, settings.sql_dir, settings.registry_cache_ttl)
    # Share 0 until the first heartbeat commits, and again if heartbeats fail for so long
    # that the other processes are about to stop counting this one's claims.
    shares = ShareBook(settings.process_weight, settings.tenant_pool_max,
                       stale_after=(FRESH_BEATS - 1) * settings.heartbeat_interval)
    sup = PoolSupervisor(settings, lookup=directory, shares=shares,
                         pool_factory=asyncpg_pool_factory(settings, box, kind),
                         metrics=PoolMetrics(collector_registry))
    listener = ChangeListener(PgTarget.parse(settings.require_database_url()),
                              sup.on_tenant_changed, sup.on_cache_lost)
    directory.trusted = lambda: listener.connected
    runtime = SupervisorRuntime(sup, Heartbeat(registry_pool, settings, kind), listener)
    listener.on_budget_changed = runtime.on_budget_changed
    try:
        await runtime.start()
    except BaseException:
        await runtime.close()
        raise
    return runtime
