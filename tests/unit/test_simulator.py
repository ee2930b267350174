"""The carrier simulator spoken to through the Telnyx adapter: sends, signed receipts, numbers,
fault injection, and how each failure maps onto CarrierError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from ywmessaging.messaging import signature
from ywmessaging.messaging.carrier import (
    RELEASE_UNCONFIRMED,
    SEND_OUTCOME_UNKNOWN,
    CarrierError,
    NumberOrder,
    SendRequest,
)
from ywmessaging.messaging.simulator import RunningSimulator, start_simulator
from ywmessaging.messaging.telnyx import TelnyxCarrier, parse_retry_after

A, B = "+12065550100", "+12065550199"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """A simulator whose account owns A (the sender of these tests) and whose number orders
    complete at once."""
    running = await start_simulator(api_key="sk-test", order_delay=0)
    running.state.add_number(A)
    yield running
    await running.stop()


@pytest.fixture
async def carrier(sim: RunningSimulator) -> AsyncIterator[TelnyxCarrier]:
    c = TelnyxCarrier(api_base=sim.base_url, api_key="sk-test", timeout=0.5)
    yield c
    await c.close()


@pytest.fixture
async def receiver(sim: RunningSimulator) -> AsyncIterator[list[dict[str, Any]]]:
    """A webhook endpoint that verifies like the service and records what it got."""
    got: list[dict[str, Any]] = []
    key = signature.load_public_key(sim.public_key)

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        signature.verify(key, request.headers.get(signature.SIGNATURE_HEADER),
                         request.headers.get(signature.TIMESTAMP_HEADER), raw)
        got.append(orjson.loads(raw))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sim.set_webhook_url(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
    yield got
    await runner.cleanup()


async def _sim(sim: RunningSimulator, method: str, path: str, **kw: Any) -> Any:
    async with aiohttp.ClientSession() as s, s.request(method, sim.base_url + path, **kw) as r:
        return r.status, (await r.json() if r.status != 204 else None)


async def test_send_is_recorded_in_order_and_receipts_are_signed(
        sim: RunningSimulator, carrier: TelnyxCarrier, receiver: list[dict[str, Any]]) -> None:
    first = await carrier.send(SendRequest(A, B, "Hello"))
    second = await carrier.send(SendRequest(A, B, "Ж" * 71))
    assert (first.segments, second.segments) == (1, 2)
    status, body = await _sim(sim, "GET", "/sim/messages")
    assert status == 200
    assert [m["id"] for m in body["data"]] == [first.carrier_message_id,
                                               second.carrier_message_id]
    assert body["data"][1]["encoding"] == "UCS-2"
    assert await sim.sender.idle(5)
    per_message: dict[str, list[tuple[str, str]]] = {}
    for e in receiver:   # messages interleave; each message's own events come in order
        payload = e["data"]["payload"]
        per_message.setdefault(payload["id"], []).append(
            (e["data"]["event_type"], payload["to"][0]["status"]))
    expected = [("message.sent", "sent"), ("message.finalized", "delivered")]
    assert per_message == {first.carrier_message_id: expected,
                           second.carrier_message_id: expected}
    assert await _sim(sim, "DELETE", "/sim/messages") == (204, None)
    assert (await _sim(sim, "GET", "/sim/messages"))[1]["data"] == []


async def test_wrong_api_key_is_refused(sim: RunningSimulator) -> None:
    bad = TelnyxCarrier(api_base=sim.base_url, api_key="wrong")
    try:
        with pytest.raises(CarrierError) as exc:
            await bad.send(SendRequest(A, B, "x"))
    finally:
        await bad.close()
    assert (exc.value.http_status, exc.value.code, exc.value.retryable) == (401, "10009", False)


async def test_invalid_number_is_permanent(carrier: TelnyxCarrier) -> None:
    with pytest.raises(CarrierError) as exc:
        await carrier.send(SendRequest(A, "2065550199", "x"))
    assert (exc.value.code, exc.value.retryable) == ("10016", False)


@pytest.mark.parametrize(("fault", "code", "retryable", "status", "retry_after"), [
    ({"kind": "429", "retry_after": 3}, "10011", True, 429, 3.0),
    ({"kind": "500"}, "10007", True, 500, None),
    ({"kind": "opted_out"}, "40300", False, 400, None),
])
async def test_http_faults_map_to_carrier_errors(
        sim: RunningSimulator, carrier: TelnyxCarrier, fault: dict[str, Any], code: str,
        retryable: bool, status: int, retry_after: float | None) -> None:
    assert (await _sim(sim, "POST", "/sim/faults", json={**fault, "count": 1}))[0] == 201
    with pytest.raises(CarrierError) as exc:
        await carrier.send(SendRequest(A, B, "x"))
    err = exc.value
    assert (err.code, err.retryable, err.http_status, err.retry_after) == (
        code, retryable, status, retry_after)
    assert err.opted_out is (code == "40300")
    await carrier.send(SendRequest(A, B, "after the fault"))   # count 1: healthy again
    assert [m["text"] for m in sim.state.messages] == ["after the fault"]


async def test_a_429_carries_rate_limit_headers(sim: RunningSimulator) -> None:
    await _sim(sim, "POST", "/sim/faults", json={"kind": "429"})
    async with aiohttp.ClientSession() as s, s.post(
            sim.base_url + "/v2/messages", json={"from": A, "to": B, "text": "x"},
            headers={"Authorization": "Bearer sk-test"}) as r:
        assert r.status == 429
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                "retry-after"} <= {h.lower() for h in r.headers}
        assert (await r.json())["errors"][0]["code"] == "10011"
    assert await _sim(sim, "DELETE", "/sim/faults") == (204, None)
    assert (await _sim(sim, "GET", "/sim/faults"))[1]["data"] == []


async def test_a_drop_after_sending_is_outcome_unknown(
        sim: RunningSimulator, carrier: TelnyxCarrier) -> None:
    await _sim(sim, "POST", "/sim/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(CarrierError) as exc:
        await carrier.send(SendRequest(A, B, "maybe sent"))
    assert (exc.value.code, exc.value.retryable, exc.value.outcome_unknown) == (
        SEND_OUTCOME_UNKNOWN, False, True)
    assert [m["text"] for m in sim.state.messages] == ["maybe sent"]   # it was accepted


async def test_slow_carrier_after_the_request_went_out_is_an_unknown_outcome(
        sim: RunningSimulator, carrier: TelnyxCarrier) -> None:
    """No answer in time after sending: the carrier may have accepted it, so never retry."""
    await _sim(sim, "POST", "/sim/faults", json={"kind": "slow", "delay": 1.0, "count": 1})
    with pytest.raises(CarrierError) as exc:
        await carrier.send(SendRequest(A, B, "slow"))
    assert (exc.value.code, exc.value.retryable) == (SEND_OUTCOME_UNKNOWN, False)
    await asyncio.sleep(0.7)
    assert sim.state.messages == []


async def test_unreachable_carrier_is_retryable() -> None:
    c = TelnyxCarrier(api_base="http://127.0.0.1:9", api_key="k", timeout=0.5)
    try:
        with pytest.raises(CarrierError) as exc:
            await c.send(SendRequest(A, B, "x"))
    finally:
        await c.close()
    assert (exc.value.code, exc.value.retryable) == ("connection_error", True)


async def test_fail_delivery_sends_a_failed_finalized(
        sim: RunningSimulator, carrier: TelnyxCarrier, receiver: list[dict[str, Any]]) -> None:
    await _sim(sim, "POST", "/sim/faults", json={"kind": "fail_delivery", "count": 1})
    await carrier.send(SendRequest(A, B, "x"))
    assert await sim.sender.idle(5)
    final = receiver[-1]["data"]
    assert final["event_type"] == "message.finalized"
    assert final["payload"]["to"][0]["status"] == "delivery_failed"
    assert final["payload"]["errors"][0]["code"] == "40008"


async def test_fault_rate_applies_to_a_fraction(sim: RunningSimulator,
                                                carrier: TelnyxCarrier) -> None:
    await _sim(sim, "POST", "/sim/faults", json={"kind": "500", "rate": 0.5})
    failures = 0
    for _ in range(40):
        try:
            await carrier.send(SendRequest(A, B, "x"))
        except CarrierError:
            failures += 1
    assert 5 <= failures <= 35


async def test_invalid_fault_is_refused(sim: RunningSimulator) -> None:
    status, body = await _sim(sim, "POST", "/sim/faults", json={"kind": "meteor"})
    assert status == 422 and body["errors"][0]["code"] == "10015"


async def test_inbound_is_delivered_signed(sim: RunningSimulator,
                                           receiver: list[dict[str, Any]]) -> None:
    status, body = await _sim(sim, "POST", "/sim/inbound",
                              json={"from": B, "to": A, "text": "STOP"})
    assert status == 200 and body["data"]["status"] == 200
    event = receiver[-1]["data"]
    assert (event["id"], event["event_type"]) == (body["data"]["event_id"], "message.received")
    assert event["payload"]["from"]["phone_number"] == B
    assert event["payload"]["to"][0]["phone_number"] == A
    assert receiver[-1]["meta"]["attempt"] == 1


async def test_numbers_search_order_release(sim: RunningSimulator,
                                            carrier: TelnyxCarrier) -> None:
    sim.state.order_delay = 0.05
    found = await carrier.search_numbers(area_code="212", limit=3)
    assert found == ["+12125550100", "+12125550101", "+12125550102"]
    order = await carrier.order_number(found[0])
    assert (order.status, order.status_of(found[0])) == ("pending", "pending")
    assert (sim.state.number(found[0]) or {}).get("status") == "purchase-pending"
    assert found[0] not in await carrier.search_numbers(area_code="212", limit=3)
    with pytest.raises(CarrierError) as exc:
        await carrier.order_number(found[0])
    assert (exc.value.http_status, exc.value.retryable) == (422, False)
    assert await sim.sender.idle(5)
    assert await carrier.get_number_order(order.order_id) == NumberOrder(
        order.order_id, "success", ((found[0], "success"),))
    assert await carrier.get_number_order("no-such-order") is None
    assert sim.state.owns(found[0])
    # released by the id the carrier lists the number under, found by E.164
    await carrier.release_number(found[0])
    assert sim.state.number(found[0]) is None
    await carrier.release_number(found[0])   # no longer listed: released


async def test_an_order_that_completes_before_answering_says_so(
        sim: RunningSimulator, carrier: TelnyxCarrier) -> None:
    await _sim(sim, "POST", "/sim/faults", json={"kind": "order_failure", "count": 1})
    failed = await carrier.order_number("+13035550100")   # the fixture's order_delay is 0
    assert (failed.status, failed.status_of("+13035550100")) == ("failure", "failure")
    assert sim.state.number("+13035550100") is None
    ok = await carrier.order_number("+13035550101")
    assert ok.status == "success" and sim.state.owns("+13035550101")


async def test_a_404_is_a_release_only_when_the_number_is_gone(
        sim: RunningSimulator, carrier: TelnyxCarrier) -> None:
    sim.state.add_number("+4412065550199")   # its digits contain B's: the filter finds both
    sim.state.add_number(B)
    await _sim(sim, "POST", "/sim/faults", json={"kind": "release_not_found", "count": 1})
    with pytest.raises(CarrierError) as exc:
        await carrier.release_number(B)
    assert (exc.value.code, exc.value.http_status, exc.value.retryable) == (
        RELEASE_UNCONFIRMED, 404, True)
    assert sim.state.owns(B)
    await carrier.release_number(B)
    assert sim.state.number(B) is None and sim.state.owns("+4412065550199")


async def test_a_release_error_keeps_the_number(
        sim: RunningSimulator, carrier: TelnyxCarrier) -> None:
    sim.state.add_number(B)
    await _sim(sim, "POST", "/sim/faults", json={"kind": "release_error", "count": 1})
    with pytest.raises(CarrierError) as exc:
        await carrier.release_number(B)
    assert (exc.value.code, exc.value.http_status, exc.value.retryable) == ("10007", 500, True)
    assert sim.state.owns(B)
    await carrier.release_number(B)
    assert sim.state.number(B) is None


async def test_a_sender_the_account_does_not_own_is_refused(carrier: TelnyxCarrier) -> None:
    with pytest.raises(CarrierError) as exc:
        await carrier.send(SendRequest("+12065550142", B, "not our number"))
    assert (exc.value.http_status, exc.value.code, exc.value.retryable) == (400, "40305", False)


async def test_unknown_routes_answer_telnyx_errors(sim: RunningSimulator) -> None:
    status, body = await _sim(sim, "GET", "/v2/no_such_thing")
    assert status == 404
    assert body["errors"][0] == {
        "code": "10005", "title": "Resource not found",
        "detail": "The requested resource or URL could not be found.",
        "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/10005"}}


async def test_simulated_numbers_and_order_settings(sim: RunningSimulator) -> None:
    status, body = await _sim(sim, "POST", "/sim/numbers", json={"phone_number": B})
    assert status == 201 and body["data"]["status"] == "active"
    assert (await _sim(sim, "POST", "/sim/numbers", json={"phone_number": B}))[0] == 200
    status, body = await _sim(sim, "GET", "/sim/numbers")
    assert [n["phone_number"] for n in body["data"]] == [A, B]
    status, body = await _sim(sim, "PATCH", "/sim/config",
                              json={"order_delay": 0.5, "order_webhooks": False})
    assert status == 200 and (body["data"]["order_delay"], body["data"]["order_webhooks"]) == (
        0.5, False)
    assert (await _sim(sim, "PATCH", "/sim/config", json={"order_delay": -1}))[0] == 422


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


async def test_sim_messages_show_each_messages_current_status(
        sim: RunningSimulator, carrier: TelnyxCarrier, receiver: list[dict[str, Any]]) -> None:
    ok = await carrier.send(SendRequest(A, B, "Hello"))
    await _sim(sim, "POST", "/sim/faults", json={"kind": "fail_delivery", "count": 1})
    bad = await carrier.send(SendRequest(A, B, "Bye"))
    assert await sim.sender.idle(5)
    rows = {m["id"]: m for m in (await _sim(sim, "GET", "/sim/messages"))[1]["data"]}
    assert rows[ok.carrier_message_id]["to"][0]["status"] == "delivered"
    assert rows[bad.carrier_message_id]["to"][0]["status"] == "delivery_failed"
    assert all(m["sent_at"] and m["completed_at"] for m in rows.values())
    assert [m["text"] for m in rows.values()] == ["Hello", "Bye"]
    only_b = (await _sim(sim, "GET", f"/sim/messages?to={B.replace('+', '%2B')}"))[1]["data"]
    assert len(only_b) == 2
