"""Fixtures of the messaging tests: the carrier simulator in-process, the app wired to it
(its webhooks come back to the app over real HTTP), signed posts, tenant database access.

Import into a test module with `from tests.integration.carrier_sim_fixtures import *`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from tests.integration import auth_fixtures
from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.messaging import signature
from ywmessaging.messaging.simulator import RunningSimulator, start_simulator

__all__ = [
    *auth_fixtures.__all__,
    "church_with_number",
    "envelope",
    "inbox_row",
    "msg_client",
    "msg_settings",
    "post_signed",
    "random_number",
    "sim",
    "sim_inbound",
    "tenant_db",
    "wait_until",
]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """A carrier simulator on a free loopback port; its number orders stay `pending` for
    0.05 s, like Telnyx's for a moment."""
    running = await start_simulator(order_delay=0.05)
    yield running
    await running.stop()


@pytest.fixture
def msg_settings(api_settings: Settings, sim: RunningSimulator) -> Settings:
    """App settings pointing at the simulator and trusting its webhook key."""
    return api_settings.with_(telnyx_api_base=sim.base_url, telnyx_public_key=sim.public_key,
                              webhook_sweep_interval=0.2, telnyx_timeout=2.0)


@pytest.fixture
async def msg_client(make_api_client: Callable[[Settings], Awaitable[Client]],
                     msg_settings: Settings, sim: RunningSimulator) -> Client:
    """The app, started; the simulator delivers its webhooks to it."""
    client = await make_api_client(msg_settings)
    sim.set_webhook_url(str(client.make_url("/webhooks/telnyx")))
    return client


def random_number() -> str:
    """A fictional US number unlikely to be used by another test of this session."""
    area = f"{secrets.choice('23456789')}{secrets.randbelow(100):02d}"
    return f"+1{area}555{secrets.randbelow(10**4):04d}"


async def church_with_number(client: Client, registry_conn: Any,
                             sim: RunningSimulator) -> tuple[Church, str]:
    """A church signed up through HTTP, with a number routed to it in the registry and owned
    by the simulator's account (so it may send from it)."""
    church = await register(client)
    number = random_number()
    await registry_conn.execute(
        "INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)",
        number, uuid.UUID(church.tenant_id))
    sim.state.add_number(number)
    return church, number


@asynccontextmanager
async def tenant_db(pg_admin: PgTarget, registry_conn: Any,
                    tenant_id: str) -> AsyncIterator[Any]:
    """An admin connection to a church's database (for assertions and set-up)."""
    name = await registry_conn.fetchval("SELECT db_name FROM tenants WHERE id = $1",
                                        uuid.UUID(tenant_id))
    conn = await pg.connect(pg_admin.with_db(name))
    try:
        yield conn
    finally:
        await conn.close()


def envelope(event_type: str, payload: dict[str, Any], *, event_id: str | None = None,
             occurred_at: str | None = None) -> dict[str, Any]:
    """A Telnyx webhook body."""
    return {"data": {"record_type": "event", "id": event_id or str(uuid.uuid4()),
                     "event_type": event_type,
                     "occurred_at": occurred_at or "2024-05-01T12:00:00.000+00:00",
                     "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "http://test"}}


async def post_signed(client: Client, sim: RunningSimulator, body: dict[str, Any] | bytes, *,
                      at: int | None = None, headers: dict[str, str] | None = None) -> Any:
    """POST /webhooks/telnyx signed with the simulator's key (optionally at another time)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    signed = signature.signed_headers(sim.state.key, raw, at=at)
    return await client.post("/webhooks/telnyx", data=raw, headers={
        "Content-Type": "application/json", **signed, **(headers or {})})


async def sim_inbound(client: Client, sim: RunningSimulator, frm: str, to: str, text: str,
                      **extra: Any) -> dict[str, Any]:
    """Have the simulator deliver an inbound SMS to the app; its answer's data."""
    async with client.session.post(f"{sim.base_url}/sim/inbound",
                                   json={"from": frm, "to": to, "text": text, **extra}) as r:
        body = await r.json()
        assert r.status == 200, body
    data: dict[str, Any] = body["data"]
    assert data["status"] == 200, data
    return data


async def inbox_row(registry_conn: Any, event_id: str) -> Any:
    """The registry inbox row of a Telnyx event (None if never stored)."""
    return await registry_conn.fetchrow(
        "SELECT * FROM webhook_inbox WHERE provider = 'telnyx' AND event_id = $1", event_id)


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0,
                     every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (bounded); return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
