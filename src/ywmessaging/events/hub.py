"""This process's sockets, by church, and the fan-out of the events the registry notifies.

Ordering: one church's events commit in id order (publish_event holds the church's sequence row
until it commits) and notifications arrive in commit order, so the hub hands a church's frames
to its sockets in id order. `last[church]` is the newest id fanned out; a notification for a
later id than `last + 1` (its frame was too large to notify, or notifications were missed while
the listener reconnected) makes the hub read the gap back from the registry first. Each socket
also remembers the last id it sent, so a frame it already sent during a replay is skipped.

A socket's queue is bounded: when it is full the client reads too slowly, and the socket is
closed with SLOW (the client reconnects with its last id and loses nothing in the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from ..auth.tokens import AccessClaims
from ..config import Settings
from ..sqlq import registry as rq

log = structlog.get_logger("ywm.events")

# Close codes (openapi.yaml and ops/runbook-events.md list them).
GOING_AWAY = 1001   # the server is shutting down: reconnect with the last id
REVOKED = 4001      # the token was revoked (logout, password change, removal): log in again
EXPIRED = 4002      # the access token expired: refresh, then reconnect with the last id
SLOW = 4008         # the client read too slowly: reconnect with the last id
CLOSE_TIMEOUT_S = 2.0
FETCH_TIMEOUT_S = 5.0
GAP_BATCH = 1000


class Socket:
    """One connected browser tab."""

    def __init__(self, ws: web.WebSocketResponse, transport: Any, claims: AccessClaims,
                 queue_size: int) -> None:
        self.ws = ws
        self.transport = transport
        self.claims = claims
        self.tenant_id = claims.tenant_id
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(queue_size)
        self.last_id = 0          # the newest event id this socket sent (or skipped past)
        self.closing = False
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None   # the server's close, when it closes

    async def write(self, metrics: Any) -> None:
        """Send queued frames in order until cancelled or the connection is gone (frames
        already sent are skipped; the handler's read loop sees the connection end)."""
        while True:
            event_id, frame = await self.queue.get()
            if event_id <= self.last_id:
                continue
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):   # closed under us: nothing more to send
                return
            self.last_id = event_id
            if metrics is not None:
                metrics.events_sent.inc()


class Hub:
    """The sockets of this process and the fan-out of notified events to them."""

    def __init__(self, registry_pool: Any, settings: Settings, metrics: Any = None) -> None:
        self.pool = registry_pool
        self.q = rq(settings.sql_dir)
        self.window = settings.events_replay_seconds
        self.metrics = metrics
        self._sockets: dict[uuid.UUID, set[Socket]] = {}
        self.last: dict[uuid.UUID, int] = {}
        self._fetching: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._again: set[uuid.UUID] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.is_revoked: Callable[[AccessClaims], bool] = lambda _c: False
        self._revocations: Any = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    def add(self, sock: Socket) -> None:
        """Hear the church's events from now on (queued until the socket's writer starts)."""
        self._sockets.setdefault(sock.tenant_id, set()).add(sock)
        self._gauge()

    def remove(self, sock: Socket) -> None:
        """Forget a socket (its handler ended)."""
        socks = self._sockets.get(sock.tenant_id)
        if socks is not None:
            socks.discard(sock)
            if not socks:
                del self._sockets[sock.tenant_id]
                self.last.pop(sock.tenant_id, None)
        self._gauge()

    def start_at(self, tenant_id: uuid.UUID, event_id: int) -> None:
        """The church's newest id when its first socket joined (if nothing came since)."""
        self.last.setdefault(tenant_id, event_id)

    def on_notify(self, payload: str) -> None:
        """A `ywm_events` notification: `<tenant id> <frame>` or `<tenant id> <event id>`."""
        head, _, rest = payload.partition(" ")
        try:
            tenant_id = uuid.UUID(head)
        except ValueError:
            log.warning("event_bad_payload", payload=payload[:80])
            return
        if tenant_id not in self._sockets:
            return
        try:
            event_id = int(orjson.loads(rest)["id"]) if rest.startswith("{") else int(rest)
        except (ValueError, KeyError, TypeError):
            log.warning("event_bad_payload", payload=payload[:80])
            return
        last = self.last.get(tenant_id)
        if rest.startswith("{") and (last is None or event_id == last + 1):
            self.fan_out(tenant_id, event_id, rest)
        elif last is None or event_id > last:
            self.fill_gap(tenant_id)

    def fan_out(self, tenant_id: uuid.UUID, event_id: int, frame: str) -> None:
        """Queue one frame on every socket of the church; a full queue closes its socket."""
        self.last[tenant_id] = event_id
        for sock in list(self._sockets.get(tenant_id, ())):
            if sock.closing:
                continue
            try:
                sock.queue.put_nowait((event_id, frame))
            except asyncio.QueueFull:
                self.close(sock, SLOW, "slow consumer", "slow")

    def fill_gap(self, tenant_id: uuid.UUID) -> None:
        """Read the church's events after `last` back from the registry (single flight)."""
        if tenant_id in self._fetching:
            self._again.add(tenant_id)
            return
        task = asyncio.get_running_loop().create_task(self._fill(tenant_id), name="events_gap")
        self._fetching[tenant_id] = task
        task.add_done_callback(lambda _t: self._fetching.pop(tenant_id, None))

    async def _fill(self, tenant_id: uuid.UUID) -> None:
        while True:
            self._again.discard(tenant_id)
            if tenant_id not in self._sockets:
                return
            after = self.last.get(tenant_id, 0)
            try:
                rows = await self.q.events_after(self.pool, tenant_id, after, self.window,
                                                  GAP_BATCH, timeout=FETCH_TIMEOUT_S)
            except Exception as exc:  # the next notification or reconnect tries again
                log.warning("event_gap_read_failed", tenant_id=str(tenant_id),
                            error=type(exc).__name__)
                return
            for row in rows:
                if row["id"] > self.last.get(tenant_id, 0):
                    self.fan_out(tenant_id, row["id"], row["frame"])
            if len(rows) < GAP_BATCH and tenant_id not in self._again:
                return

    def catch_up(self) -> None:
        """After the listener (re)connected: read back what every church here may have missed."""
        for tenant_id in list(self._sockets):
            self.fill_gap(tenant_id)

    def close(self, sock: Socket, code: int, reason: str, why: str) -> None:
        """Close one socket with `code` (bounded: a client that never reads is cut off)."""
        if sock.closing:
            return
        sock.closing = True
        if sock.writer is not None:
            sock.writer.cancel()
        if self.metrics is not None:
            self.metrics.events_dropped.labels(why).inc()
        log.info("event_socket_closed", tenant_id=str(sock.tenant_id), code=code, reason=why)
        task = asyncio.get_running_loop().create_task(self._close(sock, code, reason),
                                                      name="events_close")
        sock.closer = task   # the handler waits for it before it returns
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, sock: Socket, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await sock.ws.close(code=code, message=reason.encode())
        except Exception:  # the close frame could not be sent in time: drop the connection
            if sock.transport is not None:
                sock.transport.abort()

    def watch_revocations(self, revocations: Any) -> None:
        """Close sockets as soon as auth's deny-list refuses their token (once per process)."""
        if self._revocations is None:
            self._revocations = revocations
            self.is_revoked = revocations.deny.refuses
            revocations.watchers.append(self.on_revoked)

    def on_revoked(self) -> None:
        """Revocations were applied: close the sockets they now refuse, at once."""
        self.sweep()

    def sweep(self, now: float | None = None) -> int:
        """Close sockets whose token was revoked or has expired; how many."""
        now = time.time() if now is None else now
        closed = 0
        for socks in list(self._sockets.values()):
            for sock in list(socks):
                if sock.closing:
                    continue
                if self.is_revoked(sock.claims):
                    self.close(sock, REVOKED, "token revoked", "revoked")
                elif sock.claims.exp <= now:
                    self.close(sock, EXPIRED, "token expired", "expired")
                else:
                    continue
                closed += 1
        return closed

    async def close_all(self) -> None:
        """Shutdown: close every socket with GOING_AWAY and wait (bounded)."""
        for socks in list(self._sockets.values()):
            for sock in list(socks):
                self.close(sock, GOING_AWAY, "server shutting down", "shutdown")
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True),
                                       CLOSE_TIMEOUT_S + 1)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.events_connections.set(len(self))


async def join(hub: Hub, sock: Socket, last_event_id: int | None, max_replay: int) -> list[str]:
    """Register a socket and return the frames it must send first: the church's events after
    `last_event_id` inside the replay window, or, when some of them are gone (older than the
    window, or more than `max_replay`), a `replay.truncated` frame telling the client to
    refetch what it shows (its id is where the socket continues)."""
    hub.add(sock)
    q, pool, tenant_id = hub.q, hub.pool, sock.tenant_id
    current: int = await q.event_last_id(pool, tenant_id, timeout=FETCH_TIMEOUT_S)
    hub.start_at(tenant_id, current)
    if last_event_id is None:
        sock.last_id = current
        return []
    rows = await q.events_after(pool, tenant_id, last_event_id, hub.window, max_replay + 1,
                                timeout=FETCH_TIMEOUT_S)
    complete = (len(rows) <= max_replay and last_event_id <= current
                and (rows[0]["id"] == last_event_id + 1 if rows else True))
    if complete:
        sock.last_id = rows[-1]["id"] if rows else last_event_id
        return [r["frame"] for r in rows]
    sock.last_id = max(current, rows[-1]["id"] if rows else 0)
    return [orjson.dumps({"id": sock.last_id, "type": "replay.truncated",
                          "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "data": {"after": last_event_id}}).decode()]
