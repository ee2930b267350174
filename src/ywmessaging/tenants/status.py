"""Read-only views of the supervisor: the metrics snapshot and one tenant's pool status."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .actor import ActorState
from .metrics import Snapshot

if TYPE_CHECKING:
    from .supervisor import PoolSupervisor


def pool_cap(sup: PoolSupervisor) -> int:
    """Pools this process may keep open now: what its shares hold at one connection each,
    or YWM_TENANT_POOL_CAP if that is lower."""
    fits = sup.shares.pools_fit()
    return fits if sup.cap is None else min(sup.cap, fits)


def snapshot(sup: PoolSupervisor) -> Snapshot:
    """Gauges at scrape time: pools by state, leases, breakers, connections per server."""
    by_state = {s.value: 0 for s in ActorState}
    conns: dict[str, int] = {}
    leases = 0
    for a in sup.actors():
        by_state[a.state.value] += 1
        leases += a.leases
        name = sup.shares.name(a.server_id)
        conns[name] = conns.get(name, 0) + a.sizes()[0]
    servers = {a.server_id for a in sup.actors()} | set(sup.shares.servers)
    claimed = {sup.shares.name(s): sup.used(s) for s in servers}
    share = {sup.shares.name(s): sup.shares.share(s) for s in servers}
    reserved = {sup.shares.name(s): sup.shares.limit(s) for s in servers}
    for name in claimed:
        conns.setdefault(name, 0)
    return Snapshot(pools_by_state=by_state, leases_in_use=leases,
                    breakers=sup.breakers.counts(), server_connections=conns,
                    server_claimed=claimed, server_share=share,
                    server_reserved=reserved, pool_cap=pool_cap(sup))


def pool_status(sup: PoolSupervisor, tenant_id: uuid.UUID) -> dict[str, Any]:
    """What this process knows about one tenant's pool (the operator endpoint's body)."""
    actor = sup.actor(tenant_id)
    stats = sup.stats.get(tenant_id)
    tb = sup.breakers.tenants.get(tenant_id)
    body: dict[str, Any] = {
        "tenant_id": str(tenant_id),
        "state": actor.state.value if actor is not None else "closed",
        "pool": None,
        "breaker": tb.snapshot() if tb is not None else {"state": "closed",
                                                         "consecutive_failures": 0},
        "server": None,
        "counters": stats.as_dict() if stats is not None else None,
    }
    if actor is not None:
        size, idle = actor.sizes()
        body["pool"] = {
            "max_size": actor.max_size, "charged": actor.charge, "connections": size,
            "idle": idle,
            "leases": actor.leases, "idle_for_s": round(sup.clock() - actor.last_used, 3),
            "open_for_s": round(sup.clock() - actor.created_at, 3),
        }
        sid = actor.server_id
        sb = sup.breakers.servers.get(sid)
        body["server"] = {
            "id": sid, "name": sup.shares.name(sid), "claimed": sup.used(sid),
            "share": sup.shares.share(sid), "reserved": sup.shares.limit(sid),
            "breaker": sb.snapshot() if sb is not None else {"state": "closed"},
        }
    return body
