"""The dispatcher of stored webhooks: processors and a sweeper, for one provider's inbox.

After a webhook is stored, its inbox row id goes on a bounded in-memory queue drained by a few
processor tasks (so it is applied within milliseconds); a sweeper retries what is still due
(a church database down, a receipt not yet indexed, Stripe not answering, or an id dropped
because the queue was full). What processing means is the provider's `Inbox` (the carrier's:
webhooks.CarrierInbox; Stripe's: billing/webhooks.py). Each dispatcher is owned by a cleanup
context, which cancels and awaits it with a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .webhooks import Outcome

log = structlog.get_logger("ywm.webhooks")
PROCESSORS = 4
QUEUE_SIZE = 10_000
SWEEP_BATCH = 100
STOP_TIMEOUT = 5.0
SHORT_RETRY = 4.0   # retries due sooner than this are re-queued in-process, not left to the sweep
PRUNE_EVERY = 3600.0


class Inbox(Protocol):
    """One provider's stored events, as the dispatcher drives them."""

    async def process_by_id(self, row_id: int) -> Outcome | None:
        """Claim and process one stored event (None: someone else has it, or it is done)."""

    async def process_due(self, limit: int) -> int:
        """Claim and process up to `limit` due events; how many."""

    async def after_sweep(self) -> None:
        """Whatever follows a sweep (gauges)."""

    async def prune(self) -> None:
        """Delete what has been finished long enough (hourly)."""


@dataclass(frozen=True)
class WebhookConfig:
    """The carrier's verification key (None: fail closed) and the dispatcher of its events."""

    public_key: Ed25519PublicKey | None
    dispatcher: WebhookDispatcher


class WebhookDispatcher:
    """Processes stored events soon after they are stored, and sweeps what is still due."""

    def __init__(self, inbox: Inbox, sweep_interval: float, name: str = "webhook") -> None:
        self._inbox, self._interval, self._name = inbox, sweep_interval, name
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
            self._tasks.append(loop.create_task(self._processor(),
                                                name=f"{self._name}_processor_{n}"))
        self._tasks.append(loop.create_task(self._sweeper(), name=f"{self._name}_sweeper"))

    async def _processor(self) -> None:
        while True:
            row_id = await self._queue.get()
            try:
                outcome = await self._inbox.process_by_id(row_id)
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
            await asyncio.sleep(self._interval)
            try:
                while await self._inbox.process_due(SWEEP_BATCH) == SWEEP_BATCH:
                    pass
                await self._inbox.after_sweep()
                if time.monotonic() - last_prune >= PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await self._inbox.prune()
            except Exception as exc:   # never let one bad round stop the sweeper
                log.warning("webhook_sweep_failed", dispatcher=self._name, error=repr(exc))

    async def close(self) -> None:
        """Stop everything (events left unprocessed stay in the inbox)."""
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        self._tasks.clear()
