"""Publish a church's events: one registry statement numbers, stores and notifies each.

Publishing happens right after the change it reports has committed (a church's database and
the registry are two databases, so not in one transaction); a failure to publish is logged and
counted, never raised, so an event can be lost only when the registry is down, and a screen
that reconnects refetches what it shows. Delivery statuses are many and small: they are
collected per church and published as one `delivery.status` event every FLUSH_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..sqlq import registry as rq

log = structlog.get_logger("ywm.events")

CHANNEL = "ywm_events"
PUBLISH_TIMEOUT_S = 2.0
FLUSH_S = 0.25          # delivery statuses of one church are batched this long
MAX_BATCH = 500         # and at most this many per event
# Every event type (the metrics label and the contract's enum).
TYPES = ("message.received", "message.sent", "delivery.status", "broadcast.progress",
         "broadcast.completed", "import.progress", "import.completed", "member.opted_out",
         "member.opted_in", "number.status")


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    raise TypeError(type(value).__name__)


class Publisher:
    """Publishes events through the registry (one per process, shared by its emitters)."""

    def __init__(self, registry_pool: Any, settings: Settings, metrics: Any = None) -> None:
        self._pool = registry_pool
        self._q = rq(settings.sql_dir)
        self._metrics = metrics
        self._statuses: dict[uuid.UUID, list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def publish(self, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any],
                      occurred_at: datetime | None = None) -> int | None:
        """Publish one event; its id, or None when the registry could not take it."""
        try:
            event_id: int = await self._q.publish_event(
                self._pool, tenant_id, event_type, occurred_at or datetime.now(UTC),
                orjson.dumps(data, default=_default).decode(), timeout=PUBLISH_TIMEOUT_S)
        except Exception as exc:  # the change stands; the screen refetches on reconnect
            log.warning("event_publish_failed", tenant_id=str(tenant_id), type=event_type,
                        error=type(exc).__name__)
            self._count("publish_failed", event_type)
            return None
        self._count("published", event_type)
        return event_id

    def emit(self, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any],
             occurred_at: datetime | None = None) -> None:
        """Publish in the background (for callers that must not wait for the registry)."""
        self._spawn(self.publish(tenant_id, event_type, data, occurred_at))

    def emit_in_order(self, tenant_id: uuid.UUID,
                      events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish several events in the background, one after another (ids in this order)."""

        async def publish_all() -> None:
            for event_type, data in events:
                await self.publish(tenant_id, event_type, data)

        self._spawn(publish_all())

    def status(self, tenant_id: uuid.UUID, item: dict[str, Any]) -> None:
        """Add one delivery status to the church's next `delivery.status` event."""
        pending = self._statuses.get(tenant_id)
        if pending is None:
            pending = self._statuses[tenant_id] = []
            asyncio.get_running_loop().call_later(FLUSH_S, self._flush_soon, tenant_id)
        pending.append(item)
        if len(pending) >= MAX_BATCH:
            self._flush_soon(tenant_id)

    def _flush_soon(self, tenant_id: uuid.UUID) -> None:
        items = self._statuses.pop(tenant_id, None)
        if items:
            self._spawn(self.publish(tenant_id, "delivery.status", {"statuses": items}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="event_publish")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, outcome: str, event_type: str) -> None:
        if self._metrics is not None:
            self._metrics.observe_event_published(event_type, outcome)

    async def close(self, timeout: float = 5.0) -> None:
        """Publish what is still batched and wait (bounded) for publishes in flight."""
        for tenant_id in list(self._statuses):
            self._flush_soon(tenant_id)
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True),
                                       timeout)
