"""Prometheus metrics: one CollectorRegistry per application (never the global default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Request latencies from a warm pool query (~0.25 ms) up to a bounded slow request.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class PoolCollector(Collector):
    """`<name>{state="in_use|idle|max"}` read from an asyncpg pool at scrape time."""

    def __init__(self, name: str, documentation: str, pool: Any) -> None:
        self._name = name
        self._doc = documentation
        self._pool = pool

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self._doc, labels=["state"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        family.add_metric(["in_use"], size - idle)
        family.add_metric(["idle"], idle)
        family.add_metric(["max"], self._pool.get_max_size())
        yield family


class Metrics:
    """The metrics of one application and the registry they are exposed from."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "ywm_http_requests_total", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_duration = Histogram(
            "ywm_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], registry=self.registry, buckets=_LATENCY_BUCKETS,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request; `route` must be a template, never a raw path."""
        method = method if method in _METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def watch_pool(self, name: str, documentation: str, pool: Any) -> Collector:
        """Expose an asyncpg pool's connection counts; unregister the result when it closes."""
        collector = PoolCollector(name, documentation, pool)
        self.registry.register(collector)
        return collector

    def unwatch(self, collector: Collector) -> None:
        """Stop exposing a collector added by `watch_pool`."""
        self.registry.unregister(collector)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
