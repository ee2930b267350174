"""The carrier simulator's phones page: its files under a strict policy, and `/sim/threads`,
what the page shows (one thread per member number, the status the receipts told the service,
the member's texts with whether the service took them). The page in a browser:
tests/integration/test_browser_pages.py."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.unit.test_simulator import A, B, _sim, carrier, receiver, sim
from ywmessaging.messaging.carrier import SendRequest
from ywmessaging.messaging.simulator import RunningSimulator
from ywmessaging.messaging.telnyx import TelnyxCarrier

__all__ = ["carrier", "receiver", "sim"]   # the fixtures, shared with test_simulator.py
C = "+12065550142"


async def test_the_page_and_its_files_are_served_under_a_strict_policy(
        sim: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as s:
        for path, kind in (("/", "text/html"), ("/sim/page/phones.js", "text/javascript"),
                           ("/sim/page/phones.css", "text/css")):
            async with s.get(sim.base_url + path) as r:
                assert (r.status, r.content_type) == (200, kind), path
                policy = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy and "default-src 'none'" in policy
                assert "unsafe-inline" not in policy
        for path in ("/sim/page/index.html", "/sim/page/page.py", "/sim/page/..%2Fpage.py"):
            async with s.get(sim.base_url + path) as r:
                assert r.status == 404, path


async def test_threads_show_texts_both_ways_with_their_status(
        sim: RunningSimulator, carrier: TelnyxCarrier, receiver: list[dict[str, Any]]) -> None:
    sent = await carrier.send(SendRequest(A, B, "Service at 10"))
    assert await sim.sender.idle(5)
    status, body = await _sim(sim, "POST", "/sim/inbound",
                              json={"from": B, "to": A, "text": "<b>Thanks</b>"})
    assert status == 200
    sim.state.receipts = False   # the service is never told: the page shows `queued`
    quiet = await carrier.send(SendRequest(A, C, "Hi"))
    threads = (await _sim(sim, "GET", "/sim/threads"))[1]["data"]
    assert [t["member"] for t in threads] == [C, B]            # the latest activity first
    assert threads[0]["messages"] == [{"id": quiet.carrier_message_id, "direction": "outbound",
                                       "text": "Hi", "status": "queued", "church": A,
                                       "at": threads[0]["messages"][0]["at"]}]
    b = threads[1]
    assert b["church_number"] == A
    assert [(m["direction"], m["text"], m["status"]) for m in b["messages"]] == [
        ("outbound", "Service at 10", "delivered"), ("inbound", "<b>Thanks</b>", "received")]
    assert b["messages"][0]["id"] == sent.carrier_message_id
    assert b["messages"][1]["id"] == body["data"]["message_id"]

    sim.set_webhook_url("http://127.0.0.1:9/unreachable")
    sim.state.webhook_retry_delays = ()
    await _sim(sim, "POST", "/sim/inbound", json={"from": C, "to": A, "text": "Hello?"})
    threads = (await _sim(sim, "GET", "/sim/threads"))[1]["data"]
    assert threads[0]["messages"][-1]["status"] == "not_received"
    assert await _sim(sim, "DELETE", "/sim/messages") == (204, None)
    assert (await _sim(sim, "GET", "/sim/threads"))[1]["data"] == []
