"""LISTEN on `ywm_tenant_changed` over a dedicated registry connection, reconnecting on loss.

Every UPDATE or DELETE of a tenant row notifies its id (trigger in 0001_create_registry.sql).
The same connection listens on `ywm_budget_changed` (budget.py: a process gave connections
back or wants more), so that every process re-balances its shares at once.
While the connection is down the supervisor's cache still expires by its TTL; after each
(re)connect the whole cache is dropped, since notifications may have been missed meanwhile.
Other parts of the process `subscribe` to more channels on the same connection (auth's
`ywm_revoked`), each with a hook called after every (re)connect to catch up on what it missed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from ..db import pg
from ..db.dsn import PgTarget

log = structlog.get_logger("ywm.tenant_listener")

CHANNEL = "ywm_tenant_changed"
BUDGET_CHANNEL = "ywm_budget_changed"
CONNECT_TIMEOUT = 5.0
PING_INTERVAL = 10.0
PING_TIMEOUT = 5.0
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class ChangeListener:
    """Calls `on_change(tenant_id)` per notification and `on_connected()` after each connect."""

    def __init__(self, target: PgTarget, on_change: Callable[[uuid.UUID], None],
                 on_connected: Callable[[], None]) -> None:
        self._target = target
        self._on_change = on_change
        self._on_connected = on_connected
        self.connected = False
        self.reconnects = 0
        self.on_budget_changed: Callable[[str], None] | None = None  # '<sender>:<what>'
        # channel → (called with each payload, called after each (re)connect)
        self._channels: dict[str, tuple[Callable[[str], None], Callable[[], None]]] = {}
        self._conn: Any = None

    async def subscribe(self, channel: str, on_payload: Callable[[str], None],
                        on_connected: Callable[[], None]) -> None:
        """Listen on one more channel from now on (at once if connected, else at the next
        connect); `on_connected` is called then and after every reconnect."""
        self._channels[channel] = (on_payload, on_connected)
        conn = self._conn
        if conn is not None and self.connected:
            try:
                await conn.add_listener(channel, self._relay)
            except Exception as exc:  # the connection is going away: the reconnect listens
                log.warning("listener_subscribe_failed", channel=channel,
                            error=type(exc).__name__)
                return
            on_connected()

    def _relay(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        hooks = self._channels.get(channel)
        if hooks is not None:
            hooks[0](payload)

    def _budget(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self.on_budget_changed is not None:
            self.on_budget_changed(payload)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            tenant_id = uuid.UUID(payload)
        except ValueError:
            log.warning("tenant_notification_bad_payload", payload=payload[:64])
            return
        self._on_change(tenant_id)

    async def run(self) -> None:
        """Listen until cancelled; every wait is bounded and failures back off exponentially."""
        delay = BACKOFF_START
        while True:
            try:
                conn = await pg.connect(self._target, timeout=CONNECT_TIMEOUT)
            except Exception as exc:
                log.warning("tenant_listener_connect_failed", error=type(exc).__name__,
                            retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_START
            try:
                await self._serve(conn)
            except Exception as exc:
                log.warning("tenant_listener_lost", error=type(exc).__name__, retry_in_s=delay)
            finally:
                self.connected = False
                self._conn = None
                await _close(conn)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _serve(self, conn: Any) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        await conn.add_listener(CHANNEL, self._notified)
        await conn.add_listener(BUDGET_CHANNEL, self._budget)
        for channel in list(self._channels):
            await conn.add_listener(channel, self._relay)
        self._conn = conn
        self.connected = True
        if self.reconnects:
            log.info("tenant_listener_reconnected", reconnects=self.reconnects)
        self.reconnects += 1
        self._on_connected()
        if self.on_budget_changed is not None:  # budget notifications may have been missed too
            self.on_budget_changed("")
        for _, on_connected in list(self._channels.values()):
            on_connected()
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), PING_INTERVAL)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT)  # half-open sockets
        raise ConnectionError("listener connection closed")


async def _close(conn: Any) -> None:
    try:
        await asyncio.wait_for(conn.close(), PING_TIMEOUT)
    except Exception:
        conn.terminate()
