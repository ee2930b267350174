"""Webhooks as Planning Center sends them: an `EventDelivery` whose `payload` is the resource
as a JSON string, signed with the subscription's authenticity secret
(`X-PCO-Webhooks-Authenticity`: hex HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from typing import Any

import aiohttp
import orjson
import structlog

from .state import PcoSimState

log = structlog.get_logger("ywm.pco_sim")
AUTHENTICITY_HEADER = "X-PCO-Webhooks-Authenticity"
RETRY_DELAYS = (0.2, 1.0)


def sign(secret: str, body: bytes) -> str:
    """The authenticity header's value for `body`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_body(state: PcoSimState, name: str, resource: dict[str, Any]) -> bytes:
    """The body of one delivery of event `name` about `resource`."""
    return orjson.dumps({"data": [{
        "id": str(uuid.uuid4()), "type": "EventDelivery",
        "attributes": {"name": name, "attempt": 1,
                       "payload": orjson.dumps({"data": resource}).decode()},
        "relationships": {"organization": {"data": {
            "type": "Organization", "id": state.organization_id}}},
    }]})


class WebhookSender:
    """Delivers events to the subscriptions that asked for them, in the background."""

    def __init__(self, state: PcoSimState) -> None:
        self._state = state
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered: list[tuple[str, int]] = []

    def emit(self, name: str, resource: dict[str, Any]) -> None:
        """Send event `name` to every active subscription for it."""
        for sub in list(self._state.subscriptions.values()):
            if sub["active"] and sub["name"] == name:
                body = delivery_body(self._state, name, resource)
                task = asyncio.create_task(self._deliver(sub, name, body),
                                           name=f"pco_sim_webhook_{name}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sub: dict[str, Any], name: str, body: bytes) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        headers = {"Content-Type": "application/json", "X-PCO-Webhooks-Name": name,
                   AUTHENTICITY_HEADER: sign(sub["secret"], body)}
        for delay in (0.0, *RETRY_DELAYS):
            await asyncio.sleep(delay)
            try:
                async with self._http.post(sub["url"], data=body, headers=headers) as resp:
                    self.delivered.append((name, resp.status))
                    if resp.status < 500:
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("pco_sim_webhook_failed", event=name, error=type(exc).__name__)

    async def idle(self) -> None:
        """Wait until every delivery in flight has ended."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Cancel deliveries in flight; close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._http is not None:
            await self._http.close()
