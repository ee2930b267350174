"""/api/v1/numbers through the carrier simulator: search, buy, the limits, routing, release."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from tests.integration.messaging_a_fixtures import *  # noqa: F403
from tests.integration.messaging_a_fixtures import (
    inbox_row,
    problem,
    random_number,
    register,
    sim_inbound,
    tenant_db,
    wait_until,
)
from ywmessaging.commands.carrier_sim import adopt_registry_numbers
from ywmessaging.db.dsn import PgTarget
from ywmessaging.messaging.simulator import start_simulator


def _area() -> str:
    return f"{secrets.choice('23456789')}{secrets.randbelow(100):02d}"


async def _buy_some(client: Any, church: Any) -> str:
    """Buy the first free number of a random area code (another test may hold one)."""
    for _ in range(5):
        resp = await client.get(f"/api/v1/numbers/available?area_code={_area()}&limit=5",
                                headers=church.auth)
        assert resp.status == 200
        for option in (await resp.json())["numbers"]:
            bought = await client.post("/api/v1/numbers", headers=church.auth,
                                       json={"phone_number": option["phone_number"]})
            if bought.status == 201:
                body = await bought.json()
                assert body["id"] == body["phone_number"] == option["phone_number"]
                return str(body["phone_number"])
            await problem(bought, 409, "number_taken")
    raise AssertionError("no number could be bought")


async def test_search_validates_the_area_code(msg_client: Any, sim: Any) -> None:
    church = await register(msg_client)
    resp = await msg_client.get("/api/v1/numbers/available?area_code=212&limit=3",
                                headers=church.auth)
    body = await resp.json()
    assert resp.status == 200
    assert [n["phone_number"] for n in body["numbers"]] == [
        "+12125550100", "+12125550101", "+12125550102"]
    for bad in ("12", "112", "abc", "2125"):
        resp = await msg_client.get(f"/api/v1/numbers/available?area_code={bad}",
                                    headers=church.auth)
        await problem(resp, 422, "validation_failed")
    resp = await msg_client.get("/api/v1/numbers/available")
    await problem(resp, 401, "unauthorized")


async def test_buy_limits_routing_and_release(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church = await register(msg_client)
    other = await register(msg_client)
    number = await _buy_some(msg_client, church)
    assert sim.state.owns(number)
    listed = await (await msg_client.get("/api/v1/numbers", headers=church.auth)).json()
    assert [n["phone_number"] for n in listed["numbers"]] == [number]
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT sender_number FROM settings") == number
    # one number per church; another church cannot take it; neither sees the other's
    again = await msg_client.post("/api/v1/numbers", headers=church.auth,
                                  json={"phone_number": random_number()})
    await problem(again, 409, "number_limit")
    taken = await msg_client.post("/api/v1/numbers", headers=other.auth,
                                  json={"phone_number": number})
    await problem(taken, 409, "number_taken")
    assert (await (await msg_client.get("/api/v1/numbers", headers=other.auth)).json()) == {
        "numbers": []}
    gone = await msg_client.delete(f"/api/v1/numbers/{number}", headers=other.auth)
    await problem(gone, 404, "number_not_found")
    bad = await msg_client.post("/api/v1/numbers", headers=church.auth,
                                json={"phone_number": "206-555-0100"})
    await problem(bad, 422, "validation_failed")
    # an inbound text to the bought number reaches this church
    sent = await sim_inbound(msg_client, sim, random_number(), number, "Hello church")
    row = await wait_until(lambda: _settled(registry_conn, sent["event_id"]))
    assert row["tenant_id"] == uuid.UUID(church.tenant_id)
    # release: gone at the carrier, from the registry and from the church's settings
    resp = await msg_client.delete(f"/api/v1/numbers/{number}", headers=church.auth)
    assert resp.status == 204
    assert sim.state.number(number) is None   # gone from the carrier's account
    assert await registry_conn.fetchval("SELECT count(*) FROM phone_numbers WHERE e164 = $1",
                                        number) == 0
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT sender_number FROM settings") is None
        actions = [r["action"] for r in await db.fetch(
            "SELECT action FROM audit_log WHERE target_type = 'phone_number' ORDER BY id")]
        assert actions == ["number.buy", "number.release"]


async def test_a_carrier_failure_leaves_no_assignment(
        msg_client: Any, sim: Any, registry_conn: Any) -> None:
    church = await register(msg_client)
    number = f"+1{_area()}555{secrets.randbelow(10**4):04d}"
    sim.state.add_number(number)     # held already: the carrier will refuse to sell it
    resp = await msg_client.post("/api/v1/numbers", headers=church.auth,
                                 json={"phone_number": number})
    await problem(resp, 409, "number_unavailable")
    assert await registry_conn.fetchval("SELECT count(*) FROM phone_numbers WHERE e164 = $1",
                                        number) == 0


async def _settled(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] in ("done", "ignored") else None


async def test_dev_simulator_adopts_the_registry_numbers(
        msg_client: Any, registry_conn: Any, msg_settings: Any) -> None:
    """`ywm dev` restarts its simulator empty: it takes the registry's numbers on again, so
    churches can still send from them (the simulator refuses senders it does not own)."""
    church = await register(msg_client)
    number = random_number()
    await registry_conn.execute("INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)",
                                number, uuid.UUID(church.tenant_id))
    fresh = await start_simulator()
    try:
        assert not fresh.state.owns(number)
        assert await adopt_registry_numbers(fresh, registry_conn, msg_settings) >= 1
        assert fresh.state.owns(number)
    finally:
        await fresh.stop()
