"""Fixtures of the sending tests (broadcasts, worker, recurring, conversations): the app wired
to the carrier simulator (receipts come back over real HTTP), churches with a number and
members, and workers run in-process.

Import into a test module with `from tests.integration.sending_fixtures import *`.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from tests.integration import carrier_sim_fixtures
from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import Church, Client, church_with_number, tenant_db
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget
from ywmessaging.keys import REGISTRY_POOL
from ywmessaging.messaging.telnyx import carrier_from_settings
from ywmessaging.messaging.worker import Worker
from ywmessaging.tenants.keys import SUPERVISOR

__all__ = [
    *carrier_sim_fixtures.__all__,
    "Sending",
    "add_members",
    "outbox_states",
    "running_worker",
    "send_client",
    "send_overrides",
    "send_settings",
    "sending",
    "sim_numbers",
    "states_are",
]


@pytest.fixture
def send_overrides() -> dict[str, Any]:
    """Settings a test module changes on top of `send_settings` (override this fixture)."""
    return {}


@pytest.fixture
def send_settings(msg_settings: Settings, send_overrides: dict[str, Any]) -> Settings:
    """Fast, unpaced sending for tests (each test narrows what it needs)."""
    return msg_settings.with_(
        worker_poll_interval=0.05, send_rate_per_church=0.0, send_rate_per_number=0.0,
        send_backoff_base=0.05, send_lease_seconds=10.0, worker_claim_ttl=10.0,
        worker_concurrency=2, tenant_pool_max=5,
        worker_reconcile_interval=3600.0, **send_overrides)


@pytest.fixture
async def send_client(make_api_client: Callable[[Settings], Awaitable[Client]],
                      send_settings: Settings, sim: Any, registry_conn: Any) -> Client:
    """The app on a real loopback port; the simulator's receipts come back to it. The work
    queue starts empty and the workers' reconciliation and housekeeping rounds are put off
    (other tests' churches, with their leftover rows, are not this test's business)."""
    await registry_conn.execute("DELETE FROM tenant_work")
    # other tests' webhook events still due (receipts for their messages, their churches'
    # databases gone) would keep this test's inbox sweeper busy
    await registry_conn.execute(
        "UPDATE webhook_inbox SET state = 'ignored', last_error = 'test_isolation' "
        "WHERE state IN ('received', 'failed')")
    await registry_conn.execute(
        "INSERT INTO work_timers (name, next_at) "
        "VALUES ('reconcile', 'infinity'), ('housekeeping', 'infinity') "
        "ON CONFLICT (name) DO UPDATE SET next_at = 'infinity'")
    client = await make_api_client(send_settings)
    sim.set_webhook_url(str(client.make_url("/webhooks/telnyx")))
    return client


async def add_members(db: Any, count: int, *, opted_out: int = 0,
                      prefix: str | None = None) -> list[str]:
    """Insert `count` members straight into a church database (the first `opted_out` of them
    opted out); their phones, in order."""
    area = prefix or f"+1{secrets.choice('23456789')}{secrets.randbelow(100):02d}"
    phones = [f"{area}{i:07d}" for i in range(1, count + 1)]
    await db.execute(
        "INSERT INTO members (first_name, last_name, phone, opt_in) "
        "SELECT 'Member', 'No ' || n, p, CASE WHEN n <= $2 THEN 'opted_out' ELSE 'opted_in' END "
        "FROM unnest($1::text[]) WITH ORDINALITY AS t(p, n)", phones, opted_out)
    return phones


@pytest.fixture
def sending(send_client: Client, registry_conn: Any, pg_admin: PgTarget,
            send_settings: Settings, sim: Any) -> Sending:
    """Helpers bound to this test's app, registry and simulator."""
    return Sending(send_client, registry_conn, pg_admin, send_settings, sim)


class Sending:
    """A test's view of the sending machinery."""

    def __init__(self, client: Client, registry_conn: Any, pg_admin: PgTarget,
                 settings: Settings, sim: Any) -> None:
        self.client = client
        self.registry_conn = registry_conn
        self.pg_admin = pg_admin
        self.settings = settings
        self.sim = sim

    async def church(self, members: int = 0, opted_out: int = 0) -> tuple[Church, str, list[str]]:
        """A church with a number (also its sender) and members; (church, number, phones)."""
        church, number = await church_with_number(self.client, self.registry_conn, self.sim)
        async with self.db(church) as db:
            await db.execute("UPDATE settings SET sender_number = $1", number)
            phones = await add_members(db, members, opted_out=opted_out) if members else []
        return church, number, phones

    def db(self, church: Church) -> Any:
        """An admin connection to the church's database."""
        return tenant_db(self.pg_admin, self.registry_conn, church.tenant_id)

    async def fault(self, **fault: Any) -> None:
        """Inject a fault into the simulator (POST /sim/faults, asserting 201)."""
        async with self.client.session.post(f"{self.sim.base_url}/sim/faults",
                                            json=fault) as resp:
            assert resp.status == 201, await resp.text()

    async def broadcast(self, church: Church, body: dict[str, Any], status: int = 201) -> Any:
        """POST /broadcasts, asserting the status; the JSON answer."""
        resp = await self.client.post("/api/v1/broadcasts", json=body, headers=church.auth)
        doc = await resp.json(content_type=None)
        assert resp.status == status, doc
        return doc


async def states_are(db: Any, broadcast_id: str, expected: dict[str, int]) -> bool:
    """Whether a broadcast's outbox rows are exactly `expected` per state."""
    return await outbox_states(db, broadcast_id) == expected


def sim_numbers(sim: Any) -> list[str]:
    """Recipients of every message the simulator accepted, in order."""
    return [m["to"][0]["phone_number"] for m in sim.state.messages]


async def outbox_states(db: Any, broadcast_id: str | None = None) -> dict[str, int]:
    """Outbox rows per state (of one broadcast, or all)."""
    rows = await db.fetch(
        "SELECT state, count(*) AS n FROM outbox "
        "WHERE $1::uuid IS NULL OR broadcast_id = $1 GROUP BY state",
        uuid.UUID(broadcast_id) if broadcast_id else None)
    return {r["state"]: r["n"] for r in rows}


@asynccontextmanager
async def running_worker(client: Client, settings: Settings, *,
                         clock: Callable[[], datetime] | None = None,
                         run: bool = True, events: Any = None) -> AsyncIterator[Worker]:
    """A Worker sharing the app's registry pool and tenant supervisor; running in the
    background unless `run` is False (then drive it with `step()` / `drain_all()`)."""
    app = client.server.app
    carrier = carrier_from_settings(settings)
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    if events is not None:   # a Publisher: broadcast progress to the live events
        kwargs["events"] = events
    worker = Worker(settings, app[REGISTRY_POOL], app[SUPERVISOR].supervisor, carrier, **kwargs)
    task = asyncio.create_task(worker.run()) if run else None
    try:
        yield worker
    finally:
        worker.stop()
        if task is not None:
            await asyncio.wait_for(task, 20)
        await carrier.close()
