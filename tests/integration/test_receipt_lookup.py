"""Lost delivery receipts: a send left `sent` is looked up at the carrier (GET /v2/messages/{id}
on the simulator, over real HTTP) after YWM_RECEIPT_CHECK_AFTER, and what the carrier knows is
applied like a receipt; a receipt that does arrive makes the lookup unnecessary."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    running_worker,
    states_are,
    wait_until,
)
from ywmessaging.config import Settings


async def test_sends_whose_receipts_were_lost_are_settled_by_a_lookup(
        sending: Sending, send_settings: Settings) -> None:
    sending.sim.state.receipts = False          # the carrier's webhooks never arrive
    church, _, _ = await sending.church(members=3)
    await sending.fault(kind="fail_delivery", count=1)
    settings = send_settings.with_(receipt_check_after=0.3)
    async with running_worker(sending.client, settings):
        doc = await sending.broadcast(church, {"body": "Potluck on Sunday",
                                               "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 2, "failed": 1}),
                             timeout=30)
            rows = await db.fetch("SELECT state, error_code, status_check_at, status_checks, "
                                  "delivered_at FROM outbox ORDER BY state")
            lookups = sending.sim.state.counters["lookups"]
            await asyncio.sleep(1.0)    # settled rows are never looked up again
            assert sending.sim.state.counters["lookups"] == lookups
    assert sending.sim.state.deliveries == []   # no webhook ever came
    assert lookups == 3
    assert [(r["state"], r["error_code"]) for r in rows] == [
        ("delivered", None), ("delivered", None), ("failed", "40008")]
    assert all(r["status_check_at"] is None and r["status_checks"] == 0 for r in rows)
    assert all(r["delivered_at"] is not None for r in rows[:2])


class _Forgetful(dict[str, Any]):
    """The simulator's message records, never remembering anything."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


async def test_a_message_the_carrier_does_not_know_is_looked_up_three_times_then_left(
        sending: Sending, send_settings: Settings) -> None:
    sending.sim.state.receipts = False
    sending.sim.state.records = _Forgetful()     # the carrier forgets it: 404 on lookup
    church, _, _ = await sending.church(members=1)
    settings = send_settings.with_(receipt_check_after=0.1)
    async with running_worker(sending.client, settings):
        doc = await sending.broadcast(church, {"body": "Hi", "target": {"all": True}})
        async with sending.db(church) as db:
            async def checked_out() -> Any:
                row = await db.fetchrow("SELECT state, status_checks, status_check_at "
                                        "FROM outbox")
                return row if row["status_checks"] == 3 else None
            row = await wait_until(checked_out, timeout=30)
            await asyncio.sleep(1.0)
            assert await db.fetchval("SELECT status_checks FROM outbox") == 3
            assert await states_are(db, doc["id"], {"sent": 1})
    assert (row["state"], row["status_check_at"]) == ("sent", None)   # left as it was
    assert sending.sim.state.counters["lookups"] == 3


async def test_a_receipt_that_arrives_cancels_the_lookup(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church(members=2)
    settings = send_settings.with_(receipt_check_after=0.5)
    async with running_worker(sending.client, settings):
        doc = await sending.broadcast(church, {"body": "Hi", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 2}), timeout=30)
            await asyncio.sleep(1.5)   # well past the lookup time
            planned = await db.fetchval(
                "SELECT count(*) FROM outbox WHERE status_check_at IS NOT NULL")
    assert planned == 0 and sending.sim.state.counters["lookups"] == 0


async def test_a_failed_lookup_is_deferred_not_counted(
        sending: Sending, send_settings: Settings) -> None:
    sending.sim.state.receipts = False
    church, _, _ = await sending.church(members=1)
    settings = send_settings.with_(receipt_check_after=0.2)
    async with running_worker(sending.client, settings):
        await sending.broadcast(church, {"body": "Hi", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: _sent(db), timeout=30)
            sending.sim.state.api_key = "another-key"    # every lookup now gets 401
            async def deferred() -> Any:
                return await db.fetchrow(
                    "SELECT status_checks, status_check_at - now() AS wait FROM outbox "
                    "WHERE status_check_at > now() + interval '30 seconds'")
            row = await wait_until(deferred, timeout=30)
    assert row["status_checks"] == 0                       # a failed lookup is not a check
    assert 30 < row["wait"].total_seconds() <= 60


async def _sent(db: Any) -> bool:
    return await db.fetchval("SELECT state FROM outbox") == "sent"


async def test_lookups_can_be_turned_off(sending: Sending, send_settings: Settings) -> None:
    sending.sim.state.receipts = False
    church, _, _ = await sending.church(members=1)
    settings = send_settings.with_(receipt_check_after=0.0)
    async with running_worker(sending.client, settings):
        doc = await sending.broadcast(church, {"body": "Hi", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"sent": 1}), timeout=30)
            await asyncio.sleep(0.5)
            planned = await db.fetchval("SELECT status_check_at FROM outbox")
    assert planned is None and sending.sim.state.counters["lookups"] == 0
