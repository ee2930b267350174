"""The dispatcher of stored carrier webhooks: processors and a sweeper.

After a webhook is stored, its inbox row id goes on a bounded in-memory queue drained by a few
processor tasks (so it is applied within milliseconds); a sweeper retries what is still due
(tenant database down, receipt not yet indexed, or an id dropped because the queue was full).
Both are owned by the `carrier_webhooks` cleanup context (plugins.py), which cancels and awaits
them with a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..config import Settings
from ..observability.metrics import Metrics
from .webhooks import observe_backlog, process_by_id, process_due, prune

log = structlog.get_logger("ywm.webhooks")
PROCESSORS = 4
QUEUE_SIZE = 10_000
SWEEP_BATCH = 100
STOP_TIMEOUT = 5.0
SHORT_RETRY = 4.0   # retries due sooner than this are re-queued in-process, not left to the sweep
PRUNE_EVERY = 3600.0
RETENTION_DAYS = 30   # finished inbox events and outbound message ids are kept this long


@dataclass(frozen=True)
class WebhookConfig:
    """The verification key (None: fail closed) and the dispatcher of stored events."""

    public_key: Ed25519PublicKey | None
    dispatcher: WebhookDispatcher


class WebhookDispatcher:
    """Processes stored events soon after they are stored, and sweeps what is still due."""

    def __init__(self, registry_pool: Any, supervisor: Any, settings: Settings,
                 metrics: Metrics | None = None) -> None:
        self._pool, self._sup, self._settings = registry_pool, supervisor, settings
        self._metrics = metrics
        self._queue: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: set[asyncio.TimerHandle] = set()

    def notify(self, row_id: int) -> None:
        """Process this stored event soon (the sweeper catches it if the queue is full)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(row_id)

    def start(self) -> None:
        """Start the processors and the sweeper."""
        loop = asyncio.get_running_loop()
        for n in range(PROCESSORS):
            self._tasks.append(loop.create_task(self._processor(), name=f"webhook_processor_{n}"))
        self._tasks.append(loop.create_task(self._sweeper(), name="webhook_sweeper"))

    async def _processor(self) -> None:
        while True:
            row_id = await self._queue.get()
            try:
                outcome = await process_by_id(self._pool, self._sup, self._settings, row_id,
                                              self._metrics)
            except Exception as exc:   # registry trouble: the sweeper will find the row
                log.warning("webhook_dispatch_failed", row_id=row_id, error=repr(exc))
                continue
            if outcome and outcome.state == "retry" and (outcome.retry_in or 0) <= SHORT_RETRY:
                self._later(outcome.retry_in or 0.0, row_id)

    def _later(self, delay: float, row_id: int) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            self.notify(row_id)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    async def _sweeper(self) -> None:
        last_prune = time.monotonic()
        while True:
            await asyncio.sleep(self._settings.webhook_sweep_interval)
            try:
                while await process_due(self._pool, self._sup, self._settings,
                                        SWEEP_BATCH, self._metrics) == SWEEP_BATCH:
                    pass
                if self._metrics is not None:
                    await observe_backlog(self._pool, self._settings, self._metrics)
                if time.monotonic() - last_prune >= PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await prune(self._pool, self._settings, RETENTION_DAYS)
            except Exception as exc:   # never let one bad round stop the sweeper
                log.warning("webhook_sweep_failed", error=repr(exc))

    async def close(self) -> None:
        """Stop everything (events left unprocessed stay in the inbox)."""
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        self._tasks.clear()
