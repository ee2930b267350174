"""Signed webhook delivery with Telnyx-like retries (a few tries, 2 s each), and the
simulator's other background work."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiohttp
import orjson

from ..signature import signed_headers
from .state import SimState


class WebhookSender:
    """Delivers signed events; background deliveries are tracked and cancelled on close."""

    def __init__(self, state: SimState, *, concurrency: int = 32) -> None:
        self._state = state
        self._session: aiohttp.ClientSession | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._state.webhook_timeout))
        return self._session

    async def _attempt(self, url: str, event: dict[str, Any], attempt: int) -> int | None:
        doc = dict(event, meta={"attempt": attempt, "delivered_to": url})
        body = orjson.dumps(doc)
        headers = {"Content-Type": "application/json",
                   **signed_headers(self._state.key, body)}
        try:
            async with self._http().post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def deliver(self, event: dict[str, Any], url: str | None = None) -> int | None:
        """Deliver now with retries; returns the last HTTP status (None: never answered)."""
        url = url or self._state.webhook_url
        delays = (0.0, *self._state.webhook_retry_delays)
        status: int | None = None
        async with self._sem:
            for attempt, delay in enumerate(delays, start=1):
                if delay:
                    await asyncio.sleep(delay)
                status = await self._attempt(url, event, attempt)
                if status is not None and 200 <= status < 300:
                    break
        ok = status is not None and 200 <= status < 300
        self._state.counters["webhooks_ok" if ok else "webhooks_failed"] += 1
        self._state.deliveries.append({"event_id": event["data"]["id"], "status": status,
                                       "event_type": event["data"]["event_type"], "url": url})
        if ok and event["data"]["event_type"] in ("message.sent", "message.finalized"):
            payload = event["data"]["payload"]
            self._state.told[payload["id"]] = payload["to"][0]["status"]
        return status

    def deliver_later(self, *events: dict[str, Any], url: str | None = None) -> None:
        """Deliver events one after another in a background task."""

        async def run() -> None:
            for event in events:
                await self.deliver(event, url)

        self.spawn(run())

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background (a delivery, or a number order completing and its
        webhook); `idle()` waits for it and `close()` cancels it."""
        task = asyncio.get_running_loop().create_task(work, name="carrier_sim_background")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is pending (bounded); True when idle."""
        try:
            async with asyncio.timeout(timeout):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
