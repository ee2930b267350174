"""/api/v1/numbers through the carrier simulator: search, buy, the limits, routing, release,
and the number order's life (pending until the carrier's order completes, by its webhook or
by the worker's poll; a failed order frees the number; released at the carrier only once it no
longer lists the number). The recovery window: test_number_recovery.py."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import (
    inbox_row,
    problem,
    random_number,
    register,
    sim_inbound,
    tenant_db,
    wait_until,
)
from tests.integration.sending_fixtures import running_worker
from ywmessaging.commands.carrier_sim import adopt_registry_numbers
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget
from ywmessaging.messaging.simulator import start_simulator


def _area() -> str:
    return f"{secrets.choice('23456789')}{secrets.randbelow(100):02d}"


async def _buy_some(client: Any, church: Any) -> str:
    """Buy the first free number of a random area code (another test may hold one); the
    answer says `pending`: the carrier's order has not completed yet."""
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
                assert body["status"] == "pending", body
                return str(body["phone_number"])
            await problem(bought, 409, "number_taken")
    raise AssertionError("no number could be bought")


async def _numbers(client: Any, church: Any) -> list[tuple[str, str]]:
    resp = await client.get("/api/v1/numbers", headers=church.auth)
    assert resp.status == 200
    return [(n["phone_number"], n["status"]) for n in (await resp.json())["numbers"]]


async def _until_status(client: Any, church: Any, number: str, status: str) -> None:
    async def check() -> bool:
        return await _numbers(client, church) == [(number, status)]

    await wait_until(check)


async def _actions(pg_admin: PgTarget, registry_conn: Any, church: Any) -> list[tuple[str, str]]:
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        return [(r["action"], r["actor_kind"]) for r in await db.fetch(
            "SELECT action, actor_kind FROM audit_log WHERE target_type = 'phone_number' "
            "ORDER BY id")]


async def _sender(pg_admin: PgTarget, registry_conn: Any, church: Any) -> str | None:
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        sender: str | None = await db.fetchval("SELECT sender_number FROM settings")
        return sender


async def _sim_config(client: Any, sim: Any, **config: Any) -> None:
    async with client.session.patch(f"{sim.base_url}/sim/config", json=config) as r:
        assert r.status == 200, await r.text()


async def _sim_fault(client: Any, sim: Any, kind: str) -> None:
    async with client.session.post(f"{sim.base_url}/sim/faults",
                                   json={"kind": kind, "count": 1}) as r:
        assert r.status == 201, await r.text()


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


@pytest.fixture
async def one_number_client(make_api_client: Any, msg_settings: Any, sim: Any) -> Any:
    """The app allowing one number per church (YWM_NUMBERS_PER_CHURCH=1)."""
    client = await make_api_client(msg_settings.with_(numbers_per_church=1))
    sim.set_webhook_url(str(client.make_url("/webhooks/telnyx")))
    return client


async def test_buy_limits_routing_and_release(
        one_number_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    msg_client = one_number_client
    church = await register(msg_client)
    other = await register(msg_client)
    number = await _buy_some(msg_client, church)
    await _until_status(msg_client, church, number, "active")
    assert sim.state.owns(number)
    assert await _sender(pg_admin, registry_conn, church) == number
    # YWM_NUMBERS_PER_CHURCH numbers per church (1 here); another church cannot take it;
    # neither sees the other's
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
    # release: archived (kept at the carrier, still this church's), no longer the sender
    resp = await msg_client.delete(f"/api/v1/numbers/{number}", headers=church.auth)
    assert resp.status == 204
    assert sim.state.owns(number)
    assert await registry_conn.fetchval("SELECT status FROM phone_numbers WHERE e164 = $1",
                                        number) == "archived"
    assert await _numbers(msg_client, church) == [(number, "archived")]
    assert await _sender(pg_admin, registry_conn, church) is None
    assert await _actions(pg_admin, registry_conn, church) == [
        ("number.buy", "admin"), ("number.active", "carrier"), ("number.release", "admin")]


async def test_a_number_is_pending_until_the_order_completes(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    """Telnyx answers an order `pending`: the number routes nothing and sends nothing until
    `number_order.complete` says the order succeeded."""
    church = await register(msg_client)
    await _sim_config(msg_client, sim, order_delay=1.0)
    number = await _buy_some(msg_client, church)
    row = await registry_conn.fetchrow(
        "SELECT status, carrier_order_id FROM phone_numbers WHERE e164 = $1", number)
    order = sim.state.orders[row["carrier_order_id"]]   # the order's id, not a number id
    assert (row["status"], order["status"]) == ("pending", "pending")
    assert await _numbers(msg_client, church) == [(number, "pending")]
    assert await _sender(pg_admin, registry_conn, church) is None
    gone = await msg_client.delete(f"/api/v1/numbers/{number}", headers=church.auth)
    await problem(gone, 409, "number_pending")
    early = await sim_inbound(msg_client, sim, random_number(), number, "Too early")
    settled = await wait_until(lambda: _settled(registry_conn, early["event_id"]))
    assert (settled["state"], settled["last_error"]) == ("ignored", "unknown_number")
    await _until_status(msg_client, church, number, "active")
    assert order["status"] == "success"
    assert await _sender(pg_admin, registry_conn, church) == number
    event = await registry_conn.fetchrow(
        "SELECT state, last_error, tenant_id FROM webhook_inbox "
        "WHERE provider = 'telnyx' AND event_type = 'number_order.complete' "
        "AND payload->'data'->'payload'->>'id' = $1", row["carrier_order_id"])
    assert (event["state"], event["last_error"], event["tenant_id"]) == (
        "done", "activated", uuid.UUID(church.tenant_id))


async def test_without_the_webhook_the_worker_polls_the_order(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget,
        msg_settings: Settings) -> None:
    church = await register(msg_client)
    await _sim_config(msg_client, sim, order_webhooks=False)
    number = await _buy_some(msg_client, church)
    assert await sim.sender.idle(5)   # the carrier completed the order, and told nobody
    order_id = await registry_conn.fetchval(
        "SELECT carrier_order_id FROM phone_numbers WHERE e164 = $1", number)
    assert sim.state.orders[order_id]["status"] == "success"
    assert await _numbers(msg_client, church) == [(number, "pending")]
    polling = msg_settings.with_(number_order_poll_interval=0.01)
    async with running_worker(msg_client, polling, run=False) as worker:
        assert await worker.number_orders_round() >= 1
    assert await _numbers(msg_client, church) == [(number, "active")]
    assert await _sender(pg_admin, registry_conn, church) == number


async def test_a_failed_order_frees_the_number(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church = await register(msg_client)
    await _sim_fault(msg_client, sim, "order_failure")
    number = await _buy_some(msg_client, church)

    async def freed() -> bool:
        return await _numbers(msg_client, church) == []

    await wait_until(freed)
    assert sim.state.number(number) is None
    assert await _sender(pg_admin, registry_conn, church) is None
    assert await _actions(pg_admin, registry_conn, church) == [
        ("number.buy", "admin"), ("number.order_failed", "carrier")]
    again = await _buy_some(msg_client, church)   # the church may buy another
    await _until_status(msg_client, church, again, "active")


async def _window_over(registry_conn: Any, number: str) -> None:
    """Move the number's recovery window (and any retry backoff) into the past."""
    await registry_conn.execute(
        "UPDATE phone_numbers SET release_after = now() - interval '1 second', "
        "release_next_at = NULL WHERE e164 = $1", number)


async def test_a_404_releases_only_a_number_the_carrier_no_longer_lists(
        msg_client: Any, sim: Any, registry_conn: Any, msg_settings: Settings) -> None:
    church = await register(msg_client)
    number = await _buy_some(msg_client, church)
    await _until_status(msg_client, church, number, "active")
    resp = await msg_client.delete(f"/api/v1/numbers/{number}", headers=church.auth)
    assert resp.status == 204
    await _window_over(registry_conn, number)
    await _sim_fault(msg_client, sim, "release_not_found")   # DELETE answers 404, keeps it
    async with running_worker(msg_client, msg_settings, run=False) as worker:
        await worker.number_releases_round()
        assert sim.state.owns(number)
        row = await registry_conn.fetchrow(
            "SELECT status, release_error, release_attempts FROM phone_numbers "
            "WHERE e164 = $1", number)
        assert (row["status"], row["release_error"], row["release_attempts"]) == (
            "releasing", "carrier:release_unconfirmed", 1)
        await _window_over(registry_conn, number)
        await worker.number_releases_round()
        assert sim.state.number(number) is None
        assert await _numbers(msg_client, church) == []
        # a number the carrier no longer lists at all is released without a DELETE
        other = await register(msg_client)
        second = await _buy_some(msg_client, other)
        await _until_status(msg_client, other, second, "active")
        resp = await msg_client.delete(f"/api/v1/numbers/{second}", headers=other.auth)
        assert resp.status == 204
        sim.state.drop_number(second)
        await _window_over(registry_conn, second)
        await worker.number_releases_round()
        assert await _numbers(msg_client, other) == []


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
    church, waiting = await register(msg_client), await register(msg_client)
    number, pending, order_id = random_number(), random_number(), f"order-{uuid.uuid4()}"
    await registry_conn.execute("INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)",
                                number, uuid.UUID(church.tenant_id))
    await registry_conn.execute(
        "INSERT INTO phone_numbers (e164, tenant_id, status, carrier_order_id) "
        "VALUES ($1, $2, 'pending', $3)", pending, uuid.UUID(waiting.tenant_id), order_id)
    fresh = await start_simulator()
    try:
        assert not fresh.state.owns(number)
        assert await adopt_registry_numbers(fresh, registry_conn, msg_settings) >= 2
        assert fresh.state.owns(number)
        # the pending number's order is known, completed: the worker's next poll settles it
        assert fresh.state.orders[order_id]["status"] == "success"
        assert fresh.state.owns(pending)
    finally:
        await fresh.stop()
        await registry_conn.execute("DELETE FROM phone_numbers WHERE e164 = $1", pending)


async def test_several_numbers_the_first_is_the_default(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church = await register(msg_client)
    first = await _buy_some(msg_client, church)
    second = await _buy_some(msg_client, church)

    async def both_active() -> bool:
        return sorted(await _numbers(msg_client, church)) == sorted(
            [(first, "active"), (second, "active")])

    await wait_until(both_active)
    # the first to complete is the default sender; the other does not take it over
    default = await _sender(pg_admin, registry_conn, church)
    assert default in (first, second)
    other = second if default == first else first
    listed = (await (await msg_client.get("/api/v1/numbers", headers=church.auth)).json())
    assert {n["phone_number"]: n["default"] for n in listed["numbers"]} == {
        default: True, other: False}
    made = await msg_client.patch(f"/api/v1/numbers/{other}", headers=church.auth,
                                  json={"default": True})
    assert made.status == 200 and (await made.json())["default"] is True
    assert await _sender(pg_admin, registry_conn, church) == other
    actions = await _actions(pg_admin, registry_conn, church)
    assert actions.count(("number.active", "carrier")) == 2
    assert ("number.assign", "admin") in actions
    # not another church's number
    stranger = await register(msg_client)
    resp = await msg_client.patch(f"/api/v1/numbers/{other}", headers=stranger.auth,
                                  json={"branch_id": None})
    await problem(resp, 404, "number_not_found")
