"""Read-only views of the supervisor for operators: its pool cap and one tenant's pool status."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .supervisor import PoolSupervisor


def pool_cap(sup: PoolSupervisor) -> int:
    """Pools this process may keep open now (PoolSupervisor.pool_cap)."""
    return sup.pool_cap()


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
