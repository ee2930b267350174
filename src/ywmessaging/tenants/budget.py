"""Connection budgets: each process's share of every database server's `conn_budget`.

Every process that opens tenant pools (api, worker, cli) keeps a row in `process_heartbeats`
and refreshes it every YWM_HEARTBEAT_INTERVAL seconds. A process's share of a server is

    share = max(pool_max, floor(conn_budget × weight / total weight of fresh processes))

where "fresh" means a heartbeat younger than FRESH_BEATS intervals. The sum of the max sizes of
a process's open pools on a server never exceeds its share; when a share shrinks (another
process started) idle pools are evicted to fit. Until its first heartbeat succeeds a process
assumes the minimum share (one pool per server), so it never overshoots while blind.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from ..config import Settings
from ..sqlq import registry as rq

FRESH_BEATS = 3      # a heartbeat older than this many intervals no longer counts
PRUNE_BEATS = 60     # rows older than this many intervals are deleted
BEAT_TIMEOUT = 5.0
KINDS = ("api", "worker", "cli")


def compute_share(conn_budget: int, weight: int, total_weight: int, pool_max: int) -> int:
    """This process's share of one server's budget (at least one pool's max size)."""
    total = max(total_weight, weight, 1)
    return max(pool_max, conn_budget * weight // total)


class Sized(Protocol):
    """What victim selection needs of an actor."""

    max_size: int

    @property
    def server_id(self) -> int: ...


V = TypeVar("V", bound=Sized)


def choose_victims(idle: list[V], *, server_id: int, need: int, share: int, used: int,
                   count: int, cap: int) -> list[V] | str:
    """Idle actors to evict (least recently used first) so that a pool of `need` connections
    fits the server's share and the cap; or what is full ("server's connection budget" or
    "pool cap") when even evicting every idle actor would not be enough."""
    victims: list[V] = []
    for a in idle:
        if used + need <= share:
            break
        if a.server_id == server_id:
            victims.append(a)
            used -= a.max_size
            count -= 1
    for a in idle:
        if count < cap:
            break
        if a not in victims:
            victims.append(a)
            count -= 1
    if used + need > share:
        return "server's connection budget"
    if count >= cap:
        return "pool cap"
    return victims


@dataclass
class ServerBudget:
    """A server's budget as last read from the registry."""

    id: int
    name: str
    conn_budget: int
    state: str = "active"


class ShareBook:
    """The shares this process may use, recomputed on each heartbeat."""

    def __init__(self, weight: int, pool_max: int) -> None:
        self.weight = weight
        self.pool_max = pool_max
        self.total_weight: int | None = None   # None until the first heartbeat
        self.servers: dict[int, ServerBudget] = {}

    def update(self, total_weight: int, servers: list[ServerBudget]) -> None:
        """Record a heartbeat's view: fresh total weight and every server's budget."""
        self.total_weight = total_weight
        self.servers = {s.id: s for s in servers}

    def note_server(self, server_id: int, name: str, conn_budget: int) -> None:
        """Learn a server from a tenant look-up (e.g. one added since the last heartbeat)."""
        known = self.servers.get(server_id)
        if known is None:
            self.servers[server_id] = ServerBudget(server_id, name, conn_budget)
        else:
            known.conn_budget, known.name = conn_budget, name

    def share(self, server_id: int) -> int:
        """Connections this process may hold on a server now."""
        server = self.servers.get(server_id)
        if server is None or self.total_weight is None:
            return self.pool_max
        return compute_share(server.conn_budget, self.weight, self.total_weight, self.pool_max)

    def is_down(self, server_id: int) -> bool:
        """Whether the last heartbeat read the server's state as `down`."""
        server = self.servers.get(server_id)
        return server is not None and server.state == "down"

    def name(self, server_id: int) -> str:
        """The server's name (metrics label), or its id while unknown."""
        server = self.servers.get(server_id)
        return server.name if server is not None else str(server_id)


class Heartbeat:
    """This process's row in `process_heartbeats`."""

    def __init__(self, registry_pool: Any, settings: Settings, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"process kind must be one of {KINDS}")
        self.id = uuid.uuid4()
        self.kind = kind
        self.host = socket.gethostname()[:255] or "unknown"
        self.pid = os.getpid()
        self._pool = registry_pool
        self._settings = settings
        self._q = rq(settings.sql_dir)

    async def beat(self, claims: dict[int, int]) -> tuple[int, list[ServerBudget]]:
        """Refresh this process's row; returns (fresh total weight, every server's budget)."""
        interval = self._settings.heartbeat_interval
        body = orjson.dumps({str(k): v for k, v in claims.items()}).decode()
        async with self._pool.acquire(timeout=BEAT_TIMEOUT) as conn:
            await self._q.hb_upsert(conn, self.id, self.kind, self.host, self.pid,
                                    self._settings.process_weight, body, timeout=BEAT_TIMEOUT)
            total = await self._q.hb_fresh_weight(conn, interval * FRESH_BEATS,
                                                  timeout=BEAT_TIMEOUT)
            rows = await self._q.sup_server_budgets(conn, timeout=BEAT_TIMEOUT)
        servers = [ServerBudget(r["id"], r["name"], r["conn_budget"], r["state"]) for r in rows]
        return int(total), servers

    async def prune(self) -> None:
        """Delete rows of processes that stopped long ago without removing their row."""
        interval = self._settings.heartbeat_interval
        await self._q.hb_prune(self._pool, interval * PRUNE_BEATS, timeout=BEAT_TIMEOUT)

    async def remove(self) -> None:
        """Delete this process's row (its share goes back to the others at once)."""
        await self._q.hb_delete(self._pool, self.id, timeout=BEAT_TIMEOUT)
