"""Live events over `/api/v1/events` (issue 13): two app processes share the registry; what one
applies reaches a socket on the other; a reconnect with the last id loses nothing; tickets are
single-use; a cookie needs a configured Origin; a revoked token closes its sockets; another
church's events never arrive; a client too slow to read is cut off."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.carrier_sim_fixtures import (
    Client,
    bearer,
    church_with_number,
    envelope,
    post_signed,
    random_number,
    register,
    wait_until,
)
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    running_worker,
)
from ywmessaging.config import Settings
from ywmessaging.events.hub import EXPIRED, REVOKED, SLOW
from ywmessaging.events.keys import EVENTS

ORIGIN = "https://app.example.org"
WAIT = 5.0


@pytest.fixture
def ev_settings(msg_settings: Settings) -> Settings:
    """Messaging settings with a browser origin configured."""
    return msg_settings.with_(cors_origins=ORIGIN)


@pytest.fixture
async def two(make_api_client: Any, ev_settings: Settings, sim: Any) -> tuple[Client, Client]:
    """Two app instances on one registry (the simulator answers to the first)."""
    a = await make_api_client(ev_settings)
    b = await make_api_client(ev_settings)
    sim.set_webhook_url(str(a.make_url("/webhooks/telnyx")))
    return a, b


async def next_event(ws: Any, timeout: float = WAIT) -> dict[str, Any]:
    """The next event frame (fails on close or timeout)."""
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
    event: dict[str, Any] = orjson.loads(msg.data)
    return event


async def close_code(ws: Any) -> int | None:
    """Read to the server's close; its code (frames before it are skipped)."""
    while True:
        msg = await ws.receive(timeout=WAIT)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return None


async def publish(client: Client, tenant_id: str, n: int) -> None:
    """Publish a harmless event for a church through the app's publisher."""
    await client.app[EVENTS].publisher.publish(uuid.UUID(tenant_id), "member.opted_in",
                                               {"n": n})


async def test_inbound_on_one_process_reaches_a_socket_on_the_other(
        two: tuple[Client, Client], sim: Any, registry_conn: Any) -> None:
    a, b = two
    church, number = await church_with_number(a, registry_conn, sim)
    ws = await b.ws_connect("/api/v1/events", headers=church.auth)
    phone = random_number()
    resp = await post_signed(a, sim, envelope("message.received", {
        "id": str(uuid.uuid4()), "from": {"phone_number": phone},
        "to": [{"phone_number": number}], "text": "Is choir on tonight?"}))
    assert resp.status == 200
    event = await next_event(ws)
    assert event["type"] == "message.received"
    assert (event["data"]["body"], event["data"]["from"]) == ("Is choir on tonight?", phone)
    assert set(event) == {"id", "type", "occurred_at", "data"}
    stop = await post_signed(a, sim, envelope("message.received", {
        "id": str(uuid.uuid4()), "from": {"phone_number": phone},
        "to": [{"phone_number": number}], "text": "STOP"}))
    assert stop.status == 200
    opted = await next_event(ws)
    assert (opted["type"], opted["id"]) == ("member.opted_out", event["id"] + 1)
    await ws.close()


async def test_reconnect_with_the_last_id_replays_what_was_missed(
        two: tuple[Client, Client]) -> None:
    a, b = two
    church = await register(a)
    ws = await b.ws_connect("/api/v1/events", headers=church.auth)
    await publish(a, church.tenant_id, 1)
    first = await next_event(ws)
    await ws.close()
    for n in (2, 3, 4):
        await publish(a, church.tenant_id, n)
    ws = await a.ws_connect(f"/api/v1/events?last_event_id={first['id']}",
                            headers=church.auth)
    got = [await next_event(ws) for _ in range(3)]
    assert [e["data"]["n"] for e in got] == [2, 3, 4]
    assert [e["id"] for e in got] == [first["id"] + 1, first["id"] + 2, first["id"] + 3]
    await publish(b, church.tenant_id, 5)           # live after the replay, no duplicate
    assert (await next_event(ws))["data"]["n"] == 5
    await ws.close()
    # an id the window no longer covers: one replay.truncated frame, then live events
    ws = await b.ws_connect("/api/v1/events?last_event_id=999999", headers=church.auth)
    truncated = await next_event(ws)
    assert truncated["type"] == "replay.truncated"
    await publish(a, church.tenant_id, 6)
    live = await next_event(ws)
    assert (live["data"]["n"], live["id"]) == (6, first["id"] + 5)
    await ws.close()


async def test_a_ticket_opens_one_socket_once(two: tuple[Client, Client]) -> None:
    a, b = two
    church = await register(a)
    resp = await a.post("/api/v1/events/ticket", headers=church.auth)
    assert resp.status == 201
    ticket = (await resp.json())["ticket"]
    ws = await b.ws_connect(f"/api/v1/events?ticket={ticket}")
    await publish(a, church.tenant_id, 1)
    assert (await next_event(ws))["data"] == {"n": 1}
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as again:
        await a.ws_connect(f"/api/v1/events?ticket={ticket}")
    assert again.value.status == 401
    assert (await a.post("/api/v1/events/ticket")).status == 401


async def test_the_cookie_needs_a_configured_origin(two: tuple[Client, Client]) -> None:
    a, _ = two
    church = await register(a)
    cookie = {"Cookie": f"__Host-ywm_access={church.access}"}
    for origin in ({"Origin": "https://evil.example"}, {}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await a.ws_connect("/api/v1/events", headers={**cookie, **origin})
        assert refused.value.status == 403
    ws = await a.ws_connect("/api/v1/events", headers={**cookie, "Origin": ORIGIN})
    await publish(a, church.tenant_id, 1)
    assert (await next_event(ws))["data"] == {"n": 1}
    await ws.close()
    plain = await a.get("/api/v1/events", headers=church.auth)
    assert plain.status == 400


async def test_a_revoked_token_closes_its_sockets(two: tuple[Client, Client]) -> None:
    a, b = two
    church = await register(a)
    ws = await b.ws_connect("/api/v1/events", headers=church.auth)
    resp = await a.post("/api/v1/auth/logout", headers=church.auth)
    assert resp.status == 204
    assert await close_code(ws) == REVOKED
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await b.ws_connect("/api/v1/events", headers=church.auth)
    assert refused.value.status == 401


async def test_an_expired_token_closes_its_socket(two: tuple[Client, Client]) -> None:
    a, _ = two
    church = await register(a)
    ws = await a.ws_connect("/api/v1/events", headers=church.auth)
    await publish(a, church.tenant_id, 1)
    assert (await next_event(ws))["data"] == {"n": 1}
    hub = a.app[EVENTS].hub
    assert hub.sweep(now=time.time()) == 0              # still valid: nothing closes
    assert hub.sweep(now=time.time() + 3600) == 1       # the sweep after its exp
    assert await close_code(ws) == EXPIRED


async def test_another_churchs_events_never_arrive(two: tuple[Client, Client]) -> None:
    a, b = two
    mine, theirs = await register(a), await register(a)
    ws = await b.ws_connect("/api/v1/events", headers=mine.auth)
    # the other church listens on the same process: its events reach that process's hub
    other = await b.ws_connect("/api/v1/events", headers=theirs.auth)
    for n in range(3):
        await publish(a, theirs.tenant_id, n)
    await publish(a, mine.tenant_id, 99)
    assert [(await next_event(other))["data"] for _ in range(3)] == [{"n": n} for n in range(3)]
    assert (await next_event(ws))["data"] == {"n": 99}
    for sock in (ws, other):
        with pytest.raises(TimeoutError):
            await sock.receive(timeout=0.3)
        await sock.close()


async def test_a_slow_client_is_closed_not_buffered(
        make_api_client: Any, ev_settings: Settings) -> None:
    app = await make_api_client(ev_settings.with_(events_queue_size=4))
    church = await register(app)
    ws = await app.ws_connect("/api/v1/events", headers=bearer(church.access))
    hub = app.app[EVENTS].hub
    tenant = uuid.UUID(church.tenant_id)
    await wait_until(lambda: asyncio.sleep(0, len(hub) == 1))
    frame = orjson.dumps({"id": 0, "type": "x", "data": "y" * 65_536}).decode()
    start = hub.last.get(tenant, 0)
    for n in range(1, 400):      # the client reads nothing: buffers fill, the queue overflows
        hub.fan_out(tenant, start + n, frame)
        await asyncio.sleep(0)
        if len(hub) == 0 or any(s.closing for s in hub._sockets.get(tenant, ())):
            break
    dropped = app.app[EVENTS].hub.metrics.events_dropped.labels("slow")._value.get()
    assert dropped == 1
    assert await close_code(ws) == SLOW   # read now: the frames sent before, then the close


async def test_an_office_opt_out_reaches_the_other_process(two: tuple[Client, Client]) -> None:
    a, b = two
    church = await register(a)
    resp = await a.post("/api/v1/members", headers=church.auth, json={
        "first_name": "Ruth", "last_name": "Moab", "phone": "+12025550173"})
    assert resp.status == 201, await resp.text()
    member = await resp.json()
    ws = await b.ws_connect("/api/v1/events", headers=church.auth)
    out = await a.post(f"/api/v1/members/{member['id']}/opt-out", headers=church.auth, json={})
    assert out.status == 200
    event = await next_event(ws)
    assert (event["type"], event["data"]["member_id"]) == ("member.opted_out", member["id"])
    await ws.close()


async def test_a_broadcast_reports_progress_statuses_and_completion(sending: Sending) -> None:
    church, _number, phones = await sending.church(members=3)
    ws = await sending.client.ws_connect("/api/v1/events", headers=church.auth)
    created = await sending.broadcast(church, {"body": "Choir at 7", "target": {"all": True}})
    events = sending.client.app[EVENTS].publisher
    seen: dict[str, list[dict[str, Any]]] = {}
    async with running_worker(sending.client, sending.settings, events=events):
        while not ("broadcast.completed" in seen and sum(
                len(e["data"]["statuses"]) for e in seen.get("delivery.status", [])) >= 3):
            event = await next_event(ws, timeout=10)
            seen.setdefault(event["type"], []).append(event)
    done = seen["broadcast.completed"][0]["data"]
    assert (done["broadcast_id"], done["status"], done["pending"]) == (created["id"], "sent", 0)
    assert seen["broadcast.progress"][-1]["id"] < seen["broadcast.completed"][0]["id"]
    statuses = [s for e in seen["delivery.status"] for s in e["data"]["statuses"]]
    assert [s["status"] for s in statuses] == ["delivered"] * len(phones)
    assert {s["broadcast_id"] for s in statuses} == {created["id"]}
    await ws.close()


async def test_delivery_statuses_are_batched(two: tuple[Client, Client]) -> None:
    a, b = two
    church = await register(a)
    ws = await b.ws_connect("/api/v1/events", headers=church.auth)
    publisher = a.app[EVENTS].publisher
    for n in range(5):
        publisher.status(uuid.UUID(church.tenant_id), {"outbox_id": n, "status": "delivered"})
    event = await next_event(ws)
    assert event["type"] == "delivery.status"
    assert [s["outbox_id"] for s in event["data"]["statuses"]] == [0, 1, 2, 3, 4]
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=0.4)
    await ws.close()
