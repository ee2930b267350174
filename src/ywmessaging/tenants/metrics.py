"""Supervisor metrics (bounded labels, never per tenant) and per-tenant figures kept in memory.

Gauges are read from the supervisor at scrape time by a collector, so they can never drift
from the truth; counters and histograms are updated as things happen.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

EVICTION_REASONS = ("lru", "idle", "unhealthy", "tenant_changed", "operator", "shutdown")
_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
_START_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
MAX_TENANT_STATS = 10_000


@dataclass
class Snapshot:
    """What the gauges show, taken from the supervisor at scrape time."""

    pools_by_state: dict[str, int]
    leases_in_use: int
    breakers: dict[tuple[str, str], int]          # (scope, state) → count
    server_connections: dict[str, int]            # server name → open connections
    server_claimed: dict[str, int]                # server name → open pools' charges
    server_share: dict[str, int]                  # server name → this process's share
    server_reserved: dict[str, int] = field(default_factory=dict)  # → its reservation
    pool_cap: int = 0                              # open pools allowed now


class _SupervisorCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("ywm_tenant_pools_open", "Tenant pools open (not closed)."),
            GaugeMetricFamily("ywm_tenant_pools", "Tenant pools by state.", labels=["state"]),
            GaugeMetricFamily("ywm_tenant_leases_in_use", "Tenant connection leases out now."),
            GaugeMetricFamily("ywm_tenant_breakers", "Circuit breakers by scope and state.",
                              labels=["scope", "state"]),
            GaugeMetricFamily("ywm_tenant_server_connections",
                              "Connections this process's tenant pools hold, by server.",
                              labels=["server"]),
            GaugeMetricFamily("ywm_tenant_server_claimed_connections",
                              "Connections charged to this process's open pools, by server.",
                              labels=["server"]),
            GaugeMetricFamily("ywm_tenant_server_share_connections",
                              "This process's share of each server's connection budget.",
                              labels=["server"]),
            GaugeMetricFamily("ywm_tenant_server_reserved_connections",
                              "Connections this process reserved on each server (its claim).",
                              labels=["server"]),
            GaugeMetricFamily("ywm_tenant_pools_cap",
                              "Tenant pools this process may keep open now (its shares at one "
                              "connection per pool, or YWM_TENANT_POOL_CAP if lower)."),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self._snapshot()
        fams = self._families()
        opened, by_state, leases, breakers, conns, claimed, share, reserved, cap = fams
        cap.add_metric([], snap.pool_cap)
        opened.add_metric([], sum(n for s, n in snap.pools_by_state.items() if s != "closed"))
        for state, n in sorted(snap.pools_by_state.items()):
            by_state.add_metric([state], n)
        leases.add_metric([], snap.leases_in_use)
        for (scope, state), n in sorted(snap.breakers.items()):
            breakers.add_metric([scope, state], n)
        for fam, values in ((conns, snap.server_connections), (claimed, snap.server_claimed),
                            (share, snap.server_share), (reserved, snap.server_reserved)):
            for server, n in sorted(values.items()):
                fam.add_metric([server], n)
        yield from fams


class PoolMetrics:
    """Counters and histograms of one supervisor, in the caller's CollectorRegistry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lease_wait = Histogram(
            "ywm_tenant_lease_wait_seconds",
            "Time from asking for a tenant lease to holding a connection (cold starts included).",
            registry=r, buckets=_WAIT_BUCKETS)
        self.cold_starts = Counter("ywm_tenant_cold_starts_total",
                                   "Tenant pools opened (first connection made).", registry=r)
        self.cold_start_seconds = Histogram(
            "ywm_tenant_cold_start_seconds", "Time to open a tenant pool and its first connection.",
            registry=r, buckets=_START_BUCKETS)
        self.evictions = Counter("ywm_tenant_evictions_total", "Tenant pools closed, by reason.",
                                 ["reason"], registry=r)
        self.lease_errors = Counter("ywm_tenant_lease_errors_total",
                                    "Leases refused, by problem code.", ["code"], registry=r)
        for reason in EVICTION_REASONS:
            self.evictions.labels(reason)
        self._collector: Collector | None = None

    def watch(self, snapshot: Callable[[], Snapshot]) -> None:
        """Expose the supervisor's gauges (read at scrape time)."""
        self._collector = _SupervisorCollector(snapshot)
        self.registry.register(self._collector)

    def unwatch(self) -> None:
        """Stop exposing the gauges (supervisor closed)."""
        if self._collector is not None:
            self.registry.unregister(self._collector)
            self._collector = None


@dataclass
class TenantStats:
    """Per-tenant figures for the operator endpoint (never exported as metric labels)."""

    leases: int = 0
    cold_starts: int = 0
    errors: int = 0
    evictions: int = 0
    last_used: float | None = None        # wall-clock seconds
    last_error: str | None = None
    last_error_at: float | None = None
    last_eviction: str | None = None
    error_codes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form with ISO-free epoch seconds."""
        return {
            "leases": self.leases, "cold_starts": self.cold_starts, "errors": self.errors,
            "error_codes": dict(self.error_codes), "evictions": self.evictions,
            "last_used": self.last_used, "last_error": self.last_error,
            "last_error_at": self.last_error_at, "last_eviction": self.last_eviction,
        }


class StatsBook:
    """TenantStats by tenant, least recently touched dropped beyond a bound."""

    def __init__(self, limit: int = MAX_TENANT_STATS) -> None:
        self._limit = limit
        self._stats: OrderedDict[uuid.UUID, TenantStats] = OrderedDict()

    def get(self, tenant_id: uuid.UUID) -> TenantStats | None:
        return self._stats.get(tenant_id)

    def touch(self, tenant_id: uuid.UUID) -> TenantStats:
        """The tenant's stats, created if needed, marked most recently touched."""
        stats = self._stats.get(tenant_id)
        if stats is None:
            stats = self._stats[tenant_id] = TenantStats()
            while len(self._stats) > self._limit:
                self._stats.popitem(last=False)
        else:
            self._stats.move_to_end(tenant_id)
        return stats

    def error(self, tenant_id: uuid.UUID, code: str, detail: str | None) -> None:
        """Count a refused or failed lease."""
        stats = self.touch(tenant_id)
        stats.errors += 1
        stats.error_codes[code] = stats.error_codes.get(code, 0) + 1
        if detail:
            stats.last_error, stats.last_error_at = detail, time.time()
