"""Prometheus metrics: one CollectorRegistry per application (never the global default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Request latencies from a warm pool query (~0.25 ms) up to a bounded slow request.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Carrier API calls: tens of milliseconds when healthy, up to the client timeout.
_CARRIER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Webhook event types with their own label value (anything else is "other").
# the webhook event types counted under their own name (any other is "other"): the carrier's,
# its 10DLC events, then Stripe's (billing/webhooks.py EVENT_TYPES)
WEBHOOK_EVENT_TYPES = frozenset({
    "message.received", "message.sent", "message.finalized", "number_order.complete",
    "10dlc.brand.update", "10dlc.campaign.update", "10dlc.phone_number.update",
    "checkout.session.completed", "customer.subscription.created",
    "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.trial_will_end", "invoice.paid", "invoice.payment_failed",
    "invoice.payment_action_required"})
# What a worker's drain reports (DrainStats field names), each a value of `outcome`.
OUTBOX_OUTCOMES = ("sent", "retried", "failed", "unknown", "skipped", "released", "deferred",
                   "expired", "requeued", "looked_up", "settled")


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

        self.outbox = Counter(
            "ywm_outbox_messages_total",
            "Outbox rows by what this process's worker did with them (sent, retried, failed, "
            "unknown, skipped at claim, released unsent, deferred for quiet hours, expired "
            "sends (now unknown), requeued from a dead worker's claim, looked_up at the "
            "carrier after a lost receipt, settled by that lookup).",
            ["outcome"], registry=self.registry,
        )
        self.carrier_calls = Histogram(
            "ywm_carrier_request_duration_seconds",
            "Carrier API calls by operation and result (HTTP status, or the transport error).",
            ["operation", "result"], registry=self.registry, buckets=_CARRIER_BUCKETS,
        )
        self.webhooks = Counter(
            "ywm_webhook_events_total",
            "Webhooks (the carrier's and Stripe's): at the endpoint (stored, duplicate, "
            "store_failed) and after processing (done, ignored, retry), by event type.",
            ["event_type", "outcome"], registry=self.registry,
        )
        self.inbox = Gauge(
            "ywm_webhook_inbox_events",
            "Stored webhook events not finished yet (received, failed = waiting to be retried, "
            "processing) and given up after every retry (gave_up), as of the last inbox sweep "
            "of this process.",
            ["state"], registry=self.registry,
        )
        self.inbox_oldest_due = Gauge(
            "ywm_webhook_inbox_oldest_due_seconds",
            "Age of the oldest due event still waiting for processing (0: none), as of the "
            "last inbox sweep.", registry=self.registry,
        )

        # (method, route, status) → the two series a request updates (bounded like the labels:
        # routes are templates, methods and statuses few).
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

        self.events_connections = Gauge(
            "ywm_events_connections", "Live-events WebSockets open on this process.",
            registry=self.registry,
        )
        self.events_published = Counter(
            "ywm_events_published_total",
            "Church events this process published through the registry, by type and outcome "
            "(published, publish_failed).", ["type", "outcome"], registry=self.registry,
        )
        self.events_sent = Counter(
            "ywm_events_sent_total", "Event frames sent to live-events sockets.",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "ywm_events_dropped_total",
            "Live-events sockets closed by the server, by reason (slow, revoked, expired, "
            "shutdown).", ["reason"], registry=self.registry,
        )

        self.housekeeping = Counter(
            "ywm_housekeeping_deleted_rows_total",
            "Rows the housekeeping round deleted from church databases, by kind.",
            ["kind"], registry=self.registry,
        )

    def observe_drain(self, stats: Any) -> None:
        """Count one drain's outcomes (a messaging.outbox.DrainStats)."""
        for outcome in OUTBOX_OUTCOMES:
            value = getattr(stats, outcome)
            if value:
                self.outbox.labels(outcome).inc(value)

    def observe_event_published(self, event_type: str, outcome: str) -> None:
        """Count one published event (`event_type` is one of events.publisher.TYPES)."""
        self.events_published.labels(event_type, outcome).inc()

    def observe_carrier(self, operation: str, result: str, seconds: float) -> None:
        """Time one carrier call (`result`: HTTP status or a transport error name)."""
        self.carrier_calls.labels(operation, result).observe(seconds)

    def observe_webhook(self, event_type: str, outcome: str) -> None:
        """Count one webhook event at the endpoint or after processing."""
        kind = event_type if event_type in WEBHOOK_EVENT_TYPES else "other"
        self.webhooks.labels(kind, outcome).inc()

    def observe_inbox(self, counts: dict[str, int], oldest_due_s: float) -> None:
        """The inbox backlog by state (states not present are 0)."""
        for state in ("received", "processing", "failed", "gave_up"):
            self.inbox.labels(state).set(counts.get(state, 0))
        self.inbox_oldest_due.set(max(0.0, oldest_due_s))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request; `route` must be a template, never a raw path."""
        method = method if method in _METHODS else "other"
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:  # labels() takes a lock and builds a tuple: once per series
            children = (self.http_requests.labels(method, route, str(status)),
                        self.http_duration.labels(method, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

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
