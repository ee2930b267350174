"""Webhook delivery as Stripe does it: each attempt signed afresh (`Stripe-Signature:
t=…,v1=…`, HMAC-SHA256 of `t.body` with the endpoint secret), retried with backoff until a 2xx
or the tries run out; one event at a time per endpoint, in the order they happened."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import orjson

from .state import StripeSimState


def stripe_signature(secret: str, payload: bytes, at: int | None = None) -> str:
    """The `Stripe-Signature` header of `payload` signed with `secret` at `at` (now)."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={mac.hexdigest()}"


class StripeWebhookSender:
    """Queues events and delivers them in order in one background task; `idle()` waits."""

    def __init__(self, state: StripeSimState) -> None:
        self._state = state
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._state.webhook_timeout))
        return self._session

    def send(self, event: dict[str, Any]) -> None:
        """Deliver `event` after those queued before it."""
        self._queue.put_nowait(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="stripe_sim_webhooks")

    async def _run(self) -> None:
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await self.deliver(event)
            finally:
                self._queue.task_done()

    async def _attempt(self, url: str, body: bytes) -> int | None:
        self._state.counters["webhook_attempts"] += 1
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                   "Stripe-Signature": stripe_signature(self._state.webhook_secret, body)}
        try:
            async with self._http().post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def deliver(self, event: dict[str, Any]) -> int | None:
        """Deliver one event now with retries; the last HTTP status (None: never answered)."""
        url = self._state.webhook_url
        body = orjson.dumps(event)
        status: int | None = None
        attempts = 0
        for delay in (0.0, *self._state.webhook_retry_delays):
            if delay:
                await asyncio.sleep(delay)
            attempts += 1
            status = await self._attempt(url, body)
            if status is not None and 200 <= status < 300:
                break
        ok = status is not None and 200 <= status < 300
        self._state.counters["webhooks_ok" if ok else "webhooks_failed"] += 1
        self._state.deliveries.append({"event_id": event["id"], "type": event["type"],
                                       "status": status, "attempts": attempts, "url": url})
        return status

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up (bounded)."""
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop delivering; close the HTTP session."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
