"""Connection budgets: each process's share of every database server's `conn_budget`.

Every process that opens tenant pools (api, worker, cli) keeps a row in `process_heartbeats`.
A heartbeat is one registry transaction under an advisory lock, so the heartbeats of all
processes are serialized. In it the process reads the `claims` of the other *fresh* processes
(heartbeat younger than FRESH_BEATS intervals) and every server's budget, and computes

    weighted = floor(conn_budget × weight / total weight of fresh processes)
    share    = max(0, min(weighted, conn_budget − Σ the other fresh processes' claims))
    claim    = max(used, min(share, used + ⌈share × SPARE⌉))

where `used` is what its open pools may use now. The claim is a *reservation*: until its next
heartbeat the process never uses more than its last committed claim (a smaller claim applies
locally before the write, a larger one only after the commit); it reserves some room beyond
what it uses, not its whole share, so that a process that joins finds room at once, and it
asks for an early heartbeat when a pool does not fit its reservation but would fit its share.
Pools beyond the share (it shrank) are closed when idle, and the claim follows.

Invariant: Σ over fresh processes of claims ≤ conn_budget. Each write keeps it, because what a
process uses never exceeds its previous claim, so its new claim is ≤ conn_budget − the others'.
A new process holds nothing until its first heartbeat commits; a process whose heartbeats keep
failing falls to nothing after FRESH_BEATS − 1 intervals, before the others stop counting its
claims. A process whose share is below its weighted share (the others hold it) notifies
`ywm_budget_changed` (at most once an interval); the others heartbeat at once, close idle pools
beyond their new shares and answer with a notification when that gave connections back, so a
joining process gets its share in moments rather than heartbeat intervals. `used` counts each
open pool's *charge* (the connections it may hold: one at first, more only while leases needed
them and the reservation had room; see actor.py), so a pool is refused only when not one
connection fits.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import Settings
from ..sqlq import registry as rq

FRESH_BEATS = 3      # a heartbeat older than this many intervals no longer counts
PRUNE_BEATS = 60     # rows older than this many intervals are deleted
BEAT_TIMEOUT = 5.0
SPARE = 0.5          # reserve up to this fraction of the share beyond what the pools use
KINDS = ("api", "worker", "cli")


def compute_share(conn_budget: int, weight: int, total_weight: int, others_claimed: int) -> int:
    """This process's share of one server: its weighted part, within what the others left."""
    total = max(total_weight, weight, 1)
    return max(0, min(conn_budget * weight // total, conn_budget - others_claimed))


@dataclass(frozen=True)
class ServerBudget:
    """A server's budget as last read from the registry."""

    id: int
    name: str
    conn_budget: int
    state: str = "active"


@dataclass(frozen=True)
class Peer:
    """Another fresh process: its weight and its claims (server id → connections)."""

    weight: int
    claims: Mapping[int, int]

    @classmethod
    def from_row(cls, row: Any) -> Peer:
        """From an `hb_fresh_peers` row (claims arrive as JSON text)."""
        raw = row["claims"]
        claims = orjson.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw or {})
        return cls(int(row["weight"]), {int(k): int(v) for k, v in claims.items()})


@dataclass(frozen=True)
class Plan:
    """One heartbeat's result: shares, what the weights alone would give, the claims written
    (this process's reservations: what it may use until its next heartbeat)."""

    shares: dict[int, int]
    weighted: dict[int, int]
    claims: dict[int, int]

    @property
    def wanting(self) -> bool:
        """Whether other processes still hold part of this one's weighted share."""
        return any(self.shares[s] < w for s, w in self.weighted.items())


def plan_shares(weight: int, peers: list[Peer], servers: list[ServerBudget],
                used: Mapping[int, int], *, spare: float = SPARE) -> Plan:
    """The shares and claims of one process, given the other fresh processes' claims
    (`spare` = 1.0 reserves the whole share)."""
    total = weight + sum(p.weight for p in peers)
    shares: dict[int, int] = {}
    weighted: dict[int, int] = {}
    for s in servers:
        others = sum(p.claims.get(s.id, 0) for p in peers)
        weighted[s.id] = compute_share(s.conn_budget, weight, total, 0)
        shares[s.id] = compute_share(s.conn_budget, weight, total, others)
    claims: dict[int, int] = {}
    for sid in sorted(set(shares) | set(used)):
        share, now = shares.get(sid, 0), used.get(sid, 0)
        claims[sid] = max(now, min(share, now + math.ceil(share * spare)))
    return Plan(shares, weighted, {sid: n for sid, n in claims.items() if n > 0})


class ShareBook:
    """This process's reservations (`limit`: what it may use now, as its last committed
    heartbeat claimed) and shares (`share`: what idle pools are closed down to)."""

    def __init__(self, weight: int, pool_max: int, *, clock: Callable[[], float] = time.monotonic,
                 stale_after: float | None = None) -> None:
        self.weight = weight
        self.pool_max = pool_max
        self._clock = clock
        self.stale_after = stale_after  # nothing held when the last good heartbeat is older
        self.beat_at: float | None = None   # None until the first heartbeat commits
        self.servers: dict[int, ServerBudget] = {}
        self.claimed: dict[int, int] = {}   # the reservations, as committed
        self.shares: dict[int, int] = {}
        self.weighted: dict[int, int] = {}
        self.on_want: Callable[[], None] | None = None  # asks for an early heartbeat

    def clamp(self, plan: Plan) -> None:
        """Apply the smaller of the current and the coming reservations (before the write)."""
        for sid in set(self.claimed) | set(plan.claims):
            self.claimed[sid] = min(self.claimed.get(sid, 0), plan.claims.get(sid, 0))

    def update(self, plan: Plan, servers: list[ServerBudget], at: float) -> None:
        """Record a committed heartbeat (`at`: when it began)."""
        self.claimed, self.shares, self.weighted = (dict(plan.claims), dict(plan.shares),
                                                    dict(plan.weighted))
        self.servers = {s.id: s for s in servers}
        self.beat_at = at

    @property
    def fenced(self) -> bool:
        """Whether this process holds nothing now (no heartbeat yet, or too long ago)."""
        if self.beat_at is None:
            return True
        return self.stale_after is not None and self._clock() - self.beat_at > self.stale_after

    def limit(self, server_id: int) -> int:
        """Connections this process may hold on a server now (its reservation)."""
        return 0 if self.fenced else self.claimed.get(server_id, 0)

    def share(self, server_id: int) -> int:
        """This process's share of a server (idle pools beyond it are closed)."""
        return 0 if self.fenced else self.shares.get(server_id, 0)

    def pools_fit(self) -> int:
        """Pools the shares hold at one connection each: the sum of this process's shares of
        the servers not `down` (0 while fenced)."""
        return sum(self.share(sid) for sid, server in self.servers.items()
                   if server.state != "down")

    def want(self, server_id: int) -> None:
        """A pool did not fit: ask for an early heartbeat if one would give more at once
        (nothing reserved yet, a server the last heartbeat did not know, a reservation below
        the share). Getting more than the share waits for the others: the `want`
        notification of the next heartbeat asks them, and their answer wakes this one."""
        short = (self.fenced or server_id not in self.shares
                 or self.claimed.get(server_id, 0) < self.shares[server_id])
        if short and self.on_want is not None:
            self.on_want()

    def note_server(self, server_id: int, name: str, conn_budget: int) -> None:
        """Learn a server's name from a tenant look-up (nothing is reserved on one added
        since the last heartbeat until the next one, which `want` hastens)."""
        if server_id not in self.servers:
            self.servers[server_id] = ServerBudget(server_id, name, conn_budget)

    def is_down(self, server_id: int) -> bool:
        """Whether the last heartbeat read the server's state as `down`."""
        server = self.servers.get(server_id)
        return server is not None and server.state == "down"

    def name(self, server_id: int) -> str:
        """The server's name (metrics label), or its id while unknown."""
        server = self.servers.get(server_id)
        return server.name if server is not None else str(server_id)


class Heartbeat:
    """This process's row in `process_heartbeats` and the serialized share exchange."""

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
        self._wanted_at = float("-inf")

    async def exchange(self, book: ShareBook, used: Callable[[], dict[int, int]], *,
                       reply: bool = False) -> Plan:
        """One heartbeat: read the others' claims, compute this process's shares and claims,
        write them (see the module docstring) and record the result in `book`. `reply`: a
        process asked for connections lately, so say so if this gave some back."""
        s, q, started = self._settings, self._q, time.monotonic()
        async with self._pool.acquire(timeout=BEAT_TIMEOUT) as conn, conn.transaction():
            await q.hb_lock(conn, timeout=BEAT_TIMEOUT)
            rows = await q.hb_fresh_peers(conn, s.heartbeat_interval * FRESH_BEATS, self.id,
                                          timeout=BEAT_TIMEOUT)
            servers = [ServerBudget(r["id"], r["name"], r["conn_budget"], r["state"])
                       for r in await q.sup_server_budgets(conn, timeout=BEAT_TIMEOUT)]
            before = dict(book.claimed)
            plan = plan_shares(s.process_weight, [Peer.from_row(r) for r in rows], servers,
                               used())
            book.clamp(plan)  # no await since `used()`: usage can only shrink from here
            claims = orjson.dumps({str(k): v for k, v in plan.claims.items()}).decode()
            await q.hb_upsert(conn, self.id, self.kind, self.host, self.pid, s.process_weight,
                              claims, timeout=BEAT_TIMEOUT)
            what = self._news(plan, before, started, reply)
            if what:
                await q.hb_notify(conn, f"{self.id}:{what}", timeout=BEAT_TIMEOUT)
        book.update(plan, servers, started)
        return plan

    def _news(self, plan: Plan, before: dict[int, int], now: float, reply: bool) -> str:
        """What to tell the others: `freed` when this process gave back connections that one
        of them asked for, `want` (at most once an interval, so that two starved processes
        cannot wake each other in a loop) when the others hold part of its weighted share."""
        if reply and any(plan.claims.get(sid, 0) < n for sid, n in before.items()):
            return "freed"
        if plan.wanting and now - self._wanted_at >= self._settings.heartbeat_interval:
            self._wanted_at = now
            return "want"
        return ""

    async def prune(self) -> None:
        """Delete rows of processes that stopped long ago without removing their row."""
        interval = self._settings.heartbeat_interval
        await self._q.hb_prune(self._pool, interval * PRUNE_BEATS, timeout=BEAT_TIMEOUT)

    async def remove(self) -> None:
        """Delete this process's row (its share goes back to the others at once)."""
        await self._q.hb_delete(self._pool, self.id, timeout=BEAT_TIMEOUT)
        await self._q.hb_notify(self._pool, f"{self.id}:left", timeout=BEAT_TIMEOUT)
