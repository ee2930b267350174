"""Fixtures of the billing tests: the Stripe simulator in-process, the adapter pointed at it,
and a local webhook receiver (a real aiohttp server) that records what it is sent.

Import into a test module with `from tests.integration.stripe_sim_fixtures import *`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ywmessaging.billing.catalogue import PLANS
from ywmessaging.billing.simulator import RunningStripeSim, start_stripe_sim
from ywmessaging.billing.stripe_client import StripeBilling
from ywmessaging.billing.sync import sync_catalogue
from ywmessaging.config import Settings

__all__ = ["Receiver", "billing", "catalogue_prices", "receiver", "sim_post", "stripe_settings",
           "stripe_sim"]


@dataclass
class Receiver:
    """A webhook endpoint: every delivery (raw body and Stripe-Signature) in order; answers
    `fail_first` deliveries with 500 before it accepts."""

    url: str = ""
    fail_first: int = 0
    received: list[tuple[bytes, str]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        """Record, then 500 or 200."""
        self.received.append((await request.read(), request.headers.get("Stripe-Signature", "")))
        status = 500 if len(self.received) <= self.fail_first else 200
        self.answered.append(status)
        return web.Response(status=status)

    def types(self, accepted_only: bool = True) -> list[str]:
        """The event types received (only the deliveries answered 200 by default)."""
        import orjson

        return [orjson.loads(body)["type"] for (body, _), status
                in zip(self.received, self.answered, strict=True)
                if status == 200 or not accepted_only]


@pytest.fixture
async def stripe_sim() -> AsyncIterator[RunningStripeSim]:
    """A Stripe simulator on a free loopback port, retrying webhooks after 0.05 s and 0.1 s."""
    running = await start_stripe_sim(webhook_retry_delays=(0.05, 0.1))
    yield running
    await running.stop()


@pytest.fixture
async def receiver(stripe_sim: RunningStripeSim) -> AsyncIterator[Receiver]:
    """A local webhook endpoint the simulator delivers to."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/stripe", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rec.url = f"http://{host}:{port}/webhooks/stripe"
    stripe_sim.set_webhook_url(rec.url)
    yield rec
    await runner.cleanup()


@pytest.fixture
def stripe_settings(stripe_sim: RunningStripeSim) -> Settings:
    """Settings pointing the adapter at the simulator and trusting its webhook secret."""
    return Settings(stripe_api_base=stripe_sim.base_url, stripe_timeout=2.0,
                    stripe_webhook_secret=stripe_sim.webhook_secret, stripe_max_retries=2)


@pytest.fixture
async def billing(stripe_settings: Settings) -> AsyncIterator[StripeBilling]:
    """The Stripe adapter on the simulator."""
    client = StripeBilling(stripe_settings)
    yield client
    await client.close()


@pytest.fixture
async def catalogue_prices(billing: StripeBilling) -> dict[str, str]:
    """The catalogue synced to the simulator: lookup key → price id."""
    report = await sync_catalogue(billing, PLANS)
    return {key: price_id for key, (_, price_id) in report.prices.items()}


async def sim_post(sim: RunningStripeSim, path: str, body: dict[str, Any] | None = None,
                   expect: int = 200) -> Any:
    """POST a `/sim/*` control route; its JSON answer (asserting the status)."""
    async with aiohttp.ClientSession() as http, http.post(f"{sim.base_url}{path}",
                                                          json=body or {}) as resp:
        doc = await resp.json()
        assert resp.status == expect, doc
    await asyncio.sleep(0)
    return doc
